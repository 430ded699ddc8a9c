//! The trace signal: the span exporter, the provider with its sampler and processor, and the layer that feeds it.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithHttpConfig as _};
use opentelemetry_sdk::{
    Resource,
    trace::{BatchSpanProcessor, SdkTracerProvider},
};
use tracing::{Level, Subscriber};
use tracing_subscriber::{Layer, filter::filter_fn, registry::LookupSpan};

use super::{
    TelemetryError,
    otlp::{self, Protocol},
};
use crate::{baggage::BaggageSpanProcessor, sampler, tls::Signal, value_limit::ValueLengthLimit};

/// The traces-only form of `OTEL_EXPORTER_OTLP_PROTOCOL`, which it overrides.
const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";

/// The OTLP span exporter. The builder reads `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`,
/// `_HEADERS` and `_TIMEOUT`; TLS adds the CA of `OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE` (tls.rs).
fn span_exporter() -> Result<SpanExporter, TelemetryError> {
    Ok(match otlp::protocol(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)? {
        Protocol::HttpProtobuf => match crate::tls::http_client(Signal::Traces)? {
            Some(client) => SpanExporter::builder().with_http().with_http_client(client).build()?,
            None => SpanExporter::builder().with_http().build()?,
        },
        #[cfg(feature = "grpc")]
        Protocol::Grpc => {
            use opentelemetry_otlp::WithTonicConfig as _;
            match crate::tls::grpc_tls_config(Signal::Traces)? {
                Some(tls) => SpanExporter::builder().with_tonic().with_tls_config(tls).build()?,
                None => SpanExporter::builder().with_tonic().build()?,
            }
        }
    })
}

/// The provider: the sampler is `OTEL_TRACES_SAMPLER`/`_ARG`'s, taught B3's
/// deferred and sampling-only states; the batch settings come from `OTEL_BSP_*`.
pub(super) fn tracer_provider(resource: Resource) -> Result<SdkTracerProvider, TelemetryError> {
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sampler::from_env()?)
        .with_span_processor(span_processor(span_exporter()?))
        .build())
}

/// The one span processor: the batch processor (`OTEL_BSP_*`), with the
/// allow-listed baggage copied onto each span as it starts (see
/// [`crate::baggage`]) and long attribute values cut as it ends (see
/// [`crate::value_limit`]).
#[doc(hidden)]
pub fn span_processor<E: opentelemetry_sdk::trace::SpanExporter + 'static>(
    exporter: E,
) -> BaggageSpanProcessor<ValueLengthLimit<BatchSpanProcessor>> {
    BaggageSpanProcessor::from_env(ValueLengthLimit::from_env(
        BatchSpanProcessor::builder(exporter).build(),
    ))
}

/// The layer that turns `tracing` spans into OpenTelemetry spans.
///
/// Spans go to the exporter whatever `RUST_LOG` says: quietening logs must not
/// cut holes in the trace. Library spans below INFO stay out of it, and so do
/// events: each one already goes out as an OTLP log record carrying its span's
/// ids, and tracing-opentelemetry would copy it onto the span as a span event
/// too (2,300 instructions per line, and the bytes exported twice).
/// OpenTelemetry is deprecating the span event API in favour of exactly that,
/// logs correlated with the span (OTEP 4430; "Deprecating Span Events API",
/// opentelemetry.io blog, 2026-03-17).
pub(super) fn layer<S>(provider: &SdkTracerProvider, service_name: &str) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service_name.to_owned()))
        // Keep spans to the semantic conventions: no busy/idle timings,
        // thread or source-location attributes.
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_location(false)
        .with_target(false)
        // Parents come from tracing's own span stack; attaching the OTel
        // context on every poll of an instrumented future as well costs
        // CPU on every await and nothing here reads Context::current().
        .with_context_activation(false)
        // The hint keeps the subscriber's maximum level at INFO: without it
        // every `debug!` and `trace!` call site in the libraries (and, through
        // tracing-log, every `log` record, rdkafka's included) would be
        // dispatched only to be turned away.
        .with_filter(
            filter_fn(|metadata| metadata.is_span() && *metadata.level() <= Level::INFO)
                .with_max_level_hint(Level::INFO),
        )
}
