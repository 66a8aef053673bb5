//! The rules of the store contract, one `async fn` each, for a store made for that rule
//! alone.

use std::future::Future;
use std::time::{Duration, Instant};

use rocket::futures::future::join_all;

use super::Store;

mod users;
use std::sync::Arc;

use crate::error::StoreError;
use crate::id::{label, SessionId, Signer};
use crate::record::{Changes, SessionRecord};
use crate::store::Sealed;
use crate::store::{CommitOutcome, CreateOutcome, DeleteOutcome};
pub use users::*;

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

/// An attempt of a timing rule that the machine stalled through: a check that a session
/// is still alive, run only once its lifetime could have passed, proves nothing.
struct Stalled;

/// `Err(Stalled)` once `lifetime` may have passed since `since`, taken before the call
/// that gave a session that lifetime: what a call answered until then counts. (Stores
/// keep expiry times in milliseconds: the margin covers their rounding.)
fn within(since: Instant, lifetime: Duration) -> Result<(), Stalled> {
    match since.elapsed() + Duration::from_millis(10) < lifetime {
        true => Ok(()),
        false => Err(Stalled),
    }
}

/// Runs a timing rule's `attempt` until one is not [`Stalled`], five times at most: a
/// busy machine that stalls a call for longer than [`SHORT`] makes an attempt prove
/// nothing, rather than fail the rule. What an attempt asserts still fails it at once.
async fn timed<F, Fut>(mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Stalled>>,
{
    for _ in 0..5 {
        if attempt().await.is_ok() {
            return;
        }
    }
    panic!("the machine stalled past {SHORT:?} in each of five attempts");
}

async fn created(store: &Store, entries: &[(&str, &str)], ttl: Duration) -> SessionId {
    let id = SessionId::generate();
    assert_eq!(
        store.create(&id, &record(entries, ttl)).await.unwrap(),
        CreateOutcome::Created,
        "create a new id"
    );
    id
}

async fn loaded(store: &Store, id: &SessionId) -> Option<SessionRecord> {
    store.load(id).await.expect("the store answers")
}

/// Loading an id the store never had gives `None`.
pub async fn load_of_an_unknown_id_is_none(store: Store) {
    assert_eq!(loaded(&store, &SessionId::generate()).await, None);
}

/// A created session loads back with its entries and lifetime.
pub async fn create_then_load_returns_the_record(store: Store) {
    let entries = [
        ("cart", r#"["apple","pear"]"#),
        ("visits", r#"{"count":3}"#),
    ];
    let id = created(&store, &entries, LONG).await;
    assert_eq!(loaded(&store, &id).await, Some(record(&entries, LONG)));
}

/// A commit or delete on one session leaves the others as they were.
pub async fn sessions_are_isolated(store: Store) {
    let a = created(&store, &[("k", "1")], LONG).await;
    let b = created(&store, &[("k", "2")], LONG).await;
    let _ = store.commit(&a, &set(&[("k", "10")])).await.unwrap();
    let _ = store.delete(&a).await.unwrap();
    assert_eq!(loaded(&store, &b).await, Some(record(&[("k", "2")], LONG)));
}

/// `create` on the id of a live session is `Taken` and changes nothing.
pub async fn create_never_overwrites_a_live_session(store: Store) {
    let id = created(&store, &[("k", "1")], LONG).await;
    let taken = store.create(&id, &record(&[("k", "2")], LONG)).await;
    assert_eq!(taken.unwrap(), CreateOutcome::Taken);
    assert_eq!(loaded(&store, &id).await, Some(record(&[("k", "1")], LONG)));
}

/// `create` on the id of an expired session stores the new one.
pub async fn create_may_reuse_an_expired_id(store: Store) {
    let id = created(&store, &[("old", "1")], SHORT).await;
    sleep(SHORT * 2).await;
    let created = store.create(&id, &record(&[("new", "2")], LONG)).await;
    assert_eq!(created.unwrap(), CreateOutcome::Created);
    assert_eq!(
        loaded(&store, &id).await,
        Some(record(&[("new", "2")], LONG))
    );
}

/// A commit sets and removes the entries it names, and keeps the others.
pub async fn commit_sets_and_removes_only_the_changed_entries(store: Store) {
    let id = created(&store, &[("a", "1"), ("b", "2"), ("c", "3")], LONG).await;
    let mut changes = set(&[("a", "10"), ("d", "4")]);
    changes.remove("b");
    changes.remove("never-there");
    assert_eq!(
        store.commit(&id, &changes).await.unwrap(),
        CommitOutcome::Applied
    );
    let expected = record(&[("a", "10"), ("c", "3"), ("d", "4")], LONG);
    assert_eq!(loaded(&store, &id).await, Some(expected));
}

/// Two commits to different entries of a session both keep their change.
pub async fn commits_to_different_entries_both_survive(store: Store) {
    let id = created(&store, &[("cart", "[]"), ("user", "null")], LONG).await;
    // Two requests loaded the same session; each commits only its own change.
    let cart = store.commit(&id, &set(&[("cart", r#"["apple"]"#)])).await;
    assert_eq!(cart.unwrap(), CommitOutcome::Applied);
    let user = store.commit(&id, &set(&[("user", r#""alice""#)])).await;
    assert_eq!(user.unwrap(), CommitOutcome::Applied);
    let expected = record(&[("cart", r#"["apple"]"#), ("user", r#""alice""#)], LONG);
    assert_eq!(loaded(&store, &id).await, Some(expected));
}

/// Forty commits in flight at once, each to its own entry, all keep their change.
pub async fn concurrent_commits_to_different_entries_all_survive(store: Store) {
    let id = created(&store, &[], LONG).await;
    let keys: Vec<String> = (0..40).map(|i| format!("entry-{i}")).collect();
    let commits = keys.iter().map(|key| {
        let store = store.clone();
        let id = id.clone();
        let changes = set(&[(key.as_str(), "true")]);
        async move { store.commit(&id, &changes).await.unwrap() }
    });
    let outcomes = join_all(commits).await;
    assert!(outcomes.iter().all(|o| *o == CommitOutcome::Applied));

    let record = loaded(&store, &id).await.unwrap();
    for key in &keys {
        assert_eq!(record.get(key), Some("true"), "{key} was lost");
    }
}

/// Loads, commits and deletes of many sessions in flight at once each get their own answer.
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
                1 => assert_eq!(
                    store.commit(id, &set(&[("w", value)])).await.unwrap(),
                    CommitOutcome::Applied
                ),
                2 => assert_eq!(loaded(&store, &SessionId::generate()).await, None),
                _ => assert_eq!(
                    store.delete(id).await.unwrap(),
                    DeleteOutcome::Deleted,
                    "it held the session"
                ),
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

/// A commit to a session that does not exist is `Gone` and stores nothing.
pub async fn commit_to_a_missing_session_writes_nothing(store: Store) {
    let id = SessionId::generate();
    assert_eq!(
        store.commit(&id, &set(&[("k", "1")])).await.unwrap(),
        CommitOutcome::Gone
    );
    let mut ttl_only = Changes::default();
    ttl_only.reset_ttl(LONG);
    assert_eq!(
        store.commit(&id, &ttl_only).await.unwrap(),
        CommitOutcome::Gone
    );
    assert_eq!(loaded(&store, &id).await, None);
}

/// A commit or touch after a delete never brings the session back.
pub async fn commit_after_delete_does_not_resurrect(store: Store) {
    let id = created(&store, &[("user", r#""alice""#)], LONG).await;
    assert_eq!(store.delete(&id).await.unwrap(), DeleteOutcome::Deleted);
    assert_eq!(
        store.commit(&id, &set(&[("cart", "[1]")])).await.unwrap(),
        CommitOutcome::Gone
    );
    assert_eq!(store.touch(&id).await.unwrap(), None);
    assert_eq!(loaded(&store, &id).await, None);
}

/// An expired session is absent to `load`, `commit` and `touch`.
pub async fn an_expired_session_is_absent_everywhere(store: Store) {
    let id = created(&store, &[("k", "1")], SHORT).await;
    sleep(SHORT * 2).await;
    assert_eq!(loaded(&store, &id).await, None);
    assert_eq!(
        store.commit(&id, &set(&[("k", "2")])).await.unwrap(),
        CommitOutcome::Gone
    );
    assert_eq!(store.touch(&id).await.unwrap(), None);
    assert_eq!(loaded(&store, &id).await, None);
}

/// A commit that does not reset the lifetime keeps the expiry as it was.
pub async fn commit_without_ttl_keeps_the_expiry(store: Store) {
    timed(|| async {
        let start = Instant::now();
        let id = created(&store, &[("k", "1")], SHORT).await;
        sleep(SHORT / 2).await;
        let outcome = store.commit(&id, &set(&[("k", "2")])).await.unwrap();
        within(start, SHORT)?;
        assert_eq!(outcome, CommitOutcome::Applied);
        sleep(SHORT).await;
        assert_eq!(
            loaded(&store, &id).await,
            None,
            "a data write does not extend the session"
        );
        Ok(())
    })
    .await;
}

/// A commit that resets the lifetime moves the expiry and keeps the new lifetime.
pub async fn commit_with_ttl_resets_the_expiry_and_lifetime(store: Store) {
    timed(|| async {
        let start = Instant::now();
        let id = created(&store, &[("k", "1")], SHORT).await;
        let mut changes = set(&[("k", "2")]);
        changes.reset_ttl(LONG);
        let outcome = store.commit(&id, &changes).await.unwrap();
        within(start, SHORT)?;
        assert_eq!(outcome, CommitOutcome::Applied);
        sleep(SHORT * 2).await;
        assert_eq!(loaded(&store, &id).await, Some(record(&[("k", "2")], LONG)));
        assert_eq!(
            store.touch(&id).await.unwrap().map(|r| r.ttl()),
            Some(LONG),
            "touch uses the new lifetime"
        );
        Ok(())
    })
    .await;
}

/// `touch` extends the expiry by the lifetime and never rewrites data.
pub async fn touch_extends_the_expiry_without_rewriting_data(store: Store) {
    timed(|| async {
        let start = Instant::now();
        let id = created(&store, &[("k", "1")], SHORT).await;
        // Another request's commit lands; a touch must not undo it.
        let outcome = store.commit(&id, &set(&[("k", "2")])).await.unwrap();
        sleep(SHORT / 2).await;
        let touched_at = Instant::now();
        let touched = store.touch(&id).await.unwrap();
        within(start, SHORT)?;
        assert_eq!(outcome, CommitOutcome::Applied);
        assert_eq!(
            touched,
            Some(record(&[("k", "2")], SHORT)),
            "the session as it is, with the commit's change"
        );
        sleep(SHORT * 3 / 4).await;
        let after = loaded(&store, &id).await;
        within(touched_at, SHORT)?;
        assert_eq!(
            after,
            Some(record(&[("k", "2")], SHORT)),
            "alive past its first expiry"
        );
        sleep(SHORT).await;
        assert_eq!(
            loaded(&store, &id).await,
            None,
            "and expires a lifetime after the touch"
        );
        Ok(())
    })
    .await;
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
        assert_eq!(committed.unwrap(), CommitOutcome::Applied);
        assert_eq!(touched.unwrap().map(|r| r.ttl()), Some(LONG));
        assert_eq!(
            loaded(&store, &id).await,
            Some(record(&[("k", &value)], LONG)),
            "round {i}: the touch rewrote what it read before the commit"
        );
    }
}

/// `delete` is `Deleted` for a held session and `Absent` after, or for an unknown id.
pub async fn delete_is_idempotent_and_says_whether_it_held_the_session(store: Store) {
    let id = created(&store, &[("k", "1")], LONG).await;
    assert_eq!(store.delete(&id).await.unwrap(), DeleteOutcome::Deleted);
    assert_eq!(
        store.delete(&id).await.unwrap(),
        DeleteOutcome::Absent,
        "already gone"
    );
    assert_eq!(
        store.delete(&SessionId::generate()).await.unwrap(),
        DeleteOutcome::Absent,
        "never there"
    );
    assert_eq!(loaded(&store, &id).await, None);
}

/// Entry values come back byte for byte: Unicode, escapes, nesting, 256 KiB.
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

/// Sealed at rest over this store (as the fairing seals every store but the memory store):
/// the store holds no value in the clear, only the entries' names, so it still counts a
/// signed-in session as one; what it gives back opens as written; a value moved to
/// another session's record, or planted in the clear, opens to nothing.
pub async fn sealed_at_rest_the_store_holds_no_value_in_the_clear(store: Store) {
    let keys = Arc::new(Signer::new(&["the kit's secret"], label::DATA).expect("a secret"));
    let sealed: Store = Arc::new(Sealed::new(store.clone(), keys, false));
    let entries = [
        ("$user", "\"alice-of-the-kit\""),
        ("cart", "[\"kit-apple\"]"),
    ];
    let id = created(&sealed, &entries, LONG).await;
    let other = created(&sealed, &[("cart", "[\"kit-pear\"]")], LONG).await;
    let at_rest = loaded(&store, &id).await.expect("the session");
    assert!(
        at_rest.is_authenticated(),
        "the store sees a signed-in session"
    );
    for (key, value) in at_rest.entries() {
        assert!(
            !value.contains("alice-of-the-kit") && !value.contains("kit-apple"),
            "{key} in the clear: {value}"
        );
    }
    assert_eq!(loaded(&sealed, &id).await, Some(record(&entries, LONG)));

    let theirs = loaded(&store, &other).await.expect("the session");
    let moved = theirs.get("cart").expect("a cart").to_string();
    let applied = store.commit(&id, &set(&[("cart", &moved)])).await.unwrap();
    assert_eq!(applied, CommitOutcome::Applied);
    let opened = loaded(&sealed, &id).await.expect("the session");
    assert_eq!(
        opened.get("cart"),
        None,
        "another session's value opens here"
    );
    let planted = set(&[("$user", "\"mallory\"")]);
    assert_eq!(
        store.commit(&id, &planted).await.unwrap(),
        CommitOutcome::Applied
    );
    let planted_in = sealed.load(&id).await;
    assert!(
        matches!(planted_in, Err(StoreError::Corrupt(_))),
        "a value planted in the clear lets one in: {planted_in:?}"
    );
}

/// A session with no entries is a live session, and stays one when its entries are removed.
pub async fn an_empty_record_is_a_live_session(store: Store) {
    let id = created(&store, &[], LONG).await;
    assert_eq!(loaded(&store, &id).await, Some(record(&[], LONG)));
    assert_eq!(
        store.commit(&id, &set(&[("k", "1")])).await.unwrap(),
        CommitOutcome::Applied
    );
    let mut changes = Changes::default();
    changes.remove("k");
    assert_eq!(
        store.commit(&id, &changes).await.unwrap(),
        CommitOutcome::Applied
    );
    assert_eq!(
        loaded(&store, &id).await,
        Some(record(&[], LONG)),
        "removing every entry keeps the session"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::error::StoreError;
    use crate::store::MemoryStore;
    use crate::store::SessionStore;

    /// A memory store whose first `stalls` touches take longer than [`SHORT`], as on a
    /// busy machine; when `broken`, a touch that leaves the expiry as it was.
    #[derive(Default)]
    struct Stalling {
        store: MemoryStore,
        stalls: AtomicUsize,
        broken: bool,
    }

    #[rocket::async_trait]
    impl SessionStore for Stalling {
        async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
            self.store.load(id).await
        }

        async fn create(
            &self,
            id: &SessionId,
            record: &SessionRecord,
        ) -> Result<CreateOutcome, StoreError> {
            self.store.create(id, record).await
        }

        async fn commit(
            &self,
            id: &SessionId,
            changes: &Changes,
        ) -> Result<CommitOutcome, StoreError> {
            self.store.commit(id, changes).await
        }

        async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
            let stall = self
                .stalls
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if stall.is_ok() {
                sleep(SHORT * 2).await;
            }
            match self.broken {
                true => self.store.load(id).await,
                false => self.store.touch(id).await,
            }
        }

        async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
            self.store.delete(id).await
        }
    }

    /// Whether the touch rule passes on `store`.
    async fn touch_rule_passes(store: Stalling) -> bool {
        let rule = touch_extends_the_expiry_without_rewriting_data(Arc::new(store));
        tokio::spawn(rule).await.is_ok()
    }

    #[rocket::async_test]
    async fn a_stall_past_the_lifetime_tries_the_rule_again() {
        let stalling = Stalling {
            stalls: AtomicUsize::new(2),
            ..Stalling::default()
        };
        assert!(touch_rule_passes(stalling).await);
    }

    #[rocket::async_test]
    async fn a_store_that_breaks_the_rule_still_fails_it_stalled_or_not() {
        for stalls in [0, 2] {
            let broken = Stalling {
                stalls: AtomicUsize::new(stalls),
                broken: true,
                ..Stalling::default()
            };
            assert!(!touch_rule_passes(broken).await, "{stalls} stalls");
        }
    }
}
