//! The Redis store in a running app: configuration, scale-out, restarts, round trips,
//! keys at rest, corrupt records and outages.
#![cfg(feature = "redis")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::{standalone_config, unique_prefix, OwnServer};
use common::*;
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::store::CreateOutcome;
use rocket_server_sessions::{
    config::RedisConfig,
    store::{RedisStore, SessionId, SessionRecord, SessionStore, StoreError},
    Sessions,
};

/// The test app on the Redis that `config` names, configured through the `sessions`
/// table as a user would.
async fn app(config: &RedisConfig, rolling: bool) -> Client {
    let figment = redis_figment(config).merge(("sessions.rolling", rolling));
    Client::untracked(rocket_with(figment, Some(Sessions::fairing())))
        .await
        .expect("the app launches")
}

fn redis_figment(config: &RedisConfig) -> Figment {
    figment()
        .merge(("sessions.store", "redis"))
        .merge(("sessions.redis.url", &config.url))
        .merge(("sessions.redis.prefix", &config.prefix))
        .merge(("sessions.redis.timeout", config.timeout.as_secs_f64()))
}

async fn body(
    client: &Client,
    path: &str,
    cookie: &rocket::http::Cookie<'static>,
) -> (Status, String) {
    let response = client
        .get(path.to_string())
        .cookie(cookie.clone())
        .dispatch()
        .await;
    (
        response.status(),
        response.into_string().await.unwrap_or_default(),
    )
}

#[rocket::async_test]
async fn instances_sharing_one_redis_share_sessions() {
    let Some(config) = standalone_config() else {
        return;
    };
    let first = app(&config, false).await;
    let second = app(&config, false).await;

    let response = first.get("/counter").dispatch().await;
    let cookie = session_cookie(&response).expect("a session cookie");
    assert_eq!(response.into_string().await.as_deref(), Some("1"));
    assert_eq!(
        body(&second, "/counter", &cookie).await,
        (Status::Ok, "2".into())
    );
    assert_eq!(
        body(&first, "/counter", &cookie).await,
        (Status::Ok, "3".into())
    );
}

#[rocket::async_test]
async fn a_session_survives_an_app_restart() {
    let Some(config) = standalone_config() else {
        return;
    };
    let before = app(&config, false).await;
    let cookie = new_session(&before).await;
    drop(before);

    let after = app(&config, false).await;
    assert_eq!(
        body(&after, "/counter", &cookie).await,
        (Status::Ok, "2".into())
    );
}

#[rocket::async_test]
async fn destroy_and_regenerate_work_across_instances() {
    let Some(config) = standalone_config() else {
        return;
    };
    let first = app(&config, false).await;
    let second = app(&config, false).await;
    let cookie = new_session(&first).await;

    let response = first
        .post("/regenerate")
        .cookie(cookie.clone())
        .dispatch()
        .await;
    let renewed = session_cookie(&response).expect("a new cookie");
    assert_eq!(
        body(&second, "/count", &cookie).await,
        (Status::Ok, "0".into()),
        "the old id is dead"
    );
    assert_eq!(
        body(&second, "/count", &renewed).await,
        (Status::Ok, "1".into())
    );

    second
        .post("/destroy")
        .cookie(renewed.clone())
        .dispatch()
        .await;
    assert_eq!(
        body(&first, "/count", &renewed).await,
        (Status::Ok, "0".into())
    );
}

#[rocket::async_test]
async fn keys_at_rest_are_a_hash_of_the_id_not_the_id() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let mut config = server.config();
    config.prefix = "sess:".into();
    let client = app(&config, false).await;
    let cookie = new_session(&client).await;
    let id = cookie.value().split_once('.').unwrap().0.to_string();

    let keys = server.query(&["KEYS", "*"]).unwrap();
    let mut keys: Vec<&str> = keys.lines().collect();
    keys.sort_by_key(|key| common::redis::is_index(key));
    assert_eq!(keys.len(), 2, "the session and its group's index: {keys:?}");
    let hash = keys[0]
        .strip_prefix("sess:{")
        .expect("the configured prefix and a hash tag");
    let (tag, hash) = hash.split_once('}').unwrap();
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(&hash[..2], tag, "the group is the hash's first byte");
    assert_eq!(keys[1], format!("sess:{{{tag}}}:anonymous"));
    assert!(!keys.iter().any(|key| key.contains(&id)));

    let fields = server.query(&["HGETALL", keys[0]]).unwrap();
    assert!(fields.contains("e:visits"), "{fields}");
    assert!(!fields.contains(&id));
}

