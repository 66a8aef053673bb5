//! The file store in a running app: restarts, files at rest, corrupt and hostile files,
//! its directory's safety, its cap, sweeping.
#![cfg(feature = "file")]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::{
    config::SessionConfig,
    store::{FileStore, SessionId},
    Sessions,
};

fn fresh_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("file-test-{}", SessionId::generate()))
}

/// A file store in a fresh directory, and the directory.
fn fresh_store() -> (PathBuf, FileStore) {
    let dir = fresh_dir();
    let mut config = SessionConfig::default();
    config.file.dir = dir.clone();
    (
        dir,
        FileStore::open(&config.file, config.max_session_size).unwrap(),
    )
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

    assert_eq!(swept(&store, 1).await, 1);
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

    assert_eq!(swept(&store, 4).await, 4);
    assert!(unreadable.is_dir());
}

/// Sweeps `store` every 20 ms until it has removed `expected` sessions in all (they
/// expire on their own clock), or five seconds pass: how many it removed.
async fn swept(store: &FileStore, expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut swept = store.sweep().await.unwrap();
    while swept < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        swept += store.sweep().await.unwrap();
    }
    swept
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

/// `FileStore::open` on `dir`: the key its error names, if it fails.
fn open_problem(dir: &std::path::Path) -> Option<String> {
    let mut config = SessionConfig::default();
    config.file.dir = dir.to_path_buf();
    match FileStore::open(&config.file, config.max_session_size) {
        Ok(_) => None,
        Err(rocket_server_sessions::Error::Config { key, .. }) => Some(key),
        Err(other) => panic!("not a config error: {other}"),
    }
}

/// Regression, hardening issue reproduction 3: another local user could plant a
/// logged-in session in a directory they can write to, or one they own.
#[cfg(unix)]
#[test]
fn a_directory_other_users_can_write_to_or_own_is_refused() {
    use std::os::unix::fs::PermissionsExt;

    for mode in [0o777, 0o770, 0o722, 0o1777] {
        let dir = fresh_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(open_problem(&dir).as_deref(), Some("file.dir"), "{mode:o}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        assert_eq!(open_problem(&dir), None, "{mode:o}, then 750");
    }

    let target = fresh_dir();
    std::fs::create_dir_all(&target).unwrap();
    let link = fresh_dir();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_eq!(
        open_problem(&link).as_deref(),
        Some("file.dir"),
        "a symlink"
    );

    // Owned by someone else: as root, a directory given to `nobody`; as anyone else, `/`.
    let theirs = if rustix_uid() == 0 {
        let dir = fresh_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    } else {
        PathBuf::from("/")
    };
    assert_eq!(
        open_problem(&theirs).as_deref(),
        Some("file.dir"),
        "owned by another user"
    );
}

/// This process's user, as the store sees it: the owner of a file it creates.
#[cfg(unix)]
fn rustix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let probe = fresh_dir();
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::metadata(&probe).unwrap().uid()
}

#[cfg(unix)]
#[rocket::async_test]
async fn a_world_writable_directory_stops_launch_naming_the_key() {
    use std::os::unix::fs::PermissionsExt;

    let dir = fresh_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let figment = figment()
        .merge(("sessions.store", "file"))
        .merge(("sessions.file.dir", &dir));
    match Client::untracked(rocket_with(figment, Some(Sessions::fairing()))).await {
        Ok(_) => panic!("launched on a world-writable directory"),
        Err(e) => assert!(matches!(
            e.kind(),
            rocket::error::ErrorKind::FailedFairings(_)
        )),
    }
}

