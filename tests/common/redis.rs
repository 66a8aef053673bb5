//! Redis for the tests: the servers `scripts/test.sh` starts, and servers a test starts and
//! stops itself.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket_server_sessions::{RedisConfig, RedisStore, SessionId, SessionStore};

use super::service_env;

/// A key prefix no other test uses, so tests share a server without meeting.
pub fn unique_prefix() -> String {
    format!("test:{}:", SessionId::generate())
}

/// The Redis key of session `id` under `prefix`, as the store names it: the prefix, the
/// hash tag of its group, its storage key.
pub fn session_key(prefix: &str, id: &SessionId) -> String {
    let hash = id.storage_key();
    format!("{prefix}{{{}}}{hash}", &hash[..2])
}

/// Whether `key` is one of the store's group indexes rather than a session.
pub fn is_index(key: &str) -> bool {
    key.ends_with(":anonymous") || key.ends_with(":signed-in")
}

/// The standalone test server's config (with its password), under a fresh prefix.
pub fn standalone_config() -> Option<RedisConfig> {
    let mut config = RedisConfig::default();
    config.url = service_env("SESSIONS_REDIS_URL")?;
    config.prefix = unique_prefix();
    Some(config)
}

/// The test cluster's config, under a fresh prefix.
pub fn cluster_config() -> Option<RedisConfig> {
    let mut config = RedisConfig::default();
    config.urls = service_env("SESSIONS_REDIS_CLUSTER_URLS")?
        .split(',')
        .map(String::from)
        .collect();
    config.prefix = unique_prefix();
    Some(config)
}

pub async fn standalone_store() -> Option<Arc<dyn SessionStore>> {
    let config = standalone_config()?;
    let store = RedisStore::connect(&config)
        .await
        .expect("the test Redis answers");
    Some(Arc::new(store))
}

/// The Valkey test server's store, under a fresh prefix.
pub async fn valkey_store() -> Option<Arc<dyn SessionStore>> {
    let mut config = RedisConfig::default();
    config.url = service_env("SESSIONS_VALKEY_URL")?;
    config.prefix = unique_prefix();
    let store = RedisStore::connect(&config)
        .await
        .expect("the test Valkey answers");
    Some(Arc::new(store))
}

pub async fn cluster_store() -> Option<Arc<dyn SessionStore>> {
    let config = cluster_config()?;
    let store = RedisStore::connect_cluster(&config)
        .await
        .expect("the test Redis Cluster answers");
    Some(Arc::new(store))
}

/// A redis-server of the test's own, on a free loopback port, persisting every write to
/// its append-only file so that a restart keeps the data. Killed when dropped.
pub struct OwnServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnServer {
    pub fn start() -> Option<OwnServer> {
        service_env("SESSIONS_REDIS_SERVER")?;
        let port = super::free_port();
        let dir = std::env::temp_dir().join(format!("rss-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut server = OwnServer {
            port,
            dir,
            child: None,
        };
        server.restart();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn config(&self) -> RedisConfig {
        let mut config = RedisConfig::default();
        config.url = self.url();
        config.timeout = Duration::from_millis(300);
        config
    }

    /// Starts the server (again), and waits until it answers.
    pub fn restart(&mut self) {
        let binary = service_env("SESSIONS_REDIS_SERVER").expect("checked at start");
        let child = Command::new(binary)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
            ])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);

        self.wait_until_answers("did not start");
    }

    /// Waits, up to 10 s, until the server answers `PING`; panics with `what` if not.
    pub fn wait_until_answers(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.query(&["PING"]).as_deref() != Some("PONG\n") {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {}: {what}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server, as a crash or an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs one command through redis-cli; `None` when the server does not answer.
    pub fn query(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    /// The session keys the server holds (not the group indexes).
    pub fn session_keys(&self) -> Vec<String> {
        let keys = self.query(&["KEYS", "*"]).unwrap_or_default();
        keys.lines()
            .filter(|key| !key.is_empty() && !is_index(key))
            .map(String::from)
            .collect()
    }

    /// How many times each command ran since the last `CONFIG RESETSTAT`.
    pub fn command_calls(&self) -> Vec<(String, u64)> {
        let info = self.query(&["INFO", "commandstats"]).unwrap_or_default();
        info.lines()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
                Some((name.to_string(), calls.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
