//! Parallel requests on one session: per-entry commits, no resurrection, many sessions.

mod common;

use common::*;
use rocket::futures::future::join_all;
use rocket::http::Status;
use rocket::local::asynchronous::{Client, LocalRequest, LocalResponse};
use rocket_server_sessions::{MemoryConfig, MemoryStore, Sessions};

/// Runs `fast` while `slow` (a `/slow/...` route) holds the session it has loaded, and
/// lets `slow` finish after: their responses, slow first.
async fn interleaved<'c>(
    client: &'c Client,
    slow: LocalRequest<'c>,
    fast: LocalRequest<'c>,
) -> (LocalResponse<'c>, LocalResponse<'c>) {
    let gate = client.rocket().state::<Gate>().unwrap();
    let fast = async {
        gate.loaded.notified().await;
        let response = fast.dispatch().await;
        gate.open.notify_one();
        response
    };
    let (slow, fast) = rocket::tokio::join!(slow.dispatch(), fast);
    // A failed commit answers 503 without cookies: no test may pass on that.
    assert_eq!(slow.status(), Status::Ok, "the slow request");
    (slow, fast)
}

#[rocket::async_test]
async fn concurrent_changes_to_different_entries_both_survive() {
    let client = client(Sessions::builder()).await;
    get_ok(&client, "/counter").await;

    // The slow request loads the session, then waits; meanwhile the counter commits.
    let (_, fast) = interleaved(
        &client,
        client.get("/slow/cart/add/apple"),
        client.get("/counter"),
    )
    .await;
    assert_eq!(fast.into_string().await.as_deref(), Some("2"));

    assert_eq!(
        get_ok(&client, "/count").await,
        "2",
        "the slow commit did not write back a stale count"
    );
    assert_eq!(get_ok(&client, "/cart").await, "apple");
}

#[rocket::async_test]
async fn logout_is_not_undone_by_a_slower_request() {
    let store = MemoryStore::default();
    let client = client(Sessions::builder().store(store.clone())).await;
    let cookie = new_session(&client).await;

    let slow = client.get("/slow/counter").cookie(cookie.clone());
    let logout = client.post("/destroy").cookie(cookie.clone());
    let (response, _) = interleaved(&client, slow, logout).await;

    assert_eq!(store.len(), 0, "the destroyed session stays destroyed");
    // The logout's response expired the cookie (or set the next session's, with a flash
    // message): the slow response must not touch it.
    assert_eq!(set_cookies(&response), Vec::<String>::new());

    let replay = untracked(Sessions::builder().store(store.clone())).await;
    let response = replay.get("/count").cookie(cookie).dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("0"));
}

#[rocket::async_test]
async fn a_slow_destroy_leaves_the_cookie_of_a_session_that_moved_on() {
    let store = MemoryStore::default();
    let client = client(Sessions::builder().store(store.clone())).await;
    let cookie = new_session(&client).await;

    // A log-out that loaded the session, slower than a log-in that moves it to a new id.
    let slow = client.post("/slow/destroy").cookie(cookie.clone());
    let login = client.post("/regenerate").cookie(cookie.clone());
    let (response, login) = interleaved(&client, slow, login).await;
    let renewed = session_cookie(&login).expect("the new id's cookie");

    assert_ne!(renewed.value(), cookie.value());
    assert_eq!(
        set_cookies(&response),
        Vec::<String>::new(),
        "expiring the name would expire the new id's cookie"
    );
    assert_eq!(store.len(), 1, "the session lives on under its new id");
}

#[rocket::async_test]
async fn many_sessions_count_independently_under_concurrent_load() {
    let store = MemoryStore::default();
    let client = untracked(Sessions::builder().store(store.clone())).await;

    let visitors = join_all((0..100).map(|_| client.get("/counter").dispatch())).await;
    let cookies: Vec<_> = visitors
        .iter()
        .map(|r| session_cookie(r).unwrap())
        .collect();
    assert_eq!(store.len(), 100);

    for _ in 0..4 {
        let responses = join_all(
            cookies
                .iter()
                .map(|c| client.get("/counter").cookie(c.clone()).dispatch()),
        )
        .await;
        assert!(responses.iter().all(|r| r.status() == Status::Ok));
    }

    let counts = join_all(cookies.iter().map(|c| async {
        client
            .get("/count")
            .cookie(c.clone())
            .dispatch()
            .await
            .into_string()
            .await
    }))
    .await;
    assert!(
        counts.iter().all(|c| c.as_deref() == Some("5")),
        "{counts:?}"
    );
    assert_eq!(store.len(), 100);
}

#[rocket::async_test]
async fn a_flood_of_new_visitors_stays_under_max_sessions() {
    let mut config = MemoryConfig::default();
    config.max_sessions = 50;
    let store = MemoryStore::new(config);
    let client = untracked(Sessions::builder().store(store.clone())).await;

    for round in 0..10 {
        let responses = join_all((0..50).map(|_| client.get("/counter").dispatch())).await;
        assert!(
            responses.iter().all(|r| r.status() == Status::Ok),
            "round {round}"
        );
        assert!(store.len() <= 50, "{} sessions held", store.len());
    }

    // A full store frees an eighth of its room at once, then fills up again.
    assert!(store.len() > 40, "{} sessions held", store.len());
}

/// Two requests of one browser that both find no session under its cookie's id (a pending
/// id, or here a gone session's) and both store one: the second joins the first, so the
/// browser keeps one session with both writes, whichever cookie it keeps.
#[rocket::async_test]
async fn new_sessions_stored_at_once_under_one_cookie_are_one_session() {
    let store = MemoryStore::default();
    let client = untracked(Sessions::builder().store(store.clone())).await;
    let cookie = new_session(&client).await;
    // The session is gone (destroyed here; expired, say); the browser still sends its
    // cookie.
    client
        .post("/destroy")
        .cookie(cookie.clone())
        .dispatch()
        .await;
    assert_eq!(store.len(), 0);

    let slow = client.get("/slow/cart/add/apple").cookie(cookie.clone());
    let fast = client.get("/counter").cookie(cookie.clone());
    let (slow, fast) = interleaved(&client, slow, fast).await;
    let (slow, fast) = (session_cookie(&slow), session_cookie(&fast));
    assert_eq!(slow, fast, "one session cookie for both");
    assert_eq!(store.len(), 1, "one session stored");
    let cookie = fast.expect("a session cookie");
    let count = client.get("/count").cookie(cookie.clone()).dispatch().await;
    assert_eq!(count.into_string().await.as_deref(), Some("1"));
    let cart = client.get("/cart").cookie(cookie).dispatch().await;
    assert_eq!(cart.into_string().await.as_deref(), Some("apple"));
}
