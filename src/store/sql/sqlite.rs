//! SQLite: entries in a `TEXT` column of JSON, merged with `json_patch`.

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Row as _};

use super::{private::Sealed, Dialect, Patch, Row};
use crate::config::SqlConfig;

/// SQLite, for [`SqlStore`](super::SqlStore): see [`SqliteStore`](crate::store::SqliteStore).
#[derive(Debug)]
pub struct Sqlite;

impl Sealed for Sqlite {}

#[doc(hidden)]
#[derive(Debug)]
pub struct Statements {
    load: String,
    create: String,
    commit: String,
    touch: String,
    delete: String,
    sweep: String,
    count: String,
    evict: String,
}

#[rocket::async_trait]
impl Dialect for Sqlite {
    type Pool = SqlitePool;
    type Sql = Statements;

    fn prepare(config: &SqlConfig) -> Result<(), String> {
        let url = config.url.as_deref().unwrap_or_default();
        let options = SqliteConnectOptions::from_str(url).map_err(|e| e.to_string())?;
        match place(&options) {
            #[cfg(unix)]
            Place::File { path, read_only } => owner_only::keep(&path, !read_only),
            _ => Ok(()),
        }
    }

    async fn connect(config: &SqlConfig) -> Result<SqlitePool, sqlx::Error> {
        let url = config.url.as_deref().unwrap_or_default();
        // An in-memory database lives in one connection, for as long as it is open; so
        // does SQLite's temporary one (an empty file name), a private one per connection.
        let one_connection = !matches!(
            place(&SqliteConnectOptions::from_str(url)?),
            Place::File { .. }
        );
        // The file is created when missing (by `prepare`, `0600`, on Unix); WAL lets readers and a writer work at once, and
        // a writer waits for another (another process's) within the timeout. In WAL,
        // `synchronous = NORMAL` syncs at checkpoints, not at every commit: a crash of the
        // app loses nothing, a power cut the last moments' changes, never the file.
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(config.timeout);
        let pool = super::pool_options(config);
        let pool = match one_connection {
            true => pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            false => pool,
        };
        pool.connect_with(options).await
    }

