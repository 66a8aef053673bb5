//! The file store: one file per session in a directory, surviving restarts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as SyncMutex, MutexGuard as SyncGuard, PoisonError};
use std::time::Duration;

use rocket::log::private as log;
use tokio::sync::{Mutex, MutexGuard, Notify, Semaphore};

use super::evict::{self, Class};
use super::sweep::Sweeper;
use super::{CommitOutcome, CreateOutcome, DeleteOutcome};
use rocket::data::ByteUnit;

use crate::config::FileConfig;
use crate::error::{Error, StoreError};
use crate::id::SessionId;
use crate::record::{Changes, SessionRecord};
use crate::store::SessionStore;
use crate::time::millis;

mod disk;
mod index;

use disk::{Bad, Dir, Found};
use index::{scan, victims, Standing};

/// Locks that serialize changes to one session; sessions hash onto them by file name, so
/// the sweep and eviction take the same lock as a request.
const LOCKS: usize = 64;
/// How old a temporary file must be for the sweep to take it for the leftover of a failed
/// write or a crash: a write takes milliseconds.
const STALE_TEMPORARY: Duration = Duration::from_secs(60);
/// What a session file may hold beyond `max_session_size`: each entry's JSON is escaped
/// into a JSON string (at most doubling it), concurrent requests may each grow a session
/// by up to `max_session_size` (doubling it again), plus the keys and record fields.
const FILE_OVERHEAD: u64 = 16 * 1024;
/// How many times `max_session_size` a session file may hold, before `FILE_OVERHEAD`.
const FILE_FACTOR: u64 = 4;

/// Sessions kept as files in one directory: for a single instance that must keep sessions
/// across restarts without running a server.
///
/// Each session is one small JSON file, named by the SHA-256 of its id (an id never
/// becomes a path), holding its entries and lifetime; its expiry is the file's
/// modification time plus that lifetime, on the wall clock, so it survives restarts and a
/// `touch` resets it without rewriting the data. Files are written atomically (a
/// temporary file, then a rename), so a process that crashes never leaves half a session;
/// they are not synced to disk, so after a power loss a session may read as corrupt, and
/// a fresh one starts. Changes to one session are serialized within the process, so
/// concurrent requests keep each other's changes to different entries.
///
/// - **Bounded, and a stranger only displaces strangers.** The store holds at most
///   `file.max_sessions` sessions, creations in flight included (each takes its place
///   before it writes), however many arrive at once. When full, a new session first
///   clears the expired ones, then removes the anonymous sessions closest to expiry, a
///   sixty-fourth of the room at once. A new anonymous session never removes a signed-in
///   one: when signed-in sessions fill the store it is refused ([`StoreError::Full`], a
///   `503`); a sign-in removes the signed-in sessions closest to expiry only then.
///   Users' lists of sessions are outside the cap: they live only as long as their
///   sessions need. An index in memory (about 100 bytes a session) knows each session's
///   expiry and what it is, so neither this nor the sweep reads files.
/// - **Trusting nothing in its directory.** It refuses to open a directory that is a
///   symbolic link, owned by another user, or writable by group or others: any of those
///   would let another local user plant a session file and log in as anyone. It checks
///   the directory once opened and keeps that handle, reaching every file through it, so
///   the directory cannot be swapped from above after launch. It
///   creates a missing directory, and every file, readable by its owner alone. Files are
///   opened without following symbolic links and without blocking, and read only when
///   they are regular files of at most four times `max_session_size` plus 16 KiB (room
///   for JSON escaping and concurrent growth); the store never writes a larger one. A
///   symbolic link, a
///   FIFO, a device or an oversized file is never read: at opening it is skipped with one
///   warning, and a request that meets one in its session's place gets a fresh session.
/// - **Swept.** Expired sessions are absent on read and removed every `sweep_interval`,
///   with temporary files a crash left behind. The sweep touches only file names the
///   store makes.
/// - **Bounded in time.** A request waits `file.timeout` at most for its file work, then
///   answers `503`. A write the request stops waiting for runs to its end in a task of its
///   own, so the files and the index never disagree; at most 1024 such calls are in
///   flight, and past that a call fails at once (a stalled disk piles up no more work). A
///   creation whose request stopped waiting lands nothing: its task checks before it
///   takes room and before it writes.
///
/// One application instance per directory: for several, use Redis. Unix only.
///
/// # Example
///
/// ```no_run
/// # fn run() -> Result<(), rocket_server_sessions::Error> {
/// use rocket_server_sessions::{Sessions, config::SessionConfig, store::FileStore};
///
/// let mut config = SessionConfig::default();
/// config.file.dir = "/var/lib/myapp/sessions".into();
/// let store = FileStore::open(&config.file, config.max_session_size)?;
/// let rocket = rocket::build().attach(Sessions::builder().store(store).build());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
    sweeper: Arc<Sweeper>,
    /// `file.timeout`: each request's budget of store time.
    timeout: Duration,
    /// Places for the calls in flight, whose tasks outlive a request that stops waiting:
    /// against a stalled disk, they stop piling up at [`IN_FLIGHT`].
    in_flight: Arc<Semaphore>,
}

