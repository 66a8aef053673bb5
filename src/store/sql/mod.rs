//! The SQL stores: PostgreSQL, SQLite, MySQL and MariaDB, through sqlx, on a pool of their
//! own or the application's.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rocket::log::private as log;

use super::evict::{self, Class};
use super::sweep::Sweeper;
use super::{CommitOutcome, CreateOutcome, DeleteOutcome, SessionStore};
use crate::config::SqlConfig;
use crate::error::{Error, StoreError};
use crate::id::SessionId;
use crate::record::{Changes, SessionRecord};
use crate::time::{millis, unix_millis};

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "mysql")]
pub use mysql::MySql;
#[cfg(feature = "postgres")]
pub use postgres::Postgres;
#[cfg(feature = "sqlite")]
pub use sqlite::Sqlite;

/// A pooled connection used this recently is used as it is; one idle for longer is
/// checked first (a round trip), in case the database restarted meanwhile.
const CHECK_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// How many expired rows one statement of the sweep deletes.
const SWEEP_BATCH: i64 = 1_000;
/// How long a creation's count of the table and the evictions after it may take together
/// (or `sql.timeout`, when longer). They run in a task of their own, which the request
/// stops waiting for after `sql.timeout`: a table too large to count within that is still
/// counted, and room made, rather than never.
const COUNT_FOR: Duration = Duration::from_secs(60);
/// How many batches one sweep deletes at most: the next sweep goes on.
const SWEEP_BATCHES: usize = 100;

/// Sessions in a SQL database table: for apps that already run PostgreSQL, MySQL or
/// MariaDB, or that want sessions to survive restarts in an SQLite file without a server.
/// [`PostgresStore`](crate::store::PostgresStore), [`SqliteStore`](crate::store::SqliteStore) and
/// [`MySqlStore`](crate::store::MySqlStore) name its three kinds.
///
/// - **One row a session**, keyed by the SHA-256 of its id (a dump of the table hands out
///   no usable cookie): its entries as a JSON object, its lifetime, its expiry in
///   milliseconds since the Unix epoch, and whether a user is logged in.
/// - **One statement to load and one to commit.** A commit merges only the changed
///   entries into the row (PostgreSQL's `jsonb` `||` and `-`, SQLite's `json_patch`,
///   MySQL's and MariaDB's `JSON_MERGE_PATCH`) and does nothing when the session is gone
///   or expired, so concurrent requests that change different entries both keep their
///   change, and a deleted session never comes back. On MySQL and MariaDB, creating and
///   touching a session take two statements (neither has `UPDATE ... RETURNING`, and
///   sqlx reads matched rather than changed rows).
/// - **Its table** is created at launch when missing (`create_table = false` leaves it to
///   your migrations), with an index on expiry. Expired rows are deleted in the
///   background every `sweep_interval`, 1,000 at a time, never in one huge `DELETE`.
/// - **Bounded** by `max_sessions`, and a stranger only displaces strangers: a creation
///   that finds the store's count at the cap (its first creation, after a start) counts
///   the table and deletes the anonymous sessions closest to expiry; a new anonymous
///   session never deletes a signed-in one (when signed-in sessions fill the table it is
///   refused, [`StoreError::Full`], a `503`), and a sign-in deletes the signed-in ones
///   closest to expiry only then. The sweep deletes anonymous ones alone. Each creation
///   takes its place in the count before it writes, so one instance holds the cap
///   however many creations arrive at once. The cap is the table's, shared by every
///   instance, but each counts it only when its own count reaches the cap: several
///   instances may pass it by what the others created since their last count. Users'
///   lists of sessions are outside the cap: they live only as long as their sessions
///   need.
/// - **Bounded in time**: a request whose statements take longer than `timeout` together
///   (waiting for a connection included) answers `503`; the pool reconnects by itself.
/// - **An SQLite file is its user's alone** (on Unix): [`connect`](Self::connect) creates
///   a missing database file `0600` whatever the umask, before SQLite opens it, and SQLite
///   gives its `-wal` and `-shm` files the database file's mode. It refuses a database, or
///   a `-wal`, `-shm` or `-journal` file beside it, that group or others may read or write,
///   naming `sql.url`: `chmod 600` them. It creates no directory. In-memory databases
///   have no file, and a pool given to [`with_pool`](Self::with_pool) is the app's own.
///
/// # Example
///
/// ```no_run
/// # #[cfg(feature = "sqlite")]
/// # async fn run() -> Result<(), rocket_server_sessions::Error> {
/// use rocket_server_sessions::{Sessions, config::SessionConfig, store::SqliteStore};
///
/// let mut config = SessionConfig::default();
/// config.sql.url = Some("sqlite://sessions.db".into());
/// let store = SqliteStore::connect(&config.sql).await?;
/// let rocket = rocket::build().attach(Sessions::builder().store(store).build());
/// # Ok(()) }
/// ```
pub struct SqlStore<D: Dialect> {
    inner: Arc<Inner<D>>,
    sweeper: Arc<Sweeper>,
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        SqlStore {
            inner: self.inner.clone(),
            sweeper: self.sweeper.clone(),
        }
    }
}

