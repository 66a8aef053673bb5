//! A soak under faults, bounded in time: a real server on loopback, many clients each
//! with its own session, a flood of strangers, and on Redis a restart in the middle. At
//! the end every client's count is what its requests did (nothing lost, nothing doubled,
//! no client ever saw another's session), no request hung, and the memory the sessions
//! took is given back once they expire.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http1;
use rocket::figment::Figment;
use rocket::{get, routes};
use rocket_server_sessions::{
    config::MemoryConfig, store::MemoryStore, Error, Session, SessionEntry, Sessions,
};
use serde::{Deserialize, Serialize};
use tokio::io::BufReader;
use tokio::net::TcpStream;

/// Clients, each with a session of its own.
const CLIENTS: usize = 24;
/// Requests each client sends.
const REQUESTS: usize = 150;
/// Requests without a cookie (each a new session), by four strangers at once.
const STRANGERS: usize = 4_000;
/// How long a session lives without a request.
const MAX_AGE: Duration = Duration::from_secs(3);
/// The store timeout on Redis.
#[cfg(feature = "redis")]
const TIMEOUT: Duration = Duration::from_millis(300);

/// One test at a time in this binary: the memory check reads the process's size.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Serialize, Deserialize, Default)]
struct Tally {
    owner: String,
    count: u64,
}

impl SessionEntry for Tally {
    const KEY: &'static str = "tally";
}

/// Counts a visit of `owner`, who owns the session from its first visit on.
#[get("/tally/<owner>")]
fn tally(mut tally: Session<Tally>, owner: &str) -> Result<String, Error> {
    tally.update(|t| {
        if t.owner.is_empty() {
            t.owner = owner.to_string();
        }
        t.count += 1;
        format!("{} {}", t.owner, t.count)
    })
}

/// The session's owner and count, unchanged.
#[get("/tally")]
fn read(tally: Session<Tally>) -> String {
    let t = tally.get().unwrap_or_default();
    format!("{} {}", t.owner, t.count)
}

/// A server running on a loopback port, stopped when dropped.
struct Server {
    port: u16,
    shutdown: rocket::Shutdown,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

async fn serve(figment: Figment, sessions: Sessions) -> Server {
    let port = common::free_port();
    let figment = figment
        .merge(("port", port))
        .merge(("address", "127.0.0.1"))
        .merge(("workers", 2))
        .merge(("sessions.max_age", MAX_AGE.as_secs_f64()))
        .merge(("sessions.rolling", true));
    let rocket = rocket::custom(figment)
        .attach(sessions)
        .mount("/", routes![tally, read])
        .ignite()
        .await
        .expect("the soak app ignites");
    let shutdown = rocket.shutdown();
    tokio::spawn(rocket.launch());
    drop(http1::connect(port).await);
    Server { port, shutdown }
}

/// A keep-alive HTTP/1.1 connection that keeps the session cookie it is given.
struct Browser {
    port: u16,
    stream: Option<BufReader<TcpStream>>,
    cookie: Option<String>,
}

/// A response: its status, and its body.
struct Answer {
    status: u16,
    body: String,
}

impl Browser {
    fn new(port: u16) -> Self {
        Browser {
            port,
            stream: None,
            cookie: None,
        }
    }

    /// `GET path`, within ten seconds or the test fails: nothing may hang.
    async fn get(&mut self, path: &str) -> Answer {
        tokio::time::timeout(Duration::from_secs(10), self.exchange(path))
            .await
            .unwrap_or_else(|_| panic!("GET {path} hung"))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn exchange(&mut self, path: &str) -> std::io::Result<Answer> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
            self.stream = Some(BufReader::new(stream));
        }
        let stream = self.stream.as_mut().expect("connected above");
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if let Some(cookie) = &self.cookie {
            request.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        request.push_str("\r\n");
        let response = http1::exchange(stream, &request).await?;
        if let Some(pair) = response.set_cookie("rocket.sid") {
            self.cookie = (pair != "rocket.sid=").then(|| pair.to_string());
        }
        if response
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            self.stream = None;
        }
        Ok(Answer {
            status: response.status,
            body: response.body,
        })
    }
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    successes: u64,
    /// Requests answered 503 while the store was down. One whose commit reached the
    /// store before the connection broke may still have counted.
    failures: u64,
    slowest: Duration,
}

/// Sends `REQUESTS` visits as `name`, checking each answer against the last: the count
/// rises by one per success, and by at most one more per failure in between (a commit
/// whose answer was lost with the connection); the session is always `name`'s.
async fn client(port: u16, name: String, done: Arc<AtomicUsize>) -> (Seen, Browser) {
    let mut browser = Browser::new(port);
    let mut seen = Seen::default();
    let (mut last, mut failed_since) = (0, 0);
    for _ in 0..REQUESTS {
        let start = Instant::now();
        let answer = browser.get(&format!("/tally/{name}")).await;
        seen.slowest = seen.slowest.max(start.elapsed());
        done.fetch_add(1, Ordering::SeqCst);
        match answer.status {
            200 => {
                let (owner, count) = answer.body.split_once(' ').expect("owner count");
                assert_eq!(owner, name, "{name} saw another's session");
                let count: u64 = count.parse().unwrap();
                assert!(
                    count > last && count <= last + 1 + failed_since,
                    "{name}: {count} after {last} with {failed_since} failures between"
                );
                (last, failed_since) = (count, 0);
                seen.successes += 1;
            }
            503 => {
                seen.failures += 1;
                failed_since += 1;
            }
            status => panic!("{name}: status {status}: {}", answer.body),
        }
    }
    (seen, browser)
}

