//! Builders shared by the integration tests: a test app, clients, cookie helpers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rocket::figment::Figment;
use rocket::http::{Cookie, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{get, post, routes, Build, Rocket, State};
use rocket_server_sessions::store::{CommitOutcome, CreateOutcome, DeleteOutcome};
use rocket_server_sessions::{
    store::{Changes, MemoryStore, SessionId, SessionRecord, SessionStore, StoreError},
    AuthSession, Authenticated, CsrfToken, Error, Session, SessionEntry, SessionHandle, Sessions,
    SessionsBuilder,
};
use serde::{Deserialize, Serialize};

pub const SECRET: &str = "a test secret that is at least 32 bytes long";
pub const OTHER_SECRET: &str = "another secret, also at least 32 bytes long";
pub const COOKIE: &str = "rocket.sid";

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
pub struct Visits {
    pub count: u64,
}

impl SessionEntry for Visits {
    const KEY: &'static str = "visits";
}

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
pub struct Cart {
    pub items: Vec<String>,
}

impl SessionEntry for Cart {
    const KEY: &'static str = "cart";
}

/// A newer shape of `Visits` that old records cannot decode into.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
pub struct VisitsV2 {
    pub count: String,
}

impl SessionEntry for VisitsV2 {
    const KEY: &'static str = "visits";
}

#[get("/plain")]
fn plain() -> &'static str {
    "plain"
}

#[get("/counter")]
fn counter(mut visits: Session<Visits>) -> Result<String, Error> {
    visits.update(|v| {
        v.count += 1;
        v.count.to_string()
    })
}

#[get("/count")]
fn count(visits: Session<Visits>) -> String {
    visits.get().map_or(0, |v| v.count).to_string()
}

#[get("/v2")]
fn v2(visits: Session<VisitsV2>) -> String {
    format!("{:?}", visits.get())
}

#[get("/cart/add/<item>")]
fn cart_add(mut cart: Session<Cart>, item: &str) -> Result<String, Error> {
    cart.update(|c| {
        c.items.push(item.into());
        c.items.join(",")
    })
}

#[get("/cart")]
fn cart(cart: Session<Cart>) -> String {
    cart.get().unwrap_or_default().items.join(",")
}

#[get("/both")]
fn both(mut visits: Session<Visits>, mut cart: Session<Cart>) -> Result<String, Error> {
    let count = visits.update(|v| {
        v.count += 1;
        v.count
    })?;
    cart.update(|c| c.items.push(format!("visit-{count}")))?;
    Ok(format!(
        "{count}:{}",
        cart.get().unwrap_or_default().items.join(",")
    ))
}

#[get("/id")]
fn id(session: SessionHandle) -> String {
    session.id().to_string()
}

#[get("/forget")]
fn forget(mut visits: Session<Visits>) -> String {
    format!("{:?}", visits.remove())
}

#[post("/destroy")]
fn destroy(mut session: SessionHandle) {
    session.destroy();
}

#[post("/destroy-then-set")]
fn destroy_then_set(mut session: SessionHandle, mut visits: Session<Visits>) -> Result<(), Error> {
    session.destroy();
    visits.set(Visits { count: 100 })
}

#[post("/regenerate")]
fn regenerate(mut session: SessionHandle) -> String {
    session.regenerate();
    session.id().to_string()
}

#[post("/remember/<millis>")]
fn remember(
    mut session: SessionHandle,
    mut visits: Session<Visits>,
    millis: u64,
) -> Result<(), Error> {
    session.set_max_age(Duration::from_millis(millis));
    visits.update(|v| v.count += 1)
}

#[get("/login/<user>")]
fn login_as(mut auth: AuthSession, user: &str) -> Result<(), Error> {
    auth.login(&user.to_string())
}

/// "Remember me": a log-in for `secs` seconds.
#[get("/login/<user>/for/<secs>")]
fn login_for(mut auth: AuthSession, user: &str, secs: u64) -> Result<(), Error> {
    auth.login_for(&user.to_string(), Duration::from_secs(secs))
}

/// The logged-in user, or nothing.
#[get("/whoami")]
fn whoami(user: Option<Authenticated>) -> String {
    user.map(Authenticated::into_user).unwrap_or_default()
}

/// Why the signed-in session the cookie named ended: `Some(Inactivity)`, say, or `None`.
#[get("/ended")]
fn ended(session: SessionHandle) -> String {
    format!("{:?}", session.ended())
}

