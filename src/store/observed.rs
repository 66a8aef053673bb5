//! A store whose outages are logged: one line when it starts failing, one when it answers
//! again, whatever the number of requests in between.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use rocket::log::private as log;

use super::{CommitOutcome, CreateOutcome, DeleteOutcome, SessionStore};
use crate::error::chain;
use crate::metrics::Timer;
use crate::{Changes, SessionId, SessionRecord, StoreError};

/// Wraps the store the fairing uses: every call goes through it, and only calls report
/// on the store's health. A request that makes no call (a route without a session guard,
/// or one whose load already failed) says nothing about it.
pub(crate) struct Observed {
    store: Arc<dyn SessionStore>,
    /// The store's name in metrics: `sessions.store`'s, or `"custom"`.
    name: &'static str,
    outage: Outage,
}

/// Whether the last store call failed.
struct Outage {
    failing: AtomicBool,
    /// When a refusal of a full store was last logged, in seconds since `Outage::since`:
    /// one line a second at most under a flood.
    full_logged: AtomicU64,
    since: std::time::Instant,
}

impl Default for Outage {
    fn default() -> Self {
        Outage {
            failing: AtomicBool::new(false),
            full_logged: AtomicU64::new(u64::MAX),
            since: std::time::Instant::now(),
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
    pub(crate) fn new(store: Arc<dyn SessionStore>, name: &'static str) -> Self {
        Observed {
            store,
            name,
            outage: Outage::default(),
        }
    }

    /// The store itself. (`self.store.load(..)` would take `Arc<dyn SessionStore>`'s own
    /// impl, which boxes every call's future a second time.)
    fn inner(&self) -> &dyn SessionStore {
        &*self.store
    }

    /// Runs the store call `call`, counting and timing it.
    async fn call<T>(
        &self,
        call: &'static str,
        run: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let timer = Timer::start();
        let result = run.await;
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

/// Every call of the fairing, its guards and the lists of users' sessions goes through
/// here: counted, timed, and watched for outages.
#[rocket::async_trait]
impl SessionStore for Observed {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.call("load", self.inner().load(id)).await
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        self.call("create", self.inner().create(id, record)).await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        self.call("commit", self.inner().commit(id, changes)).await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.call("touch", self.inner().touch(id)).await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        self.call("delete", self.inner().delete(id)).await
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
                let second = self.since.elapsed().as_secs();
                if self.full_logged.swap(second, Ordering::Relaxed) != second {
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
