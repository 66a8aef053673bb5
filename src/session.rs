//! The typed `Session<T>` guard, a view of one named entry of the visitor's session.

use std::any::type_name;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use rocket::log::private as log;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use serde::{de::DeserializeOwned, Serialize};

use crate::ended::Ended;
use crate::error::Error;
use crate::id::SessionId;
use crate::state::{fairing_missing, live, Live};

/// A value kept in the session under a fixed, explicit key.
///
/// The key is what the store persists, so it must stay the same across releases of your
/// application: rename the type freely, never the key. Keys starting with `$` are
/// reserved for this crate. A key that breaks these rules stops launch.
///
/// # Example
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use rocket_server_sessions::SessionEntry;
///
/// #[derive(Serialize, Deserialize, Default)]
/// struct Cart { items: Vec<String> }
///
/// impl SessionEntry for Cart {
///     const KEY: &'static str = "cart";
/// }
/// ```
pub trait SessionEntry: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name of the entry in the session record.
    const KEY: &'static str;
}

/// A typed view of one entry of the visitor's session. The whole session (`id`,
/// `destroy`, `regenerate`, `set_max_age`, `ended`) is [`SessionHandle`], a guard of its own.
///
/// Any number of `Session<T>` guards (for different `T`) in one handler share one load and
/// one commit: the store is read when the first guard runs and written once, after the
/// handler, with only what changed. A visitor without a session gets an empty one; it is
/// stored, and its cookie set, only once something is written into it.
///
/// # Outcomes
///
/// - **Success**: always, unless the store fails.
/// - **Error** `503 Service Unavailable` with [`Error::Store`] when the store cannot load
///   the session.
/// - **Error** `500 Internal Server Error` with [`Error::NotAttached`] without the
///   [`Sessions`](crate::Sessions) fairing (a route using the guard stops launch first,
///   through [`Sentinel`]).
///
/// Take `Session<T>`, or `Result<Session<T>, Error>` to answer an outage yourself: never
/// `Option<Session<T>>`, which Rocket would turn into `None` when the store is down.
///
/// # Example
///
/// ```
/// use rocket::{get, serde::json::Json};
/// use serde::{Deserialize, Serialize};
/// use rocket_server_sessions::{Error, Session, SessionEntry};
///
/// #[derive(Serialize, Deserialize, Default)]
/// struct Visits { count: u64 }
///
/// impl SessionEntry for Visits {
///     const KEY: &'static str = "visits";
/// }
///
/// #[get("/counter")]
/// fn counter(mut visits: Session<Visits>) -> Result<Json<Visits>, Error> {
///     visits.update(|v| v.count += 1)?;
///     Ok(Json(visits.get().unwrap_or_default()))
/// }
/// ```
pub struct Session<T> {
    handle: SessionHandle,
    _entry: PhantomData<fn() -> T>,
}

/// The visitor's whole session, without a typed entry: its id, and ending, regenerating
/// or giving it a lifetime of its own. Take it beside any [`Session<T>`] of the same
/// handler: they share one load and one commit. (A `Session<T>` is one entry; it does not
/// reach the whole session.)
///
/// # Outcomes
///
/// As [`Session<T>`]'s: **Success** unless the store fails (`503`, [`Error::Store`]).
///
/// # Example
///
/// ```
/// use rocket::post;
/// use rocket_server_sessions::SessionHandle;
///
/// #[post("/forget-me")]
/// fn forget_me(mut session: SessionHandle) -> &'static str {
///     session.destroy();
///     "forgotten"
/// }
/// ```
pub struct SessionHandle {
    live: Arc<Live>,
}

impl<T: SessionEntry> Session<T> {
    /// The entry's value, or `None` when the session has no such entry.
    ///
    /// An entry stored by an older version of `T` that no longer decodes is `None` too,
    /// with a warning in the log.
    pub fn get(&self) -> Option<T> {
        self.handle.live.get(T::KEY)
    }

    /// Sets the entry to `value`.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when `value` cannot be encoded as JSON (for example a map whose
    /// keys are not strings), and [`Error::TooLarge`] when it would grow the session past
    /// `max_session_size`; the session is left as it was.
    pub fn set(&mut self, value: T) -> Result<(), Error> {
        self.handle.live.set(T::KEY, &value)
    }

    /// Changes the entry in place, starting from `T::default()` when absent, and returns
    /// what `f` returns. Nothing is written when `f` leaves the value as it was.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the changed value cannot be encoded as JSON, and
    /// [`Error::TooLarge`] when it would grow the session past `max_session_size`; the
    /// session is left as it was.
    pub fn update<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> Result<R, Error>
    where
        T: Default,
    {
        self.handle.live.update(T::KEY, f)
    }

