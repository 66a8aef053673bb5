//! A small app with a login: the `Authenticated` guard, log-in and log-out, flash messages
//! and CSRF tokens (each form checked in one step by `CsrfForm`), with Tera templates.
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
use std::sync::{Arc, Mutex};

use argon2::password_hash::{self, Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rocket::form::FromForm;
use rocket::http::Header;
use rocket::response::{Redirect, Responder};
use rocket::serde::json::Json;
use rocket::tokio::sync::Semaphore;
use rocket::tokio::task::spawn_blocking;
use rocket::{get, post, routes, Build, Rocket, State};
use rocket_dyn_templates::{context, Template};
use rocket_server_sessions::{
    safe_next, AuthSession, Authenticated, CsrfForm, CsrfToken, Error, Session, SessionEntry,
    SessionFlash, Sessions,
};
use serde::{Deserialize, Serialize};

/// The users and their Argon2 password hashes (never the passwords themselves), and the
/// gate every check goes through.
struct Users {
    hashes: HashMap<&'static str, &'static str>,
    hashing: Hashing,
}

/// Checked against when the user does not exist, so a wrong user name takes as long as a
/// wrong password (and the same place in the queue) and the timing tells nothing about
/// who has an account.
const NOBODY: &str = "$argon2id$v=19$m=19456,t=2,p=1$7fhvsU4mVX+tCkSfRXGIIg$GXpEDI3bhfYKR2j0dCRE/LHMiVhTtnHRxhvmPPxsH+k";

/// What a password check found.
enum Verdict {
    /// The password is the user's.
    Verified,
    /// No such user, or not their password.
    Wrong,
    /// Too many checks are running and waiting: none was made. Try again in a second.
    Busy,
}

impl Users {
    fn demo() -> Self {
        // alice / wonderland
        let alice = "$argon2id$v=19$m=19456,t=2,p=1$pqXJNnM21wa7k1xpKoGcww$WtvE+osCMMUA411bTpDEJ6fuFGmnk4nzVnfWC0fCKU8";
        Users {
            hashes: HashMap::from([("alice", alice)]),
            hashing: Hashing::per_core(),
        }
    }

    /// Whether `password` is `username`'s. Argon2 takes 19 MiB and tens of milliseconds
    /// of CPU per check, on purpose: the check runs through [`Hashing`], on the blocking
    /// pool, so that it never stalls the async workers that answer every other route,
    /// and a few at a time, so that a flood of wrong passwords costs a bounded amount of
    /// memory and CPU.
    async fn check(&self, username: &str, password: &str) -> Verdict {
        let known = self.hashes.get(username).copied();
        let password = password.to_owned();
        let phc = known.unwrap_or(NOBODY);
        let verified = self
            .hashing
            .run(move |memory| verify(phc, password.as_bytes(), memory).is_ok());
        match verified.await {
            Err(Busy) => Verdict::Busy,
            Ok(true) if known.is_some() => Verdict::Verified,
            Ok(_) => Verdict::Wrong,
        }
    }
}

/// Runs password checks on Tokio's blocking pool, a few at a time: one per core (at most
/// [`Hashing::MOST_AT_ONCE`]), and at most `waiting` more in line. A check that finds the
/// line full is refused at once, without hashing: it costs neither Argon2's 19 MiB nor
/// its CPU, and a flood of them is answered as fast as any other page.
///
/// Each check running has a memory of its own, kept for the next check: allocated anew
/// for each check (as `verify_password` does), the freed 19 MiB blocks stayed with the
/// allocator, so even two checks at a time grew the process by hundreds of MiB.
pub struct Hashing {
    /// A permit per check running or waiting.
    admitted: Semaphore,
    /// A permit per check running.
    running: Arc<Semaphore>,
    /// Argon2's memory, one per check running, kept between checks.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// The line of password checks is full: try again in a second.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Hashing {
    /// The most checks [`Hashing::per_core`] runs at once: 8 take 152 MiB.
    pub const MOST_AT_ONCE: usize = 8;

    /// A check at a time per core (at most [`Hashing::MOST_AT_ONCE`]), and twice as
    /// many waiting.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let at_once = cores.min(Hashing::MOST_AT_ONCE);
        Hashing::new(at_once, 2 * at_once)
    }

    /// `at_once` checks at a time (at least one), and at most `waiting` more in line.
    pub fn new(at_once: usize, waiting: usize) -> Self {
        let at_once = at_once.max(1);
        Hashing {
            admitted: Semaphore::new(at_once + waiting),
            running: Arc::new(Semaphore::new(at_once)),
            memory: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Runs `check` on the blocking pool, with a memory for Argon2, once a permit is
    /// free; or refuses at once when the line is full. The permit is taken here, before
    /// anything is spawned, so a check whose request is dropped while it waits never
    /// starts; and it travels into the blocking task, so a check that has started holds
    /// it until it ends, even when its request is gone. A panic in `check` is a `false`.
    pub async fn run(
        &self,
        check: impl FnOnce(&mut Vec<Block>) -> bool + Send + 'static,
    ) -> Result<bool, Busy> {
        let _in_line = self.admitted.try_acquire().map_err(|_| Busy)?;
        let Ok(permit) = self.running.clone().acquire_owned().await else {
            return Err(Busy);
        };
        let memory = self.memory.clone();
        let checked = spawn_blocking(move || {
            let spare = memory.lock().ok().and_then(|mut spare| spare.pop());
            let mut blocks = spare.unwrap_or_default();
            let verified = check(&mut blocks);
            if let Ok(mut spare) = memory.lock() {
                spare.push(blocks);
            }
            (verified, permit)
        });
        Ok(checked.await.is_ok_and(|(verified, _permit)| verified))
    }
}

/// Whether `password` is the one the Argon2 PHC string `phc` was made from: what
/// `PasswordVerifier::verify_password` does, but hashing in `memory` (grown to fit) rather
/// than in a new allocation. The comparison of the outputs is constant-time.
fn verify(phc: &str, password: &[u8], memory: &mut Vec<Block>) -> password_hash::Result<()> {
    let hash = PasswordHash::new(phc)?;
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(password_hash::Error::Password);
    };
    let params = Params::try_from(&hash)?;
    let algorithm = Algorithm::try_from(hash.algorithm)?;
    let version = hash.version.map(Version::try_from).transpose()?;
    let mut salt_bytes = [0; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    memory.resize(params.block_count(), Block::default());
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let computed = Output::init_with(expected.len(), |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..])?)
    })?;
    if computed == expected {
        Ok(())
    } else {
        Err(password_hash::Error::Password)
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
        context! { csrf_input: csrf.hidden_input(), next, flash: flash.take(), error: None::<&str> },
    )
}

