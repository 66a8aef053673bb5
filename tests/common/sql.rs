//! The SQL databases for the tests: the PostgreSQL and MariaDB `scripts/test.sh` starts,
//! and SQLite files of the tests' own. Each store gets a table of its own.

use std::sync::Arc;

use rocket_server_sessions::{
    config::SessionConfig,
    store::{SessionId, SessionStore},
};

use super::service_env;
pub use super::unique_table;

/// The session config for the database at `url`, in a table of its own.
pub fn config(url: String) -> SessionConfig {
    let mut config = SessionConfig::default();
    config.sql.url = Some(url);
    config.sql.table = unique_table();
    config
}

/// A fresh SQLite database file.
pub fn sqlite_url() -> String {
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "sessions-{}.db",
        SessionId::generate().storage_key()
    ));
    format!("sqlite://{}", file.display())
}

pub fn postgres_url() -> Option<String> {
    service_env("SESSIONS_POSTGRES_URL")
}

pub fn mysql_url() -> Option<String> {
    service_env("SESSIONS_MYSQL_URL")
}

#[cfg(feature = "sqlite")]
pub async fn sqlite_store() -> Option<Arc<dyn SessionStore>> {
    let store = rocket_server_sessions::store::SqliteStore::connect(&config(sqlite_url()).sql)
        .await
        .expect("an SQLite file opens");
    Some(Arc::new(store))
}

#[cfg(feature = "postgres")]
pub async fn postgres_store() -> Option<Arc<dyn SessionStore>> {
    let store = rocket_server_sessions::store::PostgresStore::connect(&config(postgres_url()?).sql)
        .await
        .expect("the test PostgreSQL answers");
    Some(Arc::new(store))
}

#[cfg(feature = "mysql")]
pub async fn mysql_store() -> Option<Arc<dyn SessionStore>> {
    let store = rocket_server_sessions::store::MySqlStore::connect(&config(mysql_url()?).sql)
        .await
        .expect("the test MariaDB answers");
    Some(Arc::new(store))
}

/// A PostgreSQL of the test's own, on a free loopback port, in a temporary directory (as
/// the `postgres` user when the tests run as root): a test stops and restarts it. Killed
/// when dropped.
pub struct OwnPostgres {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

/// A command for PostgreSQL's program `name`, run as `postgres` under root.
fn postgres_command(name: &str) -> Option<std::process::Command> {
    let bin = std::path::Path::new(&service_env("SESSIONS_POSTGRES_BIN")?).join(name);
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    Some(match root {
        true => {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(bin);
            command
        }
        false => std::process::Command::new(bin),
    })
}

impl OwnPostgres {
    pub fn start() -> Option<OwnPostgres> {
        let mut initdb = postgres_command("initdb")?;
        let port = super::free_port();
        let dir = std::env::temp_dir().join(format!("rss-pg-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let _ = std::process::Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status();
        let status = initdb
            .arg("-D")
            .arg(dir.join("db"))
            .args(["-A", "trust", "-U", "postgres"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(status.success(), "initdb failed");
        let mut server = OwnPostgres {
            port,
            dir,
            child: None,
        };
        server.restart();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again), and waits until it accepts connections.
    pub fn restart(&mut self) {
        let child = postgres_command("postgres")
            .expect("checked at start")
            .arg("-D")
            .arg(self.dir.join("db"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "postgres did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Stops the server at once, as a crash or an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The server's own pid (runuser may stand between): an immediate shutdown.
            let pid = std::fs::read_to_string(self.dir.join("db/postmaster.pid"))
                .ok()
                .and_then(|pids| pids.lines().next().map(str::to_owned));
            if let Some(pid) = pid {
                let _ = std::process::Command::new("kill")
                    .args(["-QUIT", &pid])
                    .status();
            }
            let _ = child.wait();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "postgres did not stop"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP proxy on a loopback port of its own to the server at `target` ("host:port"):
/// `cut` closes every connection through it and refuses new ones, as a database that went
/// down would; `restore` lets connections through again. It runs on the test's runtime.
pub struct Proxy {
    pub port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    cuts: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        use std::sync::atomic::Ordering;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cuts, _) = tokio::sync::watch::channel(0);
        let (open, watch) = (up.clone(), cuts.subscribe());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !open.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let (target, mut cut) = (target.clone(), watch.clone());
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { port, up, cuts }
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
