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
    config::MemoryConfig,
    store::{Changes, MemoryStore, SessionId, SessionRecord, SessionStore, StoreError},
    Sessions,
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

/// Returns once the wall clock, which stamps log-ins and expiry times in milliseconds, is
/// `by` past where it was.
async fn clock_moves_on(by: Duration) {
    let from = SystemTime::now();
    let deadline = Instant::now() + Duration::from_secs(5);
    while from.elapsed().unwrap_or_default() < by {
        assert!(Instant::now() < deadline, "the clock stands still");
        tokio::task::yield_now().await;
    }
}

/// Devices log in and out, list their user's sessions and revoke others, on `store`.
async fn sign_out_everywhere(open: Option<Opener>) {
    let Some(open) = open else { return };
    let store = open().await;
    let builder = Sessions::builder().store(store);
    let client = untracked(builder).await;

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

/// The test app, and Alice logged in on 100 devices, the limit, oldest first: the first
/// two a millisecond apart from each other and from the rest (log-in times are
/// milliseconds), so that the oldest is older than every other and the second than the
/// rest.
async fn a_full_list() -> (Client, Vec<Cookie<'static>>) {
    let builder = Sessions::builder().store(MemoryStore::default());
    let client = untracked(builder).await;
    let mut devices = Vec::new();
    for n in 0..100 {
        devices.push(log_in_as(&client, "alice").await);
        if n < 2 {
            clock_moves_on(Duration::from_millis(2)).await;
        }
    }
    assert_eq!(sessions(&client, &devices[99]).await.len(), 100);
    (client, devices)
}

/// A user keeps at most 100 sessions: a log-in past that revokes the oldest.
#[rocket::async_test]
async fn a_log_in_past_a_hundred_sessions_revokes_the_oldest() {
    let (client, devices) = a_full_list().await;
    let (oldest, newest) = (&devices[0], &devices[99]);
    assert_eq!(whoami(&client, oldest).await, "alice");

    let another = log_in_as(&client, "alice").await;
    assert_eq!(sessions(&client, &another).await.len(), 100);
    assert_eq!(whoami(&client, oldest).await, "", "the oldest is revoked");
    assert_eq!(whoami(&client, newest).await, "alice");
}

/// One call of a [`Staged`] store that, once armed, is held until told to go on.
#[derive(Clone, Default)]
struct Gate {
    armed: Arc<AtomicBool>,
    reached: Arc<Notify>,
    go_on: Arc<Notify>,
}

impl Gate {
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    async fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.reached.notify_one();
            self.go_on.notified().await;
        }
    }
}

/// A memory store that stages the interleavings: it may yield before every call, as a
/// store across a network does; holds the next creation of a logged-in session, the
/// next deletion, the next load of a list or the next commit to a session, once its gate
/// is armed; and notes the lists of users' sessions it creates.
#[derive(Clone, Default)]
struct Staged {
    store: MemoryStore,
    yields: bool,
    create: Gate,
    delete: Gate,
    /// Holds the next load of a list, once it has read it.
    list_load: Gate,
    /// Holds the next commit to a session (not a list).
    session_commit: Gate,
    lists: Arc<Mutex<Vec<SessionId>>>,
}

impl Staged {
    async fn call(&self) {
        if self.yields {
            tokio::task::yield_now().await;
        }
    }
}

#[rocket::async_trait]
impl SessionStore for Staged {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.call().await;
        let record = self.store.load(id).await?;
        if record.as_ref().is_some_and(|r| r.get("$index").is_some()) {
            self.list_load.pass().await;
        }
        Ok(record)
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        self.call().await;
        if record.get("$index").is_some() {
            self.lists.lock().unwrap().push(id.clone());
        } else if record.get("$user").is_some() {
            self.create.pass().await;
        }
        self.store.create(id, record).await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        self.call().await;
        if !self.lists.lock().unwrap().contains(id) {
            self.session_commit.pass().await;
        }
        self.store.commit(id, changes).await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.call().await;
        self.store.touch(id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        self.call().await;
        self.delete.pass().await;
        self.store.delete(id).await
    }
}

impl Staged {
    /// The lifetime of the one list of users' sessions this store created.
    async fn list_lifetime(&self) -> Duration {
        let list = self.lists.lock().unwrap().clone();
        let [list] = list.as_slice() else {
            panic!("one list: {list:?}");
        };
        let list = self.store.load(list).await.unwrap();
        list.expect("the list is there").ttl()
    }
}

/// The test app on a [`Staged`] store, with sessions of a minute, `rolling` or not.
async fn lists_app(rolling: bool) -> (Staged, Client) {
    let store = Staged::default();
    let builder = Sessions::builder()
        .store(store.clone())
        .rolling(rolling)
        .max_age(Duration::from_secs(60));
    let client = untracked(builder).await;
    (store, client)
}

