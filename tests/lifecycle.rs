//! Destroy, regenerate, remove, typed views and stale data.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use rocket::http::Status;
use rocket_server_sessions::{store::MemoryStore, Sessions};

#[rocket::async_test]
async fn destroy_deletes_the_session_and_expires_the_cookie() {
    let store = MemoryStore::default();
    let client = client(Sessions::builder().store(store.clone())).await;
    let old = new_session(&client).await;
    assert_eq!(store.len(), 1);

    let response = client.post("/destroy").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    let removal = session_cookie(&response).expect("the cookie is expired");
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age(), Some(rocket::time::Duration::ZERO));
    assert_eq!(store.len(), 0);

    // Replaying the old cookie finds nothing.
    let replay = untracked(Sessions::builder().store(store.clone())).await;
    let response = replay.get("/count").cookie(old).dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("0"));
}

#[rocket::async_test]
async fn destroy_expires_only_a_cookie_whose_session_it_ended() {
    let app = untracked(Sessions::builder()).await;
    let response = app.post("/destroy").dispatch().await;
    assert!(
        set_cookies(&response).is_empty(),
        "no cookie, nothing to expire"
    );

    // Signed with the same secret, but its session is in another app's store: the
    // browser may hold a newer cookie by now, which expiring this name would expire.
    let stale = new_session(&client(Sessions::builder()).await).await;
    let response = app.post("/destroy").cookie(stale).dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert!(set_cookies(&response).is_empty());
}

#[rocket::async_test]
async fn data_set_after_destroy_lives_in_a_new_session() {
    let store = MemoryStore::default();
    let client = client(Sessions::builder().store(store.clone())).await;
    get_ok(&client, "/counter").await;
    let old = client.cookies().get(COOKIE).unwrap().value().to_string();

    let response = client.post("/destroy-then-set").dispatch().await;
    let new = session_cookie(&response).expect("a new session cookie");
    assert_ne!(new.value(), old);
    assert_eq!(store.len(), 1);
    assert_eq!(get_ok(&client, "/count").await, "100");
}

#[rocket::async_test]
async fn regenerate_moves_the_data_to_a_new_id_and_kills_the_old_one() {
    let store = MemoryStore::default();
    let client = client(Sessions::builder().store(store.clone())).await;
    get_ok(&client, "/counter").await;
    get_ok(&client, "/cart/add/apple").await;
    let old = client.cookies().get(COOKIE).unwrap().clone();

    let response = client.post("/regenerate").dispatch().await;
    let new = session_cookie(&response).expect("a new cookie");
    let announced = response.into_string().await.unwrap();
    assert_ne!(new.value(), old.value());
    assert!(
        new.value().starts_with(&format!("{announced}.")),
        "id() names the new id"
    );
    assert_eq!(store.len(), 1);

    assert_eq!(get_ok(&client, "/count").await, "1");
    assert_eq!(get_ok(&client, "/cart").await, "apple");

    let replay = untracked(Sessions::builder().store(store.clone())).await;
    let response = replay.get("/count").cookie(old).dispatch().await;
    assert_eq!(
        response.into_string().await.as_deref(),
        Some("0"),
        "the old id is dead"
    );
}

#[rocket::async_test]
async fn id_is_stable_for_a_session_and_set_for_a_new_one() {
    let client = client(Sessions::builder()).await;
    let response = client.get("/id").dispatch().await;
    assert!(
        session_cookie(&response).is_none(),
        "asking for the id stores nothing"
    );

    get_ok(&client, "/counter").await;
    let cookie = client.cookies().get(COOKIE).unwrap().value().to_string();
    let id = get_ok(&client, "/id").await;
    assert!(cookie.starts_with(&format!("{id}.")));
    assert_eq!(get_ok(&client, "/id").await, id);
}

#[rocket::async_test]
async fn remove_deletes_one_entry_and_keeps_the_others() {
    let client = client(Sessions::builder()).await;
    get_ok(&client, "/counter").await;
    get_ok(&client, "/cart/add/pear").await;
    assert_eq!(
        get_ok(&client, "/forget").await,
        "Some(Visits { count: 1 })"
    );
    assert_eq!(get_ok(&client, "/forget").await, "None");
    assert_eq!(get_ok(&client, "/count").await, "0");
    assert_eq!(get_ok(&client, "/cart").await, "pear");
}

