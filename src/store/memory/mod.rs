//! The embedded in-memory store: bounded, swept, and the default.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::evict::{self, Class};
use super::sweep::Sweeper;
use super::{CommitOutcome, CreateOutcome, DeleteOutcome};
use crate::config::MemoryConfig;
use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::{Changes, SessionRecord};
use crate::store::SessionStore;
use crate::time::millis;

mod codec;
mod slab;

use codec::{apply, decode, encode};
use slab::{Blob, Slab};

/// Sessions a shard holds before the store splits into more shards; small stores keep
/// one shard, so the cap is exact.
const SESSIONS_PER_SHARD: usize = 4096;
/// The most shards a store splits into: enough that requests on many cores rarely meet on
/// one lock, and that sweeping one shard holds its lock only briefly.
const MAX_SHARDS: usize = 128;
/// A full shard frees 1/EVICTION_BATCH of its room at once.
const EVICTION_BATCH: usize = 8;

/// Sessions kept in this process's memory: the default store.
///
/// - **Bounded, and a stranger only displaces strangers.** It never holds more than
///   `max_sessions` sessions, counted store-wide (plus one for each thread creating a
///   session at that instant). When full, a new session first clears the expired ones,
///   then evicts the anonymous sessions (no user logged in) closest to expiry, an eighth
///   of a shard at once. A new anonymous session never evicts a signed-in one: when
///   signed-in sessions fill the store, it is refused ([`StoreError::Full`], a `503`).
///   A sign-in evicts the signed-in sessions closest to expiry only then. So a flood of
///   visitors without an account costs a fixed amount of memory and time, and never logs
///   a user out. Users' lists of sessions are outside the cap (they live only as long as
///   their sessions need). Visitors who store nothing take no room
///   (`save_uninitialized` off, the default; a form's CSRF token stores nothing).
/// - **Swept.** Expired sessions are absent on read at once, and a background task
///   removes them every `sweep_interval`, one shard at a time. It runs on the Tokio
///   runtime the store is made in (Rocket's, made in `#[launch]`), or else that of its
///   first call; it starts again on a later call's if that runtime shuts down, and ends
///   when the store is dropped.
/// - **Concurrent and compact.** Sessions are spread over up to 128 independently locked
///   shards. Records live in pages of same-sized slots, not in an allocation each, so a
///   store holding a million sessions neither fragments the process's heap nor slows its
///   other requests.
///
/// Sessions do not survive a restart and are not shared between processes; use a file or
/// Redis store for that. Cloning a `MemoryStore` gives another handle to the same sessions.
///
/// # Example
///
/// ```
/// use rocket_server_sessions::{Sessions, config::MemoryConfig, store::MemoryStore};
///
/// let mut config = MemoryConfig::default();
/// config.max_sessions = 10_000;
/// let store = MemoryStore::new(config);
/// let fairing = Sessions::builder().store(store.clone()).build();
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    shards: Arc<Shards>,
    sweeper: Arc<Sweeper>,
}

struct Shards {
    /// Expiry times are milliseconds since this instant.
    base: Instant,
    shards: Box<[Mutex<Shard>]>,
    /// The most sessions the store holds: `max_sessions`.
    cap: usize,
    /// How many sessions a full store evicts at once: an eighth of a shard.
    batch: usize,
    counts: Arc<Counts>,
}

/// How many sessions of each class the store holds, store-wide; kept by the shards, under
/// their locks, as sessions come and go.
#[derive(Default)]
struct Counts {
    anonymous: AtomicUsize,
    signed_in: AtomicUsize,
}

impl Counts {
    fn of(&self, class: Class) -> Option<&AtomicUsize> {
        match class {
            Class::Anonymous => Some(&self.anonymous),
            Class::SignedIn => Some(&self.signed_in),
            Class::List => None,
        }
    }

