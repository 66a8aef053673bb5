//! The SQL stores in a running app: configured from Rocket.toml's keys, their table, the
//! sweep, the cap, an outage and its recovery, and an unreachable database at launch.
#![cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]

mod common;

use std::time::{Duration, Instant};

use common::*;
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::Sessions;

/// The test app on `store` at `url`, in a table of its own, configured through the
/// `sessions` table as a user would (`ROCKET_SESSIONS='{store="...",sql={url="..."}}'`).
fn sql_figment(store: &str, url: &str, table: &str) -> Figment {
    figment()
        .merge(("sessions.store", store))
        .merge(("sessions.sql.url", url))
        .merge(("sessions.sql.table", table))
}

async fn app(figment: Figment) -> Client {
    Client::untracked(rocket_with(figment, Some(Sessions::fairing())))
        .await
        .expect("the app launches")
}

/// Every store the build has and the tests can reach: (store, URL).
fn databases() -> Vec<(&'static str, String)> {
    let mut databases = Vec::new();
    #[cfg(feature = "sqlite")]
    databases.push(("sqlite", sql::sqlite_url()));
    #[cfg(feature = "postgres")]
    if let Some(url) = sql::postgres_url() {
        databases.push(("postgres", url));
    }
    #[cfg(feature = "mysql")]
    if let Some(url) = sql::mysql_url() {
        databases.push(("mysql", url));
    }
    databases
}

#[rocket::async_test]
async fn each_sql_store_runs_the_app_from_its_keys_and_creates_its_table() {
    for (store, url) in databases() {
        let table = sql::unique_table();
        let client = app(sql_figment(store, &url, &table)).await;
        let cookie = new_session(&client).await;
        let response = client
            .get("/counter")
            .cookie(cookie.clone())
            .dispatch()
            .await;
        assert_eq!(
            response.into_string().await.as_deref(),
            Some("2"),
            "{store}"
        );
        let alice = log_in_as(&client, "alice").await;
        let response = client.get("/whoami").cookie(alice).dispatch().await;
        assert_eq!(
            response.into_string().await.as_deref(),
            Some("alice"),
            "{store}"
        );

        // Another instance on the same table shares the session, and a restart keeps it.
        drop(client);
        let other = app(sql_figment(store, &url, &table)).await;
        let response = other.get("/counter").cookie(cookie).dispatch().await;
        assert_eq!(
            response.into_string().await.as_deref(),
            Some("3"),
            "{store}"
        );
    }
}

#[rocket::async_test]
async fn the_sweep_deletes_only_expired_rows() {
    for (store, url) in databases() {
        let table = sql::unique_table();
        let lifetime =
            |max_age: f64| sql_figment(store, &url, &table).merge(("sessions.max_age", max_age));
        let short = app(lifetime(0.3)).await;
        for _ in 0..5 {
            get_ok(&short, "/counter").await;
        }
        let long = app(lifetime(600.0)).await;
        let kept: Vec<_> = futures(3, || new_session(&long)).await;
        assert_eq!(rows(store, &url, &table).await, 8, "{store}");

        // Swept until the short-lived ones are gone, never one more.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            sweep(store, &url, &table, 1_000_000).await;
            let left = rows(store, &url, &table).await;
            assert!(left >= 3, "{store}: {left} rows, live ones swept");
            if left == 3 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{store}: expired rows were never swept"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for cookie in kept {
            let response = long.get("/count").cookie(cookie).dispatch().await;
            assert_eq!(
                response.into_string().await.as_deref(),
                Some("1"),
                "{store}"
            );
        }
    }
}

#[rocket::async_test]
async fn the_cap_evicts_anonymous_sessions_before_logged_in_ones() {
    for (store, url) in databases() {
        let table = sql::unique_table();
        let client =
            app(sql_figment(store, &url, &table).merge(("sessions.sql.max_sessions", 20))).await;
        let alice = log_in_as(&client, "alice").await;
        for _ in 0..60 {
            get_ok(&client, "/counter").await;
        }
        assert!(rows(store, &url, &table).await <= 20, "{store}");
        sweep(store, &url, &table, 20).await;
        assert!(rows(store, &url, &table).await <= 20, "{store}");
        let response = client.get("/whoami").cookie(alice).dispatch().await;
        assert_eq!(
            response.into_string().await.as_deref(),
            Some("alice"),
            "{store}"
        );
    }
}

