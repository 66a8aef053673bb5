//! SQLite: entries in a `TEXT` column of JSON, merged with `json_patch`.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::Row as _;

use super::{private::Sealed, Dialect, Patch, Row};
use crate::SqlConfig;

/// SQLite, for [`SqlStore`](super::SqlStore): see [`SqliteStore`](crate::SqliteStore).
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

    async fn connect(config: &SqlConfig) -> Result<SqlitePool, sqlx::Error> {
        let url = config.url.as_deref().unwrap_or_default();
        // The file is created when missing; WAL lets readers and a writer work at once, and
        // a writer waits for another (another process's) within the timeout. In WAL,
        // `synchronous = NORMAL` syncs at checkpoints, not at every commit: a crash of the
        // app loses nothing, a power cut the last moments' changes, never the file.
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(config.timeout);
        // An in-memory database lives in one connection, for as long as it is open.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = super::pool_options(config);
        let pool = match in_memory {
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
