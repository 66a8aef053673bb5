//! The `Sessions` fairing: reads the configuration at ignite, commits sessions on response.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::figment::{self, providers::Serialized, value::Value, Figment};
use rocket::http::Status;
use rocket::log::private as log;
use rocket::request::Request;
use rocket::response::Response;
use rocket::{Build, Orbit, Rocket};
use serde::Serialize;

use crate::cookie::CookieWriter;
use crate::id::Signer;
use crate::session::{Slot, State};
use crate::store::{millis, SessionStore};
use crate::{Error, SameSite, Secure, SessionConfig, SessionId, StoreError};

/// The sessions fairing: attach it once, and `Session<T>` guards work in every route.
///
/// At ignite it reads [`SessionConfig`] from the `sessions` table of Rocket.toml (and
/// `ROCKET_SESSIONS`), applies the builder's settings on top, checks them, and opens the
/// store; a bad value stops launch with a message naming the key. On each response it
/// commits what the request's guards changed: a new session is stored and its cookie set,
/// changed entries are written, a destroyed session is deleted and its cookie expired.
/// A request whose handler takes no session guard costs no store access.
///
/// When a commit fails the response becomes an empty `503 Service Unavailable`, so no one
/// is told a change was saved when it was not. A route without a session guard never
/// fails with the store: with `rolling`, a failed refresh is only logged.
///
/// # Example
///
/// ```no_run
/// use rocket::{get, launch, routes};
/// use rocket_server_sessions::Sessions;
///
/// #[get("/")]
/// fn index() -> &'static str { "hello" }
///
/// #[launch]
/// fn rocket() -> _ {
///     rocket::build()
///         .attach(Sessions::fairing())
///         .mount("/", routes![index])
/// }
/// ```
pub struct Sessions {
    overrides: Figment,
    store: Option<Arc<dyn SessionStore>>,
}

/// Builds a [`Sessions`] fairing with settings in code and, optionally, a custom store.
///
/// Settings made here win over Rocket.toml and the environment, and are checked the same
/// way at ignite.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use rocket_server_sessions::{MemoryStore, SameSite, Sessions};
///
/// let fairing = Sessions::builder()
///     .cookie_name("app.sid")
///     .max_age(Duration::from_secs(3600))
///     .same_site(SameSite::Strict)
///     .store(MemoryStore::default())
///     .build();
/// let rocket = rocket::build().attach(fairing);
/// ```
#[must_use]
pub struct SessionsBuilder {
    overrides: Figment,
    store: Option<Arc<dyn SessionStore>>,
}

impl Sessions {
    /// The fairing, configured from Rocket.toml alone.
    pub fn fairing() -> Sessions {
        Sessions::builder().build()
    }

    /// A builder for settings in code or a custom store.
    pub fn builder() -> SessionsBuilder {
        SessionsBuilder {
            overrides: Figment::new(),
            store: None,
        }
    }
}

impl SessionsBuilder {
    fn set(mut self, key: &str, value: impl Serialize) -> Self {
        // Global: code wins over every profile's table.
        self.overrides = self.overrides.merge(Serialized::global(key, value));
        self
    }