struct Inner<D: Dialect> {
    pool: D::Pool,
    sql: D::Sql,
    timeout: Duration,
    cap: usize,
    /// The sessions in the table (lists aside), as the last count found them (the cap,
    /// before the first), plus those this store admitted since: when it reaches the cap,
    /// a creation counts the table and makes room first. A creation is admitted before it
    /// writes, one at a time, so creations at once cannot all find room.
    count: AtomicUsize,
    /// The admitted creations in flight, anonymous and signed in: counted in `count`, not
    /// yet in the table.
    creating: [AtomicUsize; 2],
    /// When a count last found signed-in sessions filling the table and refused a
    /// stranger (milliseconds on the store's clock, 0 for never): for a second after,
    /// strangers are refused at once while the count is at the cap, rather than each
    /// running a count of the whole table, one at a time, ahead of the sign-ins.
    refused_at: AtomicU64,
    /// Held while a creation is admitted, and while the table is counted and room made:
    /// one count at a time, so that a burst of creations at the cap (or right after a
    /// start) sends one, not one each. The task that counts holds it to its end.
    counting: Arc<tokio::sync::Mutex<()>>,
}

/// A database the SQL store runs on: its pool, and its statements for each store call.
/// Implemented by [`Postgres`], [`Sqlite`] and [`MySql`]; sealed.
#[rocket::async_trait]
pub trait Dialect: private::Sealed + Send + Sync + Sized + 'static {
    /// The sqlx pool.
    type Pool: Clone + Send + Sync + 'static;
    /// The statements, written for one table.
    #[doc(hidden)]
    type Sql: Send + Sync + 'static;

    /// Checks what `config`'s database keeps outside it before a pool opens it (an
    /// SQLite file's permissions); what is wrong, for a message naming `sql.url`.
    #[doc(hidden)]
    fn prepare(_config: &SqlConfig) -> Result<(), String> {
        Ok(())
    }
    /// Opens a pool on `config`'s database.
    #[doc(hidden)]
    async fn connect(config: &SqlConfig) -> Result<Self::Pool, sqlx::Error>;
    /// The statements for `table`.
    #[doc(hidden)]
    fn statements(table: &str) -> Self::Sql;
    /// Creates the table and its index when missing.
    #[doc(hidden)]
    async fn create_table(pool: &Self::Pool, table: &str) -> Result<(), sqlx::Error>;
    /// The live row `key`: its entries (a JSON object) and lifetime.
    #[doc(hidden)]
    async fn load(
        pool: &Self::Pool,
        sql: &Self::Sql,
        key: &str,
        now: i64,
    ) -> Result<Option<(String, i64)>, sqlx::Error>;
    /// Inserts row `key` unless a live one has it; `true` when inserted.
    #[doc(hidden)]
    async fn create(
        pool: &Self::Pool,
        sql: &Self::Sql,
        row: Row<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error>;
    /// Applies `patch` to the live row `key`; `true` when it did.
    #[doc(hidden)]
    async fn commit(
        pool: &Self::Pool,
        sql: &Self::Sql,
        key: &str,
        patch: &Patch<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error>;
    /// Resets the live row's expiry to `now` + its lifetime; its entries and lifetime.
    #[doc(hidden)]
    async fn touch(
        pool: &Self::Pool,
        sql: &Self::Sql,
        key: &str,
        now: i64,
    ) -> Result<Option<(String, i64)>, sqlx::Error>;
    /// Deletes row `key`; `true` when there was one.
    #[doc(hidden)]
    async fn delete(pool: &Self::Pool, sql: &Self::Sql, key: &str) -> Result<bool, sqlx::Error>;
    /// Deletes up to `batch` rows expired by `now`; how many.
    #[doc(hidden)]
    async fn sweep(
        pool: &Self::Pool,
        sql: &Self::Sql,
        now: i64,
        batch: i64,
    ) -> Result<u64, sqlx::Error>;
    /// How many sessions the table holds, anonymous and signed in (lists aside).
    #[doc(hidden)]
    async fn count(pool: &Self::Pool, sql: &Self::Sql) -> Result<[i64; 2], sqlx::Error>;
    /// Deletes the `n` sessions closest to expiry that are (or are not) `signed_in`,
    /// never a list of a user's sessions.
    #[doc(hidden)]
    async fn evict(
        pool: &Self::Pool,
        sql: &Self::Sql,
        signed_in: bool,
        n: i64,
    ) -> Result<u64, sqlx::Error>;
}

mod private {
    pub trait Sealed {}
}

/// A new row.
#[doc(hidden)]
#[derive(Debug)]
pub struct Row<'a> {
    pub(crate) key: &'a str,
    /// The entries, a JSON object of JSON texts.
    pub(crate) data: String,
    pub(crate) ttl: i64,
    pub(crate) expires: i64,
    pub(crate) signed_in: bool,
}

