//! Metrics: the semantic-convention instruments, pushed over OTLP or served at `GET /metrics`, as `OTEL_METRICS_EXPORTER` says.
//!
//! Every observation goes through one [`Histogram::record`] or [`Counter::add`]
//! call, which feeds the [`Sinks`] the process was started with: the
//! OpenTelemetry meter (`otlp`, the specification's default: pushed by the
//! SDK every `OTEL_METRIC_EXPORT_INTERVAL`) and/or the process's own
//! [`openmetrics`] store (`prometheus`: served at `GET /metrics`). The store
//! exists because the OpenTelemetry Rust SDK has no exemplars yet
//! (opentelemetry-rust #3369): it keeps, per bucket, the trace and span of an
//! observation, which is what lets a user go from a latency bucket to a trace.
//! Each sink aggregates on its own, so each deployment picks one: Compose
//! (Prometheus scrapes every service) `prometheus`, Kubernetes (Prometheus
//! scrapes the collector) `otlp`.
//!
//! The HTTP instruments are recorded by [`crate::server`] and [`crate::client`];
//! the messaging ones by the `messaging` crate, through [`messaging`] and
//! [`record_on_close`]; services only add business counters with [`counter`].

pub mod openmetrics;

use std::{
    sync::{Arc, LazyLock, OnceLock},
    time::{Duration, Instant},
};

use axum::{
    Router,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
pub use opentelemetry::KeyValue;
use opentelemetry::trace::SpanContext;
use tokio::sync::Semaphore;
use tracing::{Span, Subscriber, span::Id};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

use crate::semconv::{DURATION_BUCKETS, metric};
use openmetrics::{CounterFamily, Exposition, GaugeFamily, HistogramFamily};

/// Where Prometheus scrapes each service (on its own port).
pub const METRICS_PATH: &str = "/metrics";

/// The instrumentation scope of every instrument the suite records.
pub(crate) const SCOPE: &str = "eshop-tracing";

static EXPOSITION: LazyLock<Exposition> = LazyLock::new(Exposition::default);
static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

/// Where the instruments send what they record (`OTEL_METRICS_EXPORTER`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sinks {
    /// `otlp`: the OpenTelemetry SDK's meter, which the SDK pushes over OTLP.
    pub otlp: bool,
    /// `prometheus`: the process's own store, served at `GET /metrics` with exemplars.
    pub prometheus: bool,
}

/// A duration histogram in seconds, with the conventions' bucket boundaries.
#[derive(Debug, Clone)]
pub struct Histogram {
    otel: Option<opentelemetry::metrics::Histogram<f64>>,
    exposition: Option<Arc<HistogramFamily>>,
}

impl Histogram {
    fn new(sinks: Sinks, name: &'static str, help: &'static str) -> Self {
        Self {
            otel: sinks.otlp.then(|| {
                opentelemetry::global::meter(SCOPE)
                    .f64_histogram(name)
                    .with_unit("s")
                    .with_description(help)
                    .with_boundaries(DURATION_BUCKETS.to_vec())
                    .build()
            }),
            exposition: sinks
                .prometheus
                .then(|| EXPOSITION.histogram(name, "s", help, &DURATION_BUCKETS)),
        }
    }

    /// Records one duration; `span` is the span it measured, kept as the
    /// bucket's exemplar (on `GET /metrics`) when that span is sampled.
    pub fn record(&self, seconds: f64, attributes: &[KeyValue], span: Option<&SpanContext>) {
        if let Some(otel) = &self.otel {
            otel.record(seconds, attributes);
        }
        if let Some(exposition) = &self.exposition {
            let exemplar = span
                .filter(|span| span.is_sampled())
                .map(|span| (span.trace_id(), span.span_id()));
            exposition.observe(seconds, attributes, exemplar);
        }
    }
}

/// A monotonic counter; it records nothing when made before [`crate::init`] or with the SDK disabled.
#[derive(Debug, Clone)]
pub struct Counter {
    otel: Option<opentelemetry::metrics::Counter<u64>>,
    exposition: Option<Arc<CounterFamily>>,
}

impl Counter {
    pub fn add(&self, value: u64, attributes: &[KeyValue]) {
        if let Some(otel) = &self.otel {
            otel.add(value, attributes);
        }
        if let Some(exposition) = &self.exposition {
            exposition.add(value, attributes);
        }
    }
}

/// A gauge: the last value recorded per attribute set.
#[derive(Debug, Clone)]
pub struct Gauge {
    otel: Option<opentelemetry::metrics::Gauge<i64>>,
    exposition: Option<Arc<GaugeFamily>>,
}