/// Runs the clients and the strangers against the server at `port`; `fault` runs beside
/// them, given the count of requests done so far. Returns what the clients saw, checked.
async fn soak<F, Fut>(port: u16, fault: F, faults_expected: bool) -> Duration
where
    F: FnOnce(Arc<AtomicUsize>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let done = Arc::new(AtomicUsize::new(0));
    let fault = tokio::spawn(fault(done.clone()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(client(port, format!("client{i}"), done.clone())))
        .collect();
    let strangers: Vec<_> = (0..4).map(|_| tokio::spawn(strangers(port))).collect();

    let mut slowest = Duration::ZERO;
    let mut failures = 0;
    for client in clients {
        let (seen, mut browser) = client.await.expect("no client panicked");
        // The session as it is now: every success counted, and at most the failures.
        let answer = browser.get("/tally").await;
        assert_eq!(answer.status, 200);
        let count: u64 = answer.body.split_once(' ').unwrap().1.parse().unwrap();
        assert!(
            count >= seen.successes && count <= seen.successes + seen.failures,
            "{count} for {} successes and {} failures",
            seen.successes,
            seen.failures
        );
        slowest = slowest.max(seen.slowest);
        failures += seen.failures;
    }
    for stranger in strangers {
        slowest = slowest.max(stranger.await.expect("no stranger panicked"));
    }
    fault.await.expect("the fault ran");
    eprintln!("soak: {failures} requests failed, the slowest took {slowest:?}");
    assert_eq!(failures > 0, faults_expected, "{failures} failed requests");
    slowest
}

/// `STRANGERS / 4` visits without a cookie, each a new session; the slowest answer.
async fn strangers(port: u16) -> Duration {
    let mut browser = Browser::new(port);
    let mut slowest = Duration::ZERO;
    for _ in 0..STRANGERS / 4 {
        browser.cookie = None;
        let start = Instant::now();
        let answer = browser.get("/tally/stranger").await;
        slowest = slowest.max(start.elapsed());
        assert!([200, 503].contains(&answer.status), "{}", answer.status);
    }
    slowest
}

/// Waits, up to `limit`, until `condition` holds.
async fn until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_under_a_flood_loses_nothing_and_gives_its_memory_back() {
    let _alone = ALONE.lock().await;
    let mut config = MemoryConfig::default();
    config.sweep_interval = Duration::from_millis(100);
    let store = MemoryStore::new(config);
    let server = serve(
        common::figment(),
        Sessions::builder().store(store.clone()).build(),
    )
    .await;

    let mut sizes = Vec::new();
    for round in 0..2 {
        let slowest = soak(server.port, |_| async {}, false).await;
        assert!(
            slowest < Duration::from_secs(2),
            "a request took {slowest:?}"
        );
        assert!(
            store.len() > STRANGERS / 2,
            "round {round}: {}",
            store.len()
        );
        until(
            "the sessions never expired",
            Duration::from_secs(20),
            || store.is_empty(),
        )
        .await;
        sizes.push(http1::resident());
    }
    eprintln!("soak: resident after each round {sizes:?}");
    // The second round's sessions took the memory the first round's gave back.
    let growth = sizes[1].saturating_sub(sizes[0]);
    assert!(
        growth < 4 << 20,
        "{growth} bytes more after the second round: {sizes:?}"
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_soak_loses_nothing_and_no_request_hangs() {
    let _alone = ALONE.lock().await;
    let Some(redis) = common::redis::OwnServer::start() else {
        return;
    };
    let figment = common::figment()
        .merge(("sessions.store", "redis"))
        .merge(("sessions.redis.url", redis.url()))
        .merge(("sessions.redis.timeout", TIMEOUT.as_secs_f64()));
    let server = serve(figment, Sessions::fairing()).await;
    let redis = Arc::new(std::sync::Mutex::new(redis));

    let total = CLIENTS * REQUESTS;
    let restarter = redis.clone();
    let restart = move |done: Arc<AtomicUsize>| async move {
        until(
            "the clients never got halfway",
            Duration::from_secs(60),
            || done.load(Ordering::SeqCst) >= total / 2,
        )
        .await;
        let stopped_at = done.load(Ordering::SeqCst);
        tokio::task::spawn_blocking({
            let redis = restarter.clone();
            move || redis.lock().unwrap().stop()
        })
        .await
        .unwrap();
        // Down while the clients send a few hundred requests.
        until(
            "no request was sent while Redis was down",
            Duration::from_secs(30),
            || done.load(Ordering::SeqCst) >= stopped_at + 200,
        )
        .await;
        tokio::task::spawn_blocking(move || restarter.lock().unwrap().restart())
            .await
            .unwrap();
    };
    let slowest = soak(server.port, restart, true).await;
    // A request makes at most two store calls, each bounded by the timeout.
    let bound = TIMEOUT * 2 + Duration::from_secs(2);
    assert!(slowest < bound, "a request took {slowest:?}");

    // Expired sessions leave nothing behind, the group indexes included.
    let redis = redis.lock().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis.query(&["DBSIZE"]).as_deref() != Some("0\n") {
        assert!(Instant::now() < deadline, "keys outlived their sessions");
        std::thread::sleep(Duration::from_millis(100));
    }
}
