//! Session data sealed at rest, on every store that keeps it where others may read it:
//! after a log-in, a cart entry and a flash message, what the store keeps (the file
//! store's directory, the SQLite file with its WAL, the PostgreSQL and MariaDB tables,
//! Redis's append-only file) holds neither the user's name, nor the cart, nor the flash
//! text. The entries' names are there: what was written is found, and only sealed.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use rocket::{post, routes};
use rocket_server_sessions::store::{
    Changes, CommitOutcome, CreateOutcome, DeleteOutcome, SessionId, SessionRecord, SessionStore,
    StoreError,
};
use rocket_server_sessions::{Error, SessionFlash, Sessions};

const USER: &str = "alice-at-rest";
const ITEM: &str = "apple-at-rest";
const FLASH: &str = "flash-text-at-rest";

#[post("/flash")]
fn flash(mut flash: SessionFlash) -> Result<(), Error> {
    flash.set("info", FLASH)
}

/// Signs in, fills a cart and leaves a flash message, through the app on `store`, and
/// reads the user back: the store works, sealed.
async fn walk(store: stores::Store) {
    let app = rocket_with(figment(), Some(Sessions::builder().store(store).build()))
        .mount("/", routes![flash]);
    let client = rocket::local::asynchronous::Client::tracked(app)
        .await
        .expect("the test app launches");
    assert_eq!(get_ok(&client, &format!("/login/{USER}")).await, "");
    assert_eq!(get_ok(&client, &format!("/cart/add/{ITEM}")).await, ITEM);
    client.post("/flash").dispatch().await;
    assert_eq!(get_ok(&client, "/whoami").await, USER);
    assert_eq!(get_ok(&client, "/cart").await, ITEM);
}

/// `bytes`, all a store keeps at rest, hold the entries' names and none of their values.
fn assert_sealed(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    for name in ["$user", "cart", "$flash"] {
        assert!(
            text.contains(name),
            "{what}: no entry `{name}`, so nothing was read"
        );
    }
    for value in [USER, ITEM, FLASH] {
        assert!(!text.contains(value), "{what} holds `{value}` in the clear");
    }
}

/// Every file under `dir`, concatenated.
fn files_under(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            bytes.extend(files_under(&path));
        } else {
            bytes.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    bytes
}

#[cfg(all(feature = "file", unix))]
#[rocket::async_test]
async fn the_file_stores_directory_holds_no_value_in_the_clear() {
    let mut config = rocket_server_sessions::config::SessionConfig::default();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("at-rest-{}", unique_table()));
    config.file.dir = dir.clone();
    let store =
        rocket_server_sessions::store::FileStore::open(&config.file, config.max_session_size)
            .expect("a writable directory");
    walk(Arc::new(store)).await;
    assert_sealed(&files_under(&dir), "the session directory");
}

#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn the_sqlite_file_and_its_wal_hold_no_value_in_the_clear() {
    let url = sql::sqlite_url();
    let store = rocket_server_sessions::store::SqliteStore::connect(&sql::config(url.clone()).sql)
        .await
        .expect("an SQLite file opens");
    walk(Arc::new(store)).await;
    let file = url.trim_start_matches("sqlite://");
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        bytes.extend(std::fs::read(format!("{file}{suffix}")).unwrap_or_default());
    }
    assert_sealed(&bytes, "the SQLite file and its WAL");
}

/// Every row of the store's table, as text: what a dump of it holds.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn rows_text(rows: Vec<String>) -> Vec<u8> {
    rows.join("\n").into_bytes()
}

#[cfg(feature = "postgres")]
#[rocket::async_test]
async fn the_postgres_table_holds_no_value_in_the_clear() {
    let Some(url) = sql::postgres_url() else {
        return;
    };
    let config = sql::config(url.clone());
    let store = rocket_server_sessions::store::PostgresStore::connect(&config.sql)
        .await
        .expect("the test PostgreSQL answers");
    walk(Arc::new(store)).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let dump = format!("SELECT t::text FROM {} t", config.sql.table);
    let rows: Vec<String> = sqlx::query_scalar(&dump).fetch_all(&pool).await.unwrap();
    assert_sealed(&rows_text(rows), "the PostgreSQL table");
}

