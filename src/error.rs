//! The errors that guards, handlers and the fairing report.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rocket::http::Status;
use rocket::log::private as log;
use rocket::request::Request;
use rocket::response::{self, Responder};

/// Why a session store could not do what it was asked.
///
/// The fairing chooses by cause: [`Unavailable`](Self::Unavailable) and
/// [`Timeout`](Self::Timeout) answer `503 Service Unavailable`; a
/// [`Corrupt`](Self::Corrupt) record is treated as no session (a fresh one starts) with a
/// warning. `StoreError` is `Clone` so that every guard of one request can report the
/// same failure.
///
/// # Example
///
/// ```
/// use rocket_server_sessions::store::StoreError;
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let error = StoreError::unavailable(refused);
/// assert_eq!(error.to_string(), "session store is unavailable");
/// assert!(std::error::Error::source(&error).is_some());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or refused the command.
    #[error("session store is unavailable")]
    Unavailable(#[source] Arc<dyn StdError + Send + Sync>),
    /// The store did not answer within the configured time.
    #[error("session store did not answer within {0:?}")]
    Timeout(Duration),
    /// The stored record could not be read back (garbage bytes, an unknown format version).
    #[error("session record is corrupt")]
    Corrupt(#[source] Arc<dyn StdError + Send + Sync>),
    /// A new anonymous session was refused: signed-in sessions fill the store (or its part
    /// the session falls in), and a stranger never displaces a signed-in user.
    #[error("session store is full of signed-in sessions")]
    Full,
}

impl StoreError {
    /// A [`StoreError::Unavailable`] caused by `source`.
    pub fn unavailable(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Unavailable(Arc::from(source.into()))
    }

    /// A [`StoreError::Corrupt`] caused by `source`.
    pub fn corrupt(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Corrupt(Arc::from(source.into()))
    }
}

/// What a session guard or a session method reports.
///
/// `Error` is a [`Responder`], so a handler can use `?` on session calls: a store failure
/// answers `503 Service Unavailable`, a CSRF failure `403 Forbidden`, a session grown past
/// its `max_session_size` `413 Payload Too Large`, anything else
/// `500 Internal Server Error`. It answers through the application's catchers: it forwards
/// its [`status`](Self::status), so an app's own `#[catch(403)]` page is what the visitor
/// sees, and Rocket's default page where the app has none. The body never carries the
/// error's text.
///
/// Each refusal (from a handler's `?` or from one of the crate's guards) logs one line at
/// `warn`: the route and the reason, never a token, an id or session data. Under a flood
/// each reason logs at most one line a second. A store failure is logged by the store's
/// outage lines instead (one when it starts, one when it ends).
///
/// # Example
///
/// ```
/// use rocket::get;
/// use rocket_server_sessions::{Error, Session, SessionEntry};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Default)]
/// # struct Visits { count: u64 }
/// # impl SessionEntry for Visits { const KEY: &'static str = "visits"; }
///
/// #[get("/visit")]
/// fn visit(mut visits: Session<Visits>) -> Result<String, Error> {
///     let count = visits.update(|v| { v.count += 1; v.count })?;
///     Ok(format!("visit number {count}"))
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session store failed.
    #[error("session store failed")]
    Store(#[from] StoreError),
    /// A value could not be encoded as JSON for the session entry `key`.
    #[error("could not encode session entry `{key}`")]
    Encode {
        /// The entry's key.
        key: &'static str,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// A write would make the session larger than
    /// [`max_session_size`](crate::config::SessionConfig::max_session_size): answers
    /// `413 Payload Too Large`. The session is left as it was.
    #[error("session entry `{key}` would make the session {size} bytes, over `max_session_size` ({limit} bytes)")]
    TooLarge {
        /// The entry being written.
        key: &'static str,
        /// The session's size with the write, in bytes.
        size: usize,
        /// `max_session_size`, in bytes.
        limit: usize,
    },
    /// The session's logged-in user does not decode as the user type the application
    /// declares (stored by an older version of it, say): answers `401 Unauthorized`, and a
    /// browser is sent to log in again.
    #[error("the logged-in user does not decode as `{user_type}`")]
    UserType {
        /// The type it should decode as.
        user_type: &'static str,
    },
    /// A form's CSRF token is missing or wrong: answers `403 Forbidden`.
    #[error("the form's CSRF token is missing or wrong")]
    Csrf,
    /// A [`Session<T>`](crate::Session) whose `T::KEY` cannot be an entry key (empty, too
    /// long, or in the `$` namespace the crate keeps for itself) was asked for from a
    /// guard of the application's own, where no Sentinel stops launch: `500`, and nothing
    /// of the session is read or written.
    #[error("`{key}` cannot be a session entry key: it {problem}")]
    EntryKey {
        /// The key.
        key: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A session guard ran in an application without the [`Sessions`](crate::Sessions)
    /// fairing.
    #[error("the `Sessions` fairing is not attached")]
    NotAttached,
    /// The store given with
    /// [`SessionsBuilder::store_with`](crate::SessionsBuilder::store_with) could not be
    /// made at ignite.
    #[error("the session store could not be made")]
    StoreBuild(#[source] Box<dyn StdError + Send + Sync>),
    /// The configuration has a bad value.
    #[error("invalid `sessions.{key}`: {message}")]
    Config {
        /// The key under `sessions`, e.g. `max_age` or `memory.max_sessions`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl Error {
    pub(crate) fn config(key: &str, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The status a response for this error carries.
    pub fn status(&self) -> Status {
        match self {
            Error::Store(_) => Status::ServiceUnavailable,
            Error::Csrf => Status::Forbidden,
            Error::UserType { .. } => Status::Unauthorized,
            Error::TooLarge { .. } => Status::PayloadTooLarge,
            _ => Status::InternalServerError,
        }
    }

    /// Logs that `req` was refused for this error (at most one line a second for each
    /// reason), and answers the status to refuse it with.
    pub(crate) fn refuse(&self, req: &Request<'_>) -> Status {
        let status = self.status();
        let reason = match self {
            // The store's outage lines say it, once when it starts and once when it ends.
            Error::Store(_) => return status,
            Error::Encode { .. } => Reason::Encode,
            Error::TooLarge { .. } => Reason::TooLarge,
            Error::UserType { .. } => Reason::UserType,
            Error::Csrf => Reason::Csrf,
            Error::EntryKey { .. } => Reason::EntryKey,
            _ => Reason::Other,
        };
        if REFUSALS[reason as usize].allow() {
            // The route as mounted, never the request's own URI: its query may hold data.
            let route = req.route().map_or_else(
                || format!("{} (no route)", req.method()),
                |route| format!("{} {}", route.method, route.uri),
            );
            log::warn!("{route}: refused with {status}: {self}");
        }

        status
    }
}

/// What a refusal is logged for: each has its own [`Throttle`].
#[derive(Clone, Copy)]
enum Reason {
    Encode,
    TooLarge,
    UserType,
    Csrf,
    EntryKey,
    Other,
}

/// One throttle per [`Reason`], for the whole process.
static REFUSALS: [Throttle; 6] = [const { Throttle::new() }; 6];

/// Lets a log line through at most once a second: for lines a flood of requests would
/// repeat (a full store, a forged form).
pub(crate) struct Throttle {
    /// The second (since [`EPOCH`]) a line was last let through; `u64::MAX` for never.
    last: AtomicU64,
}

/// Where throttles count their seconds from: the first time any of them is asked.
static EPOCH: OnceLock<Instant> = OnceLock::new();

impl Throttle {
    /// A throttle that has let nothing through yet.
    pub(crate) const fn new() -> Self {
        Throttle {
            last: AtomicU64::new(u64::MAX),
        }
    }

    /// Whether a line may be logged now: `true` at most once in each second.
    pub(crate) fn allow(&self) -> bool {
        let second = EPOCH.get_or_init(Instant::now).elapsed().as_secs();
        self.last.load(Ordering::Relaxed) != second
            && self.last.swap(second, Ordering::Relaxed) != second
    }
}

impl<'r> Responder<'r, 'static> for Error {
    /// Forwards to the application's catcher for [`Error::status`], after logging the
    /// refusal.
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        Err(self.refuse(req))
    }
}

/// An error and its sources, as one line.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }

    line
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    fn second() -> u64 {
        super::EPOCH
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs()
    }

    #[test]
    fn a_throttle_lets_one_line_through_in_a_second() {
        let throttle = Throttle::new();
        let before = second();
        assert!(throttle.allow());
        let again = throttle.allow();
        // Unless the clock crossed into the next second between the two calls.
        assert!(!again || second() != before);
        assert!(Throttle::new().allow(), "each throttle counts on its own");
    }
}
