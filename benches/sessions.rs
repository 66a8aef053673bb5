//! Criterion benchmarks of the request path and its parts.
//!
//! `cargo bench --bench sessions --all-features` (Redis benches run when
//! SESSIONS_REDIS_URL is set, as `scripts/bench.sh` does). Compare figures within one run:
//! the `request/*` group puts bare Rocket beside the fairing.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rocket::http::{Cookie, CookieJar};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Value};
use rocket::{get, routes};
use rocket_server_sessions::{
    config::MemoryConfig,
    store::{Changes, MemoryStore, SessionId, SessionRecord, SessionStore},
    Sessions,
};

mod map_stores;

/// examples/counter itself: its plain `GET /` and its `/counter`, measured as users run them.
#[allow(dead_code)]
#[path = "../examples/counter.rs"]
mod counter;

/// Bare Rocket's plain route, the same text as the example's.
#[get("/")]
fn plain() -> &'static str {
    "rocket_server_sessions: GET /counter counts your visits.\n"
}

/// Bare Rocket's counter: the count in a plain cookie (the load script's bare server uses
/// a private cookie; that needs Rocket's `secrets` feature, which the tests must not have),
/// answered with the same JSON as the example's.
#[get("/counter")]
fn cookie_counter(jar: &CookieJar<'_>) -> Value {
    let count: u64 = jar
        .get("count")
        .and_then(|c| c.value().parse().ok())
        .unwrap_or(0)
        + 1;
    jar.add(Cookie::new("count", count.to_string()));
    json!({ "count": count })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn figment() -> rocket::figment::Figment {
    rocket::figment::Figment::from(rocket::Config::debug_default())
        .merge(("log_level", "off"))
        .merge(("secret_key", "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk="))
}

fn record(bytes: usize) -> SessionRecord {
    let mut record = SessionRecord::new(Duration::from_secs(3600));
    record.insert(
        "payload",
        format!("\"{}\"", "x".repeat(bytes.saturating_sub(2))),
    );
    record
}

fn ids_and_record(c: &mut Criterion) {
    c.bench_function("id/generate", |b| b.iter(SessionId::generate));
    let id = SessionId::generate();
    c.bench_function("id/storage_key", |b| {
        b.iter(|| black_box(&id).storage_key())
    });

    let mut changes = Changes::default();
    changes.set("visits", r#"{"count":2}"#);
    c.bench_function("record/apply", |b| {
        b.iter(|| {
            let mut record = record(100);
            record.apply(black_box(&changes));
            record
        })
    });
}

/// Load, commit and create on a store that already holds `n` sessions.
fn store_ops(c: &mut Criterion, group: &str, store: Arc<dyn SessionStore>, sizes: &[usize]) {
    let rt = runtime();
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(1));
    let mut held = 0;
    for &n in sizes {
        let ids: Vec<_> = (held..n).map(|_| SessionId::generate()).collect();
        rt.block_on(async {
            for id in &ids {
                let _ = store.create(id, &record(100)).await.expect("create");
            }
        });
        held = n;

        let id = SessionId::generate();
        let _ = rt
            .block_on(store.create(&id, &record(100)))
            .expect("create");
        let mut changes = Changes::default();
        changes.set("visits", r#"{"count":2}"#);

        group.bench_with_input(BenchmarkId::new("load", n), &n, |b, _| {
            b.to_async(&rt).iter(|| store.load(&id))
        });
        group.bench_with_input(BenchmarkId::new("commit", n), &n, |b, _| {
            b.to_async(&rt).iter(|| store.commit(&id, &changes))
        });
        group.bench_with_input(BenchmarkId::new("create", n), &n, |b, _| {
            b.to_async(&rt).iter(|| async {
                let id = SessionId::generate();
                let _ = store.create(&id, &record(100)).await.expect("create");
                let _ = store.delete(&id).await.expect("delete");
            })
        });
    }
    group.finish();
}

/// How many sessions the in-process stores hold while they are measured.
const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

fn memory_store(c: &mut Criterion) {
    let mut config = MemoryConfig::default();
    config.max_sessions = 2_000_000;
    let store = MemoryStore::new(config);
    store_ops(c, "memory_store", Arc::new(store), &SIZES);
}

/// The same operations on the store contract built on `dashmap` and on `moka`, beside
/// `memory_store`.
fn map_crates(c: &mut Criterion) {
    let dashmap = map_stores::DashMapStore::default();
    store_ops(c, "dashmap_store", Arc::new(dashmap), &SIZES);
    let moka = map_stores::MokaStore::new(2_000_000);
    store_ops(c, "moka_store", Arc::new(moka), &SIZES);
}

#[cfg(feature = "redis")]
fn redis_store(c: &mut Criterion) {
    let Ok(url) = std::env::var("SESSIONS_REDIS_URL") else {
        eprintln!("redis_store: set SESSIONS_REDIS_URL to run");
        return;
    };
    let mut config = rocket_server_sessions::config::RedisConfig::default();
    config.url = url;
    config.prefix = format!("bench:{}:", SessionId::generate());
    let store = runtime()
        .block_on(rocket_server_sessions::store::RedisStore::connect(&config))
        .expect("Redis");
    store_ops(c, "redis_store", Arc::new(store), &[1_000]);
}

#[cfg(not(feature = "redis"))]
fn redis_store(_: &mut Criterion) {}

/// Whole requests through Rocket's local client, bare Rocket beside the fairing.
fn request_path(c: &mut Criterion) {
    let rt = runtime();
    let (bare, ours) = rt.block_on(async {
        let bare = rocket::custom(figment()).mount("/", routes![plain, cookie_counter]);
        let ours = counter::app_with(Sessions::fairing()).configure(figment());
        (
            Client::untracked(bare).await.unwrap(),
            Client::untracked(ours).await.unwrap(),
        )
    });
    let session = rt.block_on(async {
        ours.get("/counter")
            .dispatch()
            .await
            .cookies()
            .get("rocket.sid")
            .cloned()
    });
    let session = session.expect("a session cookie");
    let count = rt.block_on(async {
        bare.get("/counter")
            .dispatch()
            .await
            .cookies()
            .get("count")
            .cloned()
    });
    let count = count.expect("a count cookie");

    let mut group = c.benchmark_group("request");
    group.bench_function("bare/plain", |b| {
        b.to_async(&rt).iter(|| bare.get("/").dispatch())
    });
    group.bench_function("bare/cookie_counter", |b| {
        b.to_async(&rt)
            .iter(|| bare.get("/counter").cookie(count.clone()).dispatch())
    });
    group.bench_function("sessions/plain", |b| {
        b.to_async(&rt).iter(|| ours.get("/").dispatch())
    });
    group.bench_function("sessions/plain_with_cookie", |b| {
        b.to_async(&rt)
            .iter(|| ours.get("/").cookie(session.clone()).dispatch())
    });
    group.bench_function("sessions/counter", |b| {
        b.to_async(&rt)
            .iter(|| ours.get("/counter").cookie(session.clone()).dispatch())
    });
    group.bench_function("sessions/new_visitor", |b| {
        b.to_async(&rt).iter(|| ours.get("/counter").dispatch())
    });
    group.finish();
}

criterion_group!(
    benches,
    ids_and_record,
    request_path,
    memory_store,
    map_crates,
    redis_store
);
criterion_main!(benches);
