//! Opening the store `sessions.store` names, with its own section of the configuration.

use std::sync::Arc;

#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]
use super::sql;
#[cfg(all(feature = "file", unix))]
use super::FileStore;
use super::MemoryStore;
#[cfg(feature = "redis")]
use super::RedisStore;
use super::SessionStore;
use crate::config::{SessionConfig, StoreKind};
use crate::error::Error;

/// Opens the store `config.store` names.
///
/// # Errors
///
/// [`Error::Config`] naming the key when the store cannot be opened, or `store` when it
/// needs a feature this build lacks.
pub(crate) async fn open(config: &SessionConfig) -> Result<Arc<dyn SessionStore>, Error> {
    match config.store {
        StoreKind::Memory => Ok(Arc::new(MemoryStore::new(config.memory.clone()))),
        #[cfg(feature = "redis")]
        StoreKind::Redis => Ok(Arc::new(RedisStore::connect(&config.redis).await?)),
        #[cfg(feature = "redis")]
        StoreKind::RedisCluster => Ok(Arc::new(RedisStore::connect_cluster(&config.redis).await?)),
        #[cfg(all(feature = "file", unix))]
        StoreKind::File => Ok(Arc::new(FileStore::open(
            &config.file,
            config.max_session_size,
        )?)),
        #[cfg(feature = "postgres")]
        StoreKind::Postgres => Ok(Arc::new(
            sql::SqlStore::<sql::Postgres>::connect(&config.sql).await?,
        )),
        #[cfg(feature = "sqlite")]
        StoreKind::Sqlite => Ok(Arc::new(
            sql::SqlStore::<sql::Sqlite>::connect(&config.sql).await?,
        )),
        #[cfg(feature = "mysql")]
        StoreKind::Mysql => Ok(Arc::new(
            sql::SqlStore::<sql::MySql>::connect(&config.sql).await?,
        )),
        #[allow(unreachable_patterns)]
        kind => {
            let (name, feature) = match kind {
                StoreKind::File => ("file", "file"),
                StoreKind::RedisCluster => ("redis-cluster", "redis"),
                StoreKind::Postgres => ("postgres", "postgres"),
                StoreKind::Sqlite => ("sqlite", "sqlite"),
                StoreKind::Mysql => ("mysql", "mysql"),
                _ => ("redis", "redis"),
            };
            let message = match (kind, cfg!(unix)) {
                (StoreKind::File, false) => "\"file\" runs on Unix alone: it relies on its file-handle checks; use \"redis\" or \"memory\"".to_string(),
                _ => format!("\"{name}\" needs rocket_server_sessions' `{feature}` feature: features = [\"{feature}\"]"),
            };
            Err(Error::config("store", message))
        }
    }
}