    fn add(&self, class: Class) {
        if let Some(count) = self.of(class) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remove(&self, class: Class) {
        if let Some(count) = self.of(class) {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Hashes a session id by taking 8 of its bytes: ids are uniformly random and made only
/// by [`SessionId::generate`] (a client cannot choose one: cookies are verified before any
/// lookup), so those bytes are already a good hash, and SipHash's flood resistance buys
/// nothing here.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Bytes 8..16: the first two pick the shard, so they are the same within one.
        if let Some(chunk) = bytes.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            self.0 ^= u64::from_le_bytes(chunk);
        }
    }

    fn write_usize(&mut self, _length_prefix: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Default)]
struct Shard {
    /// The store's counts of sessions, which this shard keeps up to date.
    counts: Arc<Counts>,
    map: HashMap<SessionId, Stored, BuildHasherDefault<IdHasher>>,
    /// No session in the shard expires before this: a sweep before it has nothing to do.
    earliest: u64,
    /// The records' bytes.
    slab: Slab,
}

struct Stored {
    /// The record, as [`codec::encode`] encodes it, in the shard's slab.
    record: Blob,
    /// When it expires, in milliseconds since `Shards::base`.
    expires: u64,
    /// Anonymous, signed in, or a list: what it is to the cap.
    class: Class,
}

impl MemoryStore {
    /// A store with `config`'s cap and sweep interval.
    pub fn new(config: MemoryConfig) -> Self {
        let max = config.max_sessions.max(1);
        let count = (max / SESSIONS_PER_SHARD).clamp(1, MAX_SHARDS);
        let counts = Arc::new(Counts::default());
        let shards = (0..count)
            .map(|_| {
                Mutex::new(Shard {
                    counts: counts.clone(),
                    ..Shard::default()
                })
            })
            .collect();

        let shards = Arc::new(Shards {
            base: Instant::now(),
            shards,
            cap: max,
            batch: (max / count / EVICTION_BATCH).max(1),
            counts,
        });
        let sweeper = Sweeper::spawn(&shards, config.sweep_interval, |shards| async move {
            let mut removed = 0;
            for shard in shards.shards.iter() {
                let now = shards.now();
                removed += lock(shard).sweep(now);
                // One shard at a time: live requests wait for one shard's sweep at most.
                tokio::task::yield_now().await;
            }
            removed
        });
        MemoryStore { shards, sweeper }
    }

    /// How many sessions the store holds, counting expired ones not yet swept.
    pub fn len(&self) -> usize {
        self.shards
            .shards
            .iter()
            .map(|shard| lock(shard).map.len())
            .sum()
    }

    /// `true` when the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired session now and returns how many it removed.
    pub fn sweep(&self) -> usize {
        self.shards
            .shards
            .iter()
            .map(|shard| lock(shard).sweep(self.shards.now()))
            .sum()
    }

    /// The shard of `id`, locked, and the time now.
    fn shard(&self, id: &SessionId) -> (MutexGuard<'_, Shard>, u64) {
        self.sweeper.ensure_running();
        let shards = &self.shards.shards;
        (lock(&shards[id.shard(shards.len())]), self.shards.now())
    }

