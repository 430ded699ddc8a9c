//! Apache Kafka (KRaft, one node) as a child process, with the suite's topics created.
//!
//! The broker is started by `scripts/kafka-broker.sh`, the launcher `make run`
//! uses too, from `k8s/base/kafka/kraft.env`: the settings Compose and
//! Kubernetes give the apache/kafka image. A wrong cluster id or setting there
//! fails every test that starts a broker.

use std::{
    fs::File,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    types::RDKafkaErrorCode,
};
use tokio::process::{Child, Command};

use crate::WAIT;

/// Topics the suite uses, created with this many partitions (as
/// `scripts/kafka-broker.sh create-topics` and the Compose and Kubernetes
/// topics jobs create them).
pub const TOPICS: [&str; 2] = ["eshop-topic", "eshop-topic.dlq"];
pub const PARTITIONS: i32 = 3;

/// The launcher script, found from this crate's source folder.
pub fn kafka_launcher() -> PathBuf {
    crate::repo_root().join("scripts/kafka-broker.sh")
}

/// `k8s/base/kafka/kraft.env`: the KRaft settings the launcher, Compose and Kubernetes read.
pub fn kraft_settings() -> PathBuf {
    crate::repo_root().join("k8s/base/kafka/kraft.env")
}

/// An Apache Kafka broker and controller on free loopback ports, with its log
/// directory in a folder of its own.
#[derive(Debug)]
pub struct Broker {
    pub addr: SocketAddr,
    controller_port: u16,
    /// Holds `server.properties`, the log directory (`data/`) and `broker.log`.
    dir: PathBuf,
    /// Whether the folder is the broker's to delete when it is dropped.
    owns_dir: bool,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker on a new, empty log directory (deleted when it is dropped) and creates [`TOPICS`].
    pub async fn start() -> Self {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "eshop-kafka-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self::start_in(dir, true).await
    }

    /// Starts a broker whose log directory is in `dir` and stays there, so that
    /// a broker started again on it comes back with its topics, records and
    /// committed offsets (as [`Broker::restart`] does).
    pub async fn start_persistent(dir: &Path) -> Self {
        Self::start_in(dir.to_owned(), false).await
    }

    async fn start_in(dir: PathBuf, owns_dir: bool) -> Self {
        std::fs::create_dir_all(&dir).expect("create the broker's folder");
        let mut broker = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            controller_port: free_port(),
            dir,
            owns_dir,
            child: None,
        };
        broker.start_again().await;
        broker
    }

    /// Kills the broker with SIGKILL and starts it again on the same ports and log directory.
    pub async fn restart(&mut self) {
        self.start_again().await;
    }

    /// The broker's process id (the JVM's), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// `host:port` for `KAFKA_BOOTSTRAP_SERVERS`.
    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    /// Kills the broker (SIGKILL), as a crash would. Its log directory stays.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops the broker as `docker stop` or Kubernetes would (SIGTERM: a
    /// controlled shutdown) and returns how it exited.
    pub async fn shut_down(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the broker runs");
        crate::signal::send(child.id().expect("the broker runs"), "-TERM");
        tokio::time::timeout(WAIT, child.wait())
            .await
            .expect("the broker exits within WAIT of SIGTERM")
            .expect("the broker's exit status")
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
        crate::signal::send(self.pid().expect("the broker runs"), signal);
    }

    /// Starts the broker on the same ports and log directory and creates the
    /// topics (or finds them there after a restart).
    pub async fn start_again(&mut self) {
        self.stop().await;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))
            .expect("open the broker's log");
        let child = Command::new(kafka_launcher())
            .arg("start")
            .arg(&self.dir)
            .arg(self.addr.port().to_string())
            .arg(self.controller_port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the broker's log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", kafka_launcher().display()));
        self.child = Some(child);
        self.create_topics().await;
    }

    /// Creates [`TOPICS`], retrying while the broker is still starting: a topic
    /// that exists (after a restart) counts as created.
    async fn create_topics(&mut self) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap_servers())
            .set("reconnect.backoff.max.ms", "500")
            .create()
            .expect("an admin client");
        let topics: Vec<NewTopic<'_>> = TOPICS
            .iter()
            .map(|topic| NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let outcome = match admin.create_topics(&topics, &options).await {
                Ok(results) => results
                    .into_iter()
                    .find_map(|result| match result {
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) | Ok(_) => None,
                        Err((topic, code)) => Some(format!("{topic}: {code}")),
                    })
                    .map_or(Ok(()), Err),
                Err(err) => Err(err.to_string()),
            };
            let Err(problem) = outcome else { return };
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "the broker exited ({status}): see {}",
                    self.dir.join("broker.log").display()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "cannot create the topics within {WAIT:?}: {problem}; see {}",
                self.dir.join("broker.log").display()
            );
            // Polling a starting JVM: it offers no readiness signal to wait on.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if self.owns_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}