/// What a commit changes in a row.
#[doc(hidden)]
#[derive(Debug)]
pub struct Patch<'a> {
    changes: &'a Changes,
    /// A new lifetime, and the expiry it makes.
    pub(crate) ttl: Option<(i64, i64)>,
    /// Whether the changes log a user in (`true`) or out.
    pub(crate) signed_in: Option<bool>,
}

impl Patch<'_> {
    /// The set entries, a JSON object of JSON texts.
    pub fn sets(&self) -> String {
        entries_json(self.changes.entries().filter(|(_, value)| value.is_some()))
    }

    /// The removed entries' keys.
    pub fn removals(&self) -> Vec<String> {
        let removed = self.changes.entries().filter(|(_, value)| value.is_none());
        removed.map(|(key, _)| key.to_owned()).collect()
    }

    /// The sets and removals as one JSON merge patch (RFC 7396): removals are `null`.
    pub fn merge(&self) -> String {
        entries_json(self.changes.entries())
    }
}

fn now() -> i64 {
    i64::try_from(crate::time::unix_millis()).unwrap_or(i64::MAX)
}

/// Runs `statement` within `timeout`.
async fn within<T>(
    timeout: Duration,
    statement: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, statement).await {
        Ok(result) => result.map_err(store_error),
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}

fn to_i64(duration: Duration) -> i64 {
    i64::try_from(millis(duration)).unwrap_or(i64::MAX)
}

/// A record's entries as the JSON object a row keeps: entry key to JSON text.
fn entries_json<'a>(entries: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let map: BTreeMap<&str, Option<&str>> = entries.collect();
    serde_json::to_string(&map).expect("a map of strings encodes")
}

/// A record back from a row's entries and lifetime.
fn record_of(data: &str, ttl: i64) -> Result<SessionRecord, StoreError> {
    let entries: BTreeMap<String, String> =
        serde_json::from_str(data).map_err(StoreError::corrupt)?;
    let ttl = u64::try_from(ttl).map_err(|_| StoreError::corrupt("a negative lifetime"))?;
    let mut record = SessionRecord::new(Duration::from_millis(ttl));
    for (key, json) in entries {
        record.insert(key, json);
    }
    Ok(record)
}

