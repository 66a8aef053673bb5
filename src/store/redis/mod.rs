//! Redis and Redis Cluster (and Valkey): sessions shared by every instance of an app.

use std::sync::Arc;
use std::time::Duration;

use data_encoding::HEXLOWER;
use redis::aio::{ConnectionLike, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult, ServerErrorKind, Value};

use super::evict::Class;
use super::{CommitOutcome, CreateOutcome, DeleteOutcome};
use crate::config::RedisConfig;
use crate::error::{Error, StoreError};
use crate::id::SessionId;
use crate::record::{Changes, SessionRecord, FORMAT_VERSION};
use crate::store::SessionStore;
use crate::time::millis;

mod batch;
mod codec;
mod scripts;

use batch::Batcher;
use codec::{decode_record, EntryField, RECOUNT, TTL_FIELD, VERSION_FIELD};
use scripts::{Lua, Scripts};

/// How many groups sessions are spread over: each group's keys share a hash tag (the
/// first byte of the storage key, in hex), so that a session and its group's indexes sit
/// in one Redis Cluster slot, and one script can keep both; 256 tags spread over the
/// cluster's nodes.
const GROUPS: usize = 256;

/// Sessions in Redis, Redis Cluster or Valkey: for apps that run many instances, or
/// that must keep sessions across restarts.
///
/// Each session is one Redis hash, one field per entry, so two concurrent requests that
/// change different entries both keep their change (on the same entry the last writer
/// wins). Its key is the configured prefix, a hash tag and the SHA-256 of the session id
/// (`session:{3f}3fa9...`), so a dump or `SCAN` of Redis hands out no usable cookie. Every
/// operation is one round trip: `HGETALL` to load, one Lua script to create, commit (only
/// while the session still exists: a destroyed session is never brought back), touch or
/// delete. The TTL is set with the write.
///
/// The store keeps at most `max_sessions`, in 256 groups of keys: the hash tag is the
/// group, and each group keeps two sorted sets of its sessions by expiry,
/// `session:{3f}:anonymous` and `session:{3f}:signed-in`, in the same cluster slot as its
/// sessions, so one script keeps them with the session. A stranger only displaces
/// strangers: each group holds a 256th of the cap, rounded up; a full group evicts its
/// anonymous sessions closest to expiry, and a new anonymous session in a group full of
/// signed-in ones is refused ([`StoreError::Full`], a `503`), never let in by logging a
/// user out. Signed-in sessions are capped store-wide instead, whichever groups they fall
/// in: one sorted set, `session:{all}:signed-in`, counts each until a little past its
/// expiry (an eighth of its lifetime), and a sign-in that takes it past `max_sessions`
/// evicts the signed-in sessions closest to expiry. Only sign-ins, log-outs, deletions of
/// signed-in sessions and their extensions (once an eighth of their lifetime) write it: no
/// anonymous request does, so a Redis Cluster spreads the creations of a flood over its
/// nodes. Users' lists of sessions are in no index: outside the cap, they live only as
/// long as their sessions need. The eviction script deletes the sessions it pops
/// from an index, which live in the index's slot: Redis, Redis Cluster and Valkey allow
/// that; servers that demand every key a script touches be declared (Dragonfly, some
/// managed services) refuse it. Under a `volatile-*` `maxmemory` policy Redis may evict
/// an index (it has a TTL) and lose count of its group until its sessions expire: prefer
/// `noeviction` or an `allkeys-*` policy.
///
/// The store keeps `redis.connections` connections (to each node of a cluster), and each
/// session's commands always take the same one, chosen by its id, so they stay in order.
/// On a standalone server the commands of concurrent requests on one connection share
/// round trips: those issued while a pipeline is in flight go out together as the next
/// one, in one write. Each connection sends and reads on tasks of its own: no single task
/// reads every reply, so the store scales with the cores that serve requests. The
/// connections reconnect by themselves after an outage, and on a cluster find the replica
/// that took over a failed master: its sessions answer `503` until the failover ends (the
/// others too, for about a second, while the client learns the new layout), then are
/// served again without a restart. Redis replicates asynchronously, so a write the
/// master acknowledged but had not yet sent to its replica is lost with the master. The
/// configured `timeout` bounds a request's operations together (its
/// [`timeout`](SessionStore::timeout)); one that fails, or a request that runs out,
/// answers `503`.
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), rocket_server_sessions::Error> {
/// use rocket_server_sessions::{Sessions, config::RedisConfig, store::RedisStore};
///
/// let mut config = RedisConfig::default();
/// config.url = "redis://127.0.0.1:6379/".into();
/// let store = RedisStore::connect(&config).await?;
/// let rocket = rocket::build().attach(Sessions::builder().store(store).build());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: String,
    timeout: Duration,
    /// The most sessions one group of keys holds: `max_sessions` over [`GROUPS`].
    group_cap: usize,
    /// The most signed-in sessions the store holds: `max_sessions`.
    max_signed_in: usize,
    scripts: Arc<Scripts>,
}

