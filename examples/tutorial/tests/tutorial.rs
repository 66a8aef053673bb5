//! The tutorial's routes are its contract: each exercise through Rocket's local client.

#[allow(dead_code)]
#[path = "../main.rs"]
mod tutorial;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket_server_sessions::{store::MemoryStore, testing, SessionsBuilder};

/// A secret for the tests, so that cookies verify across clients of one app.
const SECRET: &str = "tutorial-tests-tutorial-tests-tutorial-tests-0123456789";

fn figment() -> rocket::figment::Figment {
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("sessions.secrets", [SECRET]))
}

/// A tracked client (a browser that keeps its cookies) of the tutorial with `sessions`.
async fn client_with(sessions: SessionsBuilder) -> Client {
    Client::tracked(tutorial::app_with(figment(), sessions))
        .await
        .expect("the tutorial launches")
}

async fn client() -> Client {
    client_with(tutorial::sessions()).await
}

/// The CSRF token in `html`'s hidden input.
fn token_in(html: &str) -> String {
    let field = r#"<input type="hidden" name="csrf_token" value=""#;
    let start = html.find(field).expect("a CSRF field on the page") + field.len();
    let end = html[start..].find('"').expect("the field's end");
    html[start..start + end].to_string()
}

/// `GET path`'s body.
async fn page(client: &Client, path: &str) -> String {
    let response = client.get(path).dispatch().await;
    assert_eq!(response.status(), Status::Ok, "GET {path}");
    response.into_string().await.unwrap_or_default()
}

/// The token of the form on `path`.
async fn token_of(client: &Client, path: &str) -> String {
    token_in(&page(client, path).await)
}

/// `POST path` with the form `fields`.
async fn post<'c>(client: &'c Client, path: &'c str, fields: &[(&str, &str)]) -> LocalResponse<'c> {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", rocket::http::RawStr::new(v).percent_encode()))
        .collect();
    client
        .post(path)
        .header(ContentType::Form)
        .body(body.join("&"))
        .dispatch()
        .await
}

/// Where a `303` sends the browser.
fn see_other(response: &LocalResponse<'_>) -> String {
    assert_eq!(response.status(), Status::SeeOther);
    response
        .headers()
        .get_one("Location")
        .unwrap_or_default()
        .to_string()
}

/// The JSON `GET path` answers, as text.
async fn json(client: &Client, path: &str) -> String {
    page(client, path).await
}

async fn sign_in(client: &Client, remember: bool) -> LocalResponse<'_> {
    let token = token_of(client, "/login").await;
    let mut fields = vec![
        ("username", "alice"),
        ("password", "wonderland"),
        ("csrf_token", token.as_str()),
    ];
    if remember {
        fields.push(("remember", "on"));
    }
    post(client, "/login", &fields).await
}

#[rocket::async_test]
async fn every_page_with_a_form_carries_its_csrf_field() {
    let client = client().await;
    for path in ["/", "/login", "/signup/1"] {
        assert!(!token_of(&client, path).await.is_empty(), "{path}");
    }
    let home = page(&client, "/").await;
    for form in [r#"action="/cart/add""#, r#"action="/theme""#] {
        assert!(home.contains(form), "GET / has the {form} form");
    }
    testing::sign_in(&client, &"alice".to_string())
        .await
        .unwrap();
    assert!(!token_of(&client, "/account").await.is_empty());
}

