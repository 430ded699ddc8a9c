//! Everything that makes one user request one distributed trace, in one crate.
//!
//! Every binary of the suite calls [`init`] once and keeps the returned
//! [`TelemetryGuard`] alive until it exits. The rest of the crate is organised
//! by where a trace is continued:
//!
//! | module | side of the wire | what it does |
//! | --- | --- | --- |
//! | [`propagation`] | both | which headers carry the context (W3C, B3, baggage) |
//! | [`request_id`] | both | `x-request-id`, forwarded even with the SDK off |
//! | [`sampler`] | inbound | the configured sampler, honouring B3's deferred and sampling-only states |
//! | [`baggage`] | inbound | allow-listed baggage entries copied onto spans |
//! | [`server`] | inbound HTTP | opens the SERVER span of each request, continuing the caller's trace |
//! | [`client`] | outbound HTTP | opens a CLIENT span per call and injects the context into its headers |
//! | [`metrics`] | none | the semantic-convention instruments, over OTLP or at `GET /metrics` with exemplars |
//! | [`logs`] | none | log lines and OTLP log records that carry the `trace_id` and `span_id` they belong to |
//! | [`semconv`] | both | values the HTTP conventions normalise (`_OTHER`), bucket boundaries |
//! | [`untrusted`] | inbound | caps on what is copied from a request into spans and headers |
//! | [`span`] | none | what a handler adds to its span (an attribute, a failure) |
//! | [`value_limit`] | none | the SDK's attribute value length limit, a second line behind [`untrusted`] |
//!
//! The Kafka side (PRODUCER and CONSUMER spans, record headers as carriers,
//! the messaging metrics) is the `messaging` crate, built on the public pieces
//! here: [`propagation::inject_span`] and [`propagation::continue_and_link`]
//! with its own [`propagation::Injector`] and [`propagation::Extractor`],
//! [`request_id::of`] and [`request_id::remember`], [`metrics::messaging`] with
//! [`metrics::record_on_close`] and [`metrics::add_close_attribute`],
//! [`semconv::attribute`] and [`span::mark_error`].
//!
//! The services never touch propagators or carriers themselves: they go through
//! these modules (and `messaging`), so the trace contract lives in one place.

pub mod baggage;
pub mod client;
#[cfg(test)]
mod ended;
mod hex;
mod init;
pub mod logs;
pub mod metrics;
pub mod propagation;
pub mod request_id;
pub mod sampler;
pub mod semconv;
pub mod server;
pub mod span;
pub mod tls;
pub mod untrusted;
pub mod value_limit;

pub use init::{Providers, TelemetryError, TelemetryGuard, init, install, span_processor};

/// The OpenTelemetry span context of a `tracing` span (invalid when the SDK is off).
pub(crate) fn span_context(span: &tracing::Span) -> opentelemetry::trace::SpanContext {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    span.context().span().span_context().clone()
}

/// The trace id of the span the caller is in, as 32 lowercase hex digits, or
/// `None` when tracing is off or the span is not recorded.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let cx = tracing::Span::current().context();
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Runs `f` on the registry's record of `span` (its extensions), if the span is enabled.
pub(crate) fn with_registry_span<T>(
    span: &tracing::Span,
    f: impl FnOnce(tracing_subscriber::registry::SpanRef<'_, tracing_subscriber::Registry>) -> T,
) -> Option<T> {
    use tracing_subscriber::registry::LookupSpan as _;
    let id = span.id()?;
    let mut f = Some(f);
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(&id)?;
        f.take().map(|f| f(span))
    })
}