impl Gauge {
    fn new(sinks: Sinks, name: &'static str, unit: &'static str, help: &'static str) -> Self {
        Self {
            otel: sinks.otlp.then(|| {
                opentelemetry::global::meter(SCOPE)
                    .i64_gauge(name)
                    .with_unit(unit)
                    .with_description(help)
                    .build()
            }),
            exposition: sinks.prometheus.then(|| EXPOSITION.gauge(name, unit, help)),
        }
    }

    pub fn record(&self, value: i64, attributes: &[KeyValue]) {
        if let Some(otel) = &self.otel {
            otel.record(value, attributes);
        }
        if let Some(exposition) = &self.exposition {
            exposition.set(value, attributes);
        }
    }
}

/// The suite's own name for consumer lag: the messaging conventions define no
/// such metric yet, so it does not take a `messaging.*` name.
pub const CONSUMER_LAG: &str = crate::semconv::eshop::metric::KAFKA_CONSUMER_LAG;

/// A business counter of the service's own, named in [`crate::semconv::eshop::metric`]
/// (e.g. `eshop.orders.placed`, unit `{order}`).
///
/// Create it once, after [`crate::init`], and keep it.
pub fn counter(name: &'static str, unit: &'static str, help: &'static str) -> Counter {
    counter_to(sinks(), name, unit, help)
}

fn counter_to(sinks: Sinks, name: &'static str, unit: &'static str, help: &'static str) -> Counter {
    Counter {
        otel: sinks.otlp.then(|| {
            opentelemetry::global::meter(SCOPE)
                .u64_counter(name)
                .with_unit(unit)
                .with_description(help)
                .build()
        }),
        exposition: sinks.prometheus.then(|| EXPOSITION.counter(name, unit, help)),
    }
}

/// The instruments the suite records on its own: HTTP here, messaging in the `messaging` crate.
#[derive(Debug)]
pub(crate) struct Instruments {
    sinks: Sinks,
    pub(crate) http_server_duration: Histogram,
    pub(crate) http_client_duration: Histogram,
    messaging: Messaging,
}

/// The messaging conventions' instruments (and the consumer lag), created by
/// [`crate::init`] so that they exist, and show on `GET /metrics`, before the
/// first record; the `messaging` crate records them.
#[derive(Debug)]
pub struct Messaging {
    /// `messaging.client.operation.duration`: one per PRODUCER span, from open to close.
    pub operation_duration: Histogram,
    /// `messaging.process.duration`: one per CONSUMER span, from open to close.
    pub process_duration: Histogram,
    /// `messaging.client.sent.messages`.
    pub sent_messages: Counter,
    /// `messaging.client.consumed.messages`.
    pub consumed_messages: Counter,
    /// [`CONSUMER_LAG`] per partition.
    pub consumer_lag: Gauge,
}

/// Creates the instruments; called by [`crate::init`] once the meter provider is global.
pub(crate) fn install(sinks: Sinks) {
    INSTRUMENTS.get_or_init(|| Instruments {
        sinks,
        http_server_duration: Histogram::new(
            sinks,
            metric::HTTP_SERVER_REQUEST_DURATION,
            "Duration of HTTP server requests.",
        ),
        http_client_duration: Histogram::new(
            sinks,
            metric::HTTP_CLIENT_REQUEST_DURATION,
            "Duration of HTTP client requests.",
        ),
        messaging: Messaging {
            operation_duration: Histogram::new(
                sinks,
                metric::MESSAGING_CLIENT_OPERATION_DURATION,
                "Duration of messaging operations initiated by a producer or consumer client.",
            ),
            process_duration: Histogram::new(
                sinks,
                metric::MESSAGING_PROCESS_DURATION,
                "Duration of processing operations.",
            ),
            sent_messages: counter_to(
                sinks,
                metric::MESSAGING_CLIENT_SENT_MESSAGES,
                "{message}",
                "Number of messages producer attempted to send to the broker.",
            ),
            consumed_messages: counter_to(
                sinks,
                metric::MESSAGING_CLIENT_CONSUMED_MESSAGES,
                "{message}",
                "Number of messages that were delivered to the application.",
            ),
            consumer_lag: Gauge::new(
                sinks,
                CONSUMER_LAG,
                "{message}",
                "Records in a partition behind its high watermark, as librdkafka reports it.",
            ),
        },
    });
}

/// The crate's instruments, or `None` before [`crate::init`] or with the SDK disabled.
pub(crate) fn instruments() -> Option<&'static Instruments> {
    INSTRUMENTS.get()
}

/// Where this process's instruments record: none before [`crate::init`] or with the SDK disabled.
fn sinks() -> Sinks {
    instruments().map(|instruments| instruments.sinks).unwrap_or_default()
}

/// The messaging instruments, or `None` before [`crate::init`] or with the SDK
/// disabled (then there is nothing to record).
pub fn messaging() -> Option<&'static Messaging> {
    instruments().map(|instruments| &instruments.messaging)
}