#[rocket::async_test]
async fn a_lifetime_longer_than_browsers_keep_a_cookie_is_cut_to_400_days() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let client = app(&server.config(), true).await;
    let cookie = new_session(&client).await;

    // Duration::MAX milliseconds: more than Redis's PEXPIRE accepts.
    let response = client
        .post(format!("/remember/{}", u64::MAX))
        .cookie(cookie.clone())
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    let days_400 = 400 * 24 * 60 * 60;
    let remembered = session_cookie(&response).expect("the cookie is sent again");
    assert_eq!(
        remembered.max_age().map(|d| d.whole_seconds()),
        Some(days_400)
    );

    let key = server.session_keys().pop().unwrap();
    let ttl: i64 = server
        .query(&["PTTL", &key])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        ttl > (days_400 - 60) * 1000 && ttl <= days_400 * 1000,
        "{ttl}"
    );
    // Rolling resets the expiry on every request (remember counted a visit too).
    assert_eq!(
        body(&client, "/counter", &cookie).await,
        (Status::Ok, "3".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_request_gave_up_before_it_went_out_is_never_sent() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let mut config = server.config();
    config.timeout = Duration::from_secs(2);
    // One connection: both sessions' commands share its queue.
    config.connections = 1;
    let store = RedisStore::connect(&config).await.expect("connects");
    let record = SessionRecord::new(Duration::from_secs(60));
    // The scripts are loaded: what is sent late runs as it would have.
    assert_eq!(
        store.create(&SessionId::generate(), &record).await.unwrap(),
        CreateOutcome::Created
    );

    // Redis holds every command for 3 s, from now: what is sent meanwhile waits.
    assert_eq!(
        server.query(&["CLIENT", "PAUSE", "3000", "ALL"]).as_deref(),
        Some("OK\n")
    );
    let in_flight = SessionId::generate();
    let queued = SessionId::generate();
    let (in_flight_result, queued_result) =
        tokio::join!(store.create(&in_flight, &record), async {
            // Well after the first pipeline went out, queued behind it, and given up on
            // well before that one times out.
            tokio::time::sleep(Duration::from_millis(500)).await;
            tokio::time::timeout(Duration::from_millis(200), store.create(&queued, &record)).await
        });
    assert!(in_flight_result.is_err(), "the pause outlasts the timeout");
    assert!(queued_result.is_err(), "the request gave up");

    // Once the pause ends, whatever was sent runs before this.
    server.wait_until_answers("never answered again");
    assert_eq!(
        store.load(&queued).await.unwrap(),
        None,
        "a 503 for a new session, and no session stored behind it"
    );
}

/// Round trips the app made since `CONFIG RESETSTAT`: commands the server ran, less the
/// test's own and those our Lua scripts run inside the one `EVALSHA` that carries them.
/// The touch script ends with the `HGETALL` a load sends on its own; it alone runs
/// `HGET`, once, so each `HGET` stands for one `HGETALL` inside a script.
fn data_commands(server: &OwnServer) -> u64 {
    const TESTS_OWN: [&str; 3] = ["info", "keys", "ping"];
    const INSIDE_SCRIPTS: [&str; 14] = [
        "exists",
        "hset",
        "hdel",
        "hget",
        "pexpire",
        "pttl",
        "time",
        "del",
        "zadd",
        "zrem",
        "zscore",
        "zcard",
        "zpopmin",
        "zremrangebyscore",
    ];
    let calls = server.command_calls();
    let touches: u64 = calls
        .iter()
        .filter(|(name, _)| name == "hget")
        .map(|(_, calls)| calls)
        .sum();
    let commands: u64 = calls
        .into_iter()
        .filter(|(name, _)| !name.starts_with("config"))
        .filter(|(name, _)| {
            !TESTS_OWN.contains(&name.as_str()) && !INSIDE_SCRIPTS.contains(&name.as_str())
        })
        .map(|(_, calls)| calls)
        .sum();
    commands - touches
}

#[rocket::async_test]
async fn a_request_costs_at_most_one_load_and_one_commit_round_trip() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let client = app(&server.config(), false).await;
    // Warm up: the first use of each script loads it into the server.
    let cookie = new_session(&client).await;
    body(&client, "/counter", &cookie).await;

    let measure = |path: &'static str, cookie: Option<rocket::http::Cookie<'static>>| {
        let client = &client;
        let server = &server;
        async move {
            server.query(&["CONFIG", "RESETSTAT"]).unwrap();
            let mut request = client.get(path);
            if let Some(cookie) = cookie {
                request = request.cookie(cookie);
            }
            assert_eq!(request.dispatch().await.status(), Status::Ok);
            data_commands(server)
        }
    };

    assert_eq!(
        measure("/plain", Some(cookie.clone())).await,
        0,
        "no guard, no command"
    );
    assert_eq!(
        measure("/count", Some(cookie.clone())).await,
        1,
        "a read: one HGETALL"
    );
    assert_eq!(
        measure("/counter", Some(cookie.clone())).await,
        2,
        "a change: HGETALL and one script"
    );
    assert_eq!(
        measure("/counter", None).await,
        1,
        "a new visitor: one script"
    );
    assert_eq!(
        measure("/count", None).await,
        0,
        "nothing written, nothing stored"
    );

    let rolling = app(&server.config(), true).await;
    body(&rolling, "/plain", &cookie).await;
    server.query(&["CONFIG", "RESETSTAT"]).unwrap();
    let (status, _) = body(&rolling, "/plain", &cookie).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(
        data_commands(&server),
        1,
        "rolling without a guard: one touch"
    );
}

