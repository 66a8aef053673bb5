//! The request's session: what its cookie carried, what its guards did to it ([`State`],
//! a pure model), the commit [`Plan`](plan::Plan) that turns into after the handler, and the commit
//! [`Machine`] that carries a plan (or a `rolling` touch) out, step by step.
//!
//! Guards reach the session through [`live`]; the fairing takes the [`State`] out of the
//! request as a [`Machine`] ([`Live::commit`]), has [`perform`] carry out its calls, and
//! writes the cookie it asks for.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rocket::log::private as log;
use rocket::request::{Outcome, Request};
use serde::{de::DeserializeOwned, Serialize};

use crate::ended::Ended;
use crate::error::{Error, StoreError};
use crate::id::SessionId;
use crate::metrics::{self, Event, Expiry};
use crate::store::RequestStore;

mod context;
mod cookie;
mod machine;
mod model;
mod plan;
mod run;
mod secrets;

pub(crate) use context::{Context, Incoming};
pub(crate) use machine::{Answer, Machine, Step};
use model::State;
pub(crate) use run::perform;
pub(crate) use secrets::keys;

/// The request-local session, in the request's local cache (keyed by this private type).
pub(crate) enum Slot {
    /// No guard asked for the session.
    Unused,
    /// The store could not load it.
    Failed(StoreError),
    /// Loaded, shared by every guard of the request and the fairing's response hook.
    Ready(Arc<Live>),
}

impl Slot {
    /// The slot of `req`, loading the session from the store the first time a guard asks.
    async fn load<'r>(req: &'r Request<'_>, ctx: &Arc<Context>) -> &'r Slot {
        // Boxed: `local_cache_async` holds the future it is given twice (its argument,
        // then what it awaits), which took a guard's future past the allocator's fast
        // sizes; boxed, each is allocated in one of those. The box is made only when the
        // slot is empty: `local_cache_async` runs the future only then.
        req.local_cache_async(async { Box::pin(Slot::fill(req, ctx)).await })
            .await
    }

    /// The slot of a request no guard asked for its session yet: its cookie read, its
    /// session loaded.
    pub(crate) async fn fill(req: &Request<'_>, ctx: &Arc<Context>) -> Slot {
        let cookies = ctx.cookies_of(req);
        let now = crate::time::unix_millis();
        let state = State::new(cookies.incoming(), &ctx.config, ctx.max_size, now);
        // Made before the loads, so that this future holds a pointer across them, not
        // the state and the store (see `Slot::load`).
        let live = Arc::new(Live {
            ctx: ctx.clone(),
            // The request's store time, for this load and every call after it.
            store: ctx.store.for_request(),
            state: Mutex::new(state),
        });
        // Of several session cookies (one tossed in by another site), the first whose
        // session the store holds: a dead one never shadows the live one.
        for (id, stamp) in cookies.sessions() {
            let loaded = live.store.load(&id).await;
            let mut state = live.lock();
            match loaded {
                Ok(Some(record)) if state.outlived(&record) => {
                    log::debug!("session passed its absolute timeout; starting a fresh session");
                    metrics::count(Event::Expired(Expiry::AbsoluteTimeout), 1);
                    state.timed_out(id, &record);
                }
                Ok(Some(record)) => {
                    metrics::count(Event::Loaded, 1);
                    state.incoming = Incoming::Session(id.clone());
                    state.found(id, record);
                    break;
                }
                Ok(None) => state.gone(&id, stamp),
                Err(StoreError::Corrupt(e)) => {
                    log::warn!("session record is corrupt ({e}); starting a fresh session");
                    state.retire(id);
                }
                Err(e) => return Slot::Failed(e),
            }
        }

        Slot::Ready(live)
    }

    /// The slot of `req` as the response hook sees it: `Unused` when no guard asked.
    pub(crate) fn of<'r>(req: &'r Request<'_>) -> &'r Slot {
        req.local_cache(|| Slot::Unused)
    }
}

/// The request's session for a guard: loaded from the store the first time any guard of
/// the request asks, shared by all of them.
///
/// Fails, with the error's own status, as [`Error::Store`] (`503`) when the store fails,
/// and as [`Error::NotAttached`] (`500`) without the fairing.
pub(crate) async fn live(req: &Request<'_>) -> Outcome<Arc<Live>, Error> {
    let error = match req.rocket().state::<Arc<Context>>() {
        Some(ctx) => match Slot::load(req, ctx).await {
            Slot::Ready(live) => return Outcome::Success(live.clone()),
            Slot::Failed(e) => Error::Store(e.clone()),
            Slot::Unused => Error::NotAttached,
        },
        None => Error::NotAttached,
    };
    Outcome::Error((error.refuse(req), error))
}

/// `true`, with an error naming `guard` and the fix, when the sessions fairing is not
/// attached: for the guards' [`Sentinel`](rocket::Sentinel)s.
pub(crate) fn fairing_missing(rocket: &rocket::Rocket<rocket::Ignite>, guard: &str) -> bool {
    let missing = rocket.state::<Arc<Context>>().is_none();
    if missing {
        log::error!(
            "`{guard}` is used, but the sessions fairing is not attached: add `.attach(rocket_server_sessions::Sessions::fairing())`"
        );
    }

    missing
}

/// The request's session, shared by its guards.
pub(crate) struct Live {
    pub(crate) ctx: Arc<Context>,
    /// The store, within the request's store time: its guard's load, its listings and
    /// its commit together.
    pub(crate) store: RequestStore,
    state: Mutex<State>,
}

