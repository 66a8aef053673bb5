//! THE store conformance suite: every rule of the `SessionStore` contract, run against
//! every store through the store test kit (`rocket_server_sessions::testing`, feature
//! `testing`), the same entry point users run against their own stores. A store is done
//! when it passes; a failure names the rule and the store.
#![cfg(feature = "testing")]

mod common;

use std::sync::Arc;

use rocket_server_sessions::store::{MemoryStore, SessionId};
use rocket_server_sessions::testing::Store;

rocket_server_sessions::store_suite!(memory, async { Arc::new(MemoryStore::default()) as Store });

#[cfg(feature = "file")]
rocket_server_sessions::store_suite!(file, async {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sessions-{}", SessionId::generate()));
    let mut config = rocket_server_sessions::config::SessionConfig::default();
    config.file.dir = dir;
    // The suite stores a 256 KiB value straight into the store.
    config.max_session_size = rocket::data::ByteUnit::Mebibyte(1);
    Some(Arc::new(
        rocket_server_sessions::store::FileStore::open(&config.file, config.max_session_size)
            .expect("a writable directory"),
    ) as Store)
});

#[cfg(feature = "redis")]
rocket_server_sessions::store_suite!(redis, common::redis::standalone_store());

#[cfg(feature = "redis")]
rocket_server_sessions::store_suite!(redis_cluster, common::redis::cluster_store());

#[cfg(feature = "redis")]
rocket_server_sessions::store_suite!(valkey, common::redis::valkey_store());

#[cfg(feature = "sqlite")]
rocket_server_sessions::store_suite!(sqlite, common::sql::sqlite_store());

#[cfg(feature = "postgres")]
rocket_server_sessions::store_suite!(postgres, common::sql::postgres_store());

#[cfg(feature = "mysql")]
rocket_server_sessions::store_suite!(mysql, common::sql::mysql_store());

/// The rule of stores that keep a cap, on every store that keeps one: a stranger only
/// ever displaces strangers.
mod caps {
    use super::*;
    use rocket_server_sessions::testing::check_caps;
    use rocket_server_sessions::{config::MemoryConfig, store::SessionStore};

    #[rocket::async_test]
    async fn memory() {
        check_caps(0, |cap| async move {
            let mut config = MemoryConfig::default();
            config.max_sessions = cap;
            Arc::new(MemoryStore::new(config)) as Store
        })
        .await;
    }

    #[cfg(feature = "file")]
    #[rocket::async_test]
    async fn file() {
        check_caps(0, |cap| async move {
            let mut config = rocket_server_sessions::config::SessionConfig::default();
            config.file.dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("sessions-{}", SessionId::generate()));
            config.file.max_sessions = cap;
            Arc::new(
                rocket_server_sessions::store::FileStore::open(
                    &config.file,
                    config.max_session_size,
                )
                .expect("a directory"),
            ) as Store
        })
        .await;
    }

    /// Redis caps each of its 256 groups at a 256th of the cap, rounded up: on a cap of
    /// 20, a session a group.
    #[cfg(feature = "redis")]
    async fn redis(config: Option<rocket_server_sessions::config::RedisConfig>, cluster: bool) {
        let Some(config) = config else { return };
        check_caps(256, |cap| {
            let mut config = config.clone();
            async move {
                config.max_sessions = cap;
                config.prefix = common::redis::unique_prefix();
                let store = match cluster {
                    true => {
                        rocket_server_sessions::store::RedisStore::connect_cluster(&config).await
                    }
                    false => rocket_server_sessions::store::RedisStore::connect(&config).await,
                };
                Arc::new(store.expect("the test Redis answers")) as Store
            }
        })
        .await;
    }

    #[cfg(feature = "redis")]
    #[rocket::async_test]
    async fn redis_standalone() {
        redis(common::redis::standalone_config(), false).await;
    }

    #[cfg(feature = "redis")]
    #[rocket::async_test]
    async fn redis_cluster() {
        redis(common::redis::cluster_config(), true).await;
    }

    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    async fn sql<S: SessionStore>(
        url: Option<String>,
        connect: impl AsyncFn(&rocket_server_sessions::config::SessionConfig) -> S,
    ) {
        let Some(url) = url else { return };
        let connect = &connect;
        check_caps(0, |cap| {
            let url = url.clone();
            async move {
                let mut config = common::sql::config(url);
                config.sql.max_sessions = cap;
                Arc::new(connect(&config).await) as Store
            }
        })
        .await;
    }

    #[cfg(feature = "sqlite")]
    #[rocket::async_test]
    async fn sqlite() {
        sql(Some(common::sql::sqlite_url()), async |config| {
            rocket_server_sessions::store::SqliteStore::connect(&config.sql)
                .await
                .expect("an SQLite file")
        })
        .await;
    }

    #[cfg(feature = "postgres")]
    #[rocket::async_test]
    async fn postgres() {
        sql(common::sql::postgres_url(), async |config| {
            rocket_server_sessions::store::PostgresStore::connect(&config.sql)
                .await
                .expect("the test PostgreSQL")
        })
        .await;
    }

    #[cfg(feature = "mysql")]
    #[rocket::async_test]
    async fn mysql() {
        sql(common::sql::mysql_url(), async |config| {
            rocket_server_sessions::store::MySqlStore::connect(&config.sql)
                .await
                .expect("the test MariaDB")
        })
        .await;
    }
}
