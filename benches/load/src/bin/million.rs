//! examples/counter's routes on a memory store that already holds a million sessions of a
//! ~100-byte payload, all expiring together `MILLION_TTL_SECS` (20) after start, with a 1 s
//! sweep interval: for measuring resident memory at a million sessions, and the latency
//! of live requests while the sweeper removes them all. Prints the resident memory once
//! the sessions are in.

use std::time::Duration;

use rocket_server_sessions::{Sessions, config::MemoryConfig, store::{MemoryStore, SessionId, SessionRecord, SessionStore}};

#[allow(dead_code)]
#[path = "../../../../examples/counter.rs"]
mod counter;

#[path = "../resident.rs"]
mod resident;
use resident::resident_mb;

#[rocket::main]
async fn main() -> Result<(), rocket::Error> {
    let sessions: usize = std::env::var("MILLION_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let ttl: u64 = std::env::var("MILLION_TTL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);

    let mut config = MemoryConfig::default();
    // Room to spare: sessions spread over shards unevenly, and none may be evicted.
    config.max_sessions = sessions + sessions / 10;
    config.sweep_interval = Duration::from_secs(1);
    let store = MemoryStore::new(config);
    let before = resident_mb();
    // ~100 bytes of JSON in one entry, as a small app's session would hold.
    let payload = format!(
        r#"{{"user":"user-{{}}","roles":["reader"],"theme":"dark","cart":[17,42],"pad":"{}"}}"#,
        "x".repeat(20)
    );
    for i in 0..sessions {
        let mut record = SessionRecord::new(Duration::from_secs(ttl));
        record.insert("profile", payload.replace("{}", &i.to_string()));
        let _ = store
            .create(&SessionId::generate(), &record)
            .await
            .expect("the memory store accepts");
    }
    println!(
        "filled {} sessions of {} bytes: resident {} MB (before: {} MB)",
        store.len(),
        payload.len(),
        resident_mb(),
        before
    );

    let _ = counter::app_with(Sessions::builder().store(store).build())
        .launch()
        .await?;
    Ok(())
}
