//! Resident memory of a million ~100-byte sessions in `MemoryStore` and in the same store
//! contract built on `dashmap` and on `moka` (benches/map_stores), one store per run:
//!
//!     map_memory memory|dashmap|moka

use std::sync::Arc;
use std::time::Duration;

use rocket_server_sessions::{config::MemoryConfig, store::{MemoryStore, SessionId, SessionRecord, SessionStore}};

#[path = "../../../map_stores/mod.rs"]
mod map_stores;

#[path = "../resident.rs"]
mod resident;
use resident::resident_mb;

#[rocket::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let before = resident_mb();
    let store: Arc<dyn SessionStore> = match which.as_str() {
        "memory" => {
            let mut config = MemoryConfig::default();
            config.max_sessions = 2_000_000;
            Arc::new(MemoryStore::new(config))
        }
        "dashmap" => Arc::new(map_stores::DashMapStore::default()),
        "moka" => Arc::new(map_stores::MokaStore::new(2_000_000)),
        _ => panic!("usage: map_memory memory|dashmap|moka"),
    };

    let mut record = SessionRecord::new(Duration::from_secs(3600));
    record.insert(
        "visits",
        format!(r#"{{"count":1,"pad":"{}"}}"#, "x".repeat(70)),
    );
    for _ in 0..1_000_000 {
        let _ = store
            .create(&SessionId::generate(), &record)
            .await
            .expect("create");
    }
    println!(
        "{which}: 1,000,000 sessions, +{} MB resident",
        resident_mb() - before
    );
}