/// The keys of one session: its hash, and its group's two indexes.
struct Keys {
    session: String,
    anonymous: String,
    signed_in: String,
}

/// Standalone or cluster connections, all reconnecting by themselves.
#[derive(Clone)]
enum Connection {
    Single(Arc<[Arc<Batcher>]>),
    Cluster(Arc<[ClusterConnection]>),
}

impl Connection {
    /// Sends `cmd` on connection `at` (of each node, on a cluster; modulo their number),
    /// and returns its reply; an error reply is an `Err`. A session's commands take the
    /// connection its id picks, so that they stay in order.
    async fn query(&self, at: usize, cmd: Cmd) -> RedisResult<Value> {
        let reply = match self {
            Connection::Single(batchers) => batchers[at % batchers.len()].query(cmd).await?,
            Connection::Cluster(clusters) => {
                let mut cluster = clusters[at % clusters.len()].clone();
                cluster.req_packed_command(&cmd).await?
            }
        };
        reply.extract_error()
    }

    /// How many connections there are (to each node, on a cluster).
    fn len(&self) -> usize {
        match self {
            Connection::Single(batchers) => batchers.len(),
            Connection::Cluster(clusters) => clusters.len(),
        }
    }
}

/// Makes `n` connections with `connect`, at once, each within `timeout`.
async fn connections<T, F, Fut>(n: usize, timeout: Duration, connect: F) -> Result<Vec<T>, String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = RedisResult<T>>,
{
    let made = rocket::futures::future::join_all(
        (0..n.max(1)).map(|_| connect_within(timeout, connect())),
    );
    made.await.into_iter().collect()
}

