//! The request's session as a model: what its cookie carried, what its guards did to it,
//! and nothing else. Pure: no store, no clock (the caller passes the request's `now`), no
//! metric and no Rocket; the guards reach it through [`Live`](super::Live), and the
//! commit [`Plan`](super::plan::Plan) is what it turns into after the handler.

use std::time::Duration;

use super::Incoming;
use crate::config::SessionConfig;
use crate::ended::{Ended, Stamp};
use crate::error::Error;
use crate::id::SessionId;
use crate::record::SessionRecord;
use crate::record::{outlived, reserved};
use crate::time::MAX_LIFETIME;

/// What the request knows and did to its session.
pub(crate) struct State {
    /// What the request's cookie carried.
    pub(super) incoming: Incoming,
    /// The stored session this request uses, by id: `None` for a new session (none was
    /// found, or it was destroyed or regenerated here).
    pub(super) stored: Option<SessionId>,
    /// A stored session to delete at commit: destroyed, regenerated away from, or
    /// unreadable.
    pub(super) discard: Option<SessionId>,
    /// The user logged in to the stored session as it was loaded (the JSON text of its
    /// `$user` entry).
    pub(super) loaded_user: Option<String>,
    /// The user logged in to `discard`, whose list of sessions it leaves at commit.
    pub(super) discard_user: Option<String>,
    /// The id a new session is stored under: the id the cookie carried (pending, or a
    /// gone anonymous session's), else one generated when first asked for (else at
    /// commit).
    pub(super) new_id: Option<SessionId>,
    /// The session's entries as this request sees them (the store's, plus its changes).
    pub(super) record: SessionRecord,
    /// The entries this request set or removed, each once: the commit takes their values
    /// out of `record` instead of keeping a copy of each write.
    pub(super) changed: Vec<&'static str>,
    /// Whether `set_max_age` gave the session its own lifetime (the record's) here.
    pub(super) own_lifetime: bool,
    /// Whether a CSRF token is bound to `new_id`: that id must then reach the browser,
    /// as a pending id when nothing is stored.
    pub(super) bound: bool,
    /// Whether the session, as loaded, held only bookkeeping (a flash message).
    pub(super) was_bookkeeping_only: bool,
    /// Whether a user logged in here ([`AuthSession::login`](crate::AuthSession::login)).
    pub(super) logs_in: bool,
    /// The configured lifetime, which a new session starts with.
    pub(super) max_age: Duration,
    /// `max_session_size` in bytes: how large a write may grow the session.
    pub(super) max_size: usize,
    /// `absolute_timeout`: how long a session may live in all.
    pub(super) absolute_timeout: Option<Duration>,
    /// When the request began, in milliseconds since the Unix epoch.
    pub(super) now: u64,
    /// Why the signed-in session the cookie named ended, when the store no longer holds
    /// it (or holds it past its absolute timeout) and no other cookie's session is live.
    pub(super) ended: Option<Ended>,
    /// Whether the stored session held values written before sealing at rest: its commit
    /// writes every entry back, sealed.
    pub(super) reseal: bool,
}

impl State {
    /// A request's state before any guard changed it: `incoming`, what its cookie
    /// carried; a new session, as `config` starts one; `max_size`, `max_session_size` in
    /// bytes; `now`, when the request began (milliseconds since the Unix epoch).
    pub(super) fn new(
        incoming: Incoming,
        config: &SessionConfig,
        max_size: usize,
        now: u64,
    ) -> Self {
        // A new session takes the id the browser already has (a pending id, or a gone
        // anonymous session's: see `gone`), so that a token bound to it stays valid and
        // requests of one page at once end in one session, not the last one's cookie
        // overwriting the others'; the store refuses it if that id is live. (A gone
        // signed-in session's parallel requests each start their own.)
        let new_id = incoming.id().cloned();
        State {
            incoming,
            stored: None,
            discard: None,
            loaded_user: None,
            discard_user: None,
            new_id,
            record: SessionRecord::new(config.max_age),
            changed: Vec::new(),
            own_lifetime: false,
            bound: false,
            was_bookkeeping_only: false,
            logs_in: false,
            max_age: config.max_age,
            max_size,
            absolute_timeout: config.absolute_timeout,
            now,
            ended: None,
            reseal: false,
        }
    }

