//! Signing a local client in as a user, for an application's own tests: no route, no
//! password, no CSRF token to scrape.
//!
//! The helper puts a [`SigningIn`] in the local cache of a request it makes itself; the
//! fairing logs that request's session in as `AuthSession::login` does, and the response's
//! `Set-Cookie` fills the client's cookie jar. A request from the network never carries
//! one: only Rust code holding the request can put it there.

use std::sync::{Arc, Mutex, PoisonError};

use rocket::http::{Cookie, Method};
use rocket::local::{asynchronous, blocking};
use rocket::request::Request;
use serde::Serialize;

use crate::error::Error;
use crate::record::reserved::USER;

/// The path of the request that signs a client in, with `CONNECT`: a method no route of
/// an ordinary application answers, so no handler of the app runs for it.
const PATH: &str = "/";

/// Where the fairing reports a sign-in: the session cookie's name, or why there is none;
/// `None` until it answers.
type Outcome = Arc<Mutex<Option<Result<String, Error>>>>;

/// What a sign-in request asks of the fairing, and where the fairing reports back.
pub(crate) struct SigningIn {
    /// The user, encoded as `AuthSession::login` stores it.
    user: serde_json::Value,
    outcome: Outcome,
}

/// The local cache's entry: `None` in every request but a sign-in's.
struct Marker(Option<SigningIn>);

impl SigningIn {
    /// The sign-in `req` asks for, if it is a sign-in request.
    pub(crate) fn of<'r>(req: &'r Request<'_>) -> Option<&'r SigningIn> {
        req.local_cache(|| Marker(None)).0.as_ref()
    }

    /// The user to log in.
    pub(crate) fn user(&self) -> &serde_json::Value {
        &self.user
    }

    /// Reports how the sign-in went: the session cookie's name, or the error.
    pub(crate) fn report(&self, outcome: Result<String, Error>) {
        let mut slot = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        // The first error stands: a commit after a failed log-in must not hide it.
        if !matches!(*slot, Some(Err(_))) {
            *slot = Some(outcome);
        }
    }
}

/// The marker for `user`, and the slot its outcome lands in.
fn marker<U: Serialize>(user: &U) -> Result<(Marker, Outcome), Error> {
    let user = serde_json::to_value(user).map_err(|source| Error::Encode { key: USER, source })?;
    let outcome = Arc::new(Mutex::new(None));
    let signing_in = SigningIn {
        user,
        outcome: outcome.clone(),
    };
    Ok((Marker(Some(signing_in)), outcome))
}

/// The signed-in session's cookie, from `outcome` and the response's cookies.
fn cookie<'a>(
    outcome: &Mutex<Option<Result<String, Error>>>,
    set: impl Fn(&str) -> Option<Cookie<'a>>,
) -> Result<Cookie<'static>, Error> {
    let outcome = outcome
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match outcome {
        Some(Ok(name)) => set(&name).map(Cookie::into_owned).ok_or(Error::NotAttached),
        Some(Err(error)) => Err(error),
        // The fairing never saw the request.
        None => Err(Error::NotAttached),
    }
}

/// Signs `client` in as `user`: its cookie jar then holds a session logged in as `user`,
/// as if it had posted a log-in form whose handler called
/// [`AuthSession::login`](crate::AuthSession::login). For an application's tests, with Rocket's
/// asynchronous local client; [`sign_in_blocking`] is the same for the blocking one.
///
/// `user` is what the application's `AuthSession<U>` stores (a `String` by default). What the
/// client's session held before stays, as at a log-in, and the session moves to a new
/// id. The session is stored, and listed among the user's sessions, as a real log-in's.
///
/// It makes one request, `CONNECT /`, which no route of an ordinary application
/// answers (the app's 404 catcher does); the fairing logs that request's session in. Only
/// this function can ask that of a request: nothing a request from the network carries
/// can.
///
/// A tracked client (`Client::tracked`) keeps the cookie; an untracked one does not, so
/// the returned cookie is there to add to its requests.
///
/// # Errors
///
/// - [`Error::Encode`] when `user` cannot be encoded as JSON, [`Error::TooLarge`] when it
///   would grow the session past `max_session_size`;
/// - [`Error::Store`] when the store fails;
/// - [`Error::NotAttached`] when the application has no [`Sessions`](crate::Sessions)
///   fairing.
///
/// # Example
///
/// ```
/// use rocket::{get, routes, local::asynchronous::Client};
/// use rocket_server_sessions::{testing, Authenticated, Sessions};
///
/// #[get("/account")]
/// fn account(user: Authenticated) -> String {
///     format!("hello, {}", *user)
/// }
///
/// # rocket::async_test(async {
/// let rocket = rocket::build().attach(Sessions::fairing()).mount("/", routes![account]);
/// let client = Client::tracked(rocket).await.unwrap();
///
/// testing::sign_in(&client, &"alice".to_string()).await.unwrap();
/// let page = client.get("/account").dispatch().await;
/// assert_eq!(page.into_string().await.unwrap(), "hello, alice");
/// # });
/// ```
pub async fn sign_in<U: Serialize>(
    client: &asynchronous::Client,
    user: &U,
) -> Result<Cookie<'static>, Error> {
    let (marker, outcome) = marker(user)?;
    let request = client.req(Method::Connect, PATH);
    request.inner().local_cache(|| marker);
    let response = request.dispatch().await;
    let jar = response.cookies();
    cookie(&outcome, |name| jar.get(name).cloned())
}

/// Signs `client` in as `user`, as [`sign_in`] does, with Rocket's blocking local client.
///
/// # Errors
///
/// As [`sign_in`]'s.
///
/// # Example
///
/// ```
/// use rocket::{get, routes, local::blocking::Client};
/// use rocket_server_sessions::{testing, Authenticated, Sessions};
///
/// #[get("/account")]
/// fn account(user: Authenticated) -> String {
///     format!("hello, {}", *user)
/// }
///
/// let rocket = rocket::build().attach(Sessions::fairing()).mount("/", routes![account]);
/// let client = Client::tracked(rocket).unwrap();
///
/// testing::sign_in_blocking(&client, &"alice".to_string()).unwrap();
/// let page = client.get("/account").dispatch();
/// assert_eq!(page.into_string().unwrap(), "hello, alice");
/// ```
pub fn sign_in_blocking<U: Serialize>(
    client: &blocking::Client,
    user: &U,
) -> Result<Cookie<'static>, Error> {
    let (marker, outcome) = marker(user)?;
    let request = client.req(Method::Connect, PATH);
    request.inner().local_cache(|| marker);
    let response = request.dispatch();
    let jar = response.cookies();
    cookie(&outcome, |name| jar.get(name).cloned())
}
