//! The store contract: the [`SessionStore`] trait and the outcomes of its calls.

use std::sync::Arc;
use std::time::Duration;

use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, SessionRecord};

/// What [`SessionStore::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum CreateOutcome {
    /// The session is stored.
    Created,
    /// A live session holds the id already; nothing was written.
    Taken,
}

/// What [`SessionStore::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum CommitOutcome {
    /// The changes are written.
    Applied,
    /// The session no longer exists (deleted, or expired); nothing was written.
    Gone,
}

/// What [`SessionStore::delete`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum DeleteOutcome {
    /// The store held the session (readable or not), and it is gone now.
    Deleted,
    /// There was nothing to delete: the session was already gone, or never there.
    Absent,
}

/// Where sessions live between requests.
///
/// Implement it with `#[rocket::async_trait]`. The fairing holds the store as
/// `Arc<dyn SessionStore>` and calls it at most once to load and once to commit per request.
///
/// Rules every store keeps (and the store test kit, [`testing`](crate::testing), checks):
/// - An expired session is absent: `load`, `commit` and `touch` behave as if it never was.
/// - [`create`](Self::create) never overwrites an existing session.
/// - [`commit`](Self::commit) writes only the changed entries, so concurrent requests that
///   change different entries both keep their change, and it never brings back a session
///   that was deleted or has expired.
/// - [`touch`](Self::touch) resets the expiry and never rewrites data.
/// - [`delete`](Self::delete) answers [`Deleted`](DeleteOutcome::Deleted) for a session
///   it held and [`Absent`](DeleteOutcome::Absent) once it is gone, or for an id it never
///   had.
///
/// The [`store` module documentation](crate::store) shows a complete custom store.
#[rocket::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Loads the live session `id`.
    ///
    /// # Errors
    ///
    /// `Ok(None)` when there is no such session or it has expired;
    /// [`StoreError::Corrupt`] when the stored bytes cannot be read back; another
    /// [`StoreError`] when the store cannot answer.
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Stores a new session `id` that expires `record.ttl()` from now.
    ///
    /// # Errors
    ///
    /// [`CreateOutcome::Taken`], with nothing written, when a live session `id` exists
    /// already; a [`StoreError`] when the store cannot answer.
    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError>;

    /// Applies `changes` to the live session `id`, entry by entry. When `changes.ttl()` is
    /// set, the session's lifetime becomes that and its expiry is reset to now + that;
    /// otherwise the expiry stays as it was.
    ///
    /// # Errors
    ///
    /// [`CommitOutcome::Gone`], with nothing written, when session `id` does not exist (it
    /// was deleted or has expired); a [`StoreError`] when the store cannot answer.
    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError>;

    /// Resets the expiry of the live session `id` to now + its lifetime, without
    /// rewriting its data, and returns the session as it is: `rolling` refreshes a
    /// session this way on a route that never loaded it, and its record says what the
    /// cookie sent with it should be.
    ///
    /// # Errors
    ///
    /// `Ok(None)` when session `id` does not exist; [`StoreError::Corrupt`] when its record
    /// cannot be read back; another [`StoreError`] when the store cannot answer.
    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Deletes session `id`, and says whether the store still held a record under it
    /// (unreadable ones count; one already dropped for expiry need not): the fairing
    /// expires a destroyed session's cookie only then, because a cookie whose session was
    /// already gone may be older than the one the browser holds now. Deleting a session
    /// that does not exist is not an error.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot answer.
    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError>;

    /// How long one request may wait on this store, all its calls together: the fairing
    /// runs a request's calls (its guard's load, its commit, a listing of the user's
    /// sessions) within it, and a request that runs out answers `503 Service
    /// Unavailable`, at once, with [`StoreError::Timeout`]. Only time inside the calls
    /// counts, not the handler's. `None`, the default: no bound but the store's own.
    ///
    /// The Redis, SQL and file stores answer their `timeout` setting; a store of your own that
    /// bounds its calls should answer its bound, or a request of several calls may wait
    /// that bound several times over.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use rocket_server_sessions::store::{MemoryStore, SessionStore};
    ///
    /// // The memory store never waits on anything: no bound.
    /// assert_eq!(MemoryStore::default().timeout(), None);
    /// // A store of yours that gives up after half a second:
    /// // fn timeout(&self) -> Option<Duration> { Some(Duration::from_millis(500)) }
    /// ```
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Stops the store's background work: the fairing calls it once, when Rocket shuts
    /// down. Rocket calls it *before* the requests in flight end (they have the grace
    /// period to finish), so the store must go on answering them: stop what runs on its
    /// own, not what requests need. The default does nothing.
    ///
    /// The memory, file and SQL stores stop their sweeps. Connections (an SQL pool, Redis
    /// connections) close when Rocket drops the store, after the grace period.
    ///
    /// # Example
    ///
    /// ```
    /// use rocket_server_sessions::store::{MemoryStore, SessionStore};
    ///
    /// # rocket::async_test(async {
    /// let store = MemoryStore::default();
    /// store.shutdown().await; // its sweep ends; the sessions it holds stay readable
    /// # });
    /// ```
    async fn shutdown(&self) {}

    /// Whether the store keeps sessions where others may read them (a disk, a server): then
    /// the fairing seals every entry's value before it reaches the store, under a key of
    /// the session's own, derived from its id and the secrets (SECURITY.md, "Data at
    /// rest"). `true` unless the store
    /// keeps them in this process's memory alone, as [`MemoryStore`](crate::store::MemoryStore)
    /// does.
    fn at_rest(&self) -> bool {
        true
    }
}

