//! The rules of a user's list of sessions ("sign out everywhere"), which the crate keeps
//! in the store through the store contract alone: a store that keeps the contract keeps
//! these.

use std::time::Duration;

use rocket::futures::future::join_all;

use super::{created, loaded, sleep, timed, within, LONG, SHORT};
use crate::id::SessionId;
use crate::keys::UserKeys;
use crate::record::reserved::USER;
use crate::store::users::Users;
use crate::testing::Store;
use crate::time::unix_millis;
use std::time::Instant;

/// A user of this run alone (as the JSON of its `$user` entry): a store that keeps data
/// between runs holds no list of theirs from an earlier one.
fn user() -> String {
    format!("\"user-{}\"", &SessionId::generate().to_string()[..12])
}

fn keys() -> UserKeys {
    UserKeys::new(&["the store test kit's secret, 32 bytes or more"]).expect("a secret")
}

/// A session of `user` that lives `ttl`, on `user`'s list as a log-in puts it there.
async fn logged_in(store: &Store, keys: &UserKeys, user: &str, ttl: Duration) -> SessionId {
    let id = created(store, &[(USER, user)], ttl).await;
    let users = Users::new(store.as_ref(), keys, None);
    users
        .add(user, &id, None, unix_millis(), ttl)
        .await
        .expect("the store answers");
    id
}

/// The handles of `user`'s listed sessions, sorted.
async fn listed(store: &Store, keys: &UserKeys, user: &str) -> Vec<String> {
    let users = Users::new(store.as_ref(), keys, None);
    let sessions = users.sessions(user, None).await.expect("the store answers");
    let mut handles: Vec<String> = sessions.iter().map(|s| s.public_id().to_string()).collect();
    handles.sort();
    handles
}

/// The handles of `ids`, sorted.
fn handles(ids: &[&SessionId]) -> Vec<String> {
    let mut handles: Vec<String> = ids.iter().map(|id| id.public_id()).collect();
    handles.sort();
    handles
}

/// A log-in puts the session on its user's list, and on no one else's; a log-out takes it
/// off.
pub async fn a_log_in_joins_its_users_list_and_a_log_out_leaves_it(store: Store) {
    let keys = keys();
    let (alice, bob) = (user(), user());
    let (alice, bob) = (alice.as_str(), bob.as_str());
    let a = logged_in(&store, &keys, alice, LONG).await;
    assert_eq!(listed(&store, &keys, alice).await, [a.public_id()]);
    let b = logged_in(&store, &keys, alice, LONG).await;
    assert_eq!(listed(&store, &keys, alice).await, handles(&[&a, &b]));
    assert!(listed(&store, &keys, bob).await.is_empty());

    // Taken off by the log-out itself, not by a later prune: its session still lives.
    let users = Users::new(store.as_ref(), &keys, None);
    users.remove(alice, &a).await.unwrap();
    assert_eq!(listed(&store, &keys, alice).await, [b.public_id()]);
    assert!(loaded(&store, &a).await.is_some());
}

/// A session that expired leaves its user's list, which keeps no entry for it.
pub async fn a_users_list_drops_sessions_that_expired(store: Store) {
    timed(|| async {
        let keys = keys();
        let alice = user();
        let alice = alice.as_str();
        let start = Instant::now();
        let short = logged_in(&store, &keys, alice, SHORT).await;
        let long = logged_in(&store, &keys, alice, LONG).await;
        let both = listed(&store, &keys, alice).await.len();
        within(start, SHORT)?;
        assert_eq!(both, 2);
        // Until the store no longer holds the short session: its expiry, however slow
        // the machine.
        let deadline = Instant::now() + SHORT + Duration::from_secs(10);
        while loaded(&store, &short).await.is_some() {
            assert!(Instant::now() < deadline, "the short session never expired");
            sleep(Duration::from_millis(20)).await;
        }

        assert_eq!(listed(&store, &keys, alice).await, [long.public_id()]);
        let index = &keys.index.derive_ids(alice.as_bytes())[0];
        let list = loaded(&store, index).await.expect("the list is there");
        assert_eq!(
            list.get(&short.public_id()),
            None,
            "the expired session is off the list"
        );
        assert!(list.get(&long.public_id()).is_some());
        Ok(())
    })
    .await;
}

