//! Per-session CSRF tokens (the synchronizer token pattern).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use rocket::data::{self, Data, FromData};
use rocket::form::{self, DataField, Form, FromForm, ValueField};
use rocket::http::Status;
use rocket::outcome::Outcome as Any;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};

use crate::error::Error;
use crate::state::{fairing_missing, live, Live};

/// The name of the form field that carries the CSRF token: `csrf_token`.
const FIELD: &str = "csrf_token";

/// The session's CSRF token: put it in every state-changing form, check it on submit.
///
/// The token is bound to the session's id: HMAC-SHA256 of the id under a key derived from
/// the secrets, so it is kept nowhere and costs no store access. A new session id
/// ([`SessionHandle::regenerate`](crate::SessionHandle::regenerate), and so
/// [`AuthSession::login`](crate::AuthSession::login)) voids it. [`verify`](Self::verify) compares
/// in constant time and fails with [`Error::Csrf`], which answers `403 Forbidden`. Scripts
/// (`fetch`, XHR) send the token in the [`X-CSRF-Token`](Self::HEADER) header instead,
/// checked by [`verify_header`](Self::verify_header).
///
/// A form's handler checks the token in one step by taking its form as [`CsrfForm<T>`]
/// instead of `Form<T>`; its page writes the field with [`hidden_input`](Self::hidden_input).
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
///     format!(r#"<form method="post">{}<input name="amount"></form>"#, csrf.hidden_input())
/// }
///
/// // By hand, where `CsrfForm` does not fit (the token among other fields of your own).
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

    /// The form field that carries the token, as HTML:
    /// `<input type="hidden" name="csrf_token" value="...">`, its value escaped. Put it
    /// in every state-changing form, and take the form as [`CsrfForm<T>`].
    ///
    /// In a template that escapes what it is given (Tera, Handlebars), mark it safe:
    /// `{{ csrf_input | safe }}`.
    ///
    /// # Example
    ///
    /// ```
    /// use rocket::{get, response::content::RawHtml};
    /// use rocket_server_sessions::CsrfToken;
    ///
    /// #[get("/cart")]
    /// fn cart(csrf: CsrfToken) -> RawHtml<String> {
    ///     RawHtml(format!(
    ///         r#"<form method="post" action="/cart/add">{}<input name="sku"></form>"#,
    ///         csrf.hidden_input()
    ///     ))
    /// }
    /// ```
    pub fn hidden_input(&self) -> String {
        format!(
            r#"<input type="hidden" name="{FIELD}" value="{}">"#,
            escape_html(&self.token())
        )
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
    /// Rocket's `Json<T>` reads the body and this guard the header, so a JSON handler
    /// takes both and calls `verify_header()?` first: a wrong token then answers `403`
    /// before the handler changes anything.
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

/// `text` with the characters that are special in HTML replaced by their entities.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }

    escaped
}

/// A form whose CSRF token is checked as it is parsed: `Form<T>` and
/// [`CsrfToken::verify`] in one data guard.
///
/// It parses the body as Rocket's [`Form<T>`] does, takes the `csrf_token` field out (so
/// `T` does not declare it), and checks it against the session's token. The handler runs
/// only when the token is right, so a forged post changes nothing. Write the field with
/// [`CsrfToken::hidden_input`]. It derefs to `T`; [`into_inner`](Self::into_inner) gives
/// `T` itself.
///
/// For a visitor without a session (a log-in form), the token is bound to the pending id
/// in their cookie, as [`CsrfToken`] describes: checking it stores nothing.
///
/// # Outcomes
///
/// - **Success**: the token is the session's, and the form parses as `T`.
/// - **Error** `403 Forbidden` when the `csrf_token` field is missing, repeated or wrong,
///   or the request carries no session cookie (nor a pending one). The token is checked
///   first: a forged post learns nothing of the form's validation.
/// - **Error** with the status of the form's errors (`422 Unprocessable Entity` for a
///   field that does not parse, `413` for a body over the form limit), as `Form<T>`.
/// - **Error** `503 Service Unavailable` when the store fails.
/// - **Forward** `415 Unsupported Media Type` when the body is not a form, as `Form<T>`.
///
/// Errors answer through the application's catchers (a `#[catch(403)]` of its own, say);
/// the error is [`form::Errors`], as `Form<T>`'s, and a CSRF failure is one
/// [custom](form::error::ErrorKind::Custom) error named `csrf_token` holding
/// [`Error::Csrf`].
///
/// # Example
///
/// ```
/// use rocket::{post, response::Redirect, FromForm};
/// use rocket_server_sessions::{CsrfForm, Error, Session, SessionEntry};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Default)]
/// # struct Cart(Vec<String>);
/// # impl SessionEntry for Cart { const KEY: &'static str = "cart"; }
///
/// #[derive(FromForm)]
/// struct Add { sku: String }
///
/// #[post("/cart/add", data = "<add>")]
/// fn add(add: CsrfForm<Add>, mut cart: Session<Cart>) -> Result<Redirect, Error> {
///     cart.update(|cart| cart.0.push(add.into_inner().sku))?;
///     Ok(Redirect::to("/cart"))
/// }
/// ```
pub struct CsrfForm<T = NoFields>(T);

