//! A small app with a login: the `Authenticated` guard, log-in and log-out, flash messages
//! and CSRF tokens, with Tera templates.
//!
//! Run it from the repository root (it reads ./Rocket.toml, which points Rocket at this
//! example's templates):
//!
//! ```sh
//! cargo run --example login
//! ```
//!
//! then open <http://127.0.0.1:8000/dashboard> and sign in as `alice` / `wonderland`.

use std::collections::HashMap;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::{get, post, routes, Build, Rocket, State};
use rocket_dyn_templates::{context, Template};
use rocket_server_sessions::{
    safe_next, Auth, Authenticated, CsrfToken, Error, Session, SessionEntry, SessionFlash, Sessions,
};
use serde::{Deserialize, Serialize};

/// The users and their Argon2 password hashes: never the passwords themselves.
struct Users(HashMap<&'static str, &'static str>);

/// Checked against when the user does not exist, so a wrong user name takes as long as a
/// wrong password and the timing tells nothing about who has an account.
const NOBODY: &str = "$argon2id$v=19$m=19456,t=2,p=1$7fhvsU4mVX+tCkSfRXGIIg$GXpEDI3bhfYKR2j0dCRE/LHMiVhTtnHRxhvmPPxsH+k";

impl Users {
    fn demo() -> Self {
        // alice / wonderland
        let alice = "$argon2id$v=19$m=19456,t=2,p=1$pqXJNnM21wa7k1xpKoGcww$WtvE+osCMMUA411bTpDEJ6fuFGmnk4nzVnfWC0fCKU8";
        Users(HashMap::from([("alice", alice)]))
    }

    /// Whether `password` is `username`'s. Argon2 takes tens of milliseconds of CPU on
    /// purpose: it runs on Tokio's blocking pool, so that a flood of log-in attempts
    /// never stalls the async workers that answer every other route.
    async fn check(&self, username: &str, password: &str) -> bool {
        let known = self.0.get(username).copied();
        let password = password.to_owned();
        let verified = rocket::tokio::task::spawn_blocking(move || {
            let hash = PasswordHash::new(known.unwrap_or(NOBODY));
            hash.is_ok_and(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
        });
        // A panic in the hashing is a failed log-in, not a crashed worker.
        verified.await.unwrap_or(false) && known.is_some()
    }
}

#[derive(Serialize, Deserialize, Default)]
struct Visits {
    count: u64,
}

impl SessionEntry for Visits {
    const KEY: &'static str = "visits";
}

/// Public; takes no session guard, so it never creates a session.
#[get("/")]
fn index() -> Template {
    Template::render("index", context! {})
}

#[get("/counter")]
fn counter(mut visits: Session<Visits>) -> Result<Json<Visits>, Error> {
    let count = visits.update(|v| {
        v.count += 1;
        v.count
    })?;
    Ok(Json(Visits { count }))
}

#[get("/login?<next>")]
fn login_page(next: Option<&str>, csrf: CsrfToken, mut flash: SessionFlash) -> Template {
    Template::render(
        "login",
        context! { csrf_token: csrf.token(), next, flash: flash.take(), error: None::<&str> },
    )
}

#[derive(FromForm)]
struct Login<'r> {
    username: &'r str,
    password: &'r str,
    csrf_token: Option<&'r str>,
    next: Option<&'r str>,
}

#[post("/login", data = "<form>")]
async fn login(
    form: Form<Login<'_>>,
    csrf: CsrfToken,
    mut auth: Auth,
    users: &State<Users>,
) -> Result<Result<Redirect, (Status, Template)>, Error> {
    csrf.verify(form.csrf_token)?;
    if !users.check(form.username, form.password).await {
        let page = context! {
            csrf_token: csrf.token(),
            next: form.next,
            flash: None::<()>,
            error: "Wrong user name or password.",
        };
        return Ok(Err((Status::Unauthorized, Template::render("login", page))));
    }

    // Stores the user and moves the session to a new id, in one commit.
    auth.login(&form.username.to_string())?;
    Ok(Ok(Redirect::to(
        safe_next(form.next, "/dashboard").to_string(),
    )))
}

#[get("/dashboard")]
async fn dashboard(
    user: Authenticated,
    auth: Auth,
    csrf: CsrfToken,
    mut flash: SessionFlash,
) -> Result<Template, Error> {
    let sessions = auth.sessions().await?.len();
    Ok(Template::render(
        "dashboard",
        context! { user: &*user, sessions, csrf_token: csrf.token(), flash: flash.take() },
    ))
}

/// "Sign out other devices": every other session of the user is dead on its next request.
#[post("/logout/others", data = "<form>")]
async fn logout_others(
    form: Form<Logout<'_>>,
    csrf: CsrfToken,
    _user: Authenticated,
    auth: Auth,
    mut flash: SessionFlash,
) -> Result<Redirect, Error> {
    csrf.verify(form.csrf_token)?;
    let revoked = auth.revoke_others().await?;
    let plural = if revoked == 1 { "" } else { "s" };
    flash.set(
        "info",
        &format!("Signed out of {revoked} other session{plural}."),
    )?;
    Ok(Redirect::to("/dashboard"))
}

#[derive(FromForm)]
struct Logout<'r> {
    csrf_token: Option<&'r str>,
}

#[post("/logout", data = "<form>")]
fn logout(
    form: Form<Logout<'_>>,
    csrf: CsrfToken,
    mut auth: Auth,
    mut flash: SessionFlash,
) -> Result<Redirect, Error> {
    csrf.verify(form.csrf_token)?;
    auth.logout();
    // Lives in a fresh session: the old one is gone.
    flash.set("info", "You have been logged out.")?;
    Ok(Redirect::to("/login"))
}

/// The app, on the configuration Rocket reads (Rocket.toml, ROCKET_* variables).
pub fn app() -> Rocket<Build> {
    app_on(rocket::Config::figment())
}

/// The app on `figment`: the tests run it on their own configuration.
pub fn app_on(figment: rocket::figment::Figment) -> Rocket<Build> {
    app_with(figment, Sessions::fairing())
}

/// The app on `figment` with `sessions` (a custom store, say): the tests use it.
pub fn app_with(figment: rocket::figment::Figment, sessions: Sessions) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(sessions)
        .attach(Template::fairing())
        .manage(Users::demo())
        .mount(
            "/",
            routes![
                index,
                counter,
                login_page,
                login,
                dashboard,
                logout,
                logout_others
            ],
        )
}

#[rocket::launch]
fn rocket() -> _ {
    app()
}
