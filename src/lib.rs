//! Server-side sessions for [Rocket](https://rocket.rs) 0.5.
//!
//! The cookie carries only a signed, random session id; the data stays on the server, in a
//! [`SessionStore`](crate::store::SessionStore). A fairing loads the session when a guard asks for
//! it and commits what changed after the handler.
//!
//! # Quickstart
//!
//! 1. Add the crate, and `serde` for your session types.
//! 2. Give each value you keep in the session a stable key with [`SessionEntry`].
//! 3. Take [`Session<T>`] in your handlers.
//! 4. Attach [`Sessions::fairing()`]; configure it under `[default.sessions]` in Rocket.toml
//!    (see [`SessionConfig`](crate::config::SessionConfig)).
//!
//! ```no_run
//! use rocket::{get, launch, routes, serde::json::Json};
//! use serde::{Deserialize, Serialize};
//! use rocket_server_sessions::{Error, Session, SessionEntry, Sessions};
//!
//! #[derive(Serialize, Deserialize, Default)]
//! struct Visits {
//!     count: u64,
//! }
//!
//! impl SessionEntry for Visits {
//!     const KEY: &'static str = "visits";
//! }
//!
//! #[get("/counter")]
//! fn counter(mut visits: Session<Visits>) -> Result<Json<Visits>, Error> {
//!     let count = visits.update(|v| {
//!         v.count += 1;
//!         v.count
//!     })?;
//!     Ok(Json(Visits { count }))
//! }
//!
//! #[launch]
//! fn rocket() -> _ {
//!     rocket::build()
//!         .attach(Sessions::fairing())
//!         .mount("/", routes![counter])
//! }
//! ```
//!
//! # Logging in
//!
//! [`Authenticated`] passes only for a logged-in user and sends a stranger's browser to the
//! login page with a safe `next` ([`safe_next`]); [`AuthSession`] logs users in (a new session id
//! in the same commit) and out; [`SessionFlash`] keeps a one-shot message; [`CsrfToken`] protects
//! forms. `examples/login` puts them together.
//!
//! # Stores
//!
//! [`MemoryStore`](crate::store::MemoryStore) is the default; `FileStore` (feature `file`) survives
//! restarts; `RedisStore` (feature `redis`, `redis-tls` for `rediss://`) serves Redis and Redis
//! Cluster to many instances. Choose one with `sessions.store`, or implement
//! [`SessionStore`](crate::store::SessionStore).
//!
//! # Metrics
//!
//! With the feature `metrics`, sessions created, loaded, committed, destroyed and expired,
//! and every store call (by store, call and outcome, with its latency), are reported
//! through the [`metrics`](https://docs.rs/metrics) facade to whatever recorder the
//! application installs; the README lists the names.
//!
//! # Security
//!
//! Session ids are 192 random bits; the cookie carries the id signed with HMAC-SHA256
//! (rotate secrets with [`SessionConfig::secrets`](crate::config::SessionConfig::secrets)). A
//! cookie that is forged, truncated or garbage is no session: it never reaches the store.
//! [`AuthSession::login`] moves the session to a new id (against session fixation) and
//! [`AuthSession::logout`] ends it; without `AuthSession`, call [`SessionHandle::regenerate`] when
//! a user logs in and [`SessionHandle::destroy`] when they log out. A form's CSRF token stores
//! nothing for a stranger ([`CsrfToken`]). SECURITY.md has the threat model.

#![deny(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]
// docs.rs (`--cfg docsrs`, on nightly) labels each gated item with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

// Layers, bottom to top; a module imports only from its own layer or below
// (ARCHITECTURE.md says what each owns; tests/layers.rs checks it).
// 1. Pure data: configuration, ids, signing and keys, records, errors, time, redirect rules.
mod base64url;
pub mod config;
mod ended;
mod error;
mod id;
mod keys;
mod metrics;
mod record;
mod redirect;
mod time;
// 2. Stores, and the kit that tests them.
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
// 3. The request's session state, its commit machine, and the Rocket glue under them
//    (reading the secrets from the figment, writing `Set-Cookie`).
mod state;
// 4. Guards.
mod auth;
mod csrf;
mod flash;
mod login;
mod session;
// 5. The fairing.
mod fairing;

#[cfg(test)]
mod proptest_cases;

pub use auth::{AuthSession, Authenticated};
pub use csrf::{CsrfForm, CsrfToken, NoFields};
pub use ended::Ended;
pub use error::Error;
pub use fairing::{Sessions, SessionsBuilder};
pub use flash::{FlashNotice, SessionFlash};
pub use redirect::safe_next;
pub use session::{Session, SessionEntry, SessionHandle};
pub use store::UserSession;