/// Makes a FIFO at `path`.
#[cfg(unix)]
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// `request` within five seconds, or the test fails: nothing may hang.
async fn within_deadline<T>(what: &str, request: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

/// Regression, hardening issue reproduction 3: a FIFO named like a session file blocked
/// the sweep forever while it held a lock shard, and requests on that shard hung.
#[cfg(unix)]
#[rocket::async_test]
async fn fifos_links_huge_and_garbage_files_never_hang_crash_or_log_anyone_in() {
    let dir = fresh_dir();
    let client = app(&dir).await;
    let forged = dir.join("forged.json");
    std::fs::write(
        &forged,
        br#"{"version":1,"ttl":600000,"entries":{"$user":"\"alice\""}}"#,
    )
    .unwrap();
    type Plant<'a> = &'a dyn Fn(&std::path::Path);
    let hostile: [(&str, Plant); 4] = [
        ("a FIFO", &|path| mkfifo(path)),
        ("a symlink to a forged session", &|path| {
            std::os::unix::fs::symlink(&forged, path).unwrap()
        }),
        ("a huge file", &|path| {
            std::fs::write(path, vec![b' '; 2 * 1024 * 1024]).unwrap()
        }),
        ("garbage", &|path| {
            std::fs::write(path, [0xff; 100]).unwrap()
        }),
    ];
    for (what, plant) in hostile {
        let cookie = new_session(&client).await;
        let file = dir.join(
            session_files(&dir)
                .into_iter()
                .find(|name| name.ends_with(".session"))
                .unwrap(),
        );
        std::fs::remove_file(&file).unwrap();
        plant(&file);

        // Its own request gets a fresh session; one on another session is unaffected.
        let other = new_session(&client).await;
        let response =
            within_deadline(what, client.get("/counter").cookie(cookie).dispatch()).await;
        assert_eq!(response.status(), Status::Ok, "{what}");
        assert_eq!(response.into_string().await.as_deref(), Some("1"), "{what}");
        let response = within_deadline(what, client.get("/counter").cookie(other).dispatch()).await;
        assert_eq!(response.into_string().await.as_deref(), Some("2"), "{what}");
        assert!(
            std::fs::symlink_metadata(&file).is_err(),
            "{what} is removed"
        );
        assert!(
            forged.exists(),
            "a link is removed, never what it points to"
        );
        for name in session_files(&dir) {
            if name.ends_with(".session") {
                std::fs::remove_file(dir.join(name)).unwrap();
            }
        }
    }

    // Planted while the store is closed: opening it, and sweeping, skip them.
    let key = |c: char| dir.join(format!("{}.session", c.to_string().repeat(64)));
    mkfifo(&key('a'));
    std::os::unix::fs::symlink(&forged, key('b')).unwrap();
    std::fs::write(key('c'), vec![b' '; 2 * 1024 * 1024]).unwrap();
    let opened = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut config = SessionConfig::default();
            config.file.dir = dir;
            FileStore::open(&config.file, config.max_session_size)
        })
    };
    let store = within_deadline("opening", opened).await.unwrap().unwrap();
    assert_eq!(store.len(), 0);
    within_deadline("the sweep", store.sweep()).await.unwrap();
    assert!(
        key('a').exists() && key('c').exists(),
        "skipped, not removed"
    );
}

/// Regression, hardening issue reproduction 1: every anonymous session was stored and the
/// file store had no cap.
#[rocket::async_test]
async fn the_store_keeps_its_cap_and_evicts_anonymous_sessions_first() {
    let dir = fresh_dir();
    let figment = figment()
        .merge(("sessions.store", "file"))
        .merge(("sessions.file.dir", &dir))
        .merge(("sessions.file.max_sessions", 64));
    let client = Client::untracked(rocket_with(figment, Some(Sessions::fairing())))
        .await
        .unwrap();
    // A logged-in session, the first and so the closest to expiry.
    let alice = log_in_as(&client, "alice").await;
    // Strangers without a cookie: a new session each.
    for _ in 0..300 {
        get_ok(&client, "/counter").await;
    }
    // Alice's list of sessions is a file outside the cap.
    assert!(
        session_files(&dir).len() <= 64 + 1,
        "{}",
        session_files(&dir).len()
    );
    let response = client.get("/whoami").cookie(alice).dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("alice"));
}

