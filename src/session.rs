//! The request-local session and the typed `Session<T>` guard.

use std::any::type_name;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rocket::log::private as log;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use serde::{de::DeserializeOwned, Serialize};

use crate::config::MAX_LIFETIME;
use crate::csrf::CSRF_KEY;
use crate::fairing::Shared;
use crate::{Changes, Error, SessionId, SessionRecord, StoreError};

/// A value kept in the session under a fixed, explicit key.
///
/// The key is what the store persists, so it must stay the same across releases of your
/// application: rename the type freely, never the key. Keys starting with `$` are
/// reserved for this crate. A key that breaks these rules stops launch.
///
/// # Example
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use rocket_server_sessions::SessionEntry;
///
/// #[derive(Serialize, Deserialize, Default)]
/// struct Cart { items: Vec<String> }
///
/// impl SessionEntry for Cart {
///     const KEY: &'static str = "cart";
/// }
/// ```
pub trait SessionEntry: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name of the entry in the session record.
    const KEY: &'static str;
}

/// The request-local session, in the request's local cache (keyed by this private type).
pub(crate) enum Slot {
    /// No guard asked for the session.
    Unused,
    /// The store could not load it.
    Failed(StoreError),
    /// Loaded, shared by every guard of the request and the fairing's response hook.
    Ready(Arc<Live>),
}

pub(crate) struct Live(Mutex<State>);

/// What the request knows and did to its session.
pub(crate) struct State {
    /// The verified id the request's cookie carried, whether or not the store had it.
    pub(crate) cookie_id: Option<SessionId>,
    /// `true` when the session will be stored as new (none was found, or it was destroyed
    /// or regenerated), under `new_id`.
    pub(crate) fresh: bool,
    /// `true` when the cookie's session is to be deleted from the store.
    pub(crate) discard_cookie_id: bool,
    /// The id a fresh session is stored under, generated once asked for.
    pub(crate) new_id: Option<SessionId>,
    /// The session's entries as this request sees them (the store's, plus its changes).
    pub(crate) record: SessionRecord,
    /// The entries this request set or removed, each once: the commit to an existing
    /// session takes their values out of `record` instead of keeping a copy of each write.
    pub(crate) changed: Vec<&'static str>,
    /// Whether `set_max_age` gave the session a new lifetime (the record's), to commit.
    pub(crate) ttl_changed: bool,
    /// The configured lifetime, which a destroyed session's successor starts with.
    pub(crate) max_age: Duration,
    /// `max_session_size` in bytes: how large a write may grow the session.
    pub(crate) max_size: usize,
}

