//! The bare-span baseline: CPU per OpenTelemetry SDK span, no `tracing` layer, exported as the services export.
//!
//! A child process (`bench bare-spans <endpoint> <count>`) builds `count` SDK
//! spans with a SERVER span's attributes through the same batch processor and
//! OTLP/HTTP exporter as the services, flushes, and prints its own CPU time
//! per span, so the figure excludes the receiver, which runs in the parent.

use std::{net::SocketAddr, time::Duration};

use opentelemetry::{
    KeyValue,
    trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _},
};
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};

/// Enough spans that process start-up is lost in the figure.
pub(crate) const SPANS: u64 = 100_000;
/// The batch processor's export batch size (SDK default, as in the services).
const BATCH: u64 = 512;
const PAUSE: Duration = Duration::from_millis(20);

/// Runs the child against a receiver of its own; CPU microseconds per span.
pub(crate) async fn cpu_us_per_span() -> anyhow::Result<f64> {
    let receiver = otlp_sink::Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let stdout = crate::measure::run_child(&["bare-spans", &receiver.endpoint(), &SPANS.to_string()]).await?;
    let us: f64 = stdout.trim().parse()?;
    let received = receiver.store().inspect(<[_]>::len);
    anyhow::ensure!(
        received as u64 == SPANS,
        "bare spans: {received} of {SPANS} exported; the figure would count dropped spans"
    );
    eprintln!("  bare SDK span: {us:.2} µs CPU per span");
    Ok(us)
}

/// The child: `count` spans, flushed, then CPU microseconds per span on stdout.
pub(crate) async fn child(endpoint: String, count: u64) -> anyhow::Result<()> {
    // The blocking OTLP client may not be built or dropped on a runtime thread.
    tokio::task::spawn_blocking(move || {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{endpoint}/v1/traces"))
            .with_timeout(Duration::from_secs(10))
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_resource(Resource::builder().with_service_name("bare-span").build())
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("bench");
        for i in 0..count {
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
                .start(&tracer);
            span.set_attribute(KeyValue::new("http.response.status_code", 200_i64));
            span.end();
            // A burst would overflow the processor's queue (2,048) and
            // measure dropped spans: a pause after each batch lets the
            // exporter keep up, as it does at the services' rates.
            if i % BATCH == BATCH - 1 {
                std::thread::sleep(PAUSE);
            }
        }
        provider.shutdown_with_timeout(Duration::from_secs(30))?;
        let cpu = crate::measure::cpu_time("self");
        println!("{:.3}", cpu.as_secs_f64() * 1e6 / count as f64);
        anyhow::Ok(())
    })
    .await?
}
