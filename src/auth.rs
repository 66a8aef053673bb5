//! Logging in and out, the `Authenticated` guard, and the safe `next` return path.

use std::any::type_name;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rocket::http::{Method, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Response;
use rocket::{Ignite, Rocket, Sentinel};
use serde::{de::DeserializeOwned, Serialize};

use crate::state::{fairing_missing, live, Live};
use crate::Error;

use crate::record::reserved::USER as USER_KEY;

/// What a `next` value keeps unencoded: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

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

/// Marks a request whose `Authenticated` guard found nobody logged in, with the route it
/// turned away (by address: routes live as long as Rocket does), so a 401 that a
/// lower-ranked route answers itself is not taken for ours.
struct LoginRequired(Option<usize>);

fn route_address(req: &Request<'_>) -> Option<usize> {
    req.route()
        .map(|route| route as *const rocket::Route as usize)
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
                req.local_cache(|| LoginRequired(route_address(req)));
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

/// Turns the 401 of a stranger's browser navigation into a redirect to the login page.
/// Only 401s that `Authenticated` caused are touched.
pub(crate) fn redirect_to_login(login_path: &str, req: &Request<'_>, res: &mut Response<'_>) {
    if res.status() != Status::Unauthorized {
        return;
    }

    // Ours only if no route after the one `Authenticated` turned away answered.
    let forwarded_by = req.local_cache(|| LoginRequired(None)).0;
    if forwarded_by.is_none() || forwarded_by != route_address(req) {
        return;
    }

    let navigation = matches!(req.method(), Method::Get | Method::Head);
    let scripted = req.headers().get_one("X-Requested-With").is_some()
        || req
            .accept()
            .is_some_and(|accept| accept.preferred().media_type().is_json());
    if navigation && !scripted {
        let next = req.uri().to_string();
        let location = format!(
            "{login_path}?next={}",
            utf8_percent_encode(&next, QUERY_VALUE)
        );
        // In place: headers other fairings set (Shield's, say) stay; the catcher's page goes.
        res.set_status(Status::SeeOther);
        res.set_raw_header("Location", location);
        res.remove_header("Content-Type");
        res.set_sized_body(0, std::io::Cursor::new(""));
    }
}
