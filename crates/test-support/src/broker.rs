//! The Tansu Kafka-protocol broker as a child process, with the suite's topics created.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};

use crate::WAIT;

/// Topics the suite uses, created with this many partitions.
pub const TOPICS: [&str; 2] = ["eshop-topic", "eshop-topic.dlq"];
pub const PARTITIONS: u32 = 3;

/// The Tansu binary: `TANSU_BIN`, else where `scripts/install-tansu.sh` puts it, else `tansu` on PATH.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    if let Some(cache) = cache {
        let installed = cache.join("eshop-tracing/tansu-0.6.0-libsql/bin/tansu");
        if installed.exists() {
            return installed;
        }
    }
    PathBuf::from("tansu")
}

/// A Tansu broker on a free loopback port, storing in memory or in a file.
#[derive(Debug)]
pub struct Broker {
    pub addr: SocketAddr,
    storage: String,
    /// The broker's working directory, where a `sqlite://` file lives.
    dir: Option<PathBuf>,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker with in-memory storage (gone when it stops) and creates [`TOPICS`].
    pub async fn start() -> Self {
        Self::start_with_storage("memory://tansu/".to_owned(), None).await
    }

    /// Starts a broker that keeps topics, records and committed offsets in an
    /// SQLite file in `dir` (Tansu's libsql engine, no database server), so
    /// that it comes back with them after [`Broker::restart`].
    pub async fn start_persistent(dir: &Path) -> Self {
        // Tansu 0.6 reads the path after `sqlite://` relative to its working
        // directory, even with a leading slash.
        Self::start_with_storage("sqlite://tansu.db".to_owned(), Some(dir.to_owned())).await
    }

    async fn start_with_storage(storage: String, dir: Option<PathBuf>) -> Self {
        let port = free_port();
        let mut broker = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            storage,
            dir,
            child: None,
        };
        broker.start_again().await;
        broker
    }

    /// Kills the broker with SIGKILL and starts it again on the same port and storage.
    pub async fn restart(&mut self) {
        self.start_again().await;
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// `host:port` for `KAFKA_BOOTSTRAP_SERVERS`.
    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    /// Kills the broker (SIGKILL). With in-memory storage its topics and offsets are gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Freezes the broker (SIGSTOP): it keeps its data but answers nothing, as
    /// during a network partition or a long pause. Undo with [`Broker::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused broker run again, with its topics and committed offsets intact.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        crate::signal::send(
            self.child.as_ref().and_then(Child::id).expect("the broker runs"),
            signal,
        );
    }

    /// Starts the broker on the same port and creates the topics (again, or
    /// finds them there with persistent storage).
    pub async fn start_again(&mut self) {
        self.stop().await;
        let url = format!("tcp://{}", self.addr);
        let mut command = Command::new(tansu_binary());
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let child = command
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", &self.storage])
            // The broker's own telemetry is not part of the suite's traces.
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start {}: {err}; run scripts/install-tansu.sh",
                    tansu_binary().display()
                )
            });
        self.child = Some(child);
        for topic in TOPICS {
            self.create_topic(topic).await;
        }
    }

    /// Creates a topic, retrying while the broker is still starting.
    async fn create_topic(&self, topic: &str) {
        let url = format!("tcp://{}", self.addr);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let output = Command::new(tansu_binary())
                .args([
                    "topic",
                    "create",
                    topic,
                    "--broker",
                    &url,
                    "--partitions",
                    &PARTITIONS.to_string(),
                ])
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .output()
                .await
                .expect("run tansu topic create");
            // A broker restarted on its own storage still has the topic.
            // (Tansu's CLI prints its errors on standard output.)
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            if output.status.success() || said.contains("already exists") {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "cannot create topic {topic}: {said}"
            );
            // Polling a starting process: there is no readiness signal to wait on.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}
