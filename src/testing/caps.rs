//! The rule of stores that keep a cap (opt in: a store without one passes the contract
//! without it): **a stranger only ever displaces strangers.** See [`check_caps`].

use std::future::Future;
use std::time::Duration;

use rocket::futures::future::join_all;

use super::Store;
use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::reserved::{INDEX, USER};
use crate::record::{Changes, SessionRecord};
use crate::store::CreateOutcome;

const LONG: Duration = Duration::from_secs(600);
/// Shorter than `LONG`: a session every other one outlives.
const SHORT: Duration = Duration::from_secs(60);

fn record(entries: &[(&str, &str)], ttl: Duration) -> SessionRecord {
    let mut record = SessionRecord::new(ttl);
    for (key, json) in entries {
        record.insert(*key, *json);
    }
    record
}

/// Creates `n` sessions holding `entries`, a few at once; the ids of those created. A
/// stranger's session may be refused ([`StoreError::Full`]); any other failure fails the
/// rule.
async fn create_many(
    store: &Store,
    n: usize,
    entries: &[(&str, &str)],
    ttl: Duration,
) -> Vec<SessionId> {
    let mut created = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let made = join_all(chunk.iter().map(|_| async {
            let id = SessionId::generate();
            match store.create(&id, &record(entries, ttl)).await {
                Ok(CreateOutcome::Created) => Some(id),
                Ok(CreateOutcome::Taken) => panic!("a fresh id was taken"),
                Err(StoreError::Full) => None,
                Err(e) => panic!("the store failed: {e}"),
            }
        }))
        .await;
        created.extend(made.into_iter().flatten());
    }
    created
}

/// How many of `ids` the store still holds.
async fn live(store: &Store, ids: &[SessionId]) -> usize {
    let loads = join_all(ids.iter().map(|id| store.load(id))).await;
    loads
        .into_iter()
        .filter(|loaded| matches!(loaded, Ok(Some(_))))
        .count()
}

/// Runs the rule against stores from `make`, which builds a fresh, empty store whose cap
/// is the number it is given (`max_sessions`), allowed to hold `slack` sessions past it
/// (what the store documents: creations in flight, a cap split into parts that each round
/// up).
///
/// The rule, on a cap of 20:
/// - signed-in sessions and users' lists survive a flood of ten times the cap of new
///   anonymous sessions, each grown after its creation; new anonymous sessions may be
///   refused ([`StoreError::Full`]), never let in by ending a signed-in session;
/// - lists are outside the cap: three times the cap of them leave room for every sign-in;
/// - the anonymous sessions left, with the signed-in ones, hold at most the cap plus
///   `slack`;
/// - a sign-in is never refused: sign-ins past the cap displace signed-in sessions, and
///   the store then holds at most the cap plus `slack`.
///
/// # Panics
///
/// When the store breaks the rule.
///
/// # Example
///
/// ```
/// # rocket::async_test(async {
/// use std::sync::Arc;
/// use rocket_server_sessions::{testing, config::MemoryConfig, store::MemoryStore};
///
/// testing::check_caps(0, |cap| async move {
///     let mut config = MemoryConfig::default();
///     config.max_sessions = cap;
///     Arc::new(MemoryStore::new(config)) as testing::Store
/// })
/// .await;
/// # });
/// ```
pub async fn check_caps<F, Fut>(slack: usize, make: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Store>,
{
    const CAP: usize = 20;
    let store = make(CAP).await;

    // Half the cap signed in, and three times the cap of lists.
    let users = create_many(&store, CAP / 2, &[(USER, "\"alice\"")], LONG).await;
    assert_eq!(
        users.len(),
        CAP / 2,
        "a sign-in was refused in a store with room"
    );
    let lists = create_many(&store, 3 * CAP, &[(INDEX, "\"alice\"")], LONG).await;
    assert_eq!(lists.len(), 3 * CAP, "a list was refused");

    // A flood of strangers, each growing its session after creating it.
    let strangers = create_many(&store, 10 * CAP, &[("cart", "[]")], LONG).await;
    let mut grow = Changes::default();
    grow.set("cart", format!("[\"{}\"]", "x".repeat(4096)));
    for id in &strangers {
        let _ = store.commit(id, &grow).await.expect("the store answers");
    }
    assert_eq!(
        live(&store, &users).await,
        users.len(),
        "a flood of strangers ended a signed-in session"
    );
    assert_eq!(
        live(&store, &lists).await,
        lists.len(),
        "a flood of strangers ended a list"
    );
    let held = live(&store, &strangers).await + users.len();
    assert!(
        held <= CAP + slack,
        "{held} sessions over a cap of {CAP} (slack {slack})"
    );

    // Sign-ins fill the store past its cap: never refused, and the cap holds.
    let more = create_many(&store, 2 * CAP, &[(USER, "\"bob\"")], LONG).await;
    assert_eq!(more.len(), 2 * CAP, "a sign-in was refused");
    let signed_in = live(&store, &users).await + live(&store, &more).await;
    let anonymous = live(&store, &strangers).await;
    assert!(
        signed_in + anonymous <= CAP + slack,
        "{signed_in} signed-in and {anonymous} anonymous sessions over a cap of {CAP} (slack {slack})"
    );
    assert!(
        live(&store, &more[more.len() - 1..]).await == 1,
        "the latest sign-in is there"
    );
    assert_eq!(
        live(&store, &lists).await,
        lists.len(),
        "a sign-in ended a list"
    );

    // A sign-in into the full store that lives shorter than every other session is still
    // never its own victim (it would be answered `Created`, and be gone).
    let short = create_many(&store, 1, &[(USER, "\"carol\"")], SHORT).await;
    assert_eq!(short.len(), 1, "a sign-in was refused");
    assert_eq!(live(&store, &short).await, 1, "a sign-in evicted itself");
}
