//! [`SessionConfig`]: the `sessions` table of Rocket.toml.

use std::fmt;
use std::time::Duration;

use rocket::data::ByteUnit;
use serde::{Deserialize, Serialize};

mod stores;
mod validate;
mod values;

pub(crate) use values::has_prefix;

pub use stores::{FileConfig, MemoryConfig, RedisConfig, SqlConfig, StoreKind};
use values::{optional_seconds, seconds};
pub use values::{SameSitePolicy, Secure};

/// The session configuration, read from the `sessions` table of the active Rocket profile.
///
/// Every key is optional; [`SessionConfig::default()`] holds the defaults. Unknown keys and
/// bad values stop launch with a message naming the key.
///
/// ```toml
/// [default.sessions]
/// store = "memory"
/// cookie_name = "rocket.sid"
/// max_age = 86400            # seconds
/// # idle_timeout = 1800      # seconds; unset, signed-in sessions live max_age too
/// # absolute_timeout = 28800 # seconds; unset, no cap on a session's whole life
/// max_session_size = "64 KiB"
/// browser_session = false
/// rolling = false
/// # touch_after = 60         # seconds; with rolling, refresh an unchanged session at most
///                            # this often (unset: on every request)
/// resave = false
/// accept_unsealed = false   # true: read session data written before sealing at rest
/// save_uninitialized = false
/// http_only = true
/// secure = true             # or false / "auto" ("auto" is the debug profile's default)
/// same_site = "lax"          # or "strict" / "none"
/// partitioned = false
/// path = "/"
/// # domain = "example.com"
/// proxy = false
/// login_path = "/login"     # or false: no redirect, a plain 401
/// # secrets = ["at least 32 random bytes, newest first", "an older secret"]
///
/// [default.sessions.memory]
/// max_sessions = 100000
/// sweep_interval = 60        # seconds
///
/// [default.sessions.redis]   # for store = "redis" / "redis-cluster"
/// url = "redis://127.0.0.1:6379/"
/// urls = []                  # cluster seed nodes
/// prefix = "session:"
/// timeout = 0.5              # seconds
/// max_sessions = 1000000
/// # connections = 16         # default: the number of CPUs
///
/// [default.sessions.sql]     # for store = "postgres" / "sqlite" / "mysql"
/// url = "postgres://app@127.0.0.1:5432/app"
/// # database = "app"         # a rocket_db_pools database's settings, in place of url
/// table = "sessions"
/// create_table = true
/// max_connections = 10
/// timeout = 1                # seconds
/// sweep_interval = 60        # seconds
/// max_sessions = 1000000
///
/// [default.sessions.file]    # for store = "file"
/// dir = "sessions"
/// sweep_interval = 60        # seconds
/// max_sessions = 100000
/// timeout = 2                # seconds of file work per request
///
/// [release.sessions]
/// secure = true
/// ```
///
/// The same keys work from the environment, inline:
/// `ROCKET_SESSIONS='{max_age=3600,rolling=true,memory={max_sessions=5000}}'`.
///
/// # Example
///
/// ```
/// use rocket_server_sessions::config::SessionConfig;
///
/// let config = SessionConfig::default();
/// assert_eq!(config.cookie_name, "rocket.sid");
/// assert_eq!(config.max_age.as_secs(), 86_400);
/// ```
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Where sessions are kept: `"memory"`, this process's memory (see [`MemoryConfig`]);
    /// `"redis"` or `"redis-cluster"` (see [`RedisConfig`]); `"file"` (see
    /// [`FileConfig`]); `"postgres"`, `"sqlite"` or `"mysql"` (see [`SqlConfig`]).
    ///
    /// _Default:_ `"memory"`
    pub store: StoreKind,
    /// The name of the session cookie.
    ///
    /// # Security
    ///
    /// A name starting with `__Host-` (say `"__Host-rocket.sid"`) makes browsers refuse the
    /// cookie unless it is `Secure`, has `Path=/` and no `Domain`: no other site, not even
    /// a sibling subdomain, can then set a cookie of that name and plant or shadow a
    /// session ("cookie tossing"). Use it in production, over HTTPS; launch checks that
    /// `secure` is not `false`, `path` is `"/"` and `domain` is unset. `__Secure-` asks
    /// for `Secure` alone.
    ///
    /// _Default:_ `"rocket.sid"`
    pub cookie_name: String,
    /// How long a session lives, in seconds (fractions allowed): the store forgets it this
    /// long after it was created, or after it was last used with `rolling`, and the
    /// cookie carries the same `Max-Age`. From 0.001 seconds to 400 days, the longest
    /// browsers keep a cookie.
    ///
    /// _Default:_ `86400` (one day)
    #[serde(with = "seconds")]
    pub max_age: Duration,
    /// How long a signed-in session lives without a request, in seconds (fractions
    /// allowed): a session a user is logged in to
    /// ([`AuthSession::login`](crate::AuthSession::login)) has this lifetime instead of `max_age`,
    /// and every request that uses it (a route with a session guard) pushes its end back, `rolling`
    /// or not. Anonymous sessions (a cart, a theme) keep `max_age`. A session with a lifetime of
    /// its own ("remember me": [`AuthSession::login_for`](crate::AuthSession::login_for), or
    /// [`SessionHandle::set_max_age`](crate::SessionHandle::set_max_age)) is not ended by
    /// it; `absolute_timeout` still caps them all. From 0.001 seconds to 400 days.
    ///
    /// _Default:_ unset (signed-in sessions live `max_age`)
    #[serde(with = "optional_seconds")]
    pub idle_timeout: Option<Duration>,
    /// The longest a session may live in all, in seconds (fractions allowed), counted from
    /// its creation, or from log-in when [`AuthSession::login`](crate::AuthSession::login)
    /// moves it to a new id ([`SessionHandle::regenerate`](crate::SessionHandle::regenerate)
    /// alone carries the count over).
    /// `max_age` is then the idle lifetime: activity (with `rolling`), a touch or
    /// [`SessionHandle::set_max_age`](crate::SessionHandle::set_max_age) extends it, but
    /// never past this deadline. The session keeps its creation time in the store, so the
    /// deadline holds across restarts and on every instance; the cookie's `Max-Age` is never
    /// longer than what remains. From 0.001 seconds to 400 days.
    ///
    /// # Security
    ///
    /// OWASP asks for both timeouts: the idle one limits how long a forgotten session stays
    /// usable, the absolute one how long a stolen cookie does, however busy its thief.
    ///
    /// _Default:_ unset (no cap)
    #[serde(with = "optional_seconds")]
    pub absolute_timeout: Option<Duration>,
    /// The most a session may hold: the sum of its entries' keys and JSON values, in bytes
    /// or as a size such as `"64 KiB"`. A write that would grow the session, as the
    /// request sees it, past this fails with [`Error::TooLarge`](crate::Error::TooLarge)
    /// (`413`) and changes nothing, so no store holds a runaway session. Concurrent
    /// requests that each grow a different entry are each checked on their own, so their
    /// merged result can pass it, by at most what one request may add.
    ///
    /// _Default:_ `"64 KiB"`
    pub max_session_size: ByteUnit,
    /// When true, the cookie carries no `Max-Age`, so the browser forgets it when it
    /// closes; the store still forgets the session after `max_age`. A session given its
    /// own lifetime with [`SessionHandle::set_max_age`](crate::SessionHandle::set_max_age)
    /// ("remember me") gets a persistent cookie all the same.
    ///
    /// _Default:_ `false`
    pub browser_session: bool,
    /// When true, every response to a request with a valid session cookie resets the
    /// session's expiry in the store and sends the cookie again with a fresh `Max-Age`.
    ///
    /// # Performance
    ///
    /// A store command on every request that carries a session cookie, including those
    /// whose handler takes no session guard; with `touch_after`, only when the last refresh
    /// is that old, and none for a request whose handler takes no session guard.
    ///
    /// _Default:_ `false`
    pub rolling: bool,
    /// With `rolling` or `idle_timeout`: write an unchanged session back at most once per
    /// `touch_after` seconds. A request that changes nothing refreshes the session (in the store
    /// and in its cookie's `Max-Age`) only when its last refresh is at least this old, so the
    /// store and the cookie agree on its end within `touch_after`; a request that changes
    /// it writes it anyway, refreshed. A route whose handler takes no session guard then
    /// never refreshes it: the session lives `max_age` from the last refresh by a route
    /// that uses it. At most an eighth of `max_age` and of `idle_timeout`. Unset, every
    /// request refreshes.
    ///
    /// _Default:_ unset
    #[serde(with = "optional_seconds")]
    pub touch_after: Option<Duration>,
    /// When true, every request that loaded a session writes all its entries back, changed
    /// or not. Left false, only changed entries are written, which keeps concurrent
    /// requests from overwriting each other's changes with stale copies.
    ///
    /// _Default:_ `false`
    pub resave: bool,
    /// Whether a session found in a persistent store all in the clear (written by a build
    /// from before the data was sealed at rest, SECURITY.md "Data at rest") is read: it is
    /// then sealed by the same request's commit. Turn it on for an upgrade from such a
    /// build, and off again once every session from before it has ended (`max_age` after
    /// the upgrade, or `absolute_timeout`): while it is on, whoever can write to the store
    /// can plant a session in the clear. Off, a value in the clear reads as absent, and a
    /// session whose own entries (`$user`, `$created`...) do not open is not trusted at
    /// all. A value in the clear beside sealed ones is never read.
    ///
    /// _Default:_ `false`
    pub accept_unsealed: bool,
    /// When true, a new session is stored, and its cookie set, even when nothing was
    /// written into it. Left false, a visitor gets no cookie and costs no store write until
    /// the application stores something.
    ///
    /// _Default:_ `false`
    pub save_uninitialized: bool,
    /// Whether the cookie is `HttpOnly`, hidden from page scripts.
    ///
    /// # Security
    ///
    /// Keep it on: it stops an injected script from reading the session cookie.
    ///
    /// _Default:_ `true`
    pub http_only: bool,
    /// Whether the cookie is `Secure` (sent over HTTPS only): `true` always, `false` never,
    /// `"auto"` when the request came over TLS (see `proxy`). A cookie named `__Host-...`
    /// or `__Secure-...`, or with `same_site = "none"`, is always `Secure`.
    ///
    /// # Security
    ///
    /// Left unset, it is `true` in every profile but debug, whatever else Rocket.toml
    /// holds: an app deployed behind a TLS proxy never sends its cookie over plain HTTP
    /// by accident. The debug profile serves plain `http://localhost`, so there it is
    /// `"auto"`.
    ///
    /// _Default:_ `true` (`"auto"` in the debug profile)
    pub secure: Secure,
    /// The cookie's `SameSite` attribute: `"lax"`, `"strict"` or `"none"`. Browsers drop a
    /// `SameSite=None` cookie that is not `Secure`, so `"none"` always marks it `Secure`
    /// (and refuses `secure = false`).
    ///
    /// _Default:_ `"lax"`
    pub same_site: SameSitePolicy,
    /// Whether the cookie carries the `Partitioned` attribute (CHIPS): a browser keeps it
    /// apart for every top-level site that embeds this one, as an application served in
    /// third-party iframes needs. Browsers accept a partitioned cookie only when it is
    /// `Secure`, so it is always marked `Secure` (and launch refuses `secure = false`).
    ///
    /// _Default:_ `false`
    pub partitioned: bool,
    /// The cookie's `Path`.
    ///
    /// _Default:_ `"/"`
    pub path: String,
    /// The cookie's `Domain`; unset, the cookie goes back only to the host that set it.
    ///
    /// _Default:_ unset
    pub domain: Option<String>,
    /// When true, the application sits behind a TLS-terminating reverse proxy, and a
    /// request whose `X-Forwarded-Proto` is `https` counts as TLS for `secure = "auto"`.
    ///
    /// # Security
    ///
    /// Turn it on only behind a proxy that sets that header itself: a client can send it.
    ///
    /// _Default:_ `false`
    pub proxy: bool,
    /// Where [`Authenticated`](crate::Authenticated) sends a browser that is not logged in:
    /// `GET <login_path>?next=<the page it asked for>`, through a 401 catcher the fairing
    /// registers at `/`. `false` turns the redirect off (an API with no login page): every
    /// stranger gets the plain `401`. An application that registers its own 401 catcher
    /// at `/` answers strangers itself, and no redirect is made. The fairing sees the
    /// catchers registered before it ignites: those of `rocket.register(...)`, and those
    /// of fairings attached before it.
    ///
    /// _Default:_ `"/login"`
    #[serde(with = "values::path_or_false")]
    pub login_path: Option<String>,
    /// Secrets that sign session cookies, newest first: the first signs, every one
    /// verifies, so a secret can be rotated without logging anyone out. Each must be at
    /// least 32 bytes. Unset, the cookie is signed with a key derived from Rocket's
    /// `secret_key`. The same secrets key the [`CsrfToken`](crate::CsrfToken)s.
    ///
    /// # Security
    ///
    /// In every profile but debug, launch fails unless `secrets` or Rocket's `secret_key`
    /// is set, and fails for a guessable secret: one estimated under 128 bits of entropy,
    /// where repeats, runs (`abc`, bytes 00 01 02) and small alphabets count for little,
    /// and hex or base64 text counts as the bytes it encodes. The estimate has no
    /// dictionary, so a long English sentence passes: generate secrets with
    /// `openssl rand -base64 32` (256 bits); keep them out of version control
    /// (`ROCKET_SESSIONS='{secrets=["..."]}'`).
    ///
    /// _Default:_ unset
    pub secrets: Vec<String>,
    /// The memory store's settings, under `[<profile>.sessions.memory]`.
    pub memory: MemoryConfig,
    /// The Redis stores' settings, under `[<profile>.sessions.redis]`.
    pub redis: RedisConfig,
    /// The file store's settings, under `[<profile>.sessions.file]`.
    pub file: FileConfig,
    /// The SQL stores' settings, under `[<profile>.sessions.sql]`.
    pub sql: SqlConfig,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            store: StoreKind::Memory,
            cookie_name: "rocket.sid".into(),
            max_age: Duration::from_secs(24 * 60 * 60),
            absolute_timeout: None,
            max_session_size: ByteUnit::Kibibyte(64),
            browser_session: false,
            rolling: false,
            touch_after: None,
            idle_timeout: None,
            resave: false,
            accept_unsealed: false,
            save_uninitialized: false,
            http_only: true,
            secure: Secure::Always,
            same_site: SameSitePolicy::Lax,
            partitioned: false,
            path: "/".into(),
            domain: None,
            proxy: false,
            login_path: Some("/login".into()),
            secrets: Vec::new(),
            memory: MemoryConfig::default(),
            redis: RedisConfig::default(),
            file: FileConfig::default(),
            sql: SqlConfig::default(),
        }
    }
}

