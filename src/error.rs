//! The errors that guards, handlers and the fairing report.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder, Response};

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
/// use rocket_server_sessions::StoreError;
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
/// `500 Internal Server Error`. The body never carries the error's text.
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
    /// [`max_session_size`](crate::SessionConfig::max_session_size): answers
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
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build().status(self.status()).ok()
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
