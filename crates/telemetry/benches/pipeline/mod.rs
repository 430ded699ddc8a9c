//! The services' own telemetry pipeline, exporting to an in-process OTLP receiver: what every micro-benchmark runs under.
//!
//! Shared by telemetry's `per_request` and messaging's `per_record` (which
//! includes this file by path), so that both measure against the same
//! pipeline: `telemetry::install` with its layers, 100% sampling, batch export
//! over OTLP/HTTP, metrics and OTLP log records on, stdout logging to a sink.

use std::net::SocketAddr;

use opentelemetry_otlp::{LogExporter, MetricExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::{Resource, logs::SdkLoggerProvider, metrics::SdkMeterProvider, trace::SdkTracerProvider};
use telemetry::{Providers, propagation};

/// Starts the receiver and installs the services' pipeline, exporting to it.
pub(crate) fn pipeline(runtime: &tokio::runtime::Runtime) -> (otlp_sink::Receiver, telemetry::TelemetryGuard) {
    let receiver = runtime
        .block_on(otlp_sink::Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0))))
        .expect("receiver");
    let endpoint = |signal: &str| format!("{}/v1/{signal}", receiver.endpoint());
    let resource = Resource::builder().with_service_name("bench").build();
    let spans = SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint("traces"))
        .build()
        .expect("span exporter");
    let metrics = MetricExporter::builder()
        .with_http()
        .with_endpoint(endpoint("metrics"))
        .build()
        .expect("metric exporter");
    let logs = LogExporter::builder()
        .with_http()
        .with_endpoint(endpoint("logs"))
        .build()
        .expect("log exporter");
    opentelemetry::global::set_text_map_propagator(propagation::propagator_from_env().expect("propagators"));
    let providers = Providers {
        tracer: Some(
            SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_span_processor(telemetry::span_processor(spans))
                .build(),
        ),
        meter: Some(
            SdkMeterProvider::builder()
                .with_resource(resource.clone())
                .with_periodic_exporter(metrics)
                .build(),
        ),
        logger: Some(
            SdkLoggerProvider::builder()
                .with_resource(resource)
                .with_batch_exporter(logs)
                .build(),
        ),
        // As Kubernetes deploys (OTEL_METRICS_EXPORTER unset: OTLP only).
        serve_metrics: false,
    };
    let guard = telemetry::install(providers, "bench", std::io::sink).expect("install");
    (receiver, guard)
}

/// The context a caller sent with this `traceparent`, as the W3C propagator alone reads it.
pub(crate) fn caller_context(traceparent: &'static str) -> opentelemetry::Context {
    use opentelemetry::propagation::TextMapPropagator as _;
    let mut headers = http::HeaderMap::new();
    headers.insert("traceparent", http::HeaderValue::from_static(traceparent));
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&opentelemetry_http::HeaderExtractor(&headers))
}
