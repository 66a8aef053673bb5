//! What a flood of refused requests writes to the log, read back through a logger of the
//! test's own (a test binary of its own: a process has one logger, and the throttle of a
//! reason is the process's).

mod common;

use std::time::Instant;

use common::logged;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, post, routes, FromForm};
use rocket_server_sessions::{CsrfForm, CsrfToken, Sessions};

#[get("/token")]
fn token(csrf: CsrfToken) -> String {
    csrf.token()
}

#[derive(FromForm)]
struct Order {
    amount: u64,
}

#[post("/order", data = "<order>")]
fn order(order: CsrfForm<Order>) -> String {
    format!("ordered {}", order.amount)
}

#[rocket::async_test]
async fn a_flood_of_forged_forms_logs_at_most_one_line_a_second() {
    logged::capture();

    // Rocket keeps a logger set before it: its own log level must not silence ours.
    let figment = common::figment().merge(("log_level", "normal"));
    let rocket = rocket::custom(figment)
        .attach(Sessions::fairing())
        .mount("/", routes![token, order]);
    let client = Client::tracked(rocket).await.unwrap();
    let token = common::get_ok(&client, "/token").await;
    let forged = format!("{}x", token);

    let start = Instant::now();
    for _ in 0..1_000 {
        let response = client
            .post("/order")
            .header(ContentType::Form)
            .body(format!("amount=5&csrf_token={forged}"))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Forbidden);
    }
    let seconds = start.elapsed().as_secs() as usize;

    let lines = logged::containing("refused with 403 Forbidden");
    assert!(
        !lines.is_empty() && lines.len() <= seconds + 1,
        "{seconds} s: {lines:#?}"
    );
    assert_eq!(
        lines[0],
        "POST /order: refused with 403 Forbidden: the form's CSRF token is missing or wrong"
    );
    // Never the token, the forged one or the session's.
    let all = logged::all().join("\n");
    assert!(!all.contains(&token[..20]), "{all}");

    // The right token still passes.
    let response = client
        .post("/order")
        .header(ContentType::Form)
        .body(format!("amount=5&csrf_token={token}"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
}
