//! What the fairing sets up for every request, and what a request's cookie carried.

use std::any::{type_name, TypeId};
use std::sync::Mutex;

use rocket::log::private as log;
use rocket::request::Request;

use super::cookie::CookieWriter;
use crate::config::SessionConfig;
use crate::ended::{Stamp, MAX_STAMP_CHARS};
use crate::id::{SessionId, Signer};
use crate::keys::Keys;
use crate::store::Observed;

/// What the fairing sets up at ignite and Rocket manages (as `Arc<Context>`): read by
/// the guards and the fairing's response hook.
pub(crate) struct Context {
    pub(crate) config: SessionConfig,
    pub(crate) store: Observed,
    pub(crate) keys: Keys,
    pub(crate) cookies: CookieWriter,
    /// `max_session_size` in bytes.
    pub(crate) max_size: usize,
    /// The type of the logged-in user, as the first `AuthSession` or `Authenticated` guard
    /// checked at launch names it.
    user_type: Mutex<Option<(TypeId, &'static str)>>,
}

/// What the request's session cookie carried, verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// No cookie of ours that verifies.
    Nothing,
    /// A session's id; the store may or may not have the session.
    Session(SessionId),
    /// The id a visitor's session will have once something is stored in it: given out
    /// with a CSRF token, so that a form costs no stored session. Nothing is stored
    /// under it.
    Pending(SessionId),
}

impl Incoming {
    /// The id the cookie carried, of either kind: what a CSRF token the browser got with
    /// this cookie is bound to.
    pub(crate) fn id(&self) -> Option<&SessionId> {
        match self {
            Incoming::Nothing => None,
            Incoming::Session(id) | Incoming::Pending(id) => Some(id),
        }
    }
}

impl Context {
    pub(crate) fn new(config: SessionConfig, store: Observed, keys: Keys) -> Self {
        Context {
            max_size: max_size(&config),
            cookies: CookieWriter::new(&config),
            config,
            store,
            keys,
            user_type: Mutex::new(None),
        }
    }

    /// Records `U` as the type of the logged-in user, for a guard checked at launch; `Err`
    /// with the other type's name when another guard named a different one.
    pub(crate) fn claim_user_type<U: 'static>(&self) -> Result<(), &'static str> {
        let mut claimed = self.user_type.lock().unwrap_or_else(|e| e.into_inner());
        match *claimed.get_or_insert((TypeId::of::<U>(), type_name::<U>())) {
            (id, _) if id == TypeId::of::<U>() => Ok(()),
            (_, other) => Err(other),
        }
    }

    /// The request's cookies of our name that verify. When a request carries several (one
    /// tossed in by a sibling subdomain, say), junk does not shadow a valid one, and a
    /// caller can prefer the session the store still holds. A value that cannot be one of
    /// our cookies (by its length) is passed over unchecked; of the others, only the
    /// first [`MAX_COOKIES`] are checked, so a request stuffed with cookies costs no more
    /// than that. (More tossed cookies than that can hide ours: a `__Host-` name, which
    /// no other site may set, is the answer to tossing.) A cookie that verifies as
    /// neither a session's nor a pending id never reaches the store.
    pub(crate) fn cookies_of(&self, req: &Request<'_>) -> Cookies {
        let name = self.config.cookie_name.as_str();
        let mut cookies = Cookies::default();
        let mut verify = |value: &str| match self.keys.session.verify_with(value, MAX_STAMP_CHARS) {
            Some((id, stamp)) => cookies.push((id, Stamp::parse(stamp))),
            None if cookies.pending.is_none() => {
                cookies.pending = self.keys.pending.verify(value);
            }
            None => {}
        };
        let mut seen = false;
        // Looked up once: a header name is hashed for each lookup.
        let mut headers = req.headers().get("Cookie").peekable();
        if headers.peek().is_some() {
            let plausible = cookie_values(headers, name)
                .inspect(|_| seen = true)
                .filter(|value| Signer::may_verify(value, MAX_STAMP_CHARS));
            plausible.take(MAX_COOKIES).for_each(&mut verify);
        } else if let Some(cookie) = req.cookies().get(name) {
            // Rocket's local client puts cookies in the jar alone, without a header. Only
            // then: the jar percent-decodes names, so that a tossed `__Host%2Dsid` would
            // pass there for a `__Host-sid` no other site may set.
            seen = true;
            verify(cookie.value());
        }

        if seen && cookies.first.is_none() && cookies.pending.is_none() {
            log::debug!(
                "ignoring a session cookie that is malformed or not signed by a known secret"
            );
        }
        cookies
    }
}

