//! Expiry, rolling and per-session lifetimes, with short lifetimes instead of long sleeps.

mod common;

use std::time::Duration;

use common::*;
use rocket_server_sessions::{MemoryStore, Sessions};

async fn sleep(millis: u64) {
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

#[rocket::async_test]
async fn a_session_ends_after_max_age() {
    let client = client(Sessions::builder().max_age(Duration::from_millis(300))).await;
    assert_eq!(get_ok(&client, "/counter").await, "1");
    assert_eq!(get_ok(&client, "/counter").await, "2");
    sleep(450).await;
    assert_eq!(
        get_ok(&client, "/counter").await,
        "1",
        "an expired session is gone"
    );
}

#[rocket::async_test]
async fn cookie_max_age_is_max_age_rounded_up_to_seconds() {
    let client = client(Sessions::builder().max_age(Duration::from_millis(1500))).await;
    let cookie = new_session(&client).await;
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(2)));
}

#[rocket::async_test]
async fn without_rolling_activity_does_not_extend_a_session() {
    let client = client(Sessions::builder().max_age(Duration::from_millis(500))).await;
    get_ok(&client, "/counter").await;
    sleep(300).await;
    let response = client.get("/counter").dispatch().await;
    assert!(
        session_cookie(&response).is_none(),
        "no cookie refresh without rolling"
    );
    sleep(350).await;
    assert_eq!(get_ok(&client, "/counter").await, "1");
}

#[rocket::async_test]
async fn rolling_keeps_an_active_session_alive_even_on_routes_without_a_guard() {
    let store = Counting::memory();
    let builder = Sessions::builder()
        .store(store.clone())
        .rolling(true)
        .max_age(Duration::from_millis(500));
    let client = client(builder).await;
    get_ok(&client, "/counter").await;
    for _ in 0..3 {
        sleep(300).await;
        let response = client.get("/plain").dispatch().await;
        let cookie = session_cookie(&response).expect("rolling sends the cookie again");
        assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(1)));
    }

    assert_eq!(
        store.calls.get().3,
        3,
        "one touch per request without a guard"
    );
    assert_eq!(
        get_ok(&client, "/counter").await,
        "2",
        "900 ms in, a 500 ms session lives on"
    );
    assert_eq!(store.calls.get().4, 0);
}

#[rocket::async_test]
async fn rolling_refreshes_a_loaded_session_with_its_commit() {
    let store = Counting::memory();
    let builder = Sessions::builder()
        .store(store.clone())
        .rolling(true)
        .max_age(Duration::from_millis(500));
    let client = client(builder).await;
    get_ok(&client, "/counter").await;
    sleep(300).await;
    let response = client.get("/count").dispatch().await;
    assert!(session_cookie(&response).is_some());
    sleep(300).await;
    assert_eq!(get_ok(&client, "/count").await, "1");
    let (_, create, commit, touch, _) = store.calls.get();
    assert_eq!(
        (create, commit, touch),
        (1, 2, 0),
        "the refresh rides on one commit"
    );
}

#[rocket::async_test]
async fn remember_me_gives_one_session_its_own_lifetime() {
    let store = MemoryStore::default();
    let builder = Sessions::builder()
        .store(store.clone())
        .max_age(Duration::from_millis(300));
    let client = client(builder).await;
    let response = client.post("/remember/3000").dispatch().await;
    let cookie = session_cookie(&response).unwrap();
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(3)));

    let other = self::client(
        Sessions::builder()
            .store(store.clone())
            .max_age(Duration::from_millis(300)),
    )
    .await;
    get_ok(&other, "/counter").await;

    sleep(450).await;
    assert_eq!(
        get_ok(&client, "/count").await,
        "1",
        "the remembered session lives on"
    );
    assert_eq!(
        get_ok(&other, "/count").await,
        "0",
        "the ordinary one has ended"
    );
}

#[rocket::async_test]
async fn rolling_keeps_a_remembered_sessions_own_lifetime() {
    let builder = Sessions::builder()
        .rolling(true)
        .max_age(Duration::from_millis(300));
    let client = client(builder).await;
    client.post("/remember/5000").dispatch().await;
    let response = client.get("/plain").dispatch().await;
    let cookie = session_cookie(&response).unwrap();
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(5)));
}