/// Revoking every session of a user but one leaves none of the others usable; revoking
/// all leaves none.
pub async fn revoking_all_leaves_no_session_of_the_user_usable(store: Store) {
    let keys = keys();
    let (alice, bob) = (user(), user());
    let (alice, bob) = (alice.as_str(), bob.as_str());
    let users = Users::new(store.as_ref(), &keys, None);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(logged_in(&store, &keys, alice, LONG).await);
    }
    let his = logged_in(&store, &keys, bob, LONG).await;

    assert_eq!(users.revoke_all(alice, Some(&ids[0])).await.unwrap(), 2);
    assert!(
        loaded(&store, &ids[0]).await.is_some(),
        "the kept session lives"
    );
    for id in &ids[1..] {
        assert_eq!(loaded(&store, id).await, None, "a revoked session is gone");
    }
    assert_eq!(listed(&store, &keys, alice).await, [ids[0].public_id()]);

    assert_eq!(users.revoke_all(alice, None).await.unwrap(), 1);
    assert_eq!(loaded(&store, &ids[0]).await, None);
    assert!(listed(&store, &keys, alice).await.is_empty());
    assert!(
        loaded(&store, &his).await.is_some(),
        "another user's sessions stay"
    );
}

/// A public id revokes its user's session, never another user's.
pub async fn a_public_id_revokes_only_its_users_session(store: Store) {
    let keys = keys();
    let (alice, bob) = (user(), user());
    let (alice, bob) = (alice.as_str(), bob.as_str());
    let users = Users::new(store.as_ref(), &keys, None);
    let hers = logged_in(&store, &keys, alice, LONG).await;
    let his = logged_in(&store, &keys, bob, LONG).await;

    assert!(!users.revoke(alice, &his.public_id()).await.unwrap());
    assert!(loaded(&store, &his).await.is_some());
    assert!(users.revoke(alice, &hers.public_id()).await.unwrap());
    assert_eq!(loaded(&store, &hers).await, None);
    assert!(
        !users.revoke(alice, &hers.public_id()).await.unwrap(),
        "once"
    );
}

/// Log-ins of one user at once all appear on the list: none overwrites another.
pub async fn concurrent_log_ins_of_one_user_all_appear(store: Store) {
    let keys = keys();
    let alice = user();
    let alice = alice.as_str();
    let log_ins = (0..16).map(|_| {
        let (store, keys) = (store.clone(), keys.clone());
        async move { logged_in(&store, &keys, alice, LONG).await }
    });
    let ids = join_all(log_ins).await;
    let ids: Vec<&SessionId> = ids.iter().collect();
    assert_eq!(listed(&store, &keys, alice).await, handles(&ids));
}

/// A logged-in session given a longer lifetime after its log-in (`set_max_age`) keeps its
/// user's list at least as long: "sign out everywhere" still finds it after the list's
/// first lifetime.
pub async fn a_list_lives_as_long_as_a_session_given_longer(store: Store) {
    let keys = keys();
    let alice = user();
    let alice = alice.as_str();
    let users = Users::new(store.as_ref(), &keys, None);
    let id = logged_in(&store, &keys, alice, LONG).await;
    let longer = LONG * 2;
    users.keep_for(alice, &id, longer).await.unwrap();

    let index = &keys.index.derive_ids(alice.as_bytes())[0];
    let list = loaded(&store, index).await.expect("the list is there");
    assert!(list.ttl() >= longer, "the list lives {:?}", list.ttl());
    // A shorter one never shortens it.
    users.keep_for(alice, &id, SHORT).await.unwrap();
    let list = loaded(&store, index).await.expect("the list is there");
    assert!(list.ttl() >= longer, "the list lives {:?}", list.ttl());
    assert_eq!(listed(&store, &keys, alice).await, [id.public_id()]);
}

/// A logged-in session whose list ended early (a failed extension, or a race that wrote a
/// shorter time over it) is put back on a list when it next lives longer: signing out
/// everywhere finds it again.
pub async fn a_session_on_no_list_is_put_back_when_it_lives_longer(store: Store) {
    let keys = keys();
    let alice = user();
    let alice = alice.as_str();
    let users = Users::new(store.as_ref(), &keys, None);
    let id = logged_in(&store, &keys, alice, LONG).await;
    let index = &keys.index.derive_ids(alice.as_bytes())[0];
    let _ = store.delete(index).await.unwrap();
    assert!(listed(&store, &keys, alice).await.is_empty());

    users.keep_for(alice, &id, LONG).await.unwrap();
    assert_eq!(listed(&store, &keys, alice).await, [id.public_id()]);
    let list = loaded(&store, index).await.expect("the list is back");
    assert!(list.ttl() >= LONG, "the list lives {:?}", list.ttl());
    assert_eq!(users.revoke_all(alice, None).await.unwrap(), 1);
    assert_eq!(loaded(&store, &id).await, None, "signed out");
}