/// The logged-in user's sessions: a line of `<public id> <current>` each, the oldest first.
#[get("/sessions")]
async fn sessions(auth: AuthSession) -> Result<String, Error> {
    let sessions = auth.sessions().await?;
    let lines: Vec<String> = sessions
        .iter()
        .map(|s| format!("{} {}", s.public_id(), s.is_current()))
        .collect();
    Ok(lines.join("\n"))
}

/// Signs out the user's other sessions: how many.
#[post("/logout/others")]
async fn logout_others(auth: AuthSession) -> Result<String, Error> {
    Ok(auth.revoke_others().await?.to_string())
}

/// Revokes the user's session of `public_id`: whether it was one.
#[post("/revoke/<public_id>")]
async fn revoke(auth: AuthSession, public_id: &str) -> Result<String, Error> {
    Ok(auth.revoke(public_id).await?.to_string())
}

/// Ends the session through `SessionHandle`.
#[post("/forget-me")]
fn forget_me(mut session: SessionHandle) {
    session.destroy();
}

/// A form's CSRF token: for a visitor without a session, stores nothing and sends a
/// pending id.
#[get("/token")]
fn token(csrf: CsrfToken) -> String {
    csrf.token()
}

/// Every guard of a logged-in request, as `Debug` prints it.
#[get("/debug")]
fn debug(
    session: SessionHandle,
    visits: Session<Visits>,
    csrf: CsrfToken,
    user: Authenticated,
    auth: AuthSession,
) -> String {
    format!("{session:?} {visits:?} {csrf:?} {user:?} {auth:?}")
}

/// Holds a request between loading its session and changing it, until the test opens the
/// gate: so a test can interleave requests on one session deterministically.
#[derive(Default)]
pub struct Gate {
    pub loaded: tokio::sync::Notify,
    pub open: tokio::sync::Notify,
}

#[get("/slow/cart/add/<item>")]
async fn slow_cart_add(
    mut cart: Session<Cart>,
    gate: &State<Gate>,
    item: &str,
) -> Result<(), Error> {
    gate.loaded.notify_one();
    gate.open.notified().await;
    cart.update(|c| c.items.push(item.into()))
}

#[get("/slow/counter")]
async fn slow_counter(mut visits: Session<Visits>, gate: &State<Gate>) -> Result<(), Error> {
    gate.loaded.notify_one();
    gate.open.notified().await;
    visits.update(|v| v.count += 1)
}

#[post("/slow/destroy")]
async fn slow_destroy(mut session: SessionHandle, gate: &State<Gate>) {
    gate.loaded.notify_one();
    gate.open.notified().await;
    session.destroy();
}

/// Rocket's debug defaults, quiet, with a fixed secret: no Rocket.toml, no environment.
pub fn figment() -> Figment {
    Figment::from(rocket::Config::debug_default())
        .merge(("log_level", "off"))
        .merge(("sessions.secrets", [SECRET]))
}

/// The test app on `figment`, with `fairing` attached (when given).
pub fn rocket_with(figment: Figment, fairing: Option<Sessions>) -> Rocket<Build> {
    let rocket = rocket::custom(figment).manage(Gate::default()).mount(
        "/",
        routes![
            plain,
            login_for,
            counter,
            count,
            v2,
            cart_add,
            cart,
            both,
            id,
            forget,
            destroy,
            destroy_then_set,
            regenerate,
            remember,
            slow_cart_add,
            slow_counter,
            slow_destroy,
            login_as,
            whoami,
            ended,
            sessions,
            logout_others,
            revoke,
            forget_me,
            token,
            debug
        ],
    );
    match fairing {
        Some(fairing) => rocket.attach(fairing),
        None => rocket,
    }
}

/// A tracked client of the test app with `builder`'s fairing.
pub async fn client(builder: SessionsBuilder) -> Client {
    Client::tracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches")
}

/// An untracked client, for sending exactly the cookies a test chooses.
pub async fn untracked(builder: SessionsBuilder) -> Client {
    Client::untracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches")
}

/// Every `Set-Cookie` header of `response`.
pub fn set_cookies(response: &LocalResponse<'_>) -> Vec<String> {
    response
        .headers()
        .get("Set-Cookie")
        .map(String::from)
        .collect()
}

/// The session cookie `response` sets, parsed, if it sets one.
pub fn session_cookie(response: &LocalResponse<'_>) -> Option<Cookie<'static>> {
    let mut cookies: Vec<_> = set_cookies(response)
        .into_iter()
        .filter_map(|header| Cookie::parse(header).ok())
        .filter(|cookie| cookie.name() == COOKIE)
        .collect();
    assert!(
        cookies.len() <= 1,
        "more than one session cookie: {cookies:?}"
    );
    cookies.pop()
}

/// Logs `user` in on `client` (without a cookie): the logged-in session's cookie.
pub async fn log_in_as(client: &Client, user: &str) -> Cookie<'static> {
    let response = client.get(format!("/login/{user}")).dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    session_cookie(&response).expect("a session cookie")
}