/// The options of the pools the store opens: `config`'s size and timeout, and no check
/// of a connection that was just in use. sqlx checks every connection it hands out by
/// default, a round trip before each statement; under load that doubled the round
/// trips. A connection that broke while in use answers one statement with an error (a
/// `503`) and is closed; one that sat idle is still checked.
fn pool_options<DB: sqlx::Database>(config: &SqlConfig) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.timeout)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for < CHECK_WHEN_IDLE_FOR {
                    return Ok(true);
                }
                sqlx::Connection::ping(connection).await.map(|()| true)
            })
        })
}

/// A database error as the store reports it.
fn store_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::corrupt(error),
        error => StoreError::unavailable(error),
    }
}

impl<D: Dialect> SqlStore<D> {
    /// Connects to the database `config` names (`url`, or the `rocket_db_pools`
    /// database `database` once the fairing has read its settings), and creates the
    /// table when missing (unless `create_table` is off).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `sql.url` when the database cannot be reached within
    /// `sql.timeout`, or is an SQLite file (or one of its `-wal`, `-shm` and `-journal`
    /// files) that group or others may read or write; naming `sql.table` when the table
    /// cannot be created.
    pub async fn connect(config: &SqlConfig) -> Result<Self, Error> {
        D::prepare(config).map_err(|e| Error::config("sql.url", e))?;
        let pool = tokio::time::timeout(config.timeout, D::connect(config))
            .await
            .map_err(|_| format!("no answer within {:?}", config.timeout))
            .and_then(|connected| connected.map_err(|e| e.to_string()))
            .map_err(|e| {
                Error::config(
                    "sql.url",
                    format!("could not connect: {e}; is the server running and the URL right?"),
                )
            })?;
        Self::with_pool(pool, config).await
    }

    /// The store on `pool`, a pool of the application's (from `rocket_db_pools`, say), so
    /// that one pool serves the application and its sessions. Creates the table when
    /// missing (unless `config.create_table` is off); reads the rest of `config` but its
    /// `url` and `database`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `sql.table` when the table cannot be created.
    pub async fn with_pool(pool: D::Pool, config: &SqlConfig) -> Result<Self, Error> {
        let sql = config;
        if sql.create_table {
            let created = tokio::time::timeout(sql.timeout, D::create_table(&pool, &sql.table));
            match created.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let message = format!("could not create the table: {e}");
                    return Err(Error::config("sql.table", message));
                }
                Err(_) => {
                    let message = format!("could not create the table within {:?}", sql.timeout);
                    return Err(Error::config("sql.table", message));
                }
            }
        }

        let inner = Arc::new(Inner {
            pool,
            sql: D::statements(&sql.table),
            timeout: sql.timeout,
            cap: sql.max_sessions.max(1),
            // Unknown until counted: the first creation counts the table (after a restart,
            // or beside other instances, it may hold sessions already).
            count: AtomicUsize::new(sql.max_sessions.max(1)),
            creating: Default::default(),
            refused_at: AtomicU64::new(0),
            counting: Arc::default(),
        });
        let sweeper = Sweeper::spawn(&inner, sql.sweep_interval, |inner| async move {
            let removed = inner.sweep().await.unwrap_or_else(|e| {
                log::warn!("could not sweep the session table: {e}");
                0
            });
            usize::try_from(removed).unwrap_or(usize::MAX)
        });
        Ok(SqlStore { inner, sweeper })
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &D::Pool {
        &self.inner.pool
    }

    /// Deletes every expired session now, in batches, then brings the table under
    /// `max_sessions`; returns how many expired sessions it deleted.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database cannot answer.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        self.inner.sweep().await
    }

    fn inner(&self) -> &Arc<Inner<D>> {
        self.sweeper.ensure_running();
        &self.inner
    }
}

impl<D: Dialect> Inner<D> {
    /// Runs `statement` within the timeout.
    async fn bounded<T>(
        &self,
        statement: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        within(self.timeout, statement).await
    }

    async fn sweep(&self) -> Result<u64, StoreError> {
        let mut removed = 0;
        for _ in 0..SWEEP_BATCHES {
            let batch = D::sweep(&self.pool, &self.sql, now(), SWEEP_BATCH);
            let deleted = self.bounded(batch).await?;
            removed += deleted;
            if deleted < SWEEP_BATCH as u64 {
                break;
            }
        }
        self.keep_cap().await?;
        Ok(removed)
    }

