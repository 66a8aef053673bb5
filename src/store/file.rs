//! The file store: one file per session in a directory, surviving restarts.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, MutexGuard};

use super::{check_version, Sweeper};
use crate::time::millis;
use crate::{
    Changes, Error, FileConfig, SessionId, SessionRecord, SessionStore, StoreError, FORMAT_VERSION,
};

/// Locks that serialize changes to one session; sessions hash onto them by file name, so
/// the sweep takes the same lock as a request.
const LOCKS: usize = 64;
/// The file name extension of session files; temporary files start with a dot.
const EXTENSION: &str = "session";
/// How old a temporary file must be for the sweep to take it for the leftover of a failed
/// write or a crash: a write takes milliseconds.
const STALE_TEMPORARY: Duration = Duration::from_secs(60);

/// Sessions kept as files in one directory: for a single instance that must keep sessions
/// across restarts without running a server.
///
/// Each session is one small JSON file, named by the SHA-256 of its id (an id never
/// becomes a path), holding its entries, lifetime and wall-clock expiry. Files are written
/// atomically (a temporary file, then a rename), so a process that crashes never leaves
/// half a session; they are not synced to disk, so after a power loss a session may read
/// as corrupt, and a fresh one starts. On Unix the files are readable by their owner
/// alone, and a directory the store creates is too. Changes to one session are
/// serialized within the process, so concurrent requests keep each other's changes to
/// different entries. Expired sessions are absent on read and swept every
/// `sweep_interval`, with temporary files a failed write left behind. The sweep touches
/// only file names the store makes.
///
/// One application instance per directory: for several, use Redis.
///
/// # Example
///
/// ```no_run
/// # fn run() -> Result<(), rocket_server_sessions::Error> {
/// use rocket_server_sessions::{FileConfig, FileStore, Sessions};
///
/// let mut config = FileConfig::default();
/// config.dir = "/var/lib/myapp/sessions".into();
/// let store = FileStore::open(&config)?;
/// let rocket = rocket::build().attach(Sessions::builder().store(store).build());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
    sweeper: Arc<Sweeper>,
}

struct Inner {
    dir: PathBuf,
    locks: Vec<Mutex<()>>,
}

/// A session file's contents.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    /// Milliseconds since the Unix epoch.
    expires_at: u64,
    /// The session's lifetime in milliseconds.
    ttl: u64,
    entries: BTreeMap<String, String>,
}

impl OnDisk {
    /// The file for `record`, whose entries it takes without copying them.
    fn new(record: SessionRecord, expires_at: u64) -> Self {
        OnDisk {
            version: FORMAT_VERSION,
            expires_at,
            ttl: millis(record.ttl()),
            entries: record.into_entries().into_iter().collect(),
        }
    }

    fn into_record(self) -> SessionRecord {
        let mut record = SessionRecord::new(Duration::from_millis(self.ttl));
        for (key, json) in self.entries {
            record.insert(key, json);
        }
        record
    }
}

impl FileStore {
    /// Opens (creating when missing) the directory `config.dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `file.dir` when the directory cannot be created.
    pub fn open(config: &FileConfig) -> Result<Self, Error> {
        create_private_dir(&config.dir).map_err(|e| {
            Error::config(
                "file.dir",
                format!("could not create {}: {e}", config.dir.display()),
            )
        })?;

        let locks = (0..LOCKS).map(|_| Mutex::new(())).collect();
        let inner = Arc::new(Inner {
            dir: config.dir.clone(),
            locks,
        });
        let sweeper = Sweeper::spawn(&inner, config.sweep_interval, |inner| async move {
            if let Err(e) = inner.sweep().await {
                rocket::log::private::warn!("could not sweep the session directory: {e}");
            }
        });
        Ok(FileStore { inner, sweeper })
    }

    /// The store's state, for a store call: a store opened outside a runtime starts its
    /// sweep on the first call's, and again on a later call's if that one shut down.
    fn inner(&self) -> &Inner {
        self.sweeper.ensure_running();
        &self.inner
    }

    /// For a call that changes session `id`: the store, the session's file, and its lock,
    /// held.
    async fn locked(&self, id: &SessionId) -> (&Inner, PathBuf, MutexGuard<'_, ()>) {
        let inner = self.inner();
        let key = id.storage_key();
        let lock = inner.lock(&key).await;
        (inner, inner.path(&key), lock)
    }

    /// Removes every expired session file now and returns how many it removed.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the directory cannot be read.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        self.inner.sweep().await
    }
}

fn now() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    millis(since_epoch)
}

fn io_error(error: std::io::Error) -> StoreError {
    StoreError::unavailable(error)
}

/// Creates `dir` and its missing parents; on Unix, readable by the owner alone.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The storage key in a session file's name, if `name` is one this store makes.
fn session_key(name: &str) -> Option<&str> {
    let key = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    let ours = key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ours.then_some(key)
}

