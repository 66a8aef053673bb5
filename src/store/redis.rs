//! Redis and Redis Cluster (and Valkey): sessions shared by every instance of an app.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Script, Value};

use crate::{
    Changes, Error, RedisConfig, SessionId, SessionRecord, SessionStore, StoreError, FORMAT_VERSION,
};

/// Hash field of the record format version.
const VERSION_FIELD: &str = "m:v";
/// Hash field of the session's lifetime in milliseconds.
const TTL_FIELD: &str = "m:ttl";
/// Prefix of the hash fields that hold entries: `e:<entry key>`. Entries and metadata
/// never share a name, whatever the entry keys.
const ENTRY_PREFIX: &str = "e:";

/// `KEYS[1]` the session; `ARGV[1]` TTL in ms; then field/value pairs. Creates the hash
/// only if it does not exist, with its expiry, atomically. (`unpack` passes every field to
/// one `HSET`: three calls in all, whatever the number of entries, up to Lua's limit of
/// some thousands of arguments.)
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// `KEYS[1]` the session; `ARGV[1]` new TTL in ms or ''; `ARGV[2]` the number of fields
/// to set; those field/value pairs; then fields to delete. Applies the changes only while
/// the session exists, so a deleted or expired session is never brought back.
const COMMIT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local sets = tonumber(ARGV[2])
if sets > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + 2 * sets)) end
if #ARGV > 2 + 2 * sets then redis.call('HDEL', KEYS[1], unpack(ARGV, 3 + 2 * sets)) end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], 'm:ttl', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
";

/// `KEYS[1]` the session. Resets its expiry to its own lifetime; returns that lifetime
/// in ms, or nil when the session does not exist. Never writes data.
const TOUCH: &str = r"
local ttl = redis.call('HGET', KEYS[1], 'm:ttl')
if not ttl then return false end
redis.call('PEXPIRE', KEYS[1], ttl)
return tonumber(ttl)
";

/// Sessions in Redis, Redis Cluster or Valkey: for apps that run many instances, or
/// that must keep sessions across restarts.
///
/// Each session is one Redis hash, one field per entry, so two concurrent requests that
/// change different entries both keep their change (on the same entry the last writer
/// wins). Its key is the configured prefix and the SHA-256 of the session id, so a dump or
/// `SCAN` of Redis hands out no usable cookie. Every operation is one round trip: `HGETALL`
/// to load, one Lua script to create, commit (only while the session still exists: a
/// destroyed session is never brought back) or touch, `DEL` to delete. The TTL is set with
/// the write.
///
/// The connection reconnects by itself after an outage. Each command is bounded by the
/// configured `timeout`; a command that fails or times out answers `503`.
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), rocket_server_sessions::Error> {
/// use rocket_server_sessions::{RedisConfig, RedisStore, Sessions};
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
    scripts: Scripts,
}

#[derive(Clone)]
struct Scripts {
    create: Script,
    commit: Script,
    touch: Script,
}

/// A standalone or cluster connection, both reconnecting by themselves.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
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
        let connect = client.get_connection_manager_with_config(manager);
        let connection = bounded(config.timeout, connect)
            .await
            .map_err(|e| unreachable_error("redis.url", &e))?;
        Ok(RedisStore::with(Connection::Single(connection), config))
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
            .retries(1)
            .build()
            .map_err(|e| url_error("redis.urls", &e))?;
        let connection = bounded(config.timeout, client.get_async_connection())
            .await
            .map_err(|e| unreachable_error("redis.urls", &e))?;
        Ok(RedisStore::with(Connection::Cluster(connection), config))
    }

    fn with(connection: Connection, config: &RedisConfig) -> Self {
        RedisStore {
            connection,
            prefix: config.prefix.clone(),
            timeout: config.timeout,
            scripts: Scripts {
                create: Script::new(CREATE),
                commit: Script::new(COMMIT),
                touch: Script::new(TOUCH),
            },
        }
    }

    fn key(&self, id: &SessionId) -> String {
        format!("{}{}", self.prefix, id.storage_key())
    }

    /// Runs one command (or script) within the timeout.
    async fn run<T, F>(&self, op: impl FnOnce(Connection) -> F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.timeout, op(self.connection.clone())).await {
            Ok(result) => result.map_err(store_error),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }
}