impl RedisStore {
    /// Connects to the server at `config.url`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `redis.url` when the URL is malformed or the server cannot
    /// be reached within `config.timeout`.
    pub async fn connect(config: &RedisConfig) -> Result<Self, Error> {
        install_tls_provider();
        let client =
            redis::Client::open(config.url.as_str()).map_err(|e| url_error("redis.url", &e))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1);
        let connect = || client.get_connection_manager_with_config(manager.clone());
        let made = connections(config.connections, config.timeout, connect)
            .await
            .map_err(|e| unreachable_error("redis.url", &e))?;
        let batchers = made
            .into_iter()
            .map(|c| Arc::new(Batcher::new(c)))
            .collect();
        Ok(RedisStore::with(Connection::Single(batchers), config))
    }

    /// Connects to the Redis Cluster seeded by `config.urls`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `redis.urls` when a URL is malformed or the cluster cannot
    /// be reached within `config.timeout`.
    pub async fn connect_cluster(config: &RedisConfig) -> Result<Self, Error> {
        install_tls_provider();
        let client = ClusterClientBuilder::new(config.urls.iter().map(String::as_str))
            .connection_timeout(config.timeout)
            .response_timeout(config.timeout)
            .build()
            .map_err(|e| url_error("redis.urls", &e))?;
        let made = connections(config.connections, config.timeout, || {
            client.get_async_connection()
        })
        .await
        .map_err(|e| unreachable_error("redis.urls", &e))?;
        Ok(RedisStore::with(Connection::Cluster(made.into()), config))
    }

    fn with(connection: Connection, config: &RedisConfig) -> Self {
        RedisStore {
            connection,
            prefix: config.prefix.clone(),
            timeout: config.timeout,
            group_cap: config.max_sessions.div_ceil(GROUPS).max(1),
            max_signed_in: config.max_sessions.max(1),
            scripts: Arc::new(Scripts::new()),
        }
    }

    /// The key of session `id`: the prefix, its group's hash tag (the first byte of its
    /// storage key), then its storage key, as in `session:{3f}3fa9...`; and its group's
    /// indexes, `session:{3f}:anonymous` and `session:{3f}:signed-in`.
    fn keys(&self, id: &SessionId) -> Keys {
        self.keys_of(session_key(&self.prefix, id))
    }

    /// The keys of the session whose key is `session`, as [`keys`](Self::keys) makes it.
    fn keys_of(&self, session: String) -> Keys {
        let group = session.get(..self.prefix.len() + 4).unwrap_or(&session);
        let index = |suffix: &str| {
            let mut key = String::with_capacity(group.len() + suffix.len());
            key.push_str(group);
            key.push_str(suffix);
            key
        };
        Keys {
            anonymous: index(":anonymous"),
            signed_in: index(":signed-in"),
            session,
        }
    }

    /// Awaits `reply` within the timeout; `Err` only when none came in time.
    async fn bounded(
        &self,
        reply: impl std::future::Future<Output = RedisResult<Value>>,
    ) -> Result<RedisResult<Value>, StoreError> {
        tokio::time::timeout(self.timeout, reply)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))
    }

    /// Runs one command on session `id` within the timeout and reads its reply as a `T`.
    async fn run<T: FromRedisValue>(&self, id: &SessionId, cmd: Cmd) -> Result<T, StoreError> {
        let at = id.shard(self.connection.len());
        read(self.bounded(self.connection.query(at, cmd)).await?)
    }

    /// Runs `script` on the session `key` with `args` (`EVALSHA`), all within one timeout;
    /// a server that does not know the script yet (first use, or after a restart) is sent
    /// it with `EVAL`, which also makes it known. `EVAL` goes to the node that holds the key,
    /// where `SCRIPT LOAD` on a cluster would need every node to answer.
    async fn eval<T: FromRedisValue>(
        &self,
        script: &Lua,
        id: &SessionId,
        args: impl Fn(&mut Cmd),
    ) -> Result<T, StoreError> {
        let keys = self.keys(id);
        let at = id.shard(self.connection.len());
        let keys = [&keys.session, &keys.anonymous, &keys.signed_in];
        self.eval_on(script, at, &keys, args).await
    }

    /// Runs `script` on `keys`, on connection `at`, with `args`, as [`eval`](Self::eval).
    async fn eval_on<T: FromRedisValue>(
        &self,
        script: &Lua,
        at: usize,
        keys: &[&String],
        args: impl Fn(&mut Cmd),
    ) -> Result<T, StoreError> {
        let cmd = |name: &str, script: &str| {
            // Room for what a create or a commit of a few small entries sends: growing the
            // command's buffers cost reallocations on every call.
            let mut cmd = Cmd::with_capacity(24, 512);
            cmd.arg(name).arg(script).arg(keys.len());
            for key in keys {
                cmd.arg(*key);
            }
            args(&mut cmd);
            cmd
        };
        let reply = async {
            match self
                .connection
                .query(at, cmd("EVALSHA", &script.hash))
                .await
            {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    self.connection.query(at, cmd("EVAL", &script.code)).await
                }
                reply => reply,
            }
        };
        read(self.bounded(reply).await?)
    }

    /// Counts the signed-in session `session` (its key) in the store-wide index until
    /// `until` (milliseconds, on the server's clock), and evicts the signed-in sessions
    /// closest to expiry while the index holds more than `max_sessions`.
    async fn admit(&self, session: &str, until: i64) -> Result<(), StoreError> {
        let index = self.signed_in_index();
        let victims: Vec<String> = self
            .eval_on(&self.scripts.admit, 0, &[&index], |cmd| {
                cmd.arg(session).arg(until).arg(self.max_signed_in);
            })
            .await?;
        for victim in victims {
            let keys = self.keys_of(victim);
            let keys = [&keys.session, &keys.anonymous, &keys.signed_in];
            let _: i64 = self.eval_on(&self.scripts.delete, 0, &keys, |_| {}).await?;
        }
        Ok(())
    }

    /// Takes the session `session` (its key) out of the store-wide index of signed-in
    /// sessions: it was deleted, or logged out.
    async fn leave(&self, session: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.signed_in_index()).arg(session);
        let _: i64 = read(self.bounded(self.connection.query(0, cmd)).await?)?;
        Ok(())
    }

    /// The store-wide index of signed-in sessions: `session:{all}:signed-in`, scored by until
    /// when each is counted (its expiry, and at most an eighth of its lifetime more).
    fn signed_in_index(&self) -> String {
        format!("{}{{all}}:signed-in", self.prefix)
    }
}

/// Reads a reply as a `T`. An error reply is a `StoreError`, and so is a reply of another
/// shape: the server is not answering as Redis does, which is no reason to drop data.
fn read<T: FromRedisValue>(reply: RedisResult<Value>) -> Result<T, StoreError> {
    redis::from_redis_value(reply.map_err(store_error)?).map_err(StoreError::unavailable)
}

/// Redis takes no zero expiry: a lifetime is at least a millisecond.
fn ttl_millis(duration: Duration) -> u64 {
    millis(duration).max(1)
}

