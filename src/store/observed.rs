//! A store whose outages are logged: one line when it starts failing, one when it answers
//! again, whatever the number of requests in between. Each request reaches it through a
//! [`RequestStore`], which runs the request's calls within one [`Budget`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocket::log::private as log;

use super::budget::Budget;
use super::sealed::{Sealer, SessionCipher};
use super::{CommitOutcome, CreateOutcome, DeleteOutcome, SessionStore};
use crate::error::StoreError;
use crate::error::{chain, Throttle};
use crate::id::SessionId;
use crate::metrics::Timer;
use crate::record::{Changes, SessionRecord};

/// Wraps the store the fairing uses: every call goes through it, and only calls report
/// on the store's health. A request that makes no call (a route without a session guard,
/// or one whose load already failed) says nothing about it.
#[derive(Clone)]
pub(crate) struct Observed {
    store: Arc<dyn SessionStore>,
    /// Seals every value on its way in and opens it on its way out, for a store that
    /// keeps sessions at rest ([`SessionStore::at_rest`]).
    sealer: Option<Arc<Sealer>>,
    /// The store's name in metrics: `sessions.store`'s, or `"custom"`.
    name: &'static str,
    /// The store's [`timeout`](SessionStore::timeout): each request's budget.
    timeout: Option<Duration>,
    outage: Arc<Outage>,
}

/// The store as one request sees it: every call counted, timed and watched as
/// [`Observed`]'s, and all of them together within the store's timeout (see [`Budget`]).
///
/// It lives as long as the request's session (or, on a route without a session guard, the
/// `rolling` touch), shared by its guards and its commit, so it is not behind an `Arc` of
/// its own; and its calls are plain `async fn`s, so the fairing's calls
/// box no future of theirs (its [`SessionStore`] impl, for the lists of users' sessions,
/// does).
pub(crate) struct RequestStore {
    store: Observed,
    budget: Budget,
    /// The cipher of the session the request last sealed or opened: a load and the
    /// commit after it derive its key and build its cipher once.
    cipher: Mutex<Option<SessionCipher>>,
}

/// Whether the last store call failed.
struct Outage {
    failing: AtomicBool,
    /// The refusals of a full store: one line a second at most under a flood.
    full: Throttle,
}

impl Default for Outage {
    fn default() -> Self {
        Outage {
            failing: AtomicBool::new(false),
            full: Throttle::new(),
        }
    }
}

/// What a store call's outcome changed about an outage.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Started,
    Ended,
    Same,
}

impl Observed {
    /// Stops the store's background work and closes its connections (Rocket's shutdown).
    pub(crate) async fn shutdown(&self) {
        self.store.shutdown().await;
    }

    /// `store`, named `name` in metrics, whose values `sealer` seals when it keeps them at
    /// rest ([`SessionStore::at_rest`]).
    pub(crate) fn new(store: Arc<dyn SessionStore>, name: &'static str, sealer: Sealer) -> Self {
        Observed {
            timeout: store.timeout(),
            sealer: store.at_rest().then(|| Arc::new(sealer)),
            store,
            name,
            outage: Arc::default(),
        }
    }

    /// The store for one request, with the whole of its budget.
    pub(crate) fn for_request(&self) -> RequestStore {
        RequestStore {
            store: self.clone(),
            budget: Budget::new(self.timeout),
            cipher: Mutex::new(None),
        }
    }

    /// The store itself. (`self.store.load(..)` would take `Arc<dyn SessionStore>`'s own
    /// impl, which boxes every call's future a second time.)
    fn inner(&self) -> &dyn SessionStore {
        &*self.store
    }

    /// What the store call `call`, timed by `timer`, answered: counted, timed, and watched
    /// for an outage. Not an `async fn` around the call: each layer of those would hold its
    /// callee's future twice (its argument, then what it awaits), and a request's futures
    /// would outgrow the allocator's fast sizes.
    fn answered<T>(
        &self,
        call: &'static str,
        timer: Timer,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(StoreError::Unavailable(_)) => "unavailable",
            Err(StoreError::Timeout(_)) => "timeout",
            Err(StoreError::Full) => "full",
            Err(StoreError::Corrupt(_)) => "corrupt",
        };
        timer.store_call(self.name, call, outcome);
        self.outage.observe(result)
    }
}