    /// Keeps sessions in `store` instead of the one `sessions.store` names.
    pub fn store(mut self, store: impl SessionStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Sets [`SessionConfig::cookie_name`].
    pub fn cookie_name(self, name: &str) -> Self {
        self.set("cookie_name", name)
    }

    /// Sets [`SessionConfig::max_age`].
    pub fn max_age(self, max_age: Duration) -> Self {
        self.set("max_age", max_age.as_secs_f64())
    }

    /// Sets [`SessionConfig::max_session_size`].
    pub fn max_session_size(self, size: rocket::data::ByteUnit) -> Self {
        self.set("max_session_size", size)
    }

    /// Sets [`SessionConfig::browser_session`].
    pub fn browser_session(self, on: bool) -> Self {
        self.set("browser_session", on)
    }

    /// Sets [`SessionConfig::rolling`].
    pub fn rolling(self, on: bool) -> Self {
        self.set("rolling", on)
    }

    /// Sets [`SessionConfig::resave`].
    pub fn resave(self, on: bool) -> Self {
        self.set("resave", on)
    }

    /// Sets [`SessionConfig::save_uninitialized`].
    pub fn save_uninitialized(self, on: bool) -> Self {
        self.set("save_uninitialized", on)
    }

    /// Sets [`SessionConfig::http_only`].
    pub fn http_only(self, on: bool) -> Self {
        self.set("http_only", on)
    }

    /// Sets [`SessionConfig::secure`].
    pub fn secure(self, secure: Secure) -> Self {
        self.set("secure", secure)
    }

    /// Sets [`SessionConfig::same_site`].
    pub fn same_site(self, same_site: SameSite) -> Self {
        self.set("same_site", same_site)
    }

    /// Sets [`SessionConfig::path`].
    pub fn path(self, path: &str) -> Self {
        self.set("path", path)
    }

    /// Sets [`SessionConfig::domain`].
    pub fn domain(self, domain: &str) -> Self {
        self.set("domain", domain)
    }

    /// Sets [`SessionConfig::proxy`].
    pub fn proxy(self, on: bool) -> Self {
        self.set("proxy", on)
    }

    /// Sets [`SessionConfig::login_path`].
    pub fn login_path(self, path: &str) -> Self {
        self.set("login_path", path)
    }

    /// Sets [`SessionConfig::secrets`], newest first.
    pub fn secrets<S: Into<String>>(self, secrets: impl IntoIterator<Item = S>) -> Self {
        let secrets: Vec<String> = secrets.into_iter().map(Into::into).collect();
        self.set("secrets", secrets)
    }

    /// Sets [`MemoryConfig::max_sessions`](crate::MemoryConfig::max_sessions).
    pub fn max_sessions(self, max_sessions: usize) -> Self {
        self.set("memory.max_sessions", max_sessions)
    }

    /// The fairing.
    pub fn build(self) -> Sessions {
        Sessions {
            overrides: self.overrides,
            store: self.store,
        }
    }
}

/// What the fairing sets up at ignite, managed by Rocket and read by guards and hooks.
pub(crate) struct Shared {
    pub(crate) config: SessionConfig,
    pub(crate) store: Arc<dyn SessionStore>,
    signer: Signer,
    cookies: CookieWriter,
    /// Logs store outages.
    pub(crate) outage: Outage,
}

/// Whether the last store call failed: an outage logs one line when it starts and one when
/// it ends, not one per request.
#[derive(Default)]
pub(crate) struct Outage {
    failing: AtomicBool,
}

/// What a store call's outcome changed about an outage.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Started,
    Ended,
    Same,
}

impl Outage {
    /// Passes `result` on, logging when the store starts and stops failing.
    pub(crate) fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match (&result, self.change(&result)) {
            (Err(StoreError::Corrupt(_)), _) => {}
            (Err(e), Change::Started) => log::error!(
                "the session store failed ({}): session routes answer 503 until it recovers",
                chain(e)
            ),
            (_, Change::Ended) => log::warn!("the session store answers again"),
            (Err(e), _) => log::debug!("the session store failed again: {e}"),
            (Ok(_), _) => {}
        }

        result
    }

    fn change<T>(&self, result: &Result<T, StoreError>) -> Change {
        match result {
            // A record the store returned but we cannot read is no outage.
            Err(StoreError::Corrupt(_)) => Change::Same,
            Err(_) if !self.failing.swap(true, Ordering::Relaxed) => Change::Started,
            // A plain load first: no shared write on every request while all is well.
            Ok(_)
                if self.failing.load(Ordering::Relaxed)
                    && self.failing.swap(false, Ordering::Relaxed) =>
            {
                Change::Ended
            }
            _ => Change::Same,
        }
    }
}