#[rocket::async_test]
async fn the_cart_adds_up_removes_and_refuses_a_missing_or_wrong_token() {
    let client = client().await;
    assert_eq!(json(&client, "/cart").await, r#"{"items":{}}"#);
    let token = token_of(&client, "/").await;
    for (sku, qty) in [("apple", "2"), ("pear", "1"), ("apple", "3")] {
        let fields = [("sku", sku), ("qty", qty), ("csrf_token", &token)];
        let added = post(&client, "/cart/add", &fields).await;
        assert_eq!(see_other(&added), "/cart");
    }
    assert_eq!(
        json(&client, "/cart").await,
        r#"{"items":{"apple":5,"pear":1}}"#
    );

    let removed = post(
        &client,
        "/cart/remove",
        &[("sku", "apple"), ("csrf_token", &token)],
    )
    .await;
    assert_eq!(see_other(&removed), "/cart");
    assert_eq!(json(&client, "/cart").await, r#"{"items":{"pear":1}}"#);

    // No token, or another one: 403, and the cart is as it was.
    let forged = [
        ("sku", "plum"),
        ("qty", "1"),
        ("csrf_token", "not-the-token"),
    ];
    let missing = [("sku", "plum"), ("qty", "1")];
    for fields in [&forged[..], &missing[..]] {
        let refused = post(&client, "/cart/add", fields).await;
        assert_eq!(refused.status(), Status::Forbidden);
    }
    let refused = post(&client, "/cart/remove", &[("sku", "pear")]).await;
    assert_eq!(refused.status(), Status::Forbidden);
    assert_eq!(json(&client, "/cart").await, r#"{"items":{"pear":1}}"#);

    // Another browser's token is no token here.
    let other = client_with(tutorial::sessions()).await;
    let theirs = token_in(&page(&other, "/").await);
    let fields = [
        ("sku", "plum"),
        ("qty", "1"),
        ("csrf_token", theirs.as_str()),
    ];
    assert_eq!(
        post(&client, "/cart/add", &fields).await.status(),
        Status::Forbidden
    );
    assert_eq!(json(&client, "/cart").await, r#"{"items":{"pear":1}}"#);
}

#[rocket::async_test]
async fn the_theme_is_remembered_and_survives_log_in() {
    let client = client().await;
    assert_eq!(json(&client, "/theme").await, r#"{"theme":"light"}"#);
    let token = token_of(&client, "/").await;
    let saved = post(
        &client,
        "/theme",
        &[("theme", "dark"), ("csrf_token", &token)],
    )
    .await;
    assert_eq!(see_other(&saved), "/");
    assert_eq!(json(&client, "/theme").await, r#"{"theme":"dark"}"#);
    assert!(page(&client, "/").await.contains(r#"<body class="dark">"#));

    // A theme the app does not have changes nothing.
    let token = token_in(&page(&client, "/").await);
    let refused = post(
        &client,
        "/theme",
        &[("theme", "neon"), ("csrf_token", &token)],
    )
    .await;
    assert_eq!(refused.status(), Status::UnprocessableEntity);

    let signed_in = sign_in(&client, false).await;
    assert_eq!(see_other(&signed_in), "/account");
    assert_eq!(json(&client, "/theme").await, r#"{"theme":"dark"}"#);
}

#[rocket::async_test]
async fn the_signup_keeps_its_progress_step_by_step_and_forgets_it_when_done() {
    let client = client().await;
    // Nothing done: every later step sends the visitor to the first.
    for path in ["/signup/2", "/signup/3", "/signup/done"] {
        let response = client.get(path).dispatch().await;
        assert_eq!(see_other(&response), "/signup/1", "{path}");
    }
    let token = token_of(&client, "/signup/1").await;
    let early = post(
        &client,
        "/signup/2",
        &[("address", "1 Rabbit Hole"), ("csrf_token", &token)],
    )
    .await;
    assert_eq!(see_other(&early), "/signup/1");

    let named = post(
        &client,
        "/signup/1",
        &[("name", "Alice <Liddell>"), ("csrf_token", &token)],
    )
    .await;
    assert_eq!(see_other(&named), "/signup/2");
    let response = client.get("/signup/3").dispatch().await;
    assert_eq!(see_other(&response), "/signup/2");
    // Each step shows what was typed before, escaped.
    let step2 = page(&client, "/signup/2").await;
    assert!(step2.contains("Alice &lt;Liddell&gt;"), "{step2}");
    assert!(!step2.contains("<Liddell>"));
    assert!(page(&client, "/signup/1")
        .await
        .contains(r#"value="Alice &lt;Liddell&gt;""#));

    let addressed = post(
        &client,
        "/signup/2",
        &[("address", "1 Rabbit Hole"), ("csrf_token", &token)],
    )
    .await;
    assert_eq!(see_other(&addressed), "/signup/3");
    let step3 = page(&client, "/signup/3").await;
    assert!(step3.contains("1 Rabbit Hole") && step3.contains("Alice &lt;Liddell&gt;"));
    let response = client.get("/signup/done").dispatch().await;
    assert_eq!(see_other(&response), "/signup/3", "not confirmed yet");

    let confirmed = post(&client, "/signup/3", &[("csrf_token", &token)]).await;
    assert_eq!(see_other(&confirmed), "/signup/done");
    let done = page(&client, "/signup/done").await;
    assert!(done.contains("Alice &lt;Liddell&gt;") && done.contains("1 Rabbit Hole"));

    // Cleared: the next signup starts over.
    let response = client.get("/signup/done").dispatch().await;
    assert_eq!(see_other(&response), "/signup/1");
    let response = client.get("/signup/2").dispatch().await;
    assert_eq!(see_other(&response), "/signup/1");
}

#[rocket::async_test]
async fn log_in_opens_the_account_and_log_out_closes_it() {
    let client = client().await;
    let response = client.get("/account").dispatch().await;
    assert_eq!(see_other(&response), "/login?next=%2Faccount");

    let token = token_of(&client, "/login").await;
    let wrong = [
        ("username", "alice"),
        ("password", "looking-glass"),
        ("csrf_token", &token),
    ];
    let refused = post(&client, "/login", &wrong).await;
    assert_eq!(refused.status(), Status::Unauthorized);
    let nobody = [
        ("username", "bob"),
        ("password", "wonderland"),
        ("csrf_token", &token),
    ];
    assert_eq!(
        post(&client, "/login", &nobody).await.status(),
        Status::Unauthorized
    );
    let tokenless = [("username", "alice"), ("password", "wonderland")];
    assert_eq!(
        post(&client, "/login", &tokenless).await.status(),
        Status::Forbidden
    );
    let response = client.get("/account").dispatch().await;
    assert_eq!(see_other(&response), "/login?next=%2Faccount");

    // Back to where the visitor was going, and never off the site.
    let token = token_of(&client, "/login").await;
    let fields = [
        ("username", "alice"),
        ("password", "wonderland"),
        ("next", "/signup/1"),
        ("csrf_token", token.as_str()),
    ];
    assert_eq!(
        see_other(&post(&client, "/login", &fields).await),
        "/signup/1"
    );
    let token = token_in(&page(&client, "/account").await);
    let fields = [
        ("username", "alice"),
        ("password", "wonderland"),
        ("next", "https://evil.example/"),
        ("csrf_token", token.as_str()),
    ];
    assert_eq!(
        see_other(&post(&client, "/login", &fields).await),
        "/account"
    );
    let account = page(&client, "/account").await;
    assert!(account.contains(r#"<span id="user">alice</span>"#));

    // Log-out is a form with its token: without it, nothing happens.
    assert_eq!(
        post(&client, "/logout", &[]).await.status(),
        Status::Forbidden
    );
    assert!(page(&client, "/account").await.contains("alice"));
    let token = token_in(&account);
    let out = post(&client, "/logout", &[("csrf_token", &token)]).await;
    assert_eq!(see_other(&out), "/login");
    assert!(page(&client, "/login")
        .await
        .contains("You have been signed out."));
    let response = client.get("/account").dispatch().await;
    assert_eq!(see_other(&response), "/login?next=%2Faccount");
}

/// The session cookie a response sets.
fn session_cookie(response: &LocalResponse<'_>) -> rocket::http::Cookie<'static> {
    response
        .cookies()
        .get("rocket.sid")
        .or_else(|| response.cookies().iter().next())
        .expect("a session cookie")
        .clone()
        .into_owned()
}

#[rocket::async_test]
async fn inactivity_ends_a_signed_in_session_whole_and_the_login_page_says_so() {
    let idle = Duration::from_millis(1500);
    let store = Arc::new(MemoryStore::default());
    let sessions = || tutorial::sessions().idle_timeout(idle).store(store.clone());
    let (alice, remembered, stranger) = (
        client_with(sessions()).await,
        client_with(sessions()).await,
        client_with(sessions()).await,
    );

    // A browser-session cookie for a plain log-in; 30 days with "remember me".
    let signed_in = sign_in(&alice, false).await;
    let cookie = session_cookie(&signed_in);
    assert_eq!(
        (cookie.max_age(), cookie.expires()),
        (None, None),
        "{cookie}"
    );
    let kept = sign_in(&remembered, true).await;
    let cookie = session_cookie(&kept);
    let thirty_days = rocket::time::Duration::days(30);
    assert_eq!(cookie.max_age(), Some(thirty_days), "{cookie}");

    // Entries of alice's session, and a stranger's cart.
    let token = token_of(&alice, "/").await;
    let fields = [
        ("sku", "apple"),
        ("qty", "1"),
        ("csrf_token", token.as_str()),
    ];
    assert_eq!(
        see_other(&post(&alice, "/cart/add", &fields).await),
        "/cart"
    );
    let token = token_of(&stranger, "/").await;
    let fields = [
        ("sku", "pear"),
        ("qty", "2"),
        ("csrf_token", token.as_str()),
    ];
    assert_eq!(
        see_other(&post(&stranger, "/cart/add", &fields).await),
        "/cart"
    );

    // No request for longer than the idle timeout: the store lets alice's session go
    // (the remembered one and the stranger's stay). Watched in the store itself, since
    // any request of hers would keep it.
    let sessions = store.len();
    let deadline = Instant::now() + idle + Duration::from_secs(20);
    while {
        store.sweep();
        store.len() >= sessions
    } {
        assert!(Instant::now() < deadline, "the idle session never ended");
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Her next protected page sends her to sign in, and that page says why.
    let response = alice.get("/account").dispatch().await;
    assert_eq!(see_other(&response), "/login?next=%2Faccount");
    let login = page(&alice, "/login?next=%2Faccount").await;
    assert!(login.contains("inactivity"), "{login}");
    // Whole: her cart went with it.
    assert_eq!(json(&alice, "/cart").await, r#"{"items":{}}"#);

    // "Remember me" is not ended by inactivity; an anonymous cart is not either.
    assert!(page(&remembered, "/account").await.contains("alice"));
    assert_eq!(json(&stranger, "/cart").await, r#"{"items":{"pear":2}}"#);
    // A first visit to the login page says nothing of the kind.
    assert!(!page(&stranger, "/login").await.contains("inactivity"));
}

/// A stranger who replays the log-out form with a pending id's token (which stores
/// nothing) gets no session stored: the "signed out" flash is only for someone who was.
#[rocket::async_test]
async fn a_strangers_log_out_stores_nothing() {
    let store = Arc::new(MemoryStore::default());
    let client = client_with(tutorial::sessions().store(store.clone())).await;
    let token = token_of(&client, "/login").await;
    for _ in 0..3 {
        let response = post(&client, "/logout", &[("csrf_token", token.as_str())]).await;
        assert_eq!(see_other(&response), "/login");
    }
    assert_eq!(store.len(), 0, "a stranger's log-out stored a session");
}
