//! `testing::sign_in`: a local client signed in as a user, without a route, a password or
//! a CSRF token.

#![cfg(feature = "testing")]

mod common;

use common::Counting;
use rocket::http::{Method, Status};
use rocket::local::{asynchronous, blocking};
use rocket_server_sessions::{testing, Error, Sessions};

async fn get(client: &asynchronous::Client, path: &str) -> String {
    common::get_ok(client, path).await
}

#[rocket::async_test]
async fn a_tracked_client_is_signed_in_as_the_user_with_a_listed_session() {
    let client = common::client(Sessions::builder()).await;
    // What the visitor had before stays, as at a log-in.
    assert_eq!(get(&client, "/cart/add/tea").await, "tea");
    let before = common::get_ok(&client, "/id").await;

    let cookie = testing::sign_in(&client, &"alice".to_string())
        .await
        .expect("signed in");

    assert_eq!(get(&client, "/whoami").await, "alice");
    assert_eq!(get(&client, "/cart").await, "tea");
    assert_ne!(
        get(&client, "/id").await,
        before,
        "a new id, as at a log-in"
    );
    // Listed among the user's sessions, as the current one.
    let sessions = get(&client, "/sessions").await;
    assert_eq!(sessions.lines().count(), 1, "{sessions}");
    assert!(sessions.ends_with(" true"), "{sessions}");
    assert_eq!(
        client.cookies().get(cookie.name()).map(|c| c.value()),
        Some(cookie.value())
    );
}

#[rocket::async_test]
async fn an_untracked_client_gets_the_cookie_to_send() {
    let store = Counting::memory();
    let client = common::untracked(Sessions::builder().store(store.clone())).await;

    let cookie = testing::sign_in(&client, &"bob".to_string())
        .await
        .expect("signed in");
    // Two creates: the session and the user's list of sessions, as at a log-in.
    assert_eq!(store.calls.get().1, 2);

    let unsigned = client.get("/whoami").dispatch().await;
    assert_eq!(unsigned.into_string().await.unwrap(), "");
    let signed = client.get("/whoami").cookie(cookie).dispatch().await;
    assert_eq!(signed.into_string().await.unwrap(), "bob");
}

#[test]
fn a_blocking_client_is_signed_in_too() {
    let rocket = common::rocket_with(common::figment(), Some(Sessions::fairing()));
    let client = blocking::Client::tracked(rocket).unwrap();

    testing::sign_in_blocking(&client, &"carol".to_string()).expect("signed in");
    let page = client.get("/whoami").dispatch();
    assert_eq!(page.status(), Status::Ok);
    assert_eq!(page.into_string().unwrap(), "carol");
}

#[rocket::async_test]
async fn what_stops_a_sign_in_is_reported() {
    let without = rocket::custom(common::figment());
    let client = asynchronous::Client::tracked(without).await.unwrap();
    assert!(matches!(
        testing::sign_in(&client, &"alice").await,
        Err(Error::NotAttached)
    ));

    let down = common::client(Sessions::builder().store(Counting::down())).await;
    assert!(matches!(
        testing::sign_in(&down, &"alice").await,
        Err(Error::Store(_))
    ));

    let small =
        common::client(Sessions::builder().max_session_size(rocket::data::ByteUnit::Byte(64)))
            .await;
    assert!(matches!(
        testing::sign_in(&small, &"a".repeat(100)).await,
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(get(&small, "/whoami").await, "");
}

#[rocket::async_test]
async fn the_sign_in_request_from_outside_signs_nobody_in() {
    let store = Counting::memory();
    let client = common::client(Sessions::builder().store(store.clone())).await;

    // What `sign_in` sends, but from the network: no marker, so nothing happens.
    let response = client.req(Method::Connect, "/").dispatch().await;
    assert_eq!(response.status(), Status::NotFound);
    assert!(common::session_cookie(&response).is_none());
    assert_eq!(store.calls.total(), 0);
    assert_eq!(get(&client, "/whoami").await, "");
}
