//! The tables of the stores' settings: `sessions.memory`, `sessions.redis`,
//! `sessions.file`, and the `sessions.store` key that picks one.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::seconds;

/// The memory store's settings: the `sessions.memory` table.
///
/// # Example
///
/// ```
/// use rocket_server_sessions::config::MemoryConfig;
///
/// let config = MemoryConfig::default();
/// assert_eq!(config.max_sessions, 100_000);
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// The most sessions kept at once. When full, a new session evicts expired sessions
    /// first, then the anonymous sessions closest to expiry (an eighth of a shard's share
    /// at once; the store has a shard per 4096 sessions of the cap, 1 to 128). A stranger
    /// never evicts a signed-in session: a store full of them refuses a new stranger's
    /// session (`503`). A sign-in evicts the signed-in sessions closest to expiry.
    ///
    /// # Performance
    ///
    /// Memory grows with this cap: a session with ~100 bytes of data takes about 250
    /// bytes. Records are kept in pages of same-sized slots, which a size class gives
    /// back only once all its slots are free; at worst, with sessions of every size up to
    /// 1 KiB at the cap, a shard keeps ~3.4 KB per allowed session. Larger records have
    /// an allocation each, freed with them, and are bounded by `max_session_size`.
    ///
    /// _Default:_ `100000`
    pub max_sessions: usize,
    /// How often, in seconds, expired sessions are swept from memory.
    ///
    /// _Default:_ `60`
    #[serde(with = "seconds")]
    pub sweep_interval: Duration,
}

/// The Redis stores' settings: the `sessions.redis` table, for `store = "redis"` and
/// `store = "redis-cluster"`.
///
/// ```toml
/// [default.sessions]
/// store = "redis"
///
/// [default.sessions.redis]
/// url = "redis://:password@127.0.0.1:6379/0"
/// prefix = "session:"
/// timeout = 0.5
/// ```
///
/// # Example
///
/// ```
/// use rocket_server_sessions::config::RedisConfig;
///
/// let config = RedisConfig::default();
/// assert_eq!(config.prefix, "session:");
/// ```
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server for `store = "redis"`: `redis://[:password@]host[:port][/db]`,
    /// `redis://user:password@host`, `rediss://...` for TLS (with the `redis-tls` feature),
    /// or `redis+unix:///path/to/socket`.
    ///
    /// _Default:_ `"redis://127.0.0.1:6379/"`
    pub url: String,
    /// Seed nodes for `store = "redis-cluster"`, each a URL as for `url`; the rest of the
    /// cluster is discovered from them.
    ///
    /// _Default:_ `[]`
    pub urls: Vec<String>,
    /// Prepended to every key. Keys are this prefix and the SHA-256 of the session id,
    /// never the id itself.
    ///
    /// _Default:_ `"session:"`
    pub prefix: String,
    /// How long, in seconds, a request may wait on Redis, connecting included: it bounds
    /// the store time of one request, all its commands together (a log-in sends several),
    /// not each command. A request that runs out is answered `503 Service Unavailable`.
    /// Time the request spends elsewhere (its handler, a password hash) does not count.
    ///
    /// _Default:_ `0.5`
    #[serde(with = "seconds")]
    pub timeout: Duration,
    /// The most sessions the store keeps. Sessions are spread over 256 groups of keys
    /// (one hash tag each, so a Redis Cluster spreads them over its nodes), each keeping
    /// a 256th of this, rounded up. When a group is full, a new session drops the
    /// group's expired sessions, then evicts its anonymous sessions closest to expiry; a
    /// group full of signed-in sessions refuses a stranger's. Signed-in sessions are
    /// capped store-wide, not per group: a sign-in past the cap evicts the signed-in
    /// sessions closest to expiry.
    ///
    /// # Security
    ///
    /// It bounds what strangers can make Redis hold, whatever its `maxmemory`: at most
    /// `max_sessions` sessions of at most `max_session_size` each, plus about 100 bytes a
    /// session for the indexes.
    ///
    /// _Default:_ `1000000`
    pub max_sessions: usize,
    /// How many connections the store keeps to the server (to each node of a cluster).
    /// Each session's commands always take the same one, so they stay in order; each
    /// connection batches the commands of concurrent requests on its own, and its replies
    /// are read on its own task, so the store's throughput grows with the cores that
    /// serve requests. From 1 to 256.
    ///
    /// _Default:_ the number of CPUs, as Rocket's `workers`
    pub connections: usize,
}