impl Slot {
    /// The slot of `req`, loading the session from the store the first time a guard asks.
    pub(crate) async fn load<'r>(req: &'r Request<'_>, shared: &Shared) -> &'r Slot {
        req.local_cache_async(async {
            let cookie_id = shared.cookie_id(req);
            let mut state = State {
                cookie_id: cookie_id.clone(),
                fresh: true,
                discard_cookie_id: false,
                new_id: None,
                record: SessionRecord::new(shared.config.max_age),
                changed: Vec::new(),
                ttl_changed: false,
                max_age: shared.config.max_age,
                max_size: usize::try_from(shared.config.max_session_size.as_u64())
                    .unwrap_or(usize::MAX),
            };

            if let Some(id) = cookie_id {
                match shared.outage.observe(shared.store.load(&id).await) {
                    Ok(Some(record)) => {
                        state.record = record;
                        state.fresh = false;
                    }
                    Ok(None) => {}
                    Err(StoreError::Corrupt(e)) => {
                        log::warn!("session record is corrupt ({e}); starting a fresh session");
                        state.discard_cookie_id = true;
                    }
                    Err(e) => return Slot::Failed(e),
                }
            }

            Slot::Ready(Arc::new(Live(Mutex::new(state))))
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
    let error = match req.rocket().state::<Shared>() {
        Some(shared) => match Slot::load(req, shared).await {
            Slot::Ready(live) => return Outcome::Success(live.clone()),
            Slot::Failed(e) => Error::Store(e.clone()),
            Slot::Unused => Error::NotAttached,
        },
        None => Error::NotAttached,
    };
    Outcome::Error((error.status(), error))
}

/// The session operations, by entry key: `Session<T>` and the crate's own guards (which
/// use reserved `$` keys) all go through these.
impl Live {
    /// Locks the state. Every change to it is a plain assignment, so a panic elsewhere
    /// cannot leave it half-written: a poisoned lock is taken as it is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
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
        let mut state = self.lock();
        state.record.set_ttl(max_age.min(MAX_LIFETIME));
        state.ttl_changed = true;
    }

    pub(crate) fn id(&self) -> SessionId {
        let mut state = self.lock();
        match (&state.cookie_id, state.fresh) {
            (Some(id), false) => id.clone(),
            _ => state.new_id.get_or_insert_with(SessionId::generate).clone(),
        }
    }

    pub(crate) fn is_new(&self) -> bool {
        self.lock().fresh
    }
}

impl State {
    /// Sets entry `key` to `json`, recording a change only when the value differs.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] when the write would grow the session past `max_size`; the
    /// session is left as it was. A write that does not grow it always passes, so a
    /// session stored under a larger limit can still shrink.
    fn put(&mut self, key: &'static str, json: String) -> Result<(), Error> {
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

    /// The changes to commit to the stored session: the changed entries, moved out of the
    /// record (`None` where removed), then with `resave` every other entry too; and the
    /// session's lifetime when it changed or, with `rolling`, always.
    pub(crate) fn into_changes(self, resave: bool, rolling: bool) -> Changes {
        let State {
            mut record,
            changed,
            ttl_changed,
            ..
        } = self;
        let mut changes = Changes::default();
        if ttl_changed || rolling {
            changes.reset_ttl(record.ttl());
        }
        for key in changed {
            match record.take(key) {
                Some((key, json)) => changes.set(key, json),
                None => changes.remove(key),
            }
        }
        if resave {
            for (key, json) in record.into_entries() {
                changes.set(key, json);
            }
        }
        changes
    }

    /// Moves the session, with its data but not its CSRF token, to a new id, deleting the
    /// old one at commit. A token someone saw before (say, on the log-in page of a session
    /// they planted) must not pass for the new session.
    fn regenerate(&mut self) {
        self.record.remove(CSRF_KEY);
        self.discard_cookie_id |= self.cookie_id.is_some();
        self.fresh = true;
        self.new_id = None;
        self.changed.clear();
        self.ttl_changed = false;
    }

    /// Starts over with an empty session under a new id, deleting the old one at commit.
    fn destroy(&mut self) {
        self.regenerate();
        self.record = SessionRecord::new(self.max_age);
        self.discard_cookie_id = true;
    }
}

/// A typed view of one entry of the visitor's session, and the handle on the session.
///
/// Any number of `Session<T>` guards (for different `T`) in one handler share one load and
/// one commit: the store is read when the first guard runs and written once, after the
/// handler, with only what changed. A visitor without a session gets an empty one; it is
/// stored, and its cookie set, only once something is written into it.
///
/// # Outcomes
///
/// - **Success**: always, unless the store fails.
/// - **Error** `503 Service Unavailable` with [`Error::Store`] when the store cannot load
///   the session.
/// - **Error** `500 Internal Server Error` with [`Error::NotAttached`] without the
///   [`Sessions`](crate::Sessions) fairing (a route using the guard stops launch first,
///   through [`Sentinel`]).
///
/// # Example
///
/// ```
/// use rocket::{get, serde::json::Json};
/// use serde::{Deserialize, Serialize};
/// use rocket_server_sessions::{Error, Session, SessionEntry};
///
/// #[derive(Serialize, Deserialize, Default)]
/// struct Visits { count: u64 }
///
/// impl SessionEntry for Visits {
///     const KEY: &'static str = "visits";
/// }
///
/// #[get("/counter")]
/// fn counter(mut visits: Session<Visits>) -> Result<Json<Visits>, Error> {
///     visits.update(|v| v.count += 1)?;
///     Ok(Json(visits.get().unwrap_or_default()))
/// }
/// ```
pub struct Session<T> {
    live: Arc<Live>,
    _entry: PhantomData<fn() -> T>,
}

impl<T: SessionEntry> Session<T> {
    /// The entry's value, or `None` when the session has no such entry.
    ///
    /// An entry stored by an older version of `T` that no longer decodes is `None` too,
    /// with a warning in the log.
    pub fn get(&self) -> Option<T> {
        self.live.get(T::KEY)
    }

    /// Sets the entry to `value`.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when `value` cannot be encoded as JSON (for example a map whose
    /// keys are not strings), and [`Error::TooLarge`] when it would grow the session past
    /// `max_session_size`; the session is left as it was.
    pub fn set(&mut self, value: T) -> Result<(), Error> {
        self.live.set(T::KEY, &value)
    }

    /// Changes the entry in place, starting from `T::default()` when absent, and returns
    /// what `f` returns. Nothing is written when `f` leaves the value as it was.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the changed value cannot be encoded as JSON, and
    /// [`Error::TooLarge`] when it would grow the session past `max_session_size`; the
    /// session is left as it was.
    pub fn update<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> Result<R, Error>
    where
        T: Default,
    {
        self.live.update(T::KEY, f)
    }

    /// Removes the entry and returns its value, if it had one that decodes.
    pub fn remove(&mut self) -> Option<T> {
        self.live.remove(T::KEY)
    }

    /// Ends the whole session: it is deleted from the store and its cookie expired when the
    /// response goes out. Anything set afterwards in this request starts a new session,
    /// under a new id (e.g. a "you have been logged out" message).
    pub fn destroy(&mut self) {
        self.live.destroy();
    }

    /// Moves the session, with all its data, to a new id: the old id is deleted from the
    /// store and the new cookie set when the response goes out. The session's
    /// [`CsrfToken`](crate::CsrfToken) does not move: a new one is made when next asked for.
    ///
    /// # Security
    ///
    /// Call it whenever the session gains privilege (log-in): it defeats session
    /// fixation, where an attacker plants a known id in the victim's browser beforehand.
    pub fn regenerate(&mut self) {
        self.live.regenerate();
    }

    /// Gives this session its own lifetime ("remember me"), from now on: its expiry in the
    /// store and its cookie's `Max-Age` become `max_age`, and `rolling` keeps using it.
    /// The cookie is persistent even with `browser_session`. A lifetime over 400 days, the
    /// longest browsers keep a cookie, is cut to 400 days.
    pub fn set_max_age(&mut self, max_age: Duration) {
        self.live.set_max_age(max_age);
    }

    /// The session's id: the one in the cookie, or for a new session the id it will be
    /// stored under.
    pub fn id(&self) -> SessionId {
        self.live.id()
    }

    /// `true` when the session is not (yet) in the store: the visitor had none, or it was
    /// destroyed or regenerated in this request.
    pub fn is_new(&self) -> bool {
        self.live.is_new()
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
                type_name::<T>(),
                e.classify(),
                e.line(),
                e.column(),
            );
        })
        .ok()
}

/// Why `key` cannot be an entry key, if it cannot.
pub(crate) fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is empty")
    } else if key.starts_with('$') {
        Some("starts with `$`, which is reserved for rocket_server_sessions")
    } else if key.len() > 128 {
        Some("is longer than 128 bytes")
    } else {
        None
    }
}

