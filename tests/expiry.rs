//! Expiry, rolling and per-session lifetimes, with short lifetimes instead of long sleeps.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rocket_server_sessions::{store::MemoryStore, Sessions};

/// How long a test waits, at most, for a session's state to change: it polls for the
/// change, never sleeps a fixed time before reading it.
fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

/// The pause between two polls, with the test failing as `what` past `deadline`.
async fn pause(deadline: Instant, what: &str) {
    assert!(Instant::now() < deadline, "never: {what}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[rocket::async_test]
async fn a_session_ends_after_max_age() {
    let client = client(Sessions::builder().max_age(Duration::from_millis(300))).await;
    assert_eq!(get_ok(&client, "/counter").await, "1");
    assert_eq!(get_ok(&client, "/counter").await, "2");
    let until = deadline();
    while get_ok(&client, "/count").await != "0" {
        pause(until, "the session ended").await;
    }
    assert_eq!(
        get_ok(&client, "/counter").await,
        "1",
        "an expired session is gone"
    );
}

#[rocket::async_test]
async fn cookie_max_age_is_max_age_rounded_up_to_seconds() {
    let client = client(Sessions::builder().max_age(Duration::from_millis(1500))).await;
    let cookie = new_session(&client).await;
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(2)));
}

#[rocket::async_test]
async fn without_rolling_activity_does_not_extend_a_session() {
    let client = client(Sessions::builder().max_age(Duration::from_millis(500))).await;
    get_ok(&client, "/counter").await;
    // Writes every 50 ms: none refreshes the cookie, and the session ends all the same
    // (a new one starts, counting from 1).
    let until = deadline();
    loop {
        let response = client.get("/counter").dispatch().await;
        let refreshed = session_cookie(&response).is_some();
        if response.into_string().await.as_deref() == Some("1") {
            break;
        }
        assert!(!refreshed, "no cookie refresh without rolling");
        pause(until, "the session ended").await;
    }
}

#[rocket::async_test]
async fn rolling_keeps_an_active_session_alive_even_on_routes_without_a_guard() {
    let store = Counting::memory();
    let builder = Sessions::builder()
        .store(store.clone())
        .rolling(true)
        .max_age(Duration::from_millis(500));
    let client = client(builder).await;
    get_ok(&client, "/counter").await;
    // Touches until well past the first expiry.
    let started = Instant::now();
    let mut touches = 0;
    while started.elapsed() < Duration::from_millis(900) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let response = client.get("/plain").dispatch().await;
        touches += 1;
        let cookie = session_cookie(&response).expect("rolling sends the cookie again");
        assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(1)));
    }

    assert_eq!(
        store.calls.get().3,
        touches,
        "one touch per request without a guard"
    );
    assert_eq!(
        get_ok(&client, "/counter").await,
        "2",
        "900 ms in, a 500 ms session lives on"
    );
    assert_eq!(store.calls.get().4, 0);
}

#[rocket::async_test]
async fn rolling_refreshes_a_loaded_session_with_its_commit() {
    let store = Counting::memory();
    let builder = Sessions::builder()
        .store(store.clone())
        .rolling(true)
        .max_age(Duration::from_millis(500));
    let client = client(builder).await;
    get_ok(&client, "/counter").await;
    // Reads until well past the first expiry: each refresh rides on one commit.
    let started = Instant::now();
    let mut reads = 0;
    while started.elapsed() < Duration::from_millis(600) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let response = client.get("/count").dispatch().await;
        reads += 1;
        assert!(session_cookie(&response).is_some());
    }
    assert_eq!(get_ok(&client, "/count").await, "1");
    let (_, create, commit, touch, _) = store.calls.get();
    assert_eq!(
        (create, commit, touch),
        (1, 1 + reads, 0),
        "the refresh rides on one commit"
    );
}

#[rocket::async_test]
async fn remember_me_gives_one_session_its_own_lifetime() {
    let store = MemoryStore::default();
    let builder = Sessions::builder()
        .store(store.clone())
        .max_age(Duration::from_millis(300));
    let client = client(builder).await;
    let response = client.post("/remember/3000").dispatch().await;
    let cookie = session_cookie(&response).unwrap();
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(3)));

    let other = self::client(
        Sessions::builder()
            .store(store.clone())
            .max_age(Duration::from_millis(300)),
    )
    .await;
    get_ok(&other, "/counter").await;

    let until = deadline();
    while get_ok(&other, "/count").await != "0" {
        pause(until, "the ordinary session ended").await;
    }
    assert_eq!(
        get_ok(&client, "/count").await,
        "1",
        "the remembered session lives on"
    );
    assert_eq!(
        get_ok(&other, "/count").await,
        "0",
        "the ordinary one has ended"
    );
}

