//! What the telemetry crate costs per span and per request, each piece against a bare baseline in the same run.
//!
//! The pipeline is the services' own (`telemetry::install`: the same layers,
//! 100% sampling, batch export over OTLP/HTTP to an in-process receiver, metrics
//! and OTLP log records on) with stdout logging sent to a sink, see
//! `pipeline/mod.rs`. Pairs, each `<group>/bare` against `<group>/traced`:
//! - `span`: an SDK span built directly (the attributes of a SERVER span) against
//!   the same span opened through `tracing` and tracing-opentelemetry;
//! - `server`: an axum request with no middleware against one through `trace_request`;
//! - `client`: a reqwest-middleware call answered in-process, without and with `ClientTracing`;
//! - `inject` / `extract`: W3C alone against the default propagator set;
//! - `log`: a log line inside a span as it is written with the SDK off (the
//!   stdout layer alone) against the same line through the whole pipeline
//!   (stdout with the span's ids, and an OTLP log record).
//!
//! Export runs on the batch processor's thread and is paid alike by both sides
//! of every pair. The Kafka pairs (`producer`, `consumer`) are the messaging
//! crate's `per_record` bench. `target/release/bench micro-report` prints the
//! medians and ratios of both.

mod pipeline;

use std::{hint::black_box, time::Duration};

use axum::{Router, body::Body, http::Request, middleware, routing::post};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Extensions, HeaderMap};
use opentelemetry::{
    KeyValue,
    propagation::TextMapPropagator as _,
    trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _},
};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use pipeline::pipeline;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use telemetry::{client::ClientTracing, logs, propagation};
use tower::ServiceExt as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn caller_context() -> opentelemetry::Context {
    pipeline::caller_context(TRACEPARENT)
}

fn span(c: &mut Criterion) {
    let tracer = opentelemetry::global::tracer_provider().tracer("bench");
    let parent = caller_context();
    let mut group = c.benchmark_group("span");
    group.bench_function("bare", |b| {
        b.iter(|| {
            let mut span = tracer
                .span_builder("POST /createOrder")
                .with_kind(SpanKind::Server)
                .with_attributes([
                    KeyValue::new("http.request.method", "POST"),
                    KeyValue::new("http.route", "/createOrder"),
                    KeyValue::new("url.path", "/createOrder"),
                    KeyValue::new("url.scheme", "http"),
                    KeyValue::new("server.address", "billing"),
                    KeyValue::new("server.port", 8080_i64),
                    KeyValue::new("client.address", "127.0.0.1"),
                    KeyValue::new("user_agent.original", "bench"),
                ])
                .start_with_context(&tracer, &parent);
            span.set_attribute(KeyValue::new("http.response.status_code", 200_i64));
            span.end();
        });
    });
    group.bench_function("traced", |b| {
        b.iter(|| {
            let span = tracing::info_span!(
                "HTTP request",
                otel.name = "POST /createOrder",
                otel.kind = "server",
                otel.status_code = Empty,
                http.request.method = "POST",
                http.route = "/createOrder",
                http.response.status_code = Empty,
                url.path = "/createOrder",
                url.scheme = "http",
                server.address = "billing",
                server.port = 8080_i64,
                client.address = "127.0.0.1",
                user_agent.original = "bench",
                error.type = Empty,
            );
            let _ = span.set_parent(parent.clone());
            span.record("http.response.status_code", 200_i64);
            black_box(&span);
        });
    });
    group.finish();
}

fn server(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let bare = Router::new().route("/createOrder", post(|| async { "ok" }));
    let traced = bare
        .clone()
        .layer(middleware::from_fn(telemetry::server::trace_request));
    let request = || {
        Request::post("/createOrder")
            .header("host", "billing:8080")
            .header("user-agent", "bench")
            .header("traceparent", TRACEPARENT)
            .header("x-request-id", "bench-request")
            .body(Body::empty())
            .expect("request")
    };
    let mut group = c.benchmark_group("server");
    for (name, router) in [("bare", bare), ("traced", traced)] {
        group.bench_function(name, |b| {
            b.to_async(runtime)
                .iter(|| async { black_box(router.clone().oneshot(request()).await.expect("response")) });
        });
    }
    group.finish();
}

/// Ends the middleware chain with a response, so a client call costs no socket.
struct Answer;

#[async_trait::async_trait]
impl Middleware for Answer {
    async fn handle(
        &self,
        _request: reqwest::Request,
        _extensions: &mut Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        Ok(reqwest::Response::from(http::Response::new("ok")))
    }
}

fn client(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let bare: ClientWithMiddleware = ClientBuilder::new(reqwest::Client::new()).with(Answer).build();
    let traced: ClientWithMiddleware = ClientBuilder::new(reqwest::Client::new())
        .with(ClientTracing)
        .with(Answer)
        .build();
    let mut group = c.benchmark_group("client");
    for (name, client) in [("bare", bare), ("traced", traced)] {
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| async {
                black_box(
                    client
                        .post("http://billing:8080/charge")
                        .send()
                        .await
                        .expect("answered"),
                )
            });
        });
    }
    group.finish();
}

fn inject_extract(c: &mut Criterion) {
    let w3c = TraceContextPropagator::new();
    let cx = caller_context();
    let mut carrier = HeaderMap::new();
    propagation::inject(&cx, &mut HeaderInjector(&mut carrier));
    let mut group = c.benchmark_group("inject");
    group.bench_function("bare", |b| {
        b.iter(|| {
            let mut headers = HeaderMap::new();
            w3c.inject_context(&cx, &mut HeaderInjector(&mut headers));
            black_box(headers)
        });
    });
    group.bench_function("traced", |b| {
        b.iter(|| {
            let mut headers = HeaderMap::new();
            propagation::inject_http(&cx, &mut headers);
            black_box(headers)
        });
    });
    group.finish();
    let mut group = c.benchmark_group("extract");
    group.bench_function("bare", |b| {
        b.iter(|| black_box(w3c.extract(&HeaderExtractor(&carrier))))
    });
    group.bench_function("traced", |b| b.iter(|| black_box(propagation::extract_http(&carrier))));
    group.finish();
}

fn log(c: &mut Criterion) {
    let mut group = c.benchmark_group("log");
    group.bench_function("bare", |b| {
        let stdout_only = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(std::io::sink)
                .fmt_fields(logs::NoSpanFields)
                .event_format(logs::EventFormat::new(logs::LogFormat::Text)),
        );
        tracing::subscriber::with_default(stdout_only, || {
            let span = tracing::info_span!("HTTP request");
            span.in_scope(|| b.iter(|| tracing::info!(amount_cents = 1234_i64, "payment charged")));
        });
    });
    group.bench_function("traced", |b| {
        let span = tracing::info_span!("HTTP request", otel.kind = "server");
        span.in_scope(|| b.iter(|| tracing::info!(amount_cents = 1234_i64, "payment charged")));
    });
    group.finish();
}

fn all(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (_receiver, guard) = pipeline(&runtime);
    span(c);
    server(c, &runtime);
    client(c, &runtime);
    inject_extract(c);
    log(c);
    guard.shutdown();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = all
}
criterion_main!(benches);