impl RequestStore {
    /// Runs the store call `call` within what is left of the request's budget, counting
    /// and timing it (a call refused for a spent budget counts as a timeout).
    async fn call<T>(
        &self,
        call: &'static str,
        run: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let timer = Timer::start();
        let result = self.budget.run(run).await;
        self.store.answered(call, timer, result)
    }

    /// `seal` run with session `id`'s cipher, when the store seals at rest.
    fn sealing<R>(
        &self,
        id: &SessionId,
        seal: impl FnOnce(&Sealer, &mut SessionCipher) -> R,
    ) -> Option<R> {
        let sealer = self.store.sealer.as_deref()?;
        Some(self.with_cipher(sealer, id, |cipher| seal(sealer, cipher)))
    }

    /// `run` with session `id`'s cipher under `sealer`: the request's cached one, or a
    /// new one it caches.
    fn with_cipher<R>(
        &self,
        sealer: &Sealer,
        id: &SessionId,
        run: impl FnOnce(&mut SessionCipher) -> R,
    ) -> R {
        let mut cached = self.cipher.lock().unwrap_or_else(|e| e.into_inner());
        let cipher = match &mut *cached {
            Some(cipher) if cipher.is_for(id) => cipher,
            other => other.insert(sealer.cipher(id)),
        };
        run(cipher)
    }

    /// Session `id`'s `record` as the store gave it, opened.
    fn opened(
        &self,
        id: &SessionId,
        record: Option<SessionRecord>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        match (record, self.store.sealer.as_deref()) {
            (Some(record), Some(sealer)) => self
                .with_cipher(sealer, id, |cipher| sealer.open_record(cipher, record))
                .map(Some),
            (record, _) => Ok(record),
        }
    }
}

/// Every call of the fairing, its guards and the lists of users' sessions goes through
/// here: counted, timed, watched for outages, and bounded by the request's budget.
impl RequestStore {
    pub(crate) async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let record = self.call("load", self.store.inner().load(id)).await?;
        self.opened(id, record)
    }

    /// Creates session `id` with `record`, owned: a store that seals at rest seals it in
    /// place. The record comes back with the outcome, opened again when the id was taken
    /// (for a retry under another id; a record sealed here always opens).
    pub(crate) async fn create(
        &self,
        id: &SessionId,
        mut record: SessionRecord,
    ) -> Result<(CreateOutcome, SessionRecord), StoreError> {
        let outcome = self.create_sealed(id, &mut record).await?;
        if let (CreateOutcome::Taken, Some(sealer)) = (&outcome, self.store.sealer.as_deref()) {
            record = self.with_cipher(sealer, id, |cipher| sealer.open_record(cipher, record))?;
        }
        Ok((outcome, record))
    }

    /// Creates session `id` with `record`, which a store that seals at rest seals in
    /// place first (and leaves sealed).
    async fn create_sealed(
        &self,
        id: &SessionId,
        record: &mut SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        self.sealing(id, |sealer, cipher| sealer.seal_record(cipher, record));
        self.call("create", self.store.inner().create(id, record))
            .await
    }

    /// Commits `changes`, owned: a store that seals at rest seals them in place.
    pub(crate) async fn commit(
        &self,
        id: &SessionId,
        mut changes: Changes,
    ) -> Result<CommitOutcome, StoreError> {
        self.sealing(id, |sealer, cipher| {
            sealer.seal_changes(cipher, &mut changes)
        });
        self.call("commit", self.store.inner().commit(id, &changes))
            .await
    }

    pub(crate) async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let record = self.call("touch", self.store.inner().touch(id)).await?;
        self.opened(id, record)
    }

    pub(crate) async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        self.call("delete", self.store.inner().delete(id)).await
    }
}

/// The request's store as the lists of users' sessions take it: the same calls, each
/// future boxed.
#[rocket::async_trait]
impl SessionStore for RequestStore {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        RequestStore::load(self, id).await
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        // Cloned only to be sealed in place; without sealing, passed as it is.
        if self.store.sealer.is_none() {
            return self
                .call("create", self.store.inner().create(id, record))
                .await;
        }
        // Left sealed: a taken id's record is not opened again only to be dropped.
        self.create_sealed(id, &mut record.clone()).await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        if self.store.sealer.is_none() {
            return self
                .call("commit", self.store.inner().commit(id, changes))
                .await;
        }
        RequestStore::commit(self, id, changes.clone()).await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        RequestStore::touch(self, id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        RequestStore::delete(self, id).await
    }

