//! The session store contract on two well-kept concurrent map crates, `dashmap` and
//! `moka`, so the memory store's hand-rolled shards and slab can be measured against them
//! in the same benchmark (the performance issue asks to measure and choose).
//!
//! Each keeps a `SessionRecord` per session with its expiry and honours expiry on every
//! call, as `MemoryStore` does. The dashmap model leaves out the cap and the sweep that
//! `MemoryStore` also does (moka does both itself), so it is the cheapest of the three.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use rocket_server_sessions::store::{Changes, SessionId, SessionRecord, SessionStore, StoreError};
use rocket_server_sessions::store::{CommitOutcome, CreateOutcome, DeleteOutcome};

/// A record and when it expires.
struct Stored {
    record: SessionRecord,
    expires: Instant,
}

impl Stored {
    fn new(record: &SessionRecord) -> Self {
        Stored {
            expires: Instant::now() + record.ttl(),
            record: record.clone(),
        }
    }

    fn live(&self) -> bool {
        self.expires > Instant::now()
    }

    /// A copy of the record, while it lives.
    fn load(&self) -> Option<SessionRecord> {
        self.live().then(|| self.record.clone())
    }

    /// Resets the expiry of a live record and returns its lifetime.
    fn touch(&mut self) -> Option<SessionRecord> {
        self.live().then(|| {
            self.expires = Instant::now() + self.record.ttl();
            self.record.clone()
        })
    }

    /// Applies `changes` to a live record; `false` when it has expired.
    fn commit(&mut self, changes: &Changes) -> bool {
        if !self.live() {
            return false;
        }
        self.record.apply(changes);
        if changes.ttl().is_some() {
            self.expires = Instant::now() + self.record.ttl();
        }
        true
    }
}

fn applied(applied: bool) -> CommitOutcome {
    match applied {
        true => CommitOutcome::Applied,
        false => CommitOutcome::Gone,
    }
}

fn deleted(held: bool) -> DeleteOutcome {
    match held {
        true => DeleteOutcome::Deleted,
        false => DeleteOutcome::Absent,
    }
}

#[derive(Default)]
pub struct DashMapStore(DashMap<SessionId, Stored>);

#[rocket::async_trait]
impl SessionStore for DashMapStore {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.0.get(id).and_then(|stored| stored.load()))
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        match self.0.entry(id.clone()) {
            Entry::Occupied(stored) if stored.get().live() => Ok(CreateOutcome::Taken),
            Entry::Occupied(mut stored) => {
                stored.insert(Stored::new(record));
                Ok(CreateOutcome::Created)
            }
            Entry::Vacant(slot) => {
                slot.insert(Stored::new(record));
                Ok(CreateOutcome::Created)
            }
        }
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        Ok(applied(
            self.0
                .get_mut(id)
                .is_some_and(|mut stored| stored.commit(changes)),
        ))
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.0.get_mut(id).and_then(|mut stored| stored.touch()))
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        Ok(deleted(self.0.remove(id).is_some()))
    }
}

/// Bounded to `cap` sessions and swept by moka itself, each session expiring after its
/// own lifetime.
pub struct MokaStore(moka::sync::Cache<SessionId, Arc<Mutex<Stored>>>);

struct SessionLifetime;

impl moka::Expiry<SessionId, Arc<Mutex<Stored>>> for SessionLifetime {
    fn expire_after_create(
        &self,
        _: &SessionId,
        stored: &Arc<Mutex<Stored>>,
        _: Instant,
    ) -> Option<Duration> {
        Some(stored.lock().unwrap().record.ttl())
    }
}

impl MokaStore {
    pub fn new(cap: u64) -> Self {
        MokaStore(
            moka::sync::Cache::builder()
                .max_capacity(cap)
                .expire_after(SessionLifetime)
                .build(),
        )
    }
}

#[rocket::async_trait]
impl SessionStore for MokaStore {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .0
            .get(id)
            .and_then(|stored| stored.lock().unwrap().load()))
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        let entry = self
            .0
            .entry(id.clone())
            .or_insert_with(|| Arc::new(Mutex::new(Stored::new(record))));
        Ok(match entry.is_fresh() {
            true => CreateOutcome::Created,
            false => CreateOutcome::Taken,
        })
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        Ok(applied(self.0.get(id).is_some_and(|stored| {
            stored.lock().unwrap().commit(changes)
        })))
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .0
            .get(id)
            .and_then(|stored| stored.lock().unwrap().touch()))
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        Ok(deleted(self.0.remove(id).is_some()))
    }
}