/// The most file store calls in flight at once.
const IN_FLIGHT: usize = 1024;

struct Inner {
    dir: Arc<Dir>,
    /// The most a session file may hold, in bytes.
    limit: u64,
    /// The most sessions the store holds.
    cap: usize,
    locks: Vec<Mutex<()>>,
    /// Held while a creation takes its place: one full store makes room at a time.
    evicting: Mutex<()>,
    /// How many users' lists of sessions the index holds: outside the cap.
    lists: AtomicUsize,
    /// The creations in flight, anonymous and signed in: each holds its place under the
    /// cap from the moment it is counted, so that creations at once cannot all find room.
    creating: [AtomicUsize; 2],
    /// Signalled when a creation in flight lands (or fails): a stranger's creation that
    /// found the room held by creations in flight looks again.
    landed: Notify,
    /// When a stranger was last refused because signed-in sessions fill the store
    /// (milliseconds on the store's clock, 0 for never): for a second after, strangers
    /// are refused at once while it stays full, rather than each waiting its turn to scan
    /// the index ahead of the sign-ins.
    refused_at: AtomicU64,
    /// Every session the store holds, by storage key.
    index: SyncMutex<HashMap<String, Standing>>,
}

impl FileStore {
    /// Opens the directory `config.dir`, creating it when missing, and reads the sessions
    /// it holds into the store's index, removing expired and unreadable ones. Files are
    /// read up to four times `max_session_size` (the sessions' [`SessionConfig`] setting,
    /// which a file must be able to hold) plus 16 KiB: a larger one is not a session.
    ///
    /// [`SessionConfig`]: crate::config::SessionConfig
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `file.dir` when the directory cannot be created or read,
    /// or is not safe: a symbolic link, owned by another user, or writable by group or
    /// others.
    pub fn open(config: &FileConfig, max_session_size: ByteUnit) -> Result<Self, Error> {
        let problem = |message: String| Error::config("file.dir", message);
        let dir = Dir::open(&config.dir).map_err(problem)?;
        let limit = max_session_size
            .as_u64()
            .saturating_mul(FILE_FACTOR)
            .saturating_add(FILE_OVERHEAD);
        let index = scan(&dir, limit)
            .map_err(|e| problem(format!("could not read {}: {e}", dir.path().display())))?;

        let inner = Arc::new(Inner {
            dir: Arc::new(dir),
            limit,
            cap: config.max_sessions.max(1),
            locks: (0..LOCKS).map(|_| Mutex::new(())).collect(),
            evicting: Mutex::new(()),
            creating: Default::default(),
            landed: Notify::new(),
            refused_at: AtomicU64::new(0),
            lists: AtomicUsize::new(index.values().filter(|s| s.class == Class::List).count()),
            index: SyncMutex::new(index),
        });
        let sweeper = Sweeper::spawn(&inner, config.sweep_interval, |inner| async move {
            inner.sweep().await.unwrap_or_else(|e| {
                log::warn!("could not sweep the session directory: {e}");
                0
            })
        });
        Ok(FileStore {
            inner,
            sweeper,
            timeout: config.timeout,
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        })
    }

    /// How many sessions the store holds, counting expired ones not yet swept.
    pub fn len(&self) -> usize {
        self.inner.index().len()
    }

