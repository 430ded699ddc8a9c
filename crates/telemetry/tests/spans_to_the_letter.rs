//! What the specs fix about spans, checked on real spans from a process of their own:
//! B3 in and out (debug, deferred, deny, 64-bit ids), `_OTHER`, attribute types,
//! `url.query`, `error.type`, and `x-request-id` forwarded with the SDK off.
//!
//! `telemetry::init` reads the process environment, which a test may not change
//! (setting variables is unsafe, and forbidden here), so the test runs its own
//! executable again as a child with the environment it needs: the child serves
//! a front app (the server middleware, then an outbound call through
//! `http_client`) and an echo app that answers with the headers it received,
//! asserts on those headers, and exports its spans to the parent's OTLP
//! receiver, where the parent asserts on the spans.

use std::{collections::BTreeMap, net::SocketAddr, process::Stdio, time::Duration};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode},
    middleware,
    routing::any,
};
use otlp_sink::Receiver;
use trace_model::{AttributeValue, SpanKind, SpanRecord, SpanStatus};

const CHILD: &str = "TELEMETRY_TEST_CHILD";
const WAIT: Duration = Duration::from_secs(30);
const SPAN: &str = "e457b5a2e4d86bd1";
const DEBUG_TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const DEFERRED_TRACE: &str = "90f198ee56343ba864fe8b2a57d3eff7";
const SHORT_TRACE: &str = "64fe8b2a57d3eff7";
const PADDED_TRACE: &str = "000000000000000064fe8b2a57d3eff7";
const OTHER_TRACE: &str = "a0f198ee56343ba864fe8b2a57d3eff7";
const FAIL_TRACE: &str = "b0f198ee56343ba864fe8b2a57d3eff7";
const HOSTILE_TRACE: &str = "c0f198ee56343ba864fe8b2a57d3eff7";
const LONG_PATH_TRACE: &str = "d0f198ee56343ba864fe8b2a57d3eff7";

