//! What an outage writes to the log, read back through a logger of the test's own (a
//! test binary of its own: a process has one logger).

mod common;

use std::sync::atomic::Ordering;

use common::{figment, logged, rocket_with, Counting};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::Sessions;

/// Regression, hardening issue reproduction 4: with the store down, 40 failing requests
/// and 20 mixed ones logged 60 "failed" errors and 60 false "answers again" warnings: a
/// failed load and a route without a guard both counted as recovery.
#[rocket::async_test]
async fn an_outage_logs_one_line_when_it_starts_and_one_when_it_ends() {
    logged::capture();

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
        logged::containing("the session store failed").len(),
        1,
        "{:?}",
        logged::all()
    );
    assert_eq!(
        logged::containing("answers again").len(),
        0,
        "{:?}",
        logged::all()
    );

    store.down.store(false, Ordering::SeqCst);
    for _ in 0..5 {
        let response = client
            .get("/counter")
            .cookie(cookie.clone())
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok);
    }
    assert_eq!(
        logged::containing("answers again").len(),
        1,
        "{:?}",
        logged::all()
    );
    assert_eq!(logged::containing("the session store failed").len(), 1);
}
