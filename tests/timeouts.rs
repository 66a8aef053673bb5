//! A store's timeout bounds the store time of one request, all its store calls together
//! (issue 18): a request that makes several calls on a slow store answers `503` within
//! the timeout, not within a multiple of it, and time spent outside the store (the
//! handler, a password hash) does not count.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use rocket_server_sessions::store::{CommitOutcome, CreateOutcome, DeleteOutcome};
use rocket_server_sessions::{
    store::{Changes, MemoryStore, SessionId, SessionRecord, SessionStore, StoreError},
    Error, Session, Sessions,
};

/// The store timeout of these tests.
const TIMEOUT: Duration = Duration::from_millis(500);

/// The longest a request that runs out of store time may take: the timeout, a quarter
/// more and a margin for a busy machine (a request that waited out two calls' worth of
/// it, as before, took nearly twice it).
fn within_the_timeout() -> Duration {
    TIMEOUT * 5 / 4 + Duration::from_millis(150)
}

/// A memory store that takes `delay` to answer each call, as a database does under load:
/// each call within the timeout it declares, as a store of its own bounds each of its
/// calls, but several of them not.
#[derive(Clone, Default)]
struct Slow {
    store: MemoryStore,
    /// Milliseconds each call takes.
    delay: Arc<AtomicU64>,
}

impl Slow {
    fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay.store(millis, Ordering::SeqCst);
    }

    async fn call(&self) {
        let delay = Duration::from_millis(self.delay.load(Ordering::SeqCst));
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

#[rocket::async_trait]
impl SessionStore for Slow {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.call().await;
        self.store.load(id).await
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        self.call().await;
        self.store.create(id, record).await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        self.call().await;
        self.store.commit(id, changes).await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.call().await;
        self.store.touch(id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        self.call().await;
        self.store.delete(id).await
    }

    fn timeout(&self) -> Option<Duration> {
        Some(TIMEOUT)
    }
}

/// Waits `millis` in the handler (as a password hash would take its time), then counts
/// the visit.
#[get("/wait/<millis>")]
async fn wait(mut visits: Session<Visits>, millis: u64) -> Result<String, Error> {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    visits.update(|v| {
        v.count += 1;
        v.count.to_string()
    })
}

/// The test app on `store`, with the `/wait` route.
async fn slow_app(store: &Slow) -> Client {
    let fairing = Sessions::builder().store(store.clone()).build();
    let rocket = rocket_with(figment(), Some(fairing)).mount("/", routes![wait]);
    Client::untracked(rocket)
        .await
        .expect("the test app launches")
}

#[rocket::async_test]
async fn a_request_of_many_slow_store_calls_answers_503_within_one_timeout() {
    let store = Slow::default();
    let client = slow_app(&store).await;
    let cookie = new_session(&client).await;

    // Each call well within the timeout, a few of them not.
    store.set_delay(TIMEOUT * 5 / 8);
    // A log-in: the session created, the user's list read and written, then listed.
    let start = Instant::now();
    let response = client.get("/login/alice").dispatch().await;
    let took = start.elapsed();
    assert_eq!(response.status(), Status::ServiceUnavailable, "{took:?}");
    assert!(took < within_the_timeout(), "a log-in took {took:?}");

    // A visit: the session loaded by the guard, then committed.
    let start = Instant::now();
    let response = client.get("/counter").cookie(cookie).dispatch().await;
    let took = start.elapsed();
    assert_eq!(response.status(), Status::ServiceUnavailable, "{took:?}");
    assert!(took < within_the_timeout(), "a visit took {took:?}");
}

#[rocket::async_test]
async fn time_in_the_handler_does_not_count_against_the_store_timeout() {
    let store = Slow::default();
    let client = slow_app(&store).await;
    let cookie = new_session(&client).await;

    // The load and the commit take a third of the timeout each; the handler twice it.
    store.set_delay(TIMEOUT / 3);
    let waits = TIMEOUT * 2;
    let start = Instant::now();
    let response = client
        .get(format!("/wait/{}", waits.as_millis()))
        .cookie(cookie)
        .dispatch()
        .await;
    assert!(start.elapsed() > waits);
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.into_string().await.as_deref(), Some("2"));
}

/// The finding of issue 18: SQLite under a held `BEGIN EXCLUSIVE`, visited by several
/// browsers at once and again, answered `503` after up to twice its `sql.timeout`: a load
/// waited for a connection that the blocked commits held, then its own commit waited for
/// the lock.
#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn sqlite_under_a_held_exclusive_lock_answers_503_within_its_timeout() {
    use rocket::futures::future::join_all;
    use sqlx::Connection as _;

    let url = sql::sqlite_url();
    let figment = figment()
        .merge(("sessions.store", "sqlite"))
        .merge(("sessions.sql.url", &url))
        .merge(("sessions.sql.table", sql::unique_table()))
        .merge(("sessions.sql.max_connections", 2))
        .merge(("sessions.sql.timeout", TIMEOUT.as_secs_f64()));
    let client = Client::untracked(rocket_with(figment, Some(Sessions::fairing())))
        .await
        .expect("the app launches");
    let mut cookies = Vec::new();
    for _ in 0..8 {
        cookies.push(new_session(&client).await);
    }

    let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    // Each browser visits again and again while the lock is held, as under `wrk`, the
    // first visits spread over a timeout (all at once, they would wait in step).
    let until = Instant::now() + TIMEOUT * 4;
    let client = &client;
    let browsers = cookies.iter().enumerate().map(|(i, cookie)| async move {
        let mut answers = Vec::new();
        tokio::time::sleep(TIMEOUT * i as u32 / 8).await;
        while Instant::now() < until {
            let start = Instant::now();
            let response = client
                .get("/counter")
                .cookie(cookie.clone())
                .dispatch()
                .await;
            answers.push((response.status(), start.elapsed()));
        }
        answers
    });
    let answers: Vec<_> = join_all(browsers).await.into_iter().flatten().collect();
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();

    let slowest = answers.iter().map(|(_, took)| *took).max();
    for (status, took) in &answers {
        assert_eq!(*status, Status::ServiceUnavailable, "{answers:?}");
        assert!(
            *took < within_the_timeout(),
            "slowest {slowest:?} of {answers:?}"
        );
    }
    // The lock gone, the sessions answer again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while client
        .get("/counter")
        .cookie(cookies[0].clone())
        .dispatch()
        .await
        .status()
        != Status::Ok
    {
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