#[rocket::async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.keys(id).session);
        decode_record(self.run(id, cmd).await?)
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        let ttl = ttl_millis(record.ttl());
        let class = match Class::of(record) {
            Class::Anonymous => "a",
            Class::SignedIn => "s",
            Class::List => "l",
        };
        let created: i64 = self
            .eval(&self.scripts.create, id, |cmd| {
                cmd.arg(ttl).arg(self.group_cap).arg(class);
                cmd.arg(VERSION_FIELD).arg(FORMAT_VERSION);
                cmd.arg(TTL_FIELD).arg(ttl);
                for (key, json) in record.entries() {
                    cmd.arg(EntryField(key)).arg(json);
                }
            })
            .await?;
        match created {
            0 => Ok(CreateOutcome::Taken),
            -1 => Err(StoreError::Full),
            1 => Ok(CreateOutcome::Created),
            // A signed-in session: until when it is counted store-wide.
            until => {
                self.admit(&self.keys(id).session, until).await?;
                Ok(CreateOutcome::Created)
            }
        }
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        let signed_in = match changes.authenticates() {
            Some(true) => "1",
            Some(false) => "0",
            None => "",
        };
        let applied: i64 = self
            .eval(&self.scripts.commit, id, |cmd| {
                cmd.arg(
                    changes
                        .ttl()
                        .map(|ttl| ttl_millis(ttl).to_string())
                        .unwrap_or_default(),
                );
                cmd.arg(signed_in);
                let sets = || changes.entries().filter_map(|(k, v)| Some((k, v?)));
                cmd.arg(sets().count());
                for (key, json) in sets() {
                    cmd.arg(EntryField(key)).arg(json);
                }
                for (key, _) in changes.entries().filter(|(_, v)| v.is_none()) {
                    cmd.arg(EntryField(key));
                }
            })
            .await?;
        match applied {
            0 => return Ok(CommitOutcome::Gone),
            1 => {}
            // Logged out: no longer counted among the signed-in.
            2 => self.leave(&self.keys(id).session).await?,
            // Logged in, or lives past until when it was counted: counted longer.
            until => self.admit(&self.keys(id).session, until).await?,
        }
        Ok(CommitOutcome::Applied)
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let mut fields: codec::Fields = self.eval(&self.scripts.touch, id, |_| {}).await?;
        // The script appends `m:recount` when the session now lives past until when it was
        // counted store-wide.
        if fields
            .last()
            .is_some_and(|(name, _)| name == RECOUNT.as_bytes())
        {
            let (_, until) = fields.pop().unwrap_or_default();
            let until = std::str::from_utf8(&until)
                .ok()
                .and_then(|until| until.parse().ok())
                .ok_or_else(|| StoreError::corrupt("a count time that is no number"))?;
            self.admit(&self.keys(id).session, until).await?;
        }
        decode_record(fields)
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        // One bit says whether it was deleted, the next whether it was signed in.
        let deleted: u64 = self.eval(&self.scripts.delete, id, |_| {}).await?;
        if deleted & 2 != 0 {
            self.leave(&self.keys(id).session).await?;
        }
        Ok(match deleted & 1 {
            0 => DeleteOutcome::Absent,
            _ => DeleteOutcome::Deleted,
        })
    }

    /// `redis.timeout` bounds a request's commands together.
    fn timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }
}

/// Session `id`'s key under `prefix`, as [`RedisStore::keys`] says. Built in one
/// allocation, the hash written straight into it: `format!` and the hash's own `String`
/// cost about 1.5k instructions a request under callgrind.
fn session_key(prefix: &str, id: &SessionId) -> String {
    let hash = id.storage_hash();
    let mut session = String::with_capacity(prefix.len() + 4 + 64);
    session.push_str(prefix);
    session.push('{');
    HEXLOWER.encode_append(&hash[..1], &mut session);
    session.push('}');
    HEXLOWER.encode_append(&hash, &mut session);
    session
}

/// A key that is not a hash is a record we cannot read; anything else is the store
/// failing.
fn store_error(error: RedisError) -> StoreError {
    if error.code() == Some("WRONGTYPE") {
        StoreError::corrupt(error)
    } else {
        StoreError::unavailable(error)
    }
}

async fn connect_within<T>(
    timeout: Duration,
    connect: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

fn url_error(key: &str, error: &RedisError) -> Error {
    Error::config(key, format!("is not a usable Redis URL: {error}"))
}

fn unreachable_error(key: &str, error: &str) -> Error {
    Error::config(
        key,
        format!("could not connect: {error}; is the server running and the URL right?"),
    )
}

#[cfg(feature = "redis-tls")]
fn install_tls_provider() {
    // Fails only when a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(not(feature = "redis-tls"))]
fn install_tls_provider() {}

/// Never prints a password: the URL is not kept.
impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.connection {
            Connection::Single(_) => "standalone",
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("kind", &kind)
            .field("connections", &self.connection.len())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_key_is_the_prefix_its_group_tag_and_its_storage_key() {
        // The format every release has written: a stored session keeps its key.
        let id = SessionId::generate();
        let hash = id.storage_key();
        let expected = format!("session:{{{}}}{hash}", &hash[..2]);
        assert_eq!(session_key("session:", &id), expected);
        assert_eq!(session_key("", &id), format!("{{{}}}{hash}", &hash[..2]));
    }
}
