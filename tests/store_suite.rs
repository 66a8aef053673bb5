//! THE store conformance suite: every rule of the `SessionStore` contract, run against
//! every store. A store is done when it passes. Each rule is a plain async function; the
//! macro at the end only lists them once per store, so a failure names rule and store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rocket::futures::future::join_all;
use rocket_server_sessions::{Changes, MemoryStore, SessionId, SessionRecord, SessionStore};

type Store = Arc<dyn SessionStore>;

const LONG: Duration = Duration::from_secs(600);
/// Short enough to expire within a test, long enough to outlast a slow round trip.
const SHORT: Duration = Duration::from_millis(400);

fn record(entries: &[(&str, &str)], ttl: Duration) -> SessionRecord {
    let mut record = SessionRecord::new(ttl);
    for (key, json) in entries {
        record.insert(*key, *json);
    }
    record
}

fn set(entries: &[(&str, &str)]) -> Changes {
    let mut changes = Changes::default();
    for (key, json) in entries {
        changes.set(*key, *json);
    }
    changes
}

async fn sleep(duration: Duration) {
    tokio::time::sleep(duration).await;
}

async fn created(store: &Store, entries: &[(&str, &str)], ttl: Duration) -> SessionId {
    let id = SessionId::generate();
    assert!(
        store.create(&id, &record(entries, ttl)).await.unwrap(),
        "create a new id"
    );
    id
}

async fn loaded(store: &Store, id: &SessionId) -> Option<SessionRecord> {
    store.load(id).await.expect("the store answers")
}

pub async fn load_of_an_unknown_id_is_none(store: Store) {
    assert_eq!(loaded(&store, &SessionId::generate()).await, None);
}