/// The test app on `store`, and two devices of Alice's: the laptop, and the one a thief
/// stole.
async fn two_devices(store: &Staged) -> (Client, Cookie<'static>, Cookie<'static>) {
    let builder = Sessions::builder().store(store.clone());
    let client = untracked(builder).await;
    let laptop = log_in_as(&client, "alice").await;
    let stolen = log_in_as(&client, "alice").await;
    (client, laptop, stolen)
}

/// Log-ins of one user at once cannot each find room and together pass the limit of 100.
#[rocket::async_test]
async fn log_ins_at_once_keep_the_limit_of_a_hundred() {
    let store = Staged {
        yields: true,
        ..Staged::default()
    };
    let builder = Sessions::builder().store(store);
    let client = untracked(builder).await;
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

/// A stolen session that moves to a new id (a regenerate) while its user signs out the
/// other devices is signed out too: its new id is not left behind.
#[rocket::async_test]
async fn a_session_moving_while_others_are_signed_out_is_signed_out_too() {
    let store = Staged::default();
    let (client, laptop, stolen) = two_devices(&store).await;

    // The thief's regenerate is held as it stores the new session, while the laptop signs
    // out the other devices; then it goes on.
    store.create.arm();
    let thief = async {
        let response = client
            .post("/regenerate")
            .cookie(stolen.clone())
            .dispatch()
            .await;
        session_cookie(&response)
    };
    let owner = async {
        store.create.reached.notified().await;
        let revoked = on(&client, true, "/logout/others", &laptop).await;
        store.create.go_on.notify_one();
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
    let store = Staged::default();
    let (client, laptop, stolen) = two_devices(&store).await;

    store.create.arm();
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
        store.create.reached.notified().await;
        store.delete.arm();
        on(&client, true, "/logout/others", &laptop).await
    };
    let order = async {
        store.delete.reached.notified().await;
        store.create.go_on.notify_one();
        thief_done.notified().await;
        store.delete.go_on.notify_one();
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

/// A session that moves to a new id (a regenerate) takes its own place on its user's full
/// list: no other device is signed out, and it is not signed out itself.
#[rocket::async_test]
async fn a_session_moving_on_a_full_list_takes_its_own_place() {
    let (client, devices) = a_full_list().await;
    let (oldest, second, newest) = (&devices[0], &devices[1], &devices[99]);
    for moving in [oldest, newest] {
        let response = client
            .post("/regenerate")
            .cookie(moving.clone())
            .dispatch()
            .await;
        let moved = session_cookie(&response).expect("the moved session's cookie");
        assert_eq!(whoami(&client, &moved).await, "alice");
    }
    assert_eq!(
        whoami(&client, second).await,
        "alice",
        "no other device is out"
    );
    assert_eq!(sessions(&client, second).await.len(), 100);
}

/// `set_max_age` after a log-in (a "remember this device" toggled later) has the user's
/// list live as long, so that signing out everywhere still finds the session.
#[rocket::async_test]
async fn a_session_given_longer_after_its_log_in_keeps_its_list_as_long() {
    let (store, client) = lists_app(false).await;
    let phone = log_in_as(&client, "alice").await;
    // The session's lifetime, and a margin: an eighth of it, a minute at most.
    assert_eq!(store.list_lifetime().await, Duration::from_millis(67_500));

    on(&client, true, "/remember/600000", &phone).await;
    assert_eq!(store.list_lifetime().await, Duration::from_secs(660));
    assert_eq!(whoami(&client, &phone).await, "alice");

    // A log-in of the user's after that, of a minute, keeps it as long.
    log_in_as(&client, "alice").await;
    assert!(store.list_lifetime().await >= Duration::from_secs(600));
}

/// With `rolling` a session can live on for good, but its user's list is kept only a
/// quarter longer than the session, not for the longest lifetime there is: the lists of
/// users who left do not hold the store's room for months.
#[rocket::async_test]
async fn with_rolling_a_list_is_kept_a_quarter_longer_than_its_session() {
    let (store, client) = lists_app(true).await;
    log_in_as(&client, "alice").await;
    assert_eq!(store.list_lifetime().await, Duration::from_secs(75));
}

/// An active session keeps its user's list as long as it lives, on a route that loads it
/// (an update) and on one that does not (a touch).
#[rocket::async_test]
async fn an_active_session_keeps_its_list_on_any_route() {
    let max_age = Duration::from_millis(1500);
    let builder = Sessions::builder()
        .store(MemoryStore::default())
        .max_age(max_age)
        .rolling(true);
    let client = untracked(builder).await;
    let active = |user: &'static str, route: &'static str| {
        let client = &client;
        async move {
            // A machine that stalls a session's requests a lifetime apart ends it through
            // no fault of ours: such an attempt proves nothing, and a new one starts.
            'attempt: for attempt in 0..5 {
                let user = format!("{user}{attempt}");
                let cookie = log_in_as(client, &user).await;
                let mut last: Option<Instant> = None;
                // Each request, then whether the one before it was recent enough that the
                // session had to be alive for it.
                let mut fresh = |sent: Instant| {
                    let fresh = last.is_none_or(|last| last.elapsed() + max_age / 10 < max_age);
                    last = Some(sent);
                    fresh
                };
                // Well past the list's first lifetime (a quarter longer than the session's).
                let until = Instant::now() + 3 * max_age;
                while Instant::now() < until {
                    let sent = Instant::now();
                    on(client, false, route, &cookie).await;
                    if !fresh(sent) {
                        continue 'attempt;
                    }
                    tokio::time::sleep(max_age / 15).await;
                }
                // The list first: a request that loads the session would extend it (and
                // put the session back on one), hiding a touch that did not.
                let sent = Instant::now();
                let listed = sessions(client, &cookie).await;
                if !fresh(sent) {
                    continue 'attempt;
                }
                let sent = Instant::now();
                let alive = whoami(client, &cookie).await;
                if !fresh(sent) {
                    continue 'attempt;
                }
                assert_eq!(alive, user, "alive on {route}");
                return listed;
            }
            panic!("the machine stalled past a session's lifetime in each of five attempts");
        }
    };
    let (touched, loaded) = tokio::join!(active("alice", "/plain"), active("bob", "/count"));
    assert_eq!(touched.len(), 1, "listed after touches: {touched:?}");
    assert_eq!(loaded.len(), 1, "listed after updates: {loaded:?}");
}

/// The lists of users who logged out leave a full store within a lifetime and a quarter
/// of their log-in: a fresh log-in then finds room, instead of being pushed out by the
/// creation of its own list.
#[rocket::async_test]
async fn lists_of_users_who_left_leave_room_for_a_fresh_log_in() {
    let max_age = Duration::from_millis(400);
    // Room for the eight lists, and for each log-in's session beside them.
    let mut config = MemoryConfig::default();
    config.max_sessions = 9;
    let store = MemoryStore::new(config);
    let builder = Sessions::builder()
        .store(store.clone())
        .max_age(max_age)
        .rolling(true);
    let client = untracked(builder).await;
    for n in 0..8 {
        let cookie = log_in_as(&client, &format!("user{n}")).await;
        on(&client, true, "/destroy", &cookie).await;
    }
    assert_eq!(store.len(), 8, "eight lists are left");
    let deadline = Instant::now() + 20 * max_age;
    loop {
        store.sweep();
        if store.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the lists are still there");
        tokio::time::sleep(max_age / 8).await;
    }
    let cookie = log_in_as(&client, "carol").await;
    assert_eq!(whoami(&client, &cookie).await, "carol");
}

/// Lists are outside the cap: thirty accounts signing in and out of a store of ten leave
/// lists behind (each lives its lifetime), and every sign-in still finds room and stays.
#[rocket::async_test]
async fn no_number_of_accounts_evicts_a_fresh_sign_in_through_lists() {
    let mut config = MemoryConfig::default();
    config.max_sessions = 10;
    let store = MemoryStore::new(config);
    let builder = Sessions::builder()
        .store(store.clone())
        .max_age(Duration::from_secs(600));
    let client = untracked(builder).await;
    for n in 0..30 {
        let cookie = log_in_as(&client, &format!("user{n}")).await;
        assert_eq!(whoami(&client, &cookie).await, format!("user{n}"));
        on(&client, true, "/destroy", &cookie).await;
    }
    assert!(store.len() >= 30, "the thirty lists are kept");
    let users = ["fresh0", "fresh1", "fresh2"];
    let mut signed_in = Vec::new();
    for user in users {
        signed_in.push((user, log_in_as(&client, user).await));
    }
    for (user, cookie) in &signed_in {
        assert_eq!(
            whoami(&client, cookie).await,
            *user,
            "a list evicted a sign-in"
        );
    }
}

/// A log-in that read the list before another session of the user had it kept longer
/// writes its shorter time over that: it then keeps it as long again.
#[rocket::async_test]
async fn a_log_in_racing_a_longer_sessions_extension_keeps_the_list_as_long() {
    let (store, client) = lists_app(true).await;
    let laptop = log_in_as(&client, "alice").await;

    store.list_load.arm();
    let log_in = client.get("/login/alice").dispatch();
    let remember = async {
        store.list_load.reached.notified().await;
        // The laptop asks to be remembered 600 s, while the log-in holds what it read.
        on(&client, true, "/remember/600000", &laptop).await;
        let kept = store.list_lifetime().await;
        store.list_load.go_on.notify_one();
        kept
    };
    let both = async { tokio::join!(log_in, remember) };
    let (_, kept) = tokio::time::timeout(Duration::from_secs(30), both)
        .await
        .expect("the interleaving ends");
    assert_eq!(
        kept,
        Duration::from_secs(750),
        "a quarter longer, with `rolling`"
    );
    let after = store.list_lifetime().await;
    assert!(
        after >= Duration::from_secs(600),
        "the list is kept {after:?}, the laptop's session lives 600 s"
    );
}

/// With `rolling` and an `absolute_timeout`, a route that does not load the session costs
/// the one touch, never a list's extension: the log-in kept the list for the whole timeout.
#[rocket::async_test]
async fn a_touch_under_an_absolute_timeout_never_extends_the_list() {
    let store = Counting::memory();
    let builder = Sessions::builder()
        .store(store.clone())
        .rolling(true)
        .max_age(Duration::from_secs(3600))
        .absolute_timeout(Duration::from_secs(1800));
    let client = untracked(builder).await;
    let cookie = log_in_as(&client, "alice").await;
    // Later than the log-in, to the millisecond: the session's lifetime from now would
    // end past the log-in's lifetime for the list, but not past the timeout.
    clock_moves_on(Duration::from_millis(5)).await;
    let before = store.calls.get();
    on(&client, false, "/plain", &cookie).await;
    let after = store.calls.get();
    assert_eq!(after.0 - before.0, 0, "loads");
    assert_eq!(after.2 - before.2, 0, "commits");
    assert_eq!(after.3 - before.3, 1, "touches");
}

/// A session whose list ended early (a failed extension, say) is put back on one the next
/// time it lives longer, so signing out everywhere finds it again.
#[rocket::async_test]
async fn a_session_whose_list_ended_is_listed_again_when_it_lives_longer() {
    let (store, client) = lists_app(false).await;
    let phone = log_in_as(&client, "alice").await;
    let list = store.lists.lock().unwrap()[0].clone();
    let _ = store.store.delete(&list).await.unwrap();
    assert!(sessions(&client, &phone).await.is_empty());

    on(&client, true, "/remember/600000", &phone).await;
    assert_eq!(sessions(&client, &phone).await.len(), 1);
    let laptop = log_in_as(&client, "alice").await;
    assert_eq!(on(&client, true, "/logout/others", &laptop).await, "1");
    assert_eq!(whoami(&client, &phone).await, "");
}

/// A log-in between another session's extension of the list and that session's record of
/// it (`$listed`) neither sees the record nor may write a shorter time over the list.
#[rocket::async_test]
async fn a_log_in_between_a_list_extension_and_its_record_keeps_the_list_as_long() {
    let (store, client) = lists_app(false).await;
    let laptop = log_in_as(&client, "alice").await;
    store.session_commit.arm();
    let remember = on(&client, true, "/remember/600000", &laptop);
    let log_in = async {
        // The list is kept 660 s; the laptop's session has yet to say so.
        store.session_commit.reached.notified().await;
        log_in_as(&client, "alice").await;
        store.session_commit.go_on.notify_one();
    };
    let both = async { tokio::join!(remember, log_in) };
    tokio::time::timeout(Duration::from_secs(30), both)
        .await
        .expect("the interleaving ends");
    let kept = store.list_lifetime().await;
    assert!(
        kept >= Duration::from_secs(600),
        "the list is kept {kept:?}"
    );
}

/// A copy of a revoked device's cookie (a thief's) never brings its id back: a request
/// with it starts a session under a fresh id, so the device's own next request still
/// finds its session revoked, and shares nothing with the thief's.
#[rocket::async_test]
async fn a_revoked_sessions_id_never_serves_a_new_session() {
    let client = untracked(Sessions::builder()).await;
    let laptop = log_in_as(&client, "alice").await;
    let tablet = log_in_as(&client, "alice").await;
    let stolen = tablet.clone();
    assert_eq!(on(&client, true, "/logout/others", &laptop).await, "1");

    let response = client
        .get("/counter")
        .cookie(stolen.clone())
        .dispatch()
        .await;
    let id = |cookie: &Cookie<'_>| cookie.value().split('.').next().unwrap().to_string();
    let thiefs = session_cookie(&response).expect("a new session");
    assert_ne!(
        id(&thiefs),
        id(&stolen),
        "a session stored under the revoked id"
    );
    assert_eq!(on(&client, false, "/count", &tablet).await, "0");
    assert_eq!(on(&client, false, "/ended", &tablet).await, "Some(Revoked)");
}
