//! THE store conformance suite: every rule of the `SessionStore` contract, run against
//! every store through the store test kit (`rocket_server_sessions::testing`, feature
//! `testing`), the same entry point users run against their own stores. A store is done
//! when it passes; a failure names the rule and the store.
#![cfg(feature = "testing")]

mod common;

use std::sync::Arc;

use rocket_server_sessions::testing::Store;
use rocket_server_sessions::{MemoryStore, SessionId};

rocket_server_sessions::store_suite!(memory, async { Arc::new(MemoryStore::default()) as Store });

#[cfg(feature = "file")]
rocket_server_sessions::store_suite!(file, async {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sessions-{}", SessionId::generate()));
    let mut config = rocket_server_sessions::SessionConfig::default();
    config.file.dir = dir;
    // The suite stores a 256 KiB value straight into the store.
    config.max_session_size = rocket::data::ByteUnit::Mebibyte(1);
    Some(
        Arc::new(rocket_server_sessions::FileStore::open(&config).expect("a writable directory"))
            as Store,
    )
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
