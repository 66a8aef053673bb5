//! The request's session: what its cookie carried, what its guards did to it, and the
//! commit [`Plan`] that turns into after the handler.
//!
//! Guards reach the session through [`live`]; the fairing takes the [`State`] out of the
//! request and carries out its plan.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rocket::log::private as log;
use rocket::request::{Outcome, Request};
use serde::{de::DeserializeOwned, Serialize};

use crate::metrics::{self, Event, Expiry};
use crate::record::reserved;
use crate::store::RequestStore;
use crate::time::MAX_LIFETIME;
use crate::{Error, SessionId, SessionRecord, SessionStore, StoreError};

mod context;
mod plan;

pub(crate) use crate::record::outlived;
pub(crate) use context::{Context, Incoming};
pub(crate) use plan::{cookie_lifetime, list_extension, listed_until, Plan};

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
        req.local_cache_async(async {
            let cookies = ctx.cookies_of(req);
            let incoming = match (cookies.sessions.first(), &cookies.pending) {
                (Some(id), _) => Incoming::Session(id.clone()),
                (None, Some(id)) => Incoming::Pending(id.clone()),
                (None, None) => Incoming::Nothing,
            };
            let mut state = State::new(incoming, ctx);
            // The request's store time, for this load and every call after it.
            let store = ctx.store.for_request();
            // Of several session cookies (one tossed in by another site), the first whose
            // session the store holds: a dead one never shadows the live one.
            for id in cookies.sessions {
                match store.load(&id).await {
                    Ok(Some(record)) if state.outlived(&record) => {
                        log::debug!(
                            "session passed its absolute timeout; starting a fresh session"
                        );
                        metrics::count(Event::Expired(Expiry::AbsoluteTimeout), 1);
                        state.retire(id);
                    }
                    Ok(Some(record)) => {
                        metrics::count(Event::Loaded, 1);
                        state.incoming = Incoming::Session(id.clone());
                        state.found(id, record);
                        break;
                    }
                    Ok(None) => {}
                    Err(StoreError::Corrupt(e)) => {
                        log::warn!("session record is corrupt ({e}); starting a fresh session");
                        state.retire(id);
                    }
                    Err(e) => return Slot::Failed(e),
                }
            }

            Slot::Ready(Arc::new(Live {
                ctx: ctx.clone(),
                store,
                state: Mutex::new(state),
            }))
        })
        .await
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
    Outcome::Error((error.status(), error))
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

/// What the request knows and did to its session.
pub(crate) struct State {
    /// What the request's cookie carried.
    incoming: Incoming,
    /// The stored session this request uses, by id: `None` for a new session (none was
    /// found, or it was destroyed or regenerated here).
    stored: Option<SessionId>,
    /// A stored session to delete at commit: destroyed, regenerated away from, or
    /// unreadable.
    discard: Option<SessionId>,
    /// The user logged in to the stored session as it was loaded (the JSON text of its
    /// `$user` entry).
    loaded_user: Option<String>,
    /// The user logged in to `discard`, whose list of sessions it leaves at commit.
    discard_user: Option<String>,
    /// The id a new session is stored under: the id the cookie carried (pending, or a
    /// gone session's), else one generated when first asked for (else at commit).
    new_id: Option<SessionId>,
    /// The session's entries as this request sees them (the store's, plus its changes).
    record: SessionRecord,
    /// The entries this request set or removed, each once: the commit takes their values
    /// out of `record` instead of keeping a copy of each write.
    changed: Vec<&'static str>,
    /// Whether `set_max_age` gave the session its own lifetime (the record's) here.
    own_lifetime: bool,
    /// Whether a CSRF token is bound to `new_id`: that id must then reach the browser,
    /// as a pending id when nothing is stored.
    bound: bool,
    /// Whether the session, as loaded, held only bookkeeping (a flash message).
    was_bookkeeping_only: bool,
    /// Whether a user logged in here ([`Auth::login`](crate::Auth::login)).
    logs_in: bool,
    /// The configured lifetime, which a new session starts with.
    max_age: Duration,
    /// `max_session_size` in bytes: how large a write may grow the session.
    max_size: usize,
    /// `absolute_timeout`: how long a session may live in all.
    absolute_timeout: Option<Duration>,
    /// When the request began, in milliseconds since the Unix epoch.
    now: u64,
}

impl State {
    fn new(incoming: Incoming, ctx: &Context) -> Self {
        // A new session takes the id the browser already has (a pending id, or a gone
        // session's), so that a token bound to it stays valid and no cookie of a newer
        // session is overwritten; the store refuses it if that id is live.
        let new_id = incoming.id().cloned();
        State {
            incoming,
            stored: None,
            discard: None,
            loaded_user: None,
            discard_user: None,
            new_id,
            record: SessionRecord::new(ctx.config.max_age),
            changed: Vec::new(),
            own_lifetime: false,
            bound: false,
            was_bookkeeping_only: false,
            logs_in: false,
            max_age: ctx.config.max_age,
            max_size: ctx.max_size,
            absolute_timeout: ctx.config.absolute_timeout,
            now: crate::time::unix_millis(),
        }
    }

