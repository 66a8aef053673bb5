//! "Sign out everywhere": a user's sessions, listed and revoked across devices, on every
//! store.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use rocket::futures::future::join_all;
use rocket::http::Cookie;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::store::{CommitOutcome, CreateOutcome, DeleteOutcome};
use rocket_server_sessions::{
    Changes, MemoryStore, SessionId, SessionRecord, SessionStore, Sessions, StoreError,
};
use tokio::sync::Notify;

use common::stores::Opener;

/// `method path` with `cookie` (one device's): the body.
async fn on(client: &Client, post: bool, path: &str, cookie: &Cookie<'static>) -> String {
    let request = match post {
        true => client.post(path.to_string()),
        false => client.get(path.to_string()),
    };
    let response = request.cookie(cookie.clone()).dispatch().await;
    response.into_string().await.unwrap_or_default()
}

/// The `(handle, current)` of each session the device's user has.
async fn sessions(client: &Client, cookie: &Cookie<'static>) -> Vec<(String, bool)> {
    on(client, false, "/sessions", cookie)
        .await
        .lines()
        .map(|line| {
            let (handle, current) = line.split_once(' ').expect("`<handle> <current>`");
            (handle.to_string(), current == "true")
        })
        .collect()
}

async fn whoami(client: &Client, cookie: &Cookie<'static>) -> String {
    on(client, false, "/whoami", cookie).await
}

/// Devices log in and out, list their user's sessions and revoke others, on `store`.
async fn sign_out_everywhere(open: Option<Opener>) {
    let Some(open) = open else { return };
    let store = open().await;
    let builder = Sessions::builder().store(store);
    let client = Client::untracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches");

    // Alice on two devices, Bob on one.
    let laptop = log_in_as(&client, "alice").await;
    let phone = log_in_as(&client, "alice").await;
    let bob = log_in_as(&client, "bob").await;
    let listed = sessions(&client, &laptop).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed.iter().filter(|(_, current)| *current).count(), 1);
    let current = |listed: &[(String, bool)]| {
        let current: Vec<_> = listed
            .iter()
            .filter(|(_, c)| *c)
            .map(|(h, _)| h.clone())
            .collect();
        current
    };
    let on_phone = sessions(&client, &phone).await;
    assert_ne!(
        current(&listed),
        current(&on_phone),
        "each device is its own current"
    );
    let mut handles: Vec<_> = listed.iter().map(|(h, _)| h.clone()).collect();
    let mut phone_handles: Vec<_> = on_phone.iter().map(|(h, _)| h.clone()).collect();
    handles.sort();
    phone_handles.sort();
    assert_eq!(
        handles, phone_handles,
        "both devices list the same sessions"
    );
    assert_eq!(sessions(&client, &bob).await.len(), 1);
    assert!(sessions(&client, &Cookie::new(COOKIE, "none"))
        .await
        .is_empty());

    // "Sign out other devices" from the laptop: the phone is out on its next request.
    assert_eq!(on(&client, true, "/logout/others", &laptop).await, "1");
    assert_eq!(whoami(&client, &phone).await, "");
    assert_eq!(whoami(&client, &laptop).await, "alice");
    assert_eq!(whoami(&client, &bob).await, "bob");
    assert_eq!(sessions(&client, &laptop).await.len(), 1);

    // One session by its handle, and never another user's.
    let tablet = log_in_as(&client, "alice").await;
    let tablet_handle = sessions(&client, &tablet)
        .await
        .into_iter()
        .find_map(|(handle, current)| current.then_some(handle))
        .expect("the tablet is listed");
    let bob_handle = sessions(&client, &bob).await.remove(0).0;
    let revoke_bob = format!("/revoke/{bob_handle}");
    assert_eq!(on(&client, true, &revoke_bob, &laptop).await, "false");
    assert_eq!(whoami(&client, &bob).await, "bob");
    let revoke_tablet = format!("/revoke/{tablet_handle}");
    assert_eq!(on(&client, true, &revoke_tablet, &laptop).await, "true");
    assert_eq!(whoami(&client, &tablet).await, "");

    // Logging in again moves the session to a new id: the list holds the new one alone.
    let response = client
        .get("/login/alice")
        .cookie(laptop.clone())
        .dispatch()
        .await;
    let again = session_cookie(&response).expect("a new session cookie");
    let listed = sessions(&client, &again).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].1);

    // Logging out takes the session off the list.
    let response = client
        .post("/forget-me")
        .cookie(again.clone())
        .dispatch()
        .await;
    assert_eq!(response.status().code, 200);
    let other = log_in_as(&client, "alice").await;
    assert_eq!(sessions(&client, &other).await.len(), 1);
}

for_every_store!(sign_out_everywhere);

