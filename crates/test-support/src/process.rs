//! The suite's real binaries started as child processes, found on the port they report.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex, PoisonError},
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

use crate::WAIT;

/// Variables a child must not inherit from the shell running the tests.
const SCRUBBED_PREFIXES: [&str; 3] = ["OTEL_", "KAFKA_", "NOTIFY_"];
const SCRUBBED: [&str; 9] = [
    "RUST_LOG",
    "BAGGAGE_SPAN_ATTRIBUTES",
    "LOG_FORMAT",
    "PORT",
    "HOST",
    "INVENTORY_URL",
    "BILLING_URL",
    "DELIVERY_URL",
    "NOTIFICATION_URL",
];

/// Where cargo put the workspace binary `name`, beside the running test executable.
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut dir = exe.parent().expect("a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (`make test` does)",
        path.display()
    );
    path
}

/// A running service binary; killed when dropped, its log printed if the test failed.
#[derive(Debug)]
pub struct ServiceProcess {
    pub name: String,
    pub addr: SocketAddr,
    /// The binary, started again by [`ServiceProcess::restart`].
    path: PathBuf,
    envs: Vec<(String, String)>,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl ServiceProcess {
    /// Starts binary `name` on `127.0.0.1` and a free port, with JSON logs and
    /// these variables, and waits for its `listening` log line.
    pub async fn start(name: &str, envs: &[(String, String)]) -> Self {
        Self::spawn(&binary_path(name), name, with_defaults(envs), Reading::Everything).await
    }

    /// Like [`ServiceProcess::start`], with the binary `name` from `dir`
    /// rather than from beside the running executable (another build, for
    /// `bench ab`).
    pub async fn start_from(dir: &Path, name: &str, envs: &[(String, String)]) -> Self {
        let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        Self::spawn(&path, name, with_defaults(envs), Reading::Everything).await
    }

    /// Like [`ServiceProcess::start`], but stdout is no longer read once the
    /// service reports `listening`: the pipe fills, as when whatever reads a
    /// container's output falls behind. Its later lines are not collected.
    pub async fn start_with_stdout_unread(name: &str, envs: &[(String, String)]) -> Self {
        Self::spawn(&binary_path(name), name, with_defaults(envs), Reading::UntilListening).await
    }

    async fn spawn(path: &Path, name: &str, envs: Vec<(String, String)>, reading: Reading) -> Self {
        let mut command = Command::new(path);
        for (key, _) in std::env::vars() {
            if SCRUBBED_PREFIXES.iter().any(|prefix| key.starts_with(prefix)) || SCRUBBED.contains(&key.as_str()) {
                command.env_remove(key);
            }
        }
        command
            .envs(envs.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (listening_tx, mut listening) = mpsc::channel(1);
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(collect(stdout, logs.clone(), Some(listening_tx), reading));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(collect(stderr, logs.clone(), None, Reading::Everything));
        }
        let addr = tokio::time::timeout(WAIT, listening.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                panic!(
                    "{name} did not report `listening` within {WAIT:?}; its output:\n{}",
                    logs.lock().unwrap_or_else(PoisonError::into_inner).join("\n")
                )
            });
        Self {
            name: name.to_owned(),
            addr,
            path: path.to_path_buf(),
            envs,
            child,
            logs,
        }
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Every line the process printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Sends SIGTERM (what Kubernetes and Ctrl-C do) and waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.send_sigterm();
        self.exited().await
    }

    /// Sends SIGTERM and returns at once, for a test that acts during the shutdown.
    pub fn send_sigterm(&self) {
        if let Some(pid) = self.child.id() {
            crate::signal::send(pid, "-TERM");
        }
    }

    /// Waits for the process to exit (after [`ServiceProcess::send_sigterm`], or by itself).
    pub async fn exited(&mut self) -> ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within {WAIT:?}", self.name))
            .expect("wait for the child")
    }

    /// Waits until the process no longer accepts connections on its port (it stopped serving).
    pub async fn wait_until_refusing(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(self.addr).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} still accepts connections {WAIT:?} after",
                self.name
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Freezes the process (SIGSTOP): its connections stay open but nothing is
    /// answered, and its in-memory state survives. Undo with [`ServiceProcess::resume`].
    pub fn pause(&self) {
        crate::signal::send(self.child.id().expect("the process runs"), "-STOP");
    }

    /// Lets a paused process run again.
    pub fn resume(&self) {
        crate::signal::send(self.child.id().expect("the process runs"), "-CONT");
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts the same binary again on the same port with the same variables.
    pub async fn restart(&mut self) {
        self.kill().await;
        let mut envs = self.envs.clone();
        envs.push(("PORT".to_owned(), self.addr.port().to_string()));
        let logs = self.logs();
        *self = Self::spawn(&self.path.clone(), &self.name.clone(), envs, Reading::Everything).await;
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .splice(0..0, logs);
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- {} output -----\n{}", self.name, self.logs().join("\n"));
        }
    }
}

/// JSON logs on `127.0.0.1` and a free port, then `envs`.
fn with_defaults(envs: &[(String, String)]) -> Vec<(String, String)> {
    let mut all = vec![
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
    ];
    all.extend(envs.iter().cloned());
    all
}

/// How much of a process's output is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Everything,
    /// Up to the `listening` line, then nothing: the pipe is kept open, unread.
    UntilListening,
}

async fn collect(
    stream: impl AsyncRead + Unpin,
    logs: Arc<Mutex<Vec<String>>>,
    listening: Option<mpsc::Sender<SocketAddr>>,
    reading: Reading,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut listened = false;
        if let Some(listening) = &listening
            && let Some(addr) = listening_addr(&line)
        {
            let _ = listening.try_send(addr);
            listened = true;
        }
        logs.lock().unwrap_or_else(PoisonError::into_inner).push(line);
        if listened && reading == Reading::UntilListening {
            // Held, never read again, until the process ends.
            std::future::pending::<()>().await;
        }
    }
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("message")?.as_str()? != "listening" {
        return None;
    }
    let ip: std::net::IpAddr = value.get("server.address")?.as_str()?.parse().ok()?;
    let port = u16::try_from(value.get("server.port")?.as_u64()?).ok()?;
    Some(SocketAddr::new(ip, port))
}