#[rocket::async_test]
async fn an_entry_stored_by_an_older_type_reads_as_absent_not_500() {
    let client = client(Sessions::builder()).await;
    get_ok(&client, "/counter").await;
    assert_eq!(get_ok(&client, "/v2").await, "None");
    // The old shape is still readable by the old type.
    assert_eq!(get_ok(&client, "/count").await, "1");
}

#[rocket::async_test]
async fn a_write_past_max_session_size_is_413_and_changes_nothing() {
    let kib = rocket::data::ByteUnit::Kibibyte(1);
    let client = client(Sessions::builder().max_session_size(kib)).await;
    let first = "x".repeat(600);
    get_ok(&client, &format!("/cart/add/{first}")).await;

    let response = client
        .get(format!("/cart/add/{}", "y".repeat(600)))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::PayloadTooLarge);
    assert_eq!(
        get_ok(&client, "/cart").await,
        first,
        "the session is as it was"
    );
    // Other entries still fit.
    assert_eq!(get_ok(&client, "/counter").await, "1");
}

#[rocket::async_test]
async fn a_store_that_is_down_answers_503_never_500_or_a_panic() {
    let client = client(Sessions::builder().store(Counting::down())).await;
    // No cookie: the write after the handler fails, and the response says so.
    let response = client.get("/counter").dispatch().await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(
        set_cookies(&response).is_empty(),
        "no cookie for a session that was not saved"
    );
    assert_eq!(response.into_string().await.unwrap_or_default(), "");

    // Routes without a session guard are unaffected.
    assert_eq!(get_ok(&client, "/plain").await, "plain");
}

#[rocket::async_test]
async fn with_rolling_a_store_that_is_down_fails_no_route_without_a_guard() {
    let cookie = new_session(&client(Sessions::builder()).await).await;

    let down = untracked(Sessions::builder().store(Counting::down()).rolling(true)).await;
    let response = down.get("/plain").cookie(cookie.clone()).dispatch().await;
    assert_eq!(response.status(), Status::Ok, "only the refresh is lost");
    assert!(set_cookies(&response).is_empty());
    assert_eq!(response.into_string().await.as_deref(), Some("plain"));

    let response = down.get("/count").cookie(cookie).dispatch().await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
}

#[rocket::async_test]
async fn a_store_that_is_down_fails_the_guard_with_503() {
    let up = MemoryStore::default();
    let client = client(Sessions::builder().store(up)).await;
    let cookie = new_session(&client).await;

    let down = untracked(Sessions::builder().store(Counting::down())).await;
    let response = down.get("/count").cookie(cookie).dispatch().await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(set_cookies(&response).is_empty());
}

#[rocket::async_test]
async fn the_untyped_handle_ends_the_whole_session() {
    let store = MemoryStore::default();
    let client = client(Sessions::builder().store(store.clone())).await;
    new_session(&client).await;
    get_ok(&client, "/cart/add/apple").await;
    assert_eq!(store.len(), 1);

    let response = client.post("/forget-me").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        session_cookie(&response).map(|c| c.value().to_string()),
        Some(String::new())
    );
    assert!(store.is_empty());
    assert_eq!(get_ok(&client, "/cart").await, "");
}

/// The shape issue: no public type implemented `Debug`. Now every one does, and none
/// prints an id, a cookie, a token or session data.
#[rocket::async_test]
async fn guards_print_in_debug_without_ids_tokens_or_data() {
    let client = untracked(Sessions::builder()).await;
    let cookie = log_in_as(&client, "alice-the-secret-user").await;
    let response = client.get("/debug").cookie(cookie.clone()).dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    let debug = response.into_string().await.unwrap();
    assert!(
        debug.contains("SessionHandle") && debug.contains("CsrfToken"),
        "{debug}"
    );
    let id = cookie.value().split_once('.').unwrap().0;
    for secret in [id, cookie.value(), "alice-the-secret-user"] {
        assert!(!debug.contains(secret), "{debug} shows {secret}");
    }
}

/// The shape issue: Rocket's shutdown reaches the store once, and the store still answers
/// afterwards (requests in flight finish after the shutdown fairings).
#[rocket::async_test]
async fn rockets_shutdown_reaches_the_store_once() {
    let store = Counting::memory();
    let client = untracked(Sessions::builder().store(store.clone())).await;
    new_session(&client).await;
    assert_eq!(store.calls.shutdown.load(Ordering::SeqCst), 0);
    client.terminate().await;
    assert_eq!(store.calls.shutdown.load(Ordering::SeqCst), 1);
}
