//! Redis for the tests: the servers `scripts/test.sh` starts, and servers a test starts and
//! stops itself.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket_server_sessions::{
    config::RedisConfig,
    store::{RedisStore, SessionId, SessionStore},
};

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

/// A redis-server of the test's own, on a loopback port. Killed when dropped.
pub struct OwnServer {
    pub port: u16,
    dir: PathBuf,
    /// Options beyond the port, the directory and persistence.
    options: Vec<String>,
    child: Option<Child>,
}

impl OwnServer {
    /// A server on a free port, persisting every write to its append-only file so that a
    /// restart keeps the data.
    pub fn start() -> Option<OwnServer> {
        let options = ["--appendonly", "yes", "--appendfsync", "always"];
        OwnServer::start_with(super::free_port(), &options)
    }

    /// A server on `port` with `options` (`--name value` pairs) added.
    pub fn start_with(port: u16, options: &[&str]) -> Option<OwnServer> {
        service_env("SESSIONS_REDIS_SERVER")?;
        let dir = std::env::temp_dir().join(format!("rss-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut server = OwnServer {
            port,
            dir,
            options: options.iter().map(|o| o.to_string()).collect(),
            child: None,
        };
        server.restart();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Where the server keeps its files: its append-only file, with `start`.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
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
                "--daemonize",
                "no",
            ])
            .args(&self.options)
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

/// A Redis Cluster of the test's own: three masters with a replica each, on free loopback
/// ports, where a replica takes over a master that stops answering for `node_timeout`.
/// Every node is killed when dropped.
pub struct OwnCluster {
    nodes: Vec<OwnServer>,
}

/// One master of an [`OwnCluster`] and its replica, by port.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    pub master: u16,
    pub replica: u16,
}

impl OwnCluster {
    /// Starts six nodes, makes them a cluster, and waits until every node serves it and
    /// every replica follows its master.
    pub fn start(node_timeout: Duration) -> Option<OwnCluster> {
        service_env("SESSIONS_REDIS_SERVER")?;
        // Each node's cluster bus gets a port of its own: `port + 10000`, the default,
        // may be past 65535 or taken.
        let ports = super::free_ports(12);
        let (ports, buses) = ports.split_at(6);
        let node_timeout = node_timeout.as_millis().to_string();
        let nodes = ports
            .iter()
            .zip(buses)
            .map(|(port, bus)| {
                let options = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus.to_string(),
                    "--cluster-node-timeout",
                    &node_timeout,
                    "--appendonly",
                    "no",
                    // A replica's first sync starts at once, not after 5 s.
                    "--repl-diskless-sync-delay",
                    "0",
                ];
                OwnServer::start_with(*port, &options).expect("checked above")
            })
            .collect();
        let cluster = OwnCluster { nodes };

        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(ports.iter().map(|port| format!("127.0.0.1:{port}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        wait_for("the cluster never became ready", || cluster.is_ready());
        Some(cluster)
    }

    /// The seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(OwnServer::url).collect()
    }

    /// The node on `port`.
    pub fn node(&self, port: u16) -> &OwnServer {
        self.nodes
            .iter()
            .find(|node| node.port == port)
            .expect("a node of the cluster")
    }

    /// Every node serves the cluster, knows all six, and every master has a replica online.
    fn is_ready(&self) -> bool {
        let serving = self.nodes.iter().all(|node| {
            let info = node.query(&["CLUSTER", "INFO"]).unwrap_or_default();
            info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6")
        });
        serving && self.pairs().len() == 3 && self.replicas_caught_up()
    }

    /// Each master and its replica, as the first node that answers sees them.
    pub fn pairs(&self) -> Vec<Pair> {
        let nodes = self
            .nodes
            .iter()
            .find_map(|node| node.query(&["CLUSTER", "NODES"]))
            .unwrap_or_default();
        // `<id> <ip>:<port>@<bus port> <flags> <master id or -> ...`, one node a line.
        let nodes: Vec<(&str, u16, &str, &str)> = nodes
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let port = fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
                Some((fields[0], port, *fields.get(2)?, *fields.get(3)?))
            })
            .collect();
        // A node that is up, as `role`: `myself,master`, not `master,fail?` or `master,fail`.
        let up_as = |flags: &str, role: &str| {
            let flags: Vec<&str> = flags.split(',').collect();
            flags.contains(&role) && !flags.iter().any(|flag| flag.starts_with("fail"))
        };
        nodes
            .iter()
            .filter(|(_, _, flags, _)| up_as(flags, "master"))
            .filter_map(|(id, master, _, _)| {
                let replica = nodes
                    .iter()
                    .find(|(_, _, flags, of)| of == id && up_as(flags, "slave"))?;
                Some(Pair {
                    master: *master,
                    replica: replica.1,
                })
            })
            .collect()
    }

    /// Whether every live master's replica is online and has every write its master took.
    pub fn replicas_caught_up(&self) -> bool {
        self.pairs().iter().all(|pair| {
            let info = self
                .node(pair.master)
                .query(&["INFO", "replication"])
                .unwrap_or_default();
            let field = |name: &str| {
                info.lines()
                    .find_map(|line| line.trim_end().strip_prefix(name))
                    .map(String::from)
            };
            let master: Option<u64> = field("master_repl_offset:").and_then(|o| o.parse().ok());
            // `slave0:ip=127.0.0.1,port=7401,state=online,offset=1234,lag=0`
            let replica = field("slave0:").and_then(|line| {
                line.contains("state=online").then(|| {
                    line.split(',')
                        .find_map(|kv| kv.strip_prefix("offset="))?
                        .parse::<u64>()
                        .ok()
                })?
            });
            matches!((master, replica), (Some(m), Some(r)) if r >= m)
        })
    }

    /// Kills the node on `port` (`SIGKILL`), as a crash would.
    pub fn kill(&mut self, port: u16) {
        self.nodes
            .iter_mut()
            .find(|node| node.port == port)
            .expect("a node of the cluster")
            .stop();
    }

    /// The keys under `prefix` that the node on `port` holds.
    pub fn keys(&self, port: u16, prefix: &str) -> Vec<String> {
        let pattern = format!("{prefix}*");
        let keys = self
            .node(port)
            .query(&["--scan", "--pattern", &pattern])
            .unwrap_or_default();
        keys.lines()
            .filter(|key| !key.is_empty())
            .map(String::from)
            .collect()
    }
}

/// Waits, up to 20 s, until `condition` holds; panics with `what` if it never does.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