    /// The store had session `id`: this request uses it.
    fn found(&mut self, id: SessionId, record: SessionRecord) {
        self.was_bookkeeping_only = !record.holds_app_data();
        self.loaded_user = record.get(reserved::USER).map(String::from);
        self.record = record;
        self.stored = Some(id);
        // A session stored before `absolute_timeout` was set starts its count now.
        if self.absolute_timeout.is_some() && self.record.created().is_none() {
            self.record.insert(reserved::CREATED, self.now.to_string());
            self.mark_changed(reserved::CREATED);
        }
    }

    /// Whether the stored session `record` has passed its absolute timeout.
    fn outlived(&self, record: &SessionRecord) -> bool {
        outlived(record, self.absolute_timeout, self.now)
    }

    /// Gives up the stored session `id` (unreadable, or past its absolute timeout): it is
    /// deleted at commit, and a new session never takes its id.
    fn retire(&mut self, id: SessionId) {
        if self.new_id.as_ref() == Some(&id) {
            self.new_id = None;
        }
        self.discard.get_or_insert(id);
    }

    /// Sets entry `key` to `json`, recording a change only when the value differs.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] when the write would grow the session past `max_size`; the
    /// session is left as it was. A write that does not grow it always passes, so a
    /// session stored under a larger limit can still shrink.
    fn put(&mut self, key: &'static str, json: String) -> Result<(), Error> {
        // A log-in, even as the user already logged in: the absolute timeout restarts.
        self.logs_in |= key == reserved::USER;
        let old = self.record.get(key);
        if old == Some(json.as_str()) {
            return Ok(());
        }

        let size = self.record.size();
        let new_size = size - old.map_or(0, |old| key.len() + old.len()) + key.len() + json.len();
        if new_size > self.max_size && new_size > size {
            return Err(Error::TooLarge {
                key,
                size: new_size,
                limit: self.max_size,
            });
        }

        self.record.insert(key, json);
        self.mark_changed(key);
        Ok(())
    }

    fn remove_entry(&mut self, key: &'static str) -> Option<String> {
        let old = self.record.remove(key)?;
        self.mark_changed(key);
        Some(old)
    }

    fn mark_changed(&mut self, key: &'static str) {
        if !self.changed.contains(&key) {
            self.changed.push(key);
        }
    }

    /// Gives the session its own lifetime, recorded in the `$lifetime` entry (in
    /// milliseconds: a cap that shortens the stored lifetime for a while never shortens
    /// what the session asked for).
    fn set_max_age(&mut self, max_age: Duration) {
        let max_age = max_age.min(MAX_LIFETIME);
        self.record.set_ttl(max_age);
        self.own_lifetime = true;
        let millis = crate::time::millis(max_age).to_string();
        if self.record.get(reserved::LIFETIME) != Some(millis.as_str()) {
            self.record.insert(reserved::LIFETIME, millis);
            self.mark_changed(reserved::LIFETIME);
        }
    }

    /// Moves the session, with its data, to a new id, deleting the old one at commit. A
    /// CSRF token bound to the old id does not pass for the new one.
    fn regenerate(&mut self) {
        if let Some(old) = self.stored.take() {
            self.discard = Some(old);
            self.discard_user = self.loaded_user.take();
        }
        self.new_id = None;
        self.bound = false;
        self.changed.clear();
        self.own_lifetime = false;
    }

    /// Starts over with an empty session under a new id, deleting the old one at commit.
    fn destroy(&mut self) {
        if self.stored.is_some() {
            metrics::count(Event::Destroyed, 1);
        }
        self.regenerate();
        self.record = SessionRecord::new(self.max_age);
    }

    /// The session's id: the stored session's, or the one a new session will have.
    fn id(&mut self) -> SessionId {
        match &self.stored {
            Some(id) => id.clone(),
            None => self.new_id.get_or_insert_with(SessionId::generate).clone(),
        }
    }

    /// Takes the state out for the commit, leaving an empty session behind.
    fn take(&mut self) -> State {
        State {
            incoming: std::mem::replace(&mut self.incoming, Incoming::Nothing),
            stored: self.stored.take(),
            discard: self.discard.take(),
            loaded_user: self.loaded_user.take(),
            discard_user: self.discard_user.take(),
            new_id: self.new_id.take(),
            record: std::mem::replace(&mut self.record, SessionRecord::new(self.max_age)),
            changed: std::mem::take(&mut self.changed),
            own_lifetime: std::mem::take(&mut self.own_lifetime),
            bound: std::mem::take(&mut self.bound),
            was_bookkeeping_only: self.was_bookkeeping_only,
            logs_in: std::mem::take(&mut self.logs_in),
            max_age: self.max_age,
            max_size: self.max_size,
            absolute_timeout: self.absolute_timeout,
            now: self.now,
        }
    }
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
        self.lock().destroy();
    }

    pub(crate) fn regenerate(&self) {
        self.lock().regenerate();
    }

    pub(crate) fn set_max_age(&self, max_age: Duration) {
        self.lock().set_max_age(max_age);
    }

    pub(crate) fn id(&self) -> SessionId {
        self.lock().id()
    }

    pub(crate) fn is_new(&self) -> bool {
        self.lock().stored.is_none()
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

    /// Takes the state out of the request and turns it into the commit plan.
    pub(crate) fn plan(&self) -> Plan {
        self.lock().take().plan(&self.ctx.config)
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
