//! The absolute timeout: a session's whole life is capped, on every store and across an
//! application restart, whatever activity, rolling or "remember me" asks.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rocket::http::Cookie;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::{store::MemoryStore, Sessions};

use common::stores::{Opener, Store};

const TIMEOUT: Duration = Duration::from_secs(3);

/// The test app on `store`, with rolling sessions of a minute's idle lifetime and the
/// absolute `timeout`.
async fn app(store: Store, timeout: Option<Duration>) -> Client {
    app_rolling(store, timeout, true).await
}

async fn app_rolling(store: Store, timeout: Option<Duration>, rolling: bool) -> Client {
    let mut builder = Sessions::builder()
        .store(store)
        .rolling(rolling)
        .max_age(Duration::from_secs(60));
    if let Some(timeout) = timeout {
        builder = builder.absolute_timeout(timeout);
    }
    Client::untracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches")
}

/// `GET path` with `cookie`: the body, and the session cookie the response sets.
async fn get(
    client: &Client,
    path: &str,
    cookie: &Cookie<'static>,
) -> (String, Option<Cookie<'static>>) {
    let response = client.get(path).cookie(cookie.clone()).dispatch().await;
    let set = session_cookie(&response);
    (response.into_string().await.unwrap_or_default(), set)
}

fn max_age_secs(cookie: &Cookie<'_>) -> i64 {
    cookie
        .max_age()
        .expect("a persistent cookie")
        .whole_seconds()
}

/// The absolute timeout on the store `open` opens, twice on the same data (an application
/// restart, for the stores that outlive one): the session's cookie never promises more
/// than what remains, activity keeps it alive only until the deadline, and then the store
/// no longer gives it out.
async fn the_absolute_timeout_holds_across_a_restart(open: Option<Opener>) {
    let Some(open) = open else { return };
    let store = open().await;
    let client = app(store, Some(TIMEOUT)).await;
    let started = Instant::now();
    let cookie = log_in_as(&client, "alice").await;
    assert!(max_age_secs(&cookie) <= 3, "{cookie}");
    drop(client);

    // Restarted on the same data: the session is still there, and rolling refreshes the
    // cookie with no more than what remains.
    let client = app(open().await, Some(TIMEOUT)).await;
    let before = started.elapsed();
    assert!(
        before < TIMEOUT / 2,
        "the restart took {before:?}: too slow for this test"
    );
    let (user, refreshed) = get(&client, "/whoami", &cookie).await;
    assert_eq!(user, "alice");
    let refreshed = refreshed.expect("rolling sends the cookie again");
    assert!(max_age_secs(&refreshed) <= 3, "{refreshed}");

    // Activity on a route without a guard (a touch) keeps the store's copy alive, but no
    // longer than the deadline: the first request past it deletes the session and expires
    // its cookie.
    let expired = loop {
        let (_, set) = get(&client, "/plain", &cookie).await;
        let elapsed = started.elapsed();
        match set {
            Some(set) if max_age_secs(&set) == 0 => break elapsed,
            Some(set) => assert!(max_age_secs(&set) <= 3, "{set}"),
            None => panic!("a touch of a live session sends its cookie again"),
        }
        assert!(
            elapsed < TIMEOUT * 4,
            "the session outlived its absolute timeout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        expired >= TIMEOUT,
        "the session ended early, after {expired:?}"
    );
    assert_eq!(get(&client, "/whoami", &cookie).await.0, "");
    // The login page can tell why: the cookie's stamp says the timeout ended it.
    let ended = get(&client, "/ended", &cookie).await.0;
    assert_eq!(ended, "Some(AbsoluteTimeout)");

    // The same holds for a fresh instance: the old cookie gets nothing.
    drop(client);
    let client = app(open().await, Some(TIMEOUT)).await;
    assert_eq!(get(&client, "/whoami", &cookie).await.0, "");
    let ended = get(&client, "/ended", &cookie).await.0;
    assert_eq!(ended, "Some(AbsoluteTimeout)");
}

for_every_store!(the_absolute_timeout_holds_across_a_restart);

/// A session stored before the timeout was set starts its count at its first request
/// under it, and the store's own, longer expiry (a minute, without rolling to shorten it)
/// does not keep it past the deadline.
#[rocket::async_test]
async fn a_session_from_before_the_timeout_counts_from_its_next_request() {
    let store: Store = Arc::new(MemoryStore::default());
    let before = app_rolling(store.clone(), None, false).await;
    let cookie = log_in_as(&before, "alice").await;
    assert_eq!(max_age_secs(&cookie), 60);
    drop(before);

    let timeout = Duration::from_millis(300);
    let client = app_rolling(store, Some(timeout), false).await;
    let started = Instant::now();
    let (user, refreshed) = get(&client, "/whoami", &cookie).await;
    assert_eq!((user.as_str(), refreshed), ("alice", None));
    // Guarded requests now: each loads the session and checks its deadline.
    let ended = loop {
        let (user, set) = get(&client, "/whoami", &cookie).await;
        if user.is_empty() {
            let set = set.expect("the ended session's cookie is expired");
            assert_eq!(max_age_secs(&set), 0);
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(ended >= timeout, "ended early, after {ended:?}");
}

/// "Remember me" asks for a month; the absolute timeout wins.
#[rocket::async_test]
async fn set_max_age_never_outlives_the_absolute_timeout() {
    let client = app(
        Arc::new(MemoryStore::default()),
        Some(Duration::from_secs(30)),
    )
    .await;
    let cookie = new_session(&client).await;
    let response = client
        .post(format!("/remember/{}", 30 * 24 * 3600 * 1000u64))
        .cookie(cookie)
        .dispatch()
        .await;
    let remembered = session_cookie(&response).expect("a new lifetime resends the cookie");
    assert!(max_age_secs(&remembered) <= 30, "{remembered}");
}

/// A session stored before the timeout was set, used only on routes without a guard
/// (touches, with rolling), starts its count at its first touch all the same.
#[rocket::async_test]
async fn a_session_from_before_the_timeout_counts_from_its_first_touch() {
    let store: Store = Arc::new(MemoryStore::default());
    let before = app_rolling(store.clone(), None, false).await;
    let cookie = log_in_as(&before, "alice").await;
    drop(before);

    let timeout = Duration::from_millis(500);
    let client = app(store, Some(timeout)).await;
    let started = Instant::now();
    let ended = loop {
        let (_, set) = get(&client, "/plain", &cookie).await;
        let set = set.expect("a touch of a live session sends its cookie again");
        if max_age_secs(&set) == 0 {
            break started.elapsed();
        }
        assert!(max_age_secs(&set) <= 1, "{set}");
        assert!(started.elapsed() < Duration::from_secs(5), "never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(ended >= timeout, "ended early, after {ended:?}");
    assert_eq!(get(&client, "/whoami", &cookie).await.0, "");
}