#[rocket::async_test]
async fn rolling_keeps_a_remembered_sessions_own_lifetime() {
    let builder = Sessions::builder()
        .rolling(true)
        .max_age(Duration::from_millis(300));
    let client = client(builder).await;
    client.post("/remember/5000").dispatch().await;
    let response = client.get("/plain").dispatch().await;
    let cookie = session_cookie(&response).unwrap();
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(5)));
}

/// The cost issue: with `touch_after`, an unchanged session is written back at most once
/// per period, routes without a guard never touch it, and the refresh comes once the
/// period has passed; on every store.
async fn touch_after_writes_an_unchanged_session_back_once_per_period(
    open: Option<stores::Opener>,
) {
    let Some(open) = open else {
        return;
    };
    let store = Counting::over(open().await);
    let after = Duration::from_secs(1);
    let builder = Sessions::builder()
        .store(store.clone())
        .rolling(true)
        .max_age(after * 8)
        .touch_after(after);
    let client = client(builder).await;
    let created = Instant::now();
    get_ok(&client, "/counter").await;

    // Within the period: no write and no cookie, on routes with a guard or without.
    for _ in 0..5 {
        let read = client.get("/count").dispatch().await;
        let plain = client.get("/plain").dispatch().await;
        if created.elapsed() < after {
            assert!(
                session_cookie(&read).is_none(),
                "refreshed within the period"
            );
            assert!(session_cookie(&plain).is_none());
        }
    }
    let (_, create, commit, touch, _) = store.calls.get();
    assert_eq!((create, touch), (1, 0));
    let early = commit;

    // Past it, the next read refreshes the session, once.
    let deadline = deadline();
    let refreshed = loop {
        let response = client.get("/count").dispatch().await;
        if let Some(cookie) = session_cookie(&response) {
            break cookie;
        }
        pause(deadline, "a refresh once the period passed").await;
    };
    assert_eq!(
        refreshed.max_age(),
        Some(rocket::time::Duration::seconds(8))
    );
    let (_, _, commit, touch, _) = store.calls.get();
    assert_eq!((commit - early, touch), (1, 0), "one write for the refresh");
    assert_eq!(get_ok(&client, "/count").await, "1");
}

mod touch_after {
    use super::*;

    for_every_store!(super::touch_after_writes_an_unchanged_session_back_once_per_period);
}

/// The ease issue's inactivity exercise: with `idle_timeout`, a signed-in session ends
/// after that long without a request, while requests keep it; an anonymous one keeps
/// `max_age`; and "remember me" (`AuthSession::login_for`) is not ended by it.
async fn idle_timeout_ends_signed_in_sessions_alone_and_spares_remembered_ones(
    open: Option<stores::Opener>,
) {
    let Some(open) = open else {
        return;
    };
    let idle = Duration::from_millis(1500);
    let store = Counting::over(open().await);
    let builder = || {
        Sessions::builder()
            .store(store.clone())
            .max_age(Duration::from_secs(60))
            .idle_timeout(idle)
    };
    let (alice, carol, stranger) = (
        client(builder()).await,
        client(builder()).await,
        client(builder()).await,
    );

    let signed_in = alice.get("/login/alice").dispatch().await;
    let cookie = session_cookie(&signed_in).expect("a session");
    let alices = store.calls.created.lock().unwrap().last().cloned().unwrap();
    let rounded_up = rocket::time::Duration::seconds(2);
    assert_eq!(cookie.max_age(), Some(rounded_up), "idle_timeout");
    let remembered = carol.get("/login/carol/for/60").dispatch().await;
    let cookie = session_cookie(&remembered).expect("a session");
    let own = rocket::time::Duration::seconds(60);
    assert_eq!(cookie.max_age(), Some(own), "its own lifetime");
    assert_eq!(get_ok(&stranger, "/counter").await, "1");

    // Requests keep alice's session past its idle timeout.
    let started = Instant::now();
    let mut last = Instant::now();
    while started.elapsed() < idle * 2 {
        let sent = Instant::now();
        let whoami = get_ok(&alice, "/whoami").await;
        if sent.duration_since(last) < idle {
            assert_eq!(whoami, "alice", "ended while in use");
        }
        last = sent;
    }

    // Then none: the store lets her session go (a load of its own refreshes nothing),
    // and she is signed out; the others are not.
    let until = Instant::now() + idle + Duration::from_secs(10);
    while store.inner.load(&alices).await.unwrap().is_some() {
        pause(until, "the idle session ended").await;
    }
    assert_eq!(get_ok(&alice, "/whoami").await, "", "still signed in");
    // Her next page can tell her why; the others' sessions did not end.
    assert_eq!(get_ok(&alice, "/ended").await, "Some(Inactivity)");
    assert_eq!(
        get_ok(&carol, "/whoami").await,
        "carol",
        "remember me ended"
    );
    assert_eq!(get_ok(&carol, "/ended").await, "None");
    assert_eq!(
        get_ok(&stranger, "/count").await,
        "1",
        "an anonymous session ended"
    );
    assert_eq!(get_ok(&stranger, "/ended").await, "None");
}

