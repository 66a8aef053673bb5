//! The `metrics` feature: what a recorder sees of sessions and store calls. One test in a
//! binary of its own, so that the recorder it installs sees nothing else.
#![cfg(feature = "metrics")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::Sessions;

/// A metric as a test reads it: name, labels (sorted by key) and value.
type Metric = (String, Vec<(String, String)>, DebugValue);

/// Every metric the recorder holds.
fn metrics(snapshotter: &Snapshotter) -> Vec<Metric> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            (key.name().to_string(), labels, value)
        })
        .collect()
}

/// The value of the counter `name` with exactly `labels`; zero when it was never counted.
fn counter(snapshotter: &Snapshotter, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut wanted: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    wanted.sort();
    metrics(snapshotter)
        .into_iter()
        .find_map(|(n, l, value)| match value {
            DebugValue::Counter(count) if n == name && l == wanted => Some(count),
            _ => None,
        })
        .unwrap_or(0)
}

fn store_calls(snapshotter: &Snapshotter, store: &str, call: &str, outcome: &str) -> u64 {
    let labels = [("store", store), ("call", call), ("outcome", outcome)];
    counter(snapshotter, "rocket_sessions_store_calls_total", &labels)
}

/// Waits, up to five seconds, until `condition` holds.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[rocket::async_test]
async fn a_recorder_counts_sessions_and_store_calls_by_outcome() {
    let recorder = DebuggingRecorder::new();
    let s = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this binary");

    // The memory store that `sessions.store` names, swept every 50 ms; rolling sessions.
    let swept = figment().merge(("sessions.memory.sweep_interval", 0.05));
    let builder = Sessions::builder()
        .rolling(true)
        .absolute_timeout(Duration::from_millis(1500));
    let client = Client::tracked(rocket_with(swept, Some(builder.build())))
        .await
        .unwrap();

    // Created, then loaded and committed, then destroyed.
    assert_eq!(get_ok(&client, "/counter").await, "1");
    assert_eq!(counter(&s, "rocket_sessions_created_total", &[]), 1);
    assert_eq!(store_calls(&s, "memory", "create", "ok"), 1);
    assert_eq!(
        store_calls(&s, "memory", "load", "ok"),
        0,
        "no cookie, no load"
    );
    assert_eq!(get_ok(&client, "/counter").await, "2");
    // Each store call is timed (a snapshot drains the histograms: this one first).
    let timed = metrics(&s).into_iter().any(|(name, labels, value)| {
        name == "rocket_sessions_store_call_seconds"
            && labels
                == [
                    ("call".into(), "load".into()),
                    ("store".into(), "memory".into()),
                ]
            && matches!(value, DebugValue::Histogram(ref v) if v.len() == 1)
    });
    assert!(timed, "store latency is recorded");
    assert_eq!(counter(&s, "rocket_sessions_loaded_total", &[]), 1);
    assert_eq!(counter(&s, "rocket_sessions_committed_total", &[]), 1);
    assert_eq!(store_calls(&s, "memory", "commit", "ok"), 1);
    assert_eq!(
        client.post("/destroy").dispatch().await.status(),
        Status::Ok
    );
    assert_eq!(counter(&s, "rocket_sessions_destroyed_total", &[]), 1);
    assert_eq!(store_calls(&s, "memory", "delete", "ok"), 1);
    assert_eq!(store_calls(&s, "memory", "load", "ok"), 2);

    // A session that outlives its absolute timeout, while touches (rolling, on a route
    // without a guard) keep its store copy alive, expires for that reason.
    assert_eq!(get_ok(&client, "/counter").await, "1");
    let reason = [("reason", "absolute_timeout")];
    let started = Instant::now();
    while counter(&s, "rocket_sessions_expired_total", &reason) == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "never expired");
        get_ok(&client, "/plain").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counter(&s, "rocket_sessions_expired_total", &reason), 1);

    // The sweep counts what it removes: a session of 100 ms's idle lifetime.
    let short = Client::tracked(rocket_with(
        figment().merge(("sessions.memory.sweep_interval", 0.05)),
        Some(
            Sessions::builder()
                .max_age(Duration::from_millis(100))
                .build(),
        ),
    ))
    .await
    .unwrap();
    get_ok(&short, "/counter").await;
    eventually("the sweep removes the expired session", || {
        counter(&s, "rocket_sessions_expired_total", &[("reason", "sweep")]) >= 1
    })
    .await;

    // Revoked sessions: alice signs out her other device.
    let devices = Client::untracked(rocket_with(figment(), Some(Sessions::fairing())))
        .await
        .unwrap();
    let laptop = log_in_as(&devices, "alice").await;
    let _phone = log_in_as(&devices, "alice").await;
    let response = devices
        .post("/logout/others")
        .cookie(laptop)
        .dispatch()
        .await;
    assert_eq!(response.into_string().await.as_deref(), Some("1"));
    assert_eq!(counter(&s, "rocket_sessions_revoked_total", &[]), 1);

    // A store given in code is "custom"; a store that is down is counted as such.
    let down = Counting::down();
    let client = Client::tracked(rocket_with(
        figment(),
        Some(Sessions::builder().store(down).build()),
    ))
    .await
    .unwrap();
    let response = client.get("/counter").dispatch().await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert_eq!(store_calls(&s, "custom", "create", "unavailable"), 1);

    // No label carries anything but the names above.
    for (name, labels, _) in metrics(&s) {
        assert!(name.starts_with("rocket_sessions_"), "{name}");
        for (key, value) in labels {
            assert!(
                ["store", "call", "outcome", "reason"].contains(&key.as_str()) && value.len() < 20,
                "{name}: {key}={value}"
            );
        }
    }
}
