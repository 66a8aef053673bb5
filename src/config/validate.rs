//! The rules serde cannot check: each names the key it rejects.

use std::time::Duration;

use rocket::data::ByteUnit;

use super::{SameSitePolicy, Secure, SessionConfig, StoreKind};
use crate::cookie::has_prefix;
use crate::time::MAX_LIFETIME;
use crate::Error;

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
    /// use rocket_server_sessions::SessionConfig;
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

        if self.memory.sweep_interval.is_zero() {
            return Err(Error::config(
                "memory.sweep_interval",
                "must be more than 0 seconds",
            ));
        }

        if self.redis.timeout.is_zero() {
            return Err(Error::config(
                "redis.timeout",
                "must be more than 0 seconds",
            ));
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
        for (key, zero) in [
            ("sql.timeout", self.sql.timeout.is_zero()),
            ("sql.sweep_interval", self.sql.sweep_interval.is_zero()),
        ] {
            if zero {
                return Err(Error::config(key, "must be more than 0 seconds"));
            }
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

        if self.file.sweep_interval.is_zero() {
            return Err(Error::config(
                "file.sweep_interval",
                "must be more than 0 seconds",
            ));
        }

        Ok(())
    }
}