/// A shared store is a store: the application can keep a handle on the store its
/// sessions live in, or hand one store to several fairings.
///
/// ```
/// use std::sync::Arc;
/// use rocket_server_sessions::{Sessions, store::{MemoryStore, SessionStore}};
///
/// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
/// let sessions = Sessions::builder().store(store.clone()).build();
/// ```
#[rocket::async_trait]
impl<S: SessionStore + ?Sized> SessionStore for Arc<S> {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        (**self).load(id).await
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        (**self).create(id, record).await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        (**self).commit(id, changes).await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        (**self).touch(id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        (**self).delete(id).await
    }

    fn timeout(&self) -> Option<Duration> {
        (**self).timeout()
    }

    async fn shutdown(&self) {
        (**self).shutdown().await
    }

    fn at_rest(&self) -> bool {
        (**self).at_rest()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    #[cfg(all(feature = "file", unix))]
    use crate::config::SessionConfig;
    #[cfg(all(feature = "file", unix))]
    use crate::store::FileStore;
    use crate::store::MemoryStore;

    /// One call to a store, on one of four sessions.
    #[derive(Debug, Clone)]
    enum Op {
        Create(usize, Vec<(String, String)>),
        Commit(usize, Vec<(String, Option<String>)>),
        Touch(usize),
        Delete(usize),
        Load(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let session = 0usize..4;
        let key = "[a-c]";
        prop_oneof![
            (
                session.clone(),
                proptest::collection::vec((key, "[0-9]{1,3}"), 0..3)
            )
                .prop_map(|(i, entries)| Op::Create(i, entries)),
            (
                session.clone(),
                proptest::collection::vec((key, proptest::option::of("[0-9]{1,3}")), 0..3)
            )
                .prop_map(|(i, changes)| Op::Commit(i, changes)),
            session.clone().prop_map(Op::Touch),
            session.clone().prop_map(Op::Delete),
            session.prop_map(Op::Load),
        ]
    }

    /// Runs `ops` on `store` and on a model of the contract (no session expires in the
    /// run): `create` never overwrites, `commit` changes only its entries and never brings
    /// back a deleted session, `delete` says whether it held the session.
    async fn agrees_with_the_model(store: &dyn SessionStore, ops: Vec<Op>) {
        const TTL: Duration = Duration::from_secs(600);
        let ids: Vec<SessionId> = (0..4).map(|_| SessionId::generate()).collect();
        let mut model: HashMap<usize, SessionRecord> = HashMap::new();
        for op in ops {
            match op {
                Op::Create(i, entries) => {
                    let mut record = SessionRecord::new(TTL);
                    for (key, value) in entries {
                        record.insert(key, value);
                    }
                    let created = store.create(&ids[i], &record).await.unwrap();
                    let expected = match model.contains_key(&i) {
                        true => CreateOutcome::Taken,
                        false => CreateOutcome::Created,
                    };
                    assert_eq!(created, expected, "create {i}");
                    model.entry(i).or_insert(record);
                }
                Op::Commit(i, entries) => {
                    let mut changes = Changes::default();
                    for (key, value) in entries {
                        match value {
                            Some(value) => changes.set(key, value),
                            None => changes.remove(key),
                        }
                    }
                    let applied = store.commit(&ids[i], &changes).await.unwrap();
                    let expected = match model.contains_key(&i) {
                        true => CommitOutcome::Applied,
                        false => CommitOutcome::Gone,
                    };
                    assert_eq!(applied, expected, "commit {i}");
                    if let Some(record) = model.get_mut(&i) {
                        record.apply(&changes);
                    }
                }
                Op::Touch(i) => {
                    let touched = store.touch(&ids[i]).await.unwrap();
                    assert_eq!(touched.as_ref(), model.get(&i), "touch {i}");
                }
                Op::Delete(i) => {
                    let held = store.delete(&ids[i]).await.unwrap();
                    let expected = match model.remove(&i) {
                        Some(_) => DeleteOutcome::Deleted,
                        None => DeleteOutcome::Absent,
                    };
                    assert_eq!(held, expected, "delete {i}");
                }
                Op::Load(i) => {
                    let loaded = store.load(&ids[i]).await.unwrap();
                    assert_eq!(loaded.as_ref(), model.get(&i), "load {i}");
                }
            }
        }
    }

    fn run(ops: Vec<Op>, store: impl SessionStore) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(agrees_with_the_model(&store, ops));
    }

    proptest! {
        #![proptest_config(crate::proptest_cases::config())]

        #[test]
        fn prop_the_memory_store_keeps_the_contract(ops in proptest::collection::vec(op(), 1..40)) {
            run(ops, MemoryStore::default());
        }

        #[cfg(all(feature = "file", unix))]
        #[test]
        fn prop_the_file_store_keeps_the_contract(ops in proptest::collection::vec(op(), 1..40)) {
            let mut config = SessionConfig::default();
            config.file.dir = std::env::temp_dir()
                .join(format!("rss-prop-{}", SessionId::generate()));
            let dir = config.file.dir.clone();
            run(ops, FileStore::open(&config.file, config.max_session_size).unwrap());
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
