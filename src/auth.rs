//! Logging in and out, the `Authenticated` guard, and the safe `next` return path.

use std::any::type_name;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use serde::{de::DeserializeOwned, Serialize};

use crate::state::{fairing_missing, live, Live};
use crate::Error;

use crate::record::reserved::USER as USER_KEY;

/// The session's log-in state, for routes that log users in and out.
///
/// `U` is what you store for a logged-in user: a user name (the default, `String`), an id,
/// or a small struct. The guard always succeeds, unless the store fails.
///
/// # Outcomes
///
/// - **Success**: always, unless the store fails.
/// - **Error** `503 Service Unavailable` with [`Error::Store`] when the store fails.
///
/// # Example
///
/// ```
/// use rocket::{post, response::Redirect};
/// use rocket_server_sessions::{Auth, Error};
///
/// #[post("/login")]
/// fn login(mut auth: Auth) -> Result<Redirect, Error> {
///     // ... check the password first ...
///     auth.login(&"alice".to_string())?;
///     Ok(Redirect::to("/dashboard"))
/// }
///
/// #[post("/logout")]
/// fn logout(mut auth: Auth) -> Redirect {
///     auth.logout();
///     Redirect::to("/login")
/// }
/// ```
pub struct Auth<U = String> {
    live: Arc<Live>,
    _user: PhantomData<fn() -> U>,
}

impl<U: Serialize + DeserializeOwned> Auth<U> {
    /// The logged-in user, if any.
    pub fn user(&self) -> Option<U> {
        self.live.get(USER_KEY)
    }

    /// Logs `user` in: stores it, and moves the session to a new id without its CSRF token
    /// (the next page that asks gets a new one), all in the one commit after the handler.
    /// The old id is dead at once.
    ///
    /// # Security
    ///
    /// The new id defeats session fixation: an id planted in the browser before log-in
    /// never becomes a logged-in session.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when `user` cannot be encoded as JSON, and [`Error::TooLarge`] when
    /// it would grow the session past `max_session_size`; nothing changes then.
    pub fn login(&mut self, user: &U) -> Result<(), Error> {
        self.live.set(USER_KEY, user)?;
        self.live.regenerate();
        Ok(())
    }

    /// Logs out: the session is deleted from the store and its cookie expired. Anything
    /// set afterwards in this request (a flash message) goes into a new session.
    pub fn logout(&mut self) {
        self.live.destroy();
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
/// - **Error** `503 Service Unavailable` with [`Error::Store`] when the store fails; a
///   store failure never looks like a logged-out visitor.
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
impl<'r, U: Serialize + DeserializeOwned + Send + 'static> FromRequest<'r> for Auth<U> {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        live(req).await.map(|live| Auth {
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

        match live.get(USER_KEY) {
            Some(user) => Outcome::Success(Authenticated { user }),
            None => {
                crate::login::refused(req);
                Outcome::Forward(Status::Unauthorized)
            }
        }
    }
}

impl<U> Sentinel for Auth<U> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        fairing_missing(rocket, &format!("Auth<{}>", type_name::<U>()))
    }
}

impl<U> Sentinel for Authenticated<U> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        fairing_missing(rocket, &format!("Authenticated<{}>", type_name::<U>()))
    }
}
