//! Secret rotation: the first secret signs, every secret verifies.

mod common;

use common::*;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::{store::MemoryStore, Sessions};

async fn app(store: &MemoryStore, secrets: &[&str]) -> Client {
    untracked(
        Sessions::builder()
            .store(store.clone())
            .secrets(secrets.iter().copied()),
    )
    .await
}

#[rocket::async_test]
async fn a_cookie_signed_by_a_rotated_out_secret_still_works() {
    let store = MemoryStore::default();
    let before = app(&store, &[SECRET]).await;
    let cookie = new_session(&before).await;

    let after = app(&store, &[OTHER_SECRET, SECRET]).await;
    let response = after.get("/counter").cookie(cookie).dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("2"));

    // New sessions are signed by the new secret: the old-only app cannot read them.
    let fresh = new_session(&after).await;
    let response = before.get("/count").cookie(fresh.clone()).dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("0"));
    let response = after.get("/count").cookie(fresh).dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("1"));
}

#[rocket::async_test]
async fn a_cookie_signed_by_an_unknown_secret_is_no_session() {
    let store = MemoryStore::default();
    let theirs = app(&store, &[OTHER_SECRET]).await;
    let cookie = new_session(&theirs).await;

    let ours = app(&store, &[SECRET]).await;
    let response = ours.get("/counter").cookie(cookie.clone()).dispatch().await;
    let fresh = session_cookie(&response).expect("a fresh session");
    assert_ne!(fresh.value(), cookie.value());
    assert_eq!(response.into_string().await.as_deref(), Some("1"));
}

#[rocket::async_test]
async fn without_secrets_rockets_secret_key_signs() {
    let store = MemoryStore::default();
    let key = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";
    let figment = || {
        rocket::figment::Figment::from(rocket::Config::debug_default())
            .merge(("log_level", "off"))
            .merge(("secret_key", key))
    };
    let make = || async {
        let fairing = Sessions::builder().store(store.clone()).build();
        Client::untracked(rocket_with(figment(), Some(fairing)))
            .await
            .unwrap()
    };

    let first = make().await;
    let cookie = new_session(&first).await;
    // A restarted app with the same secret_key accepts the cookie.
    let second = make().await;
    let response = second.get("/counter").cookie(cookie).dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("2"));
}
