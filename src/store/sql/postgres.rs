//! PostgreSQL: entries in a `jsonb` column, merged with `||` and `-`.

use sqlx::postgres::PgPool;
use sqlx::Row as _;

use super::{private::Sealed, Dialect, Patch, Row};
use crate::config::SqlConfig;

/// PostgreSQL, for [`SqlStore`](super::SqlStore): see [`PostgresStore`](crate::store::PostgresStore).
#[derive(Debug)]
pub struct Postgres;

impl Sealed for Postgres {}

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
impl Dialect for Postgres {
    type Pool = PgPool;
    type Sql = Statements;

    async fn connect(config: &SqlConfig) -> Result<PgPool, sqlx::Error> {
        let url = config.url.as_deref().unwrap_or_default();
        super::pool_options(config).connect(url).await
    }

    fn statements(t: &str) -> Statements {
        Statements {
            load: format!("SELECT data::text, ttl FROM {t} WHERE id = $1 AND expires > $2"),
            create: format!(
                "INSERT INTO {t} (id, data, ttl, expires, signed_in) VALUES ($1, $2::jsonb, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, ttl = EXCLUDED.ttl, \
                 expires = EXCLUDED.expires, signed_in = EXCLUDED.signed_in WHERE {t}.expires <= $6"
            ),
            commit: format!(
                "UPDATE {t} SET data = (data || $2::jsonb) - $3::text[], ttl = COALESCE($4, ttl), \
                 expires = COALESCE($5, expires), signed_in = COALESCE($6, signed_in) \
                 WHERE id = $1 AND expires > $7"
            ),
            touch: format!(
                "UPDATE {t} SET expires = $2 + ttl WHERE id = $1 AND expires > $2 RETURNING data::text, ttl"
            ),
            delete: format!("DELETE FROM {t} WHERE id = $1"),
            sweep: format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires <= $1 LIMIT $2)"
            ),
            // Sessions by class; a list of a user's sessions is outside the cap.
            count: format!(
                "SELECT signed_in, count(*) FROM {t} WHERE (data -> '$index') IS NULL GROUP BY signed_in"
            ),
            evict: format!(
                "DELETE FROM {t} WHERE id IN \
                 (SELECT id FROM {t} WHERE signed_in = $1 AND (data -> '$index') IS NULL ORDER BY expires LIMIT $2)"
            ),
        }
    }

    async fn create_table(pool: &PgPool, t: &str) -> Result<(), sqlx::Error> {
        let table = format!(
            "CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, data JSONB NOT NULL, \
             ttl BIGINT NOT NULL, expires BIGINT NOT NULL, signed_in BOOLEAN NOT NULL)"
        );
        sqlx::query(&table).execute(pool).await?;
        let index = format!("CREATE INDEX IF NOT EXISTS {t}_expires ON {t} (expires)");
        sqlx::query(&index).execute(pool).await?;
        Ok(())
    }

    async fn load(
        pool: &PgPool,
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
        pool: &PgPool,
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
        pool: &PgPool,
        sql: &Statements,
        key: &str,
        patch: &Patch<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(&sql.commit)
            .bind(key)
            .bind(patch.sets())
            .bind(patch.removals())
            .bind(patch.ttl.map(|(ttl, _)| ttl))
            .bind(patch.ttl.map(|(_, expires)| expires))
            .bind(patch.signed_in)
            .bind(now)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch(
        pool: &PgPool,
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

    async fn delete(pool: &PgPool, sql: &Statements, key: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(&sql.delete).bind(key).execute(pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn sweep(
        pool: &PgPool,
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

    async fn count(pool: &PgPool, sql: &Statements) -> Result<[i64; 2], sqlx::Error> {
        let mut counts = [0; 2];
        for row in sqlx::query(&sql.count).fetch_all(pool).await? {
            let signed_in: bool = row.try_get(0)?;
            counts[usize::from(signed_in)] = row.try_get(1)?;
        }
        Ok(counts)
    }

    async fn evict(
        pool: &PgPool,
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
