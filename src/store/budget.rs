//! The store time one request may spend: a store's timeout bounds a request's calls
//! together, not each of them.
//!
//! A request makes several store calls (its guard's load, its commit's create and list
//! calls, a listing of the user's sessions). Bounding each by the timeout let a request on
//! a slow store wait a multiple of it before its `503`. A [`Budget`] is the request's
//! share: only time inside store calls counts (the handler's own time, a password hash,
//! does not), calls under way at once count once, and once it is spent every further call
//! fails at once with [`StoreError::Timeout`].

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::StoreError;

/// The store time left to one request.
pub(crate) struct Budget {
    /// The store's timeout; `None`: no bound beyond the store's own.
    limit: Option<Duration>,
    clock: Mutex<Clock>,
}

/// What a request has spent of its budget: a clock that runs while at least one of its
/// store calls is under way.
#[derive(Debug, Default)]
struct Clock {
    /// The time spent in store calls, up to the last moment none was under way.
    spent: Duration,
    /// The calls under way.
    calls: usize,
    /// When the calls under way began to run, the first of them: `Some` while any is.
    since: Option<Instant>,
}

impl Clock {
    /// A call of a request whose budget is `limit` begins at `now`: the moment it must
    /// end by, or `None` when the budget is spent (the call is not counted).
    fn begin(&mut self, limit: Duration, now: Instant) -> Option<Instant> {
        let since = self.since.unwrap_or(now);
        let left = limit.saturating_sub(self.spent);
        if now.saturating_duration_since(since) >= left {
            return None;
        }
        self.since = Some(since);
        self.calls += 1;
        // A budget past what `Instant` holds is no bound: a year away is as good.
        Some(
            since
                .checked_add(left)
                .unwrap_or(now + Duration::from_secs(365 * 86_400)),
        )
    }

    /// A call that [`begin`](Self::begin) counted ends at `now`.
    fn end(&mut self, now: Instant) {
        self.calls = self.calls.saturating_sub(1);
        if self.calls == 0 {
            if let Some(since) = self.since.take() {
                self.spent += now.saturating_duration_since(since);
            }
        }
    }
}

impl Budget {
    /// A request's budget of `limit`, the store's timeout: none spent yet.
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Budget {
            limit,
            clock: Mutex::new(Clock::default()),
        }
    }

    /// Runs the store call `call` within the time left.
    ///
    /// # Errors
    ///
    /// [`StoreError::Timeout`], with the whole budget, when the time left runs out before
    /// `call` answers (it is dropped), or is spent already (it never runs); otherwise what
    /// `call` answers.
    pub(crate) async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Some(limit) = self.limit else {
            return call.await;
        };
        let Some(deadline) = self.clock().begin(limit, Instant::now()) else {
            return Err(StoreError::Timeout(limit));
        };
        // Ends the call on the clock however it ends, dropped with the request included.
        let _running = Running(self);
        tokio::time::timeout_at(deadline.into(), call)
            .await
            .unwrap_or(Err(StoreError::Timeout(limit)))
    }

    /// Every change to the clock is a few plain assignments: a poisoned lock is taken as
    /// it is.
    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A call under way on a [`Budget`]'s clock.
struct Running<'a>(&'a Budget);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.clock().end(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(1000);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn calls_one_after_another_share_one_budget() {
        let t0 = Instant::now();
        let mut clock = Clock::default();
        assert_eq!(clock.begin(LIMIT, t0), Some(t0 + ms(1000)));
        clock.end(t0 + ms(400));
        assert_eq!(clock.begin(LIMIT, t0 + ms(400)), Some(t0 + ms(1000)));
        clock.end(t0 + ms(900));
        assert_eq!(clock.begin(LIMIT, t0 + ms(900)), Some(t0 + ms(1000)));
        clock.end(t0 + ms(1000));
        assert_eq!(clock.begin(LIMIT, t0 + ms(1000)), None, "spent");
        assert_eq!(clock.calls, 0, "a refused call is not under way");
    }

    #[test]
    fn time_between_calls_does_not_count() {
        let t0 = Instant::now();
        let mut clock = Clock::default();
        assert!(clock.begin(LIMIT, t0).is_some());
        clock.end(t0 + ms(300));
        // The handler hashes a password for five seconds: the next call has 700 ms.
        let later = t0 + ms(5300);
        assert_eq!(clock.begin(LIMIT, later), Some(later + ms(700)));
        clock.end(later + ms(100));
        assert_eq!(clock.spent, ms(400));
    }

    #[test]
    fn calls_under_way_at_once_count_once() {
        let t0 = Instant::now();
        let mut clock = Clock::default();
        assert_eq!(clock.begin(LIMIT, t0), Some(t0 + ms(1000)));
        // A second call joins 200 ms in: the same deadline, not a fresh second.
        assert_eq!(clock.begin(LIMIT, t0 + ms(200)), Some(t0 + ms(1000)));
        clock.end(t0 + ms(300));
        assert_eq!(clock.begin(LIMIT, t0 + ms(350)), Some(t0 + ms(1000)));
        clock.end(t0 + ms(500));
        clock.end(t0 + ms(600));
        assert_eq!(clock.spent, ms(600), "one stretch of 600 ms");
        assert_eq!(clock.since, None);
    }

    #[test]
    fn a_call_past_the_deadline_is_refused_while_others_run() {
        let t0 = Instant::now();
        let mut clock = Clock::default();
        assert!(clock.begin(LIMIT, t0).is_some());
        assert_eq!(clock.begin(LIMIT, t0 + ms(1000)), None);
        assert_eq!(clock.calls, 1);
    }

    #[test]
    fn a_call_past_the_budget_fails_and_none_bounds_nothing() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let budget = Budget::new(Some(Duration::ZERO));
            let ran = std::cell::Cell::new(false);
            let call = async {
                ran.set(true);
                Ok(())
            };
            let refused = budget.run(call).await;
            assert!(matches!(refused, Err(StoreError::Timeout(d)) if d.is_zero()));
            assert!(!ran.get(), "a call past the budget never reaches the store");

            let budget = Budget::new(Some(ms(20)));
            let stalled = budget.run(std::future::pending::<Result<(), StoreError>>());
            assert!(matches!(stalled.await, Err(StoreError::Timeout(d)) if d == ms(20)));
            let after = budget.run(async { Ok(()) }).await;
            assert!(after.is_err(), "the stalled call spent the budget");

            let unbounded = Budget::new(None);
            assert!(unbounded.run(async { Ok(()) }).await.is_ok());
        });
    }
}
