//! What the Kafka hop's tracing costs per record, each piece against a bare SDK baseline in the same run.
//!
//! The pipeline is the services' own, set up exactly as telemetry's
//! `per_request` bench sets it up (the same file, included by path). Pairs,
//! each `<group>/bare` against `<group>/traced`:
//! - `producer`: an SDK PRODUCER span with inject, against what
//!   `TracedProducer::send` does around the send itself (`SendSpan`: open,
//!   headers, delivered);
//! - `consumer`: an SDK CONSUMER span with extract and link, against `consumer_span`.
//!
//! No broker is involved: the send and receive themselves cost the same with or
//! without tracing. `target/release/bench micro-report` prints the medians and
//! ratios next to telemetry's.

#[path = "../../telemetry/benches/pipeline/mod.rs"]
mod pipeline;

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use messaging::{Broker, consumer::consumer_span, headers::HeaderExtractor, producer::SendSpan};
use opentelemetry::{
    Context, KeyValue,
    trace::{Link, Span as _, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _},
};
use opentelemetry_http::HeaderInjector;
use rdkafka::{
    Message as _,
    message::{OwnedMessage, Timestamp},
};
use telemetry::propagation;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The bootstrap broker both spans name (`server.address`, `server.port`).
static BROKER: std::sync::LazyLock<Broker> = std::sync::LazyLock::new(|| Broker::parse("kafka:9092"));

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn producer(c: &mut Criterion) {
    let tracer = opentelemetry::global::tracer_provider().tracer("bench");
    let mut group = c.benchmark_group("producer");
    group.bench_function("bare", |b| {
        b.iter(|| {
            let mut span = tracer
                .span_builder("send orders")
                .with_kind(SpanKind::Producer)
                .with_attributes([
                    KeyValue::new("messaging.system", "kafka"),
                    KeyValue::new("messaging.operation.type", "send"),
                    KeyValue::new("messaging.operation.name", "send"),
                    KeyValue::new("messaging.destination.name", "orders"),
                    KeyValue::new("messaging.kafka.message.key", "order-1"),
                    KeyValue::new("server.address", "kafka"),
                    KeyValue::new("server.port", 9092_i64),
                ])
                .start(&tracer);
            let mut headers = HeaderMap::new();
            propagation::inject(
                &Context::current().with_remote_span_context(span.span_context().clone()),
                &mut HeaderInjector(&mut headers),
            );
            span.set_attribute(KeyValue::new("messaging.destination.partition.id", "0"));
            span.set_attribute(KeyValue::new("messaging.kafka.offset", 1_i64));
            span.end();
            black_box(headers);
        });
    });
    group.bench_function("traced", |b| {
        b.iter(|| {
            let send = SendSpan::open("orders", "order-1", &BROKER);
            let headers = send.headers(&[]);
            send.delivered(0, 1);
            black_box(headers);
        });
    });
    group.finish();
}

fn consumer(c: &mut Criterion) {
    let tracer = opentelemetry::global::tracer_provider().tracer("bench");
    let producer = tracing::info_span!("producer");
    let _ = producer.set_parent(pipeline::caller_context(TRACEPARENT));
    let message = OwnedMessage::new(
        Some(br#"{"order_id":"order-1"}"#.to_vec()),
        Some(b"order-1".to_vec()),
        "orders".to_owned(),
        Timestamp::NotAvailable,
        0,
        1,
        Some(messaging::headers::for_span(&producer, &[])),
    );
    let mut group = c.benchmark_group("consumer");
    group.bench_function("bare", |b| {
        b.iter(|| {
            let headers = message.headers().expect("headers");
            let parent = propagation::extract(&HeaderExtractor(headers));
            let link = Link::with_context(parent.span().span_context().clone());
            let span = tracer
                .span_builder("process orders")
                .with_kind(SpanKind::Consumer)
                .with_links(vec![link])
                .with_attributes([
                    KeyValue::new("messaging.system", "kafka"),
                    KeyValue::new("messaging.operation.type", "process"),
                    KeyValue::new("messaging.operation.name", "process"),
                    KeyValue::new("messaging.destination.name", "orders"),
                    KeyValue::new("messaging.consumer.group.name", "notifications"),
                    KeyValue::new("messaging.destination.partition.id", "0"),
                    KeyValue::new("messaging.kafka.offset", 1_i64),
                    KeyValue::new("messaging.kafka.message.key", "order-1"),
                    KeyValue::new("messaging.message.body.size", 22_i64),
                    KeyValue::new("server.address", "kafka"),
                    KeyValue::new("server.port", 9092_i64),
                ])
                .start_with_context(&tracer, &parent);
            drop(span);
        });
    });
    group.bench_function("traced", |b| {
        b.iter(|| black_box(consumer_span(&message, "notifications", &BROKER)));
    });
    group.finish();
}

fn all(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (_receiver, guard) = pipeline::pipeline(&runtime);
    producer(c);
    consumer(c);
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
