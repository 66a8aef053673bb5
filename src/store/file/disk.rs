//! The file store's directory and files, trusting nothing in them: the directory must be
//! private to this process's user and is opened once, every file reached through that
//! handle; files are opened without following links or blocking and read only when they
//! are regular files of a bounded size; writes are atomic.
//!
//! These functions block: the store runs them on Tokio's blocking pool.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{fstat, openat, renameat, statat, unlinkat, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::record::{SessionRecord, FORMAT_VERSION};
use crate::time::millis;

/// The file name extension of session files; temporary files start with a dot.
const EXTENSION: &str = "session";

/// A session file's contents. Its expiry is not in it: it is the file's modification
/// time plus `ttl`, so that a touch sets the time and never rewrites the data.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    /// The session's lifetime in milliseconds.
    ttl: u64,
    entries: BTreeMap<String, String>,
}

/// A live or expired session read from its file.
pub(super) struct Found {
    pub(super) record: SessionRecord,
    /// Milliseconds since the Unix epoch.
    pub(super) expires: u64,
}

/// Why a file could not be read as a session.
#[derive(Debug)]
pub(super) enum Bad {
    /// The file system failed (permissions, too many open files): it may hold a live
    /// session, so it is left alone.
    Unreadable(std::io::Error),
    /// Not something this store writes: a symbolic link, a FIFO, a device, a file over
    /// the size limit. Never read; left for its owner, with a warning.
    Foreign(String),
    /// A regular file of ours that does not decode (a crash mid-write cannot cause it:
    /// writes are atomic), or of a format version this build does not know.
    Garbage(String),
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Unreadable(e) => write!(f, "cannot be read: {e}"),
            Bad::Foreign(what) | Bad::Garbage(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Bad {}

/// The storage key in a session file's name, if `name` is one this store makes.
pub(super) fn session_key(name: &str) -> Option<&str> {
    let key = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    let ours = key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ours.then_some(key)
}

/// The name of the file of the session stored under `key`.
pub(super) fn file_name(key: &str) -> String {
    format!("{key}.{EXTENSION}")
}

/// Whether `name` is a temporary file this store makes: `.<session file>.<16 hex>.tmp`.
pub(super) fn is_temporary(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    rest.rsplit_once('.')
        .is_some_and(|(file, random)| random.len() == 16 && session_key(file).is_some())
}

/// Milliseconds since the Unix epoch, now.
pub(super) fn now() -> u64 {
    crate::time::unix_millis()
}

fn to_millis(time: SystemTime) -> u64 {
    millis(time.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn from_millis(unix_millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(unix_millis)
}

/// The session directory, opened once: every file is reached through this handle
/// (`openat`, `renameat`, `unlinkat`), never through its path again, so that whoever can
/// change a directory above it cannot swap it for another once the store has checked it.
pub(super) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a directory entry is, looked at without following it.
pub(super) struct Entry {
    pub(super) name: String,
    regular: bool,
    modified: SystemTime,
}

fn io(errno: Errno) -> std::io::Error {
    errno.into()
}

impl Dir {
    /// Opens `path`, creating it (readable by this process's user alone) when missing, and
    /// makes sure it is a directory only this user can change.
    ///
    /// # Errors
    ///
    /// What is wrong, for a message that names the key: the path is a symbolic link, not
    /// a directory, owned by another user, or writable by group or others. Any of those
    /// would let another local user plant a session file, and so log in as anyone.
    pub(super) fn open(path: &Path) -> Result<Dir, String> {
        let shown = path.display();
        if let Err(e) = std::fs::symlink_metadata(path) {
            if e.kind() != ErrorKind::NotFound {
                return Err(format!("could not inspect {shown}: {e}"));
            }
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(path)
                .map_err(|e| format!("could not create {shown}: {e}"))?;
        }

        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| match e {
            Errno::LOOP => format!("{shown} is a symbolic link: name the directory itself"),
            Errno::NOTDIR => format!("{shown} is not a directory"),
            e => format!("could not open {shown}: {}", io(e)),
        })?;
        // Checked on the directory opened, not on its path: nothing can swap it between.
        let stat = fstat(&fd).map_err(|e| format!("could not inspect {shown}: {}", io(e)))?;
        let user = rustix::process::geteuid().as_raw();
        if stat.st_uid != user {
            return Err(format!(
                "{shown} is owned by uid {}, not by this process's user (uid {user}): another user could plant sessions in it",
                stat.st_uid
            ));
        }
        let mode = stat.st_mode & 0o7777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "{shown} is writable by group or others (mode {mode:o}): another user could plant sessions in it; `chmod 700` it"
            ));
        }

        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    /// The directory's path, for messages.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `name` to read it when it is a regular file; `None` when there is none.
    /// Never follows a symbolic link, and never blocks on a FIFO or a device.
    fn open_regular(&self, name: &str) -> Result<Option<File>, Bad> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let file = match openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::NOENT) => return Ok(None),
            // A symbolic link (ELOOP), a socket (ENXIO)...: look without following.
            Err(e) => {
                return Err(match statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) if !is_regular(stat.st_mode) => Bad::Foreign(kind_of(stat.st_mode)),
                    _ => Bad::Unreadable(io(e)),
                })
            }
        };
        let meta = file.metadata().map_err(Bad::Unreadable)?;
        if !meta.is_file() {
            return Err(Bad::Foreign(kind_of(meta.mode())));
        }
        Ok(Some(file))
    }

    /// Reads the session in `name`, at most `limit` bytes of it; `None` when there is none.
    pub(super) fn read(&self, name: &str, limit: u64) -> Result<Option<Found>, Bad> {
        match self.open_regular(name)? {
            Some(file) => read_from(&file, limit).map(Some),
            None => Ok(None),
        }
    }

    /// Writes `record`, expiring at `expires`, to `name` atomically: a temporary file
    /// (readable by its owner alone), then a rename over it. A failed write removes its
    /// temporary file. A file over `limit` bytes, which `read` would refuse, is not
    /// written.
    pub(super) fn write(
        &self,
        name: &str,
        record: SessionRecord,
        expires: u64,
        limit: u64,
    ) -> std::io::Result<()> {
        let ttl = millis(record.ttl());
        let on_disk = OnDisk {
            version: FORMAT_VERSION,
            ttl,
            entries: record.into_entries().into_iter().collect(),
        };
        let bytes = serde_json::to_vec(&on_disk)?;
        if bytes.len() as u64 > limit {
            return Err(std::io::Error::other(format!(
                "the session would take {} bytes, over the {limit} a session file may hold",
                bytes.len()
            )));
        }
        let temporary = format!(".{name}.{:016x}.tmp", rand::random::<u64>());
        let written = (|| {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = openat(
                &self.fd,
                temporary.as_str(),
                flags,
                Mode::from_raw_mode(0o600),
            )
            .map_err(io)?;
            let mut file = File::from(fd);
            file.write_all(&bytes)?;
            file.set_modified(from_millis(expires.saturating_sub(ttl)))?;
            drop(file);
            renameat(&self.fd, temporary.as_str(), &self.fd, name).map_err(io)
        })();
        if written.is_err() {
            let _ = unlinkat(&self.fd, temporary.as_str(), AtFlags::empty());
        }
        written
    }

    /// Resets the expiry of the live session in `name` to `now` + its lifetime without
    /// rewriting its data; returns the session, or `None` when there is no live session.
    pub(super) fn touch(&self, name: &str, limit: u64) -> Result<Option<SessionRecord>, Bad> {
        let Some(file) = self.open_regular(name)? else {
            return Ok(None);
        };
        let now = now();
        let found = read_from(&file, limit)?;
        if found.expires <= now {
            return Ok(None);
        }
        file.set_modified(from_millis(now))
            .map_err(Bad::Unreadable)?;
        Ok(Some(found.record))
    }

    /// Removes `name`, never following it; `true` when there was something to remove.
    pub(super) fn remove(&self, name: &str) -> std::io::Result<bool> {
        match unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    /// The directory's entries, each looked at without following it.
    pub(super) fn entries(&self) -> std::io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.fd).map_err(io)? {
            let entry = entry.map_err(io)?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let Ok(stat) = statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let since_epoch = Duration::new(
                u64::try_from(stat.st_mtime).unwrap_or(0),
                u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
            );
            entries.push(Entry {
                name: name.to_owned(),
                regular: is_regular(stat.st_mode),
                modified: UNIX_EPOCH + since_epoch,
            });
        }
        Ok(entries)
    }

    /// Removes the temporary files older than `stale`: what a crash mid-write left. Only
    /// regular files named as this store names them; nothing is opened.
    pub(super) fn remove_stale_temporaries(&self, stale: Duration) -> std::io::Result<usize> {
        let mut removed = 0;
        for entry in self.entries()? {
            let old = entry.modified.elapsed().is_ok_and(|age| age > stale);
            if entry.regular && old && is_temporary(&entry.name) && self.remove(&entry.name)? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn is_regular(mode: u32) -> bool {
    FileType::from_raw_mode(mode) == FileType::RegularFile
}

fn kind_of(mode: u32) -> String {
    let kind = match FileType::from_raw_mode(mode) {
        FileType::Symlink => "a symbolic link",
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO",
        _ => "not a regular file",
    };
    format!("is {kind}")
}

/// Reads the session in the regular file `file`, at most `limit` bytes of it.
fn read_from(file: &File, limit: u64) -> Result<Found, Bad> {
    let meta = file.metadata().map_err(Bad::Unreadable)?;
    let too_large = || {
        Bad::Foreign(format!(
            "is larger than the {limit} bytes a session file may hold"
        ))
    };
    if meta.len() > limit {
        return Err(too_large());
    }

    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    Read::by_ref(&mut &*file)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(Bad::Unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }

    let on_disk: OnDisk = serde_json::from_slice(&bytes)
        .map_err(|e| Bad::Garbage(format!("does not decode: {e}")))?;
    if on_disk.version != FORMAT_VERSION {
        return Err(Bad::Garbage(format!(
            "has an unknown record format version {}",
            on_disk.version
        )));
    }

    let modified = meta.modified().map_err(Bad::Unreadable)?;
    let mut record = SessionRecord::new(Duration::from_millis(on_disk.ttl));
    for (key, json) in on_disk.entries {
        record.insert(key, json);
    }
    Ok(Found {
        record,
        expires: to_millis(modified).saturating_add(on_disk.ttl),
    })
}
