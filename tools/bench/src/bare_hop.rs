//! The minimal-instrumentation baseline: one HTTP hop with what any OpenTelemetry user adds by hand, and without it.
//!
//! A child process (`bench bare-hops <endpoint> <seconds>`) runs a trivial
//! axum handler and 5,000 reqwest calls a second to it, twice: bare, then
//! instrumented with the SDK alone, no `tracing` layer: a CLIENT span with
//! W3C injected, a SERVER span continuing it, and the two duration
//! histograms of the HTTP conventions, exported as the services export
//! (batch span processor, OTLP/HTTP to the parent's receiver). It prints its
//! CPU time per hop for each, so the difference is what the SDK itself costs
//! a hop, the yardstick for the suite's per-hop tracing cost.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::Response,
    routing::get,
};
use opentelemetry::{
    Context, KeyValue,
    metrics::{Histogram, MeterProvider as _},
    propagation::{Extractor, Injector, TextMapPropagator as _},
    trace::{Span as _, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _},
};
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource,
    metrics::SdkMeterProvider,
    propagation::TraceContextPropagator,
    trace::{SdkTracer, SdkTracerProvider},
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use test_support::spawn_app;

/// Callers, as in `make bench`'s bare hop.
const WORKERS: usize = 32;
/// Hops per second, all callers together: an open loop, because at this
/// client's saturation (about 45,000 hops a second here) the batch span
/// processor's queue overflows and a dropped span would count as a cheap one.
const HOPS_PER_SECOND: f64 = 5_000.0;
/// Bare and instrumented take turns this many times.
const SEGMENTS: usize = 6;
const ROUTE: &str = "/hop";

/// CPU microseconds per hop, bare and instrumented by the SDK alone.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct HopCpu {
    pub(crate) bare_us: f64,
    pub(crate) instrumented_us: f64,
}

impl HopCpu {
    /// What the SDK's instrumentation adds to one hop (two spans, two histograms, W3C).
    pub(crate) fn instrumentation_us(&self) -> f64 {
        self.instrumented_us - self.bare_us
    }
}

/// Runs the child against a receiver of its own, `seconds` per variant in all.
pub(crate) async fn cpu_per_hop(seconds: f64) -> anyhow::Result<HopCpu> {
    let receiver = otlp_sink::Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let stdout = crate::measure::run_child(&["bare-hops", &receiver.endpoint(), &seconds.to_string()]).await?;
    let mut figures = stdout.split_whitespace().map(str::parse::<f64>);
    let (Some(Ok(bare_us)), Some(Ok(instrumented_us)), Some(Ok(hops))) =
        (figures.next(), figures.next(), figures.next())
    else {
        anyhow::bail!("bare-hops printed {stdout:?}");
    };
    // Two spans per instrumented hop; fewer received would mean the figure
    // counts spans the processor dropped instead of exporting.
    let received = receiver.store().inspect(<[_]>::len) as f64;
    anyhow::ensure!(
        received >= 2.0 * hops,
        "bare hops: {received} spans of {} exported",
        2.0 * hops
    );
    let cpu = HopCpu {
        bare_us,
        instrumented_us,
    };
    eprintln!(
        "  bare HTTP hop, SDK-instrumented: {instrumented_us:.1} µs CPU per hop, bare {bare_us:.1} µs (instrumentation {:.1} µs)",
        cpu.instrumentation_us()
    );
    Ok(cpu)
}

/// The instruments a hand-instrumented service holds.
struct Instruments {
    tracer: SdkTracer,
    server_duration: Histogram<f64>,
    client_duration: Histogram<f64>,
}

/// The child: both variants in turns, then the median `bare_us instrumented_us` and the instrumented hops on stdout.
pub(crate) async fn child(endpoint: String, seconds: f64) -> anyhow::Result<()> {
    let duration = Duration::from_secs_f64(seconds);
    // The blocking OTLP client may not be built or dropped on a runtime thread.
    let (tracer_provider, meter_provider) = tokio::task::spawn_blocking(move || providers(&endpoint)).await??;
    let meter = meter_provider.meter("bench");
    let instruments = Arc::new(Instruments {
        tracer: tracer_provider.tracer("bench"),
        server_duration: meter
            .f64_histogram("http.server.request.duration")
            .with_unit("s")
            .build(),
        client_duration: meter
            .f64_histogram("http.client.request.duration")
            .with_unit("s")
            .build(),
    });
    let bare = spawn_app(Router::new().route(ROUTE, get(|| async { "ok" }))).await;
    let instrumented = spawn_app(
        Router::new()
            .route(ROUTE, get(|| async { "ok" }))
            .layer(middleware::from_fn_with_state(instruments.clone(), server_span)),
    )
    .await;
    // Short segments, alternating, because this machine's speed drifts by
    // more than the difference measured; the medians of each are printed.
    let segment = duration / SEGMENTS as u32;
    let (mut bare_us, mut instrumented_us, mut hops) = (Vec::new(), Vec::new(), 0);
    for _ in 0..SEGMENTS {
        let (bare_hops, bare_cpu) = closed_loop(bare.url(ROUTE), segment, None).await?;
        bare_us.push(bare_cpu.as_secs_f64() * 1e6 / bare_hops as f64);
        let (segment_hops, cpu) = closed_loop(instrumented.url(ROUTE), segment, Some(instruments.clone())).await?;
        instrumented_us.push(cpu.as_secs_f64() * 1e6 / segment_hops as f64);
        hops += segment_hops;
    }
    tokio::task::spawn_blocking(move || {
        tracer_provider.shutdown_with_timeout(Duration::from_secs(30))?;
        meter_provider.shutdown_with_timeout(Duration::from_secs(30))?;
        anyhow::Ok(())
    })
    .await??;
    println!(
        "{:.3} {:.3} {hops}",
        crate::measure::median(&bare_us),
        crate::measure::median(&instrumented_us)
    );
    Ok(())
}