/// The server's count of read events: how many times it read commands off its sockets.
fn reads_processed(server: &OwnServer) -> u64 {
    let info = server.query(&["INFO", "stats"]).unwrap_or_default();
    info.lines()
        .find_map(|line| line.strip_prefix("total_reads_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats has total_reads_processed")
}

/// On Rocket's (multi-thread) runtime, a task that wakes another has it run next: left to
/// that, each request's command would go out alone, woken at once.
/// Loads `ids`, each in a task of its own as each request is, all spawned from one task so
/// that they are runnable together on a worker; their answers, in order.
async fn spawned_loads(
    store: &Arc<RedisStore>,
    ids: Vec<SessionId>,
) -> Vec<Result<Option<SessionRecord>, StoreError>> {
    let store = store.clone();
    let loads = tokio::spawn(async move {
        ids.into_iter()
            .map(|id| {
                let store = store.clone();
                tokio::spawn(async move { store.load(&id).await })
            })
            .collect::<Vec<_>>()
    });
    let mut answers = Vec::new();
    for load in loads.await.unwrap() {
        answers.push(load.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn concurrent_requests_share_round_trips() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let store = Arc::new(RedisStore::connect(&server.config()).await.unwrap());
    let id = SessionId::generate();
    let mut record = SessionRecord::new(Duration::from_secs(60));
    record.insert("visits", "1");
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        CreateOutcome::Created
    );

    let before = reads_processed(&server);
    for load in spawned_loads(&store, vec![id; 50]).await {
        assert_eq!(load.unwrap().as_ref(), Some(&record));
    }
    // Redis counts a read per batch of commands, plus two for each INFO's connection.
    let reads = reads_processed(&server) - before;
    assert!(reads <= 10, "50 concurrent loads took {reads} reads");
}

/// One bad record among many sessions loaded in one round trip fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_bad_record_fails_alone_in_a_shared_round_trip() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let mut config = server.config();
    // One connection: every load shares its round trips.
    config.connections = 1;
    let store = Arc::new(RedisStore::connect(&config).await.unwrap());
    let mut sessions = Vec::new();
    for i in 0..20 {
        let mut record = SessionRecord::new(Duration::from_secs(60));
        record.insert("i", i.to_string());
        let id = SessionId::generate();
        assert_eq!(
            store.create(&id, &record).await.unwrap(),
            CreateOutcome::Created
        );
        sessions.push((id, Some(record)));
    }
    let bad = SessionId::generate();
    let bad_key = common::redis::session_key(&config.prefix, &bad);
    server.query(&["SET", &bad_key, "not a session"]).unwrap();
    sessions.insert(10, (bad, None));

    let ids = sessions.iter().map(|(id, _)| id.clone()).collect();
    for (load, (_, expected)) in spawned_loads(&store, ids).await.into_iter().zip(&sessions) {
        match (load, expected) {
            (Ok(Some(record)), Some(expected)) => assert_eq!(&record, expected),
            (Err(StoreError::Corrupt(_)), None) => {}
            (other, expected) => panic!("{other:?} where {expected:?} was stored"),
        }
    }
}

#[rocket::async_test]
async fn scripts_are_sent_again_when_the_server_forgot_them() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let client = app(&server.config(), false).await;
    let cookie = new_session(&client).await;
    assert_eq!(body(&client, "/counter", &cookie).await.1, "2");

    server.query(&["SCRIPT", "FLUSH"]).unwrap();
    server.query(&["CONFIG", "RESETSTAT"]).unwrap();
    assert_eq!(
        body(&client, "/counter", &cookie).await,
        (Status::Ok, "3".into())
    );
    // The forgotten script went once with EVAL, to the key's node, and no SCRIPT LOAD.
    // SCRIPT's subcommands count as `script|load` and so on (Redis 7), or as `script`.
    let calls = |name: &str| -> u64 {
        let prefix = format!("{name}|");
        let calls = server.command_calls();
        calls
            .iter()
            .filter(|(command, _)| command == name || command.starts_with(&prefix))
            .map(|c| c.1)
            .sum()
    };
    assert_eq!((calls("eval"), calls("script")), (1, 0));
    // And it is known again: the next commit is an EVALSHA alone.
    assert_eq!(body(&client, "/counter", &cookie).await.1, "4");
    assert_eq!((calls("eval"), calls("script")), (1, 0));

    server.query(&["SCRIPT", "FLUSH"]).unwrap();
    let response = client.get("/counter").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert!(session_cookie(&response).is_some(), "a new session stored");
}

