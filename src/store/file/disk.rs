//! The file store's directory and files, trusting nothing in them: the directory must be
//! private to this process's user; files are opened without following links or blocking
//! and read only when they are regular files of a bounded size; writes are atomic.
//!
//! These functions block: the store runs them on Tokio's blocking pool.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::time::millis;
use crate::{SessionRecord, FORMAT_VERSION};

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
    to_millis(SystemTime::now())
}

fn to_millis(time: SystemTime) -> u64 {
    millis(time.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn from_millis(unix_millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(unix_millis)
}

/// Makes sure `dir` is a directory only this process's user can change, creating it
/// (readable by that user alone) when missing.
///
/// # Errors
///
/// What is wrong, for a message that names the key: the path is a symbolic link, not a
/// directory, owned by another user, or writable by group or others. Any of those would
/// let another local user plant a session file, and so log in as anyone.
pub(super) fn check_dir(dir: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dir)
                .map_err(|e| format!("could not create {}: {e}", dir.display()))?;
        }
        Err(e) => return Err(format!("could not inspect {}: {e}", dir.display())),
        Ok(_) => {}
    }

    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("could not inspect {}: {e}", dir.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!(
            "{} is a symbolic link: name the directory itself",
            dir.display()
        ));
    }
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }

    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let user = rustix::process::geteuid().as_raw();
        if meta.uid() != user {
            return Err(format!(
                "{} is owned by uid {}, not by this process's user (uid {user}): another user could plant sessions in it",
                dir.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is writable by group or others (mode {:o}): another user could plant sessions in it; `chmod 700` it",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
    }

    Ok(())
}

/// Options that never follow a symbolic link and never block opening a FIFO or device.
fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK;
        options.custom_flags(i32::try_from(flags.bits()).expect("open flags fit an int"));
    }
    options
}

/// Opens `path` to read it when it is a regular file; `None` when there is none.
fn open_regular(path: &Path) -> Result<Option<File>, Bad> {
    let opened = no_follow(OpenOptions::new().read(true)).open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        // A symbolic link (ELOOP), a socket (ENXIO)...: look without following.
        Err(e) => {
            return Err(match std::fs::symlink_metadata(path) {
                Ok(meta) if !meta.is_file() => Bad::Foreign(kind_of(&meta)),
                _ => Bad::Unreadable(e),
            })
        }
    };
    let meta = file.metadata().map_err(Bad::Unreadable)?;
    if !meta.is_file() {
        return Err(Bad::Foreign(kind_of(&meta)));
    }
    Ok(Some(file))
}

fn kind_of(meta: &std::fs::Metadata) -> String {
    let kind = if meta.file_type().is_symlink() {
        "a symbolic link"
    } else if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    format!("is {kind}")
}

/// Reads the session in `path`, at most `limit` bytes of it; `None` when there is none.
pub(super) fn read(path: &Path, limit: u64) -> Result<Option<Found>, Bad> {
    match open_regular(path)? {
        Some(file) => read_from(&file, limit).map(Some),
        None => Ok(None),
    }
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

/// Writes `record`, expiring at `expires`, to the file `name` in `dir` atomically: a
/// temporary file (readable by its owner alone), then a rename over it. A failed write
/// removes its temporary file. A file over `limit` bytes, which `read` would refuse, is
/// not written.
pub(super) fn write(
    dir: &Path,
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
    let temporary = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(&bytes)?;
        file.set_modified(from_millis(expires.saturating_sub(ttl)))?;
        drop(file);
        std::fs::rename(&temporary, dir.join(name))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Resets the expiry of the live session in `path` to `now` + its lifetime without
/// rewriting its data; returns the session, or `None` when there is no live session.
pub(super) fn touch(path: &Path, limit: u64) -> Result<Option<SessionRecord>, Bad> {
    let Some(file) = open_regular(path)? else {
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

/// Removes `path`, never following it; `true` when there was something to remove.
pub(super) fn remove(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the temporary files in `dir` older than `stale`: what a crash mid-write left.
/// Only plain files named as this store names them; nothing is opened.
pub(super) fn remove_stale_temporaries(dir: &Path, stale: Duration) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_temporary) {
            continue;
        }
        let old = entry.metadata().is_ok_and(|meta| {
            meta.is_file()
                && meta
                    .modified()
                    .is_ok_and(|m| m.elapsed().is_ok_and(|age| age > stale))
        });
        if old && remove(&entry.path()).unwrap_or(false) {
            removed += 1;
        }
    }
    Ok(removed)
}
