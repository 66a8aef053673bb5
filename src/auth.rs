//! Logging in and out, the `Authenticated` guard, and the safe `next` return path.

use std::any::type_name;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use serde::{de::DeserializeOwned, Serialize};

use rocket::log::private as log;

use crate::error::Error;
use crate::state::{fairing_missing, live, Context, Live};
use crate::store::users::Users;
use crate::store::UserSession;

use crate::record::reserved::USER as USER_KEY;

/// The session's log-in state, for routes that log users in and out, and list and revoke
/// their sessions. Every visitor passes it: it is a capability, not a gate. The gate is
/// [`Authenticated`], which lets only a logged-in user through.
///
/// `U` is what you store for a logged-in user: a user name (the default, `String`), an id,
/// or a small struct. Every `AuthSession<U>` and [`Authenticated<U>`] of an application must
/// name the same `U`: launch stops, naming both types, when two differ (a user stored as
/// one type would read as no user through the other).
///
/// # Outcomes
///
/// - **Success**: always, unless the store fails.
/// - **Error** `503 Service Unavailable` with [`Error::Store`] when the store fails.
///
/// Take `AuthSession`, or `Result<AuthSession, Error>`: never `Option<AuthSession>`, which Rocket
/// would turn into `None` when the store is down.
///
/// # Example
///
/// ```
/// use rocket::{post, response::Redirect};
/// use rocket_server_sessions::{AuthSession, Error};
///
/// #[post("/login")]
/// fn login(mut auth: AuthSession) -> Result<Redirect, Error> {
///     // ... check the password first ...
///     auth.login(&"alice".to_string())?;
///     Ok(Redirect::to("/dashboard"))
/// }
///
/// #[post("/logout")]
/// fn logout(mut auth: AuthSession) -> Redirect {
///     auth.logout();
///     Redirect::to("/login")
/// }
/// ```
pub struct AuthSession<U = String> {
    live: Arc<Live>,
    _user: PhantomData<fn() -> U>,
}

impl<U: Serialize + DeserializeOwned> AuthSession<U> {
    /// The logged-in user, if any.
    pub fn user(&self) -> Option<U> {
        self.live.get(USER_KEY)
    }

    /// Logs `user` in: stores it, and moves the session to a new id without its CSRF token
    /// (the next page that asks gets a new one), all in the one commit after the handler.
    /// The old id is dead at once. The session then lives `idle_timeout` (else `max_age`):
    /// a lifetime of its own from before does not carry over; give one with
    /// [`login_for`](Self::login_for).
    ///
    /// # Security
    ///
    /// The new id defeats session fixation: an id planted in the browser before log-in
    /// never becomes a logged-in session.
    ///
    /// The session's entries move with it (a visitor's cart, theme, form progress),
    /// including when someone else was logged in to it: logging in as a second user over a
    /// first one's session (a shared computer where she never logged out) keeps the
    /// first's entries. A log-in form whose app keeps per-user data in the session should
    /// [`logout`](Self::logout) a different user first.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when `user` cannot be encoded as JSON, and [`Error::TooLarge`] when
    /// it would grow the session past `max_session_size`; nothing changes then.
    pub fn login(&mut self, user: &U) -> Result<(), Error> {
        self.live.set(USER_KEY, user)?;
        // A log-in starts its lifetime anew: one the session had of its own (a visitor's
        // `set_max_age`, an earlier `login_for`) does not carry over.
        self.live.forget_max_age();
        self.live.regenerate();
        Ok(())
    }

    /// Logs `user` in, as [`login`](Self::login) does, for `lifetime` ("remember me"): the
    /// session lives that long from each refresh whatever `max_age` and `idle_timeout`
    /// say (`absolute_timeout` still caps it), and its cookie persists for as long, even
    /// with `browser_session`. Without it, a log-in follows `idle_timeout`, and with
    /// `browser_session` its cookie ends with the browser.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rocket::post;
    /// use rocket_server_sessions::{AuthSession, Error};
    ///
    /// #[post("/login?<remember>")]
    /// fn login(mut auth: AuthSession, remember: bool) -> Result<(), Error> {
    ///     // ... check the password first ...
    ///     let alice = "alice".to_string();
    ///     match remember {
    ///         true => auth.login_for(&alice, Duration::from_secs(30 * 86_400)),
    ///         false => auth.login(&alice),
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`login`](Self::login)'s.
    pub fn login_for(&mut self, user: &U, lifetime: Duration) -> Result<(), Error> {
        self.login(user)?;
        self.live.set_max_age(lifetime);
        Ok(())
    }

    /// Logs out: the session is deleted from the store and its cookie expired. Anything
    /// set afterwards in this request (a flash message) goes into a new session.
    pub fn logout(&mut self) {
        self.live.destroy();
    }

    /// The logged-in user's sessions, on every device and instance, the oldest first: a
    /// [public id](UserSession::public_id) for each, its log-in and last-seen times, and which is
    /// this request's. Empty when no one is logged in (or the log-in happens in this
    /// request, which is stored after the handler).
    ///
    /// Each costs the store one load; sessions that are gone leave the list on the way.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn sessions(&self) -> Result<Vec<UserSession>, Error> {
        let Some((id, user)) = self.live.logged_in() else {
            return Ok(Vec::new());
        };
        Ok(self.users().sessions(&user, Some(&id)).await?)
    }

    /// Revokes the logged-in user's session of `public_id` (from [`AuthSession::sessions`]):
    /// it is deleted from the store, so its next request, on any instance, has no session.
    /// `false` when the user has no session of that public id (another user's included: a
    /// user revokes only their own). Revoking this request's own session is
    /// [`AuthSession::logout`].
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn revoke(&self, public_id: &str) -> Result<bool, Error> {
        let Some((id, user)) = self.live.logged_in() else {
            return Ok(false);
        };
        if id.public_id() == public_id {
            return Ok(false);
        }
        Ok(self.users().revoke(&user, public_id).await?)
    }

    /// "Sign out other devices": revokes every session of the logged-in user but this
    /// request's, and answers how many. Follow it with [`AuthSession::logout`] to sign out
    /// everywhere.
    ///
    /// # Security
    ///
    /// After a password change, or when a user suspects a stolen cookie: every other
    /// session is dead on its next request, on every instance.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    ///
    /// # Example
    ///
    /// ```
    /// use rocket::{post, response::Redirect};
    /// use rocket_server_sessions::{AuthSession, Authenticated, Error};
    ///
    /// #[post("/logout/others")]
    /// async fn sign_out_others(
    ///     _user: Authenticated,
    ///     auth: AuthSession,
    /// ) -> Result<Redirect, Error> {
    ///     auth.revoke_others().await?;
    ///     Ok(Redirect::to("/dashboard"))
    /// }
    /// ```
    pub async fn revoke_others(&self) -> Result<usize, Error> {
        let Some((id, user)) = self.live.logged_in() else {
            return Ok(0);
        };
        Ok(self.users().revoke_all(&user, Some(&id)).await?)
    }

    fn users(&self) -> Users<'_> {
        let ctx = &self.live.ctx;
        Users::new(
            &self.live.store,
            &ctx.keys.users,
            ctx.config.absolute_timeout,
        )
    }
}

