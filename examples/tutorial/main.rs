//! The five exercises of the express-session tutorial, on rocket_server_sessions: a
//! shopping cart, a theme remembered across visits, a multi-step form that keeps its
//! progress, signing users out after inactivity, and "remember me".
//!
//! Run it from the repository root:
//!
//! ```sh
//! cargo run --example tutorial
//! ```
//!
//! then open <http://127.0.0.1:8000/> and sign in as `alice` / `wonderland`. Every form
//! carries a CSRF token (`CsrfToken::hidden_input`) and every POST handler checks it with
//! its fields in one step (`CsrfForm`): a missing or wrong token is `403` and changes
//! nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use rocket::form::{FromForm, FromFormField};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::tokio::sync::Semaphore;
use rocket::tokio::task::spawn_blocking;
use rocket::{get, post, routes, Build, Either, Rocket, State};
use rocket_dyn_templates::{context, Template};
use rocket_server_sessions::{
    safe_next, AuthSession, Authenticated, CsrfForm, CsrfToken, Ended, Error, Session,
    SessionEntry, SessionFlash, SessionHandle, Sessions, SessionsBuilder,
};
use serde::{Deserialize, Serialize};

/// Exercise 4: a signed-in session ends after this long without a request. Anonymous
/// sessions (a cart, a theme) keep `max_age` (a day by default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Exercise 5: how long "remember me" keeps a user signed in, idle or not.
pub const REMEMBER_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

// Exercise 1: a shopping cart in the session.

#[derive(Serialize, Deserialize, Default)]
struct Cart {
    /// Quantity by item.
    items: BTreeMap<String, u32>,
}

impl SessionEntry for Cart {
    const KEY: &'static str = "cart";
}

#[get("/cart")]
fn cart(cart: Session<Cart>) -> Json<Cart> {
    Json(cart.get().unwrap_or_default())
}

#[derive(FromForm)]
struct AddToCart<'r> {
    #[field(validate = len(1..=32))]
    sku: &'r str,
    #[field(validate = range(1..=99))]
    qty: u32,
}

#[post("/cart/add", data = "<form>")]
fn cart_add(form: CsrfForm<AddToCart<'_>>, mut cart: Session<Cart>) -> Result<Redirect, Error> {
    cart.update(|cart| {
        let qty = cart.items.entry(form.sku.to_owned()).or_default();
        *qty = qty.saturating_add(form.qty).min(999);
    })?;
    Ok(Redirect::to("/cart"))
}

#[derive(FromForm)]
struct RemoveFromCart<'r> {
    sku: &'r str,
}

#[post("/cart/remove", data = "<form>")]
fn cart_remove(
    form: CsrfForm<RemoveFromCart<'_>>,
    mut cart: Session<Cart>,
) -> Result<Redirect, Error> {
    if let Some(mut items) = cart.get() {
        items.items.remove(form.sku);
        cart.set(items)?;
    }
    Ok(Redirect::to("/cart"))
}

// Exercise 2: a theme remembered across visits (and across log-in: the session moves to
// a new id with its data).

#[derive(Serialize, Deserialize, FromFormField, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Theme {
    #[default]
    Light,
    Dark,
}

#[derive(Serialize, Deserialize, Default, FromForm)]
struct Preferences {
    theme: Theme,
}

impl SessionEntry for Preferences {
    const KEY: &'static str = "preferences";
}

#[get("/theme")]
fn theme(preferences: Session<Preferences>) -> Json<Preferences> {
    Json(preferences.get().unwrap_or_default())
}

#[post("/theme", data = "<form>")]
fn set_theme(
    form: CsrfForm<Preferences>,
    mut preferences: Session<Preferences>,
) -> Result<Redirect, Error> {
    preferences.set(form.into_inner())?;
    Ok(Redirect::to("/"))
}

#[get("/")]
fn index(
    cart: Session<Cart>,
    preferences: Session<Preferences>,
    user: Option<Authenticated>,
    csrf: CsrfToken,
    mut flash: SessionFlash,
) -> Template {
    let page = context! {
        cart: cart.get().unwrap_or_default(),
        theme: preferences.get().unwrap_or_default().theme,
        user: user.map(Authenticated::into_user),
        csrf_input: csrf.hidden_input(),
        flash: flash.take(),
    };
    Template::render("index", page)
}

// Exercise 3: a multi-step form that keeps its progress.

#[derive(Serialize, Deserialize, Default)]
struct Signup {
    name: Option<String>,
    address: Option<String>,
    confirmed: bool,
}