/// A user keeps at most 100 sessions: a log-in past that revokes the oldest.
#[rocket::async_test]
async fn a_log_in_past_a_hundred_sessions_revokes_the_oldest() {
    let builder = Sessions::builder().store(MemoryStore::default());
    let client = Client::untracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches");
    let oldest = log_in_as(&client, "alice").await;
    // Log-in times are milliseconds: once the clock has moved on, the oldest is older than
    // all the others.
    let logged_in = std::time::SystemTime::now();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while logged_in.elapsed().unwrap_or_default() < std::time::Duration::from_millis(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock stands still"
        );
        tokio::task::yield_now().await;
    }
    let mut newest = oldest.clone();
    for _ in 1..100 {
        newest = log_in_as(&client, "alice").await;
    }
    assert_eq!(sessions(&client, &newest).await.len(), 100);
    assert_eq!(whoami(&client, &oldest).await, "alice");

    let another = log_in_as(&client, "alice").await;
    assert_eq!(sessions(&client, &another).await.len(), 100);
    assert_eq!(whoami(&client, &oldest).await, "", "the oldest is revoked");
    assert_eq!(whoami(&client, &newest).await, "alice");
}

/// A memory store that yields before every call, as a store across a network does: what
/// lets requests at once interleave their calls.
struct Yielding(MemoryStore);

#[rocket::async_trait]
impl SessionStore for Yielding {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        tokio::task::yield_now().await;
        self.0.load(id).await
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        tokio::task::yield_now().await;
        self.0.create(id, record).await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        tokio::task::yield_now().await;
        self.0.commit(id, changes).await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        tokio::task::yield_now().await;
        self.0.touch(id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        tokio::task::yield_now().await;
        self.0.delete(id).await
    }
}

/// Log-ins of one user at once cannot each find room and together pass the limit of 100.
#[rocket::async_test]
async fn log_ins_at_once_keep_the_limit_of_a_hundred() {
    let builder = Sessions::builder().store(Yielding(MemoryStore::default()));
    let client = Client::untracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches");
    let cookies = join_all((0..130).map(|_| log_in_as(&client, "mallory"))).await;
    let mut alive = Vec::new();
    for cookie in &cookies {
        if whoami(&client, cookie).await == "mallory" {
            alive.push(cookie);
        }
    }
    assert!(
        !alive.is_empty() && alive.len() <= 100,
        "{} sessions",
        alive.len()
    );
    assert_eq!(sessions(&client, alive[0]).await.len(), alive.len());
}

/// A memory store that, once armed, holds the creation of the next logged-in session
/// until told to go on; and likewise, once `delete` is armed, the next deletion.
#[derive(Clone, Default)]
struct Held {
    store: MemoryStore,
    armed: Arc<AtomicBool>,
    reached: Arc<Notify>,
    go_on: Arc<Notify>,
    delete_armed: Arc<AtomicBool>,
    deleting: Arc<Notify>,
    delete_go_on: Arc<Notify>,
}

#[rocket::async_trait]
impl SessionStore for Held {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.store.load(id).await
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        let session = record.get("$user").is_some() && record.get("$index").is_none();
        if session && self.armed.swap(false, Ordering::SeqCst) {
            self.reached.notify_one();
            self.go_on.notified().await;
        }
        self.store.create(id, record).await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        self.store.commit(id, changes).await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.store.touch(id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        if self.delete_armed.swap(false, Ordering::SeqCst) {
            self.deleting.notify_one();
            self.delete_go_on.notified().await;
        }
        self.store.delete(id).await
    }
}

/// A stolen session that moves to a new id (a regenerate) while its user signs out the
/// other devices is signed out too: its new id is not left behind.
#[rocket::async_test]
async fn a_session_moving_while_others_are_signed_out_is_signed_out_too() {
    let held = Held::default();
    let builder = Sessions::builder().store(held.clone());
    let client = Client::untracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches");
    let laptop = log_in_as(&client, "alice").await;
    let stolen = log_in_as(&client, "alice").await;

    // The thief's regenerate is held as it stores the new session, while the laptop signs
    // out the other devices; then it goes on.
    held.armed.store(true, Ordering::SeqCst);
    let thief = async {
        let response = client
            .post("/regenerate")
            .cookie(stolen.clone())
            .dispatch()
            .await;
        session_cookie(&response)
    };
    let owner = async {
        held.reached.notified().await;
        let revoked = on(&client, true, "/logout/others", &laptop).await;
        held.go_on.notify_one();
        revoked
    };
    let both = async { tokio::join!(thief, owner) };
    let (moved, revoked) = tokio::time::timeout(Duration::from_secs(30), both)
        .await
        .expect("neither request hangs");
    assert_eq!(revoked, "1", "the stolen session, under its old id");
    assert_eq!(
        moved, None,
        "no cookie for a session that was revoked as it moved"
    );
    assert_eq!(whoami(&client, &stolen).await, "");
    assert_eq!(whoami(&client, &laptop).await, "alice");
    assert_eq!(sessions(&client, &laptop).await.len(), 1);
}

