//! Log events as OTLP log records, each carrying the trace and span id of the span it was emitted in.
//!
//! opentelemetry-appender-tracing turns a `tracing` event into a log record,
//! and the SDK fills the record's trace context from the *current*
//! OpenTelemetry context. The suite switches context activation off (it costs
//! CPU on every poll), so there is no current context: [`TraceContextLogs`]
//! attaches the event's span context just for the time the record is made.

use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use tracing::{Event, Subscriber};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

/// The layer that sends every event it sees to `provider`.
pub(crate) fn otlp_layer(provider: &SdkLoggerProvider) -> TraceContextLogs {
    TraceContextLogs {
        bridge: OpenTelemetryTracingBridge::new(provider),
    }
}

/// The appender's layer, run inside the event's span context.
pub(crate) struct TraceContextLogs {
    bridge: OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger>,
}

impl std::fmt::Debug for TraceContextLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceContextLogs").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for TraceContextLogs
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let cx = ctx.event_span(event).and_then(|span| {
            tracing::dispatcher::get_default(|dispatch| tracing_opentelemetry::get_otel_context(&span.id(), dispatch))
        });
        let _attached = cx.map(opentelemetry::Context::attach);
        <OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger> as Layer<S>>::on_event(&self.bridge, event, ctx);
    }
}