    /// Admits one more session of `class` (anonymous or signed in) under the cap: when
    /// the count says the table is full, counts it and makes room first, as
    /// [`evict::room`] says. One admission at a time, so that creations at once cannot all
    /// find room; the place is held until the creation ends.
    ///
    /// # Errors
    ///
    /// [`StoreError::Full`] for a stranger's session when signed-in sessions (and
    /// creations in flight, which are not there to evict) fill the table; a
    /// [`StoreError`] when the database cannot answer.
    async fn admit(self: &Arc<Self>, class: Class) -> Result<Place<'_>, StoreError> {
        let full = || self.count.load(Ordering::Relaxed) >= self.cap;
        let refusing = || {
            let refused_at = self.refused_at.load(Ordering::Relaxed);
            class == Class::Anonymous && full() && evict::refused_lately(refused_at, unix_millis())
        };
        if refusing() {
            return Err(StoreError::Full);
        }
        let counting = self.counting.clone().lock_owned();
        let Ok(mut counting) = tokio::time::timeout(self.timeout, counting).await else {
            return Err(StoreError::Timeout(self.timeout));
        };
        // Again once its turn comes: a stranger that queued behind the count that refused
        // the one before starts no count of its own.
        if refusing() {
            return Err(StoreError::Full);
        }
        if full() {
            // Counted in a task of its own, which holds the lock to its end and hands it
            // back: a count slower than `sql.timeout` still ends, its count kept and room
            // made for the creations after, where each would start it again and give up.
            let waiting = Arc::new(());
            let caller = Arc::downgrade(&waiting);
            let inner = self.clone();
            let count = tokio::spawn(async move {
                let (cap, batch) = (inner.cap, (inner.cap / 64).max(1));
                let mut planned = class;
                let counted = inner
                    .recount(COUNT_FOR.max(inner.timeout), |anonymous, signed_in| {
                        // A creation whose request stopped waiting makes room as a
                        // stranger's would: no signed-in session ends for it.
                        if caller.strong_count() == 0 {
                            planned = Class::Anonymous;
                        }
                        evict::room(planned, anonymous, signed_in, cap, batch)
                    })
                    .await
                    // A stranger finds no room once what may go has gone (the rest held
                    // by creations in flight, not there to evict): refused, so that the
                    // cap does not grow with the creations at once. A sign-in is let in,
                    // one over at most for each stranger's creation in flight.
                    .and_then(|count| match planned {
                        Class::Anonymous if count >= cap => Err(StoreError::Full),
                        _ => Ok(()),
                    });
                if let Err(StoreError::Full) = counted {
                    inner
                        .refused_at
                        .store(unix_millis().max(1), Ordering::Relaxed);
                }
                (counting, counted)
            });
            let Ok(ended) = tokio::time::timeout(self.timeout, count).await else {
                return Err(StoreError::Timeout(self.timeout));
            };
            let (handed_back, counted) = ended.map_err(StoreError::unavailable)?;
            counting = handed_back;
            counted?;
            drop(waiting);
        }
        let creating = &self.creating[usize::from(class == Class::SignedIn)];
        self.count.fetch_add(1, Ordering::Relaxed);
        creating.fetch_add(1, Ordering::SeqCst);
        drop(counting);
        Ok(Place {
            count: &self.count,
            creating,
            kept: false,
        })
    }

    /// Brings the table under its cap, as the sweep does: anonymous sessions alone go.
    async fn keep_cap(&self) -> Result<(), StoreError> {
        // Room may be made: strangers count again.
        self.refused_at.store(0, Ordering::Relaxed);
        let Ok(_counting) = tokio::time::timeout(self.timeout, self.counting.lock()).await else {
            return Err(StoreError::Timeout(self.timeout));
        };
        // Within `sql.timeout`: creations wait for the lock meanwhile, however far under
        // the cap the table is.
        self.recount(self.timeout, |anonymous, signed_in| {
            Some(evict::Evict {
                anonymous: (anonymous + signed_in)
                    .saturating_sub(self.cap)
                    .min(anonymous),
                signed_in: 0,
            })
        })
        .await
        .map(|_| ())
    }

    /// Counts the table (its lock held), evicts what `plan` says for the anonymous and
    /// signed-in sessions it holds, and records the count it leaves, which it returns.
    /// The creations in flight count in their class: they hold their places, though they
    /// are not there to evict (an eviction deletes what it finds).
    async fn recount(
        &self,
        limit: Duration,
        plan: impl FnOnce(usize, usize) -> Option<evict::Evict>,
    ) -> Result<usize, StoreError> {
        let counted = async {
            // The creations in flight before the count: one that ends during it is then
            // counted twice at most, never missed (no other is admitted meanwhile).
            let creating = self.creating.each_ref().map(|n| n.load(Ordering::SeqCst));
            let counts = D::count(&self.pool, &self.sql).await.map_err(store_error)?;
            let [anonymous, signed_in] = counts.map(|n| usize::try_from(n).unwrap_or(0));
            let (anonymous, signed_in) = (anonymous + creating[0], signed_in + creating[1]);
            let mut count = anonymous + signed_in;
            self.count.store(count, Ordering::Relaxed);
            let plan = plan(anonymous, signed_in).ok_or(StoreError::Full)?;
            for (signed_in, wanted) in [(false, plan.anonymous), (true, plan.signed_in)] {
                if wanted == 0 {
                    continue;
                }
                let wanted = i64::try_from(wanted).unwrap_or(i64::MAX);
                let evicted = D::evict(&self.pool, &self.sql, signed_in, wanted).await;
                let evicted = usize::try_from(evicted.map_err(store_error)?).unwrap_or(0);
                count = count.saturating_sub(evicted);
            }
            self.count.store(count, Ordering::Relaxed);
            Ok(count)
        };
        tokio::time::timeout(limit, counted)
            .await
            .unwrap_or(Err(StoreError::Timeout(limit)))
    }
}