/// The other order: the signing out lists the user's sessions before the thief's moved
/// session is on the list, and the thief deletes its old id before the signing out does.
/// The signing out reads the list again and finds the new id.
#[rocket::async_test]
async fn a_session_that_moved_before_its_old_id_was_revoked_is_signed_out_too() {
    let held = Held::default();
    let builder = Sessions::builder().store(held.clone());
    let client = Client::untracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches");
    let laptop = log_in_as(&client, "alice").await;
    let stolen = log_in_as(&client, "alice").await;

    held.armed.store(true, Ordering::SeqCst);
    let thief_done = Notify::new();
    let thief = async {
        let response = client
            .post("/regenerate")
            .cookie(stolen.clone())
            .dispatch()
            .await;
        thief_done.notify_one();
        session_cookie(&response).expect("the moved session's cookie")
    };
    // The thief is held storing its new session; the owner lists, then is held deleting
    // the old id while the thief stores, lists and deletes.
    let owner = async {
        held.reached.notified().await;
        held.delete_armed.store(true, Ordering::SeqCst);
        on(&client, true, "/logout/others", &laptop).await
    };
    let order = async {
        held.deleting.notified().await;
        held.go_on.notify_one();
        thief_done.notified().await;
        held.delete_go_on.notify_one();
    };
    let all = async { tokio::join!(thief, owner, order) };
    let (moved, revoked, ()) = tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("no request hangs");
    assert_eq!(
        whoami(&client, &moved).await,
        "",
        "the new id is signed out"
    );
    assert_eq!(revoked, "1", "the moved session, under its new id");
    assert_eq!(whoami(&client, &laptop).await, "alice");
    assert_eq!(sessions(&client, &laptop).await.len(), 1);
}

/// A log-in's time is milliseconds: waits until the clock has moved past `logged_in`, so
/// that a session logged in before is older than every one after.
async fn a_millisecond_after(logged_in: SystemTime) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while logged_in.elapsed().unwrap_or_default() < Duration::from_millis(2) {
        assert!(Instant::now() < deadline, "the clock stands still");
        tokio::task::yield_now().await;
    }
}

/// A session that moves to a new id (a regenerate) takes its own place on its user's full
/// list: no other device is signed out, and it is not signed out itself.
#[rocket::async_test]
async fn a_session_moving_on_a_full_list_takes_its_own_place() {
    let builder = Sessions::builder().store(MemoryStore::default());
    let client = Client::untracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches");
    let oldest = log_in_as(&client, "alice").await;
    a_millisecond_after(SystemTime::now()).await;
    let second = log_in_as(&client, "alice").await;
    a_millisecond_after(SystemTime::now()).await;
    let mut newest = second.clone();
    for _ in 2..100 {
        newest = log_in_as(&client, "alice").await;
    }
    assert_eq!(sessions(&client, &newest).await.len(), 100);

    for moving in [&oldest, &newest] {
        let response = client
            .post("/regenerate")
            .cookie(moving.clone())
            .dispatch()
            .await;
        let moved = session_cookie(&response).expect("the moved session's cookie");
        assert_eq!(whoami(&client, &moved).await, "alice");
    }
    assert_eq!(
        whoami(&client, &second).await,
        "alice",
        "no other device is out"
    );
    assert_eq!(sessions(&client, &second).await.len(), 100);
}

/// A memory store that notes the ids of the lists of users' sessions it creates.
#[derive(Clone, Default)]
struct Lists {
    store: MemoryStore,
    lists: Arc<Mutex<Vec<SessionId>>>,
}

#[rocket::async_trait]
impl SessionStore for Lists {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.store.load(id).await
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        if record.get("$index").is_some() {
            self.lists.lock().unwrap().push(id.clone());
        }
        self.store.create(id, record).await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        self.store.commit(id, changes).await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.store.touch(id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        self.store.delete(id).await
    }
}

/// `set_max_age` after a log-in (a "remember this device" toggled later) has the user's
/// list live as long, so that signing out everywhere still finds the session.
#[rocket::async_test]
async fn a_session_given_longer_after_its_log_in_keeps_its_list_as_long() {
    let lists = Lists::default();
    let builder = Sessions::builder().store(lists.clone());
    let client = Client::untracked(rocket_with(
        figment().merge(("sessions.max_age", 60)),
        Some(builder.build()),
    ))
    .await
    .expect("the test app launches");
    let phone = log_in_as(&client, "alice").await;
    let list = lists.lists.lock().unwrap().clone();
    let [list] = list.as_slice() else {
        panic!("one list: {list:?}");
    };
    let lifetime = |record: Option<SessionRecord>| record.expect("the list is there").ttl();
    let before = lifetime(lists.store.load(list).await.unwrap());
    assert_eq!(before, Duration::from_secs(60));

    on(&client, true, "/remember/600000", &phone).await;
    let after = lifetime(lists.store.load(list).await.unwrap());
    assert_eq!(after, Duration::from_secs(600));
    assert_eq!(whoami(&client, &phone).await, "alice");
}
