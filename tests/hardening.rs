//! The hardening issue's reproductions, each a regression test: what a stranger with no
//! account could do to the stores and to logged-in users, and the defaults that let it.

mod common;

use common::*;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket_server_sessions::{config::MemoryConfig, store::MemoryStore, Sessions};
use std::time::Duration;
use tokio::io::BufReader;

/// How many anonymous visits each flood sends: bounded, on Rocket's local client.
const FLOOD: usize = 2_000;

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
    // Alice's list of sessions is a key outside the cap.
    let sessions = server.session_keys().len() - 1;
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

/// Who `GET /whoami` says is signed in, with the raw `Cookie` header `header`.
async fn whoami_with(client: &Client, header: &str) -> String {
    let response = client
        .get("/whoami")
        .header(Header::new("Cookie", header.to_string()))
        .dispatch()
        .await;
    response.into_string().await.unwrap_or_default()
}

/// Reproduction 7: with `rocket.sid=<valid>; rocket.sid=junk` the visitor was logged out
/// (the last cookie of a name won), so a sibling subdomain could toss in a cookie.
#[rocket::async_test]
async fn a_valid_session_cookie_wins_over_junk_of_the_same_name() {
    let client = untracked(Sessions::builder()).await;
    let alice = log_in_as(&client, "alice").await;
    let valid = format!("rocket.sid={}", alice.value());
    // A cookie that verifies, but whose session is gone: the attacker's own, logged out.
    let theirs = log_in_as(&client, "mallory").await;
    let response = client
        .post("/forget-me")
        .cookie(theirs.clone())
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    let dead = format!("rocket.sid={}", theirs.value());
    for header in [
        format!("{valid}; rocket.sid=junk"),
        format!("rocket.sid=junk; {valid}"),
        format!("rocket.sid=\"junk\"; other=1; {valid}; rocket.sid="),
        format!("{dead}; {valid}"),
    ] {
        assert_eq!(whoami_with(&client, &header).await, "alice", "{header}");
    }
}

/// Junk that cannot be one of our cookies costs no check and counts toward no cap: a
/// request stuffed with it still finds the valid cookie behind.
#[rocket::async_test]
async fn junk_of_every_length_never_hides_a_valid_cookie_behind_it() {
    let client = untracked(Sessions::builder()).await;
    let alice = log_in_as(&client, "alice").await;
    let valid = format!("rocket.sid={}", alice.value());
    // Well formed in length, but signed by no one: these do count, up to the cap.
    let forged = format!("rocket.sid={}", "A".repeat(alice.value().len()));
    for header in [
        format!("{}{valid}", "rocket.sid=x; ".repeat(50)),
        format!("{}{valid}", format!("{forged}; ").repeat(7)),
    ] {
        assert_eq!(whoami_with(&client, &header).await, "alice", "{header}");
    }
}

/// Reproduction (attacker review, 2026-12-07): Rocket's cookie jar percent-decodes
/// names, so a `__Host%2Dsid` cookie, which a sibling subdomain may set, was read as
/// `__Host-sid` when the request carried no cookie of that literal name: the visitor
/// was signed in to the attacker's account. Over real HTTP, since Rocket's local client
/// fills the jar without parsing a header.
#[rocket::async_test]
async fn a_percent_encoded_cookie_name_is_not_ours() {
    let port = free_port();
    let figment = figment()
        .merge(("port", port))
        .merge(("address", "127.0.0.1"))
        .merge(("sessions.cookie_name", "__Host-sid"));
    let rocket = rocket_with(figment, Some(Sessions::fairing()))
        .ignite()
        .await
        .expect("the app ignites");
    let shutdown = rocket.shutdown();
    tokio::spawn(rocket.launch());
    let get = |path: &'static str, cookie: Option<String>| async move {
        let stream = http1::connect(port).await;
        let cookie = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{cookie}\r\n");
        let mut stream = BufReader::new(stream);
        let exchange = http1::exchange(&mut stream, &request);
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .unwrap_or_else(|_| panic!("GET {path} hung"))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    };

    let login = get("/login/mallory", None).await;
    let pair = login.set_cookie("__Host-sid").expect("a session cookie");
    let value = pair.split_once('=').expect("name=value").1.to_string();
    let literal = get("/whoami", Some(format!("__Host-sid={value}"))).await;
    assert_eq!(literal.body, "mallory");
    let encoded_value = value.replace('.', "%2E");
    for cookie in [
        format!("__Host%2Dsid={value}"),
        format!("%5F_Host-sid={value}"),
        format!("__Host-si%64={value}"),
        format!("__Host%2Dsid={encoded_value}"),
    ] {
        let answer = get("/whoami", Some(cookie.clone())).await;
        assert_ne!(answer.body, "mallory", "{cookie}");
    }
    shutdown.notify();
}

/// The answer to cookie tossing: a `__Host-` cookie, which no other site may set.
#[rocket::async_test]
async fn host_prefixed_cookies_are_secure_host_only_and_checked_at_launch() {
    // Browsers read the prefix without regard to case: so does launch.
    let lower = figment()
        .merge(("sessions.cookie_name", "__host-sid"))
        .merge(("sessions.secure", false));
    assert!(refused(lower).await, "__host- with secure = false launched");
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

/// On a route without a guard, `rolling` refreshes the session of the first cookie whose
/// session the store holds: a signed but dead cookie tossed in before the live one (the
/// attacker's own, destroyed) does not leave the live session to end for inactivity.
#[rocket::async_test]
async fn a_dead_cookie_shadows_no_live_one_on_a_route_without_a_guard() {
    let client = untracked(Sessions::builder().rolling(true)).await;
    let dead = new_session(&client).await;
    let response = client
        .post("/destroy")
        .cookie(dead.clone())
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    let live = new_session(&client).await;
    let plain = |header: String| {
        client
            .get("/plain")
            .header(Header::new("Cookie", header))
            .dispatch()
    };

    let response = plain(format!(
        "{COOKIE}={}; {COOKIE}={}",
        dead.value(),
        live.value()
    ))
    .await;
    let refreshed = session_cookie(&response).expect("rolling refreshes the live session");
    assert_eq!(refreshed.value(), live.value());
    // Only dead ones: nothing to refresh, no cookie.
    let response = plain(format!("{COOKIE}={}", dead.value())).await;
    assert_eq!(session_cookie(&response), None);
}