    /// Makes room for one more session of `class`, whose home is shard `home`, holding no
    /// shard's lock when called, as [`evict::room`] says: a full store first drops its
    /// expired sessions, then evicts from the home shard first, then from the others, one
    /// shard locked at a time.
    ///
    /// # Errors
    ///
    /// [`StoreError::Full`] for a stranger's session when signed-in sessions fill the
    /// store.
    fn make_room(&self, home: usize, class: Class) -> Result<(), StoreError> {
        let shards = &self.shards;
        let plan = || {
            let anonymous = shards.counts.anonymous.load(Ordering::Relaxed);
            let signed_in = shards.counts.signed_in.load(Ordering::Relaxed);
            evict::room(class, anonymous, signed_in, shards.cap, shards.batch)
        };
        match plan() {
            Some(evict) if evict.is_none() => return Ok(()),
            // Only live sessions count: a shard with nothing expired is passed at once.
            _ => self.sweep(),
        };
        let Some(mut evict) = plan() else {
            return Err(StoreError::Full);
        };
        // First the shards holding at least their share of the cap, whose oldest sessions
        // are the store's oldest too (a shard just evicted from holds only recent ones),
        // then any, so that a user who keeps her sessions in one shard still finds room.
        let count = shards.shards.len();
        let share = shards.cap / count;
        for pass in [share, 0] {
            for i in (0..count).map(|k| (home + k) % count) {
                if evict.is_none() {
                    return Ok(());
                }
                let mut shard = lock(&shards.shards[i]);
                if shard.map.len() < pass {
                    continue;
                }
                evict.anonymous -= shard.evict(Class::Anonymous, evict.anonymous);
                evict.signed_in -= shard.evict(Class::SignedIn, evict.signed_in);
            }
        }
        Ok(())
    }
}

impl Default for MemoryStore {
    /// A store with [`MemoryConfig::default()`].
    fn default() -> Self {
        MemoryStore::new(MemoryConfig::default())
    }
}

impl Shards {
    fn now(&self) -> u64 {
        millis(self.base.elapsed())
    }
}

/// Locks a shard. A panic while a shard was locked cannot leave it half-written (every
/// change is a single map operation), so a poisoned lock is taken as it is.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shard {
    /// The live session `id`, after removing it if it has expired, and the slab that
    /// holds its record.
    fn live(&mut self, id: &SessionId, now: u64) -> Option<(&mut Stored, &mut Slab)> {
        if self.map.get(id)?.expires <= now {
            self.remove(id);
            return None;
        }

        Some((self.map.get_mut(id)?, &mut self.slab))
    }

    fn insert(&mut self, id: SessionId, record: &SessionRecord, expires: u64) {
        self.earliest = self.earliest.min(expires);
        let stored = Stored {
            class: Class::of(record),
            record: self.slab.put(encode(record)),
            expires,
        };
        self.counts.add(stored.class);
        if let Some(old) = self.map.insert(id, stored) {
            self.counts.remove(old.class);
            self.slab.free(old.record);
        }
    }

    /// Removes session `id`; `true` when the shard held it.
    fn remove(&mut self, id: &SessionId) -> bool {
        let stored = self.map.remove(id);
        let held = stored.is_some();
        if let Some(stored) = stored {
            self.counts.remove(stored.class);
            self.slab.free(stored.record);
        }
        held
    }

    /// Removes the sessions that expired by `now`; returns how many. A map left mostly
    /// empty (after a flood) gives its room back.
    fn sweep(&mut self, now: u64) -> usize {
        if now < self.earliest {
            return 0;
        }

        let removed = self.remove_where(|stored| stored.expires <= now);
        let len = self.map.len();
        if self.map.capacity() > 4 * len.max(64) {
            self.map.shrink_to(2 * len);
        }
        removed
    }

    /// Removes the sessions `remove` picks, in one pass that also finds the earliest
    /// expiry of those left; returns how many it removed.
    fn remove_where(&mut self, mut remove: impl FnMut(&Stored) -> bool) -> usize {
        let before = self.map.len();
        let mut earliest = u64::MAX;
        let slab = &mut self.slab;
        let counts = &self.counts;
        self.map.retain(|_, stored| {
            if remove(stored) {
                counts.remove(stored.class);
                slab.free(std::mem::take(&mut stored.record));
                return false;
            }
            earliest = earliest.min(stored.expires);
            true
        });
        self.earliest = earliest;
        before - self.map.len()
    }