#[rocket::async_test]
async fn a_touch_resets_the_expiry_without_rewriting_the_file() {
    use std::os::unix::fs::MetadataExt;

    let dir = fresh_dir();
    let figment = figment()
        .merge(("sessions.store", "file"))
        .merge(("sessions.file.dir", &dir))
        .merge(("sessions.rolling", true));
    let client = Client::tracked(rocket_with(figment, Some(Sessions::fairing())))
        .await
        .unwrap();
    get_ok(&client, "/counter").await;
    let file = dir.join(&session_files(&dir)[0]);
    let before = std::fs::metadata(&file).unwrap();
    let contents = std::fs::read(&file).unwrap();

    // A guard-less route with rolling: a touch. The file is the same file, unchanged;
    // only its time moves.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        get_ok(&client, "/plain").await;
        let after = std::fs::metadata(&file).unwrap();
        assert_eq!(after.ino(), before.ino(), "not replaced");
        assert_eq!(std::fs::read(&file).unwrap(), contents, "not rewritten");
        if after.modified().unwrap() > before.modified().unwrap() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the expiry never moved"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Review, hardening: the directory was checked once, then reached by its path, so
/// whoever could change a directory above it could swap it for their own after launch and
/// plant a logged-in session. The store keeps the directory it checked.
#[cfg(unix)]
#[rocket::async_test]
async fn a_directory_swapped_after_launch_is_never_read() {
    let dir = fresh_dir();
    let client = app(&dir).await;
    // The attacker's own anonymous session, and its file.
    let cookie = new_session(&client).await;
    let name = session_files(&dir).pop().unwrap();

    // Their directory in its place, with a forged logged-in session under that name.
    let moved = dir.with_extension("moved");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join(&name),
        br#"{"version":1,"ttl":600000,"entries":{"$user":"\"alice\""}}"#,
    )
    .unwrap();

    let response = client
        .get("/whoami")
        .cookie(cookie.clone())
        .dispatch()
        .await;
    assert_eq!(response.into_string().await.as_deref(), Some(""));
    let response = client.get("/count").cookie(cookie).dispatch().await;
    assert_eq!(
        response.into_string().await.as_deref(),
        Some("1"),
        "still their own session"
    );
}

/// A flood of new visitors at once keeps the cap: each creation takes its place before it
/// writes (an attack saw 216 files for a cap of 200 under 20 connections, before).
#[rocket::async_test]
async fn creations_at_once_never_pass_the_cap() {
    let dir = fresh_dir();
    let figment = figment()
        .merge(("sessions.store", "file"))
        .merge(("sessions.file.dir", &dir))
        .merge(("sessions.file.max_sessions", 20))
        // A hundred creations queue for room one at a time: a slow runner's queue is no
        // stalled disk.
        .merge(("sessions.file.timeout", 60));
    let client = Client::untracked(rocket_with(figment, Some(Sessions::fairing())))
        .await
        .unwrap();
    for _ in 0..5 {
        let flood = (0..100).map(|_| client.get("/counter").dispatch());
        for response in rocket::futures::future::join_all(flood).await {
            assert_eq!(response.status(), Status::Ok);
        }
        let files = session_files(&dir).len();
        assert!(files <= 20, "{files} session files over a cap of 20");
    }
}

// One thread: the commit's task cannot run before the test has polled it once.
#[tokio::test(flavor = "current_thread")]
async fn a_call_whose_request_stops_waiting_still_runs_to_its_end() {
    use rocket_server_sessions::store::{Changes, CreateOutcome, SessionRecord, SessionStore};

    let (_dir, store) = fresh_store();
    // Bounded by `file.timeout`, as the other stores are by theirs.
    assert_eq!(store.timeout(), Some(SessionConfig::default().file.timeout));
    let id = SessionId::generate();
    let mut record = SessionRecord::new(Duration::from_secs(60));
    record.insert("cart", "[1]");
    assert_eq!(
        store.create(&id, &record).await.unwrap(),
        CreateOutcome::Created
    );

    // The request's budget is spent at once: its commit is polled once, then dropped.
    let mut changes = Changes::default();
    changes.set("cart", "[2]");
    let mut commit = store.commit(&id, &changes);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(commit.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "the commit was still on its way");
    drop(commit);

    // The commit lands all the same: nothing is left half done.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let loaded = store.load(&id).await.unwrap().unwrap();
        if loaded.get("cart") == Some("[2]") {
            break;
        }
        assert!(Instant::now() < deadline, "the dropped commit never landed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(store.len(), 1);
}