#[derive(FromForm)]
struct Login<'r> {
    username: &'r str,
    password: &'r str,
    next: Option<&'r str>,
}

/// A log-in the app turned down: the form again, with why.
#[derive(Responder)]
enum Refused {
    /// Wrong user name or password.
    #[response(status = 401)]
    Wrong(Template),
    /// Too many log-ins at once: try again after `Retry-After`. A responder of the app's
    /// own, since a catcher (`Err(Status)`) would drop the header.
    #[response(status = 429)]
    Busy(Template, Header<'static>),
}

#[post("/login", data = "<form>")]
async fn login(
    form: CsrfForm<Login<'_>>,
    csrf: CsrfToken,
    mut auth: AuthSession,
    users: &State<Users>,
) -> Result<Result<Redirect, Refused>, Error> {
    let page = |error: &str| {
        let page = context! {
            csrf_input: csrf.hidden_input(),
            next: form.next,
            flash: None::<()>,
            error,
        };
        Template::render("login", page)
    };
    match users.check(form.username, form.password).await {
        Verdict::Verified => {}
        Verdict::Wrong => {
            return Ok(Err(Refused::Wrong(page("Wrong user name or password."))));
        }
        Verdict::Busy => {
            let page = page("Too many log-ins at once: try again in a moment.");
            let retry = Header::new("Retry-After", "1");
            return Ok(Err(Refused::Busy(page, retry)));
        }
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
    auth: AuthSession,
    csrf: CsrfToken,
    mut flash: SessionFlash,
) -> Result<Template, Error> {
    let sessions = auth.sessions().await?.len();
    Ok(Template::render(
        "dashboard",
        context! { user: &*user, sessions, csrf_input: csrf.hidden_input(), flash: flash.take() },
    ))
}

/// "Sign out other devices": every other session of the user is dead on its next request.
#[post("/logout/others", data = "<_form>")]
async fn logout_others(
    _form: CsrfForm,
    _user: Authenticated,
    auth: AuthSession,
    mut flash: SessionFlash,
) -> Result<Redirect, Error> {
    let revoked = auth.revoke_others().await?;
    let plural = if revoked == 1 { "" } else { "s" };
    flash.set(
        "info",
        &format!("Signed out of {revoked} other session{plural}."),
    )?;
    Ok(Redirect::to("/dashboard"))
}

/// Logs out; the form carries only its CSRF token (`CsrfForm` with no type of its own).
#[post("/logout", data = "<_form>")]
fn logout(
    _form: CsrfForm,
    mut auth: AuthSession,
    mut flash: SessionFlash,
) -> Result<Redirect, Error> {
    let signed_in = auth.user().is_some();
    auth.logout();
    // Lives in a fresh session: the old one is gone. Only for someone who was signed in:
    // a stranger replaying the form would have a session stored for each request.
    if signed_in {
        flash.set("info", "You have been logged out.")?;
    }
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
