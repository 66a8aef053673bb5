//! Parallel requests on one session: per-entry commits, no resurrection, many sessions.

mod common;

use common::*;
use rocket::futures::future::join_all;
use rocket::http::{Cookie, Status};
use rocket::local::asynchronous::{Client, LocalRequest, LocalResponse};
use rocket_server_sessions::{config::MemoryConfig, store::MemoryStore, Sessions};

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

/// The cookie a first visit to a form sets: a pending id, with nothing stored.
async fn pending_cookie(client: &Client) -> Cookie<'static> {
    session_cookie(&client.get("/token").dispatch().await).expect("a pending cookie")
}

/// Two requests of one browser that both find no session under its cookie's id (a form
/// page's pending id, or a gone session's) and both store one: the second joins the
/// first, so the browser keeps one session with both writes, whichever cookie it keeps.
#[rocket::async_test]
async fn new_sessions_stored_at_once_under_one_cookie_are_one_session() {
    let store = MemoryStore::default();
    let client = untracked(Sessions::builder().store(store.clone())).await;
    let gone = new_session(&client).await;
    // The session is gone (destroyed here; expired, say); the browser still sends its
    // cookie.
    client
        .post("/destroy")
        .cookie(gone.clone())
        .dispatch()
        .await;
    let pending = pending_cookie(&client).await;
    assert_eq!(store.len(), 0);

    for (n, cookie) in [pending, gone].into_iter().enumerate() {
        let slow = client.get("/slow/cart/add/apple").cookie(cookie.clone());
        let fast = client.get("/counter").cookie(cookie.clone());
        let (slow, fast) = interleaved(&client, slow, fast).await;
        let (slow, fast) = (session_cookie(&slow), session_cookie(&fast));
        assert_eq!(slow, fast, "one session cookie for both");
        assert_eq!(store.len(), n + 1, "one session stored");
        let cookie = fast.expect("a session cookie");
        let count = client.get("/count").cookie(cookie.clone()).dispatch().await;
        assert_eq!(count.into_string().await.as_deref(), Some("1"));
        let cart = client.get("/cart").cookie(cookie).dispatch().await;
        assert_eq!(cart.into_string().await.as_deref(), Some("apple"));
    }
}

/// A request that would join a session stored meanwhile under its cookie's id, but would
/// grow it past `max_session_size`, stores its own under a fresh id instead.
#[rocket::async_test]
async fn a_join_that_would_pass_the_size_limit_stores_its_own_session() {
    let store = MemoryStore::default();
    let builder = Sessions::builder()
        .store(store.clone())
        .max_session_size(rocket::data::ByteUnit::Byte(70));
    let client = untracked(builder).await;
    let pending = pending_cookie(&client).await;
    let item = "a".repeat(45);

    let slow = client.get("/slow/counter").cookie(pending.clone());
    let fast = client
        .get(format!("/cart/add/{item}"))
        .cookie(pending.clone());
    let (slow, fast) = interleaved(&client, slow, fast).await;
    assert_eq!(fast.status(), Status::Ok);
    let (slow, fast) = (session_cookie(&slow), session_cookie(&fast));
    assert!(slow.is_some() && fast.is_some(), "each its session");
    assert_ne!(
        slow, fast,
        "the session that would pass the limit is not joined"
    );
    assert_eq!(store.len(), 2);
}

/// Sending the same pending cookie again and again never keeps what a session stored
/// past its absolute timeout: a request that joins it leaves its start as it was.
#[rocket::async_test]
async fn replaying_a_pending_cookie_does_not_extend_an_absolute_timeout() {
    let timeout = std::time::Duration::from_millis(600);
    let client = untracked(Sessions::builder().absolute_timeout(timeout)).await;
    let pending = pending_cookie(&client).await;
    let first = client
        .get("/cart/add/first")
        .cookie(pending.clone())
        .dispatch()
        .await;
    assert_eq!(first.status(), Status::Ok);
    // Well past the timeout, each step well within it.
    let started = std::time::Instant::now();
    let mut last = None;
    while started.elapsed() < timeout * 3 {
        // Another entry: the cart is the session's, not this request's.
        let response = client
            .get("/counter")
            .cookie(pending.clone())
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok);
        last = session_cookie(&response).or(last);
        rocket::tokio::time::sleep(timeout / 6).await;
    }
    let cart = client
        .get("/cart")
        .cookie(last.expect("a session cookie"))
        .dispatch()
        .await;
    let cart = cart.into_string().await.unwrap_or_default();
    assert!(!cart.contains("first"), "kept past the timeout: {cart}");
}