/// A new session on `client`: the cookie its `/counter` sets on a first visit.
pub async fn new_session(client: &Client) -> Cookie<'static> {
    session_cookie(&client.get("/counter").dispatch().await).expect("a session cookie")
}

/// `GET path` and the body, asserting 200.
pub async fn get_ok(client: &Client, path: &str) -> String {
    let response = client.get(path).dispatch().await;
    assert_eq!(response.status(), Status::Ok, "GET {path}");
    response.into_string().await.unwrap_or_default()
}

/// Counts the calls a store receives and passes them on to a real store, or, while `down`
/// is set, fails them as a store that cannot be reached would.
#[derive(Clone, Default)]
pub struct Counting<S> {
    pub inner: S,
    pub calls: Arc<Calls>,
    pub down: Arc<AtomicBool>,
}

#[derive(Default)]
pub struct Calls {
    pub load: AtomicUsize,
    pub create: AtomicUsize,
    pub commit: AtomicUsize,
    pub touch: AtomicUsize,
    pub delete: AtomicUsize,
    /// Calls to `shutdown`, which `get` leaves out.
    pub shutdown: AtomicUsize,
    /// The ids of the sessions created, in order.
    pub created: std::sync::Mutex<Vec<SessionId>>,
}

impl<S> Counting<S> {
    /// Counts the calls to `inner`.
    pub fn over(inner: S) -> Self {
        Counting {
            inner,
            calls: Arc::default(),
            down: Arc::default(),
        }
    }
}

impl Calls {
    /// `(load, create, commit, touch, delete)`.
    pub fn get(&self) -> (usize, usize, usize, usize, usize) {
        let n = |c: &AtomicUsize| c.load(Ordering::SeqCst);
        (
            n(&self.load),
            n(&self.create),
            n(&self.commit),
            n(&self.touch),
            n(&self.delete),
        )
    }

    pub fn total(&self) -> usize {
        let (a, b, c, d, e) = self.get();
        a + b + c + d + e
    }
}

impl Counting<MemoryStore> {
    pub fn memory() -> Self {
        Counting::default()
    }

    /// A store that is down from the start.
    pub fn down() -> Self {
        let store = Counting::memory();
        store.down.store(true, Ordering::SeqCst);
        store
    }
}

impl<S> Counting<S> {
    /// Counts a call to `calls`, and fails it while the store is down.
    fn call(&self, calls: &AtomicUsize) -> Result<(), StoreError> {
        calls.fetch_add(1, Ordering::SeqCst);
        match self.down.load(Ordering::SeqCst) {
            true => Err(StoreError::unavailable(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
            false => Ok(()),
        }
    }
}

#[rocket::async_trait]
impl<S: SessionStore> SessionStore for Counting<S> {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.call(&self.calls.load)?;
        self.inner.load(id).await
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        self.call(&self.calls.create)?;
        self.calls.created.lock().unwrap().push(id.clone());
        self.inner.create(id, record).await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        self.call(&self.calls.commit)?;
        self.inner.commit(id, changes).await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.call(&self.calls.touch)?;
        self.inner.touch(id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        self.call(&self.calls.delete)?;
        self.inner.delete(id).await
    }

    fn timeout(&self) -> Option<Duration> {
        self.inner.timeout()
    }

    async fn shutdown(&self) {
        self.calls.shutdown.fetch_add(1, Ordering::SeqCst);
        self.inner.shutdown().await
    }
}

pub mod http1;
pub mod logged;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]
pub mod sql;
pub mod stores;

/// A name no other test uses: for a table, a directory, a prefix.
pub fn unique_table() -> String {
    format!(
        "sessions_{}",
        &rocket_server_sessions::store::SessionId::generate().storage_key()[..16]
    )
}

/// A loopback port nothing listens on (the OS's pick, released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `n` distinct loopback ports nothing listens on, all held until all are picked.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound port").port())
        .collect()
}

/// The value of the environment variable `name`, set by `scripts/test.sh`. Unset, the
/// test fails under `CI=true` and is skipped (with a line saying so) elsewhere.
pub fn service_env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{name} is not set: CI runs the tests through scripts/test.sh, which starts the services")
        }
        _ => {
            eprintln!("skipped: {name} is not set (bash scripts/test.sh sets it)");
            None
        }
    }
}
