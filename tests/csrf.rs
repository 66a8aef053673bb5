//! `CsrfToken::verify_header`: the token sent by scripts in `X-CSRF-Token`; `CsrfForm`:
//! a form and its token checked in one step; refusals answered by the app's catchers.

mod common;

use common::Counting;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::response::content::RawHtml;
use rocket::serde::json::Json;
use rocket::{catch, catchers, get, post, routes, FromForm};
use rocket_server_sessions::{CsrfForm, CsrfToken, Error, Session, SessionEntry, Sessions};

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
fn regenerate(
    mut seen: rocket_server_sessions::Session<Seen>,
    mut session: rocket_server_sessions::SessionHandle,
) -> Result<(), Error> {
    seen.set(Seen(true))?;
    session.regenerate();
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Cart(Vec<String>);

impl SessionEntry for Cart {
    const KEY: &'static str = "cart";
}

#[get("/cart")]
fn cart_page(csrf: CsrfToken, cart: Session<Cart>) -> RawHtml<String> {
    let items = cart.get().unwrap_or_default().0.join(",");
    RawHtml(format!(
        r#"<p>{items}</p><form method="post" action="/cart/add">{}<input name="sku"></form>"#,
        csrf.hidden_input()
    ))
}

#[derive(FromForm)]
struct Add {
    #[field(validate = len(1..))]
    sku: String,
}

#[post("/cart/add", data = "<add>")]
fn cart_add(add: CsrfForm<Add>, mut cart: Session<Cart>) -> Result<&'static str, Error> {
    cart.update(|cart| cart.0.push(add.into_inner().sku))?;
    Ok("added")
}

#[catch(403)]
fn forbidden() -> &'static str {
    "our own 403 page"
}

async fn client() -> Client {
    Client::tracked(app(Sessions::fairing()))
        .await
        .expect("the app launches")
}

fn app(sessions: Sessions) -> rocket::Rocket<rocket::Build> {
    rocket::custom(common::figment())
        .attach(sessions)
        .mount(
            "/",
            routes![token, transfer, regenerate, cart_page, cart_add],
        )
        .register("/", catchers![forbidden])
}

/// The token in the hidden input of `GET /cart`, checking the input's HTML.
async fn form_token(client: &Client) -> String {
    let page = common::get_ok(client, "/cart").await;
    let token = common::get_ok(client, "/token").await;
    let input = format!(r#"<input type="hidden" name="csrf_token" value="{token}">"#);
    assert!(page.contains(&input), "{page}");
    token
}

/// `POST /cart/add` with `body`: the status and the body.
async fn add(client: &Client, body: String) -> (Status, String) {
    let response = client
        .post("/cart/add")
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await;
    (
        response.status(),
        response.into_string().await.unwrap_or_default(),
    )
}

/// What the cart page lists.
async fn items(client: &Client) -> String {
    let page = common::get_ok(client, "/cart").await;
    page.split("<p>")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_default()
        .to_string()
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

#[rocket::async_test]
async fn a_csrf_form_runs_the_handler_only_with_the_sessions_token() {
    let client = client().await;
    let token = form_token(&client).await;

    assert_eq!(
        add(&client, format!("csrf_token={token}&sku=tea")).await,
        (Status::Ok, "added".into())
    );
    assert_eq!(items(&client).await, "tea");

    for forged in [
        "sku=cake".to_string(),
        "csrf_token=&sku=cake".to_string(),
        format!("csrf_token={token}x&sku=cake"),
        format!("csrf_token=nope&csrf_token={token}&sku=cake"),
        format!("csrf_token={token}&csrf_token={token}&sku=cake"),
        // The token is checked before the form: a forged post learns nothing of it.
        "csrf_token=nope&sku=".to_string(),
    ] {
        let (status, body) = add(&client, forged.clone()).await;
        assert_eq!(status, Status::Forbidden, "{forged}");
        assert_eq!(body, "our own 403 page", "{forged}");
    }
    assert_eq!(
        items(&client).await,
        "tea",
        "no forged post changed the cart"
    );

    // With the right token, the form's own errors are the form's: 422.
    assert_eq!(
        add(&client, format!("csrf_token={token}&sku=")).await.0,
        Status::UnprocessableEntity
    );
    // The field may come anywhere in the form.
    assert_eq!(
        add(&client, format!("sku=jam&csrf_token={token}")).await.0,
        Status::Ok
    );
    assert_eq!(items(&client).await, "tea,jam");
}

#[rocket::async_test]
async fn a_strangers_form_checks_against_the_pending_id_and_a_forged_one_stores_nothing() {
    let store = Counting::memory();
    let client = Client::tracked(app(Sessions::builder().store(store.clone()).build()))
        .await
        .unwrap();

    // No cookie at all: forbidden, and the store is never asked to write.
    let (status, _) = add(&client, format!("csrf_token={}&sku=tea", "a".repeat(43))).await;
    assert_eq!(status, Status::Forbidden);
    // The stranger's form page stores nothing either.
    let token = form_token(&client).await;
    let (_, create, commit, _, _) = store.calls.get();
    assert_eq!((create, commit), (0, 0));

    // The pending id's token is good: the session starts with the cart.
    assert_eq!(
        add(&client, format!("csrf_token={token}&sku=tea")).await.0,
        Status::Ok
    );
    assert_eq!(store.calls.get().1, 1, "one create");
    assert_eq!(items(&client).await, "tea");
}

#[rocket::async_test]
async fn an_error_returned_by_a_handler_answers_through_the_apps_catcher() {
    let client = client().await;
    common::get_ok(&client, "/token").await;

    let response = client
        .post("/api/transfer")
        .header(Header::new("X-CSRF-Token", "nope"))
        .body("5")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(
        response.into_string().await.unwrap_or_default(),
        "our own 403 page"
    );
}