impl SessionEntry for Signup {
    const KEY: &'static str = "signup";
}

impl Signup {
    /// The first step not done yet: 1, 2 or 3; 4 when all are.
    fn next_step(&self) -> u8 {
        match (&self.name, &self.address, self.confirmed) {
            (None, ..) => 1,
            (_, None, _) => 2,
            (.., false) => 3,
            _ => 4,
        }
    }

    /// Where to go instead of step `step` when an earlier one is not done.
    fn earlier_step(&self, step: u8) -> Option<Redirect> {
        let next = self.next_step();
        (next < step).then(|| Redirect::to(format!("/signup/{next}")))
    }
}

#[get("/signup/<step>")]
fn signup_step(step: u8, signup: Session<Signup>, csrf: CsrfToken) -> Either<Template, Redirect> {
    let signup = signup.get().unwrap_or_default();
    if !(1..=3).contains(&step) {
        return Either::Right(Redirect::to("/signup/1"));
    }
    match signup.earlier_step(step) {
        Some(earlier) => Either::Right(earlier),
        None => {
            let page = context! { step, signup, csrf_input: csrf.hidden_input() };
            Either::Left(Template::render("signup", page))
        }
    }
}

#[derive(FromForm)]
struct Name<'r> {
    #[field(validate = len(1..=100))]
    name: &'r str,
}

#[post("/signup/1", data = "<form>")]
fn signup_name(form: CsrfForm<Name<'_>>, mut signup: Session<Signup>) -> Result<Redirect, Error> {
    signup.update(|signup| {
        signup.name = Some(form.name.to_owned());
        signup.confirmed = false;
    })?;
    Ok(Redirect::to("/signup/2"))
}

#[derive(FromForm)]
struct Address<'r> {
    #[field(validate = len(1..=200))]
    address: &'r str,
}

#[post("/signup/2", data = "<form>")]
fn signup_address(
    form: CsrfForm<Address<'_>>,
    mut signup: Session<Signup>,
) -> Result<Redirect, Error> {
    if let Some(earlier) = signup.get().unwrap_or_default().earlier_step(2) {
        return Ok(earlier);
    }
    signup.update(|signup| {
        signup.address = Some(form.address.to_owned());
        signup.confirmed = false;
    })?;
    Ok(Redirect::to("/signup/3"))
}

#[post("/signup/3", data = "<_form>")]
fn signup_confirm(_form: CsrfForm, mut signup: Session<Signup>) -> Result<Redirect, Error> {
    if let Some(earlier) = signup.get().unwrap_or_default().earlier_step(3) {
        return Ok(earlier);
    }
    signup.update(|signup| signup.confirmed = true)?;
    Ok(Redirect::to("/signup/done"))
}

/// The summary, once; the progress is cleared.
#[get("/signup/done")]
fn signup_done(mut signup: Session<Signup>) -> Either<Template, Redirect> {
    let done = signup.get().unwrap_or_default();
    if let Some(earlier) = done.earlier_step(4) {
        return Either::Right(earlier);
    }
    signup.remove();
    let page = context! { name: done.name, address: done.address };
    Either::Left(Template::render("signup_done", page))
}

// Exercises 4 and 5: log-in, signing out after inactivity, and "remember me".

/// Password checks: Argon2 against the users' hashes (never the passwords), on the
/// blocking pool, two at a time and sixteen more in line. A check that finds the line full
/// is refused at once (`429`), so a flood of wrong passwords costs bounded memory and CPU
/// (19 MiB per check running). A flood still fills the line for everyone: a real app adds
/// a limit per client (a proxy's, or a fairing's) in front of its log-in.
struct Passwords {
    /// A permit per check running or waiting.
    admitted: Semaphore,
    /// A permit per check running.
    running: Arc<Semaphore>,
}

/// alice's password hash: `wonderland`, Argon2id.
const ALICE: &str = "$argon2id$v=19$m=19456,t=2,p=1$pqXJNnM21wa7k1xpKoGcww$WtvE+osCMMUA411bTpDEJ6fuFGmnk4nzVnfWC0fCKU8";

impl Passwords {
    /// Whether `password` is `username`'s; `Err(429)` when too many checks run. An
    /// unknown user is checked against alice's hash too, so the time tells nothing.
    async fn check(&self, username: &str, password: &str) -> Result<bool, Status> {
        // Held until the check ends: its place in the line.
        let _in_line = self
            .admitted
            .try_acquire()
            .map_err(|_| Status::TooManyRequests)?;
        let permit = self.running.clone().acquire_owned().await;
        let permit = permit.map_err(|_| Status::TooManyRequests)?;
        let password = password.to_owned();
        let verified = spawn_blocking(move || {
            let _permit = permit;
            let hash = PasswordHash::new(ALICE).ok()?;
            Some(
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok(),
            )
        });
        let verified = verified.await.ok().flatten().unwrap_or(false);
        Ok(verified && username == "alice")
    }
}

