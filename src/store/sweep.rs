//! The stores' background sweep of expired sessions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

/// A store's background sweep. It runs on the runtime of the first store call made inside
/// one (the one it was opened in, under Rocket), and starts again on the next call's if
/// that runtime shuts down: a store opened in a plain `main`, or first used in a
/// short-lived runtime, still sweeps once Rocket runs it.
pub(crate) struct Sweeper {
    /// Whether a sweep task is alive; the task clears it when it ends or is dropped.
    running: Arc<AtomicBool>,
    /// Set by [`Sweeper::stop`]: no sweep runs again, and the one running ends at once.
    stopped: Arc<Stop>,
    start: Box<dyn Fn(&Handle) + Send + Sync>,
}

impl Sweeper {
    /// Runs `sweep` on `target` every `every` for as long as `target` lives; `sweep`
    /// answers how many expired sessions it removed.
    pub(crate) fn spawn<T, F, Fut>(target: &Arc<T>, every: Duration, sweep: F) -> Arc<Sweeper>
    where
        T: Send + Sync + 'static,
        F: Fn(Arc<T>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = usize> + Send,
    {
        let running = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(Stop::default());
        let stop = stopped.clone();
        let target = Arc::downgrade(target);
        let sweep = Arc::new(sweep);
        let alive = running.clone();
        let start = move |runtime: &Handle| {
            let period = every.max(Duration::from_millis(1));
            // A runtime built without its timer cannot tick: no sweep there, for good
            // (expired sessions still read as absent), rather than a panic per call.
            let _entered = runtime.enter();
            let Ok(mut ticks) = std::panic::catch_unwind(|| tokio::time::interval(period)) else {
                return;
            };
            let (target, sweep, stop) = (target.clone(), sweep.clone(), stop.clone());
            let ended = ClearOnDrop(alive.clone());
            runtime.spawn(async move {
                let _ended = ended;
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks.tick().await;
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        () = stop.stopped() => break,
                    }
                    let Some(target) = target.upgrade() else {
                        break;
                    };
                    let removed = sweep(target).await;
                    use crate::metrics::{count, Event, Expiry};
                    count(Event::Expired(Expiry::Sweep), removed);
                }
            });
        };
        let sweeper = Sweeper {
            running,
            stopped,
            start: Box::new(start),
        };
        sweeper.ensure_running();
        Arc::new(sweeper)
    }

    /// Starts the sweep if none is running and a runtime is at hand: one atomic load on a
    /// store call while it runs.
    pub(crate) fn ensure_running(&self) {
        if self.running.load(Ordering::Relaxed) || self.stopped.is_set() {
            return;
        }
        let Ok(runtime) = Handle::try_current() else {
            return;
        };
        if !self.running.swap(true, Ordering::AcqRel) {
            (self.start)(&runtime);
        }
    }

    /// Ends the sweep for good: the task running ends at once (between two sweeps, or
    /// when the sweep under way is done), and none starts again.
    pub(crate) fn stop(&self) {
        self.stopped.set();
    }

    /// Whether a sweep task is alive.
    #[cfg(test)]
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

/// A flag a task can wait on.
#[derive(Default)]
struct Stop {
    set: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Stop {
    fn set(&self) {
        self.set.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Returns once the flag is set.
    async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// Clears its flag when dropped: a sweep task's way of saying it is gone.
struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    use super::*;

    /// Waits until `done`, for at most five seconds.
    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: not within 5 s");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[rocket::async_test]
    async fn a_stopped_sweep_ends_at_once_and_never_starts_again() {
        let swept = Arc::new(AtomicUsize::new(0));
        let sweeper = Sweeper::spawn(&swept, Duration::from_millis(5), |swept| async move {
            swept.fetch_add(1, Ordering::SeqCst);
            0
        });
        until("a sweep", || swept.load(Ordering::SeqCst) >= 2).await;

        sweeper.stop();
        until("the sweep's end", || !sweeper.is_running()).await;
        // Its task is gone: nothing sweeps any more, and a store call starts nothing.
        let sweeps = swept.load(Ordering::SeqCst);
        sweeper.ensure_running();
        assert!(!sweeper.is_running());
        assert_eq!(swept.load(Ordering::SeqCst), sweeps);
    }

    #[rocket::async_test]
    async fn a_stop_ends_a_sweep_waiting_for_a_long_interval() {
        let target = Arc::new(());
        let sweeper = Sweeper::spawn(&target, Duration::from_secs(3600), |_| async { 0 });
        assert!(sweeper.is_running());
        sweeper.stop();
        until("the sweep's end", || !sweeper.is_running()).await;
    }
}
