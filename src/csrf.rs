//! Per-session CSRF tokens (the synchronizer token pattern).

use std::sync::Arc;

use data_encoding::BASE64URL_NOPAD;
use rand::RngCore;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use subtle::ConstantTimeEq;

use crate::session::{fairing_missing, live, Live};
use crate::Error;

/// The session entry that holds the CSRF token.
pub(crate) const CSRF_KEY: &str = "$csrf";

/// The session's CSRF token: put it in every state-changing form, check it on submit.
///
/// The token is 256 random bits, made when a form first asks for it and kept in the
/// session; a new session id ([`Session::regenerate`](crate::Session::regenerate), and so
/// [`Auth::login`](crate::Auth::login)) drops it, and a new one is made when next asked for.
/// [`verify`](Self::verify) compares in constant time and fails with [`Error::Csrf`],
/// which answers `403 Forbidden`. Scripts (`fetch`, XHR) send the token in the
/// [`X-CSRF-Token`](Self::HEADER) header instead, checked by
/// [`verify_header`](Self::verify_header).
///
/// # Outcomes
///
/// - **Success**: always, unless the store fails.
/// - **Error** `503 Service Unavailable` with [`Error::Store`] when the store fails.
///
/// # Example
///
/// ```
/// use rocket::{form::Form, get, post, FromForm};
/// use rocket_server_sessions::{CsrfToken, Error};
///
/// #[get("/transfer")]
/// fn form(csrf: CsrfToken) -> Result<String, Error> {
///     Ok(format!(r#"<form method="post"><input type="hidden" name="csrf_token" value="{}">"#, csrf.token()?))
/// }
///
/// #[derive(FromForm)]
/// struct Transfer { csrf_token: Option<String>, amount: u64 }
///
/// #[post("/transfer", data = "<transfer>")]
/// fn transfer(csrf: CsrfToken, transfer: Form<Transfer>) -> Result<String, Error> {
///     csrf.verify(transfer.csrf_token.as_deref())?;
///     Ok(format!("sent {}", transfer.amount))
/// }
/// ```
pub struct CsrfToken {
    live: Arc<Live>,
    /// The request's `X-CSRF-Token` header, if it sent one.
    header: Option<String>,
}

impl CsrfToken {
    /// The request header that scripts send the token in: `X-CSRF-Token`.
    pub const HEADER: &'static str = "X-CSRF-Token";

    /// The session's token, made (and the session stored) if it has none yet.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] when a new token would grow the session past
    /// `max_session_size`.
    pub fn token(&self) -> Result<String, Error> {
        match self.live.get::<String>(CSRF_KEY) {
            Some(token) => Ok(token),
            None => new_token(&self.live),
        }
    }

    /// Checks a submitted token against the session's, in constant time. Take the form
    /// field as an `Option`, so that a form without it fails here with `403`, not in form
    /// parsing with `422`.
    ///
    /// # Errors
    ///
    /// [`Error::Csrf`] (`403 Forbidden`) when the session has no token, or `submitted` is
    /// missing or not it.
    pub fn verify(&self, submitted: Option<&str>) -> Result<(), Error> {
        let submitted = submitted.ok_or(Error::Csrf)?;
        let expected = self.live.get::<String>(CSRF_KEY).ok_or(Error::Csrf)?;
        match bool::from(expected.as_bytes().ct_eq(submitted.as_bytes())) {
            true => Ok(()),
            false => Err(Error::Csrf),
        }
    }

    /// Checks the token a script sent in the [`X-CSRF-Token`](Self::HEADER) header, as
    /// [`verify`](Self::verify) checks a form's: for `fetch` and XHR requests and JSON
    /// APIs, which have no form field. A page hands the token to its scripts, say in a
    /// `<meta name="csrf-token">` tag.
    ///
    /// # Errors
    ///
    /// [`Error::Csrf`] (`403 Forbidden`) when the session has no token, or the header is
    /// missing or not it.
    ///
    /// # Example
    ///
    /// ```
    /// use rocket::{post, serde::json::Json};
    /// use rocket_server_sessions::{CsrfToken, Error};
    ///
    /// // fetch("/api/transfer", { method: "POST", headers: { "X-CSRF-Token": token }, body })
    /// #[post("/api/transfer", data = "<amount>")]
    /// fn transfer(csrf: CsrfToken, amount: Json<u64>) -> Result<String, Error> {
    ///     csrf.verify_header()?;
    ///     Ok(format!("sent {}", amount.0))
    /// }
    /// ```
    pub fn verify_header(&self) -> Result<(), Error> {
        self.verify(self.header.as_deref())
    }
}

/// Gives the session a new CSRF token and returns it.
fn new_token(live: &Live) -> Result<String, Error> {
    let mut bytes = [0; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = BASE64URL_NOPAD.encode(&bytes);
    live.set(CSRF_KEY, &token)?;
    Ok(token)
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let header = req.headers().get_one(Self::HEADER).map(str::to_owned);
        live(req).await.map(|live| CsrfToken { live, header })
    }
}

impl Sentinel for CsrfToken {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        fairing_missing(rocket, "CsrfToken")
    }
}
