//! Everything that makes one user request one distributed trace, in one crate.
//!
//! Every binary of the suite calls [`init`] once and keeps the returned
//! [`TelemetryGuard`] alive until it exits. The rest of the crate is organised
//! by where a trace is continued:
//!
//! | module | side of the wire | what it does |
//! | --- | --- | --- |
//! | [`propagation`] | both | which headers carry the context (W3C, B3, `x-request-id`) |
//! | [`server`] | inbound HTTP | opens the SERVER span of each request, continuing the caller's trace |
//! | [`client`] | outbound HTTP | opens a CLIENT span per call and injects the context into its headers |
//! | `kafka` (feature `kafka`) | Kafka records | PRODUCER and CONSUMER spans, headers as carriers |
//! | [`logs`] | none | log lines that carry the `trace_id` and `span_id` they belong to |
//! | [`untrusted`] | inbound | caps on what is copied from a request into spans and headers |
//!
//! The services never touch propagators or carriers themselves: they go through
//! these modules, so the trace contract lives in one place.

pub mod client;
mod init;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod logs;
pub mod propagation;
pub mod server;
pub mod tls;
pub mod untrusted;

pub use init::{TelemetryError, TelemetryGuard, init};

/// The trace id of the span the caller is in, as 32 lowercase hex digits, or
/// `None` when tracing is off or the span is not recorded.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let cx = tracing::Span::current().context();
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}
