//! What a flood of refused requests writes to the log, read back through a logger of the
//! test's own (a test binary of its own: a process has one logger, and the throttle of a
//! reason is the process's).

mod common;

use std::sync::Mutex;
use std::time::Instant;

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use rocket::log::private::{self as log, Log, Metadata, Record};
use rocket::{get, post, routes, FromForm};
use rocket_server_sessions::{CsrfForm, CsrfToken, Sessions};

/// Keeps every line logged at warning level or above.
struct Lines(Mutex<Vec<String>>);

static LINES: Lines = Lines(Mutex::new(Vec::new()));

impl Log for Lines {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// The lines logged so far that contain `text`.
fn logged(text: &str) -> Vec<String> {
    LINES
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(text))
        .cloned()
        .collect()
}

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
    log::set_logger(&LINES).expect("the test's logger is the process's first");
    log::set_max_level(log::LevelFilter::Warn);

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

    let lines = logged("refused with 403 Forbidden");
    assert!(
        !lines.is_empty() && lines.len() <= seconds + 1,
        "{seconds} s: {lines:#?}"
    );
    assert_eq!(
        lines[0],
        "POST /order: refused with 403 Forbidden: the form's CSRF token is missing or wrong"
    );
    // Never the token, the forged one or the session's.
    let all = LINES.0.lock().unwrap().join("\n");
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