/// `config`'s `max_session_size`, in bytes.
pub(crate) fn max_size(config: &SessionConfig) -> usize {
    usize::try_from(config.max_session_size.as_u64()).unwrap_or(usize::MAX)
}

/// How many cookies of our name, each of a length ours can have, a request's are checked
/// against the secrets (two HMACs each at most).
pub(crate) const MAX_COOKIES: usize = 8;

/// The cookies of our name a request carried that verify, in order.
#[derive(Default)]
pub(crate) struct Cookies {
    /// The first session's id, with the stamp of a signed-in session's cookie: apart from
    /// the others, as nearly every request carries one cookie, and so allocates nothing.
    first: Option<(SessionId, Option<Stamp>)>,
    /// The sessions' ids after the first.
    more: Vec<(SessionId, Option<Stamp>)>,
    /// The first pending id.
    pending: Option<SessionId>,
}

impl Cookies {
    /// Adds a session's cookie, unless one of the same id came before (a copy costs
    /// another load or touch, and tells nothing new).
    fn push(&mut self, session: (SessionId, Option<Stamp>)) {
        match &self.first {
            None => self.first = Some(session),
            Some((first, _)) if *first == session.0 => {}
            Some(_) if self.more.iter().any(|(id, _)| *id == session.0) => {}
            Some(_) => self.more.push(session),
        }
    }

    /// What the cookies say of the request's session: its first session's id, else its
    /// pending id.
    pub(crate) fn incoming(&self) -> Incoming {
        match (&self.first, &self.pending) {
            (Some((id, _)), _) => Incoming::Session(id.clone()),
            (None, Some(id)) => Incoming::Pending(id.clone()),
            (None, None) => Incoming::Nothing,
        }
    }

    /// The sessions' ids: the first, and the rest in order (allocated only when there
    /// are more).
    pub(crate) fn session_ids(self) -> Option<(SessionId, Vec<SessionId>)> {
        let (first, _) = self.first?;
        Some((first, self.more.into_iter().map(|(id, _)| id).collect()))
    }

    /// The sessions' ids, in order, each with its cookie's stamp.
    pub(crate) fn sessions(self) -> impl Iterator<Item = (SessionId, Option<Stamp>)> {
        self.first.into_iter().chain(self.more)
    }
}

/// The values of every cookie named `name` in `headers`, a request's `Cookie` headers, in
/// order.
fn cookie_values<'a>(
    headers: impl Iterator<Item = &'a str>,
    name: &'a str,
) -> impl Iterator<Item = &'a str> {
    headers
        .flat_map(|header| header.split(';'))
        .filter_map(move |pair| {
            // The name first, so another cookie is passed over at its first differing
            // byte. A valid name (`SessionConfig::validate`) holds no `=` or space.
            let value = pair
                .trim_start()
                .strip_prefix(name)?
                .trim_start()
                .strip_prefix('=')?
                .trim();
            let unquoted = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
            Some(unquoted.unwrap_or(value))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::http::Header;
    use rocket::local::blocking::Client;

    #[test]
    fn a_session_cookie_sent_twice_counts_once() {
        let (a, b) = (SessionId::generate(), SessionId::generate());
        let mut cookies = Cookies::default();
        for id in [&a, &a, &b, &a, &b] {
            cookies.push((id.clone(), None));
        }
        assert_eq!(cookies.session_ids(), Some((a, vec![b])));
        assert_eq!(Cookies::default().session_ids(), None);
    }

    #[test]
    fn cookie_values_are_those_of_the_exact_name_in_order() {
        let client = Client::untracked(rocket::build()).unwrap();
        let values = |headers: &[&str]| -> Vec<String> {
            let mut req = client.get("/");
            for header in headers {
                req.add_header(Header::new("Cookie", header.to_string()));
            }
            let req = req.inner();
            let headers = req.headers().get("Cookie");
            cookie_values(headers, "rocket.sid")
                .map(String::from)
                .collect()
        };

        assert_eq!(values(&["a=1; rocket.sid=X; b=2"]), ["X"]);
        assert_eq!(values(&["  rocket.sid = \"Y\" ;c=3"]), ["Y"]);
        assert_eq!(values(&["rocket.sid==v"]), ["=v"]);
        assert_eq!(values(&["rocket.sid=\"half"]), ["\"half"]);
        assert_eq!(values(&["rocket.sid=1", "x=2; rocket.sid=2"]), ["1", "2"]);
        for other in [
            "rocket.sidX=Z",
            "xrocket.sid=Z",
            "rocket.sid",
            "rocket.si=d",
            "",
        ] {
            assert!(values(&[other]).is_empty(), "{other}");
        }
    }
}
