//! The list of a user's sessions, which "sign out everywhere" reads and revokes.
//!
//! Each logged-in user has one record in the store that keeps the sessions, under an id
//! derived from the user with a secret: it maps each session's handle to the session's
//! id, sealed, and its log-in time. It is built on the store contract alone (per-entry
//! commits keep concurrent log-ins of one user apart, `create` never overwrites), so it
//! works the same on every store, an application's own included. It never grows without
//! bound: each log-in and each listing drops the sessions that are gone, and a user keeps
//! at most [`MAX_SESSIONS_PER_USER`] (a log-in past that revokes the oldest). Nor does it
//! live much longer than its sessions: it records until when it must live (`$until`),
//! each session until when its lists are kept (`$listed`), and a session about to
//! outlive that keeps them longer first, and puts itself back on one if it finds itself
//! on none ([`Users::keep_for`]).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{CommitOutcome, CreateOutcome, DeleteOutcome, SessionStore};
use crate::error::StoreError;
use crate::id::SessionId;
use crate::keys::UserKeys;
use crate::record::reserved;
use crate::record::{Changes, SessionRecord};
use crate::time::{after, unix_millis};
use rocket::futures::future::join_all;
use rocket::log::private as log;

/// The most sessions one user keeps: a log-in past that revokes the oldest.
pub(crate) const MAX_SESSIONS_PER_USER: usize = 100;

/// How many times [`Users::revoke_all`] reads the list at most: each pass after the first
/// catches the sessions that moved to a new id while the one before ran.
const REVOKE_PASSES: usize = 4;

/// One session in a user's list, as the store keeps it.
#[derive(Serialize, Deserialize)]
struct Member {
    /// The session's id, sealed ([`Signer::seal`](crate::id::Signer::seal)).
    id: String,
    /// When the user logged in to it, in milliseconds since the Unix epoch.
    created: u64,
}

/// One of a logged-in user's sessions, as [`AuthSession::sessions`](crate::AuthSession::sessions)
/// lists them: never its id or cookie, only a public id that revokes it.
///
/// # Example
///
/// ```
/// use rocket::{get, serde::json::Json};
/// use rocket_server_sessions::{AuthSession, Error};
///
/// /// The public ids of the user's other sessions, newest last.
/// #[get("/devices")]
/// async fn devices(auth: AuthSession) -> Result<Json<Vec<String>>, Error> {
///     let sessions = auth.sessions().await?;
///     let others = sessions.iter().filter(|s| !s.is_current());
///     Ok(Json(others.map(|s| s.public_id().to_string()).collect()))
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UserSession {
    handle: String,
    created: u64,
    last_seen: u64,
    current: bool,
}

impl UserSession {
    /// An opaque name for the session, for [`AuthSession::revoke`](crate::AuthSession::revoke):
    /// safe to show the user and to send back, it gives nobody the session (a hash of its
    /// id, never the id).
    pub fn public_id(&self) -> &str {
        &self.handle
    }

    /// When the user logged in to it.
    pub fn created(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.created)
    }

    /// When it was last written: by a change to it, or a `rolling` refresh; its log-in
    /// time if neither happened since.
    pub fn last_seen(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.last_seen)
    }

    /// Whether it is the session of the request that listed it.
    pub fn is_current(&self) -> bool {
        self.current
    }
}

/// Prints the public id's first characters only.
impl fmt::Debug for UserSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSession")
            .field(
                "public_id",
                &format_args!("{}…", &self.handle[..6.min(self.handle.len())]),
            )
            .field("created", &self.created())
            .field("last_seen", &self.last_seen())
            .field("current", &self.current)
            .finish()
    }
}

/// A live session found in a user's list.
struct Listed {
    session: UserSession,
    id: SessionId,
    /// The list (one per secret) that holds it.
    index: SessionId,
    /// Until when the session has its user's lists kept (its `$listed`; 0 if none).
    listed: u64,
}

/// Until when `list` is kept, seen at `now`: its `$until`; for a list written before
/// lists kept it, its whole lifetime from now (it may have been kept that long for a
/// session given longer).
fn kept_until(list: &SessionRecord, now: u64) -> u64 {
    match list
        .get(reserved::UNTIL)
        .and_then(|until| until.parse().ok())
    {
        Some(until) => until,
        None => after(now, list.ttl()),
    }
}

