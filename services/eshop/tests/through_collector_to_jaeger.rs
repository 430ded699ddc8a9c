//! One checkout through the programs the Compose stack runs, each with the
//! project's own config: the six services export to a real OpenTelemetry
//! Collector (docker/observability/otel-collector.yaml, built by
//! scripts/install-otelcol.sh), which sends traces to a real Jaeger v2
//! (docker/observability/jaeger.yaml, scripts/install-jaeger.sh) and span
//! metrics to a real Prometheus (docker/observability/prometheus.yml,
//! scripts/install-prometheus.sh), which Jaeger's Monitor API reads.
//!
//! The configs are not copied by hand: each is read from docker/ and only its
//! Compose host:port strings are replaced by free loopback ports (every
//! replaced string must occur exactly once, so a config that changes its
//! addresses fails here rather than silently keeping a Compose name). Settings
//! that exist only to make a test fast or to let two collector-based programs
//! share one host are given as `--config=yaml:` overrides, named in `start`.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use test_support::{ServiceProcess, Stack, StackOptions, installed_program, repo_root};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, BufReader},
    process::{Child, Command},
};

const CALLER_TRACE_ID: &str = "7d1c7e3b0a9f4c52b6e1d2f3a4b5c6d7";
const CALLER_SPAN_ID: &str = "1f2e3d4c5b6a7988";
/// Longer than test-support's WAIT: the Monitor API needs two scrapes of two
/// span-metric flushes before a rate is above zero, on a machine shared with builds.
const WAIT: Duration = Duration::from_secs(120);

/// The programs `make test` installed: each install script prints its binary's
/// path (and honours `JAEGER_BIN`, `OTELCOL_BIN`, `PROMETHEUS_BIN`).
fn jaeger_binary() -> PathBuf {
    installed_program("install-jaeger.sh")
}

fn otelcol_binary() -> PathBuf {
    installed_program("install-otelcol.sh")
}

fn prometheus_binary() -> PathBuf {
    installed_program("install-prometheus.sh")
}

/// `N` distinct free loopback ports: all are held until all are found, so none comes back twice.
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("its address").port())
}

fn loopback(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// `text` with each `(from, to)` applied; each `from` must occur exactly once.
fn substitute(what: &str, text: &str, replacements: &[(&str, String)]) -> String {
    let mut text = text.to_owned();
    for (from, to) in replacements {
        let found = text.matches(from).count();
        assert_eq!(
            found, 1,
            "{what}: expected {from:?} exactly once (found {found}); the test replaces it with a loopback address"
        );
        text = text.replace(from, to);
    }
    text
}

/// A program of the observability stack: killed when dropped, its output
/// printed if the test failed.
struct Program {
    name: &'static str,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Program {
    fn start(name: &'static str, binary: &Path, args: &[String], install: &str) -> Self {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start {}: {err}; run {install} (make test does)",
                    binary.display()
                )
            });
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(collect(stdout, logs.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(collect(stderr, logs.clone()));
        }
        Self { name, child, logs }
    }

    /// Panics with the program's output if it has exited (a bad config ends it at once).
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); its output:\n{}",
                self.name,
                self.logs.lock().unwrap_or_else(PoisonError::into_inner).join("\n")
            );
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            let logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
            // The collector's debug exporter prints every log batch: the tail says enough.
            let tail = &logs[logs.len().saturating_sub(80)..];
            eprintln!(
                "----- {} output (last {} lines) -----\n{}",
                self.name,
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// The config copies and Prometheus' storage; removed when the test ends,
/// failed or not. Declared before the programs, so dropped after they are killed.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("eshop-tracing-observability-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn collect(stream: impl AsyncRead + Unpin, logs: Arc<Mutex<Vec<String>>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        logs.lock().unwrap_or_else(PoisonError::into_inner).push(line);
    }
}

/// Polls `probe` until it returns `Ok`, checking that `programs` still run;
/// on time-out panics with the last `Err` (what was seen instead).
async fn poll<T>(what: &str, programs: &mut [&mut Program], mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let last = match probe().await {
            Ok(found) => return found,
            Err(last) => last,
        };
        for program in programs.iter_mut() {
            program.assert_running();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {WAIT:?}; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let response = client.get(url).send().await.map_err(|err| format!("{url}: {err}"))?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|err| format!("{url}: {err}"))?;
    Ok((status, body))
}