/// A place an admitted creation holds in [`Inner::count`] while in flight, given back
/// when dropped unless kept (the session was created).
struct Place<'a> {
    count: &'a AtomicUsize,
    creating: &'a AtomicUsize,
    kept: bool,
}

impl Place<'_> {
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.creating.fetch_sub(1, Ordering::SeqCst);
        if !self.kept {
            let _ = self
                .count
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }
}

/// The session stored under `key`, as the row gives it.
fn loaded(row: Option<(String, i64)>) -> Result<Option<SessionRecord>, StoreError> {
    row.map(|(data, ttl)| record_of(&data, ttl)).transpose()
}

#[rocket::async_trait]
impl<D: Dialect> SessionStore for SqlStore<D> {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let inner = self.inner();
        let key = id.storage_key();
        loaded(
            inner
                .bounded(D::load(&inner.pool, &inner.sql, &key, now()))
                .await?,
        )
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        let inner = self.inner();
        let class = Class::of(record);
        // The place this creation takes under the cap, given back unless it is created.
        let place = match class.counts() {
            true => Some(inner.admit(class).await?),
            false => None,
        };
        let key = id.storage_key();
        let now = now();
        let ttl = to_i64(record.ttl());
        let row = Row {
            key: &key,
            data: entries_json(record.entries().map(|(k, v)| (k, Some(v)))),
            ttl,
            expires: now.saturating_add(ttl),
            signed_in: record.is_authenticated(),
        };
        let created = inner
            .bounded(D::create(&inner.pool, &inner.sql, row, now))
            .await?;
        if !created {
            return Ok(CreateOutcome::Taken);
        }
        if let Some(place) = place {
            place.keep();
        }
        Ok(CreateOutcome::Created)
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        let inner = self.inner();
        let key = id.storage_key();
        let now = now();
        let patch = Patch {
            changes,
            ttl: changes.ttl().map(|ttl| {
                let ttl = to_i64(ttl);
                (ttl, now.saturating_add(ttl))
            }),
            signed_in: changes.authenticates(),
        };
        let applied = D::commit(&inner.pool, &inner.sql, &key, &patch, now);
        Ok(match inner.bounded(applied).await? {
            true => CommitOutcome::Applied,
            false => CommitOutcome::Gone,
        })
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let inner = self.inner();
        let key = id.storage_key();
        loaded(
            inner
                .bounded(D::touch(&inner.pool, &inner.sql, &key, now()))
                .await?,
        )
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        let inner = self.inner();
        let key = id.storage_key();
        let deleted = inner
            .bounded(D::delete(&inner.pool, &inner.sql, &key))
            .await?;
        if !deleted {
            return Ok(DeleteOutcome::Absent);
        }
        let _ = inner
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        Ok(DeleteOutcome::Deleted)
    }

    /// `sql.timeout` bounds a request's statements together.
    fn timeout(&self) -> Option<Duration> {
        Some(self.inner.timeout)
    }

    async fn shutdown(&self) {
        self.sweeper.stop();
    }
}