/// `GET /metrics`: this process's metrics in OpenMetrics text, exemplars
/// included, when `OTEL_METRICS_EXPORTER` names `prometheus`; without, no route
/// (the service answers 404 there). Build it after [`crate::init`].
pub fn router() -> Router {
    if sinks().prometheus {
        Router::new().route(METRICS_PATH, get(serve))
    } else {
        Router::new()
    }
}

/// Scrapes formatted at once: Prometheus sends one at a time per target; a
/// flood of `GET /metrics` must not take every core from the requests.
const SCRAPES_AT_ONCE: usize = 2;
/// How long a scrape may take before it is answered 503 (Prometheus's own
/// default scrape timeout is 10 s).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
static SCRAPES: Semaphore = Semaphore::const_new(SCRAPES_AT_ONCE);

async fn serve() -> Response {
    scrape(&SCRAPES, SCRAPE_TIMEOUT, || EXPOSITION.render()).await
}

/// Formats the exposition off the async workers, at most as many at once as
/// `slots` has permits and within `timeout`; 503 with `Retry-After` otherwise.
async fn scrape(slots: &'static Semaphore, timeout: Duration, render: fn() -> String) -> Response {
    let busy =
        |detail: &'static str| (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], detail).into_response();
    let Ok(permit) = slots.try_acquire() else {
        return busy("other scrapes are being formatted");
    };
    // The permit goes with the work: a scrape that outlives its timeout still
    // counts until it has finished formatting.
    let formatting = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        render()
    });
    match tokio::time::timeout(timeout, formatting).await {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, openmetrics::CONTENT_TYPE)], text).into_response(),
        Ok(Err(_)) => (StatusCode::INTERNAL_SERVER_ERROR, "formatting the metrics failed").into_response(),
        Err(_) => busy("formatting the metrics took too long"),
    }
}

/// Records `histogram` with the span's duration when the span closes, for
/// spans whose end is not in the caller's hands (a CONSUMER span ends when
/// the service drops it), with the span as the exemplar.
///
/// `counter`, if any, is counted once with the same attributes at the same
/// time. Nothing is recorded for a span the subscriber does not keep.
pub fn record_on_close(
    span: &Span,
    histogram: &'static Histogram,
    counter: Option<&'static Counter>,
    attributes: Vec<KeyValue>,
) {
    let span_context = crate::span_context(span);
    let timing = CloseTiming {
        start: Instant::now(),
        histogram,
        counter,
        attributes,
        span_context,
    };
    crate::with_registry_span(span, |span| span.extensions_mut().replace(timing));
}

/// Adds an attribute to what [`record_on_close`] will record for `span` (e.g. `error.type`).
pub fn add_close_attribute(span: &Span, attribute: KeyValue) {
    crate::with_registry_span(span, |span| {
        if let Some(timing) = span.extensions_mut().get_mut::<CloseTiming>() {
            timing.attributes.push(attribute);
        }
    });
}

struct CloseTiming {
    start: Instant,
    histogram: &'static Histogram,
    counter: Option<&'static Counter>,
    attributes: Vec<KeyValue>,
    span_context: SpanContext,
}

/// The layer that records [`record_on_close`] durations.
#[derive(Debug, Default)]
pub(crate) struct CloseLayer;

impl<S> Layer<S> for CloseLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(timing) = span.extensions_mut().remove::<CloseTiming>() else {
            return;
        };
        timing.histogram.record(
            timing.start.elapsed().as_secs_f64(),
            &timing.attributes,
            Some(&timing.span_context),
        );
        if let Some(counter) = timing.counter {
            counter.add(1, &timing.attributes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow_render() -> String {
        std::thread::sleep(Duration::from_millis(300));
        "# EOF\n".to_owned()
    }

    fn quick_render() -> String {
        "# EOF\n".to_owned()
    }

    #[tokio::test]
    async fn scrapes_are_bounded_in_number_and_time() {
        static SLOTS: Semaphore = Semaphore::const_new(1);
        let ok = scrape(&SLOTS, Duration::from_secs(5), quick_render).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[header::CONTENT_TYPE], openmetrics::CONTENT_TYPE);

        // Too slow: answered 503, and its permit held until it has finished.
        let late = scrape(&SLOTS, Duration::from_millis(20), slow_render).await;
        assert_eq!(late.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(late.headers()[header::RETRY_AFTER], "1");
        let busy = scrape(&SLOTS, Duration::from_secs(5), quick_render).await;
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE, "one scrape at a time");

        // Once the slow one is done, the slot is free again.
        let _free = SLOTS.acquire().await.expect("the slot comes back");
    }
}