/// Runs this executable's `child` test with `envs`; returns its stdout, failing with its output if it failed.
async fn run_child(mode: &str, envs: &[(&str, String)]) -> String {
    let mut command = tokio::process::Command::new(std::env::current_exe().expect("own path"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    let output = command
        .args(["--exact", "child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        // B3 in and out is what these children check; a case may narrow it.
        .env(
            telemetry::propagation::OTEL_PROPAGATORS,
            telemetry::propagation::W3C_AND_B3_PROPAGATORS,
        )
        .envs(envs.iter().map(|(key, value)| (*key, value)))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child {mode} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn b3_and_http_conventions_in_and_out() {
    let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("receiver");
    let stdout = run_child(
        "enabled",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
            ("OTEL_METRICS_EXPORTER", "none".to_owned()),
            ("OTEL_LOGS_EXPORTER", "none".to_owned()),
        ],
    )
    .await;
    let denied = stdout
        .lines()
        // The harness may print "test child ... " on the same line first.
        .find_map(|line| line.split_once("DENIED_TRACE ").map(|(_, id)| id))
        .expect("the child names the denied trace")
        .trim()
        .to_owned();

    // The child flushed at exit (the guard's drop), so everything has arrived.
    let spans = receiver
        .store()
        .wait_for(WAIT, |spans| {
            [
                DEBUG_TRACE,
                DEFERRED_TRACE,
                PADDED_TRACE,
                OTHER_TRACE,
                FAIL_TRACE,
                HOSTILE_TRACE,
                LONG_PATH_TRACE,
            ]
            .iter()
            .all(|trace| spans.iter().filter(|span| span.trace_id == *trace).count() >= 2)
            .then(|| spans.to_vec())
        })
        .await
        .unwrap_or_else(|timed_out| panic!("{timed_out}"));
    let find = |trace: &str, kind: SpanKind| -> &SpanRecord {
        spans
            .iter()
            .find(|span| span.trace_id == trace && span.kind == kind)
            .unwrap_or_else(|| {
                panic!(
                    "no {kind:?} span in {trace}:\n{}",
                    trace_model::tree::render_all(&spans)
                )
            })
    };

    // Debug and deferred callers: their trace continues, under their span.
    for trace in [DEBUG_TRACE, DEFERRED_TRACE, PADDED_TRACE] {
        assert_eq!(
            find(trace, SpanKind::Server).parent_span_id.as_deref(),
            Some(SPAN),
            "{trace}"
        );
    }
    // `b3: 0`: nothing of that trace is recorded.
    assert!(
        spans.iter().all(|span| span.trace_id != denied),
        "the denied trace {denied} was recorded"
    );

    // An unknown method: `_OTHER`, the original kept, span names `HTTP {route}`.
    let server = find(OTHER_TRACE, SpanKind::Server);
    assert_eq!(server.name, "HTTP /call");
    assert_eq!(server.str_attribute("http.request.method"), Some("_OTHER"));
    assert_eq!(server.str_attribute("http.request.method_original"), Some("PURGE"));
    assert_eq!(server.str_attribute("url.query"), Some("x=1"));
    assert_eq!(
        server
            .attribute("http.request.header.x-request-id")
            .and_then(AttributeValue::as_str_array),
        Some(vec!["req-1"])
    );
    let hostile = find(HOSTILE_TRACE, SpanKind::Server);
    let query = hostile.str_attribute("url.query").expect("url.query");
    assert!(
        query.len() <= 512 && query.starts_with("q=xxx"),
        "{} characters",
        query.len()
    );
    let long_path = find(LONG_PATH_TRACE, SpanKind::Server);
    let path = long_path.str_attribute("url.path").expect("url.path");
    assert!(
        path.len() <= 512 && path.starts_with("/call/ppp"),
        "{} characters",
        path.len()
    );
    assert_eq!(long_path.str_attribute("http.route"), Some("/call/{*rest}"));
    let client = find(OTHER_TRACE, SpanKind::Client);
    assert_eq!(client.name, "HTTP /echo");
    assert_eq!(client.str_attribute("http.request.method"), Some("_OTHER"));
    assert_eq!(client.str_attribute("server.address"), Some("127.0.0.1"));
    assert!(
        matches!(client.attribute("server.port"), Some(AttributeValue::Int(port)) if *port > 0),
        "{:?}",
        client.attributes
    );
    assert_eq!(
        client.attribute("http.response.status_code"),
        Some(&AttributeValue::Int(200))
    );
    assert_eq!(client.attribute("error.type"), None);

    // A CLIENT span answered 503: error.type and error status.
    let failed = find(FAIL_TRACE, SpanKind::Client);
    assert_eq!(
        failed.str_attribute("error.type"),
        Some("503"),
        "{:?}",
        failed.attributes
    );
    assert!(matches!(failed.status, SpanStatus::Error(_)), "{:?}", failed.status);
    // The SERVER span that answered 200 after it is not an error.
    assert_eq!(find(FAIL_TRACE, SpanKind::Server).attribute("error.type"), None);
}

#[tokio::test]
async fn x_request_id_is_forwarded_with_the_sdk_disabled() {
    let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("receiver");
    run_child(
        "disabled",
        &[
            ("OTEL_SDK_DISABLED", "true".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            // Quieter than INFO: the request id must not depend on the log level.
            ("RUST_LOG", "warn".to_owned()),
        ],
    )
    .await;
    assert!(receiver.store().spans().is_empty(), "the SDK was off");
}

#[tokio::test]
async fn otel_logs_and_metrics_exporters_are_honoured() {
    for (exporter, expected) in [("otlp", true), ("none", false)] {
        let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("receiver");
        let stdout = run_child(
            "logs",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
                ("OTEL_LOGS_EXPORTER", exporter.to_owned()),
                ("OTEL_METRICS_EXPORTER", exporter.to_owned()),
            ],
        )
        .await;
        let ids = stdout
            .lines()
            .find_map(|line| line.split_once("LOGGED_IN ").map(|(_, ids)| ids.trim().to_owned()))
            .expect("the child names its span");
        let (trace_id, span_id) = ids.split_once(' ').expect("trace and span id");
        // Spans below INFO are not exported and RUST_LOG is unset: nothing below
        // INFO may reach the subscriber, or every library's `debug!` would.
        let max_level = stdout
            .lines()
            .find_map(|line| line.split_once("MAX_LEVEL ").map(|(_, level)| level.trim().to_owned()));
        assert_eq!(max_level.as_deref(), Some("info"), "{stdout}");
        // The child flushed at exit: whatever was sent has arrived.
        let logs = receiver.logs().all();
        let metrics = receiver.metrics().all();
        if !expected {
            assert!(
                logs.is_empty() && metrics.is_empty(),
                "{exporter}: {logs:?} {metrics:?}"
            );
            continue;
        }
        let log = logs
            .iter()
            .find(|log| log.body == "inside the request")
            .unwrap_or_else(|| panic!("no log record: {logs:?}"));
        assert_eq!(log.trace_id.as_deref(), Some(trace_id), "{log:?}");
        assert_eq!(log.span_id.as_deref(), Some(span_id), "{log:?}");
        assert_eq!(
            (log.severity_text.as_str(), log.severity_number),
            ("WARN", 13),
            "{log:?}"
        );
        assert_eq!(
            log.attributes.get("order.id"),
            Some(&AttributeValue::String("o-1".into()))
        );
        // The line went out once, as a log record: not also as an event of its span.
        let spans = receiver.store().inspect(<[_]>::to_vec);
        let span = spans
            .iter()
            .find(|span| span.span_id == span_id)
            .unwrap_or_else(|| panic!("no span {span_id}:\n{}", trace_model::tree::render_all(&spans)));
        assert!(span.events.is_empty(), "span events: {:?}", span.events);
        assert!(
            metrics
                .iter()
                .any(|point| point.name == "http.server.request.duration" && point.unit == "s"),
            "{metrics:?}"
        );
    }
}

/// The headers the echo app received, as the front app's answer.
type Seen = BTreeMap<String, Vec<String>>;

#[tokio::test]
#[ignore = "run as a child process by the tests above, with its own environment"]
async fn child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let guard = telemetry::init("telemetry-test").expect("init");
    let echo = serve(Router::new().route("/{*path}", any(echo))).await;
    let front = serve(
        Router::new()
            .route("/call", any(call))
            .route("/call/{*rest}", any(call))
            .route("/fail", any(call))
            .with_state(format!("http://{echo}"))
            .layer(middleware::from_fn(telemetry::server::trace_request)),
    )
    .await;
    let client = reqwest::Client::new();
    let send = |method: Method, path: &str, headers: &[(&str, &str)]| {
        let mut request = client.request(method, format!("http://{front}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move {
            let response = request.send().await.expect("front answers");
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Seen>().await.expect("headers as JSON")
        }
    };
    let one = |seen: &Seen, name: &str| seen.get(name).and_then(|values| values.first()).cloned();

    if mode == "logs" {
        send(Method::GET, "/call", &[]).await;
        let span = tracing::info_span!("request");
        let cx = span.in_scope(|| {
            tracing::warn!(order.id = "o-1", "inside the request");
            telemetry::current_trace_id()
        });
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let span_id = span.context().span().span_context().span_id();
        println!("LOGGED_IN {} {span_id}", cx.expect("a trace id"));
        println!("MAX_LEVEL {}", tracing::level_filters::LevelFilter::current());
        drop(span);
        guard.shutdown();
        return;
    }
    if mode == "disabled" {
        let seen = send(Method::GET, "/call", &[("x-request-id", "req-off")]).await;
        assert_eq!(one(&seen, "x-request-id").as_deref(), Some("req-off"), "{seen:?}");
        assert_eq!(one(&seen, "traceparent"), None, "no context without the SDK: {seen:?}");
        return;
    }

    // Debug: kept, sampled, and written back out as `x-b3-flags: 1` without `x-b3-sampled`.
    let seen = send(Method::GET, "/call", &[("b3", &format!("{DEBUG_TRACE}-{SPAN}-d"))]).await;
    assert_eq!(one(&seen, "x-b3-traceid").as_deref(), Some(DEBUG_TRACE));
    assert_eq!(one(&seen, "x-b3-flags").as_deref(), Some("1"), "{seen:?}");
    assert_eq!(one(&seen, "x-b3-sampled"), None, "{seen:?}");
    assert!(
        one(&seen, "traceparent").is_some_and(|tp| tp.ends_with("-01")),
        "{seen:?}"
    );

    // Deferred: the sampler decides (parent-based always-on samples a root), the trace id is kept.
    let seen = send(Method::GET, "/call", &[("b3", &format!("{DEFERRED_TRACE}-{SPAN}"))]).await;
    assert_eq!(one(&seen, "x-b3-traceid").as_deref(), Some(DEFERRED_TRACE));
    assert_eq!(one(&seen, "x-b3-sampled").as_deref(), Some("1"), "{seen:?}");

    // Deny without ids: a new trace, not sampled, and said so downstream.
    let seen = send(Method::GET, "/call", &[("b3", "0")]).await;
    assert_eq!(one(&seen, "x-b3-sampled").as_deref(), Some("0"), "{seen:?}");
    assert!(
        one(&seen, "traceparent").is_some_and(|tp| tp.ends_with("-00")),
        "{seen:?}"
    );
    println!("DENIED_TRACE {}", one(&seen, "x-b3-traceid").expect("a trace id"));

    // A 64-bit trace id: padded to 128 bits on the way out.
    let seen = send(Method::GET, "/call", &[("b3", &format!("{SHORT_TRACE}-{SPAN}-1"))]).await;
    assert_eq!(one(&seen, "x-b3-traceid").as_deref(), Some(PADDED_TRACE), "{seen:?}");

    // An unknown method, a query and a request id.
    let purge = Method::from_bytes(b"PURGE").expect("a token");
    let traceparent = format!("00-{OTHER_TRACE}-{SPAN}-01");
    let seen = send(
        purge,
        "/call?x=1",
        &[("traceparent", &traceparent), ("x-request-id", "req-1")],
    )
    .await;
    assert_eq!(one(&seen, "x-request-id").as_deref(), Some("req-1"), "{seen:?}");

    // What an attacker sends: a 60 KB query and a 100-member tracestate. The
    // span keeps 512 characters of the query; 32 members go downstream.
    let traceparent = format!("00-{HOSTILE_TRACE}-{SPAN}-01");
    let tracestate = (0..100).map(|n| format!("k{n}=v{n}")).collect::<Vec<_>>().join(",");
    let seen = send(
        Method::GET,
        &format!("/call?q={}", "x".repeat(60_000)),
        &[("traceparent", &traceparent), ("tracestate", &tracestate)],
    )
    .await;
    let forwarded = one(&seen, "tracestate").expect("the tracestate goes downstream");
    assert_eq!(forwarded.split(',').count(), 32, "{forwarded}");
    assert!(forwarded.starts_with("k0=v0,k1=v1,"), "{forwarded}");

    // A 60 KB path, and a 15 KB tracestate (under the 16 KiB header limit):
    // 32 valid members of about 450 characters, each followed by a short
    // one. The first 32 members are kept, then the long ones go first (W3C
    // Trace Context, "Tracestate Limits"), so the 16 short ones go on.
    let traceparent = format!("00-{LONG_PATH_TRACE}-{SPAN}-01");
    let tracestate = (0..32)
        .flat_map(|n| {
            [
                format!("l{n}{}={}", "k".repeat(200), "v".repeat(250)),
                format!("s{n}=1"),
            ]
        })
        .collect::<Vec<_>>()
        .join(",");
    assert!(tracestate.len() > 14_000, "{}", tracestate.len());
    let seen = send(
        Method::GET,
        &format!("/call/{}", "p".repeat(60_000)),
        &[("traceparent", &traceparent), ("tracestate", &tracestate)],
    )
    .await;
    let forwarded = one(&seen, "tracestate").expect("the short members go downstream");
    let short: Vec<String> = (0..16).map(|n| format!("s{n}=1")).collect();
    assert_eq!(forwarded, short.join(","));

    // A call answered 503.
    let traceparent = format!("00-{FAIL_TRACE}-{SPAN}-01");
    send(Method::GET, "/fail", &[("traceparent", &traceparent)]).await;

    guard.shutdown();
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    addr
}

/// Answers with the headers it received; `/fail` answers 503.
async fn echo(request: Request) -> (StatusCode, Json<Seen>) {
    let status = if request.uri().path() == "/fail" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(headers(request.headers())))
}

/// Calls the echo app with the inbound method on `/echo` (or `/fail`), and
/// answers with what the echo app received.
async fn call(State(echo): State<String>, request: Request) -> Json<Seen> {
    let client = telemetry::client::http_client(Duration::from_secs(5)).expect("client");
    let path = if request.uri().path() == "/fail" {
        "/fail"
    } else {
        "/echo"
    };
    let response = client
        .request(request.method().clone(), format!("{echo}{path}"))
        .send()
        .await
        .expect("echo answers");
    Json(response.json().await.unwrap_or_default())
}

fn headers(headers: &HeaderMap) -> Seen {
    let mut seen = Seen::new();
    for (name, value) in headers {
        seen.entry(name.as_str().to_owned())
            .or_default()
            .push(value.to_str().unwrap_or_default().to_owned());
    }
    seen
}