    /// The store had session `id`: this request uses it.
    pub(super) fn found(&mut self, id: SessionId, mut record: SessionRecord) {
        self.reseal = record.remove(reserved::UNSEALED).is_some();
        self.was_bookkeeping_only = !record.holds_app_data();
        self.loaded_user = record.get(reserved::USER).map(String::from);
        self.record = record;
        self.stored = Some(id);
        self.ended = None;
        // A session stored before `absolute_timeout` was set starts its count now.
        if self.absolute_timeout.is_some() && self.record.created().is_none() {
            self.record.insert(reserved::CREATED, self.now.to_string());
            self.mark_changed(reserved::CREATED);
        }
    }

    /// Whether the stored session `record` has passed its absolute timeout.
    pub(super) fn outlived(&self, record: &SessionRecord) -> bool {
        outlived(record, self.absolute_timeout, self.now)
    }

    /// The store no longer holds session `id`, which a cookie named: its `stamp`, a
    /// signed-in session's, tells why, unless an earlier cookie's already did.
    ///
    /// A signed-in session's id is never given to a new session: a copy of its cookie
    /// (a thief's, of a device since signed out) would start one the device then shares,
    /// and the device would never learn it was signed out.
    pub(super) fn gone(&mut self, id: &SessionId, stamp: Option<Stamp>) {
        if stamp.is_some() && self.new_id.as_ref() == Some(id) {
            self.new_id = None;
        }
        if self.ended.is_none() {
            self.ended = stamp.map(|stamp| stamp.ended(self.now));
        }
    }

    /// The stored session `id` has passed its absolute timeout: retired, and, when
    /// someone was signed in to it, that is why it ended.
    pub(super) fn timed_out(&mut self, id: SessionId, record: &SessionRecord) {
        if record.get(reserved::USER).is_some() && self.ended.is_none() {
            self.ended = Some(Ended::AbsoluteTimeout);
        }
        self.retire(id);
    }

    /// Gives up the stored session `id` (unreadable, or past its absolute timeout): it is
    /// deleted at commit, and a new session never takes its id.
    pub(super) fn retire(&mut self, id: SessionId) {
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
    pub(super) fn put(&mut self, key: &'static str, json: String) -> Result<(), Error> {
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

    pub(super) fn remove_entry(&mut self, key: &'static str) -> Option<String> {
        let old = self.record.remove(key)?;
        self.mark_changed(key);
        Some(old)
    }

    pub(super) fn mark_changed(&mut self, key: &'static str) {
        if !self.changed.contains(&key) {
            self.changed.push(key);
        }
    }

    /// Gives the session its own lifetime, recorded in the `$lifetime` entry (in
    /// milliseconds: a cap that shortens the stored lifetime for a while never shortens
    /// what the session asked for).
    pub(super) fn set_max_age(&mut self, max_age: Duration) {
        let max_age = max_age.min(MAX_LIFETIME);
        self.record.set_ttl(max_age);
        self.own_lifetime = true;
        let millis = crate::time::millis(max_age).to_string();
        if self.record.get(reserved::LIFETIME) != Some(millis.as_str()) {
            self.record.insert(reserved::LIFETIME, millis);
            self.mark_changed(reserved::LIFETIME);
        }
    }

    /// Drops the lifetime of its own the session had (`set_max_age`): it lives the
    /// configured lifetime again.
    pub(super) fn forget_max_age(&mut self) {
        self.own_lifetime = false;
        if self.record.remove(reserved::LIFETIME).is_some() {
            self.mark_changed(reserved::LIFETIME);
        }
    }

    /// Moves the session, with its data, to a new id, deleting the old one at commit. A
    /// CSRF token bound to the old id does not pass for the new one.
    pub(super) fn regenerate(&mut self) {
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
    pub(super) fn destroy(&mut self) {
        self.regenerate();
        self.record = SessionRecord::new(self.max_age);
    }

    /// The session's id: the stored session's, or the one a new session will have.
    pub(super) fn id(&mut self) -> SessionId {
        match &self.stored {
            Some(id) => id.clone(),
            None => self.new_id.get_or_insert_with(SessionId::generate).clone(),
        }
    }

    /// Takes the state out for the commit, leaving an empty session behind.
    pub(super) fn take(&mut self) -> State {
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
            ended: self.ended,
            reseal: std::mem::take(&mut self.reseal),
        }
    }
}