impl Shared {
    async fn new(rocket: &Rocket<Build>, sessions: &Sessions) -> Result<Shared, Error> {
        let config: SessionConfig = rocket
            .figment()
            .focus("sessions")
            .merge(sessions.overrides.clone())
            // Merging a figment also merges its profile selection: restore Rocket's.
            .select(rocket.figment().profile().clone())
            .extract()
            .map_err(config_error)?;
        config.validate()?;

        let signer = signer(&config, rocket.figment())?;
        let store = match &sessions.store {
            Some(store) => store.clone(),
            None => crate::store::open(&config).await?,
        };

        let cookies = CookieWriter::new(&config);
        Ok(Shared {
            config,
            store,
            signer,
            cookies,
            outage: Outage::default(),
        })
    }

    /// The verified session id in the request's cookie. A cookie that fails verification
    /// is no session at all: it never reaches the store.
    pub(crate) fn cookie_id(&self, req: &Request<'_>) -> Option<SessionId> {
        let cookie = req.cookies().get(&self.config.cookie_name)?;
        let id = self.signer.verify(cookie.value());
        if id.is_none() {
            log::debug!(
                "ignoring a session cookie that is malformed or not signed by a known secret"
            );
        }

        id
    }

    /// Writes what the request did to its session (`slot`) to the store and sets the cookie.
    async fn commit<'r>(
        &self,
        slot: &Slot,
        req: &'r Request<'_>,
        res: &mut Response<'r>,
    ) -> Result<(), StoreError> {
        let state = match slot {
            Slot::Ready(live) => live.lock().take(),
            Slot::Failed(_) => return Ok(()),
            Slot::Unused if self.config.rolling => return self.touch(req, res).await,
            Slot::Unused => return Ok(()),
        };

        if state.fresh {
            let State {
                cookie_id,
                discard_cookie_id,
                new_id,
                record,
                ..
            } = state;
            let keep = !record.is_empty() || (self.config.save_uninitialized && !discard_cookie_id);
            if keep {
                let id = self.create(new_id, &record).await?;
                self.set_cookie(req, res, &id, record.ttl());
            }

            if let Some(old) = cookie_id.filter(|_| discard_cookie_id) {
                // Destroyed here: the cookie is expired only if its session was still in
                // the store. One that was already gone (deleted by a concurrent log-in, or
                // never there) may be older than the browser's current cookie, and
                // expiring the name would expire that.
                if self.store.delete(&old).await? && !keep {
                    self.expire_cookie(req, res);
                }
            }

            return Ok(());
        }

        let Some(id) = state.cookie_id.clone() else {
            return Ok(());
        };

        let changes = state.into_changes(self.config.resave, self.config.rolling);

        if changes.is_empty() {
            return Ok(());
        }

        if !self.store.commit(&id, &changes).await? {
            // Destroyed (say, logged out) by another request meanwhile: never resurrect
            // it. Its cookie is that request's to expire, or to replace.
            log::debug!("the session ended while the request ran; its changes are dropped");
        } else if let Some(ttl) = changes.ttl() {
            self.set_cookie(req, res, &id, ttl);
        }

        Ok(())
    }

    /// `rolling` for a request that never asked for its session: one store command.
    async fn touch<'r>(
        &self,
        req: &'r Request<'_>,
        res: &mut Response<'r>,
    ) -> Result<(), StoreError> {
        let Some(id) = self.cookie_id(req) else {
            return Ok(());
        };

        if let Some(ttl) = self.store.touch(&id).await? {
            self.set_cookie(req, res, &id, ttl);
        }

        Ok(())
    }

    /// Stores a new session, under `id` when given; a fresh id replaces one the store
    /// already has (with 192 random bits, only a broken store makes that happen twice).
    async fn create(
        &self,
        id: Option<SessionId>,
        record: &crate::SessionRecord,
    ) -> Result<SessionId, StoreError> {
        let mut id = id.unwrap_or_else(SessionId::generate);
        for _ in 0..3 {
            if self.store.create(&id, record).await? {
                return Ok(id);
            }

            id = SessionId::generate();
        }

        Err(StoreError::unavailable(
            "the store reported three fresh session ids as taken",
        ))
    }

    fn set_cookie(&self, req: &Request<'_>, res: &mut Response<'_>, id: &SessionId, ttl: Duration) {
        // A browser-session cookie, unless this session has a lifetime of its own. Stores
        // keep lifetimes in milliseconds: compare what they keep.
        let default = millis(ttl) == millis(self.config.max_age);
        let persistent = !(self.config.browser_session && default);
        self.cookies
            .set(req, res, &self.signer.sign(id), persistent.then_some(ttl));
    }

    fn expire_cookie(&self, req: &Request<'_>, res: &mut Response<'_>) {
        self.cookies.expire(req, res);
    }
}

