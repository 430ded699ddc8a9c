//! The metrics as Prometheus sees them: a real Prometheus (Debian's package,
//! installed by `scripts/install-prometheus.sh`) scrapes `GET /metrics` of the
//! six real services, and its exemplar API leads from the duration histograms
//! to traces the OTLP receiver holds: the click from a latency bucket to a trace.

use std::{
    collections::HashSet,
    path::PathBuf,
    process::Stdio,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use test_support::{ServiceProcess, Stack, WAIT, installed_program};
use tokio::process::{Child, Command};

/// The Prometheus `scripts/install-prometheus.sh` installed (`PROMETHEUS_BIN` overrides it).
fn prometheus_binary() -> PathBuf {
    installed_program("install-prometheus.sh")
}

/// A Prometheus on a free port with exemplar storage on, scraping `targets` every second.
struct Prometheus {
    url: String,
    dir: PathBuf,
    child: Child,
}

impl Prometheus {
    async fn start(targets: &[&ServiceProcess]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("a free port");
        let dir = std::env::temp_dir().join(format!("eshop-tracing-prometheus-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let targets: Vec<String> = targets.iter().map(|process| format!("'{}'", process.addr)).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: eshop-tracing\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write the config");
        let child = Command::new(prometheus_binary())
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Exemplars are kept only with this feature (Prometheus 2.26 and later).
            .arg("--enable-feature=exemplar-storage")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start {}: {err}; run scripts/install-prometheus.sh (make test does)",
                    prometheus_binary().display()
                )
            });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `probe` until it returns `Some` (Prometheus has no push notification to wait on).
async fn poll<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn prometheus_exemplars_lead_to_traces_the_receiver_holds() {
    let stack = Stack::start().await;
    let services = [
        &stack.eshop,
        &stack.inventory,
        &stack.billing,
        &stack.delivery,
        &stack.notification,
        &stack.consumer,
    ];
    let prometheus = Prometheus::start(&services).await;
    let client = &stack.client;
    poll("Prometheus ready", async || {
        let ready = client.get(format!("{}/-/ready", prometheus.url)).send().await;
        ready.is_ok_and(|response| response.status().is_success()).then_some(())
    })
    .await;

    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        - 60;
    let mut checkouts = HashSet::new();
    for _ in 0..3 {
        let response = stack.get("/checkout", &[]).await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("JSON");
        checkouts.insert(body["trace_id"].as_str().expect("a trace id").to_owned());
    }

    // Every service's request histogram, and the consumer's processing one.
    for (metric, job_targets) in [
        ("http_server_request_duration_seconds_bucket", 5),
        ("http_client_request_duration_seconds_bucket", 2),
        ("messaging_process_duration_seconds_bucket", 1),
        ("messaging_client_operation_duration_seconds_bucket", 1),
    ] {
        let exemplars = poll(
            &format!("exemplars of {metric} from {job_targets} services"),
            async || {
                let end = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .expect("after 1970")
                    .as_secs()
                    + 60;
                let answer: serde_json::Value = client
                    .get(format!(
                        "{}/api/v1/query_exemplars?query={metric}&start={start}&end={end}",
                        prometheus.url
                    ))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let series = answer["data"].as_array()?;
                let instances: HashSet<&str> = series
                    .iter()
                    .filter(|series| series["exemplars"].as_array().is_some_and(|e| !e.is_empty()))
                    .filter_map(|series| series["seriesLabels"]["instance"].as_str())
                    .collect();
                (instances.len() >= job_targets).then(|| series.clone())
            },
        )
        .await;

        let spans = stack.receiver.store().spans();
        let mut seen = HashSet::new();
        for series in &exemplars {
            for exemplar in series["exemplars"].as_array().into_iter().flatten() {
                let trace_id = exemplar["labels"]["trace_id"].as_str().expect("a trace_id label");
                let span_id = exemplar["labels"]["span_id"].as_str().expect("a span_id label");
                let value: f64 = exemplar["value"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .expect("a value");
                let le: f64 = match series["seriesLabels"]["le"].as_str() {
                    Some("+Inf") | None => f64::INFINITY,
                    Some(le) => le.parse().expect("a bound"),
                };
                // Within its bucket: above the bound below it, at most its own.
                let below = telemetry::semconv::DURATION_BUCKETS
                    .iter()
                    .copied()
                    .filter(|bound| *bound < le)
                    .fold(0.0, f64::max);
                assert!(
                    below < value && value <= le,
                    "{metric}: exemplar {value} outside its bucket ({below}, {le}]"
                );
                assert!(
                    spans
                        .iter()
                        .any(|span| span.trace_id == trace_id && span.span_id == span_id),
                    "{metric}: exemplar trace {trace_id} span {span_id} is not in the OTLP receiver"
                );
                seen.insert(trace_id.to_owned());
            }
        }
        assert!(
            seen.iter().all(|trace_id| checkouts.contains(trace_id)),
            "{metric}: exemplars name traces that are not the test's checkouts: {seen:?} vs {checkouts:?}"
        );
    }
}