/// The changes that keep a list until `until` (milliseconds since the Unix epoch), seen
/// at `now`: its `$until`, and its lifetime to then (a millisecond at least).
fn keeping(now: u64, until: u64) -> Changes {
    let mut changes = Changes::default();
    changes.set(reserved::UNTIL, until.to_string());
    let lifetime = Duration::from_millis(until.saturating_sub(now));
    changes.reset_ttl(lifetime.max(Duration::from_millis(1)));
    changes
}

/// The lists of users' sessions in `store`.
pub(crate) struct Users<'a> {
    store: &'a dyn SessionStore,
    keys: &'a UserKeys,
    /// `absolute_timeout`: a session past it is gone, whatever the store holds.
    absolute_timeout: Option<Duration>,
}

impl<'a> Users<'a> {
    pub(crate) fn new(
        store: &'a dyn SessionStore,
        keys: &'a UserKeys,
        absolute_timeout: Option<Duration>,
    ) -> Self {
        Users {
            store,
            keys,
            absolute_timeout,
        }
    }

    /// The ids of `user`'s lists, one per secret, the signing one's first.
    fn indexes(&self, user: &str) -> Vec<SessionId> {
        self.keys.index.derive_ids(user.as_bytes())
    }

    /// Adds session `id` of `user` (the JSON text of its `$user` entry), logged in at
    /// `now` (milliseconds since the Unix epoch), in place of `replacing` (the session it
    /// moves from, deleted next, when there is one); then drops the sessions of the list
    /// that are gone, and revokes the oldest when the user has too many. The list is then
    /// kept `lifetime` from `now` (past the session's end), or longer if it already was,
    /// or as long as another of its sessions needs.
    ///
    /// The count comes after the addition, so that log-ins at once cannot each find room
    /// and together pass the limit.
    pub(crate) async fn add(
        &self,
        user: &str,
        id: &SessionId,
        replacing: Option<&SessionId>,
        now: u64,
        lifetime: Duration,
    ) -> Result<(), StoreError> {
        let index = self.indexes(user).swap_remove(0);
        // The list's own time first: a session that had it kept longer may not have
        // recorded that yet (its `$listed` comes after the list).
        let kept = self.load_list(&index).await?;
        let until = after(now, lifetime).max(kept.map_or(0, |list| kept_until(&list, now)));
        self.insert(user, &index, id, now, until).await?;

        let others: Vec<Listed> = self
            .list(user, None)
            .await?
            .into_iter()
            .filter(|listed| listed.id != *id && Some(&listed.id) != replacing)
            .collect();
        // Another session of the user's had the list kept longer as this ran (its
        // `$listed` says so), and this wrote its own time over that: keep it that long
        // again.
        let needed = others.iter().map(|listed| listed.listed).max();
        if let Some(needed) = needed.filter(|needed| *needed > until) {
            self.keep_until(&index, unix_millis(), needed).await?;
        }
        let excess = (others.len() + 1).saturating_sub(MAX_SESSIONS_PER_USER);
        self.revoke_listed(others.into_iter().take(excess)).await?;
        Ok(())
    }

    /// Puts session `id` on `user`'s list `index`, which is then kept until `until`
    /// (milliseconds since the Unix epoch, after `now`).
    async fn insert(
        &self,
        user: &str,
        index: &SessionId,
        id: &SessionId,
        now: u64,
        until: u64,
    ) -> Result<(), StoreError> {
        let member = Member {
            id: self.keys.seal.seal(id),
            created: now,
        };
        let member = serde_json::to_string(&member).map_err(StoreError::corrupt)?;
        let mut changes = keeping(now, until);
        changes.set(id.public_id(), member);
        for _ in 0..3 {
            if self.store.commit(index, &changes).await? == CommitOutcome::Applied {
                return Ok(());
            }
            let mut record = SessionRecord::new(Duration::ZERO);
            record.insert(reserved::INDEX, user);
            record.apply(&changes);
            if self.store.create(index, &record).await? == CreateOutcome::Created {
                return Ok(());
            }
            // Another log-in of the user created the list meanwhile: add to it.
        }
        Err(StoreError::unavailable(
            "the list of the user's sessions was neither there nor creatable",
        ))
    }

