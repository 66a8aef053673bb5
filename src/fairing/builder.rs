//! [`SessionsBuilder`]: the fairing's settings in code, and the store it keeps sessions in.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rocket::figment::{providers::Serialized, Figment};
use rocket::futures::future::BoxFuture;
use rocket::{Build, Rocket};
use serde::Serialize;

use super::Sessions;
use crate::config::{SameSitePolicy, Secure, SessionConfig};
use crate::error::Error;
use crate::store::SessionStore;

/// Builds a [`Sessions`] fairing with settings in code and, optionally, a custom store.
///
/// Settings made here win over Rocket.toml and the environment, and are checked the same
/// way at ignite.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use rocket_server_sessions::{Sessions, config::SameSitePolicy, store::MemoryStore};
///
/// let fairing = Sessions::builder()
///     .cookie_name("app.sid")
///     .max_age(Duration::from_secs(3600))
///     .same_site(SameSitePolicy::Strict)
///     .store(MemoryStore::default())
///     .build();
/// let rocket = rocket::build().attach(fairing);
/// ```
#[must_use]
pub struct SessionsBuilder {
    overrides: Figment,
    store: Option<StoreSource>,
}

/// Where the fairing gets its store, when not from `sessions.store`.
pub(super) enum StoreSource {
    /// A store made before launch.
    Ready(Arc<dyn SessionStore>),
    /// A store made at ignite, from what other fairings set up.
    Build(Box<BuildStore>),
}

/// Makes a store from the `Rocket` being ignited.
type BuildStore = dyn Fn(
        &Rocket<Build>,
        &SessionConfig,
    ) -> BoxFuture<'static, Result<Arc<dyn SessionStore>, BoxError>>
    + Send
    + Sync;