/// Never prints the secrets.
impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("store", &self.store)
            .field("cookie_name", &self.cookie_name)
            .field("max_age", &self.max_age)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("max_session_size", &self.max_session_size)
            .field("browser_session", &self.browser_session)
            .field("rolling", &self.rolling)
            .field("touch_after", &self.touch_after)
            .field("idle_timeout", &self.idle_timeout)
            .field("resave", &self.resave)
            .field("accept_unsealed", &self.accept_unsealed)
            .field("save_uninitialized", &self.save_uninitialized)
            .field("http_only", &self.http_only)
            .field("secure", &self.secure)
            .field("same_site", &self.same_site)
            .field("partitioned", &self.partitioned)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("proxy", &self.proxy)
            .field("login_path", &self.login_path)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("memory", &self.memory)
            .field("redis", &self.redis)
            .field("file", &self.file)
            .field("sql", &self.sql)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_reads_booleans_and_auto() {
        #[derive(Deserialize)]
        struct T {
            secure: Secure,
        }

        let read = |s: &str| serde_json::from_str::<T>(s).map(|t| t.secure);
        assert_eq!(read(r#"{"secure":true}"#).unwrap(), Secure::Always);
        assert_eq!(read(r#"{"secure":false}"#).unwrap(), Secure::Never);
        assert_eq!(read(r#"{"secure":"auto"}"#).unwrap(), Secure::Auto);
        assert!(read(r#"{"secure":"sometimes"}"#).is_err());
    }

    #[test]
    fn debug_hides_redis_passwords() {
        let mut config = SessionConfig::default();
        config.redis.url = "redis://:hunter2@db:6379/0".into();
        config.redis.urls = vec!["redis://user:hunter2@node:7000".into()];
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("redis://***@db:6379/0"), "{debug}");
    }

    #[test]
    fn debug_hides_secrets() {
        let config = SessionConfig {
            secrets: vec!["a secret of at least thirty-two bytes!".into()],
            ..SessionConfig::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("thirty-two"), "{debug}");
        assert!(debug.contains("1 redacted"));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;
        use rocket::figment::providers::{Format, Toml};
        use rocket::figment::Figment;

        const KEYS: &[&str] = &[
            "store",
            "cookie_name",
            "max_age",
            "absolute_timeout",
            "max_session_size",
            "browser_session",
            "rolling",
            "touch_after",
            "idle_timeout",
            "resave",
            "accept_unsealed",
            "save_uninitialized",
            "http_only",
            "secure",
            "same_site",
            "partitioned",
            "path",
            "domain",
            "proxy",
            "login_path",
            "secrets",
            "memory.max_sessions",
            "memory.sweep_interval",
            "redis.url",
            "redis.urls",
            "redis.prefix",
            "redis.timeout",
            "redis.max_sessions",
            "redis.connections",
            "file.dir",
            "file.sweep_interval",
            "file.max_sessions",
            "file.timeout",
            "sql.url",
            "sql.database",
            "sql.table",
            "sql.create_table",
            "sql.max_connections",
            "sql.timeout",
            "sql.sweep_interval",
            "sql.max_sessions",
            "colour",
        ];

        /// A TOML value of any type, in the shapes that break parsers.
        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|f| format!("{f:?}")),
                Just("nan".to_string()),
                Just("-inf".to_string()),
                Just("1e309".to_string()),
                any::<bool>().prop_map(|b| b.to_string()),
                ".{0,20}".prop_map(|s| format!("{s:?}")),
                Just("\"64 KiB\"".to_string()),
                Just("\"99 YiB\"".to_string()),
                Just("\"auto\"".to_string()),
            ];
            leaf.prop_recursive(2, 8, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4)
                        .prop_map(|items| format!("[{}]", items.join(", "))),
                    proptest::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|pairs| {
                        let pairs: Vec<String> = pairs
                            .into_iter()
                            .map(|(k, v)| format!("{k} = {v}"))
                            .collect();
                        format!("{{ {} }}", pairs.join(", "))
                    }),
                ]
            })
        }

        fn table() -> impl Strategy<Value = String> {
            proptest::collection::vec((proptest::sample::select(KEYS), value()), 0..6).prop_map(
                |lines| {
                    let mut text = String::from("[sessions]\n");
                    for (key, value) in lines {
                        text.push_str(&format!("{key} = {value}\n"));
                    }
                    text
                },
            )
        }

        proptest! {
            #![proptest_config(crate::proptest_cases::config())]

            /// Garbage in Rocket.toml is a config error naming a key, never a panic.
            #[test]
            fn prop_garbage_config_never_panics(text in table(), noise in ".{0,40}") {
                for text in [text.clone(), format!("{text}{noise}")] {
                    let figment = Figment::from(Toml::string(&text)).focus("sessions");
                    if let Ok(config) = figment.extract::<SessionConfig>() {
                        let _ = config.validate();
                    }
                }
            }
        }
    }
}