/// `n` results of `make`, one after another.
async fn futures<T, F: std::future::Future<Output = T>>(n: usize, make: impl Fn() -> F) -> Vec<T> {
    let mut results = Vec::with_capacity(n);
    for _ in 0..n {
        results.push(make().await);
    }
    results
}

/// How many rows `table` holds.
async fn rows(store: &str, url: &str, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table}");
    match store {
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let pool = sqlx_sqlite(url).await;
            sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
        }
        #[cfg(feature = "mysql")]
        "mysql" => {
            let pool = sqlx::MySqlPool::connect(url).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
        }
        _ => unreachable!("{store}"),
    }
}

#[cfg(feature = "sqlite")]
async fn sqlx_sqlite(url: &str) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(url).await.unwrap()
}

/// Sweeps `table` through a store of its own, of cap `max_sessions`.
async fn sweep(store: &str, url: &str, table: &str, max_sessions: usize) {
    let mut config = sql::config(url.to_owned());
    config.sql.table = table.to_owned();
    config.sql.max_sessions = max_sessions;
    match store {
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let store = rocket_server_sessions::SqliteStore::connect(&config)
                .await
                .unwrap();
            store.sweep().await.unwrap();
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let store = rocket_server_sessions::PostgresStore::connect(&config)
                .await
                .unwrap();
            store.sweep().await.unwrap();
        }
        #[cfg(feature = "mysql")]
        "mysql" => {
            let store = rocket_server_sessions::MySqlStore::connect(&config)
                .await
                .unwrap();
            store.sweep().await.unwrap();
        }
        _ => unreachable!("{store}"),
    }
}

#[cfg(feature = "postgres")]
#[rocket::async_test]
async fn a_postgres_outage_answers_503_within_the_timeout_and_recovers_by_itself() {
    let Some(mut server) = sql::OwnPostgres::start() else {
        return;
    };
    let figment =
        sql_figment("postgres", &server.url(), "sessions").merge(("sessions.sql.timeout", 0.5));
    let client = app(figment).await;
    let cookie = new_session(&client).await;

    server.stop();
    let start = Instant::now();
    let response = client
        .get("/counter")
        .cookie(cookie.clone())
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // A route without a session guard is unaffected.
    assert_eq!(get_ok(&client, "/plain").await, "plain");

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = client
            .get("/counter")
            .cookie(cookie.clone())
            .dispatch()
            .await;
        if response.status() == Status::Ok {
            assert_eq!(response.into_string().await.as_deref(), Some("2"));
            break;
        }
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[rocket::async_test]
async fn an_unreachable_database_stops_launch_naming_the_key() {
    let dead = format!("postgres://nobody@127.0.0.1:{}/none", free_port());
    for (store, url) in [
        ("postgres", dead.as_str()),
        ("mysql", &dead.replace("postgres", "mysql")),
        ("sqlite", "sqlite:///nonexistent-dir/x/y.db"),
    ] {
        let figment = sql_figment(store, url, "sessions").merge(("sessions.sql.timeout", 1.0));
        match Client::untracked(rocket_with(figment, Some(Sessions::fairing()))).await {
            Ok(_) => panic!("{store}: launched on an unreachable database"),
            Err(e) => assert!(
                matches!(e.kind(), rocket::error::ErrorKind::FailedFairings(_)),
                "{store}"
            ),
        }
    }
}

/// `sessions.sql.database` names a `rocket_db_pools` database: its settings serve.
#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn a_named_rocket_db_pools_database_gives_its_url() {
    let url = sql::sqlite_url();
    let named = figment()
        .merge(("databases.app.url", &url))
        .merge(("sessions.store", "sqlite"))
        .merge(("sessions.sql.database", "app"));
    let client = app(named).await;
    get_ok(&client, "/counter").await;
    assert_eq!(rows("sqlite", &url, "sessions").await, 1);

    let missing = figment()
        .merge(("sessions.store", "sqlite"))
        .merge(("sessions.sql.database", "nope"));
    match Client::untracked(rocket_with(missing, Some(Sessions::fairing()))).await {
        Ok(_) => panic!("launched without the named database"),
        Err(e) => assert!(matches!(
            e.kind(),
            rocket::error::ErrorKind::FailedFairings(_)
        )),
    }
}
