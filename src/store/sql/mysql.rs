//! MySQL and MariaDB: entries in a `LONGTEXT` column of JSON, merged with
//! `JSON_MERGE_PATCH`.

use sqlx::mysql::MySqlPool;
use sqlx::Row as _;

use super::{private::Sealed, Dialect, Patch, Row};
use crate::config::SqlConfig;

/// MySQL and MariaDB, for [`SqlStore`](super::SqlStore): see
/// [`MySqlStore`](crate::store::MySqlStore).
#[derive(Debug)]
pub struct MySql;

impl Sealed for MySql {}

#[doc(hidden)]
#[derive(Debug)]
pub struct Statements {
    load: String,
    drop_expired: String,
    insert: String,
    commit: String,
    touch: String,
    read: String,
    delete: String,
    sweep: String,
    count: String,
    evict: String,
}

/// MySQL's error for a duplicate key: a live session has the id.
const DUPLICATE_KEY: &str = "23000";

#[rocket::async_trait]
impl Dialect for MySql {
    type Pool = MySqlPool;
    type Sql = Statements;

    async fn connect(config: &SqlConfig) -> Result<MySqlPool, sqlx::Error> {
        let url = config.url.as_deref().unwrap_or_default();
        super::pool_options(config).connect(url).await
    }

    fn statements(t: &str) -> Statements {
        Statements {
            load: format!("SELECT data, ttl FROM {t} WHERE id = ? AND expires > ?"),
            drop_expired: format!("DELETE FROM {t} WHERE id = ? AND expires <= ?"),
            insert: format!(
                "INSERT INTO {t} (id, data, ttl, expires, signed_in) VALUES (?, ?, ?, ?, ?)"
            ),
            // sqlx asks for matched rows (CLIENT_FOUND_ROWS): a commit that changes
            // nothing still counts as applied.
            commit: format!(
                "UPDATE {t} SET data = JSON_MERGE_PATCH(data, ?), ttl = COALESCE(?, ttl), \
                 expires = COALESCE(?, expires), signed_in = COALESCE(?, signed_in) \
                 WHERE id = ? AND expires > ?"
            ),
            touch: format!("UPDATE {t} SET expires = ? + ttl WHERE id = ? AND expires > ?"),
            read: format!("SELECT data, ttl FROM {t} WHERE id = ?"),
            delete: format!("DELETE FROM {t} WHERE id = ?"),
            sweep: format!("DELETE FROM {t} WHERE expires <= ? LIMIT ?"),
            // Sessions by class; a list of a user's sessions is outside the cap.
            count: format!(
                "SELECT signed_in, count(*) FROM {t} WHERE JSON_EXTRACT(data, '$.\"$index\"') IS NULL GROUP BY signed_in"
            ),
            evict: format!("DELETE FROM {t} WHERE signed_in = ? AND JSON_EXTRACT(data, '$.\"$index\"') IS NULL ORDER BY expires LIMIT ?"),
        }
    }

    async fn create_table(pool: &MySqlPool, t: &str) -> Result<(), sqlx::Error> {
        let table = format!(
            "CREATE TABLE IF NOT EXISTS {t} (id CHAR(64) NOT NULL PRIMARY KEY, \
             data LONGTEXT NOT NULL, ttl BIGINT NOT NULL, expires BIGINT NOT NULL, \
             signed_in BOOLEAN NOT NULL, INDEX {t}_expires (expires)) \
             CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        );
        sqlx::query(&table).execute(pool).await?;
        Ok(())
    }

    async fn load(
        pool: &MySqlPool,
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

    /// An expired row under the id goes first; then the insert, which a live row's
    /// duplicate key refuses.
    async fn create(
        pool: &MySqlPool,
        sql: &Statements,
        row: Row<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        sqlx::query(&sql.drop_expired)
            .bind(row.key)
            .bind(now)
            .execute(pool)
            .await?;
        let inserted = sqlx::query(&sql.insert)
            .bind(row.key)
            .bind(&row.data)
            .bind(row.ttl)
            .bind(row.expires)
            .bind(row.signed_in)
            .execute(pool)
            .await;
        match inserted {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DUPLICATE_KEY) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn commit(
        pool: &MySqlPool,
        sql: &Statements,
        key: &str,
        patch: &Patch<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(&sql.commit)
            .bind(patch.merge())
            .bind(patch.ttl.map(|(ttl, _)| ttl))
            .bind(patch.ttl.map(|(_, expires)| expires))
            .bind(patch.signed_in)
            .bind(key)
            .bind(now)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch(
        pool: &MySqlPool,
        sql: &Statements,
        key: &str,
        now: i64,
    ) -> Result<Option<(String, i64)>, sqlx::Error> {
        let done = sqlx::query(&sql.touch)
            .bind(now)
            .bind(key)
            .bind(now)
            .execute(pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query(&sql.read)
            .bind(key)
            .fetch_optional(pool)
            .await?;
        row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    async fn delete(pool: &MySqlPool, sql: &Statements, key: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(&sql.delete).bind(key).execute(pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn sweep(
        pool: &MySqlPool,
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

    async fn count(pool: &MySqlPool, sql: &Statements) -> Result<[i64; 2], sqlx::Error> {
        let mut counts = [0; 2];
        for row in sqlx::query(&sql.count).fetch_all(pool).await? {
            let signed_in: bool = row.try_get(0)?;
            counts[usize::from(signed_in)] = row.try_get(1)?;
        }
        Ok(counts)
    }

    async fn evict(
        pool: &MySqlPool,
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