/// A form with no field of its own, only its CSRF token: what [`CsrfForm`] parses when it
/// names no type (a log-out button, a "delete" button). Any other field is ignored.
///
/// # Example
///
/// ```
/// use rocket::{post, response::Redirect};
/// use rocket_server_sessions::{AuthSession, CsrfForm};
///
/// // <form method="post" action="/logout">{{ csrf_input | safe }}<button>Log out</button></form>
/// #[post("/logout", data = "<_form>")]
/// fn logout(_form: CsrfForm, mut auth: AuthSession) -> Redirect {
///     auth.logout();
///     Redirect::to("/login")
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoFields;

#[rocket::async_trait]
impl<'r> FromForm<'r> for NoFields {
    type Context = ();

    fn init(_: form::Options) -> Self::Context {}

    fn push_value(_: &mut Self::Context, _: ValueField<'r>) {}

    async fn push_data(_: &mut Self::Context, _: DataField<'r, '_>) {}

    fn finalize(_: Self::Context) -> form::Result<'r, Self> {
        Ok(NoFields)
    }
}

impl<T> CsrfForm<T> {
    /// The parsed form.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for CsrfForm<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for CsrfForm<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// Prints the form, never the token (which it does not keep).
impl<T: std::fmt::Debug> std::fmt::Debug for CsrfForm<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CsrfForm").field(&self.0).finish()
    }
}

/// A form's `csrf_token` field and the rest of it, parsed as `T` (whose errors wait
/// until the token is checked).
struct Tokened<'r, T> {
    /// The field's value, `None` when it is missing or repeated.
    token: Option<&'r str>,
    form: form::Result<'r, T>,
}

/// [`Tokened`]'s parse state.
struct TokenedContext<'r, T: FromForm<'r>> {
    token: Option<&'r str>,
    repeated: bool,
    form: T::Context,
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r>> FromForm<'r> for Tokened<'r, T> {
    type Context = TokenedContext<'r, T>;

    fn init(opts: form::Options) -> Self::Context {
        TokenedContext {
            token: None,
            repeated: false,
            form: T::init(opts),
        }
    }

    fn push_value(ctxt: &mut Self::Context, field: ValueField<'r>) {
        if field.name.source() != FIELD {
            return T::push_value(&mut ctxt.form, field);
        }
        ctxt.repeated |= ctxt.token.replace(field.value).is_some();
    }

    async fn push_data(ctxt: &mut Self::Context, field: DataField<'r, '_>) {
        T::push_data(&mut ctxt.form, field).await
    }

    fn push_error(ctxt: &mut Self::Context, error: form::Error<'r>) {
        T::push_error(&mut ctxt.form, error)
    }

    fn finalize(ctxt: Self::Context) -> form::Result<'r, Self> {
        Ok(Tokened {
            token: ctxt.token.filter(|_| !ctxt.repeated),
            form: T::finalize(ctxt.form),
        })
    }
}

/// `error` as a form's error, named after the token's field.
fn form_error<'r>(status: Status, error: Error) -> form::Errors<'r> {
    form::Error::from((status, Box::new(error) as Box<dyn std::error::Error + Send>))
        .with_name(FIELD)
        .into()
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r>> FromData<'r> for CsrfForm<T> {
    type Error = form::Errors<'r>;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let tokened = match Form::<Tokened<'r, T>>::from_data(req, data).await {
            Any::Success(form) => form.into_inner(),
            Any::Error(error) => return Any::Error(error),
            Any::Forward(forward) => return Any::Forward(forward),
        };
        let live = match live(req).await {
            Any::Success(live) => live,
            Any::Error((status, error)) => return Any::Error((status, form_error(status, error))),
            Any::Forward(status) => return Any::Error((status, form::Errors::new())),
        };

        let token = CsrfToken { live, header: None };
        if let Err(error) = token.verify(tokened.token) {
            let status = error.refuse(req);
            return Any::Error((status, form_error(status, error)));
        }
        match tokened.form {
            Ok(form) => Any::Success(CsrfForm(form)),
            Err(errors) => Any::Error((errors.status(), errors)),
        }
    }
}

impl<T> Sentinel for CsrfForm<T> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        fairing_missing(rocket, "CsrfForm")
    }
}

#[cfg(test)]
mod tests {
    use super::escape_html;

    #[test]
    fn escape_html_replaces_what_html_reads_as_markup() {
        assert_eq!(
            escape_html(r#"a"b'c<d>e&f-_"#),
            "a&quot;b&#x27;c&lt;d&gt;e&amp;f-_"
        );
    }
}
