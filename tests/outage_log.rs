//! What an outage writes to the log, read back through a logger of the test's own (a
//! test binary of its own: a process has one logger).

mod common;

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use common::{figment, rocket_with, Counting};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::log::private::{self as log, Log, Metadata, Record};
use rocket_server_sessions::Sessions;

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

/// How many lines logged so far contain `text`.
fn logged(text: &str) -> usize {
    LINES
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(text))
        .count()
}

/// Regression, hardening issue reproduction 4: with the store down, 40 failing requests
/// and 20 mixed ones logged 60 "failed" errors and 60 false "answers again" warnings: a
/// failed load and a route without a guard both counted as recovery.
#[rocket::async_test]
async fn an_outage_logs_one_line_when_it_starts_and_one_when_it_ends() {
    log::set_logger(&LINES).expect("the test's logger is the process's first");
    log::set_max_level(log::LevelFilter::Warn);

    let store = Counting::memory();
    // Rocket keeps a logger set before it: its own log level must not silence ours.
    let figment = figment().merge(("log_level", "normal"));
    let sessions = Sessions::builder().store(store.clone()).build();
    let client = Client::untracked(rocket_with(figment, Some(sessions)))
        .await
        .unwrap();
    let cookie = common::new_session(&client).await;

    store.down.store(true, Ordering::SeqCst);
    for _ in 0..40 {
        let response = client
            .get("/counter")
            .cookie(cookie.clone())
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::ServiceUnavailable);
    }
    for i in 0..20 {
        let path = if i % 2 == 0 { "/plain" } else { "/count" };
        client.get(path).cookie(cookie.clone()).dispatch().await;
    }
    assert_eq!(
        logged("the session store failed"),
        1,
        "{:?}",
        LINES.0.lock()
    );
    assert_eq!(logged("answers again"), 0, "{:?}", LINES.0.lock());

    store.down.store(false, Ordering::SeqCst);
    for _ in 0..5 {
        let response = client
            .get("/counter")
            .cookie(cookie.clone())
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok);
    }
    assert_eq!(logged("answers again"), 1, "{:?}", LINES.0.lock());
    assert_eq!(logged("the session store failed"), 1);
}