pub async fn create_then_load_returns_the_record(store: Store) {
    let entries = [
        ("cart", r#"["apple","pear"]"#),
        ("visits", r#"{"count":3}"#),
    ];
    let id = created(&store, &entries, LONG).await;
    assert_eq!(loaded(&store, &id).await, Some(record(&entries, LONG)));
}

pub async fn sessions_are_isolated(store: Store) {
    let a = created(&store, &[("k", "1")], LONG).await;
    let b = created(&store, &[("k", "2")], LONG).await;
    store.commit(&a, &set(&[("k", "10")])).await.unwrap();
    store.delete(&a).await.unwrap();
    assert_eq!(loaded(&store, &b).await, Some(record(&[("k", "2")], LONG)));
}

pub async fn create_never_overwrites_a_live_session(store: Store) {
    let id = created(&store, &[("k", "1")], LONG).await;
    assert!(!store
        .create(&id, &record(&[("k", "2")], LONG))
        .await
        .unwrap());
    assert_eq!(loaded(&store, &id).await, Some(record(&[("k", "1")], LONG)));
}

pub async fn create_may_reuse_an_expired_id(store: Store) {
    let id = created(&store, &[("old", "1")], SHORT).await;
    sleep(SHORT * 2).await;
    assert!(store
        .create(&id, &record(&[("new", "2")], LONG))
        .await
        .unwrap());
    assert_eq!(
        loaded(&store, &id).await,
        Some(record(&[("new", "2")], LONG))
    );
}

pub async fn commit_sets_and_removes_only_the_changed_entries(store: Store) {
    let id = created(&store, &[("a", "1"), ("b", "2"), ("c", "3")], LONG).await;
    let mut changes = set(&[("a", "10"), ("d", "4")]);
    changes.remove("b");
    changes.remove("never-there");
    assert!(store.commit(&id, &changes).await.unwrap());
    let expected = record(&[("a", "10"), ("c", "3"), ("d", "4")], LONG);
    assert_eq!(loaded(&store, &id).await, Some(expected));
}

pub async fn commits_to_different_entries_both_survive(store: Store) {
    let id = created(&store, &[("cart", "[]"), ("user", "null")], LONG).await;
    // Two requests loaded the same session; each commits only its own change.
    assert!(store
        .commit(&id, &set(&[("cart", r#"["apple"]"#)]))
        .await
        .unwrap());
    assert!(store
        .commit(&id, &set(&[("user", r#""alice""#)]))
        .await
        .unwrap());
    let expected = record(&[("cart", r#"["apple"]"#), ("user", r#""alice""#)], LONG);
    assert_eq!(loaded(&store, &id).await, Some(expected));
}

pub async fn concurrent_commits_to_different_entries_all_survive(store: Store) {
    let id = created(&store, &[], LONG).await;
    let keys: Vec<String> = (0..40).map(|i| format!("entry-{i}")).collect();
    let commits = keys.iter().map(|key| {
        let store = store.clone();
        let id = id.clone();
        let changes = set(&[(key.as_str(), "true")]);
        async move { store.commit(&id, &changes).await.unwrap() }
    });
    assert!(join_all(commits).await.into_iter().all(|alive| alive));

    let record = loaded(&store, &id).await.unwrap();
    for key in &keys {
        assert_eq!(record.get(key), Some("true"), "{key} was lost");
    }
}

pub async fn concurrent_calls_on_many_sessions_each_get_their_own_answer(store: Store) {
    let values: Vec<String> = (0..64).map(|i| format!("[{i}]")).collect();
    let creates = values.iter().map(|value| {
        let store = store.clone();
        async move { created(&store, &[("v", value)], LONG).await }
    });
    let ids = join_all(creates).await;

    // Loads, commits, loads of unknown ids and deletes, all in flight at once.
    let mixed = ids.iter().zip(&values).enumerate().map(|(i, (id, value))| {
        let store = store.clone();
        async move {
            match i % 4 {
                0 => assert_eq!(
                    loaded(&store, id).await.unwrap().get("v"),
                    Some(value.as_str())
                ),
                1 => assert!(store.commit(id, &set(&[("w", value)])).await.unwrap()),
                2 => assert_eq!(loaded(&store, &SessionId::generate()).await, None),
                _ => assert!(store.delete(id).await.unwrap(), "it held the session"),
            }
        }
    });
    join_all(mixed).await;

    for (i, (id, value)) in ids.iter().zip(&values).enumerate() {
        let record = loaded(&store, id).await;
        match i % 4 {
            3 => assert_eq!(record, None, "session {i} was deleted"),
            1 => {
                let expected = [("v", value.as_str()), ("w", value.as_str())];
                assert_eq!(record.unwrap().entries().collect::<Vec<_>>(), expected);
            }
            _ => assert_eq!(
                record.unwrap().get("v"),
                Some(value.as_str()),
                "session {i}"
            ),
        }
    }
}

pub async fn commit_to_a_missing_session_writes_nothing(store: Store) {
    let id = SessionId::generate();
    assert!(!store.commit(&id, &set(&[("k", "1")])).await.unwrap());
    let mut ttl_only = Changes::default();
    ttl_only.reset_ttl(LONG);
    assert!(!store.commit(&id, &ttl_only).await.unwrap());
    assert_eq!(loaded(&store, &id).await, None);
}

pub async fn commit_after_delete_does_not_resurrect(store: Store) {
    let id = created(&store, &[("user", r#""alice""#)], LONG).await;
    store.delete(&id).await.unwrap();
    assert!(!store.commit(&id, &set(&[("cart", "[1]")])).await.unwrap());
    assert_eq!(store.touch(&id).await.unwrap(), None);
    assert_eq!(loaded(&store, &id).await, None);
}

pub async fn an_expired_session_is_absent_everywhere(store: Store) {
    let id = created(&store, &[("k", "1")], SHORT).await;
    sleep(SHORT * 2).await;
    assert_eq!(loaded(&store, &id).await, None);
    assert!(!store.commit(&id, &set(&[("k", "2")])).await.unwrap());
    assert_eq!(store.touch(&id).await.unwrap(), None);
    assert_eq!(loaded(&store, &id).await, None);
}

pub async fn commit_without_ttl_keeps_the_expiry(store: Store) {
    let id = created(&store, &[("k", "1")], SHORT).await;
    sleep(SHORT / 2).await;
    assert!(store.commit(&id, &set(&[("k", "2")])).await.unwrap());
    sleep(SHORT).await;
    assert_eq!(
        loaded(&store, &id).await,
        None,
        "a data write does not extend the session"
    );
}

pub async fn commit_with_ttl_resets_the_expiry_and_lifetime(store: Store) {
    let id = created(&store, &[("k", "1")], SHORT).await;
    let mut changes = set(&[("k", "2")]);
    changes.reset_ttl(LONG);
    assert!(store.commit(&id, &changes).await.unwrap());
    sleep(SHORT * 2).await;
    assert_eq!(loaded(&store, &id).await, Some(record(&[("k", "2")], LONG)));
    assert_eq!(
        store.touch(&id).await.unwrap(),
        Some(LONG),
        "touch uses the new lifetime"
    );
}

pub async fn touch_extends_the_expiry_without_rewriting_data(store: Store) {
    let id = created(&store, &[("k", "1")], SHORT).await;
    // Another request's commit lands; a touch must not undo it.
    assert!(store.commit(&id, &set(&[("k", "2")])).await.unwrap());
    sleep(SHORT / 2).await;
    assert_eq!(store.touch(&id).await.unwrap(), Some(SHORT));
    sleep(SHORT * 3 / 4).await;
    assert_eq!(
        loaded(&store, &id).await,
        Some(record(&[("k", "2")], SHORT)),
        "alive past its first expiry"
    );
    sleep(SHORT).await;
    assert_eq!(
        loaded(&store, &id).await,
        None,
        "and expires a lifetime after the touch"
    );
}

/// A commit and a touch in flight together: the touch must not write back what it read
/// before the commit. Only a store whose calls await in between (the file store) can
/// interleave them here; for the others (the memory store finishes each call at once,
/// Redis runs one pipeline's commands in turn) it checks the outcome alone.
pub async fn touches_racing_commits_undo_none_of_them(store: Store) {
    let id = created(&store, &[("k", "0")], LONG).await;
    for i in 1..=20 {
        let value = i.to_string();
        let changes = set(&[("k", &value)]);
        let (committed, touched) =
            rocket::tokio::join!(store.commit(&id, &changes), store.touch(&id));
        assert!(committed.unwrap());
        assert_eq!(touched.unwrap(), Some(LONG));
        assert_eq!(
            loaded(&store, &id).await,
            Some(record(&[("k", &value)], LONG)),
            "round {i}: the touch rewrote what it read before the commit"
        );
    }
}

pub async fn delete_is_idempotent_and_says_whether_it_held_the_session(store: Store) {
    let id = created(&store, &[("k", "1")], LONG).await;
    assert!(store.delete(&id).await.unwrap(), "held");
    assert!(!store.delete(&id).await.unwrap(), "already gone");
    assert!(
        !store.delete(&SessionId::generate()).await.unwrap(),
        "never there"
    );
    assert_eq!(loaded(&store, &id).await, None);
}

pub async fn values_round_trip_exactly(store: Store) {
    let big = format!("\"{}\"", "x".repeat(256 * 1024));
    let entries = [
        ("unicode", "\"żółw 🐢 \\u0000 \\\" \\\\\""),
        ("empty", "\"\""),
        ("nested", r#"{"a":[1,2,{"b":null}],"c":1.5e300}"#),
        ("big", big.as_str()),
        ("key with spaces/and:colons", "true"),
    ];
    let id = created(&store, &entries, LONG).await;
    assert_eq!(loaded(&store, &id).await, Some(record(&entries, LONG)));
}

pub async fn an_empty_record_is_a_live_session(store: Store) {
    let id = created(&store, &[], LONG).await;
    assert_eq!(loaded(&store, &id).await, Some(record(&[], LONG)));
    assert!(store.commit(&id, &set(&[("k", "1")])).await.unwrap());
    let mut changes = Changes::default();
    changes.remove("k");
    assert!(store.commit(&id, &changes).await.unwrap());
    assert_eq!(
        loaded(&store, &id).await,
        Some(record(&[], LONG)),
        "removing every entry keeps the session"
    );
}

/// Instantiates every rule for one store: `store_suite!(name, async { Some(store) })`,
/// where `None` means the store's server is not configured (outside CI only: under
/// `CI=true` that fails instead).
macro_rules! store_suite {
    ($name:ident, $make:expr) => {
        store_suite!(@rules $name, $make;
            load_of_an_unknown_id_is_none,
            create_then_load_returns_the_record,
            sessions_are_isolated,
            create_never_overwrites_a_live_session,
            create_may_reuse_an_expired_id,
            commit_sets_and_removes_only_the_changed_entries,
            commits_to_different_entries_both_survive,
            concurrent_commits_to_different_entries_all_survive,
            concurrent_calls_on_many_sessions_each_get_their_own_answer,
            commit_to_a_missing_session_writes_nothing,
            commit_after_delete_does_not_resurrect,
            an_expired_session_is_absent_everywhere,
            commit_without_ttl_keeps_the_expiry,
            commit_with_ttl_resets_the_expiry_and_lifetime,
            touch_extends_the_expiry_without_rewriting_data,
            touches_racing_commits_undo_none_of_them,
            delete_is_idempotent_and_says_whether_it_held_the_session,
            values_round_trip_exactly,
            an_empty_record_is_a_live_session,
        );
    };
    (@rules $name:ident, $make:expr; $($rule:ident),* $(,)?) => {
        mod $name {
            use super::*;
            $(
                #[rocket::async_test]
                async fn $rule() {
                    let Some(store): Option<super::Store> = $make.await else { return };
                    super::$rule(store).await;
                }
            )*
        }
    };
}

store_suite!(memory, async {
    Some(Arc::new(MemoryStore::default()) as Store)
});

#[cfg(feature = "file")]
store_suite!(file, async {
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
store_suite!(redis, common::redis::standalone_store());

#[cfg(feature = "redis")]
store_suite!(redis_cluster, common::redis::cluster_store());

#[cfg(feature = "redis")]
store_suite!(valkey, common::redis::valkey_store());
