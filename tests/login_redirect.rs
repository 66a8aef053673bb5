//! The redirect to the login page that `Authenticated` asks for: browsers are sent to
//! `login_path` with a safe `next`, scripts get a plain 401, and the application's own
//! routes and catchers win over it.

mod common;

use common::SECRET;
use rocket::http::{Accept, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{get, routes};
use rocket_server_sessions::{Authenticated, Sessions};

fn figment() -> rocket::figment::Figment {
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("sessions.secrets", [SECRET]))
}

fn location(response: &LocalResponse<'_>) -> Option<String> {
    response.headers().get_one("Location").map(String::from)
}

#[rocket::async_test]
async fn a_stranger_is_redirected_to_login_with_next_and_a_script_gets_a_401() {
    let rocket = rocket::custom(figment())
        .attach(Sessions::fairing())
        .mount("/", routes![vault]);
    let client = Client::tracked(rocket).await.unwrap();
    let response = client.get("/vault?tab=a&b=c%20d").dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(
        location(&response).as_deref(),
        Some("/login?next=%2Fvault%3Ftab%3Da%26b%3Dc%2520d")
    );
    let json = client.get("/vault").header(Accept::JSON).dispatch().await;
    assert_eq!(json.status(), Status::Unauthorized);
    assert_eq!(location(&json), None);
    let xhr = client
        .get("/vault")
        .header(Header::new("X-Requested-With", "XMLHttpRequest"))
        .dispatch()
        .await;
    assert_eq!(xhr.status(), Status::Unauthorized);
    assert_eq!(location(&xhr), None);
}

#[get("/members", rank = 1)]
fn members(user: Authenticated) -> String {
    format!("members: {}", *user)
}

#[get("/members", rank = 2)]
fn members_teaser() -> &'static str {
    "join us"
}

#[get("/teapot")]
fn other_401() -> Status {
    Status::Unauthorized
}

#[get("/vault", rank = 1)]
fn vault(user: Authenticated) -> String {
    format!("vault of {}", *user)
}

/// Answers a stranger itself, after `Authenticated` forwarded: its 401 is its own.
#[get("/vault", rank = 2)]
fn vault_refusal() -> (Status, &'static str) {
    (Status::Unauthorized, "members only")
}

#[rocket::async_test]
async fn a_ranked_route_still_catches_the_forward_and_other_401s_are_untouched() {
    let rocket = rocket::custom(figment()).attach(Sessions::fairing()).mount(
        "/",
        routes![members, members_teaser, other_401, vault, vault_refusal],
    );
    let client = Client::tracked(rocket).await.unwrap();
    let response = client.get("/members").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.into_string().await.as_deref(), Some("join us"));

    let response = client.get("/teapot").dispatch().await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(location(&response), None);

    let response = client.get("/vault").dispatch().await;
    assert_eq!(
        response.status(),
        Status::Unauthorized,
        "a lower-ranked route's own 401 stays"
    );
    assert_eq!(location(&response), None);
    assert_eq!(
        response.into_string().await.as_deref(),
        Some("members only")
    );
}

#[rocket::catch(401)]
fn own_401() -> &'static str {
    "please sign in with your badge"
}

#[rocket::catch(default)]
fn own_default(status: Status, _: &rocket::Request<'_>) -> String {
    format!("our own {} page", status.code)
}

/// The shape issue: the redirect was made by rewriting responses after the fact, so it
/// overrode an application's own 401 catcher, and an API-only app could not turn it off.
#[rocket::async_test]
async fn an_apps_own_401_catcher_wins_and_login_path_false_turns_the_redirect_off() {
    let app = |figment: rocket::figment::Figment| {
        rocket::custom(figment)
            .attach(Sessions::fairing())
            .mount("/", routes![vault])
    };
    let own = Client::tracked(app(figment()).register("/", rocket::catchers![own_401]))
        .await
        .unwrap();
    let response = own.get("/vault").dispatch().await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(location(&response), None);
    assert_eq!(
        response.into_string().await.as_deref(),
        Some("please sign in with your badge")
    );

    let api = Client::tracked(app(figment().merge(("sessions.login_path", false))))
        .await
        .unwrap();
    let response = api.get("/vault").dispatch().await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(location(&response), None);

    // An app's default catcher still answers the 401s that are not a browser's.
    let styled = app(figment()).register("/", rocket::catchers![own_default]);
    let styled = Client::tracked(styled).await.unwrap();
    let browser = styled.get("/vault").dispatch().await;
    assert_eq!(browser.status(), Status::SeeOther);
    let json = styled.get("/vault").header(Accept::JSON).dispatch().await;
    assert_eq!(json.status(), Status::Unauthorized);
    assert_eq!(
        json.into_string().await.as_deref(),
        Some("our own 401 page")
    );
}

#[rocket::async_test]
async fn the_login_redirect_keeps_headers_other_fairings_set() {
    // Attached first, so its header is on the response before ours rewrites it.
    let tag = rocket::fairing::AdHoc::on_response("tag", |_, res| {
        Box::pin(async move {
            res.set_raw_header("X-Tag", "kept");
        })
    });
    let rocket = rocket::custom(figment())
        .attach(tag)
        .attach(Sessions::fairing())
        .mount("/", routes![vault]);
    let client = Client::tracked(rocket).await.unwrap();
    let response = client.get("/vault").dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response).as_deref(), Some("/login?next=%2Fvault"));
    assert_eq!(response.headers().get_one("X-Tag"), Some("kept"));
    assert_eq!(response.into_string().await.unwrap_or_default(), "");
}