/// Reads a record from `HGETALL`'s answer; `None` for an empty answer (no such key).
fn decode_record(fields: HashMap<Vec<u8>, Vec<u8>>) -> Result<Option<SessionRecord>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }

    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(StoreError::corrupt)
    };
    let number = |field: &str| -> Result<u64, StoreError> {
        let bytes = fields
            .get(field.as_bytes())
            .ok_or_else(|| StoreError::corrupt(format!("no `{field}` field")))?;
        text(bytes)?.parse().map_err(StoreError::corrupt)
    };

    let version = number(VERSION_FIELD)?;
    if version != u64::from(FORMAT_VERSION) {
        return Err(StoreError::corrupt(format!(
            "unknown record format version {version}"
        )));
    }

    let mut record = SessionRecord::new(Duration::from_millis(number(TTL_FIELD)?));
    for (field, value) in &fields {
        if let Some(key) = text(field)?.strip_prefix(ENTRY_PREFIX) {
            record.insert(key, text(value)?);
        }
    }

    Ok(Some(record))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[rocket::async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let key = self.key(id);
        let fields = self
            .run(|mut c| async move { redis::cmd("HGETALL").arg(&key).query_async(&mut c).await })
            .await?;
        decode_record(fields)
    }

    async fn create(&self, id: &SessionId, record: &SessionRecord) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.create.key(self.key(id));
        invocation.arg(millis(record.ttl()));
        invocation.arg(VERSION_FIELD).arg(FORMAT_VERSION);
        invocation.arg(TTL_FIELD).arg(millis(record.ttl()));
        for (key, json) in record.entries() {
            invocation.arg(format!("{ENTRY_PREFIX}{key}")).arg(json);
        }

        self.run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.commit.key(self.key(id));
        invocation.arg(
            changes
                .ttl()
                .map(|ttl| millis(ttl).to_string())
                .unwrap_or_default(),
        );
        let sets: Vec<_> = changes
            .entries()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
        invocation.arg(sets.len());
        for (key, json) in sets {
            invocation.arg(format!("{ENTRY_PREFIX}{key}")).arg(json);
        }
        for (key, _) in changes.entries().filter(|(_, v)| v.is_none()) {
            invocation.arg(format!("{ENTRY_PREFIX}{key}"));
        }

        self.run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<Duration>, StoreError> {
        let invocation = self.scripts.touch.key(self.key(id));
        let ttl: Option<u64> = self
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        Ok(ttl.map(Duration::from_millis))
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let key = self.key(id);
        self.run(|mut c| async move { redis::cmd("DEL").arg(&key).query_async::<()>(&mut c).await })
            .await
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
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

async fn bounded<T>(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<Vec<u8>, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_record_reads_back_from_its_fields() {
        let record = decode_record(fields(&[
            ("m:v", "1"),
            ("m:ttl", "1500"),
            ("e:cart", "[1]"),
            ("e:$user", "\"a\""),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(record.ttl(), Duration::from_millis(1500));
        assert_eq!(
            record.entries().collect::<Vec<_>>(),
            [("$user", "\"a\""), ("cart", "[1]")]
        );
    }

    #[test]
    fn no_fields_is_no_session() {
        assert_eq!(decode_record(HashMap::new()).unwrap(), None);
    }

    #[test]
    fn unreadable_records_are_corrupt() {
        let cases = [
            fields(&[("m:ttl", "1500")]),
            fields(&[("m:v", "2"), ("m:ttl", "1500")]),
            fields(&[("m:v", "1"), ("m:ttl", "soon")]),
            fields(&[("m:v", "1")]),
            [
                (b"m:v".to_vec(), b"1".to_vec()),
                (b"m:ttl".to_vec(), b"5".to_vec()),
                (b"e:x".to_vec(), vec![0xff]),
            ]
            .into_iter()
            .collect(),
        ];
        for case in cases {
            assert!(matches!(decode_record(case), Err(StoreError::Corrupt(_))));
        }
    }
}