/// An error and its sources, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }

    line
}

/// Names the key a figment error is about, relative to `sessions`.
fn config_error(error: figment::Error) -> Error {
    Error::config(&error.path.join("."), error.kind.to_string())
}

/// The signer: `sessions.secrets` when set, else Rocket's `secret_key`, else (debug only) a
/// random key that lasts as long as the process.
fn signer(config: &SessionConfig, figment: &Figment) -> Result<Signer, Error> {
    if let Some(signer) = Signer::new(&config.secrets) {
        return Ok(signer);
    }

    let secret_key = match figment.find_value("secret_key") {
        Ok(value) => secret_key_bytes(&value).map_err(|()| {
            Error::config(
                "secrets",
                "unset, and Rocket's `secret_key` is not 32 or 64 bytes of base64 or hex: set one of them",
            )
        })?,
        Err(_) => None,
    };

    let key = match secret_key {
        Some(key) => key,
        None if figment.profile() != rocket::Config::DEBUG_PROFILE => {
            return Err(Error::config(
                "secrets",
                format!(
                    "the `{}` profile needs a real secret: set `sessions.secrets` or Rocket's `secret_key` (e.g. ROCKET_SECRET_KEY=$(openssl rand -base64 32))",
                    figment.profile()
                ),
            ));
        }
        None => {
            log::warn!("sessions are signed with a random key and end when the app restarts: set `sessions.secrets` or `secret_key`");
            rand::random::<[u8; 32]>().to_vec()
        }
    };

    Ok(Signer::new(&[key]).expect("one secret is not empty"))
}

/// Rocket's `secret_key` read as Rocket reads it: 32 or 64 bytes, as base64 (44 or 88
/// characters), hex (64 or 128) or an array. `Ok(None)` for the all-zero key, which is
/// Rocket's "unset"; `Err` for anything else.
fn secret_key_bytes(value: &Value) -> Result<Option<Vec<u8>>, ()> {
    use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};

    let bytes = match value.as_str() {
        Some(text) => match text.len() {
            44 | 88 => BASE64.decode(text.as_bytes()).map_err(|_| ())?,
            64 | 128 => HEXLOWER_PERMISSIVE
                .decode(text.as_bytes())
                .map_err(|_| ())?,
            _ => return Err(()),
        },
        None => value.deserialize::<Vec<u8>>().map_err(|_| ())?,
    };

    if !matches!(bytes.len(), 32 | 64) {
        return Err(());
    }

    Ok(bytes.iter().any(|b| *b != 0).then_some(bytes))
}