#[rocket::async_trait]
impl<'r, T: SessionEntry> FromRequest<'r> for Session<T> {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        live(req).await.map(|live| Session {
            live,
            _entry: PhantomData,
        })
    }
}

/// For a guard's [`Sentinel`]: `true`, with an error naming `guard` and the fix, when the
/// sessions fairing is not attached.
pub(crate) fn fairing_missing(rocket: &Rocket<Ignite>, guard: &str) -> bool {
    let missing = rocket.state::<Shared>().is_none();
    if missing {
        log::error!(
            "`{guard}` is used, but the sessions fairing is not attached: add `.attach(rocket_server_sessions::Sessions::fairing())`"
        );
    }

    missing
}

impl<T: SessionEntry> Sentinel for Session<T> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        if fairing_missing(rocket, &format!("Session<{}>", type_name::<T>())) {
            return true;
        }

        if let Some(problem) = key_problem(T::KEY) {
            log::error!(
                "`{}::KEY` ({:?}) {problem}: choose a short, stable name such as \"cart\"",
                type_name::<T>(),
                T::KEY
            );
            return true;
        }

        false
    }
}

impl State {
    /// Takes the state out for the commit, leaving an empty session behind.
    pub(crate) fn take(&mut self) -> State {
        let empty = SessionRecord::new(self.record.ttl());
        State {
            cookie_id: self.cookie_id.take(),
            fresh: self.fresh,
            discard_cookie_id: self.discard_cookie_id,
            new_id: self.new_id.take(),
            record: std::mem::replace(&mut self.record, empty),
            changed: std::mem::take(&mut self.changed),
            ttl_changed: std::mem::take(&mut self.ttl_changed),
            max_age: self.max_age,
            max_size: self.max_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(entries: &[(&str, &str)]) -> State {
        let mut record = SessionRecord::new(Duration::from_secs(60));
        for (key, json) in entries {
            record.insert(*key, *json);
        }
        State {
            cookie_id: Some(SessionId::generate()),
            fresh: false,
            discard_cookie_id: false,
            new_id: None,
            record,
            changed: Vec::new(),
            ttl_changed: false,
            max_age: Duration::from_secs(60),
            max_size: 100,
        }
    }

    fn changes(state: State, resave: bool) -> Vec<(String, Option<String>)> {
        let changes = state.into_changes(resave, false);
        changes
            .entries()
            .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
            .collect()
    }

    fn entry(key: &str, json: Option<&str>) -> (String, Option<String>) {
        (key.to_owned(), json.map(str::to_owned))
    }

    #[test]
    fn each_changed_entry_is_committed_once_with_its_last_value() {
        let mut s = state(&[("a", "1"), ("b", "2"), ("c", "3")]);
        s.put("a", "10".into()).unwrap();
        s.put("a", "11".into()).unwrap();
        s.put("b", "2".into()).unwrap();
        s.put("d", "4".into()).unwrap();
        s.remove_entry("d");
        s.remove_entry("c");
        assert_eq!(s.remove_entry("never"), None);
        assert_eq!(
            changes(s, false),
            [entry("a", Some("11")), entry("c", None), entry("d", None)]
        );
    }

    #[test]
    fn a_write_may_not_grow_the_session_past_its_limit() {
        // max_size is 100: "a" + 60 bytes, then "b" + 38 bytes is 100 in all.
        let mut s = state(&[]);
        s.put("a", "1".repeat(60)).unwrap();
        s.put("b", "2".repeat(38)).unwrap();
        let refused = s.put("c", "3".into()).unwrap_err();
        assert!(
            matches!(
                refused,
                Error::TooLarge {
                    key: "c",
                    size: 102,
                    limit: 100
                }
            ),
            "{refused:?}"
        );
        assert!(
            s.put("a", "1".repeat(61)).is_err(),
            "growing an entry counts"
        );
        assert_eq!(s.record.get("c"), None, "a refused write changes nothing");
        assert_eq!(s.changed, ["a", "b"]);

        // Over the limit already (a lower limit than it was stored under): it may shrink.
        s.max_size = 50;
        s.put("a", "1".repeat(40)).unwrap();
        assert!(s.put("a", "1".repeat(41)).is_err());
    }

    #[test]
    fn resave_commits_every_entry_and_the_removals() {
        let mut s = state(&[("a", "1"), ("b", "2")]);
        s.remove_entry("b");
        s.put("c", "3".into()).unwrap();
        assert_eq!(
            changes(s, true),
            [
                entry("a", Some("1")),
                entry("b", None),
                entry("c", Some("3"))
            ]
        );
    }

    #[test]
    fn a_new_lifetime_is_committed_and_a_destroy_forgets_the_changes() {
        let mut s = state(&[("a", "1")]);
        s.record.set_ttl(Duration::from_secs(5));
        s.ttl_changed = true;
        let committed = s.into_changes(false, false);
        assert_eq!(committed.ttl(), Some(Duration::from_secs(5)));
        assert!(committed.has_no_entries());

        let mut s = state(&[("a", "1")]);
        s.put("a", "2".into()).unwrap();
        s.destroy();
        assert!(s.into_changes(false, false).is_empty());
    }
}
