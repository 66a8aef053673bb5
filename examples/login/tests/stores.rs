//! The login example runs unchanged on every store: only `ROCKET_SESSIONS` (here, the
//! `sessions` table of the figment) changes. A visitor signs in, reaches the dashboard
//! under a new session id, signs out, and is a stranger again.

#[path = "../../../tests/common/mod.rs"]
mod common;

#[allow(dead_code)]
#[path = "../main.rs"]
mod login;

use common::*;
use rocket::figment::Figment;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;

fn csrf_in(page: &str) -> String {
    let (_, rest) = page
        .split_once(r#"name="csrf_token" value=""#)
        .expect("a csrf_token field");
    rest.split('"').next().unwrap().to_string()
}

async fn post_form<'c>(
    client: &'c Client,
    path: &str,
    body: String,
) -> rocket::local::asynchronous::LocalResponse<'c> {
    client
        .post(path.to_string())
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await
}

/// Signs alice in and out on the login example configured by `sessions`.
async fn signs_in_and_out(name: &str, sessions: Figment) {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("sessions.secrets", [SECRET]))
        .merge(sessions);
    let client = Client::tracked(login::app_on(figment)).await.expect(name);
    let response = client.get("/dashboard").dispatch().await;
    assert_eq!(response.status(), Status::SeeOther, "{name}");

    let token = csrf_in(&get_ok(&client, "/login").await);
    let body = format!("username=alice&password=wonderland&csrf_token={token}");
    let response = post_form(&client, "/login", body).await;
    assert_eq!(response.status(), Status::SeeOther, "{name}");
    let page = get_ok(&client, "/dashboard").await;
    assert!(page.contains("alice"), "{name}");

    let response = post_form(&client, "/logout", format!("csrf_token={}", csrf_in(&page))).await;
    assert_eq!(response.status(), Status::SeeOther, "{name}");
    let page = get_ok(&client, "/login").await;
    assert!(page.contains("You have been logged out."), "{name}");
    let response = client.get("/dashboard").dispatch().await;
    assert_eq!(response.status(), Status::SeeOther, "{name}");
}

#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]
fn sessions(store: &str, url: String) -> Figment {
    Figment::new()
        .merge(("sessions.store", store))
        .merge(("sessions.sql.url", url))
        .merge(("sessions.sql.table", sql::unique_table()))
}

#[rocket::async_test]
async fn the_login_example_runs_on_every_store() {
    signs_in_and_out("memory", Figment::new()).await;
    #[cfg(feature = "file")]
    {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("login-{}", unique_table()));
        let file = Figment::new()
            .merge(("sessions.store", "file"))
            .merge(("sessions.file.dir", dir));
        signs_in_and_out("file", file).await;
    }
    #[cfg(feature = "redis")]
    if let Some(config) = redis::standalone_config() {
        let redis = Figment::new()
            .merge(("sessions.store", "redis"))
            .merge(("sessions.redis.url", config.url))
            .merge(("sessions.redis.prefix", config.prefix));
        signs_in_and_out("redis", redis).await;
    }
    #[cfg(feature = "sqlite")]
    signs_in_and_out("sqlite", sessions("sqlite", sql::sqlite_url())).await;
    #[cfg(feature = "postgres")]
    if let Some(url) = sql::postgres_url() {
        signs_in_and_out("postgres", sessions("postgres", url)).await;
    }
    #[cfg(feature = "mysql")]
    if let Some(url) = sql::mysql_url() {
        signs_in_and_out("mysql", sessions("mysql", url)).await;
    }
}