#[rocket::async_trait]
impl Fairing for Sessions {
    fn info(&self) -> Info {
        Info {
            name: "Sessions",
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        match Shared::new(&rocket, self).await {
            Ok(shared) => Ok(rocket.manage(shared)),
            Err(e) => {
                log::error!("{e}");
                Err(rocket)
            }
        }
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        if let Some(shared) = rocket.state::<Shared>() {
            let config = &shared.config;
            log::info!(
                "sessions: cookie `{}`, max_age {}s, rolling {}, secure {:?}",
                config.cookie_name,
                config.max_age.as_secs_f64(),
                config.rolling,
                config.secure,
            );
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(shared) = req.rocket().state::<Shared>() else {
            return;
        };

        crate::auth::redirect_to_login(&shared.config.login_path, req, res);
        let slot = Slot::of(req);
        let committed = shared.outage.observe(shared.commit(slot, req, res).await);
        // A route that never asked for its session does not fail with the store: only its
        // `rolling` refresh is lost, and the outage is logged.
        if committed.is_err() && !matches!(slot, Slot::Unused) {
            // Nobody is told a change was saved when it was not: the handler's answer,
            // cookies and redirect go; headers other fairings set (Shield's) stay, as they
            // do for the login redirect.
            res.set_status(Status::ServiceUnavailable);
            for header in ["Content-Type", "Set-Cookie", "Location"] {
                res.remove_header(header);
            }
            res.set_sized_body(0, std::io::Cursor::new(""));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(figment: Figment) -> Option<String> {
        let rocket = rocket::custom(figment);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        match runtime.block_on(Shared::new(&rocket, &Sessions::fairing())) {
            Ok(_) => None,
            Err(Error::Config { key, .. }) => Some(key),
            Err(other) => panic!("not a config error: {other}"),
        }
    }

    fn debug() -> Figment {
        Figment::from(rocket::Config::debug_default())
    }

    #[test]
    fn config_errors_name_the_key() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("sessions.colour", "blue".into(), "colour"),
            ("sessions.max_age", "soon".into(), "max_age"),
            ("sessions.max_age", (-5).into(), "max_age"),
            ("sessions.secure", "sometimes".into(), "secure"),
            ("sessions.same_site", "sometimes".into(), "same_site"),
            ("sessions.store", "postgres".into(), "store"),
            ("sessions.memory.max_size", 5.into(), "memory.max_size"),
            (
                "sessions.memory.max_sessions",
                0.into(),
                "memory.max_sessions",
            ),
            ("sessions.secrets", vec!["short"].into(), "secrets"),
            ("secret_key", "not a key".into(), "secrets"),
        ];

        for (key, value, named) in cases {
            assert_eq!(
                problem(debug().merge((key, value))).as_deref(),
                Some(named),
                "{key}"
            );
        }
    }

    #[test]
    fn release_needs_a_real_secret() {
        let release = Figment::from(rocket::Config::release_default());
        assert_eq!(problem(release.clone()).as_deref(), Some("secrets"));

        let key = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";
        assert_eq!(problem(release.clone().merge(("secret_key", key))), None);
        let zero = [0u8; 32];
        assert_eq!(
            problem(release.clone().merge(("secret_key", zero))).as_deref(),
            Some("secrets")
        );
        let secrets = ["a test secret that is at least 32 bytes long"];
        assert_eq!(problem(release.merge(("sessions.secrets", secrets))), None);
    }

    #[test]
    fn an_outage_changes_once_when_it_starts_and_once_when_it_ends() {
        let outage = Outage::default();
        let down = || outage.change::<()>(&Err(StoreError::unavailable("refused")));
        let up = || outage.change(&Ok(()));
        let corrupt = || outage.change::<()>(&Err(StoreError::corrupt("bad bytes")));

        assert_eq!([up(), corrupt()], [Change::Same, Change::Same]);
        assert_eq!(down(), Change::Started);
        assert!(
            (0..50).all(|_| down() == Change::Same),
            "one line per outage"
        );
        // A corrupt record is no sign of recovery, nor of a new outage.
        assert_eq!(corrupt(), Change::Same);
        assert_eq!(up(), Change::Ended);
        assert!((0..50).all(|_| up() == Change::Same));
        assert_eq!(down(), Change::Started, "a second outage is logged");
    }

    #[test]
    fn debug_without_a_secret_launches_with_a_random_key() {
        assert_eq!(problem(debug()), None);
    }

    #[test]
    fn secret_key_reads_like_rocket_does() {
        let len = |value: Value| secret_key_bytes(&value).map(|key| key.map(|k| k.len()));
        assert_eq!(
            len("hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=".into()),
            Ok(Some(32))
        );
        assert_eq!(len("ab".repeat(64).into()), Ok(Some(64)));
        assert_eq!(len(vec![7u8; 32].into()), Ok(Some(32)));
        assert_eq!(
            len(vec![0u8; 64].into()),
            Ok(None),
            "the zero key is Rocket's unset"
        );
        assert_eq!(len("short".into()), Err(()));
        assert_eq!(len("x".repeat(44).into()), Err(()));
        assert_eq!(len(vec![1u8; 16].into()), Err(()));
    }
}
