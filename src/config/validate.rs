//! The rules serde cannot check: each names the key it rejects.

use std::time::Duration;

use rocket::data::ByteUnit;

use super::has_prefix;
use super::{SameSitePolicy, Secure, SessionConfig, StoreKind};
use crate::error::Error;
use crate::time::MAX_LIFETIME;

/// The longest `redis.timeout`, `sql.timeout` and `file.timeout`: an hour is already no bound a visitor
/// would wait for, and past what a clock's `Instant` holds it would not be one at all.
const MAX_STORE_TIMEOUT: Duration = Duration::from_secs(3600);

/// A cookie's name or attribute value may not hold these, or it would end the attribute.
fn is_cookie_text(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
}

impl SessionConfig {
    /// Checks the values that serde cannot: every rule names its key.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first key with a bad value and how to fix it.
    ///
    /// # Example
    ///
    /// ```
    /// use rocket_server_sessions::config::SessionConfig;
    ///
    /// let mut config = SessionConfig::default();
    /// config.secrets = vec!["too short".into()];
    /// let error = config.validate().unwrap_err();
    /// assert!(error.to_string().contains("sessions.secrets"));
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        const SEPARATORS: &[u8] = b"()<>@,;:\\\"/[]?={}";
        let name_ok = !self.cookie_name.is_empty()
            && self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !SEPARATORS.contains(&b));
        if !name_ok {
            return Err(Error::config(
                "cookie_name",
                "use letters, digits and `.-_`, as in \"rocket.sid\"",
            ));
        }

        if has_prefix(&self.cookie_name, "__Host-") {
            let problem = if self.secure == Secure::Never {
                Some("needs `secure` to be true or \"auto\" (the cookie is always Secure)")
            } else if self.path != "/" {
                Some("needs `path = \"/\"`")
            } else if self.domain.is_some() {
                Some("needs `domain` to be unset")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(Error::config(
                    "cookie_name",
                    format!("a `__Host-` cookie {problem}: browsers refuse it otherwise"),
                ));
            }
        }
        if has_prefix(&self.cookie_name, "__Secure-") && self.secure == Secure::Never {
            return Err(Error::config(
                "cookie_name",
                "a `__Secure-` cookie needs `secure` to be true or \"auto\": browsers refuse it otherwise",
            ));
        }

        // Stores keep expiry in milliseconds: less than one would expire on arrival.
        if self.max_age < Duration::from_millis(1) {
            return Err(Error::config("max_age", "must be at least 0.001 seconds"));
        }
        if let Some(timeout) = self.absolute_timeout {
            if timeout < Duration::from_millis(1) || timeout > MAX_LIFETIME {
                return Err(Error::config(
                    "absolute_timeout",
                    "must be from 0.001 seconds to 34560000 seconds (400 days); leave it unset for no cap",
                ));
            }
        }
        if let Some(idle) = self.idle_timeout {
            if idle < Duration::from_millis(1) || idle > MAX_LIFETIME {
                return Err(Error::config(
                    "idle_timeout",
                    "must be from 0.001 seconds to 34560000 seconds (400 days); leave it unset for signed-in sessions to live `max_age`",
                ));
            }
        }
        if let Some(after) = self.touch_after {
            if !self.rolling && self.idle_timeout.is_none() {
                return Err(Error::config(
                    "touch_after",
                    "applies only with `rolling = true` or an `idle_timeout`: set one, or leave `touch_after` unset",
                ));
            }
            let shortest = self
                .idle_timeout
                .map_or(self.max_age, |idle| idle.min(self.max_age));
            if after < Duration::from_millis(1) || after > shortest / 8 {
                let most = (shortest / 8).as_secs_f64();
                return Err(Error::config(
                    "touch_after",
                    format!("must be from 0.001 seconds to an eighth of `max_age` and `idle_timeout` ({most} seconds), so that a session refreshed this late still has most of its life"),
                ));
            }
        }
        if self.max_session_size == ByteUnit::Byte(0) {
            return Err(Error::config(
                "max_session_size",
                "must be more than 0 bytes",
            ));
        }
        if self.max_age > MAX_LIFETIME {
            return Err(Error::config(
                "max_age",
                "must be at most 34560000 seconds (400 days): browsers keep no cookie longer",
            ));
        }

        if !self.path.starts_with('/') || !is_cookie_text(&self.path) {
            return Err(Error::config(
                "path",
                "must start with `/` and hold no spaces, `;` or `,`",
            ));
        }

        // The rule `next` follows after log-in: the way there is as safe as the way back.
        let login_path_ok = self
            .login_path
            .as_deref()
            .is_none_or(|path| crate::redirect::is_local_path(path) && !path.contains(['?', '#']));
        if !login_path_ok {
            return Err(Error::config(
                "login_path",
                "must be a path on this site without a query or fragment, as in \"/login\"",
            ));
        }

        if let Some(domain) = &self.domain {
            if domain.is_empty() || !is_cookie_text(domain) {
                return Err(Error::config(
                    "domain",
                    "must be a host name, as in \"example.com\"",
                ));
            }
        }

        if self.same_site == SameSitePolicy::None && self.secure == Secure::Never {
            return Err(Error::config(
                "same_site",
                "\"none\" needs `secure = true` or \"auto\": browsers drop a SameSite=None cookie that is not Secure",
            ));
        }

        if self.partitioned && self.secure == Secure::Never {
            return Err(Error::config(
                "partitioned",
                "a Partitioned cookie is always Secure: browsers refuse it otherwise; set `secure` to true or \"auto\"",
            ));
        }

        for (i, secret) in self.secrets.iter().enumerate() {
            if secret.len() < 32 {
                return Err(Error::config(
                    "secrets",
                    format!(
                        "secret #{} is {} bytes; each must be at least 32 random bytes (e.g. `openssl rand -base64 32`)",
                        i + 1,
                        secret.len()
                    ),
                ));
            }
        }

        if self.memory.max_sessions == 0 {
            return Err(Error::config("memory.max_sessions", "must be at least 1"));
        }

        for (key, every) in [
            ("memory.sweep_interval", self.memory.sweep_interval),
            ("sql.sweep_interval", self.sql.sweep_interval),
            ("file.sweep_interval", self.file.sweep_interval),
        ] {
            // A sweep rarer than the longest session lives is a slip of units.
            if every.is_zero() || every > MAX_LIFETIME {
                return Err(Error::config(
                    key,
                    "must be more than 0 seconds and at most 34560000 (400 days)",
                ));
            }
        }

        for (key, timeout) in [
            ("redis.timeout", self.redis.timeout),
            ("sql.timeout", self.sql.timeout),
            ("file.timeout", self.file.timeout),
        ] {
            if timeout.is_zero() || timeout > MAX_STORE_TIMEOUT {
                return Err(Error::config(
                    key,
                    "must be more than 0 seconds and at most 3600: a request waits this long for the store at most",
                ));
            }
        }

        if !(1..=256).contains(&self.redis.connections) {
            return Err(Error::config("redis.connections", "must be from 1 to 256"));
        }
        if self.redis.max_sessions == 0 {
            return Err(Error::config("redis.max_sessions", "must be at least 1"));
        }

        if self.store == StoreKind::RedisCluster && self.redis.urls.is_empty() {
            return Err(Error::config(
                "redis.urls",
                "`store = \"redis-cluster\"` needs seed nodes, as in urls = [\"redis://127.0.0.1:7000/\"]",
            ));
        }

        if self.sql.table.is_empty()
            || self.sql.table.starts_with(|c: char| c.is_ascii_digit())
            || !self
                .sql
                .table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::config(
                "sql.table",
                "use letters, digits and `_`, not starting with a digit, as in \"sessions\"",
            ));
        }
        // A SQL store this build has: without its feature, opening it names the missing
        // feature, which is the fix to give first.
        let sql_store = (cfg!(feature = "postgres") && matches!(self.store, StoreKind::Postgres))
            || (cfg!(feature = "sqlite") && matches!(self.store, StoreKind::Sqlite))
            || (cfg!(feature = "mysql") && matches!(self.store, StoreKind::Mysql));
        if sql_store && self.sql.url.is_none() && self.sql.database.is_none() {
            return Err(Error::config(
                "sql.url",
                "a SQL store needs its database: set `url` (\"postgres://...\", \"sqlite://...\", \"mysql://...\") or `database` (a rocket_db_pools database's name)",
            ));
        }
        if self.sql.max_connections == 0 {
            return Err(Error::config("sql.max_connections", "must be at least 1"));
        }
        if self.sql.max_sessions == 0 {
            return Err(Error::config("sql.max_sessions", "must be at least 1"));
        }

        if self.file.dir.as_os_str().is_empty() {
            return Err(Error::config("file.dir", "must name a directory"));
        }

        if self.file.max_sessions == 0 {
            return Err(Error::config("file.max_sessions", "must be at least 1"));
        }

        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MemoryConfig, RedisConfig};
    use super::*;

    fn invalid_key(config: SessionConfig) -> String {
        match config.validate() {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        SessionConfig::default().validate().unwrap();
    }

    #[test]
    fn the_longest_sweep_intervals_are_valid() {
        let mut config = SessionConfig::default();
        config.memory.sweep_interval = MAX_LIFETIME;
        config.sql.sweep_interval = MAX_LIFETIME;
        config.file.sweep_interval = MAX_LIFETIME;
        config.validate().unwrap();
    }

    #[test]
    fn login_paths_on_this_site_are_valid() {
        for login_path in ["/login", "/auth/login", "/login;v=1", "/caf%C3%A9"] {
            let config = SessionConfig {
                login_path: Some(login_path.into()),
                ..SessionConfig::default()
            };
            assert!(config.validate().is_ok(), "{login_path}");
        }
    }

    #[test]
    fn each_rule_names_its_key() {
        let base = SessionConfig::default;
        let cases: Vec<(SessionConfig, &str)> = vec![
            (
                SessionConfig {
                    cookie_name: "".into(),
                    ..base()
                },
                "cookie_name",
            ),
            (
                SessionConfig {
                    cookie_name: "a b".into(),
                    ..base()
                },
                "cookie_name",
            ),
            (
                SessionConfig {
                    cookie_name: "a;b".into(),
                    ..base()
                },
                "cookie_name",
            ),
            (
                SessionConfig {
                    max_age: Duration::ZERO,
                    ..base()
                },
                "max_age",
            ),
            (
                SessionConfig {
                    path: "app".into(),
                    ..base()
                },
                "path",
            ),
            (
                SessionConfig {
                    path: "/a;b".into(),
                    ..base()
                },
                "path",
            ),
            (
                SessionConfig {
                    domain: Some("".into()),
                    ..base()
                },
                "domain",
            ),
            (
                SessionConfig {
                    domain: Some("a.com;x".into()),
                    ..base()
                },
                "domain",
            ),
            (
                SessionConfig {
                    same_site: SameSitePolicy::None,
                    secure: Secure::Never,
                    ..base()
                },
                "same_site",
            ),
            (
                SessionConfig {
                    redis: RedisConfig {
                        connections: 0,
                        ..RedisConfig::default()
                    },
                    ..base()
                },
                "redis.connections",
            ),
            (
                SessionConfig {
                    redis: RedisConfig {
                        connections: 257,
                        ..RedisConfig::default()
                    },
                    ..base()
                },
                "redis.connections",
            ),
            (
                SessionConfig {
                    partitioned: true,
                    secure: Secure::Never,
                    ..base()
                },
                "partitioned",
            ),
            (
                SessionConfig {
                    absolute_timeout: Some(Duration::ZERO),
                    ..base()
                },
                "absolute_timeout",
            ),
            (
                SessionConfig {
                    absolute_timeout: Some(MAX_LIFETIME + Duration::from_secs(1)),
                    ..base()
                },
                "absolute_timeout",
            ),
            (
                {
                    let mut config = base();
                    config.sql.timeout = Duration::from_secs(10_u64.pow(19));
                    config
                },
                "sql.timeout",
            ),
            (
                {
                    let mut config = base();
                    config.redis.timeout = MAX_STORE_TIMEOUT + Duration::from_secs(1);
                    config
                },
                "redis.timeout",
            ),
            (
                SessionConfig {
                    touch_after: Some(Duration::from_secs(1)),
                    ..base()
                },
                "touch_after",
            ),
            (
                SessionConfig {
                    idle_timeout: Some(Duration::from_secs(8)),
                    touch_after: Some(Duration::from_secs(2)),
                    ..base()
                },
                "touch_after",
            ),
            (
                SessionConfig {
                    idle_timeout: Some(Duration::ZERO),
                    ..base()
                },
                "idle_timeout",
            ),
            (
                SessionConfig {
                    idle_timeout: Some(MAX_LIFETIME + Duration::from_secs(1)),
                    ..base()
                },
                "idle_timeout",
            ),
            (
                SessionConfig {
                    rolling: true,
                    touch_after: Some(base().max_age / 8 + Duration::from_millis(1)),
                    ..base()
                },
                "touch_after",
            ),
            (
                SessionConfig {
                    rolling: true,
                    touch_after: Some(Duration::ZERO),
                    ..base()
                },
                "touch_after",
            ),
            (
                SessionConfig {
                    secrets: vec!["short".into()],
                    ..base()
                },
                "secrets",
            ),
            (
                SessionConfig {
                    memory: MemoryConfig {
                        max_sessions: 0,
                        ..MemoryConfig::default()
                    },
                    ..base()
                },
                "memory.max_sessions",
            ),
            (
                SessionConfig {
                    memory: MemoryConfig {
                        sweep_interval: Duration::ZERO,
                        ..MemoryConfig::default()
                    },
                    ..base()
                },
                "memory.sweep_interval",
            ),
        ];

        let mut cases = cases;
        let mut config = base();
        config.max_session_size = ByteUnit::Byte(0);
        cases.push((config, "max_session_size"));
        let mut config = base();
        config.redis.timeout = Duration::ZERO;
        cases.push((config, "redis.timeout"));
        let mut config = base();
        config.file.timeout = Duration::ZERO;
        cases.push((config, "file.timeout"));
        let mut config = base();
        config.file.timeout = MAX_STORE_TIMEOUT + Duration::from_millis(1);
        cases.push((config, "file.timeout"));
        let mut config = base();
        config.file.dir = std::path::PathBuf::new();
        cases.push((config, "file.dir"));
        // Zero, and longer than any session lives.
        for every in [
            Duration::ZERO,
            MAX_LIFETIME + Duration::from_secs(1),
            Duration::from_secs(u64::MAX),
        ] {
            let mut config = base();
            config.memory.sweep_interval = every;
            cases.push((config, "memory.sweep_interval"));
            let mut config = base();
            config.sql.sweep_interval = every;
            cases.push((config, "sql.sweep_interval"));
            let mut config = base();
            config.file.sweep_interval = every;
            cases.push((config, "file.sweep_interval"));
        }
        for max_age in [
            Duration::from_micros(400),
            MAX_LIFETIME + Duration::from_secs(1),
        ] {
            let mut config = base();
            config.max_age = max_age;
            cases.push((config, "max_age"));
        }
        for login_path in [
            "login",
            "//evil.example",
            "/\\evil.example",
            "/%2F%2Fevil.example",
            "/<login>",
            "/login?x=1",
            "/login#x",
        ] {
            let mut config = base();
            config.login_path = Some(login_path.into());
            cases.push((config, "login_path"));
        }

        for (config, key) in cases {
            assert_eq!(invalid_key(config), key);
        }
    }

    #[test]
    fn redis_cluster_needs_seed_nodes() {
        let config = SessionConfig {
            store: StoreKind::RedisCluster,
            ..SessionConfig::default()
        };
        assert_eq!(invalid_key(config), "redis.urls");
    }
}