mod idle_timeout {
    use super::*;

    for_every_store!(super::idle_timeout_ends_signed_in_sessions_alone_and_spares_remembered_ones);
}

/// Why a session ended, told from its cookie alone: a session signed out from another
/// device ended before its time (revoked); a stranger whose session expired, or one who
/// never had one, is told nothing; a cookie whose stamp was changed is no cookie.
async fn a_session_ended_elsewhere_was_revoked_and_strangers_are_told_nothing(
    open: Option<stores::Opener>,
) {
    let Some(open) = open else {
        return;
    };
    let store = open().await;
    let builder = || {
        Sessions::builder()
            .store(store.clone())
            .max_age(Duration::from_secs(60))
            .idle_timeout(Duration::from_secs(30))
    };
    let (laptop, phone, stranger) = (
        client(builder()).await,
        client(builder()).await,
        untracked(builder()).await,
    );
    let signed_in = laptop.get("/login/alice").dispatch().await;
    let cookie = session_cookie(&signed_in).expect("a session");
    // The signed-in session's cookie carries its stamp, signed with the id.
    assert_eq!(cookie.value().split('.').count(), 3, "{cookie}");
    assert_eq!(get_ok(&phone, "/login/alice").await, "");
    assert_eq!(get_ok(&laptop, "/ended").await, "None");

    // A stamp changed by hand makes the cookie no session's.
    let (id, rest) = cookie.value().split_once('.').unwrap();
    let (stamp, tag) = rest.split_once('.').unwrap();
    let later = format!(
        "{}{}",
        stamp[..stamp.len() - 1].parse::<u64>().unwrap() + 3600,
        &stamp[stamp.len() - 1..]
    );
    let forged =
        rocket::http::Cookie::new(cookie.name().to_string(), format!("{id}.{later}.{tag}"));
    let response = stranger.get("/whoami").cookie(forged).dispatch().await;
    assert_eq!(response.into_string().await.unwrap(), "");

    // Signed out from the phone: the laptop's session ended before its time.
    assert_eq!(get_ok(&phone, "/whoami").await, "alice");
    let response = phone.post("/logout/others").dispatch().await;
    assert_eq!(response.into_string().await.unwrap(), "1");
    assert_eq!(get_ok(&laptop, "/whoami").await, "");
    assert_eq!(get_ok(&laptop, "/ended").await, "Some(Revoked)");

    // A stranger's cookie carries no stamp; gone, it tells nothing.
    let visited = stranger.get("/counter").dispatch().await;
    let theirs = session_cookie(&visited).expect("a session");
    assert_eq!(theirs.value().split('.').count(), 2, "{theirs}");
    let response = stranger.get("/ended").cookie(theirs).dispatch().await;
    assert_eq!(response.into_string().await.unwrap(), "None");
    let response = stranger.get("/ended").dispatch().await;
    assert_eq!(response.into_string().await.unwrap(), "None");
}

mod ended {
    use super::*;

    for_every_store!(super::a_session_ended_elsewhere_was_revoked_and_strangers_are_told_nothing);
}

/// A review's case: a plain log-in after a lifetime of its own (a visitor's `set_max_age`)
/// follows `idle_timeout`, not the old lifetime.
#[rocket::async_test]
async fn a_log_in_starts_its_lifetime_anew() {
    let builder = Sessions::builder()
        .max_age(Duration::from_secs(60))
        .idle_timeout(Duration::from_millis(1500));
    let client = client(builder).await;
    let response = client.post("/remember/30000").dispatch().await;
    let cookie = session_cookie(&response).expect("a session");
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(30)));
    let response = client.get("/login/alice").dispatch().await;
    let cookie = session_cookie(&response).expect("a session");
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(2)));
}