    /// Keeps `user`'s lists at least `lifetime` from now: their session `id` now lives
    /// that long. (Each list, one per secret: the session may be on one kept under an
    /// older secret.) A list kept that long already is left as it is. A session on none
    /// of them (its list ended early: a failed extension, or a race that wrote a shorter
    /// time over one) is put back on the signing secret's, logged in as of now, so that
    /// signing out everywhere finds it again.
    pub(crate) async fn keep_for(
        &self,
        user: &str,
        id: &SessionId,
        lifetime: Duration,
    ) -> Result<(), StoreError> {
        let now = unix_millis();
        let until = after(now, lifetime);
        let handle = id.public_id();
        let mut listed = false;
        for index in self.indexes(user) {
            // Read back once written: another session's write of a shorter time, racing
            // this one, may land over it (last write wins); this then writes again.
            for _ in 0..3 {
                let Some(list) = self.load_list(&index).await? else {
                    break;
                };
                listed |= list.get(&handle).is_some();
                if list.get(reserved::UNTIL).is_some() && kept_until(&list, now) >= until {
                    break;
                }
                // A list without a time of its own keeps at least the lifetime it has.
                let until = until.max(kept_until(&list, now));
                self.keep_until(&index, now, until).await?;
            }
        }
        if !listed {
            log::debug!("a logged-in session was on no list of its user's; it is put back");
            let index = self.indexes(user).swap_remove(0);
            self.insert(user, &index, id, now, until).await?;
        }
        Ok(())
    }

    /// The list `index`, as the store has it. One written before sealing at rest is
    /// written back whole here, sealed (a session is, by its request's commit).
    async fn load_list(&self, index: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let Some(mut list) = self.store.load(index).await? else {
            return Ok(None);
        };
        if list.remove(reserved::UNSEALED).is_some() {
            let mut changes = Changes::default();
            for (key, value) in list.entries() {
                changes.set(key, value);
            }
            let _: CommitOutcome = self.store.commit(index, &changes).await?;
        }
        Ok(Some(list))
    }

    /// Has the list `index` kept until `until` (milliseconds since the Unix epoch, after
    /// `now`).
    async fn keep_until(&self, index: &SessionId, now: u64, until: u64) -> Result<(), StoreError> {
        let _: CommitOutcome = self.store.commit(index, &keeping(now, until)).await?;
        Ok(())
    }

    /// Removes session `id` from `user`'s lists (it logged out).
    pub(crate) async fn remove(&self, user: &str, id: &SessionId) -> Result<(), StoreError> {
        let mut changes = Changes::default();
        changes.remove(id.public_id());
        for index in self.indexes(user) {
            let _: CommitOutcome = self.store.commit(&index, &changes).await?;
        }
        Ok(())
    }

    /// `user`'s live sessions, the oldest first, `current` marked; the ones that are gone
    /// are dropped from the lists on the way.
    pub(crate) async fn sessions(
        &self,
        user: &str,
        current: Option<&SessionId>,
    ) -> Result<Vec<UserSession>, StoreError> {
        let listed = self.list(user, current).await?;
        Ok(listed.into_iter().map(|listed| listed.session).collect())
    }

    /// Revokes `user`'s session `handle`: it is deleted from the store, dead on its next
    /// request on every instance. `false` when the user has no such session.
    pub(crate) async fn revoke(&self, user: &str, handle: &str) -> Result<bool, StoreError> {
        let listed = self.list(user, None).await?;
        let found: Vec<Listed> = listed
            .into_iter()
            .filter(|listed| listed.session.handle == handle)
            .collect();
        Ok(self.revoke_listed(found).await? > 0)
    }