/// The series of a Prometheus instant query, once there is at least one.
async fn prometheus_series(
    client: &reqwest::Client,
    prometheus: &str,
    query: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let (status, body) = get_text(client, &format!("{prometheus}/api/v1/query?query={}", urlencode(query))).await?;
    let answer: serde_json::Value = serde_json::from_str(&body).map_err(|err| format!("{status} {body}: {err}"))?;
    match answer["data"]["result"].as_array() {
        Some(series) if !series.is_empty() => Ok(series.clone()),
        _ => Err(format!("{query}: {status} {body}")),
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(byte).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
}

#[tokio::test]
async fn a_checkout_reaches_jaeger_through_the_collector_and_its_rates_reach_the_monitor_tab() {
    let root = repo_root();
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap_or_else(|err| panic!("read {path}: {err}"));
    let scratch = Scratch::new();
    let scratch = &scratch.0;
    let write = |name: &str, text: String| {
        let path = scratch.join(name);
        std::fs::write(&path, text).expect("write a config copy");
        path
    };

    let [
        prometheus_port,
        collector_grpc,
        collector_http,
        collector_metrics,
        jaeger_grpc,
        jaeger_http,
        jaeger_query,
        jaeger_query_grpc,
    ] = free_ports();
    let prometheus = format!("http://{}", loopback(prometheus_port));
    let jaeger = format!("http://{}", loopback(jaeger_query));
    let client = reqwest::Client::new();

    let jaeger_config = write(
        "jaeger.yaml",
        substitute(
            "docker/observability/jaeger.yaml",
            &read("docker/observability/jaeger.yaml"),
            &[
                ("0.0.0.0:4317", loopback(jaeger_grpc)),
                ("0.0.0.0:4318", loopback(jaeger_http)),
                ("http://prometheus:9090", prometheus.clone()),
            ],
        ),
    );
    let mut jaeger_process = Program::start(
        "jaeger",
        &jaeger_binary(),
        &[
            format!("--config={}", jaeger_config.display()),
            // Compose publishes the query service on its default ports (16686,
            // 16685 on all interfaces); here they are free loopback ones.
            format!(
                "--config=yaml:extensions::jaeger_query::http::endpoint: {}",
                loopback(jaeger_query)
            ),
            format!(
                "--config=yaml:extensions::jaeger_query::grpc::endpoint: {}",
                loopback(jaeger_query_grpc)
            ),
            // Jaeger and the collector both serve their own metrics on 8888 by
            // default: in Compose each has its own network, here they share one.
            "--config=yaml:service::telemetry::metrics::level: none".to_owned(),
        ],
        "scripts/install-jaeger.sh",
    );

    let collector_config = write(
        "otel-collector.yaml",
        substitute(
            "docker/observability/otel-collector.yaml",
            &read("docker/observability/otel-collector.yaml"),
            &[
                ("0.0.0.0:4317", loopback(collector_grpc)),
                ("0.0.0.0:4318", loopback(collector_http)),
                ("jaeger:4317", loopback(jaeger_grpc)),
                ("0.0.0.0:8889", loopback(collector_metrics)),
            ],
        ),
    );
    let mut collector = Program::start(
        "otel-collector",
        &otelcol_binary(),
        &[
            format!("--config={}", collector_config.display()),
            "--config=yaml:service::telemetry::metrics::level: none".to_owned(),
            // The connector emits span metrics every 60 s by default; a rate
            // needs two emissions, so the test has them every second.
            "--config=yaml:connectors::spanmetrics::metrics_flush_interval: 1s".to_owned(),
        ],
        "scripts/install-otelcol.sh",
    );

    let stack = Stack::start_with(StackOptions {
        env: vec![(
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            format!("http://{}", loopback(collector_http)),
        )],
        ..StackOptions::default()
    })
    .await;

    let services: [(&str, &ServiceProcess); 6] = [
        ("eshop", &stack.eshop),
        ("inventory", &stack.inventory),
        ("billing", &stack.billing),
        ("delivery", &stack.delivery),
        ("notification", &stack.notification),
        ("kafka-consumer", &stack.consumer),
    ];
    // Scraped every second, so span metrics reach the Monitor API quickly;
    // each Compose target becomes the loopback address of the same program.
    let mut replacements = vec![
        ("scrape_interval: 5s".to_owned(), "scrape_interval: 1s".to_owned()),
        ("otel-collector:8889".to_owned(), loopback(collector_metrics)),
    ];
    replacements.extend(
        services
            .iter()
            .map(|(name, process)| (format!("- {name}:8080\n"), format!("- {}\n", process.addr))),
    );
    let prometheus_config = write(
        "prometheus.yml",
        substitute(
            "docker/observability/prometheus.yml",
            &read("docker/observability/prometheus.yml"),
            &replacements
                .iter()
                .map(|(from, to)| (from.as_str(), to.clone()))
                .collect::<Vec<_>>(),
        ),
    );
    let mut prometheus_process = Program::start(
        "prometheus",
        &prometheus_binary(),
        &[
            format!("--config.file={}", prometheus_config.display()),
            format!("--storage.tsdb.path={}", scratch.join("prometheus-data").display()),
            format!("--web.listen-address={}", loopback(prometheus_port)),
            // As in docker/compose.yaml.
            "--enable-feature=exemplar-storage".to_owned(),
        ],
        "scripts/install-prometheus.sh",
    );

    // Ready: Jaeger's query API answers, the collector's OTLP receiver (the
    // last component it starts) accepts an empty export, Prometheus says so.
    poll(
        "Jaeger's query API",
        &mut [&mut jaeger_process],
        async || match get_text(&client, &format!("{jaeger}/api/services")).await? {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    poll(
        "the collector's OTLP/HTTP receiver",
        &mut [&mut collector],
        async || {
            let response = client
                .post(format!("http://{}/v1/traces", loopback(collector_http)))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .map_err(|err| err.to_string())?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(response.status().to_string())
            }
        },
    )
    .await;
    poll(
        "Prometheus ready",
        &mut [&mut prometheus_process],
        async || match get_text(&client, &format!("{prometheus}/-/ready")).await? {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;

    let traceparent = format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01");
    let response = stack.get("/checkout", &[("traceparent", &traceparent)]).await;
    assert_eq!(response.status(), 200);

    // The whole trace in Jaeger's OTLP API, checked by verify-trace's reader
    // and the trace contract it applies to a deployment's Jaeger.
    let v3 = poll(
        "the whole checkout in Jaeger's /api/v3/traces",
        &mut [&mut jaeger_process, &mut collector],
        async || {
            let url = format!("{jaeger}{}{CALLER_TRACE_ID}", verify_trace::V3_TRACE_PATH);
            let (status, body) = get_text(&client, &url).await?;
            let spans = trace_model::jaeger::read_trace_v3(&body, CALLER_TRACE_ID)
                .map_err(|err| format!("HTTP {status}: {err}: {body:.300}"))?;
            match trace_contract::check_checkout(&spans) {
                problems if problems.is_empty() => Ok(spans),
                problems => Err(format!("{problems:?}\n{}", trace_model::tree::render(&spans))),
            }
        },
    )
    .await;
    // The UI's API holds the same spans; its FOLLOWS_FROM reference is the
    // consumer's link to the producer, which the contract checks again.
    let url = format!("{jaeger}{}{CALLER_TRACE_ID}", verify_trace::V1_TRACE_PATH);
    let (status, body) = get_text(&client, &url).await.expect("Jaeger's /api/traces answers");
    assert_eq!(status, 200, "{body:.500}");
    let v1 = trace_model::jaeger::read_trace(&body, CALLER_TRACE_ID).expect("the trace in /api/traces");
    assert_eq!(
        trace_contract::check_checkout(&v1),
        Vec::<String>::new(),
        "{}",
        trace_model::tree::render(&v1)
    );
    let ids = |spans: &[trace_model::SpanRecord]| -> BTreeSet<String> {
        spans.iter().map(|span| span.span_id.clone()).collect()
    };
    assert_eq!(ids(&v1), ids(&v3), "both APIs return the same spans");
    let consumer = v1
        .iter()
        .find(|span| span.kind == trace_model::SpanKind::Consumer)
        .expect("a CONSUMER span");
    assert_eq!(consumer.links.len(), 1, "one FOLLOWS_FROM reference: {consumer:?}");
    let producer = v1
        .iter()
        .find(|span| span.span_id == consumer.links[0].span_id)
        .expect("the FOLLOWS_FROM reference names a span of the trace");
    assert_eq!(producer.kind, trace_model::SpanKind::Producer);
    // The caller's span is the top span's parent, outside the trace: no other span may lack its parent.
    for span in &v3 {
        if let Some(parent) = &span.parent_span_id {
            assert!(
                ids(&v3).contains(parent) || parent == CALLER_SPAN_ID,
                "orphan: {} {:?} names parent {parent}",
                span.service,
                span.name
            );
        }
    }

    // Span metrics (the collector's spanmetrics connector, scraped on its
    // prometheus exporter) and the services' own histograms, both as
    // Prometheus holds them.
    poll(
        "eshop's span metrics in Prometheus",
        &mut [&mut collector, &mut prometheus_process],
        async || {
            prometheus_series(
                &client,
                &prometheus,
                r#"traces_span_metrics_calls_total{service_name="eshop",job="otel-collector"}"#,
            )
            .await
        },
    )
    .await;
    poll(
        "the services' request histograms from their own /metrics",
        &mut [&mut prometheus_process],
        async || {
            let series = prometheus_series(
                &client,
                &prometheus,
                r#"http_server_request_duration_seconds_count{job="eshop-tracing"}"#,
            )
            .await?;
            let instances: BTreeSet<&str> = series
                .iter()
                .filter_map(|series| series["metric"]["instance"].as_str())
                .collect();
            let want: BTreeSet<String> = [
                &stack.eshop,
                &stack.inventory,
                &stack.billing,
                &stack.delivery,
                &stack.notification,
            ]
            .iter()
            .map(|process| process.addr.to_string())
            .collect();
            if want.iter().all(|addr| instances.contains(addr.as_str())) {
                Ok(())
            } else {
                Err(format!("instances {instances:?}, want {want:?}"))
            }
        },
    )
    .await;
    poll(
        "the services' OTLP metrics re-exposed by the collector",
        &mut [&mut collector, &mut prometheus_process],
        async || {
            prometheus_series(
                &client,
                &prometheus,
                r#"http_server_request_duration_seconds_count{job="otel-collector",service_name="eshop"}"#,
            )
            .await
        },
    )
    .await;

    // Jaeger's Monitor tab: eshop's SERVER call rate, from the span metrics in
    // Prometheus. A rate needs the counter to grow between two scrapes, so a
    // checkout goes out before each look.
    let rates = poll(
        "a non-zero call rate for eshop in Jaeger's Monitor API",
        &mut [&mut jaeger_process, &mut collector, &mut prometheus_process],
        async || {
            let response = stack.get("/checkout", &[]).await;
            if response.status() != 200 {
                return Err(format!("checkout answered {}", response.status()));
            }
            let url = format!(
                "{jaeger}/api/metrics/calls?service=eshop&spanKind=server&endTs={}&lookback=60000&step=1000&ratePer=5000",
                now_millis()
            );
            let (status, body) = get_text(&client, &url).await?;
            let answer: serde_json::Value =
                serde_json::from_str(&body).map_err(|err| format!("HTTP {status} {body:.300}: {err}"))?;
            let rates: Vec<f64> = answer["metrics"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|series| {
                    series["labels"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|label| label["name"] == "service_name" && label["value"] == "eshop")
                })
                .flat_map(|series| series["metricPoints"].as_array().cloned().unwrap_or_default())
                .filter_map(|point| point["gaugeValue"]["doubleValue"].as_f64())
                .collect();
            if rates.iter().any(|rate| *rate > 0.0) {
                Ok(rates)
            } else {
                Err(format!("HTTP {status}: {body:.500}"))
            }
        },
    )
    .await;
    assert!(rates.iter().all(|rate| rate.is_finite() && *rate >= 0.0), "{rates:?}");
    // The Monitor tab's latency chart reads the duration histogram by its
    // normalized name (traces_span_metrics_duration_milliseconds_bucket).
    let url = format!(
        "{jaeger}/api/metrics/latencies?service=eshop&spanKind=server&quantile=0.95&endTs={}&lookback=60000&step=1000&ratePer=5000",
        now_millis()
    );
    let (status, body) = get_text(&client, &url).await.expect("the latencies API answers");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|err| panic!("{status} {body}: {err}"));
    let latencies: Vec<f64> = answer["metrics"][0]["metricPoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|point| point["gaugeValue"]["doubleValue"].as_f64())
        .collect();
    assert!(
        latencies.iter().any(|latency| *latency > 0.0),
        "eshop's P95 latency in Jaeger's Monitor API: HTTP {status} {body:.500}"
    );
}
