//! The hardening issue's reproductions, each a regression test: what a stranger with no
//! account could do to the stores and to logged-in users, and the defaults that let it.

mod common;

#[allow(dead_code)]
#[path = "../examples/login/main.rs"]
mod login;

use common::*;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket_server_sessions::{MemoryConfig, MemoryStore, Sessions};

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
        1,
        "the log-in is the first session stored"
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

/// Reproduction 2: a flood of anonymous visitors evicted the sessions closest to expiry,
/// the older, real ones: alice was logged out after 1,200 requests with
/// `max_sessions = 1000`. Now anonymous sessions go first.
#[rocket::async_test]
async fn a_flood_of_anonymous_sessions_never_logs_a_user_out_of_the_memory_store() {
    let mut config = MemoryConfig::default();
    config.max_sessions = 1000;
    let store = MemoryStore::new(config);
    let client = untracked(Sessions::builder().store(store.clone())).await;
    let alice = log_in_as(&client, "alice").await;
    // Sessions that hold data, without a cookie: a new one each.
    for _ in 0..FLOOD {
        get_ok(&client, "/counter").await;
    }
    assert!(store.len() <= 1000, "{}", store.len());
    let response = client.get("/whoami").cookie(alice).dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("alice"));
}

#[cfg(feature = "redis")]
#[rocket::async_test]
async fn redis_keeps_its_cap_and_evicts_anonymous_sessions_first() {
    let Some(server) = redis::OwnServer::start() else {
        return;
    };
    // Four sessions in each of the 256 groups.
    let figment = figment()
        .merge(("sessions.store", "redis"))
        .merge(("sessions.redis.url", server.url()))
        .merge(("sessions.redis.max_sessions", 1024));
    let client = Client::untracked(rocket_with(figment, Some(Sessions::fairing())))
        .await
        .unwrap();
    let alice = log_in_as(&client, "alice").await;
    for _ in 0..4 * 1024 {
        get_ok(&client, "/counter").await;
    }
    let sessions = server.session_keys().len();
    assert!(sessions <= 1024, "{sessions} sessions over a cap of 1024");
    assert!(
        sessions > 900,
        "evictions keep the groups nearly full: {sessions}"
    );
    let response = client.get("/whoami").cookie(alice).dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("alice"));
}

/// The `Set-Cookie` of our cookie in `response`.
fn our_set_cookie(response: &LocalResponse<'_>) -> String {
    response
        .headers()
        .get("Set-Cookie")
        .find(|c| c.starts_with("rocket.sid=") || c.starts_with("__Host-"))
        .expect("a session cookie")
        .to_string()
}

/// Reproduction 5: `secure = "auto"` left the cookie without `Secure` in release when
/// the app ran without the repo's Rocket.toml behind a TLS proxy.
#[rocket::async_test]
async fn outside_debug_the_cookie_is_secure_unless_the_app_says_otherwise() {
    let release = || {
        rocket::figment::Figment::from(rocket::Config::release_default())
            .merge(("log_level", "off"))
            .merge(("sessions.secrets", [SECRET]))
    };
    let client = Client::untracked(rocket_with(release(), Some(Sessions::fairing())))
        .await
        .unwrap();
    let response = client.get("/counter").dispatch().await;
    assert!(our_set_cookie(&response).contains("; Secure"));

    // "auto" stays available, and debug (plain http on localhost) defaults to it.
    let auto = release().merge(("sessions.secure", "auto"));
    let client = Client::untracked(rocket_with(auto, Some(Sessions::fairing())))
        .await
        .unwrap();
    let response = client.get("/counter").dispatch().await;
    assert!(!our_set_cookie(&response).contains("; Secure"));
    let client = untracked(Sessions::builder()).await;
    let response = client.get("/counter").dispatch().await;
    assert!(!our_set_cookie(&response).contains("; Secure"));
}

/// Whether the test app on `figment` fails to launch because our fairing refused it.
async fn refused(figment: rocket::figment::Figment) -> bool {
    match rocket_with(figment, Some(Sessions::fairing()))
        .ignite()
        .await
    {
        Ok(_) => false,
        Err(e) => matches!(e.kind(), rocket::error::ErrorKind::FailedFairings(_)),
    }
}

/// Reproduction 6: placeholder secrets launched in release.
#[rocket::async_test]
async fn placeholder_secrets_stop_launch_outside_debug() {
    let release = || {
        rocket::figment::Figment::from(rocket::Config::release_default())
            .merge(("log_level", "off"))
    };
    let weak_secrets = [
        "a".repeat(32),
        "ab".repeat(20),
        "0123456789".repeat(4),
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab".to_string(),
    ];
    for secret in &weak_secrets {
        let weak = release().merge(("sessions.secrets", [secret]));
        assert!(refused(weak).await, "{secret:?} launched");
    }
    // ROCKET_SECRET_KEY=0101...01: 32 bytes of 0x01, as hex.
    let repeated = release().merge(("secret_key", "01".repeat(32)));
    assert!(refused(repeated).await, "a repeated secret_key launched");

    let real = release().merge(("secret_key", "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk="));
    assert!(!refused(real).await);
    // Debug only warns: a placeholder is fine on a laptop.
    let debug = figment().merge(("sessions.secrets", ["a".repeat(32)]));
    assert!(!refused(debug).await);
}

/// Reproduction 7: with `rocket.sid=<valid>; rocket.sid=junk` the visitor was logged out
/// (the last cookie of a name won), so a sibling subdomain could toss in a cookie.
#[rocket::async_test]
async fn a_valid_session_cookie_wins_over_junk_of_the_same_name() {
    let client = untracked(Sessions::builder()).await;
    let alice = log_in_as(&client, "alice").await;
    let valid = format!("rocket.sid={}", alice.value());
    for header in [
        format!("{valid}; rocket.sid=junk"),
        format!("rocket.sid=junk; {valid}"),
        format!("rocket.sid=\"junk\"; other=1; {valid}; rocket.sid="),
    ] {
        let response = client
            .get("/whoami")
            .header(Header::new("Cookie", header.clone()))
            .dispatch()
            .await;
        assert_eq!(
            response.into_string().await.as_deref(),
            Some("alice"),
            "{header}"
        );
    }
}

/// The answer to cookie tossing: a `__Host-` cookie, which no other site may set.
#[rocket::async_test]
async fn host_prefixed_cookies_are_secure_host_only_and_checked_at_launch() {
    let host = figment().merge(("sessions.cookie_name", "__Host-sid"));
    let client = Client::untracked(rocket_with(host.clone(), Some(Sessions::fairing())))
        .await
        .unwrap();
    let response = client.get("/counter").dispatch().await;
    let cookie = our_set_cookie(&response);
    assert!(cookie.starts_with("__Host-sid="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("; Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain"), "{cookie}");
    let value = cookie.split(';').next().unwrap().to_string();
    let response = client
        .get("/count")
        .header(Header::new("Cookie", value))
        .dispatch()
        .await;
    assert_eq!(response.into_string().await.as_deref(), Some("1"));

    for (key, value) in [
        (
            "sessions.secure",
            rocket::figment::value::Value::from(false),
        ),
        ("sessions.path", "/app".into()),
        ("sessions.domain", "example.com".into()),
    ] {
        assert!(
            refused(host.clone().merge((key, value))).await,
            "__Host- with {key} launched"
        );
    }
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