fn providers(endpoint: &str) -> anyhow::Result<(SdkTracerProvider, SdkMeterProvider)> {
    let resource = Resource::builder().with_service_name("bare-hop").build();
    let spans = SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()?;
    let metrics = MetricExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/metrics"))
        .build()?;
    Ok((
        SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_batch_exporter(spans)
            .build(),
        SdkMeterProvider::builder()
            .with_resource(resource)
            .with_periodic_exporter(metrics)
            .build(),
    ))
}

/// `WORKERS` callers at `HOPS_PER_SECOND` for `duration`: hops made and this process's CPU time meanwhile.
async fn closed_loop(
    url: String,
    duration: Duration,
    instruments: Option<Arc<Instruments>>,
) -> anyhow::Result<(u64, Duration)> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + duration;
    let before = crate::measure::cpu_time("self");
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (client, url, instruments) = (client.clone(), url.clone(), instruments.clone());
        callers.spawn(async move {
            let mut hops = 0_u64;
            let mut pace = tokio::time::interval(Duration::from_secs_f64(WORKERS as f64 / HOPS_PER_SECOND));
            pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < deadline {
                pace.tick().await;
                call(&client, &url, instruments.as_deref()).await?;
                hops += 1;
            }
            anyhow::Ok(hops)
        });
    }
    let mut hops = 0;
    while let Some(done) = callers.join_next().await {
        hops += done??;
    }
    Ok((hops, crate::measure::cpu_time("self").saturating_sub(before)))
}

/// One call, with a CLIENT span, W3C headers and the client histogram when instrumented.
async fn call(client: &reqwest::Client, url: &str, instruments: Option<&Instruments>) -> anyhow::Result<()> {
    let Some(instruments) = instruments else {
        client.get(url).send().await?.error_for_status()?.bytes().await?;
        return Ok(());
    };
    let started = Instant::now();
    let mut span = instruments
        .tracer
        .span_builder("GET")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("server.address", "127.0.0.1"),
            KeyValue::new("url.full", url.to_owned()),
        ])
        .start(&instruments.tracer);
    let mut headers = HeaderMap::new();
    let cx = Context::new().with_remote_span_context(span.span_context().clone());
    TraceContextPropagator::new().inject_context(&cx, &mut Headers(&mut headers));
    let response = client.get(url).headers(headers).send().await?;
    let status = i64::from(response.status().as_u16());
    response.error_for_status()?.bytes().await?;
    span.set_attribute(KeyValue::new("http.response.status_code", status));
    span.end();
    instruments.client_duration.record(
        started.elapsed().as_secs_f64(),
        &[
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("server.address", "127.0.0.1"),
            KeyValue::new("http.response.status_code", status),
        ],
    );
    Ok(())
}

/// The SERVER span and histogram, written by hand on the SDK.
async fn server_span(State(instruments): State<Arc<Instruments>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let parent = TraceContextPropagator::new().extract(&HeadersIn(request.headers()));
    let mut span = instruments
        .tracer
        .span_builder("GET /hop")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", ROUTE),
            KeyValue::new("url.path", ROUTE),
            KeyValue::new("url.scheme", "http"),
        ])
        .start_with_context(&instruments.tracer, &parent);
    let response = next.run(request).await;
    let status = i64::from(response.status().as_u16());
    span.set_attribute(KeyValue::new("http.response.status_code", status));
    span.end();
    instruments.server_duration.record(
        started.elapsed().as_secs_f64(),
        &[
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", ROUTE),
            KeyValue::new("http.response.status_code", status),
        ],
    );
    response
}

/// Outbound headers as a propagation carrier.
struct Headers<'a>(&'a mut HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}

/// Inbound headers as a propagation carrier.
struct HeadersIn<'a>(&'a HeaderMap);

impl Extractor for HeadersIn<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}