#[rocket::async_test]
async fn a_corrupt_record_in_redis_starts_a_fresh_session() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let client = app(&server.config(), false).await;
    for corrupt in [
        &["SET", "{key}", "garbage"][..],
        &["HSET", "{key}", "m:v", "99"][..],
    ] {
        let cookie = new_session(&client).await;
        let key = server.session_keys().pop().unwrap();
        let args: Vec<&str> = corrupt
            .iter()
            .map(|a| if *a == "{key}" { key.as_str() } else { a })
            .collect();
        server.query(&args).unwrap();

        let response = client
            .get("/counter")
            .cookie(cookie.clone())
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok, "{corrupt:?}");
        assert!(session_cookie(&response).is_some(), "a fresh session");
        assert_eq!(response.into_string().await.as_deref(), Some("1"));
        assert_eq!(
            server.query(&["EXISTS", &key]).unwrap().trim(),
            "0",
            "the corrupt record is gone"
        );
        server.query(&["FLUSHALL"]).unwrap();
    }
}

#[rocket::async_test]
async fn an_outage_answers_503_quickly_and_recovers_without_a_restart() {
    let Some(mut server) = OwnServer::start() else {
        return;
    };
    let client = app(&server.config(), false).await;
    let cookie = new_session(&client).await;

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, text) = body(&client, "/counter", &cookie).await;
        assert_eq!(status, Status::ServiceUnavailable);
        assert!(
            !text.contains("session") && !text.contains("refused"),
            "no error text in the body"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "bounded by the timeout: {:?}",
            started.elapsed()
        );
    }
    let response = client.get("/counter").dispatch().await;
    assert_eq!(
        response.status(),
        Status::ServiceUnavailable,
        "a new session cannot be saved either"
    );
    assert!(
        set_cookies(&response).is_empty(),
        "no cookie for a session that was not saved"
    );
    assert_eq!(
        body(&client, "/plain", &cookie).await,
        (Status::Ok, "plain".into())
    );

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match body(&client, "/counter", &cookie).await {
            (Status::Ok, count) => {
                assert_eq!(count, "2", "the session outlived the outage");
                break;
            }
            (status, _) => assert!(
                Instant::now() < deadline,
                "still {status} after Redis came back"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[rocket::async_test]
async fn an_unreachable_or_misconfigured_redis_stops_launch() {
    let Some(config) = standalone_config() else {
        return;
    };
    let closed_port = common::free_port();
    let cases = [
        (
            "sessions.redis.url",
            format!("redis://127.0.0.1:{closed_port}/"),
        ),
        (
            "sessions.redis.url",
            config.url.replace("test-password", "wrong-password"),
        ),
        ("sessions.redis.url", "not a url".to_string()),
    ];
    for (key, value) in cases {
        let figment = redis_figment(&config).merge((key, value.clone()));
        let started = Instant::now();
        match Client::untracked(rocket_with(figment, Some(Sessions::fairing()))).await {
            Ok(_) => panic!("launched with {value}"),
            Err(e) => assert!(
                matches!(e.kind(), rocket::error::ErrorKind::FailedFairings(f) if f[0].name == "Sessions"),
                "{value}: {e:?}"
            ),
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{value} took {:?}",
            started.elapsed()
        );
    }
}

#[rocket::async_test]
async fn redis_cluster_serves_sessions_from_rocket_toml_keys() {
    let Some(urls) = service_env("SESSIONS_REDIS_CLUSTER_URLS") else {
        return;
    };
    let urls: Vec<String> = urls.split(',').map(String::from).collect();
    let figment = figment()
        .merge(("sessions.store", "redis-cluster"))
        .merge(("sessions.redis.urls", urls))
        .merge(("sessions.redis.prefix", unique_prefix()));
    let client = Client::tracked(rocket_with(figment, Some(Sessions::fairing())))
        .await
        .expect("launches");
    for expected in ["1", "2", "3"] {
        assert_eq!(get_ok(&client, "/counter").await, expected);
    }
    get_ok(&client, "/cart/add/apple").await;
    client.post("/regenerate").dispatch().await;
    assert_eq!(get_ok(&client, "/cart").await, "apple");
    assert_eq!(get_ok(&client, "/count").await, "3");
}

/// A new id that falls in `group` (its storage key's first byte, in hex).
fn id_in_group(group: &str) -> SessionId {
    loop {
        let id = SessionId::generate();
        if id.storage_key().starts_with(group) {
            return id;
        }
    }
}

/// A full group drops its expired members before it evicts a live one: an expired
/// logged-in session's place frees room, and no live anonymous session is evicted for it.
#[rocket::async_test]
async fn a_full_group_drops_expired_sessions_before_evicting_live_ones() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let mut config = server.config();
    config.max_sessions = 3 * 256; // three sessions a group
    let store = RedisStore::connect(&config).await.unwrap();
    let create = |id: SessionId, record: SessionRecord| {
        let store = &store;
        async move {
            let created = store.create(&id, &record).await.unwrap();
            assert_eq!(created, CreateOutcome::Created);
            id
        }
    };
    let logged_in = |ttl| {
        let mut record = SessionRecord::new(ttl);
        record.insert("$user", "\"alice\"");
        record
    };
    let anonymous = SessionRecord::new(Duration::from_secs(60));

    // Two logged-in sessions, one of which expires; its index entry outlives it, as the
    // index lives as long as its longest-lived member.
    let gone = create(SessionId::generate(), logged_in(Duration::from_millis(200))).await;
    let group = gone.storage_key()[..2].to_string();
    let kept = create(id_in_group(&group), logged_in(Duration::from_secs(60))).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.load(&gone).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the session never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Then two anonymous ones: the second finds the group full but for the expired entry.
    let live = create(id_in_group(&group), anonymous.clone()).await;
    let new = create(id_in_group(&group), anonymous.clone()).await;
    for id in [&kept, &live, &new] {
        assert!(
            store.load(id).await.unwrap().is_some(),
            "a live session was evicted"
        );
    }

    // A third finds the group full of live sessions: the anonymous one closest to expiry goes.
    let third = create(id_in_group(&group), anonymous).await;
    assert!(store.load(&live).await.unwrap().is_none(), "the cap held");
    for id in [&kept, &new, &third] {
        assert!(store.load(id).await.unwrap().is_some());
    }
}

/// A full group evicts anonymous sessions a 64th of its cap at a time: a flood finds room
/// for its next sessions without evicting on every creation.
#[rocket::async_test]
async fn a_full_group_evicts_anonymous_sessions_in_batches() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let mut config = server.config();
    config.max_sessions = 128 * 256; // 128 sessions a group: batches of 2
    let store = RedisStore::connect(&config).await.unwrap();
    let group = SessionId::generate().storage_key()[..2].to_string();
    let mut ids = Vec::new();
    for ttl in 0..128 {
        // Each lives a little longer than the one before: eviction order is creation order.
        let record = SessionRecord::new(Duration::from_secs(600 + ttl));
        let id = id_in_group(&group);
        assert_eq!(
            store.create(&id, &record).await.unwrap(),
            CreateOutcome::Created
        );
        ids.push(id);
    }
    let record = SessionRecord::new(Duration::from_secs(900));
    let live = |ids: Vec<SessionId>| {
        let store = &store;
        async move {
            let mut live = Vec::new();
            for id in &ids {
                live.push(store.load(id).await.unwrap().is_some());
            }
            live
        }
    };
    // The 129th creation evicts the two oldest at once...
    let new = id_in_group(&group);
    assert_eq!(
        store.create(&new, &record).await.unwrap(),
        CreateOutcome::Created
    );
    let first = ids[..3].to_vec();
    assert_eq!(live(first.clone()).await, [false, false, true]);
    // ...so the 130th finds room.
    let newer = id_in_group(&group);
    assert_eq!(
        store.create(&newer, &record).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(live(first).await, [false, false, true]);
    assert_eq!(live(vec![new, newer]).await, [true, true]);
}

/// The store keeps `redis.connections` connections, and the sessions spread over all of
/// them: no one connection (and no one task reading its replies) carries every request.
#[rocket::async_test]
async fn sessions_spread_over_the_configured_connections() {
    let Some(server) = OwnServer::start() else {
        return;
    };
    let mut config = server.config();
    config.connections = 4;
    let store = RedisStore::connect(&config)
        .await
        .expect("the server answers");
    // 64 sessions: the chance that one of 4 connections gets none is 4 × (3/4)^64, 1e-8.
    for _ in 0..64 {
        assert_eq!(store.load(&SessionId::generate()).await.unwrap(), None);
    }
    let clients = server.query(&["CLIENT", "LIST"]).unwrap();
    // Every client but the one asking: the store's connections.
    let ours: Vec<&str> = clients
        .lines()
        .filter(|line| !line.contains("cmd=client"))
        .collect();
    assert_eq!(ours.len(), 4, "{clients}");
    assert!(
        ours.iter().all(|line| line.contains("cmd=hgetall")),
        "each connection carried loads: {clients}"
    );
}

/// A user who sees her own ids keeps only sessions of one group, filling it: a flood of
/// strangers landing in every group, that one included, ends none of them. (With
/// `max_sessions = 512`, each group holds two: before, a stranger's session in her
/// group evicted one of hers.)
#[rocket::async_test]
async fn a_flood_of_strangers_ends_no_session_of_a_user_who_fills_one_group() {
    let Some(mut config) = standalone_config() else {
        return;
    };
    config.max_sessions = 512;
    let prefix = config.prefix.clone();
    let store = RedisStore::connect(&config)
        .await
        .expect("the test Redis answers");
    let group = |id: &SessionId| {
        let key = common::redis::session_key(&prefix, id);
        key[prefix.len()..prefix.len() + 4].to_string()
    };
    let mut alice = Vec::new();
    let mut target = None;
    while alice.len() < 2 {
        let id = SessionId::generate();
        if target.get_or_insert_with(|| group(&id)) == &group(&id) {
            let mut record = SessionRecord::new(Duration::from_secs(600));
            record.insert("$user", "\"alice\"");
            assert_eq!(
                store.create(&id, &record).await.unwrap(),
                CreateOutcome::Created
            );
            alice.push(id);
        }
    }
    let stranger = SessionRecord::new(Duration::from_secs(600));
    let mut refused = 0;
    for _ in 0..3_000 {
        match store.create(&SessionId::generate(), &stranger).await {
            Ok(_) => {}
            Err(rocket_server_sessions::store::StoreError::Full) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    for id in &alice {
        assert!(
            store.load(id).await.unwrap().is_some(),
            "a stranger ended alice's session"
        );
    }
    assert!(
        refused > 0,
        "her group refused the strangers that fell in it"
    );
}

/// Signed-in sessions are capped store-wide, not per group: a user who keeps more than a
/// group's share of sessions in one group loses none to later sign-ins while signed-in
/// sessions do not fill the store; once they do, each sign-in displaces the signed-in
/// session closest to expiry.
#[rocket::async_test]
async fn sign_ins_displace_signed_in_sessions_only_when_they_fill_the_store() {
    let Some(mut config) = standalone_config() else {
        return;
    };
    config.max_sessions = 512;
    let prefix = config.prefix.clone();
    let store = RedisStore::connect(&config)
        .await
        .expect("the test Redis answers");
    let group = |id: &SessionId| {
        let key = common::redis::session_key(&prefix, id);
        key[prefix.len()..prefix.len() + 4].to_string()
    };
    let signed_in = |user: &str, secs: u64| {
        let mut record = SessionRecord::new(Duration::from_secs(secs));
        record.insert("$user", format!("\"{user}\""));
        record
    };
    // Ten sessions in one group, whose share is two.
    let mut alice = Vec::new();
    let mut target = None;
    while alice.len() < 10 {
        let id = SessionId::generate();
        if target.get_or_insert_with(|| group(&id)) == &group(&id) {
            let created = store.create(&id, &signed_in("alice", 600)).await.unwrap();
            assert_eq!(created, CreateOutcome::Created);
            alice.push(id);
        }
    }
    // 490 more sign-ins, some in her group: the store holds 500 of its 512.
    let mut others = Vec::new();
    for _ in 0..490 {
        let id = SessionId::generate();
        let created = store.create(&id, &signed_in("bob", 900)).await.unwrap();
        assert_eq!(created, CreateOutcome::Created);
        others.push(id);
    }
    for id in &alice {
        assert!(
            store.load(id).await.unwrap().is_some(),
            "a sign-in ended alice's session"
        );
    }
    // Twenty more fill the store past its cap: alice's, closest to expiry, go first.
    for _ in 0..20 {
        let created = store
            .create(&SessionId::generate(), &signed_in("carol", 900))
            .await
            .unwrap();
        assert_eq!(created, CreateOutcome::Created);
    }
    let mut live = 0;
    for id in &alice {
        live += usize::from(store.load(id).await.unwrap().is_some());
    }
    assert_eq!(live, 2, "the eight sessions closest to expiry went");
    for id in &others {
        assert!(
            store.load(id).await.unwrap().is_some(),
            "a later session went first"
        );
    }
}

/// A review's finding: a sign-in into a store full of signed-in sessions, with a lifetime
/// shorter than theirs (`set_max_age`), was its own victim: admitted, then deleted, and
/// still answered `Created`, so its cookie named a session that was gone.
#[rocket::async_test]
async fn a_sign_in_into_a_full_store_never_evicts_itself() {
    let Some(mut config) = standalone_config() else {
        return;
    };
    config.max_sessions = 4;
    let store = RedisStore::connect(&config)
        .await
        .expect("the test Redis answers");
    let signed_in = |secs: u64| {
        let mut record = SessionRecord::new(Duration::from_secs(secs));
        record.insert("$user", "\"bob\"");
        record
    };
    let mut long = Vec::new();
    for _ in 0..4 {
        let id = SessionId::generate();
        assert_eq!(
            store.create(&id, &signed_in(900)).await.unwrap(),
            CreateOutcome::Created
        );
        long.push(id);
    }
    let short = SessionId::generate();
    assert_eq!(
        store.create(&short, &signed_in(60)).await.unwrap(),
        CreateOutcome::Created
    );
    assert!(
        store.load(&short).await.unwrap().is_some(),
        "the sign-in evicted itself"
    );
    let mut live = 0;
    for id in &long {
        live += usize::from(store.load(id).await.unwrap().is_some());
    }
    assert_eq!(live, 3, "one of the others made room");
}