#[get("/login?<next>")]
fn login_page(
    next: Option<&str>,
    csrf: CsrfToken,
    session: SessionHandle,
    mut flash: SessionFlash,
) -> Template {
    // `Authenticated` sent the user here; `ended` tells why their session is gone.
    let ended = match session.ended() {
        Some(Ended::Inactivity) => {
            Some("Your session ended after inactivity. Please sign in again.")
        }
        Some(_) => Some("Your session has ended. Please sign in again."),
        None => None,
    };
    let page = context! { next, ended, flash: flash.take(), csrf_input: csrf.hidden_input() };
    Template::render("login", page)
}

#[derive(FromForm)]
struct Login<'r> {
    username: &'r str,
    password: &'r str,
    /// The "remember me" checkbox: `on` when ticked.
    remember: bool,
    next: Option<&'r str>,
}

#[post("/login", data = "<form>")]
async fn login(
    form: CsrfForm<Login<'_>>,
    csrf: CsrfToken,
    mut auth: AuthSession,
    passwords: &State<Passwords>,
) -> Result<Result<Redirect, (Status, Template)>, Error> {
    match passwords.check(form.username, form.password).await {
        Ok(true) => {}
        refused => {
            let (status, error) = match refused {
                Err(busy) => (busy, "Too many sign-ins at once: try again in a moment."),
                Ok(_) => (Status::Unauthorized, "Wrong user name or password."),
            };
            let page = context! { next: form.next, error, csrf_input: csrf.hidden_input() };
            return Ok(Err((status, Template::render("login", page))));
        }
    }
    let user = form.username.to_owned();
    // A fresh session id either way; "remember me" gives the session a lifetime of its
    // own (a persistent cookie), which the idle timeout does not end.
    match form.remember {
        true => auth.login_for(&user, REMEMBER_FOR)?,
        false => auth.login(&user)?,
    }
    Ok(Ok(Redirect::to(
        safe_next(form.next, "/account").to_string(),
    )))
}

/// Strangers are sent to `/login?next=%2Faccount` (the crate's login redirect).
#[get("/account")]
fn account(user: Authenticated, csrf: CsrfToken) -> Template {
    Template::render(
        "account",
        context! { user: &*user, csrf_input: csrf.hidden_input() },
    )
}

#[post("/logout", data = "<_form>")]
fn logout(
    _form: CsrfForm,
    mut auth: AuthSession,
    mut flash: SessionFlash,
) -> Result<Redirect, Error> {
    let signed_in = auth.user().is_some();
    auth.logout();
    // Only for someone who was signed in: a stranger replaying the form would have a
    // session stored for each request.
    if signed_in {
        flash.set("info", "You have been signed out.")?;
    }
    Ok(Redirect::to("/login"))
}

/// The session settings of the tutorial: signed-in users signed out after
/// [`IDLE_TIMEOUT`] without a request, and cookies that end with the browser unless the
/// user asked to be remembered.
pub fn sessions() -> SessionsBuilder {
    Sessions::builder()
        .idle_timeout(IDLE_TIMEOUT)
        .browser_session(true)
}

/// The app on the configuration Rocket reads (Rocket.toml, `ROCKET_*` variables).
pub fn app() -> Rocket<Build> {
    app_with(rocket::Config::figment(), sessions())
}

/// The app on `figment`, with `sessions`: the tests use their own.
pub fn app_with(figment: rocket::figment::Figment, sessions: SessionsBuilder) -> Rocket<Build> {
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
    let (admitted, running) = (Semaphore::new(2 + 16), Arc::new(Semaphore::new(2)));
    rocket::custom(figment.merge(("template_dir", templates)))
        .attach(sessions.build())
        .attach(Template::fairing())
        .manage(Passwords { admitted, running })
        .mount(
            "/",
            routes![
                index,
                cart,
                cart_add,
                cart_remove,
                theme,
                set_theme,
                signup_step,
                signup_name,
                signup_address,
                signup_confirm,
                signup_done,
                login_page,
                login,
                account,
                logout
            ],
        )
}

#[rocket::launch]
fn rocket() -> _ {
    app()
}
