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
#[allow(clippy::vec_init_then_push)] // which pushes run depends on the features
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
        // Alice's list of sessions is a row outside the cap.
        assert!(rows(store, &url, &table).await <= 20 + 1, "{store}");
        sweep(store, &url, &table, 20).await;
        assert!(rows(store, &url, &table).await <= 20 + 1, "{store}");
        let response = client.get("/whoami").cookie(alice).dispatch().await;
        assert_eq!(
            response.into_string().await.as_deref(),
            Some("alice"),
            "{store}"
        );
    }
}

/// A restarted app counts the sessions its table already holds: it does not take the
/// cap again on top of them.
#[rocket::async_test]
async fn a_restart_counts_the_sessions_already_stored() {
    for (store, url) in databases() {
        let table = sql::unique_table();
        for _ in 0..2 {
            let figment = sql_figment(store, &url, &table).merge(("sessions.sql.max_sessions", 20));
            let client = app(figment).await;
            for _ in 0..20 {
                get_ok(&client, "/counter").await;
            }
        }
        assert!(rows(store, &url, &table).await <= 20, "{store}");
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
            let store = rocket_server_sessions::store::SqliteStore::connect(&config.sql)
                .await
                .unwrap();
            store.sweep().await.unwrap();
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let store = rocket_server_sessions::store::PostgresStore::connect(&config.sql)
                .await
                .unwrap();
            store.sweep().await.unwrap();
        }
        #[cfg(feature = "mysql")]
        "mysql" => {
            let store = rocket_server_sessions::store::MySqlStore::connect(&config.sql)
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

/// The same on MariaDB, whose server the tests share: a proxy between the store and the
/// server goes down instead, closing every connection and refusing new ones.
#[cfg(feature = "mysql")]
#[rocket::async_test]
async fn a_mysql_outage_answers_503_within_the_timeout_and_recovers_by_itself() {
    let Some(url) = sql::mysql_url() else {
        return;
    };
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = rest.split_once('@').unwrap();
    let (address, database) = rest.split_once('/').unwrap();
    let proxy = sql::Proxy::start(address.to_owned()).await;
    let through = format!("{scheme}://{user}@127.0.0.1:{}/{database}", proxy.port);
    let figment =
        sql_figment("mysql", &through, &sql::unique_table()).merge(("sessions.sql.timeout", 0.5));
    let client = app(figment).await;
    let cookie = new_session(&client).await;

    proxy.cut();
    let start = Instant::now();
    let response = client
        .get("/counter")
        .cookie(cookie.clone())
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(get_ok(&client, "/plain").await, "plain");

    proxy.restore();
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

/// The SQLite database file `url` names.
#[cfg(all(unix, feature = "sqlite"))]
fn sqlite_file(url: &str, suffix: &str) -> std::path::PathBuf {
    format!("{}{suffix}", url.trim_start_matches("sqlite://")).into()
}

#[cfg(all(unix, feature = "sqlite"))]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[cfg(all(unix, feature = "sqlite"))]
fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `SqliteStore::connect` on `url`: the key and message of its error, if it fails.
#[cfg(all(unix, feature = "sqlite"))]
async fn sqlite_problem(url: &str) -> Option<(String, String)> {
    match rocket_server_sessions::store::SqliteStore::connect(&sql::config(url.to_owned()).sql)
        .await
    {
        Ok(_) => None,
        Err(rocket_server_sessions::Error::Config { key, message }) => Some((key, message)),
        Err(other) => panic!("not a config error: {other}"),
    }
}

/// Regression, outside attack: under umask 022 the database, its `-wal` and its `-shm`
/// were created `0644`, and `nobody` read every row.
#[cfg(all(unix, feature = "sqlite"))]
#[rocket::async_test]
async fn sqlite_files_are_readable_by_their_owner_alone_whatever_the_umask() {
    // The usual umask, which leaves a new file readable by all. It is the process's, and
    // no test here needs a stricter one.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let url = sql::sqlite_url();
    let client = app(sql_figment("sqlite", &url, "sessions")).await;
    get_ok(&client, "/counter").await;
    assert_eq!(rows("sqlite", &url, "sessions").await, 1);
    // The pool is open: SQLite keeps the WAL and its index beside the database.
    for suffix in ["", "-wal", "-shm"] {
        let file = sqlite_file(&url, suffix);
        assert_eq!(format!("{:o}", mode_of(&file)), "600", "{}", file.display());
    }
}

/// A database, or a WAL or shared-memory file beside it, that others may read stops
/// launch, naming `sessions.sql.url` and the fix; once `chmod 600`ed, it opens.
#[cfg(all(unix, feature = "sqlite"))]
#[rocket::async_test]
async fn an_sqlite_database_others_can_read_stops_launch_naming_the_key() {
    // A database with a session in it, made readable by all.
    let url = sql::sqlite_url();
    let client = app(sql_figment("sqlite", &url, "sessions")).await;
    get_ok(&client, "/counter").await;
    drop(client);
    let db = sqlite_file(&url, "");
    set_mode(&db, 0o644);
    let figment = sql_figment("sqlite", &url, "sessions");
    match Client::untracked(rocket_with(figment, Some(Sessions::fairing()))).await {
        Ok(_) => panic!("launched on a database others can read"),
        Err(e) => assert!(matches!(
            e.kind(),
            rocket::error::ErrorKind::FailedFairings(_)
        )),
    }
    let (key, message) = sqlite_problem(&url).await.expect("refused");
    assert_eq!(key, "sql.url");
    assert!(message.contains("chmod 600"), "{message}");
    assert_eq!(
        mode_of(&db),
        0o644,
        "the store leaves the mode to the file's owner"
    );
    set_mode(&db, 0o600);
    assert_eq!(sqlite_problem(&url).await, None);

    // Group access, and a WAL or shared-memory file others can read, are refused alike.
    for (suffix, mode) in [("", 0o640), ("", 0o602), ("-wal", 0o644), ("-shm", 0o604)] {
        let url = sql::sqlite_url();
        std::fs::write(sqlite_file(&url, ""), b"").unwrap();
        set_mode(&sqlite_file(&url, ""), 0o600);
        let file = sqlite_file(&url, suffix);
        std::fs::write(&file, b"").unwrap();
        set_mode(&file, mode);
        let refused = sqlite_problem(&url).await;
        assert_eq!(
            refused.map(|(key, _)| key).as_deref(),
            Some("sql.url"),
            "{suffix} {mode:o}"
        );
        set_mode(&file, 0o600);
        assert_eq!(sqlite_problem(&url).await, None, "{suffix} then 600");
    }
}

/// An in-memory database has no file to keep private: none is created.
#[cfg(all(unix, feature = "sqlite"))]
#[rocket::async_test]
async fn an_in_memory_sqlite_database_creates_no_file() {
    let url = sql::sqlite_url();
    assert_eq!(sqlite_problem(&format!("{url}?mode=memory")).await, None);
    assert!(!sqlite_file(&url, "").exists());
    assert_eq!(sqlite_problem("sqlite::memory:").await, None);
}

/// Creates, loads, commits, touches and deletes `SESSIONS` sessions on `store`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn exercise(store: &dyn rocket_server_sessions::store::SessionStore) {
    use rocket_server_sessions::store::{Changes, SessionId, SessionRecord};
    use rocket_server_sessions::store::{CommitOutcome, CreateOutcome, DeleteOutcome};

    for _ in 0..SESSIONS {
        let id = SessionId::generate();
        let record = SessionRecord::new(Duration::from_secs(60));
        let created = store.create(&id, &record).await.unwrap();
        assert_eq!(created, CreateOutcome::Created);
        assert!(store.load(&id).await.unwrap().is_some());
        let mut changes = Changes::default();
        changes.set("visits", "1");
        let committed = store.commit(&id, &changes).await.unwrap();
        assert_eq!(committed, CommitOutcome::Applied);
        assert!(store.touch(&id).await.unwrap().is_some());
        assert_eq!(store.delete(&id).await.unwrap(), DeleteOutcome::Deleted);
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
const SESSIONS: i64 = 10;
/// Rows in the table before the sessions come: a scan would read them all.
#[cfg(any(feature = "postgres", feature = "mysql"))]
const FILLER: i64 = 10_000;

/// Every statement of a session finds its row through the primary key, never by scanning
/// the table: a flood of new visitors once made each `/counter` scan them all (an `id`
/// column whose type the key had to be cast to), down to tens of requests a second.
#[cfg(feature = "postgres")]
#[rocket::async_test]
async fn postgres_finds_a_session_by_its_index_not_a_table_scan() {
    let Some(url) = sql::postgres_url() else {
        return;
    };
    let config = sql::config(url.clone());
    let table = config.sql.table.clone();
    let store = rocket_server_sessions::store::PostgresStore::connect(&config.sql)
        .await
        .unwrap();
    // Enough rows, and statistics that say so, for a scan to cost more than the index.
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let fill = format!(
        "INSERT INTO {table} SELECT md5(i::text) || md5(i::text), '{{}}', 60000, \
         9000000000000, false FROM generate_series(1, {FILLER}) AS i"
    );
    sqlx::query(&fill).execute(&db).await.unwrap();
    let analyze = format!("ANALYZE {table}");
    sqlx::query(&analyze).execute(&db).await.unwrap();
    // Rows read by scans (creating the index scanned the table while it was empty), and
    // lookups by index.
    let stats = format!(
        "SELECT seq_tup_read, coalesce(idx_scan, 0) FROM pg_stat_user_tables \
         WHERE relname = '{table}'"
    );
    let (scanned_before, lookups_before): (i64, i64) =
        sqlx::query_as(&stats).fetch_one(&db).await.unwrap();

    exercise(&store).await;
    // The store's connections report their statistics as they close.
    store.pool().close().await;

    // Load, commit, touch and delete each look up one row by its key.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (scanned, lookups): (i64, i64) = sqlx::query_as(&stats).fetch_one(&db).await.unwrap();
        let scanned = scanned - scanned_before;
        // One count of the table, at the store's first creation (as each sweep makes),
        // and no statement that scans it.
        assert!(
            scanned <= FILLER + SESSIONS,
            "statements scanned the table: {scanned} rows read"
        );
        if lookups >= lookups_before + 4 * SESSIONS {
            break;
        }
        let lookups = lookups - lookups_before;
        assert!(
            Instant::now() < deadline,
            "{lookups} index lookups, not {}",
            4 * SESSIONS
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// As on PostgreSQL: the key finds the row through the primary key, whatever collation
/// the connection's strings have. (MariaDB counts rows read by scans server-wide:
/// other tests' tables are far smaller than this one.)
#[cfg(feature = "mysql")]
#[rocket::async_test]
async fn mysql_finds_a_session_by_its_index_not_a_table_scan() {
    let Some(url) = sql::mysql_url() else {
        return;
    };
    let config = sql::config(url.clone());
    let table = config.sql.table.clone();
    let store = rocket_server_sessions::store::MySqlStore::connect(&config.sql)
        .await
        .unwrap();
    let db = sqlx::MySqlPool::connect(&url).await.unwrap();
    let digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                  UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                  UNION ALL SELECT 8 UNION ALL SELECT 9)";
    let fill = format!(
        "INSERT INTO {table} SELECT CONCAT(MD5(n), MD5(n)), '{{}}', 60000, 9000000000000, false \
         FROM (SELECT a.d * 1000 + b.d * 100 + c.d * 10 + e.d AS n \
         FROM {digits} a, {digits} b, {digits} c, {digits} e) AS numbers"
    );
    sqlx::query(&fill).execute(&db).await.unwrap();
    let analyze = format!("ANALYZE TABLE {table}");
    sqlx::query(&analyze).execute(&db).await.unwrap();
    let status = |name: &'static str| {
        let db = db.clone();
        async move {
            let (_, value): (String, String) =
                sqlx::query_as(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))
                    .fetch_one(&db)
                    .await
                    .unwrap();
            value.parse::<i64>().unwrap()
        }
    };
    // The store counts its table at its first creation (as each sweep does): done before
    // the count of rows read, which is the server's, begins.
    let first = rocket_server_sessions::store::SessionId::generate();
    let record = rocket_server_sessions::store::SessionRecord::new(Duration::from_secs(60));
    let created =
        rocket_server_sessions::store::SessionStore::create(&store, &first, &record).await;
    assert_eq!(
        created.unwrap(),
        rocket_server_sessions::store::CreateOutcome::Created
    );
    let scanned_before = status("Handler_read_rnd_next").await;
    let lookups_before = status("Handler_read_key").await;

    exercise(&store).await;

    let scanned = status("Handler_read_rnd_next").await - scanned_before;
    assert!(
        scanned < FILLER,
        "statements scanned the table: {scanned} rows read"
    );
    let lookups = status("Handler_read_key").await - lookups_before;
    assert!(lookups >= 4 * SESSIONS, "{lookups} index lookups");
}

/// A flood of new visitors at once keeps the cap: each creation is admitted before it
/// writes (an attack saw 205 SQLite rows for a cap of 200, before). A stranger may be
/// refused while creations in flight fill the table; never let in past the cap.
#[rocket::async_test]
async fn creations_at_once_never_pass_the_cap() {
    for (store, url) in databases() {
        let table = sql::unique_table();
        let client =
            app(sql_figment(store, &url, &table).merge(("sessions.sql.max_sessions", 20))).await;
        for _ in 0..5 {
            let flood = (0..100).map(|_| client.get("/counter").dispatch());
            for response in rocket::futures::future::join_all(flood).await {
                let status = response.status();
                assert!(
                    status == Status::Ok || status == Status::ServiceUnavailable,
                    "{store}: {status}"
                );
            }
            let rows = rows(store, &url, &table).await;
            assert!(rows <= 20, "{store}: {rows} rows over a cap of 20");
        }
    }
}

/// The shape issue: at Rocket's shutdown the store stops its sweep, but goes on answering:
/// Rocket runs shutdown fairings before the requests in flight end. A pool the application
/// gave it stays the application's.
#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn shutdown_leaves_the_store_answering_the_requests_in_flight() {
    use rocket_server_sessions::store::{SessionStore, SqliteStore};

    let config = sql::config(sql::sqlite_url()).sql;
    // The store makes the file, private; then the application opens its pool on it.
    SqliteStore::connect(&config).await.unwrap();
    let pool = sqlx_sqlite(config.url.as_deref().unwrap()).await;
    let store = SqliteStore::with_pool(pool.clone(), &config).await.unwrap();
    let sessions = Sessions::builder().store(store.clone()).build();
    let client = Client::untracked(rocket_with(figment(), Some(sessions)))
        .await
        .expect("the app launches");
    assert_eq!(get_ok(&client, "/counter").await, "1");
    client.terminate().await;

    assert!(!pool.is_closed());
    let id = rocket_server_sessions::store::SessionId::generate();
    assert!(
        store.load(&id).await.unwrap().is_none(),
        "the store still answers"
    );
}

/// A review's finding: once signed-in sessions fill the table, each stranger ran a count of
/// the whole table, one at a time, ahead of the sign-ins. For a second after a count that
/// refused one, strangers are refused without a query: here the table is locked, so a
/// query would wait out the timeout instead of answering `Full`.
#[cfg(feature = "postgres")]
#[rocket::async_test]
async fn strangers_refused_by_a_full_table_do_not_count_it_again() {
    use rocket_server_sessions::store::{SessionId, SessionRecord, SessionStore, StoreError};

    let Some(url) = sql::postgres_url() else {
        return;
    };
    let mut config = sql::config(url.clone()).sql;
    config.max_sessions = 2;
    config.timeout = Duration::from_millis(500);
    let store = rocket_server_sessions::store::PostgresStore::connect(&config)
        .await
        .expect("the test PostgreSQL");
    let mut signed_in = SessionRecord::new(Duration::from_secs(600));
    signed_in.insert("$user", "\"alice\"");
    for _ in 0..2 {
        let created = store.create(&SessionId::generate(), &signed_in).await;
        assert!(created.is_ok(), "{created:?}");
    }
    let stranger = SessionRecord::new(Duration::from_secs(600));
    let refused = store.create(&SessionId::generate(), &stranger).await;
    assert!(matches!(refused, Err(StoreError::Full)), "{refused:?}");

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut lock = pool.begin().await.unwrap();
    let table = &config.table;
    sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut *lock)
        .await
        .unwrap();
    let refused = store.create(&SessionId::generate(), &stranger).await;
    assert!(matches!(refused, Err(StoreError::Full)), "{refused:?}");
    lock.rollback().await.unwrap();
}