    /// `true` when the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired session file now, and temporary files a crash left, and
    /// returns how many sessions it removed.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the directory cannot be read.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        self.inner.sweep().await
    }

    /// Runs `call`, which writes, on the store's state in a task of its own, which runs
    /// to its end even when the request stops waiting for it (its `file.timeout` spent): a
    /// write and the index entry that goes with it, or an eviction and the place it
    /// makes, are never cut in two. With [`IN_FLIGHT`] calls on their way already (a
    /// stalled disk), it fails at once.
    async fn detached<T, F>(&self, call: impl FnOnce(Arc<Inner>) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let inner = self.inner();
        let place = self.in_flight.clone().try_acquire_owned().map_err(|_| {
            StoreError::unavailable(format!(
                "{IN_FLIGHT} file store calls are still on their way: the disk is not answering"
            ))
        })?;
        let call = call(inner);
        tokio::spawn(async move {
            let _place = place;
            call.await
        })
        .await
        .map_err(StoreError::unavailable)?
    }

    /// The store's state, for a store call: a store opened outside a runtime starts its
    /// sweep on the first call's, and again on a later call's if that one shut down.
    fn inner(&self) -> Arc<Inner> {
        self.sweeper.ensure_running();
        self.inner.clone()
    }
}

/// A place under the cap a creation in flight holds, given back when dropped: its count,
/// and the signal a creation waiting for room listens to.
struct Place<'a>(Option<(&'a AtomicUsize, &'a Notify)>);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if let Some((creating, landed)) = self.0 {
            creating.fetch_sub(1, Ordering::Relaxed);
            landed.notify_waiters();
        }
    }
}

/// A file's problem as the store reports it: what is not a session of ours reads as a
/// corrupt record, so the request starts a fresh session (and the fairing removes it).
fn store_error(bad: Bad) -> StoreError {
    match bad {
        Bad::Unreadable(e) => StoreError::unavailable(e),
        bad => StoreError::corrupt(bad),
    }
}

/// Runs blocking file work on Tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(StoreError::unavailable)
}