    /// Evicts up to `count` of the shard's sessions of `class`, those closest to expiry;
    /// returns how many it evicted. One pass over the shard when there is any to evict.
    fn evict(&mut self, class: Class, count: usize) -> usize {
        if count == 0 {
            return 0;
        }
        let mut expiries: Vec<u64> = self
            .map
            .values()
            .filter(|s| s.class == class)
            .map(|s| s.expires)
            .collect();
        if expiries.is_empty() {
            return 0;
        }
        let last = count.min(expiries.len()) - 1;
        let (_, threshold, _) = expiries.select_nth_unstable(last);
        let threshold = *threshold;
        let mut removed = 0;
        self.remove_where(|stored| {
            let gone = removed < count && stored.class == class && stored.expires <= threshold;
            removed += usize::from(gone);
            gone
        })
    }
}

/// What was read back from a record this store encoded; only a bug could make it `None`.
fn readable<T>(decoded: Option<T>) -> Result<T, StoreError> {
    decoded.ok_or_else(|| StoreError::corrupt("a memory record does not decode"))
}

#[rocket::async_trait]
impl SessionStore for MemoryStore {
    /// Nothing is at rest: the sessions live in this process's memory alone, so they
    /// are not sealed.
    fn at_rest(&self) -> bool {
        false
    }

    async fn shutdown(&self) {
        self.sweeper.stop();
    }

    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let (mut shard, now) = self.shard(id);
        shard
            .live(id, now)
            .map(|(stored, slab)| readable(decode(slab.get(&stored.record))))
            .transpose()
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        if self.shard(id).0.live(id, self.shards.now()).is_some() {
            return Ok(CreateOutcome::Taken);
        }
        let home = id.shard(self.shards.shards.len());
        self.make_room(home, Class::of(record))?;

        let (mut shard, now) = self.shard(id);
        if shard.live(id, now).is_some() {
            return Ok(CreateOutcome::Taken);
        }
        shard.insert(id.clone(), record, now.saturating_add(millis(record.ttl())));
        Ok(CreateOutcome::Created)
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        let (mut shard, now) = self.shard(id);
        let Some((stored, slab)) = shard.live(id, now) else {
            return Ok(CommitOutcome::Gone);
        };

        let record = readable(apply(slab.get(&stored.record), changes))?;
        slab.replace(&mut stored.record, record);
        let was = stored.class;
        if let Some(signed_in) = changes.authenticates().filter(|_| was != Class::List) {
            stored.class = match signed_in {
                true => Class::SignedIn,
                false => Class::Anonymous,
            };
        }
        let class = stored.class;
        if let Some(ttl) = changes.ttl() {
            let expires = now.saturating_add(millis(ttl));
            stored.expires = expires;
            shard.earliest = shard.earliest.min(expires);
        }
        if class != was {
            shard.counts.remove(was);
            shard.counts.add(class);
        }
        Ok(CommitOutcome::Applied)
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let (mut shard, now) = self.shard(id);
        let Some((stored, slab)) = shard.live(id, now) else {
            return Ok(None);
        };

        // Reads the record; the data is not rewritten.
        let record = readable(decode(slab.get(&stored.record)))?;
        stored.expires = now.saturating_add(millis(record.ttl()));
        Ok(Some(record))
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        Ok(match self.shard(id).0.remove(id) {
            true => DeleteOutcome::Deleted,
            false => DeleteOutcome::Absent,
        })
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_sessions", &self.shards.cap)
            .field(
                "anonymous",
                &self.shards.counts.anonymous.load(Ordering::Relaxed),
            )
            .field(
                "signed_in",
                &self.shards.counts.signed_in.load(Ordering::Relaxed),
            )
            .field("shards", &self.shards.shards.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CommitOutcome, CreateOutcome};
    use std::time::Duration;

    fn store(max_sessions: usize) -> MemoryStore {
        MemoryStore::new(MemoryConfig {
            max_sessions,
            ..MemoryConfig::default()
        })
    }

    /// Every record in a slot belongs to a session the map holds: none leaked.
    fn assert_records_match_sessions(store: &MemoryStore) {
        for shard in store.shards.shards.iter() {
            let shard = lock(shard);
            let in_slots = shard
                .map
                .values()
                .filter(|stored| matches!(stored.record, Blob::Slot { .. }))
                .count();
            assert_eq!(shard.slab.in_use(), in_slots);
        }
    }

