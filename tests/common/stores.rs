//! Every kind of store the tests run against, each opened anew on the same data every time
//! it is asked (an application restart, for the stores that outlive one), and
//! `for_every_store!`, which runs one scenario on each.

use std::sync::Arc;

use rocket::futures::future::BoxFuture;
use rocket_server_sessions::store::{MemoryStore, SessionStore};

pub type Store = Arc<dyn SessionStore>;

/// Opens one store's data, again each time it is called.
pub type Opener = Box<dyn Fn() -> BoxFuture<'static, Store> + Send + Sync>;

/// Makes an opener of `open`, which opens the store from `config`.
fn opener<C, F>(config: C, open: F) -> Opener
where
    C: Clone + Send + Sync + 'static,
    F: Fn(C) -> BoxFuture<'static, Store> + Send + Sync + 'static,
{
    Box::new(move || open(config.clone()))
}

/// One memory store: "opened again", it is the same one (it outlives no restart).
pub fn memory() -> Option<Opener> {
    let store: Store = Arc::new(MemoryStore::default());
    Some(opener(store, |store| Box::pin(async move { store })))
}

#[cfg(all(feature = "file", unix))]
pub fn file() -> Option<Opener> {
    let mut config = rocket_server_sessions::config::SessionConfig::default();
    config.file.dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "sessions-{}",
        rocket_server_sessions::store::SessionId::generate()
    ));
    Some(opener(config, |config| {
        let store =
            rocket_server_sessions::store::FileStore::open(&config.file, config.max_session_size);
        Box::pin(async move { Arc::new(store.expect("a writable directory")) as Store })
    }))
}

#[cfg(feature = "redis")]
pub fn redis() -> Option<Opener> {
    let config = super::redis::standalone_config()?;
    Some(opener(config, |config| {
        Box::pin(async move {
            let store = rocket_server_sessions::store::RedisStore::connect(&config).await;
            Arc::new(store.expect("the test Redis answers")) as Store
        })
    }))
}

#[cfg(feature = "redis")]
pub fn redis_cluster() -> Option<Opener> {
    let config = super::redis::cluster_config()?;
    Some(opener(config, |config| {
        Box::pin(async move {
            let store = rocket_server_sessions::store::RedisStore::connect_cluster(&config).await;
            Arc::new(store.expect("the test Redis Cluster answers")) as Store
        })
    }))
}

#[cfg(feature = "sqlite")]
pub fn sqlite() -> Option<Opener> {
    let config = super::sql::config(super::sql::sqlite_url());
    Some(opener(config, |config| {
        Box::pin(async move {
            let store = rocket_server_sessions::store::SqliteStore::connect(&config.sql).await;
            Arc::new(store.expect("an SQLite file opens")) as Store
        })
    }))
}

#[cfg(feature = "postgres")]
pub fn postgres() -> Option<Opener> {
    let config = super::sql::config(super::sql::postgres_url()?);
    Some(opener(config, |config| {
        Box::pin(async move {
            let store = rocket_server_sessions::store::PostgresStore::connect(&config.sql).await;
            Arc::new(store.expect("the test PostgreSQL answers")) as Store
        })
    }))
}

#[cfg(feature = "mysql")]
pub fn mysql() -> Option<Opener> {
    let config = super::sql::config(super::sql::mysql_url()?);
    Some(opener(config, |config| {
        Box::pin(async move {
            let store = rocket_server_sessions::store::MySqlStore::connect(&config.sql).await;
            Arc::new(store.expect("the test MariaDB answers")) as Store
        })
    }))
}

/// One `#[rocket::async_test]` per kind of store, named after it, each running
/// `$scenario(Option<Opener>)`: `None` where the server is not configured (then skipped, or
/// failed under `CI=true`, by the opener).
#[macro_export]
macro_rules! for_every_store {
    ($scenario:path) => {
        $crate::for_every_store!(@one $scenario, memory, all());
        $crate::for_every_store!(@one $scenario, file, all(feature = "file", unix));
        $crate::for_every_store!(@one $scenario, redis, feature = "redis");
        $crate::for_every_store!(@one $scenario, redis_cluster, feature = "redis");
        $crate::for_every_store!(@one $scenario, sqlite, feature = "sqlite");
        $crate::for_every_store!(@one $scenario, postgres, feature = "postgres");
        $crate::for_every_store!(@one $scenario, mysql, feature = "mysql");
    };
    (@one $scenario:path, $kind:ident, $($cfg:tt)*) => {
        #[cfg($($cfg)*)]
        #[rocket::async_test]
        async fn $kind() {
            $scenario(common::stores::$kind()).await;
        }
    };
}