impl Inner {
    fn index(&self) -> SyncGuard<'_, HashMap<String, Standing>> {
        // Every change to the index is one map operation: a panic cannot leave it torn.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock of the session stored under `key`, a hex SHA-256: its first bytes spread
    /// sessions evenly.
    async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let prefix = key.get(..4).unwrap_or_default();
        let shard = usize::from_str_radix(prefix, 16).unwrap_or(0) % self.locks.len();
        self.locks[shard].lock().await
    }

    /// The live session stored under `key`.
    async fn live(&self, key: &str) -> Result<Option<Found>, StoreError> {
        let (dir, name, limit) = (self.dir.clone(), disk::file_name(key), self.limit);
        let found = blocking(move || dir.read(&name, limit))
            .await?
            .map_err(store_error)?;
        let now = disk::now();
        Ok(found.filter(|found| found.expires > now))
    }

    async fn write(
        &self,
        key: &str,
        record: SessionRecord,
        expires: u64,
    ) -> Result<(), StoreError> {
        let standing = Standing::of(&record, expires);
        let (dir, name, limit) = (self.dir.clone(), disk::file_name(key), self.limit);
        blocking(move || dir.write(&name, record, expires, limit))
            .await?
            .map_err(StoreError::unavailable)?;
        let old = self.index().insert(key.to_owned(), standing);
        self.count_lists(old, Some(standing));
        Ok(())
    }

    /// Removes the session stored under `key`, its lock held; `true` when there was a
    /// file to remove.
    async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let (dir, name) = (self.dir.clone(), disk::file_name(key));
        let removed = blocking(move || dir.remove(&name))
            .await?
            .map_err(StoreError::unavailable)?;
        let old = self.index().remove(key);
        self.count_lists(old, None);
        Ok(removed)
    }

    /// Keeps the count of lists as the index's entry moves from `old` to `new`.
    fn count_lists(&self, old: Option<Standing>, new: Option<Standing>) {
        let is_list = |standing: Option<Standing>| standing.is_some_and(|s| s.class == Class::List);
        match (is_list(old), is_list(new)) {
            (false, true) => self.lists.fetch_add(1, Ordering::Relaxed),
            (true, false) => self.lists.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
    }

    /// Takes a place for one more session of `class`, making room when the store is full
    /// (see [`victims`]); the place is held until the returned guard is dropped, once the
    /// session is in the index (or was not created).
    ///
    /// # Errors
    ///
    /// [`StoreError::Full`] for a stranger's session when signed-in sessions fill the
    /// store; a [`StoreError`] when an evicted file cannot be removed, or the one
    /// `abandoned` gives (checked once the creation's turn comes) when its request stopped
    /// waiting.
    async fn reserve(
        &self,
        class: Class,
        abandoned: impl Fn() -> Option<StoreError>,
    ) -> Result<Place<'_>, StoreError> {
        let slot = match class {
            Class::Anonymous => 0,
            Class::SignedIn => 1,
            Class::List => return Ok(Place(None)),
        };
        let refusing = || {
            let refused_at = self.refused_at.load(Ordering::Relaxed);
            class == Class::Anonymous
                && evict::refused_lately(refused_at, disk::now())
                && self.is_full()
        };
        if refusing() {
            return Err(StoreError::Full);
        }
        // One creation takes its place at a time: those waiting find room made.
        let _evicting = self.evicting.lock().await;
        // Again once its turn comes: a stranger that queued behind the refusal of the one
        // before scans nothing.
        if refusing() {
            return Err(StoreError::Full);
        }
        let victims = loop {
            if let Some(e) = abandoned() {
                return Err(e);
            }
            // Listening before looking: a creation landing in between is not missed.
            let landed = self.landed.notified();
            let creating = self.creating.each_ref().map(|n| n.load(Ordering::Relaxed));
            let chosen = {
                let index = self.index();
                if self.held(&index, creating) < self.cap {
                    Some(Vec::new())
                } else {
                    victims(&index, class, creating, self.cap, disk::now())
                }
            };
            match chosen {
                Some(chosen) => break chosen,
                // The room is held by creations in flight, not on disk to evict yet:
                // once one lands, it may be evicted (no new one starts meanwhile).
                None if creating[0] + creating[1] > 0 => landed.await,
                None => {
                    self.refused_at.store(disk::now().max(1), Ordering::Relaxed);
                    return Err(StoreError::Full);
                }
            }
        };
        for key in victims {
            let _lock = self.lock(&key).await;
            self.remove(&key).await?;
        }
        self.creating[slot].fetch_add(1, Ordering::Relaxed);
        Ok(Place(Some((&self.creating[slot], &self.landed))))
    }

    /// The sessions `index` holds under the cap (lists aside), with the creations in
    /// flight, `creating`.
    fn held(&self, index: &HashMap<String, Standing>, creating: [usize; 2]) -> usize {
        let lists = self.lists.load(Ordering::Relaxed);
        index.len().saturating_sub(lists) + creating[0] + creating[1]
    }

    /// Whether the store holds as many sessions as its cap, expired ones not yet swept
    /// among them, with the creations in flight.
    fn is_full(&self) -> bool {
        let creating = self.creating.each_ref().map(|n| n.load(Ordering::Relaxed));
        self.held(&self.index(), creating) >= self.cap
    }

    /// Removes expired session files, and temporary files a crash left behind; returns
    /// how many sessions it removed. Only what the index names is removed, each under
    /// its session's lock and only if still expired then: a request renewing it wins.
    async fn sweep(&self) -> Result<usize, StoreError> {
        let now = disk::now();
        let expired: Vec<String> = {
            let index = self.index();
            index
                .iter()
                .filter(|(_, standing)| standing.expires <= now)
                .map(|(key, _)| key.clone())
                .collect()
        };
        let mut removed = 0;
        for key in expired {
            let _lock = self.lock(&key).await;
            let still_expired = self.index().get(&key).is_some_and(|s| s.expires <= now);
            if still_expired && self.remove(&key).await? {
                removed += 1;
            }
        }

        let dir = self.dir.clone();
        blocking(move || dir.remove_stale_temporaries(STALE_TEMPORARY))
            .await?
            .map_err(StoreError::unavailable)?;
        Ok(removed)
    }
}

