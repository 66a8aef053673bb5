//! A Redis Cluster master killed under load: its replica takes over and the app carries
//! on without a restart. Every session whose writes reached a replica before the kill is
//! still there with its count, requests answer `503` within the store's timeout while
//! the master's slots have none, and no request hangs.
#![cfg(feature = "redis")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::{is_index, unique_prefix, OwnCluster};
use rocket::http::{Cookie, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use rocket_server_sessions::{Error, Session, SessionEntry, SessionHandle, Sessions};
use serde::{Deserialize, Serialize};

/// Sessions under load, each driven by a task of its own.
const SESSIONS: usize = 24;
/// The count each session has, and its replica holds, before the kill.
const CONFIRMED: u64 = 3;
/// The store's timeout: each store call gives up after it.
const TIMEOUT: Duration = Duration::from_millis(250);
/// How long a master may be silent before the cluster fails it over: a failover takes
/// longer than this, and so longer than any request may.
const NODE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a request may take: a load and a commit, each bounded by the timeout, and
/// a margin for a busy machine.
const BOUND: Duration = Duration::from_millis(2 * TIMEOUT.as_millis() as u64 + 1000);

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

/// The session's storage key: the name of its record on the node that holds it (its data
/// is sealed there).
#[get("/where")]
fn locate(session: SessionHandle) -> String {
    session.id().storage_key()
}

/// The session's owner and count, unchanged.
#[get("/tally")]
fn read(tally: Session<Tally>) -> String {
    let t = tally.get().unwrap_or_default();
    format!("{} {}", t.owner, t.count)
}

/// `GET path` with `cookie`: its body, which must come with `200`.
async fn get_text(client: &Client, path: &str, cookie: &Cookie<'static>) -> String {
    let response = client.get(path).cookie(cookie.clone()).dispatch().await;
    assert_eq!(response.status(), Status::Ok, "GET {path}");
    response.into_string().await.unwrap_or_default()
}

/// `GET path` with `cookie`: its status and its `(owner, count)`, within [`BOUND`] or the
/// test fails: nothing may hang.
async fn get(client: &Client, path: &str, cookie: &Cookie<'static>) -> (Status, String, u64) {
    let request = async {
        let response = client.get(path).cookie(cookie.clone()).dispatch().await;
        (response.status(), response.into_string().await)
    };
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(BOUND, request)
        .await
        .unwrap_or_else(|_| panic!("GET {path} hung: no answer within {BOUND:?}"));
    let body = body.unwrap_or_default();
    let (owner, count) = body.split_once(' ').unwrap_or_default();
    let took = started.elapsed();
    assert!(took < BOUND, "GET {path} took {took:?}");
    (status, owner.to_string(), count.parse().unwrap_or(0))
}

/// The load's shared state.
#[derive(Default)]
struct Load {
    /// Requests answered so far.
    done: AtomicUsize,
    /// Set once the master is dead.
    killed: AtomicBool,
    /// Sessions answered `200` to a request sent after the kill.
    recovered: AtomicUsize,
    /// Set when the visitors should stop.
    stop: AtomicBool,
}

/// What one session's visitor saw.
#[derive(Default, Debug)]
struct Seen {
    successes: u64,
    /// `503`s: a commit whose answer was lost may still have counted.
    failures: u64,
    /// `503`s to requests sent after the kill.
    failures_after_kill: u64,
}

/// Visits `/tally/<name>` with `cookie` until told to stop, checking every answer.
async fn visitor(
    client: Arc<Client>,
    name: String,
    cookie: Cookie<'static>,
    load: Arc<Load>,
) -> Seen {
    let mut seen = Seen::default();
    let mut recovered = false;
    while !load.stop.load(Ordering::SeqCst) {
        let after_kill = load.killed.load(Ordering::SeqCst);
        let (status, owner, _) = get(&client, &format!("/tally/{name}"), &cookie).await;
        load.done.fetch_add(1, Ordering::SeqCst);
        match status {
            Status::Ok => {
                assert_eq!(owner, name, "{name} was answered with another's session");
                seen.successes += 1;
                if after_kill && !recovered {
                    recovered = true;
                    load.recovered.fetch_add(1, Ordering::SeqCst);
                }
            }
            Status::ServiceUnavailable => {
                seen.failures += 1;
                seen.failures_after_kill += u64::from(after_kill);
            }
            status => panic!("{name}: {status}"),
        }
    }
    seen
}

/// Waits, up to `limit`, until `condition` holds, without blocking the load.
async fn until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_load_fails_over_and_keeps_every_confirmed_session() {
    let started = Instant::now();
    let Some(mut cluster) = OwnCluster::start(NODE_TIMEOUT) else {
        return;
    };
    let prefix = unique_prefix();
    let figment = common::figment()
        .merge(("sessions.store", "redis-cluster"))
        .merge(("sessions.redis.urls", cluster.urls()))
        .merge(("sessions.redis.prefix", &prefix))
        .merge(("sessions.redis.timeout", TIMEOUT.as_secs_f64()));
    let rocket = rocket::custom(figment)
        .attach(Sessions::fairing())
        .mount("/", routes![tally, read, locate]);
    let client = Arc::new(Client::untracked(rocket).await.expect("the app launches"));

    // Every session counts to CONFIRMED, and every replica has every write.
    let names: Vec<String> = (0..SESSIONS).map(|i| format!("s{i:02}")).collect();
    let mut cookies = Vec::new();
    for name in &names {
        let response = client.get(format!("/tally/{name}")).dispatch().await;
        assert_eq!(response.status(), Status::Ok);
        let cookie = common::session_cookie(&response).expect("a session cookie");
        for _ in 1..CONFIRMED {
            assert_eq!(
                get(&client, &format!("/tally/{name}"), &cookie).await.0,
                Status::Ok
            );
        }
        cookies.push(cookie);
    }
    tokio::task::block_in_place(|| {
        common::redis::wait_for("the replicas never caught up", || {
            cluster.replicas_caught_up()
        })
    });

    // Which master holds whose session: the victim is the master of the first.
    let mut storage_keys = Vec::new();
    for cookie in &cookies {
        storage_keys.push(get_text(&client, "/where", cookie).await);
    }
    let pairs = cluster.pairs();
    let mut holder = HashMap::new();
    for pair in &pairs {
        for key in cluster.keys(pair.master, &prefix) {
            if is_index(&key) {
                continue;
            }
            for (name, storage_key) in names.iter().zip(&storage_keys) {
                if key.ends_with(storage_key.as_str()) {
                    assert!(holder.insert(name.clone(), *pair).is_none(), "{name} twice");
                }
            }
        }
    }
    assert_eq!(
        holder.len(),
        SESSIONS,
        "every session is on one master: {holder:?}"
    );
    let victim = holder[&names[0]];
    let on_victim = |name: &String| holder[name] == victim;

    // Load from every session, then the kill once every session has some.
    let load = Arc::new(Load::default());
    let visitors: Vec<_> = names
        .iter()
        .zip(&cookies)
        .map(|(name, cookie)| {
            let task = visitor(client.clone(), name.clone(), cookie.clone(), load.clone());
            tokio::spawn(task)
        })
        .collect();
    until("the load never started", Duration::from_secs(20), || {
        load.done.load(Ordering::SeqCst) >= SESSIONS * 5
    })
    .await;
    tokio::task::block_in_place(|| cluster.kill(victim.master));
    let killed_at = Instant::now();
    load.killed.store(true, Ordering::SeqCst);

    // The app recovers by itself: every session answers again, the victim's from its
    // replica, now a master. A visitor that stops early has failed: its panic ends the
    // test at once.
    until(
        "the sessions never answered again after the failover",
        Duration::from_secs(30),
        || {
            load.recovered.load(Ordering::SeqCst) == SESSIONS
                || visitors.iter().any(|v| v.is_finished())
        },
    )
    .await;
    let recovered_in = killed_at.elapsed();
    load.stop.store(true, Ordering::SeqCst);
    let mut seen = HashMap::new();
    for (name, visitor) in names.iter().zip(visitors) {
        seen.insert(name.clone(), visitor.await.expect("no visitor panicked"));
    }
    assert_eq!(load.recovered.load(Ordering::SeqCst), SESSIONS);
    let role = tokio::task::block_in_place(|| cluster.node(victim.replica).query(&["ROLE"]));
    assert!(
        role.unwrap_or_default().starts_with("master"),
        "the victim's replica took over"
    );

    // Every session is there with at least its confirmed count; those on the other
    // masters lost nothing at all; nothing was counted twice. The client may still be
    // learning the new layout: a read is tried again until it answers.
    let mut failed_over = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    for (name, cookie) in names.iter().zip(&cookies) {
        let Seen {
            successes,
            failures,
            ..
        } = seen[name];
        let (owner, count) = loop {
            match get(&client, "/tally", cookie).await {
                (Status::Ok, owner, count) => break (owner, count),
                (status, ..) => assert!(Instant::now() < deadline, "{name}: still {status}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(owner, *name, "{name}'s session is gone");
        let floor = match on_victim(name) {
            true => CONFIRMED,
            false => CONFIRMED + successes,
        };
        assert!(
            count >= floor && count <= CONFIRMED + successes + failures,
            "{name} (on the killed master: {}): {count} after {CONFIRMED} confirmed, \
             {successes} successes and {failures} failures",
            on_victim(name)
        );
        if on_victim(name) {
            failed_over += 1;
        }
    }
    let failures: u64 = names
        .iter()
        .filter(|name| on_victim(name))
        .map(|name| seen[name].failures_after_kill)
        .sum();
    assert!(failures > 0, "no request met the dead master");
    let elsewhere: u64 = names
        .iter()
        .filter(|name| !on_victim(name))
        .map(|name| seen[name].failures_after_kill)
        .sum();
    eprintln!(
        "failover: {failed_over} of {SESSIONS} sessions on the killed master, {failures} \
         of their requests answered 503 while it failed over ({elsewhere} of the others'), \
         all answered again {recovered_in:?} after the kill; {:?} in all",
        started.elapsed()
    );
}