/// The file store's settings: the `sessions.file` table, for `store = "file"`.
///
/// # Example
///
/// ```
/// use rocket_server_sessions::config::FileConfig;
///
/// let config = FileConfig::default();
/// assert_eq!(config.dir.to_str(), Some("sessions"));
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FileConfig {
    /// The directory that holds one file per session, created when missing; relative
    /// paths are relative to the working directory.
    ///
    /// _Default:_ `"sessions"`
    pub dir: PathBuf,
    /// How often, in seconds, expired session files are swept.
    ///
    /// _Default:_ `60`
    #[serde(with = "seconds")]
    pub sweep_interval: Duration,
    /// The most sessions the directory holds. When full, a new session removes the
    /// expired ones, then the anonymous sessions closest to expiry (a 64th of the cap at
    /// once). A stranger never removes a signed-in session: a directory full of them
    /// refuses a new stranger's session (`503`); a sign-in removes the signed-in sessions
    /// closest to expiry.
    ///
    /// # Security
    ///
    /// It bounds what strangers can make the store write: at most `max_sessions` files
    /// of at most `max_session_size` (plus 16 KiB) each.
    ///
    /// _Default:_ `100000`
    pub max_sessions: usize,
    /// Seconds the file store's work for one request may take, all of it together (a load
    /// and a commit, waiting for a session's lock or for room included), before the
    /// request is answered `503 Service Unavailable`: a stalled disk or network file
    /// system holds no request longer. The work itself runs to its end, so a file and the
    /// store's index never disagree; a change may land after the `503`, as a command a
    /// Redis server received may, but a new session does not (nobody holds its cookie).
    /// Time the request spends elsewhere does not count.
    ///
    /// _Default:_ `2`
    #[serde(with = "seconds")]
    pub timeout: Duration,
}

/// Which store keeps sessions: the `sessions.store` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StoreKind {
    /// `"memory"`: [`MemoryStore`](crate::store::MemoryStore), configured by `sessions.memory`.
    Memory,
    /// `"redis"`: one Redis (or Valkey) server at `sessions.redis.url`; needs the `redis`
    /// feature.
    Redis,
    /// `"redis-cluster"`: a Redis Cluster seeded by `sessions.redis.urls`; needs the
    /// `redis` feature.
    RedisCluster,
    /// `"file"`: one file per session under `sessions.file.dir`; needs the `file` feature.
    File,
    /// `"postgres"`: a table in PostgreSQL, configured by `sessions.sql`; needs the
    /// `postgres` feature.
    Postgres,
    /// `"sqlite"`: a table in an SQLite database file, configured by `sessions.sql`;
    /// needs the `sqlite` feature.
    Sqlite,
    /// `"mysql"`: a table in MySQL or MariaDB, configured by `sessions.sql`; needs the
    /// `mysql` feature.
    Mysql,
}

impl StoreKind {
    /// The store's name, as `sessions.store` spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Redis => "redis",
            StoreKind::RedisCluster => "redis-cluster",
            StoreKind::File => "file",
            StoreKind::Postgres => "postgres",
            StoreKind::Sqlite => "sqlite",
            StoreKind::Mysql => "mysql",
        }
    }
}