/// The session operations, by entry key: `Session<T>` and the crate's own guards (which
/// use reserved `$` keys) all go through these.
impl Live {
    /// Locks the state. Every change to it is a plain assignment, so a panic elsewhere
    /// cannot leave it half-written: a poisoned lock is taken as it is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the session holds an entry `key`, whether or not it decodes.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.lock().record.get(key).is_some()
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let state = self.lock();
        decode(key, state.record.get(key)?)
    }

    pub(crate) fn set<T: Serialize>(&self, key: &'static str, value: &T) -> Result<(), Error> {
        let json = encode(key, value)?;
        self.lock().put(key, json)
    }

    pub(crate) fn update<T, R>(
        &self,
        key: &'static str,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, Error>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let mut state = self.lock();
        let mut value = state.record.get(key).and_then(|json| decode(key, json));
        let value = value.get_or_insert_with(T::default);
        let result = f(value);
        state.put(key, encode(key, value)?)?;
        Ok(result)
    }

    pub(crate) fn remove<T: DeserializeOwned>(&self, key: &'static str) -> Option<T> {
        let old = self.lock().remove_entry(key)?;
        decode(key, &old)
    }

    pub(crate) fn destroy(&self) {
        let mut state = self.lock();
        if state.stored.is_some() {
            metrics::count(Event::Destroyed, 1);
        }
        state.destroy();
    }

    pub(crate) fn regenerate(&self) {
        self.lock().regenerate();
    }

    pub(crate) fn set_max_age(&self, max_age: Duration) {
        self.lock().set_max_age(max_age);
    }

    pub(crate) fn forget_max_age(&self) {
        self.lock().forget_max_age();
    }

    pub(crate) fn id(&self) -> SessionId {
        self.lock().id()
    }

    pub(crate) fn is_new(&self) -> bool {
        self.lock().stored.is_none()
    }

    pub(crate) fn ended(&self) -> Option<Ended> {
        self.lock().ended
    }

    /// The stored session's id and the user logged in to it (the JSON text of its `$user`
    /// entry), as it was loaded: `None` for a new session, or one no one logged in to.
    pub(crate) fn logged_in(&self) -> Option<(SessionId, String)> {
        let state = self.lock();
        Some((state.stored.clone()?, state.loaded_user.clone()?))
    }

    /// The session's CSRF token: its id's tag under the CSRF key. A new session's id is
    /// then sent to the browser (as a pending id, when nothing else stores the session),
    /// so that the token verifies on the next request.
    pub(crate) fn csrf_token(&self) -> String {
        let id = {
            let mut state = self.lock();
            state.bound |= state.stored.is_none();
            state.id()
        };
        self.ctx.keys.csrf.tag(&id)
    }

    /// Whether `token` is the CSRF token of the id the request's cookie carried, a
    /// session's or a pending one, checked in constant time.
    pub(crate) fn verify_csrf(&self, token: &str) -> bool {
        let state = self.lock();
        state
            .incoming
            .id()
            .is_some_and(|id| self.ctx.keys.csrf.verify_tag(id, token))
    }

    /// Takes the state out of the request and turns it into the commit machine of its
    /// plan.
    pub(crate) fn commit(&self) -> Machine<'_> {
        let state = self.lock().take();
        let now = state.now;
        let config = &self.ctx.config;
        Machine::commit(state.plan(config), config, now)
    }
}

fn encode<T: Serialize>(key: &'static str, value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|source| Error::Encode { key, source })
}

fn decode<T: DeserializeOwned>(key: &str, json: &str) -> Option<T> {
    serde_json::from_str(json)
        .map_err(|e| {
            // The error text can quote session data: log only where it failed.
            log::warn!(
                "session entry `{key}` no longer decodes as `{}` ({:?} error at line {}, column {}); treating it as absent",
                std::any::type_name::<T>(),
                e.classify(),
                e.line(),
                e.column(),
            );
        })
        .ok()
}

/// Logs in the session of `req` when `req` is a sign-in request of
/// [`testing::sign_in`](crate::testing::sign_in), as `AuthSession::login` does, reporting an error
/// that stops it; the commit after the response reports the rest.
#[cfg(feature = "testing")]
pub(crate) async fn sign_in<'r>(req: &'r Request<'_>) -> Option<&'r crate::testing::SigningIn> {
    use crate::record::reserved::USER;
    use rocket::outcome::Outcome;

    let signing_in = crate::testing::SigningIn::of(req)?;
    let logged_in = match live(req).await {
        Outcome::Success(live) => live
            .set(USER, signing_in.user())
            .map(|()| live.regenerate()),
        Outcome::Error((_, error)) => Err(error),
        Outcome::Forward(_) => Err(Error::NotAttached),
    };
    if let Err(error) = logged_in {
        signing_in.report(Err(error));
    }

    Some(signing_in)
}

/// Reports to a sign-in request of [`testing::sign_in`](crate::testing::sign_in) how its
/// commit went: the cookie's name, or the store's error.
#[cfg(feature = "testing")]
pub(crate) fn signed_in(
    signing_in: Option<&crate::testing::SigningIn>,
    ctx: &Context,
    committed: &Result<(), StoreError>,
) {
    if let Some(signing_in) = signing_in {
        let name = ctx.config.cookie_name.clone();
        signing_in.report(committed.clone().map(|()| name).map_err(Error::Store));
    }
}