impl<D: Dialect> std::fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &std::any::type_name::<D>())
            .field("max_sessions", &self.inner.cap)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_a_rows_json() {
        let mut record = SessionRecord::new(Duration::from_millis(1500));
        record.insert("cart", r#"["apple","żółw"]"#);
        record.insert("$user", "\"alice\"");
        let data = entries_json(record.entries().map(|(k, v)| (k, Some(v))));
        assert_eq!(record_of(&data, 1500).unwrap(), record);
        assert!(matches!(record_of("[1]", 5), Err(StoreError::Corrupt(_))));
        assert!(matches!(record_of("{}", -5), Err(StoreError::Corrupt(_))));

        let mut changes = Changes::default();
        changes.set("a", "1");
        changes.remove("b");
        assert_eq!(entries_json(changes.entries()), r#"{"a":"1","b":null}"#);
    }

    /// A SQLite store of cap `cap` in a fresh file (to remove at the end), holding `cap`
    /// sessions, signed in or not.
    #[cfg(feature = "sqlite")]
    async fn full_store(cap: usize, signed_in: bool) -> (SqlStore<Sqlite>, std::path::PathBuf) {
        let file = std::env::temp_dir().join(format!("rss-sql-unit-{}.db", SessionId::generate()));
        let mut config = crate::config::SessionConfig::default();
        config.sql.url = Some(format!("sqlite://{}", file.display()));
        config.sql.max_sessions = cap;
        let store = SqlStore::<Sqlite>::connect(&config.sql).await.unwrap();
        for n in 0..cap {
            let mut record = SessionRecord::new(Duration::from_secs(600));
            match signed_in {
                true => record.insert(crate::record::reserved::USER, format!("\"user-{n}\"")),
                false => record.insert("cart", "[1]"),
            }
            let created = store.create(&SessionId::generate(), &record).await;
            assert_eq!(created.unwrap(), CreateOutcome::Created);
        }
        (store, file)
    }

    /// Polls `admission` once, so that it starts counting the table, and leaves it, as a
    /// request whose `sql.timeout` ran out does; then waits for the count's end.
    #[cfg(feature = "sqlite")]
    async fn left_during_its_count<'a>(
        inner: &'a Arc<Inner<Sqlite>>,
        admission: impl Future<Output = Result<Place<'a>, StoreError>>,
    ) {
        // Boxed, so that dropping it drops the future itself (and the request's wait).
        let mut admission = Box::pin(admission);
        let first = rocket::futures::FutureExt::now_or_never(admission.as_mut());
        assert!(first.is_none(), "admitted without a count");
        drop(admission);
        // The count's task holds the lock to its end.
        drop(inner.counting.lock().await);
    }

    /// How many rows the store's table holds.
    #[cfg(feature = "sqlite")]
    async fn rows(store: &SqlStore<Sqlite>) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM sessions")
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    /// helper-21: a creation at the cap counted the table within its own `sql.timeout`,
    /// and a table slower to count than that was never counted: each creation gave up
    /// first, and none was admitted again. The count of a creation whose request left now
    /// ends, keeps its count and makes room. (One thread: the count's task runs only once
    /// the creation has been left.)
    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "current_thread")]
    async fn a_count_whose_request_left_still_ends_and_makes_room() {
        let (store, file) = full_store(64, false).await;
        let inner = store.inner.clone();
        left_during_its_count(&inner, inner.admit(Class::Anonymous)).await;
        // A batch of strangers went (a 64th of the cap: one), and the count says so.
        assert_eq!(rows(&store).await, 63);
        assert_eq!(inner.count.load(Ordering::Relaxed), 63);
        let _ = std::fs::remove_file(&file);
    }

    /// A stranger that queued for its turn behind the count that refused the one before
    /// starts no count of its own: refused at once.
    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "current_thread")]
    async fn a_stranger_queued_behind_a_refusal_is_refused_at_its_turn() {
        let (store, file) = full_store(64, false).await;
        let inner = store.inner.clone();
        let turn = inner.counting.lock().await;
        let mut admission = Box::pin(inner.admit(Class::Anonymous));
        let first = rocket::futures::FutureExt::now_or_never(admission.as_mut());
        assert!(first.is_none(), "it waits for its turn");
        // The count ahead of it refuses a stranger.
        inner.refused_at.store(unix_millis(), Ordering::Relaxed);
        drop(turn);
        assert!(matches!(admission.await, Err(StoreError::Full)));
        assert_eq!(rows(&store).await, 64, "no count made room");
        let _ = std::fs::remove_file(&file);
    }

    /// A sign-in whose request left during its count ends no signed-in session: the count
    /// makes room as a stranger's would, and in a table full of signed-in sessions finds
    /// none (so strangers are refused at once for a while).
    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "current_thread")]
    async fn a_sign_in_that_left_during_its_count_evicts_no_one() {
        let (store, file) = full_store(20, true).await;
        let inner = store.inner.clone();
        left_during_its_count(&inner, inner.admit(Class::SignedIn)).await;
        assert_eq!(
            rows(&store).await,
            20,
            "a signed-in session ended for no one"
        );
        let refused_at = inner.refused_at.load(Ordering::Relaxed);
        assert!(evict::refused_lately(refused_at, unix_millis()));
        let _ = std::fs::remove_file(&file);
    }

    /// helper-21: the creations in flight were counted as signed in, so a stranger's
    /// creation admitted but not yet written made a sign-in into a table nearly full of
    /// signed-in sessions evict one of them; once the stranger's landed, the table held
    /// it while a user had been signed out. Each now counts in its own class.
    #[cfg(feature = "sqlite")]
    #[rocket::async_test]
    async fn a_strangers_creation_in_flight_never_makes_a_sign_in_evict_a_signed_in_session() {
        let file = std::env::temp_dir().join(format!("rss-sql-unit-{}.db", SessionId::generate()));
        let mut config = crate::config::SessionConfig::default();
        config.sql.url = Some(format!("sqlite://{}", file.display()));
        config.sql.max_sessions = 20;
        let store = SqlStore::<Sqlite>::connect(&config.sql).await.unwrap();
        let signed_in = |user: &str| {
            let mut record = SessionRecord::new(Duration::from_secs(600));
            record.insert(crate::record::reserved::USER, format!("\"{user}\""));
            record
        };
        let mut users = Vec::new();
        for n in 0..19 {
            let id = SessionId::generate();
            let created = store.create(&id, &signed_in(&format!("user-{n}"))).await;
            assert_eq!(created.unwrap(), CreateOutcome::Created);
            users.push(id);
        }

        // A stranger's creation admitted, its row not written yet: the last place.
        let inner = store.inner.clone();
        let in_flight = inner.admit(Class::Anonymous).await.unwrap();

        // A sign-in goes one over rather than end a signed-in session.
        let bob = SessionId::generate();
        let created = store.create(&bob, &signed_in("bob")).await;
        assert_eq!(created.unwrap(), CreateOutcome::Created);
        for id in users.iter().chain([&bob]) {
            assert!(
                store.load(id).await.unwrap().is_some(),
                "a signed-in session ended"
            );
        }
        // Another stranger finds no room: the in-flight one holds the last anonymous place.
        let mut cart = SessionRecord::new(Duration::from_secs(600));
        cart.insert("cart", "[1]");
        let refused = store.create(&SessionId::generate(), &cart).await;
        assert!(matches!(refused, Err(StoreError::Full)), "{refused:?}");
        drop(in_flight);
        let _ = std::fs::remove_file(&file);
    }
}
