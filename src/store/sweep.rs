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
            let (target, sweep) = (target.clone(), sweep.clone());
            let stopped = ClearOnDrop(alive.clone());
            runtime.spawn(async move {
                let _stopped = stopped;
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
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
            start: Box::new(start),
        };
        sweeper.ensure_running();
        Arc::new(sweeper)
    }

    /// Starts the sweep if none is running and a runtime is at hand: one atomic load on a
    /// store call while it runs.
    pub(crate) fn ensure_running(&self) {
        if self.running.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = Handle::try_current() else {
            return;
        };
        if !self.running.swap(true, Ordering::AcqRel) {
            (self.start)(&runtime);
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