/// Whether `name` is a temporary file this store makes: `.<session file>.<16 hex>.tmp`.
fn is_temporary(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    rest.rsplit_once('.')
        .is_some_and(|(file, random)| random.len() == 16 && session_key(file).is_some())
}

impl Inner {
    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.{EXTENSION}"))
    }

    /// The lock of the session stored under `key`, a hex SHA-256: its first bytes spread
    /// sessions evenly.
    async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let prefix = key.get(..4).unwrap_or_default();
        let shard = usize::from_str_radix(prefix, 16).unwrap_or(0) % self.locks.len();
        self.locks[shard].lock().await
    }

    /// The live session in `path`; `None` when there is none or it has expired.
    async fn read(&self, path: &Path) -> Result<Option<OnDisk>, StoreError> {
        let bytes = match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(e)),
        };

        let on_disk: OnDisk = serde_json::from_slice(&bytes).map_err(StoreError::corrupt)?;
        check_version(on_disk.version.into())?;

        Ok((on_disk.expires_at > now()).then_some(on_disk))
    }

    /// Writes `on_disk` to `path` atomically: a temporary file, then a rename over it. A
    /// failed write removes its temporary file.
    async fn write(&self, path: &Path, on_disk: &OnDisk) -> Result<(), StoreError> {
        use tokio::io::AsyncWriteExt;

        let bytes = serde_json::to_vec(on_disk).map_err(StoreError::corrupt)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("session");
        let temporary = self
            .dir
            .join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
        let written = async {
            let mut options = tokio::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            options.mode(0o600);
            let mut file = options.open(&temporary).await?;
            file.write_all(&bytes).await?;
            file.flush().await?;
            drop(file);
            tokio::fs::rename(&temporary, path).await
        };
        if let Err(e) = written.await {
            let _ = tokio::fs::remove_file(&temporary).await;
            return Err(io_error(e));
        }

        Ok(())
    }

    /// Removes `path`; `true` when there was a file to remove.
    async fn remove(&self, path: &Path) -> Result<bool, StoreError> {
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(e)),
        }
    }

    /// Removes expired and corrupt session files, and stale temporary files. A file it
    /// cannot read or remove now is left for a later sweep, and does not stop this one.
    async fn sweep(&self) -> Result<usize, StoreError> {
        let mut entries = tokio::fs::read_dir(&self.dir).await.map_err(io_error)?;
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await.map_err(io_error)? {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };

            if let Some(key) = session_key(name) {
                // Under the session's lock: a request renewing it meanwhile wins.
                let _lock = self.lock(key).await;
                match self.read(&path).await {
                    // Expired, or corrupt: no session either way.
                    Ok(None) | Err(StoreError::Corrupt(_)) => {
                        removed += usize::from(matches!(self.remove(&path).await, Ok(true)));
                    }
                    // Live; or unreadable for now (permissions, too many open files): a
                    // live session may be in it, so it waits for a later sweep.
                    Ok(Some(_)) | Err(_) => {}
                }
            } else if is_temporary(name) {
                let stale =
                    entry
                        .metadata()
                        .await
                        .and_then(|m| m.modified())
                        .is_ok_and(|modified| {
                            modified.elapsed().is_ok_and(|age| age > STALE_TEMPORARY)
                        });
                if stale {
                    let _ = self.remove(&path).await;
                }
            }
        }

        Ok(removed)
    }
}

#[rocket::async_trait]
impl SessionStore for FileStore {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let inner = self.inner();
        let on_disk = inner.read(&inner.path(&id.storage_key())).await?;
        Ok(on_disk.map(OnDisk::into_record))
    }

    async fn create(&self, id: &SessionId, record: &SessionRecord) -> Result<bool, StoreError> {
        let (inner, path, _lock) = self.locked(id).await;
        if matches!(inner.read(&path).await, Ok(Some(_))) {
            return Ok(false);
        }

        let expires_at = now().saturating_add(millis(record.ttl()));
        inner
            .write(&path, &OnDisk::new(record.clone(), expires_at))
            .await?;
        Ok(true)
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<bool, StoreError> {
        let (inner, path, _lock) = self.locked(id).await;
        let Some(on_disk) = inner.read(&path).await? else {
            return Ok(false);
        };

        let mut expires_at = on_disk.expires_at;
        let mut record = on_disk.into_record();
        record.apply(changes);
        if let Some(ttl) = changes.ttl() {
            expires_at = now().saturating_add(millis(ttl));
        }

        inner.write(&path, &OnDisk::new(record, expires_at)).await?;
        Ok(true)
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<Duration>, StoreError> {
        let (inner, path, _lock) = self.locked(id).await;
        let Some(mut on_disk) = inner.read(&path).await? else {
            return Ok(None);
        };

        // Under the lock, the entries written back are the latest: nothing is undone.
        on_disk.expires_at = now().saturating_add(on_disk.ttl);
        inner.write(&path, &on_disk).await?;
        Ok(Some(Duration::from_millis(on_disk.ttl)))
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let (inner, path, _lock) = self.locked(id).await;
        inner.remove(&path).await
    }
}