/// The SQL stores' settings: the `sessions.sql` table, for `store = "postgres"`,
/// `"sqlite"` and `"mysql"`.
///
/// ```toml
/// [default.sessions]
/// store = "postgres"
///
/// [default.sessions.sql]
/// url = "postgres://app@127.0.0.1:5432/app"   # or: database = "app" (rocket_db_pools)
/// table = "sessions"
/// ```
///
/// # Example
///
/// ```
/// use rocket_server_sessions::config::SqlConfig;
///
/// let config = SqlConfig::default();
/// assert_eq!(config.table, "sessions");
/// ```
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SqlConfig {
    /// The database: `postgres://user:password@host:port/db`, `sqlite://path/to/file.db`
    /// (created when missing; `sqlite::memory:` for a database that lives as long as the
    /// process), or `mysql://user:password@host:port/db` (MySQL or MariaDB).
    ///
    /// _Default:_ unset: `database` or a URL is needed
    pub url: Option<String>,
    /// The name of a `rocket_db_pools` database of the application, whose settings under
    /// `databases.<name>` (`url`, and `max_connections` for the store's pool) the store
    /// connects with, in place of `url`. The store opens a pool of its own there; to share the
    /// application's pool itself, give it to the store in code
    /// ([`SessionsBuilder::store_with`](crate::SessionsBuilder::store_with) and
    /// `SqlStore::with_pool`).
    ///
    /// _Default:_ unset
    pub database: Option<String>,
    /// The table that holds the sessions: letters, digits and `_`, not starting with a
    /// digit, as in `"sessions"`.
    ///
    /// _Default:_ `"sessions"`
    pub table: String,
    /// Whether the store creates the table, and its index on expiry, when missing. Turn it
    /// off where migrations manage the schema (the README has the SQL).
    ///
    /// _Default:_ `true`
    pub create_table: bool,
    /// The most connections the store's pool opens.
    ///
    /// _Default:_ `10`
    pub max_connections: u32,
    /// How long, in seconds, a request may wait on the database, waiting for a connection
    /// included: it bounds the store time of one request, all its statements together (a
    /// load and a commit, or a log-in's several), not each statement. A request that runs
    /// out is answered `503 Service Unavailable`. Time the request spends elsewhere (its
    /// handler, a password hash) does not count.
    ///
    /// _Default:_ `1`
    #[serde(with = "seconds")]
    pub timeout: Duration,
    /// How often, in seconds, expired sessions are deleted, in batches of 1,000 rows.
    ///
    /// _Default:_ `60`
    #[serde(with = "seconds")]
    pub sweep_interval: Duration,
    /// The most sessions the table holds. Every sweep, and whenever the store's count of
    /// its own creations since reaches it, the anonymous sessions closest to expiry are
    /// deleted to bring it under (a 64th of the cap at once for a creation). A stranger
    /// never deletes a signed-in session: a table full of them refuses a new stranger's
    /// session (`503`), and a sweep deletes anonymous sessions alone. A sign-in deletes
    /// the signed-in sessions closest to expiry.
    ///
    /// _Default:_ `1000000`
    pub max_sessions: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            url: None,
            database: None,
            table: "sessions".into(),
            create_table: true,
            max_connections: 10,
            timeout: Duration::from_secs(1),
            sweep_interval: Duration::from_secs(60),
            max_sessions: 1_000_000,
        }
    }
}

/// Never prints a password in a URL.
impl fmt::Debug for SqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlConfig")
            .field("url", &self.url.as_deref().map(redact))
            .field("database", &self.database)
            .field("table", &self.table)
            .field("create_table", &self.create_table)
            .field("max_connections", &self.max_connections)
            .field("timeout", &self.timeout)
            .field("sweep_interval", &self.sweep_interval)
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/".into(),
            urls: Vec::new(),
            prefix: "session:".into(),
            timeout: Duration::from_millis(500),
            max_sessions: 1_000_000,
            connections: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            dir: PathBuf::from("sessions"),
            sweep_interval: Duration::from_secs(60),
            max_sessions: 100_000,
            timeout: Duration::from_secs(2),
        }
    }
}

/// `url` with any password replaced by `***`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Never prints a password in a URL.
impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact(&self.url))
            .field(
                "urls",
                &self.urls.iter().map(|u| redact(u)).collect::<Vec<_>>(),
            )
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("max_sessions", &self.max_sessions)
            .field("connections", &self.connections)
            .finish()
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_sessions: 100_000,
            sweep_interval: Duration::from_secs(60),
        }
    }
}
