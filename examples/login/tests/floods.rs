//! The hardening issue's reproductions that the login example shows: a flood of log-in
//! pages stores nothing on any store, a stranger's form works without a stored session,
//! and password hashing never stalls other routes. (The others are in the crate's
//! tests/hardening.rs.)

#[path = "../../../tests/common/mod.rs"]
mod common;

#[allow(dead_code)]
#[path = "../main.rs"]
mod login;

use common::*;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use rocket_server_sessions::Sessions;

/// How many anonymous visits each flood sends: bounded, on Rocket's local client.
const FLOOD: usize = 2_000;

fn login_figment() -> rocket::figment::Figment {
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("sessions.secrets", [SECRET]))
}

/// The value of `name="csrf_token"` in a page.
fn csrf_in(page: &str) -> String {
    let (_, rest) = page
        .split_once(r#"name="csrf_token" value=""#)
        .expect("a csrf_token field");
    rest.split('"').next().unwrap().to_string()
}

/// Sends `GET /login` `FLOOD` times without a cookie, as many strangers would.
async fn flood_the_login_page(client: &Client) {
    for _ in 0..FLOOD {
        let response = client.get("/login").dispatch().await;
        assert_eq!(response.status(), Status::Ok);
    }
}

/// Reproduction 1: `GET /login` stored a 24-hour session per anonymous visit, so a
/// stranger filled the store. Now the page's CSRF token stores nothing.
#[rocket::async_test]
async fn a_flood_of_login_pages_stores_nothing_on_the_memory_store() {
    let store = Counting::memory();
    let sessions = Sessions::builder().store(store.clone()).build();
    let client = Client::untracked(login::app_with(login_figment(), sessions))
        .await
        .unwrap();
    flood_the_login_page(&client).await;
    assert_eq!(store.calls.total(), 0, "no store call at all");
    assert!(store.inner.is_empty());
}

#[cfg(feature = "file")]
#[rocket::async_test]
async fn a_flood_of_login_pages_stores_nothing_on_the_file_store() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "hardening-{}",
        rocket_server_sessions::SessionId::generate()
    ));
    let figment = login_figment()
        .merge(("sessions.store", "file"))
        .merge(("sessions.file.dir", &dir));
    let client = Client::untracked(login::app_on(figment)).await.unwrap();
    flood_the_login_page(&client).await;
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[cfg(feature = "redis")]
#[rocket::async_test]
async fn a_flood_of_login_pages_stores_nothing_on_redis() {
    let Some(server) = redis::OwnServer::start() else {
        return;
    };
    let figment = login_figment()
        .merge(("sessions.store", "redis"))
        .merge(("sessions.redis.url", server.url()));
    let client = Client::untracked(login::app_on(figment)).await.unwrap();
    flood_the_login_page(&client).await;
    assert_eq!(server.query(&["DBSIZE"]).as_deref(), Some("0\n"));
}

/// A stranger's form still works: the token from the log-in page passes on its post,
/// though nothing was stored, and a wrong password stores nothing either.
#[rocket::async_test]
async fn the_login_form_works_for_a_visitor_the_store_has_never_seen() {
    let store = Counting::memory();
    let sessions = Sessions::builder().store(store.clone()).build();
    let client = Client::tracked(login::app_with(login_figment(), sessions))
        .await
        .unwrap();
    let page = get_ok(&client, "/login").await;
    let token = csrf_in(&page);
    let post = |password: &'static str| {
        let body = format!("username=alice&password={password}&csrf_token={token}");
        client
            .post("/login")
            .header(ContentType::Form)
            .body(body)
            .dispatch()
    };

    let wrong = post("guess").await;
    assert_eq!(wrong.status(), Status::Unauthorized);
    assert_eq!(store.calls.total(), 0, "a wrong password stores nothing");
    let page = wrong.into_string().await.unwrap();
    assert_eq!(csrf_in(&page), token, "the form's token is the same");

    let right = post("wonderland").await;
    assert_eq!(right.status(), Status::SeeOther);
    assert_eq!(
        store.inner.len(),
        2,
        "the log-in is the first session stored, beside alice's list of sessions"
    );
    assert!(get_ok(&client, "/dashboard").await.contains("alice"));
}

/// A visitor whose session starts (say, a cart) keeps the token it was given before.
#[rocket::async_test]
async fn a_token_given_before_the_session_started_still_passes_after() {
    let store = Counting::memory();
    let sessions = Sessions::builder().store(store.clone()).build();
    let login = Client::tracked(login::app_with(login_figment(), sessions))
        .await
        .unwrap();
    let token = csrf_in(&get_ok(&login, "/login").await);
    assert_eq!(get_ok(&login, "/counter").await, r#"{"count":1}"#);
    assert_eq!(store.inner.len(), 1, "the counter started a session");
    let again = csrf_in(&get_ok(&login, "/login").await);
    assert_eq!(again, token, "stored under the id the token was bound to");
}

/// Reproduction 8: Argon2 ran on Rocket's async workers, so a few clients posting wrong
/// passwords stalled every other route. The test's runtime has one thread: the log-ins
/// are given a thousand turns on it, far more than they need to reach their hashing,
/// which takes a debug build hundreds of milliseconds. Hashing on that thread, they
/// would all have finished before `GET /` is even sent; on the blocking pool, `GET /` is
/// answered while they hash. (`rocket::async_test` would run the test on a thread of its
/// own beside one worker: this runtime has the one thread.)
#[tokio::test(flavor = "current_thread")]
async fn password_hashing_never_stalls_other_routes() {
    let client: &'static Client = Box::leak(Box::new(
        Client::untracked(login::app_on(login_figment()))
            .await
            .unwrap(),
    ));
    let response = client.get("/login").dispatch().await;
    let cookie = response
        .cookies()
        .get("rocket.sid")
        .unwrap()
        .clone()
        .into_owned();
    let token = csrf_in(&response.into_string().await.unwrap());
    let logins: Vec<_> = (0..4)
        .map(|_| {
            let body = format!("username=alice&password=guess&csrf_token={token}");
            let request = client
                .post("/login")
                .header(ContentType::Form)
                .cookie(cookie.clone())
                .body(body);
            rocket::tokio::spawn(async move { request.dispatch().await.status() })
        })
        .collect();
    for _ in 0..1_000 {
        rocket::tokio::task::yield_now().await;
    }

    let page = client.get("/").dispatch().await;
    assert_eq!(page.status(), Status::Ok);
    assert!(
        logins.iter().any(|login| !login.is_finished()),
        "every log-in had finished hashing before GET / was answered"
    );
    for login in logins {
        assert_eq!(login.await.unwrap(), Status::Unauthorized);
    }
}
