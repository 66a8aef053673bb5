//! Per-session CSRF tokens (the synchronizer token pattern).

use std::sync::Arc;

use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};

use crate::error::Error;
use crate::state::{fairing_missing, live, Live};

/// The session's CSRF token: put it in every state-changing form, check it on submit.
///
/// The token is bound to the session's id: HMAC-SHA256 of the id under a key derived from
/// the secrets, so it is kept nowhere and costs no store access. A new session id
/// ([`SessionHandle::regenerate`](crate::SessionHandle::regenerate), and so
/// [`Auth::login`](crate::Auth::login)) voids it. [`verify`](Self::verify) compares in
/// constant time and fails with [`Error::Csrf`], which answers `403 Forbidden`. Scripts
/// (`fetch`, XHR) send the token in the [`X-CSRF-Token`](Self::HEADER) header instead,
/// checked by [`verify_header`](Self::verify_header).
///
/// # Visitors without a session
///
/// A form for a visitor who has no session (a log-in page) stores nothing: the token is
/// bound to the id the visitor's session will have, which goes to the browser in the
/// session cookie, signed as a pending id that no store holds. When the visitor's session
/// starts, it is stored under that id and the token stays valid; logging in moves the
/// session to a fresh id, as it always does. So a flood of anonymous visitors to a form
/// costs the store nothing.
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
/// fn form(csrf: CsrfToken) -> String {
///     format!(r#"<form method="post"><input type="hidden" name="csrf_token" value="{}">"#, csrf.token())
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

    /// The session's token, 43 characters of URL-safe base64. For a visitor without a
    /// session, the response carries the id it is bound to (nothing is stored).
    pub fn token(&self) -> String {
        self.live.csrf_token()
    }

    /// Checks a submitted token against the session's, in constant time. Take the form
    /// field as an `Option`, so that a form without it fails here with `403`, not in form
    /// parsing with `422`.
    ///
    /// # Errors
    ///
    /// [`Error::Csrf`] (`403 Forbidden`) when the request carries no session cookie (nor a
    /// pending one), or `submitted` is missing or not its token.
    pub fn verify(&self, submitted: Option<&str>) -> Result<(), Error> {
        match submitted.is_some_and(|token| self.live.verify_csrf(token)) {
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
    /// [`Error::Csrf`] (`403 Forbidden`) when the request carries no session cookie (nor a
    /// pending one), or the header is missing or not its token.
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

/// Never prints the token.
impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfToken").finish_non_exhaustive()
    }
}