    fn timeout(&self) -> Option<Duration> {
        self.store.timeout
    }
}

impl Outage {
    /// Passes `result` on, logging when the store starts and stops failing.
    fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match (&result, self.change(&result)) {
            (Err(e), Change::Started) => log::error!(
                "the session store failed ({}): session routes answer 503 until it recovers",
                chain(e)
            ),
            (_, Change::Ended) => log::warn!("the session store answers again"),
            (Err(StoreError::Corrupt(_)), _) => {}
            (Err(StoreError::Full), _) => {
                if self.full.allow() {
                    log::warn!(
                        "the session store is full of signed-in sessions: new anonymous \
                         sessions answer 503 (raise max_sessions, or shorten max_age)"
                    );
                }
            }
            (Err(e), _) => log::debug!("the session store failed again: {e}"),
            (Ok(_), _) => {}
        }

        result
    }

    fn change<T>(&self, result: &Result<T, StoreError>) -> Change {
        match result {
            // A record the store returned but we cannot read: the store answered.
            Err(StoreError::Corrupt(_) | StoreError::Full) | Ok(_)
                // A plain load first: no shared write on every call while all is well.
                if self.failing.load(Ordering::Relaxed)
                    && self.failing.swap(false, Ordering::Relaxed) =>
            {
                Change::Ended
            }
            Err(StoreError::Corrupt(_) | StoreError::Full) | Ok(_) => Change::Same,
            Err(_) if !self.failing.swap(true, Ordering::Relaxed) => Change::Started,
            Err(_) => Change::Same,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_changes_once_when_it_starts_and_once_when_it_ends() {
        let outage = Outage::default();
        let down = || outage.change::<()>(&Err(StoreError::unavailable("refused")));
        let up = || outage.change(&Ok(()));
        let corrupt = || outage.change::<()>(&Err(StoreError::corrupt("bad bytes")));

        assert_eq!([up(), corrupt()], [Change::Same, Change::Same]);
        assert_eq!(down(), Change::Started);
        assert!(
            (0..50).all(|_| down() == Change::Same),
            "one line per outage"
        );
        assert_eq!(down(), Change::Same);
        // A corrupt record came from a store that answered.
        assert_eq!(corrupt(), Change::Ended);
        assert!((0..50).all(|_| up() == Change::Same));
        assert_eq!(down(), Change::Started, "a second outage is logged");
        assert_eq!(up(), Change::Ended);
    }
}

#[cfg(all(test, feature = "file", unix))]
mod sealing_tests {
    use std::time::Duration;

    use super::*;
    use crate::config::SessionConfig;
    use crate::id::{label, Signer};
    use crate::store::FileStore;

    #[rocket::async_test]
    async fn a_create_seals_in_place_and_a_taken_id_hands_the_record_back_in_the_clear() {
        let mut config = SessionConfig::default();
        config.file.dir = std::env::temp_dir().join(format!("rss-obs-{}", SessionId::generate()));
        let file = Arc::new(FileStore::open(&config.file, config.max_session_size).unwrap());
        let keys = Arc::new(Signer::new(&["secret"], label::DATA).unwrap());
        let observed = Observed::new(file.clone(), "file", Sealer::new(keys, false));
        let (id, mut record) = (
            SessionId::generate(),
            SessionRecord::new(Duration::from_secs(60)),
        );
        record.insert("cart", "[\"pear\"]");

        let request = observed.for_request();
        let (outcome, _) = request.create(&id, record.clone()).await.unwrap();
        assert_eq!(outcome, CreateOutcome::Created);
        let at_rest = file.load(&id).await.unwrap().unwrap();
        assert!(at_rest.get("cart").unwrap().starts_with("s2:"));
        assert_eq!(request.load(&id).await.unwrap(), Some(record.clone()));

        // A second request offers the same id: taken, and its record comes back as given,
        // to be offered again under another id.
        let (outcome, back) = observed
            .for_request()
            .create(&id, record.clone())
            .await
            .unwrap();
        assert_eq!((outcome, back), (CreateOutcome::Taken, record));
        let _ = std::fs::remove_dir_all(&config.file.dir);
    }
}
