//! `CsrfToken::verify_header`: the token sent by scripts in `X-CSRF-Token`.

mod common;

use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::Json;
use rocket::{get, post, routes};
use rocket_server_sessions::{CsrfToken, Error, Sessions};

#[get("/token")]
fn token(csrf: CsrfToken) -> String {
    csrf.token()
}

#[post("/api/transfer", data = "<amount>")]
fn transfer(csrf: CsrfToken, amount: Json<u64>) -> Result<String, Error> {
    csrf.verify_header()?;
    Ok(format!("sent {}", amount.0))
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Seen(bool);

impl rocket_server_sessions::SessionEntry for Seen {
    const KEY: &'static str = "seen";
}

#[post("/regenerate")]
fn regenerate(mut session: rocket_server_sessions::Session<Seen>) -> Result<(), Error> {
    session.set(Seen(true))?;
    session.regenerate();
    Ok(())
}

async fn client() -> Client {
    let rocket = rocket::custom(common::figment())
        .attach(Sessions::fairing())
        .mount("/", routes![token, transfer, regenerate]);
    Client::tracked(rocket).await.expect("the app launches")
}

/// `POST /api/transfer` with `header` (name, value) when given: the status.
async fn post(client: &Client, header: Option<(&'static str, String)>) -> Status {
    let mut request = client.post("/api/transfer").body("5");
    if let Some((name, value)) = header {
        request = request.header(Header::new(name, value));
    }
    request.dispatch().await.status()
}

#[rocket::async_test]
async fn the_sessions_token_in_the_header_passes_anything_else_is_forbidden() {
    let client = client().await;
    let token = common::get_ok(&client, "/token").await;
    assert!(token.len() >= 43, "{token:?}");

    assert_eq!(
        post(&client, Some(("X-CSRF-Token", token.clone()))).await,
        Status::Ok
    );
    // Header names are case-insensitive.
    assert_eq!(
        post(&client, Some(("x-csrf-token", token.clone()))).await,
        Status::Ok
    );

    assert_eq!(post(&client, None).await, Status::Forbidden);
    for wrong in [
        String::new(),
        format!("{token}x"),
        token[1..].to_string(),
        "nope".into(),
    ] {
        assert_eq!(
            post(&client, Some(("X-CSRF-Token", wrong.clone()))).await,
            Status::Forbidden,
            "{wrong:?}"
        );
    }
    // The token in some other header is not the token.
    assert_eq!(
        post(&client, Some(("X-XSRF-Token", token))).await,
        Status::Forbidden
    );
}

#[rocket::async_test]
async fn another_sessions_token_is_forbidden() {
    let ours = client().await;
    let theirs = client().await;
    common::get_ok(&ours, "/token").await;
    let their_token = common::get_ok(&theirs, "/token").await;

    assert_eq!(
        post(&ours, Some(("X-CSRF-Token", their_token))).await,
        Status::Forbidden
    );
}

#[rocket::async_test]
async fn a_visitor_without_a_session_is_forbidden() {
    let client = client().await;
    assert_eq!(
        post(&client, Some(("X-CSRF-Token", "a".repeat(43)))).await,
        Status::Forbidden
    );
}

#[rocket::async_test]
async fn a_new_session_id_voids_the_token_seen_before() {
    let client = client().await;
    let planted = common::get_ok(&client, "/token").await;

    let response = client.post("/regenerate").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert!(common::session_cookie(&response).is_some(), "a new id");

    assert_eq!(
        post(&client, Some(("X-CSRF-Token", planted.clone()))).await,
        Status::Forbidden
    );
    let fresh = common::get_ok(&client, "/token").await;
    assert_ne!(fresh, planted);
    assert_eq!(
        post(&client, Some(("X-CSRF-Token", fresh))).await,
        Status::Ok
    );
}