    /// Removes the entry and returns its value, if it had one that decodes.
    pub fn remove(&mut self) -> Option<T> {
        self.handle.live.remove(T::KEY)
    }
}

impl SessionHandle {
    /// Ends the whole session: it is deleted from the store and its cookie expired when the
    /// response goes out. Anything set afterwards in this request starts a new session,
    /// under a new id (e.g. a "you have been logged out" message).
    pub fn destroy(&mut self) {
        self.live.destroy();
    }

    /// Moves the session, with all its data, to a new id: the old id is deleted from the
    /// store and the new cookie set when the response goes out. A
    /// [`CsrfToken`](crate::CsrfToken) seen before no longer passes: tokens are bound to
    /// the id.
    ///
    /// # Security
    ///
    /// Call it whenever the session gains privilege (log-in): it defeats session
    /// fixation, where an attacker plants a known id in the victim's browser beforehand.
    pub fn regenerate(&mut self) {
        self.live.regenerate();
    }

    /// Gives this session its own lifetime ("remember me"), from now on: its expiry in the
    /// store and its cookie's `Max-Age` become `max_age`, and `rolling` keeps using it.
    /// The cookie is persistent even with `browser_session`. A lifetime over 400 days, the
    /// longest browsers keep a cookie, is cut to 400 days.
    pub fn set_max_age(&mut self, max_age: Duration) {
        self.live.set_max_age(max_age);
    }

    /// The session's id: the one in the cookie, or for a new session the id it will be
    /// stored under.
    pub fn id(&self) -> SessionId {
        self.live.id()
    }

    /// `true` when the session is not (yet) in the store: the visitor had none, or it was
    /// destroyed or regenerated in this request.
    pub fn is_new(&self) -> bool {
        self.live.is_new()
    }

    /// Why the signed-in session this browser's cookie named has ended, when it has: the
    /// store no longer holds it (or holds it past `absolute_timeout`), and no other
    /// session of the request's cookies is live. `None` for a live session, a visitor
    /// who never signed in, and a session this browser logged out of (its cookie was
    /// expired then).
    ///
    /// The login page, reached by [`Authenticated`](crate::Authenticated)'s redirect, can
    /// tell "your session ended after inactivity" from a first visit. The answer comes
    /// from the cookie alone: a signed-in session's cookie carries, signed, when the
    /// session ends and what ends it then ([`Ended`]); nothing is stored for it. It lasts
    /// until the browser gets a new session cookie (a log-in, a form's CSRF token, any
    /// write).
    ///
    /// # Example
    ///
    /// ```
    /// use rocket_server_sessions::{Ended, SessionHandle};
    ///
    /// #[rocket::get("/login")]
    /// fn login_page(session: SessionHandle) -> &'static str {
    ///     match session.ended() {
    ///         Some(Ended::Inactivity) => "Signed out after inactivity. Sign in again.",
    ///         Some(_) => "Your session ended. Sign in again.",
    ///         None => "Sign in.",
    ///     }
    /// }
    /// ```
    pub fn ended(&self) -> Option<Ended> {
        self.live.ended()
    }
}

/// Why `key` cannot be an entry key, if it cannot.
pub(crate) fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is empty")
    } else if key.starts_with('$') {
        Some("starts with `$`, which is reserved for rocket_server_sessions")
    } else if key.len() > 128 {
        Some("is longer than 128 bytes")
    } else {
        None
    }
}

#[rocket::async_trait]
impl<'r, T: SessionEntry> FromRequest<'r> for Session<T> {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        // The Sentinel stops launch for a route's guard; a guard of the app's own that
        // asks for this one is checked here, so no `$` entry of ours is ever written.
        if let Some(problem) = key_problem(T::KEY) {
            let error = Error::EntryKey {
                key: T::KEY,
                problem,
            };
            return Outcome::Error((error.refuse(req), error));
        }
        live(req).await.map(|live| Session {
            handle: SessionHandle { live },
            _entry: PhantomData,
        })
    }
}

impl<T: SessionEntry> Sentinel for Session<T> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        if fairing_missing(rocket, &format!("Session<{}>", type_name::<T>())) {
            return true;
        }

        if let Some(problem) = key_problem(T::KEY) {
            log::error!(
                "`{}::KEY` ({:?}) {problem}: choose a short, stable name such as \"cart\"",
                type_name::<T>(),
                T::KEY
            );
            return true;
        }

        false
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SessionHandle {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        live(req).await.map(|live| SessionHandle { live })
    }
}

impl Sentinel for SessionHandle {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        fairing_missing(rocket, "SessionHandle")
    }
}

/// Never prints the id or the entry's value.
impl<T> std::fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("entry", &type_name::<T>())
            .finish_non_exhaustive()
    }
}

/// Never prints the id or the data.
impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}
