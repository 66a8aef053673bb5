//! The file store in a running app: restarts, files at rest, corrupt files, sweeping.
#![cfg(feature = "file")]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::{FileConfig, FileStore, SessionId, Sessions};

fn fresh_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("file-test-{}", SessionId::generate()))
}

/// A file store in a fresh directory, and the directory.
fn fresh_store() -> (PathBuf, FileStore) {
    let dir = fresh_dir();
    let mut config = FileConfig::default();
    config.dir = dir.clone();
    (dir, FileStore::open(&config).unwrap())
}

/// The test app on a file store in `dir`, configured through the `sessions` table.
async fn app(dir: &PathBuf) -> Client {
    let figment = figment()
        .merge(("sessions.store", "file"))
        .merge(("sessions.file.dir", dir));
    Client::untracked(rocket_with(figment, Some(Sessions::fairing())))
        .await
        .expect("the app launches")
}

fn session_files(dir: &PathBuf) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[rocket::async_test]
async fn a_session_survives_an_app_restart() {
    let dir = fresh_dir();
    let before = app(&dir).await;
    let cookie = new_session(&before).await;
    drop(before);

    let after = app(&dir).await;
    let response = after.get("/counter").cookie(cookie).dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("2"));
}

#[rocket::async_test]
async fn files_are_named_by_a_hash_of_the_id_and_hold_no_temporaries() {
    let dir = fresh_dir();
    let client = app(&dir).await;
    let cookie = new_session(&client).await;
    let id = cookie.value().split_once('.').unwrap().0;

    let files = session_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let (hash, extension) = files[0].split_once('.').unwrap();
    assert_eq!(extension, "session");
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!files[0].contains(id));
}

#[rocket::async_test]
async fn a_garbage_session_file_starts_a_fresh_session() {
    let dir = fresh_dir();
    let client = app(&dir).await;
    for garbage in [
        &b"not json"[..],
        b"",
        b"{\"version\":99,\"expires_at\":0,\"ttl\":1,\"entries\":{}}",
        &[0xff; 64],
    ] {
        let cookie = new_session(&client).await;
        let file = dir.join(&session_files(&dir)[0]);
        std::fs::write(&file, garbage).unwrap();

        let response = client.get("/counter").cookie(cookie).dispatch().await;
        assert_eq!(response.status(), Status::Ok);
        assert!(session_cookie(&response).is_some(), "a fresh session");
        assert_eq!(response.into_string().await.as_deref(), Some("1"));
        assert!(!file.exists(), "the corrupt file is gone");
        for name in session_files(&dir) {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
    }
}

#[rocket::async_test]
async fn reading_a_garbage_session_file_deletes_it_and_expires_its_cookie() {
    let dir = fresh_dir();
    let client = app(&dir).await;
    let cookie = new_session(&client).await;
    let file = dir.join(&session_files(&dir)[0]);
    std::fs::write(&file, b"not json").unwrap();

    let response = client.get("/count").cookie(cookie).dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    let removal = session_cookie(&response).expect("the dead cookie is expired");
    assert_eq!(removal.value(), "");
    assert!(!file.exists(), "the corrupt file is gone");
}

#[rocket::async_test]
async fn concurrent_requests_keep_each_others_entries() {
    let (_, store) = fresh_store();
    let client = client(Sessions::builder().store(store)).await;
    get_ok(&client, "/counter").await;

    let adds = (0..20).map(|i| client.get(format!("/cart/add/{i}")).dispatch());
    let counts = (0..20).map(|_| client.get("/counter").dispatch());
    let (adds, counts) = rocket::tokio::join!(
        rocket::futures::future::join_all(adds),
        rocket::futures::future::join_all(counts)
    );
    assert!(adds.iter().chain(&counts).all(|r| r.status() == Status::Ok));

    // Cart appends race with each other (last writer wins on one entry), but no commit to
    // the cart ever undid a counter commit or the other way round.
    let cart = get_ok(&client, "/cart").await;
    assert!(!cart.is_empty());
    let count: u64 = get_ok(&client, "/count").await.parse().unwrap();
    assert!(count >= 2, "{count}");
}

#[rocket::async_test]
async fn sweep_removes_expired_session_files() {
    let (dir, store) = fresh_store();
    let builder = Sessions::builder()
        .store(store.clone())
        .max_age(Duration::from_millis(200));
    let client = client(builder).await;
    get_ok(&client, "/counter").await;
    let live = self::client(Sessions::builder().store(store.clone())).await;
    get_ok(&live, "/counter").await;
    assert_eq!(session_files(&dir).len(), 2);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.sweep().await.unwrap(), 1);
    assert_eq!(session_files(&dir).len(), 1);
    assert_eq!(get_ok(&live, "/count").await, "1");
}

#[rocket::async_test]
async fn sweep_leaves_what_it_cannot_read() {
    let (dir, store) = fresh_store();
    // An entry the sweep cannot read, as a file it has no permission for would be: it may
    // hold a live session, so it is neither deleted nor a reason to stop sweeping, before
    // or after it in the directory.
    // Without a cookie, every /counter starts a session of its own.
    let builder = Sessions::builder()
        .store(store.clone())
        .max_age(Duration::from_millis(100));
    let app = untracked(builder).await;
    get_ok(&app, "/counter").await;
    let unreadable = dir.join(format!("{}.session", "a".repeat(64)));
    std::fs::create_dir_all(&unreadable).unwrap();
    for _ in 0..3 {
        get_ok(&app, "/counter").await;
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.sweep().await.unwrap(), 4);
    assert!(unreadable.is_dir());
}

#[rocket::async_test]
async fn sweep_touches_only_the_files_the_store_makes() {
    let (dir, store) = fresh_store();
    let key = "b".repeat(64);
    let theirs = ["notes.session", "README.txt", ".hidden.tmp"];
    for name in theirs {
        std::fs::write(dir.join(name), b"not a session").unwrap();
    }
    // The leftovers of failed writes: one old, one being written right now.
    let old = dir.join(format!(".{key}.session.{:016x}.tmp", 1));
    let fresh = dir.join(format!(".{key}.session.{:016x}.tmp", 2));
    for temporary in [&old, &fresh] {
        std::fs::write(temporary, b"{\"ver").unwrap();
    }
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();

    assert_eq!(store.sweep().await.unwrap(), 0);
    assert!(!old.exists(), "a stale temporary file is swept");
    assert!(fresh.exists(), "a write in progress is not");
    for name in theirs {
        assert!(dir.join(name).exists(), "{name} is not the store's");
    }
}

#[cfg(unix)]
#[rocket::async_test]
async fn session_files_are_readable_by_their_owner_alone() {
    use std::os::unix::fs::PermissionsExt;

    let dir = fresh_dir().join("created");
    let client = app(&dir).await;
    get_ok(&client, "/counter").await;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let files = session_files(&dir);
    assert_eq!(files.len(), 1);
    assert_eq!(mode(&dir.join(&files[0])), 0o600);
}

#[rocket::async_test]
async fn an_uncreatable_directory_stops_launch_naming_the_key() {
    let file = fresh_dir();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"a file, not a directory").unwrap();
    let figment = figment()
        .merge(("sessions.store", "file"))
        .merge(("sessions.file.dir", file.join("sessions")));
    match Client::untracked(rocket_with(figment, Some(Sessions::fairing()))).await {
        Ok(_) => panic!("launched on an unusable directory"),
        Err(e) => assert!(matches!(
            e.kind(),
            rocket::error::ErrorKind::FailedFairings(_)
        )),
    }
}
