//! The [`SessionStore`] trait and the stores that implement it.
//!
//! A store keeps session records between requests. It knows nothing of requests or
//! cookies: the fairing calls it with a verified [`SessionId`] and a record or a set of
//! [`Changes`]. Every store, built in or your own, passes the same conformance suite: the
//! store test kit, [`testing`](crate::testing) (feature `testing`).
//!
//! # A custom store
//!
//! This store keeps records in a `HashMap` behind a lock. It is complete: expiry is enforced
//! on read, `create` never overwrites, `commit` writes only the changed entries and fails
//! for a session that no longer exists, and `touch` never rewrites data.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::{Duration, Instant};
//!
//! use rocket_server_sessions::store::{CommitOutcome, CreateOutcome, DeleteOutcome};
//! use rocket_server_sessions::store::{Changes, SessionId, SessionRecord, SessionStore, StoreError};
//!
//! #[derive(Default)]
//! struct MapStore(Mutex<HashMap<SessionId, (SessionRecord, Instant)>>);
//!
//! impl MapStore {
//!     /// Runs `f` on the live record of `id`, dropping it first if it has expired.
//!     fn with_live<R>(&self, id: &SessionId, f: impl FnOnce(&mut SessionRecord, &mut Instant) -> R) -> Option<R> {
//!         let mut map = self.0.lock().unwrap();
//!         if map.get(id).is_some_and(|(_, expires)| *expires <= Instant::now()) {
//!             map.remove(id);
//!         }
//!         map.get_mut(id).map(|(record, expires)| f(record, expires))
//!     }
//! }
//!
//! #[rocket::async_trait]
//! impl SessionStore for MapStore {
//!     async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
//!         Ok(self.with_live(id, |record, _| record.clone()))
//!     }
//!
//!     async fn create(&self, id: &SessionId, record: &SessionRecord) -> Result<CreateOutcome, StoreError> {
//!         if self.with_live(id, |_, _| ()).is_some() {
//!             return Ok(CreateOutcome::Taken);
//!         }
//!         let expires = Instant::now() + record.ttl();
//!         self.0.lock().unwrap().insert(id.clone(), (record.clone(), expires));
//!         Ok(CreateOutcome::Created)
//!     }
//!
//!     async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
//!         let applied = self.with_live(id, |record, expires| {
//!             record.apply(changes);
//!             if let Some(ttl) = changes.ttl() {
//!                 *expires = Instant::now() + ttl;
//!             }
//!         });
//!         Ok(applied.map_or(CommitOutcome::Gone, |()| CommitOutcome::Applied))
//!     }
//!
//!     async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
//!         Ok(self.with_live(id, |record, expires| {
//!             *expires = Instant::now() + record.ttl();
//!             record.clone()
//!         }))
//!     }
//!
//!     async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
//!         Ok(match self.0.lock().unwrap().remove(id) {
//!             Some(_) => DeleteOutcome::Deleted,
//!             None => DeleteOutcome::Absent,
//!         })
//!     }
//! }
//!
//! // Use it with `Sessions::builder().store(MapStore::default()).build()`, after checking
//! // it against every rule of the store contract (the store test kit, feature `testing`):
//! # #[cfg(feature = "testing")]
//! rocket::async_test(async {
//!     use rocket_server_sessions::testing::{check_store, Store};
//!     check_store(|| async { std::sync::Arc::new(MapStore::default()) as Store }).await;
//! });
//! ```

mod budget;
mod contract;
mod evict;
#[cfg(all(feature = "file", unix))]
mod file;
mod memory;
mod observed;
mod open;
#[cfg(feature = "redis")]
mod redis;
mod sealed;
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]
pub mod sql;
mod sweep;
pub(crate) mod users;

pub use crate::error::StoreError;
pub use crate::id::SessionId;
pub use crate::record::{Changes, SessionRecord, FORMAT_VERSION};
pub use contract::{CommitOutcome, CreateOutcome, DeleteOutcome, SessionStore};
pub(crate) use observed::{Observed, RequestStore};
pub(crate) use open::open;
#[cfg(any(test, feature = "testing"))]
pub(crate) use sealed::Sealed;
pub(crate) use sealed::Sealer;

#[cfg(all(feature = "file", unix))]
pub use file::FileStore;
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
pub use users::UserSession;

/// Sessions in MySQL or MariaDB (feature `mysql`): see [`sql::SqlStore`].
#[cfg(feature = "mysql")]
pub type MySqlStore = sql::SqlStore<sql::MySql>;
/// Sessions in PostgreSQL (feature `postgres`): see [`sql::SqlStore`].
#[cfg(feature = "postgres")]
pub type PostgresStore = sql::SqlStore<sql::Postgres>;
/// Sessions in an SQLite database file (feature `sqlite`), created `0600`; one that
/// others may read stops launch: see [`sql::SqlStore`].
#[cfg(feature = "sqlite")]
pub type SqliteStore = sql::SqlStore<sql::Sqlite>;

/// Refuses a record written in a layout this version does not know.
#[cfg(feature = "redis")]
pub(crate) fn check_version(version: u64) -> Result<(), StoreError> {
    if version == u64::from(crate::record::FORMAT_VERSION) {
        Ok(())
    } else {
        Err(StoreError::corrupt(format!(
            "unknown record format version {version}"
        )))
    }
}