#[cfg(feature = "mysql")]
#[rocket::async_test]
async fn the_mariadb_table_holds_no_value_in_the_clear() {
    let Some(url) = sql::mysql_url() else {
        return;
    };
    let config = sql::config(url.clone());
    let store = rocket_server_sessions::store::MySqlStore::connect(&config.sql)
        .await
        .expect("the test MariaDB answers");
    walk(Arc::new(store)).await;
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    let dump = format!(
        "SELECT CONCAT_WS(' ', id, CAST(data AS CHAR), ttl, expires, signed_in) FROM {}",
        config.sql.table
    );
    let rows: Vec<String> = sqlx::query_scalar(&dump).fetch_all(&pool).await.unwrap();
    assert_sealed(&rows_text(rows), "the MariaDB table");
}

#[cfg(feature = "redis")]
#[rocket::async_test]
async fn redis_append_only_file_holds_no_value_in_the_clear() {
    // A server of the test's own, writing every command to its append-only file.
    let Some(server) = redis::OwnServer::start() else {
        return;
    };
    let store = rocket_server_sessions::store::RedisStore::connect(&server.config())
        .await
        .expect("the test's Redis answers");
    walk(Arc::new(store)).await;
    assert_sealed(&files_under(server.dir()), "Redis's append-only file");
}

/// A store as the version before sealing used it: the fairing seals nothing for a store
/// that says it keeps nothing at rest.
struct BeforeSealing(stores::Store);

#[rocket::async_trait]
impl SessionStore for BeforeSealing {
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.0.load(id).await
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &SessionRecord,
    ) -> Result<CreateOutcome, StoreError> {
        self.0.create(id, record).await
    }

    async fn commit(&self, id: &SessionId, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        self.0.commit(id, changes).await
    }

    async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.0.touch(id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
        self.0.delete(id).await
    }

    fn at_rest(&self) -> bool {
        false
    }
}

/// The upgrade: a session written in the clear before sealing is read, and the request
/// that reads it seals every entry at its commit; with `accept_unsealed = false`, a value
/// in the clear lets no one in.
#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn a_session_from_before_sealing_is_sealed_by_its_next_request_or_refused() {
    let url = sql::sqlite_url();
    let config = sql::config(url.clone());
    let raw: stores::Store = Arc::new(
        rocket_server_sessions::store::SqliteStore::connect(&config.sql)
            .await
            .expect("an SQLite file opens"),
    );
    let dump = || async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let sql = format!("SELECT group_concat(data, ' ') FROM {}", config.sql.table);
        let text: Option<String> = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
        text.unwrap_or_default()
    };
    // Before the upgrade: alice's session, in the clear.
    let before = Sessions::builder().store(BeforeSealing(raw.clone()));
    let old = untracked(before).await;
    let response = old.get(format!("/login/{USER}")).dispatch().await;
    let cookie = session_cookie(&response).expect("a session");
    assert!(dump().await.contains(USER));

    // After it, with `accept_unsealed` for the upgrade: read, and sealed by the same
    // request; the user's list, the next time the crate reads it (a log-in, an extension,
    // or here, a listing of her sessions).
    let upgrading = figment().merge(("sessions.accept_unsealed", true));
    let app = rocket_with(
        upgrading,
        Some(Sessions::builder().store(raw.clone()).build()),
    );
    let after = rocket::local::asynchronous::Client::untracked(app)
        .await
        .expect("the test app launches");
    let response = after.get("/whoami").cookie(cookie.clone()).dispatch().await;
    assert_eq!(response.into_string().await.unwrap(), USER);
    let response = after
        .get("/sessions")
        .cookie(cookie.clone())
        .dispatch()
        .await;
    assert_eq!(response.into_string().await.unwrap().lines().count(), 1);
    let sealed = dump().await;
    assert!(!sealed.contains(USER), "still in the clear: {sealed}");
    assert!(sealed.contains("$user") && sealed.contains("$index"));
    let response = after.get("/whoami").cookie(cookie).dispatch().await;
    assert_eq!(response.into_string().await.unwrap(), USER);

    // By default (once every old session has ended), plaintext is refused: planted, it is
    // no one.
    let old = untracked(Sessions::builder().store(BeforeSealing(raw.clone()))).await;
    let response = old.get("/login/mallory").dispatch().await;
    let planted = session_cookie(&response).expect("a session");
    let strict = Sessions::builder().store(raw.clone());
    let figment = figment();
    let strict =
        rocket::local::asynchronous::Client::untracked(rocket_with(figment, Some(strict.build())))
            .await
            .expect("the test app launches");
    let response = strict.get("/whoami").cookie(planted).dispatch().await;
    assert_eq!(response.into_string().await.unwrap(), "");
}