#[rocket::async_trait]
impl SessionStore for FileStore {
    async fn shutdown(&self) {
        self.sweeper.stop();
    }

    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        // A read changes nothing: it needs no task of its own.
        let found = self.inner().live(&id.storage_key()).await?;
        Ok(found.map(|found| found.record))
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        let (key, record) = (id.storage_key(), record.clone());
        // A creation whose request stopped waiting (its `file.timeout` spent on a stalled
        // disk, the request answered `503` without a cookie) would land for nobody: taking
        // a place, evicting strangers for it, and for a sign-in holding a signed-in place
        // off its user's list. Its task checks that the request still waits before it
        // takes room and again before it writes.
        let waiting = Arc::new(());
        let caller = Arc::downgrade(&waiting);
        let created = self
            .detached(|inner| async move {
                let abandoned = || {
                    let gone = caller.strong_count() == 0;
                    gone.then(|| StoreError::unavailable("the creation's request stopped waiting"))
                };
                if let Some(e) = abandoned() {
                    return Err(e);
                }
                let _place = inner.reserve(Class::of(&record), &abandoned).await?;
                let _lock = inner.lock(&key).await;
                // A live session is taken; no file, or an unreadable one of ours, is free.
                // Any other failure may hide a live session: it is the store failing, not
                // a free id.
                match inner.live(&key).await {
                    Ok(Some(_)) => return Ok(CreateOutcome::Taken),
                    Ok(None) | Err(StoreError::Corrupt(_)) => {}
                    Err(e) => return Err(e),
                }
                if let Some(e) = abandoned() {
                    return Err(e);
                }

                let expires = disk::now().saturating_add(millis(record.ttl()));
                inner.write(&key, record, expires).await?;
                Ok(CreateOutcome::Created)
            })
            .await;
        drop(waiting);
        created
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        let (key, changes) = (id.storage_key(), changes.clone());
        self.detached(|inner| async move {
            let _lock = inner.lock(&key).await;
            let Some(Found {
                mut record,
                mut expires,
            }) = inner.live(&key).await?
            else {
                return Ok(CommitOutcome::Gone);
            };

            record.apply(&changes);
            if let Some(ttl) = changes.ttl() {
                expires = disk::now().saturating_add(millis(ttl));
            }
            inner.write(&key, record, expires).await?;
            Ok(CommitOutcome::Applied)
        })
        .await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let key = id.storage_key();
        self.detached(|inner| async move {
            let _lock = inner.lock(&key).await;
            let (dir, name, limit) = (inner.dir.clone(), disk::file_name(&key), inner.limit);
            let record = blocking(move || dir.touch(&name, limit))
                .await?
                .map_err(store_error)?;
            if let Some(record) = &record {
                if let Some(standing) = inner.index().get_mut(&key) {
                    standing.expires = disk::now().saturating_add(millis(record.ttl()));
                }
            }
            Ok(record)
        })
        .await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        let key = id.storage_key();
        self.detached(|inner| async move {
            let _lock = inner.lock(&key).await;
            Ok(match inner.remove(&key).await? {
                true => DeleteOutcome::Deleted,
                false => DeleteOutcome::Absent,
            })
        })
        .await
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.inner.dir.path())
            .field("max_sessions", &self.inner.cap)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::SessionConfig;
    use crate::record::reserved::USER;

    /// A store in a fresh directory (to remove at the end), and a session's id and
    /// one-entry record to put in it.
    fn fresh() -> (FileStore, PathBuf, SessionId, SessionRecord) {
        let mut config = SessionConfig::default();
        config.file.dir =
            std::env::temp_dir().join(format!("rss-file-unit-{}", SessionId::generate()));
        let store = FileStore::open(&config.file, config.max_session_size).unwrap();
        let mut record = SessionRecord::new(Duration::from_secs(60));
        record.insert("cart", "[1]");
        (store, config.file.dir, SessionId::generate(), record)
    }

    #[rocket::async_test]
    async fn with_every_place_for_calls_taken_a_write_fails_at_once_and_a_read_still_answers() {
        let (store, dir, id, record) = fresh();
        assert_eq!(
            store.create(&id, &record).await.unwrap(),
            CreateOutcome::Created
        );

        // As if a stalled disk held every call in flight.
        let held = store
            .in_flight
            .clone()
            .try_acquire_many_owned(IN_FLIGHT as u32)
            .unwrap();
        let mut changes = Changes::default();
        changes.set("cart", "[2]");
        let refused = store.commit(&id, &changes).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(store.delete(&id).await.is_err());
        assert_eq!(store.load(&id).await.unwrap(), Some(record.clone()));

        // Once they land, calls go through again.
        drop(held);
        assert_eq!(
            store.commit(&id, &changes).await.unwrap(),
            CommitOutcome::Applied
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    // One thread: the creation's task cannot run before the test has polled it once.
    #[tokio::test(flavor = "current_thread")]
    async fn a_creation_whose_request_stopped_waiting_lands_nothing_and_gives_its_place_back() {
        let (store, dir, id, record) = fresh();

        // The request's budget is spent at once: its creation is polled once, then dropped.
        let mut create = store.create(&id, &record);
        let first = rocket::futures::FutureExt::now_or_never(create.as_mut());
        assert!(first.is_none(), "the creation was still on its way");
        drop(create);

        // Its task ends without writing, and gives its place for calls back.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.in_flight.available_permits() < IN_FLIGHT {
            assert!(
                std::time::Instant::now() < deadline,
                "the abandoned creation never ended"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(store.load(&id).await.unwrap(), None);
        assert_eq!(store.len(), 0);

        // A creation whose request waits lands as always.
        assert_eq!(
            store.create(&id, &record).await.unwrap(),
            CreateOutcome::Created
        );
        assert_eq!(store.load(&id).await.unwrap(), Some(record));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store of `cap` sessions in a fresh directory, full of signed-in ones or of
    /// strangers' (their ids returned).
    async fn full_of(cap: usize, signed_in: bool) -> (FileStore, PathBuf, Vec<SessionId>) {
        let mut config = SessionConfig::default();
        config.file.dir =
            std::env::temp_dir().join(format!("rss-file-unit-{}", SessionId::generate()));
        config.file.max_sessions = cap;
        let store = FileStore::open(&config.file, config.max_session_size).unwrap();
        let mut ids = Vec::new();
        for user in 0..cap {
            let id = SessionId::generate();
            let mut record = SessionRecord::new(Duration::from_secs(60));
            match signed_in {
                true => record.insert(USER, format!("\"user-{user}\"")),
                false => record.insert("cart", "[1]"),
            }
            assert_eq!(
                store.create(&id, &record).await.unwrap(),
                CreateOutcome::Created
            );
            ids.push(id);
        }
        (store, config.file.dir, ids)
    }

    /// helper-21: with signed-in sessions filling the store, each stranger took the
    /// store's one turn to make room and scanned the whole index before its refusal, so a
    /// flood of them queued ahead of the sign-ins and held every place for calls.
    #[rocket::async_test]
    async fn strangers_refused_by_a_store_full_of_signed_in_sessions_queue_for_nothing() {
        let (store, dir, ids) = full_of(3, true).await;
        let (_, _, _, stranger) = fresh();
        let create = || {
            let (store, stranger) = (store.clone(), stranger.clone());
            async move { store.create(&SessionId::generate(), &stranger).await }
        };
        assert!(matches!(create().await, Err(StoreError::Full)));

        // Another creation holds the store's turn to make room: a stranger is refused
        // without waiting for it.
        let turn = store.inner.evicting.lock().await;
        let refused = tokio::time::timeout(Duration::from_secs(10), create()).await;
        let refused = refused.expect("the stranger waited its turn");
        assert!(matches!(refused, Err(StoreError::Full)), "{refused:?}");
        drop(turn);

        // Room made (a log-out): a stranger gets in at once, refusal or not.
        assert_eq!(store.delete(&ids[0]).await.unwrap(), DeleteOutcome::Deleted);
        assert_eq!(create().await.unwrap(), CreateOutcome::Created);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A stranger that queued for its turn behind the refusal of the one before scans
    /// nothing and makes no room: refused at its turn.
    #[rocket::async_test]
    async fn a_stranger_queued_behind_a_refusal_is_refused_at_its_turn() {
        let (store, dir, _) = full_of(3, false).await;
        let inner = store.inner.clone();
        let turn = inner.evicting.lock().await;
        let mut reserving = Box::pin(inner.reserve(Class::Anonymous, || None));
        let first = rocket::futures::FutureExt::now_or_never(reserving.as_mut());
        assert!(first.is_none(), "it waits for its turn");
        // The creation ahead of it refuses a stranger.
        inner.refused_at.store(disk::now(), Ordering::Relaxed);
        drop(turn);
        assert!(matches!(reserving.await, Err(StoreError::Full)));
        assert_eq!(store.len(), 3, "no stranger evicted");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A creation that waited its turn to make room after its request stopped waiting
    /// takes no place and evicts nothing.
    #[rocket::async_test]
    async fn a_creation_whose_request_left_while_it_waited_takes_no_place() {
        let (store, dir, _ids) = full_of(3, true).await;
        let turn = store.inner.evicting.lock().await;
        let inner = store.inner.clone();
        let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let request_gone = gone.clone();
        let waiting = tokio::spawn(async move {
            let left = || {
                let gone = request_gone.load(Ordering::SeqCst);
                gone.then(|| StoreError::unavailable("its request stopped waiting"))
            };
            inner.reserve(Class::SignedIn, left).await.map(|_| ())
        });
        // Its request leaves while it waits; its turn comes only after.
        gone.store(true, Ordering::SeqCst);
        drop(turn);
        let reserved = waiting.await.unwrap();
        assert!(
            matches!(reserved, Err(StoreError::Unavailable(_))),
            "{reserved:?}"
        );
        assert_eq!(store.len(), 3, "no signed-in session evicted");
        assert_eq!(
            store
                .inner
                .creating
                .each_ref()
                .map(|n| n.load(Ordering::Relaxed)),
            [0, 0]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