/// A logged-in user: the guard passes only when the session holds one.
///
/// Otherwise it forwards with `401 Unauthorized`: a route of lower rank can still serve
/// the request, and if none does, the [`Sessions`](crate::Sessions) fairing turns the 401
/// into a redirect to the login page (`sessions.login_path`) for a browser's `GET` or
/// `HEAD`, with `?next=` holding the original path and query. Any other request (a `POST`,
/// an `XMLHttpRequest`, a client that prefers JSON) gets the plain 401. No handler code is
/// needed for that.
///
/// # Outcomes
///
/// - **Success**: the session holds a user that decodes as `U`.
/// - **Forward** `401 Unauthorized`: no user (then redirected as above).
/// - **Error** `401 Unauthorized` with [`Error::UserType`] when the session holds a user
///   that does not decode as `U` (stored by an older version of it, say), logged with a
///   warning; a browser is redirected to log in again, as above.
/// - **Error** `503 Service Unavailable` with [`Error::Store`] when the store fails; a
///   store failure never looks like a logged-out visitor.
///
/// Take `Authenticated`, or `Result<Authenticated, Error>`: an `Option<Authenticated>`
/// would read a store outage as a stranger.
///
/// # Example
///
/// ```
/// use rocket::get;
/// use rocket_server_sessions::Authenticated;
///
/// #[get("/dashboard")]
/// fn dashboard(user: Authenticated) -> String {
///     format!("Hello, {}!", *user)
/// }
/// ```
pub struct Authenticated<U = String> {
    user: U,
}

impl<U> Authenticated<U> {
    /// The user.
    pub fn into_user(self) -> U {
        self.user
    }
}

impl<U> Deref for Authenticated<U> {
    type Target = U;

    fn deref(&self) -> &U {
        &self.user
    }
}

#[rocket::async_trait]
impl<'r, U: Serialize + DeserializeOwned + Send + 'static> FromRequest<'r> for AuthSession<U> {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        live(req).await.map(|live| AuthSession {
            live,
            _user: PhantomData,
        })
    }
}

#[rocket::async_trait]
impl<'r, U: DeserializeOwned + Send + 'static> FromRequest<'r> for Authenticated<U> {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let live = rocket::outcome::try_outcome!(live(req).await);

        if let Some(user) = live.get(USER_KEY) {
            return Outcome::Success(Authenticated { user });
        }

        crate::login::refused(req);
        if !live.contains(USER_KEY) {
            return Outcome::Forward(Status::Unauthorized);
        }
        let error = Error::UserType {
            user_type: type_name::<U>(),
        };
        Outcome::Error((error.refuse(req), error))
    }
}

impl<U: 'static> Sentinel for AuthSession<U> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        let guard = format!("AuthSession<{}>", type_name::<U>());
        fairing_missing(rocket, &guard) || user_type_differs::<U>(rocket, &guard)
    }
}

impl<U: 'static> Sentinel for Authenticated<U> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        let guard = format!("Authenticated<{}>", type_name::<U>());
        fairing_missing(rocket, &guard) || user_type_differs::<U>(rocket, &guard)
    }
}

/// `true`, with an error naming both types, when another `AuthSession` or `Authenticated` of the
/// application names a user type other than `U`.
fn user_type_differs<U: 'static>(rocket: &Rocket<Ignite>, guard: &str) -> bool {
    let Some(ctx) = rocket.state::<Arc<Context>>() else {
        return false;
    };
    match ctx.claim_user_type::<U>() {
        Ok(()) => false,
        Err(other) => {
            log::error!(
                "`{guard}` names another user type than `{other}` does elsewhere: every `AuthSession<U>` and `Authenticated<U>` must name one `U`, or a logged-in user reads as nobody"
            );
            true
        }
    }
}

impl<U> std::fmt::Debug for AuthSession<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSession")
            .field("user_type", &type_name::<U>())
            .finish_non_exhaustive()
    }
}

/// Never prints the user: it is session data.
impl<U> std::fmt::Debug for Authenticated<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("user", &format_args!("<{} redacted>", type_name::<U>()))
            .finish()
    }
}