    /// Revokes every session of `user` but `keep`: how many it revoked.
    ///
    /// A session that moves to a new id meanwhile (a regenerate) puts the new id on the
    /// list before it deletes the old one, and drops the new one if the old was gone
    /// already: so the list is read again until it names no other session, and a session
    /// that moved while this ran is revoked under its new id.
    pub(crate) async fn revoke_all(
        &self,
        user: &str,
        keep: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let mut revoked = 0;
        for _ in 0..REVOKE_PASSES {
            let listed = self.list(user, keep).await?;
            let others: Vec<Listed> = listed
                .into_iter()
                .filter(|listed| !listed.session.current)
                .collect();
            if others.is_empty() {
                return Ok(revoked);
            }
            revoked += self.revoke_listed(others).await?;
        }
        // Sessions that keep moving (or log-ins that keep coming) as fast as this revokes.
        log::warn!(
            "signing a user out everywhere still found sessions after {REVOKE_PASSES} passes"
        );
        Ok(revoked)
    }

    /// Deletes the `listed` sessions, then takes them off their lists: how many the store
    /// still held.
    async fn revoke_listed(
        &self,
        listed: impl IntoIterator<Item = Listed>,
    ) -> Result<usize, StoreError> {
        let mut revoked = 0;
        let mut off: Vec<(SessionId, Changes)> = Vec::new();
        for listed in listed {
            if self.store.delete(&listed.id).await? == DeleteOutcome::Deleted {
                revoked += 1;
            }
            match off.iter_mut().find(|(index, _)| *index == listed.index) {
                Some((_, changes)) => changes.remove(listed.session.handle),
                None => {
                    let mut changes = Changes::default();
                    changes.remove(listed.session.handle);
                    off.push((listed.index, changes));
                }
            }
        }
        for (index, changes) in off {
            let _: CommitOutcome = self.store.commit(&index, &changes).await?;
        }
        crate::metrics::count(crate::metrics::Event::Revoked, revoked);
        Ok(revoked)
    }

    /// Reads `user`'s lists: the live sessions, the oldest first. A member whose session
    /// is gone (expired, deleted, past its absolute timeout, or no longer this user's), or
    /// that does not open, is dropped from its list. The members' sessions load at once.
    async fn list(
        &self,
        user: &str,
        current: Option<&SessionId>,
    ) -> Result<Vec<Listed>, StoreError> {
        let mut live = Vec::new();
        for index in self.indexes(user) {
            let Some(record) = self.load_list(&index).await? else {
                continue;
            };
            let members = record
                .entries()
                .filter(|(handle, _)| !handle.starts_with('$'))
                .map(|(handle, json)| async move {
                    (handle, self.member(user, handle, json, current).await)
                });
            let mut gone = Changes::default();
            for (handle, member) in join_all(members).await {
                match member? {
                    Some((session, id, listed)) => live.push(Listed {
                        session,
                        id,
                        index: index.clone(),
                        listed,
                    }),
                    None => gone.remove(handle),
                }
            }
            if !gone.has_no_entries() {
                let _: CommitOutcome = self.store.commit(&index, &gone).await?;
            }
        }
        live.sort_by_key(|listed| listed.session.created);
        Ok(live)
    }

    /// The live session a list's entry `handle` = `json` names, if it is one of `user`'s.
    async fn member(
        &self,
        user: &str,
        handle: &str,
        json: &str,
        current: Option<&SessionId>,
    ) -> Result<Option<(UserSession, SessionId, u64)>, StoreError> {
        let Ok(member) = serde_json::from_str::<Member>(json) else {
            return Ok(None);
        };
        let Some(id) = self.keys.seal.unseal(&member.id, handle) else {
            return Ok(None);
        };
        let record = match self.store.load(&id).await {
            Ok(Some(record)) => record,
            Ok(None) | Err(StoreError::Corrupt(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let outlived = crate::record::outlived(&record, self.absolute_timeout, unix_millis());
        if record.get(reserved::USER) != Some(user) || outlived {
            return Ok(None);
        }
        let last_seen = record
            .get(reserved::SEEN)
            .and_then(|seen| seen.parse().ok())
            .unwrap_or(member.created);
        let session = UserSession {
            handle: handle.to_string(),
            created: member.created,
            last_seen: last_seen.max(member.created),
            current: current == Some(&id),
        };
        Ok(Some((session, id, record.listed().unwrap_or(0))))
    }
}