/// An error a store builder reports.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl StoreSource {
    /// The store, made now if it is built at ignite.
    pub(super) async fn store(
        &self,
        rocket: &Rocket<Build>,
        config: &SessionConfig,
    ) -> Result<Arc<dyn SessionStore>, Error> {
        match self {
            StoreSource::Ready(store) => Ok(store.clone()),
            StoreSource::Build(build) => build(rocket, config).await.map_err(Error::StoreBuild),
        }
    }
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
        self.store = Some(StoreSource::Ready(Arc::new(store)));
        self
    }

    /// Keeps sessions in the store `build` makes at ignite, from the `Rocket` being
    /// ignited and the sessions' configuration: for a store on what another fairing set
    /// up, such as the app's database pool from `rocket_db_pools`. Attach that fairing
    /// before this one, so that its state is managed when `build` runs. The
    /// [`SessionConfig`] is the one the fairing runs with: Rocket.toml's `sessions` table,
    /// `ROCKET_SESSIONS`, this builder's settings and the profile's defaults, validated
    /// (`config.sql` holds `databases.<name>`'s URL when `sql.database` names one). Take
    /// what you need from both before the `async` block, which cannot borrow them.
    ///
    /// # Errors
    ///
    /// When `build` fails, launch stops with its error in the log.
    ///
    /// # Example
    ///
    /// ```
    /// use rocket::fairing::AdHoc;
    /// use rocket_server_sessions::{Sessions, store::MemoryStore};
    ///
    /// // Another fairing makes what the store runs on at ignite, as `rocket_db_pools`
    /// // makes the app's pool; here, a store the app also reads for its own purposes.
    /// let shared = AdHoc::on_ignite("Shared store", |rocket| async {
    ///     rocket.manage(MemoryStore::default())
    /// });
    /// let sessions = Sessions::builder()
    ///     .store_with(|rocket, _config| {
    ///         let store = rocket.state::<MemoryStore>().cloned();
    ///         async move { store.ok_or("attach the shared store's fairing first") }
    ///     })
    ///     .build();
    /// let rocket = rocket::build().attach(shared).attach(sessions);
    /// ```
    pub fn store_with<F, Fut, S, E>(mut self, build: F) -> Self
    where
        F: Fn(&Rocket<Build>, &SessionConfig) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
        S: SessionStore,
        E: Into<BoxError>,
    {
        let build =
            move |rocket: &Rocket<Build>, config: &SessionConfig| -> BoxFuture<'static, _> {
                let made = build(rocket, config);
                Box::pin(async move {
                    let store = made.await.map_err(Into::into)?;
                    Ok(Arc::new(store) as Arc<dyn SessionStore>)
                })
            };
        self.store = Some(StoreSource::Build(Box::new(build)));
        self
    }

    /// Sets [`SessionConfig::cookie_name`](crate::config::SessionConfig::cookie_name).
    pub fn cookie_name(self, name: &str) -> Self {
        self.set("cookie_name", name)
    }

    /// Sets [`SessionConfig::max_age`](crate::config::SessionConfig::max_age).
    pub fn max_age(self, max_age: Duration) -> Self {
        self.set("max_age", max_age.as_secs_f64())
    }

    /// Sets [`SessionConfig::absolute_timeout`](crate::config::SessionConfig::absolute_timeout).
    pub fn absolute_timeout(self, timeout: Duration) -> Self {
        self.set("absolute_timeout", timeout.as_secs_f64())
    }

    /// Sets [`SessionConfig::idle_timeout`](crate::config::SessionConfig::idle_timeout).
    pub fn idle_timeout(self, idle: Duration) -> Self {
        self.set("idle_timeout", idle.as_secs_f64())
    }

    /// Sets [`SessionConfig::touch_after`](crate::config::SessionConfig::touch_after).
    pub fn touch_after(self, after: Duration) -> Self {
        self.set("touch_after", after.as_secs_f64())
    }

    /// Sets [`SessionConfig::max_session_size`](crate::config::SessionConfig::max_session_size).
    pub fn max_session_size(self, size: rocket::data::ByteUnit) -> Self {
        self.set("max_session_size", size)
    }

    /// Sets [`SessionConfig::browser_session`](crate::config::SessionConfig::browser_session).
    pub fn browser_session(self, on: bool) -> Self {
        self.set("browser_session", on)
    }

    /// Sets [`SessionConfig::rolling`](crate::config::SessionConfig::rolling).
    pub fn rolling(self, on: bool) -> Self {
        self.set("rolling", on)
    }

    /// Sets [`SessionConfig::resave`](crate::config::SessionConfig::resave).
    pub fn resave(self, on: bool) -> Self {
        self.set("resave", on)
    }

    /// Sets [`SessionConfig::save_uninitialized`](crate::config::SessionConfig::save_uninitialized).
    pub fn save_uninitialized(self, on: bool) -> Self {
        self.set("save_uninitialized", on)
    }

    /// Sets [`SessionConfig::http_only`](crate::config::SessionConfig::http_only).
    pub fn http_only(self, on: bool) -> Self {
        self.set("http_only", on)
    }

    /// Sets [`SessionConfig::secure`](crate::config::SessionConfig::secure).
    pub fn secure(self, secure: Secure) -> Self {
        self.set("secure", secure)
    }

    /// Sets [`SessionConfig::same_site`](crate::config::SessionConfig::same_site).
    pub fn same_site(self, same_site: SameSitePolicy) -> Self {
        self.set("same_site", same_site)
    }

    /// Sets [`SessionConfig::partitioned`](crate::config::SessionConfig::partitioned).
    pub fn partitioned(self, on: bool) -> Self {
        self.set("partitioned", on)
    }

    /// Sets [`SessionConfig::path`](crate::config::SessionConfig::path).
    pub fn path(self, path: &str) -> Self {
        self.set("path", path)
    }

    /// Sets [`SessionConfig::domain`](crate::config::SessionConfig::domain).
    pub fn domain(self, domain: &str) -> Self {
        self.set("domain", domain)
    }

    /// Sets [`SessionConfig::proxy`](crate::config::SessionConfig::proxy).
    pub fn proxy(self, on: bool) -> Self {
        self.set("proxy", on)
    }

    /// Sets [`SessionConfig::login_path`](crate::config::SessionConfig::login_path): a path, or `None` for no login redirect.
    pub fn login_path<'a>(self, path: impl Into<Option<&'a str>>) -> Self {
        match path.into() {
            Some(path) => self.set("login_path", path),
            None => self.set("login_path", false),
        }
    }

    /// Sets [`SessionConfig::secrets`](crate::config::SessionConfig::secrets), newest first.
    pub fn secrets<S: Into<String>>(self, secrets: impl IntoIterator<Item = S>) -> Self {
        let secrets: Vec<String> = secrets.into_iter().map(Into::into).collect();
        self.set("secrets", secrets)
    }

    /// Sets the cap of the configured store, whichever it is: the `max_sessions` of the
    /// `memory`, `redis`, `file` and `sql` sections alike (a custom store given with
    /// [`store`](Self::store) keeps its own). When the store is full, anonymous sessions
    /// are evicted first, and a stranger never displaces a signed-in user.
    pub fn max_sessions(self, max_sessions: usize) -> Self {
        ["memory", "redis", "file", "sql"]
            .iter()
            .fold(self, |builder, section| {
                builder.set(&format!("{section}.max_sessions"), max_sessions)
            })
    }

    /// The fairing.
    pub fn build(self) -> Sessions {
        Sessions {
            overrides: self.overrides,
            store: self.store,
        }
    }
}

/// Never prints the settings: they may hold secrets.
impl std::fmt::Debug for SessionsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionsBuilder")
            .field("custom_store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}
