//! Counts and timings, through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`): the application installs a recorder (a Prometheus exporter, say) and reads
//! them there. Without the feature, or without a recorder, they cost nothing.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `rocket_sessions_created_total` | counter | |
//! | `rocket_sessions_loaded_total` | counter | |
//! | `rocket_sessions_committed_total` | counter | |
//! | `rocket_sessions_destroyed_total` | counter | |
//! | `rocket_sessions_revoked_total` | counter | |
//! | `rocket_sessions_expired_total` | counter | `reason`: `sweep`, `absolute_timeout` |
//! | `rocket_sessions_store_calls_total` | counter | `store`, `call`, `outcome`: `ok`, `unavailable`, `timeout`, `corrupt` |
//! | `rocket_sessions_store_call_seconds` | histogram | `store`, `call` |
//!
//! No label holds an id, a cookie or session data: only the names above.

/// What happened to sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) enum Event {
    /// Stored for the first time.
    Created,
    /// Loaded by a request.
    Loaded,
    /// A request's changes were written.
    Committed,
    /// Destroyed (logged out, or ended by the application).
    Destroyed,
    /// Revoked ("sign out everywhere", or past a user's 100).
    Revoked,
    /// Expired, for that reason.
    Expired(Expiry),
}

/// Why sessions expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// A store's background sweep removed them.
    Sweep,
    /// They passed their absolute timeout.
    AbsoluteTimeout,
}

/// `n` sessions went through `event`.
pub(crate) fn count(event: Event, n: usize) {
    #[cfg(feature = "metrics")]
    if n > 0 {
        let n = n as u64;
        let counter = match event {
            Event::Created => metrics::counter!("rocket_sessions_created_total"),
            Event::Loaded => metrics::counter!("rocket_sessions_loaded_total"),
            Event::Committed => metrics::counter!("rocket_sessions_committed_total"),
            Event::Destroyed => metrics::counter!("rocket_sessions_destroyed_total"),
            Event::Revoked => metrics::counter!("rocket_sessions_revoked_total"),
            Event::Expired(Expiry::Sweep) => {
                metrics::counter!("rocket_sessions_expired_total", "reason" => "sweep")
            }
            Event::Expired(Expiry::AbsoluteTimeout) => {
                metrics::counter!("rocket_sessions_expired_total", "reason" => "absolute_timeout")
            }
        };
        counter.increment(n);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (event, n);
}

/// Times a store call, when the feature is on.
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    started: std::time::Instant,
}

impl Timer {
    pub(crate) fn start() -> Self {
        Timer {
            #[cfg(feature = "metrics")]
            started: std::time::Instant::now(),
        }
    }

    /// The call `call` to the store `store` (`"memory"`, `"redis"`, ..., `"custom"`)
    /// ended with `outcome`.
    pub(crate) fn store_call(self, store: &'static str, call: &'static str, outcome: &'static str) {
        #[cfg(feature = "metrics")]
        {
            let labels = [("store", store), ("call", call)];
            metrics::counter!(
                "rocket_sessions_store_calls_total",
                "store" => store, "call" => call, "outcome" => outcome
            )
            .increment(1);
            metrics::histogram!("rocket_sessions_store_call_seconds", &labels)
                .record(self.started.elapsed());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (store, call, outcome);
    }
}

/// Describes every metric to the installed recorder: units and help texts, for exporters
/// that show them.
pub(crate) fn describe() {
    #[cfg(feature = "metrics")]
    {
        use metrics::{describe_counter, describe_histogram, Unit};
        describe_counter!(
            "rocket_sessions_created_total",
            "sessions stored for the first time"
        );
        describe_counter!(
            "rocket_sessions_loaded_total",
            "sessions loaded by a request"
        );
        describe_counter!(
            "rocket_sessions_committed_total",
            "requests whose changes to their session were written"
        );
        describe_counter!(
            "rocket_sessions_destroyed_total",
            "sessions destroyed (logged out or ended by the application)"
        );
        describe_counter!(
            "rocket_sessions_revoked_total",
            "sessions revoked: signed out by their user, or past a user's 100"
        );
        describe_counter!(
            "rocket_sessions_expired_total",
            "sessions expired, by reason"
        );
        describe_counter!(
            "rocket_sessions_store_calls_total",
            "calls to the session store, by store, call and outcome"
        );
        describe_histogram!(
            "rocket_sessions_store_call_seconds",
            Unit::Seconds,
            "how long a call to the session store took"
        );
    }
}