    fn statements(t: &str) -> Statements {
        Statements {
            load: format!("SELECT data, ttl FROM {t} WHERE id = ?1 AND expires > ?2"),
            create: format!(
                "INSERT INTO {t} (id, data, ttl, expires, signed_in) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, ttl = excluded.ttl, \
                 expires = excluded.expires, signed_in = excluded.signed_in WHERE {t}.expires <= ?6"
            ),
            commit: format!(
                "UPDATE {t} SET data = json_patch(data, ?2), ttl = COALESCE(?3, ttl), \
                 expires = COALESCE(?4, expires), signed_in = COALESCE(?5, signed_in) \
                 WHERE id = ?1 AND expires > ?6"
            ),
            touch: format!(
                "UPDATE {t} SET expires = ?2 + ttl WHERE id = ?1 AND expires > ?2 RETURNING data, ttl"
            ),
            delete: format!("DELETE FROM {t} WHERE id = ?1"),
            sweep: format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires <= ?1 LIMIT ?2)"
            ),
            // Sessions by class; a list of a user's sessions is outside the cap.
            count: format!(
                "SELECT signed_in, count(*) FROM {t} WHERE json_extract(data, '$.\"$index\"') IS NULL GROUP BY signed_in"
            ),
            evict: format!(
                "DELETE FROM {t} WHERE id IN \
                 (SELECT id FROM {t} WHERE signed_in = ?1 AND json_extract(data, '$.\"$index\"') IS NULL ORDER BY expires LIMIT ?2)"
            ),
        }
    }

    async fn create_table(pool: &SqlitePool, t: &str) -> Result<(), sqlx::Error> {
        let table = format!(
            "CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, \
             ttl INTEGER NOT NULL, expires INTEGER NOT NULL, signed_in INTEGER NOT NULL)"
        );
        sqlx::query(&table).execute(pool).await?;
        let index = format!("CREATE INDEX IF NOT EXISTS {t}_expires ON {t} (expires)");
        sqlx::query(&index).execute(pool).await?;
        Ok(())
    }

    async fn load(
        pool: &SqlitePool,
        sql: &Statements,
        key: &str,
        now: i64,
    ) -> Result<Option<(String, i64)>, sqlx::Error> {
        let row = sqlx::query(&sql.load)
            .bind(key)
            .bind(now)
            .fetch_optional(pool)
            .await?;
        row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    async fn create(
        pool: &SqlitePool,
        sql: &Statements,
        row: Row<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(&sql.create)
            .bind(row.key)
            .bind(&row.data)
            .bind(row.ttl)
            .bind(row.expires)
            .bind(row.signed_in)
            .bind(now)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn commit(
        pool: &SqlitePool,
        sql: &Statements,
        key: &str,
        patch: &Patch<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(&sql.commit)
            .bind(key)
            .bind(patch.merge())
            .bind(patch.ttl.map(|(ttl, _)| ttl))
            .bind(patch.ttl.map(|(_, expires)| expires))
            .bind(patch.signed_in)
            .bind(now)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch(
        pool: &SqlitePool,
        sql: &Statements,
        key: &str,
        now: i64,
    ) -> Result<Option<(String, i64)>, sqlx::Error> {
        let row = sqlx::query(&sql.touch)
            .bind(key)
            .bind(now)
            .fetch_optional(pool)
            .await?;
        row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    async fn delete(pool: &SqlitePool, sql: &Statements, key: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(&sql.delete).bind(key).execute(pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn sweep(
        pool: &SqlitePool,
        sql: &Statements,
        now: i64,
        batch: i64,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(&sql.sweep)
            .bind(now)
            .bind(batch)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn count(pool: &SqlitePool, sql: &Statements) -> Result<[i64; 2], sqlx::Error> {
        let mut counts = [0; 2];
        for row in sqlx::query(&sql.count).fetch_all(pool).await? {
            let signed_in: bool = row.try_get(0)?;
            counts[usize::from(signed_in)] = row.try_get(1)?;
        }
        Ok(counts)
    }

    async fn evict(
        pool: &SqlitePool,
        sql: &Statements,
        signed_in: bool,
        n: i64,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(&sql.evict)
            .bind(signed_in)
            .bind(n)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Where an SQLite URL keeps its database.
#[cfg_attr(not(unix), allow(dead_code))]
enum Place {
    /// In memory (`sqlite::memory:`, `mode=memory`): no file.
    Memory,
    /// SQLite's private temporary database (an empty file name): a file of SQLite's own,
    /// `0600`, deleted on close.
    Temporary,
    /// A file, opened read-only (`mode=ro`) or read-write and created when missing.
    File { path: PathBuf, read_only: bool },
}

/// Where `options`, as parsed from a URL, keep the database: read from sqlx's own
/// rendering of them, so that it agrees with what sqlx will open.
fn place(options: &SqliteConnectOptions) -> Place {
    let url = options.to_url_lossy();
    let mode = url
        .query_pairs()
        .find(|(key, _)| key == "mode")
        .map(|(_, mode)| mode.into_owned());
    if mode.as_deref() == Some("memory") {
        return Place::Memory;
    }
    let path = options.clone().get_filename().into_owned();
    if path.as_os_str().is_empty() {
        return Place::Temporary;
    }
    Place::File {
        path,
        read_only: mode.as_deref() == Some("ro"),
    }
}

/// The database file readable and writable by this process's user alone.
#[cfg(unix)]
mod owner_only {
    use std::fs::{OpenOptions, Permissions};
    use std::io::ErrorKind;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    /// The files beside a database that SQLite writes its pages to.
    const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

    /// Creates the database file `path` `0600` when missing and `create` (before SQLite
    /// would, with the umask's mode), and refuses it, or a `-wal`, `-shm` or `-journal`
    /// file beside it, when group or others may read or write it. SQLite creates those
    /// three with the database file's mode, so a private database keeps them private.
    ///
    /// # Errors
    ///
    /// What is wrong, for a message that names `sql.url`.
    pub(super) fn keep(path: &Path, create: bool) -> Result<(), String> {
        let shown = path.display();
        if path.as_os_str().as_encoded_bytes().starts_with(b"file:") {
            // SQLite reads a `file:` name as a URI, not as the path it spells.
            return Err(format!(
                "{shown} is a `file:` URI: name the database by its path (`sqlite://path/to/sessions.db`)"
            ));
        }
        if create {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true).mode(0o600);
            match options.open(path) {
                // The umask can only have taken bits away: make it exactly 0600.
                Ok(file) => file
                    .set_permissions(Permissions::from_mode(0o600))
                    .map_err(|e| format!("could not set the permissions of {shown}: {e}"))?,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("could not create {shown}: {e}")),
            }
        }
        // SQLite follows a symbolic link and keeps its files beside the database itself.
        let real = match std::fs::canonicalize(path) {
            Ok(real) => real,
            // Read-only and missing: SQLite says so.
            Err(e) if e.kind() == ErrorKind::NotFound && !create => return Ok(()),
            Err(e) => return Err(format!("could not open {shown}: {e}")),
        };
        let names = std::iter::once(real.clone()).chain(COMPANIONS.iter().map(|suffix| {
            let mut name = real.clone().into_os_string();
            name.push(suffix);
            name.into()
        }));
        for name in names {
            let mode = match std::fs::metadata(&name) {
                Ok(meta) => meta.permissions().mode() & 0o7777,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("could not inspect {}: {e}", name.display())),
            };
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{} is open to group or others (mode {mode:o}): they could read every session in it, or plant one; `chmod 600` it",
                    name.display()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place_of(url: &str) -> Place {
        place(&SqliteConnectOptions::from_str(url).unwrap())
    }

    #[test]
    fn a_url_names_a_file_unless_it_keeps_the_database_in_memory() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://a.db?mode=memory",
        ] {
            assert!(matches!(place_of(url), Place::Memory), "{url}");
        }
        assert!(matches!(place_of("sqlite://"), Place::Temporary));
        for (url, file, ro) in [
            ("sqlite://a.db", "a.db", false),
            (
                "sqlite:///var/lib/a:memory:.db",
                "/var/lib/a:memory:.db",
                false,
            ),
            ("sqlite://a.db?mode=rwc", "a.db", false),
            ("sqlite://a.db?mode=ro", "a.db", true),
            ("sqlite:a%3Fb.db", "a?b.db", false),
        ] {
            match place_of(url) {
                Place::File { path, read_only } => {
                    assert_eq!((path.to_str().unwrap(), read_only), (file, ro), "{url}");
                }
                _ => panic!("{url}: not a file"),
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_uri_is_refused_rather_than_checked_at_the_wrong_path() {
        let refused = owner_only::keep(std::path::Path::new("file:a.db"), true).unwrap_err();
        assert!(refused.contains("file:"), "{refused}");
        assert!(!std::path::Path::new("file:a.db").exists());
    }
}