    #[test]
    fn threads_at_once_keep_the_cap_and_read_their_own_writes() {
        // Two shards, filled past their cap by four threads whose records change size
        // class (and go to the heap) as they grow.
        let max = 2 * SESSIONS_PER_SHARD;
        let store = store(max);
        let threads: Vec<_> = (0..4u64)
            .map(|thread| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    let mut mine = Vec::new();
                    for i in 0..4000u64 {
                        let id = SessionId::generate();
                        let mut record = SessionRecord::new(Duration::from_secs(60));
                        record.insert("n", i.to_string());
                        assert_eq!(
                            runtime.block_on(store.create(&id, &record)).unwrap(),
                            CreateOutcome::Created
                        );
                        mine.push((id, i.to_string()));

                        // Grow, shrink or delete an earlier one, and read it back.
                        let (id, expected) =
                            &mut mine[(i * 7 + thread) as usize % (i as usize + 1)];
                        let value = format!("\"{}\"", "x".repeat((i as usize * 13) % 1500));
                        let mut changes = Changes::default();
                        changes.set("n", value.clone());
                        if i % 11 == 0 {
                            let _ = runtime.block_on(store.delete(id)).unwrap();
                            expected.clear();
                        } else if runtime.block_on(store.commit(id, &changes)).unwrap()
                            == CommitOutcome::Applied
                        {
                            *expected = value;
                        }
                        match runtime.block_on(store.load(id)).unwrap() {
                            Some(record) => assert_eq!(record.get("n"), Some(expected.as_str())),
                            // Evicted to make room, or deleted above.
                            None => expected.clear(),
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no thread panicked");
        }

        assert!(
            store.len() <= max,
            "{} sessions over a cap of {max}",
            store.len()
        );
        assert_records_match_sessions(&store);
    }

    #[test]
    fn ids_hash_apart() {
        use std::hash::BuildHasher;
        let hasher = BuildHasherDefault::<IdHasher>::default();
        let hashes: std::collections::HashSet<u64> = (0..10_000)
            .map(|_| hasher.hash_one(SessionId::generate()))
            .collect();
        assert_eq!(hashes.len(), 10_000);
    }

    #[test]
    fn the_cap_is_the_stores_whatever_its_shards() {
        for max in [1, 2, 1023, 1024, 5000, 100_000, 1_000_003] {
            let store = store(max);
            assert_eq!(store.shards.cap, max);
            assert!(store.shards.shards.len() <= MAX_SHARDS);
        }
    }

    #[rocket::async_test]
    async fn a_full_store_evicts_the_session_closest_to_expiry() {
        let store = store(3);
        let ids: Vec<_> = (0..4).map(|_| SessionId::generate()).collect();
        for (i, id) in ids.iter().enumerate() {
            let ttl = Duration::from_secs(100 + i as u64);
            let ttl = if i == 1 { Duration::from_secs(50) } else { ttl };
            assert_eq!(
                store.create(id, &SessionRecord::new(ttl)).await.unwrap(),
                CreateOutcome::Created
            );
        }

        assert_eq!(store.len(), 3);
        assert!(store.load(&ids[1]).await.unwrap().is_none());
        for i in [0, 2, 3] {
            assert!(store.load(&ids[i]).await.unwrap().is_some());
        }
    }

    #[rocket::async_test]
    async fn a_flood_past_the_cap_keeps_the_sessions_furthest_from_expiry() {
        let store = store(10_000);
        let ids: Vec<_> = (0..60_000).map(|_| SessionId::generate()).collect();
        for (i, id) in ids.iter().enumerate() {
            let record = SessionRecord::new(Duration::from_secs(1_000 + i as u64));
            assert_eq!(
                store.create(id, &record).await.unwrap(),
                CreateOutcome::Created
            );
            assert!(store.len() <= 10_000);
        }

        for id in &ids[59_000..] {
            assert!(
                store.load(id).await.unwrap().is_some(),
                "a recent session was evicted"
            );
        }
        assert_records_match_sessions(&store);
    }

    fn signed_in(user: &str, ttl: Duration) -> SessionRecord {
        let mut record = SessionRecord::new(ttl);
        record.insert(crate::record::reserved::USER, format!("\"{user}\""));
        record
    }

    /// The memory-store half of the hardening issue's second reproduction: a flood of
    /// anonymous sessions never evicts a logged-in one, even the one closest to expiry.
    /// The cap is the store's, not each shard's: a user who keeps only the sessions of one
    /// shard, more than its share, is displaced by no flood of strangers.
    #[rocket::async_test]
    async fn a_user_who_keeps_one_shards_sessions_is_never_displaced_by_strangers() {
        let max = 2 * SESSIONS_PER_SHARD;
        let store = store(max);
        let day = Duration::from_secs(86_400);
        let mut alice = Vec::new();
        while alice.len() < SESSIONS_PER_SHARD + 100 {
            let id = SessionId::generate();
            if id.shard(2) == 0 {
                let created = store.create(&id, &signed_in("alice", day)).await.unwrap();
                assert_eq!(created, CreateOutcome::Created);
                alice.push(id);
            }
        }
        let stranger = SessionRecord::new(day);
        for _ in 0..2 * max {
            match store.create(&SessionId::generate(), &stranger).await {
                Ok(_) | Err(StoreError::Full) => {}
                Err(e) => panic!("{e}"),
            }
        }
        for id in &alice {
            assert!(
                store.load(id).await.unwrap().is_some(),
                "a stranger displaced alice"
            );
        }
        assert!(store.len() <= max, "{} over {max}", store.len());
    }

    #[rocket::async_test]
    async fn a_flood_of_anonymous_sessions_never_evicts_a_logged_in_user() {
        // The default cap, 200,000 anonymous sessions: alice logged in first, so with one
        // lifetime for all, hers is the session closest to expiry.
        let store = MemoryStore::default();
        let alice = SessionId::generate();
        let day = Duration::from_secs(86_400);
        assert_eq!(
            store
                .create(&alice, &signed_in("alice", day))
                .await
                .unwrap(),
            CreateOutcome::Created
        );
        let mut anonymous = SessionRecord::new(day);
        anonymous.insert("visits", "1");
        for _ in 0..200_000 {
            assert_eq!(
                store
                    .create(&SessionId::generate(), &anonymous)
                    .await
                    .unwrap(),
                CreateOutcome::Created
            );
        }
        assert!(store.len() <= 100_000);
        let record = store
            .load(&alice)
            .await
            .unwrap()
            .expect("alice is logged in");
        assert!(record.is_authenticated());
    }

    #[rocket::async_test]
    async fn a_store_of_logged_in_users_alone_still_keeps_its_cap() {
        let store = store(100);
        let ids: Vec<_> = (0..300).map(|_| SessionId::generate()).collect();
        for (i, id) in ids.iter().enumerate() {
            let ttl = Duration::from_secs(1_000 + i as u64);
            assert_eq!(
                store.create(id, &signed_in("u", ttl)).await.unwrap(),
                CreateOutcome::Created
            );
            assert!(store.len() <= 100);
        }
        assert!(store.load(&ids[299]).await.unwrap().is_some());
        assert!(store.load(&ids[0]).await.unwrap().is_none());

        // A log-out by commit makes a session anonymous again: first to go.
        let mut logout = Changes::default();
        logout.remove(crate::record::reserved::USER);
        assert_eq!(
            store.commit(&ids[299], &logout).await.unwrap(),
            CommitOutcome::Applied
        );
        for _ in 0..20 {
            let id = SessionId::generate();
            assert_eq!(
                store
                    .create(&id, &signed_in("v", Duration::from_secs(9_000)))
                    .await
                    .unwrap(),
                CreateOutcome::Created
            );
        }
        assert!(store.load(&ids[299]).await.unwrap().is_none());
    }

    #[rocket::async_test]
    async fn records_follow_commits_deletes_and_expiry() {
        let store = store(100);
        let ids: Vec<_> = (0..20).map(|_| SessionId::generate()).collect();
        for (i, id) in ids.iter().enumerate() {
            let mut record =
                SessionRecord::new(Duration::from_millis(if i < 5 { 1 } else { 60_000 }));
            record.insert("small", "1");
            let _ = store.create(id, &record).await.unwrap();
        }

        // Grow some records past a slot, shrink one back, delete a few.
        for (i, id) in ids.iter().enumerate().skip(5) {
            let mut changes = Changes::default();
            changes.set("big", "x".repeat(i * 100));
            assert_eq!(
                store.commit(id, &changes).await.unwrap(),
                CommitOutcome::Applied
            );
        }
        let mut shrink = Changes::default();
        shrink.remove("big");
        assert_eq!(
            store.commit(&ids[19], &shrink).await.unwrap(),
            CommitOutcome::Applied
        );
        for id in &ids[5..8] {
            let _ = store.delete(id).await.unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
        store.sweep();

        assert_eq!(store.len(), 12);
        for (i, id) in ids.iter().enumerate().skip(8) {
            let record = store.load(id).await.unwrap().unwrap();
            let big = (i != 19).then(|| "x".repeat(i * 100));
            assert_eq!(record.get("big").map(str::to_owned), big);
            assert_eq!(record.get("small"), Some("1"));
        }
        assert_records_match_sessions(&store);
    }

    #[rocket::async_test]
    async fn sweep_removes_only_expired_sessions() {
        let store = store(100);
        let short = SessionId::generate();
        let long = SessionId::generate();
        let short_lived = SessionRecord::new(Duration::from_millis(1));
        let _ = store.create(&short, &short_lived).await.unwrap();
        let long_lived = SessionRecord::new(Duration::from_secs(60));
        let _ = store.create(&long, &long_lived).await.unwrap();
        std::thread::sleep(Duration::from_millis(5));

        assert_eq!(store.sweep(), 1);
        assert_eq!(store.len(), 1);
        assert!(store.load(&long).await.unwrap().is_some());
        assert_records_match_sessions(&store);
    }

    /// Polls `store.len()` until it is `len`, for up to five seconds.
    async fn until_len(store: &MemoryStore, len: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.len() != len {
            assert!(
                Instant::now() < deadline,
                "{} sessions, not {len}",
                store.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn the_sweep_starts_with_the_first_use_in_a_runtime_and_outlives_that_runtime() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        // Opened outside any runtime, first used in one that then shuts down.
        let store = MemoryStore::new(MemoryConfig {
            sweep_interval: Duration::from_millis(20),
            ..MemoryConfig::default()
        });
        let expiring = SessionRecord::new(Duration::from_millis(1));
        // The second runtime starts after the first, and its sweep, are gone.
        for _ in 0..2 {
            runtime().block_on(async {
                let _ = store
                    .create(&SessionId::generate(), &expiring)
                    .await
                    .unwrap();
                until_len(&store, 0).await;
            });
        }
    }

    #[rocket::async_test]
    async fn the_background_sweeper_removes_expired_sessions() {
        let sweep_interval = Duration::from_millis(20);
        let store = MemoryStore::new(MemoryConfig {
            sweep_interval,
            ..MemoryConfig::default()
        });
        for _ in 0..1500 {
            let record = SessionRecord::new(Duration::from_millis(1));
            let _ = store.create(&SessionId::generate(), &record).await.unwrap();
        }

        until_len(&store, 0).await;
        assert_records_match_sessions(&store);
    }
}
