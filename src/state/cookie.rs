//! Writing the session cookie: `Set-Cookie` headers built from the configuration once.

use std::fmt::Write;
use std::time::Duration;

use rocket::http::Header;
use rocket::request::Request;
use rocket::response::Response;

use super::machine::Cookie;
use crate::config::{has_prefix, SameSitePolicy, Secure, SessionConfig};
use crate::keys::Keys;

/// Writes `Set-Cookie` headers for the session cookie. The attributes that never change
/// are formatted once, at ignite, so a response pays for one string.
pub(crate) struct CookieWriter {
    name: String,
    /// `; Path=...; Domain=...; HttpOnly; SameSite=...`
    attributes: String,
    secure: Secure,
    proxy: bool,
}

impl CookieWriter {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        let mut attributes = format!("; Path={}", config.path);
        if let Some(domain) = &config.domain {
            // Writing to a String cannot fail.
            let _ = write!(attributes, "; Domain={domain}");
        }
        if config.http_only {
            attributes.push_str("; HttpOnly");
        }
        attributes.push_str(match config.same_site {
            SameSitePolicy::Lax => "; SameSite=Lax",
            SameSitePolicy::Strict => "; SameSite=Strict",
            SameSitePolicy::None => "; SameSite=None",
        });
        if config.partitioned {
            attributes.push_str("; Partitioned");
        }

        // Browsers drop a SameSite=None cookie, a partitioned one, and a `__Host-` or
        // `__Secure-` one, that is not Secure, whatever the scheme.
        let prefixed = has_prefix(&config.cookie_name, "__Host-")
            || has_prefix(&config.cookie_name, "__Secure-");
        let secure = match config.same_site {
            _ if prefixed || config.partitioned => Secure::Always,
            SameSitePolicy::None => Secure::Always,
            _ => config.secure,
        };

        CookieWriter {
            name: config.cookie_name.clone(),
            attributes,
            secure,
            proxy: config.proxy,
        }
    }

    /// Sets the cookie to `value`; with `max_age`, the cookie persists that long (rounded
    /// up to whole seconds), without it, it ends with the browser session.
    pub(crate) fn set(
        &self,
        req: &Request<'_>,
        res: &mut Response<'_>,
        value: &str,
        max_age: Option<Duration>,
    ) {
        let mut header =
            String::with_capacity(self.name.len() + value.len() + self.attributes.len() + 32);
        header.push_str(&self.name);
        header.push('=');
        header.push_str(value);
        if let Some(max_age) = max_age {
            let secs = max_age
                .as_secs()
                .saturating_add(u64::from(max_age.subsec_nanos() > 0));
            header.push_str("; Max-Age=");
            header.push_str(itoa::Buffer::new().format(secs));
        }
        self.finish(req, res, header);
    }

    /// Writes `cookie`, the commit machine's, signing its id with `keys`: a session's
    /// (with the stamp of a signed-in session) or a pending one; or expires the cookie.
    pub(crate) fn write(
        &self,
        keys: &Keys,
        cookie: Cookie,
        req: &Request<'_>,
        res: &mut Response<'_>,
    ) {
        match cookie {
            Cookie::Session(id, lifetime, stamp) => {
                let stamp = stamp.map(|stamp| stamp.encode()).unwrap_or_default();
                self.set(req, res, &keys.session.sign_with(&id, &stamp), lifetime)
            }
            Cookie::Pending(id, lifetime) => self.set(req, res, &keys.pending.sign(&id), lifetime),
            Cookie::Expire => self.expire(req, res),
        }
    }

    /// Tells the browser to drop the cookie.
    pub(crate) fn expire(&self, req: &Request<'_>, res: &mut Response<'_>) {
        let header = format!(
            "{}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            self.name
        );
        self.finish(req, res, header);
    }

    fn finish(&self, req: &Request<'_>, res: &mut Response<'_>, mut header: String) {
        header.push_str(&self.attributes);
        if self.is_secure(req) {
            header.push_str("; Secure");
        }

        // Rocket writes its own cookie jar before response fairings run: adjoin ours.
        res.adjoin_header(Header::new("Set-Cookie", header));
        // A response that sets a visitor's cookie is theirs alone: no shared cache may
        // hand it, and the cookie, to others. An application's own choice stays. (A
        // response has a few headers: comparing their names costs less than hashing one.)
        if !res.headers().iter().any(|h| h.name() == "Cache-Control") {
            res.set_raw_header("Cache-Control", "private");
        }
    }

    fn is_secure(&self, req: &Request<'_>) -> bool {
        match self.secure {
            Secure::Always => true,
            Secure::Never => false,
            Secure::Auto => {
                // The last value is the one our proxy added; a client can send the others.
                let forwarded_https = || {
                    let proto = req.headers().get("X-Forwarded-Proto").last();
                    let last = proto.unwrap_or("").rsplit(',').next().unwrap_or("").trim();
                    last.eq_ignore_ascii_case("https")
                };

                req.rocket().config().tls_enabled() || (self.proxy && forwarded_https())
            }
        }
    }
}
