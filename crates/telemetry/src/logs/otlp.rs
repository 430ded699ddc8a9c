//! Log events as OTLP log records, each carrying the trace and span id of the span it was emitted in.
//!
//! opentelemetry-appender-tracing turns a `tracing` event into a log record,
//! and the SDK fills the record's trace context from the *current*
//! OpenTelemetry context. The suite switches context activation off (it costs
//! CPU on every poll), so there is no current context: [`TraceContextLogs`]
//! attaches the event's span context just for the time the record is made.
//!
//! The appender names a record after its event: the `name:` of the `tracing`
//! macro (the suite's are in [`crate::semconv::eshop::event`]). A record that a
//! library wrote with the `log` crate reaches `tracing` through tracing-log as
//! an event named `log event` with fields `log.target`, `log.file`, ..., which
//! the registry reserves for other meanings; [`TraceContextLogs`] writes those
//! records itself, as `eshop.log.bridged` with the location under the
//! conventions' `code.*` names and the rest under `eshop.log.*`.

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger, SdkLoggerProvider};
use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

use crate::semconv::{attribute, eshop};

/// The field tracing-log gives every event it bridges from the `log` crate.
const LOG_TARGET_FIELD: &str = "log.target";

/// The layer that sends every event it sees to `provider`.
pub(crate) fn otlp_layer(provider: &SdkLoggerProvider) -> TraceContextLogs {
    TraceContextLogs {
        bridge: OpenTelemetryTracingBridge::new(provider),
        // The appender's scope (unnamed), so that bridged records sit with the others.
        bridged: provider.logger(""),
    }
}

/// The appender's layer, run inside the event's span context.
pub(crate) struct TraceContextLogs {
    bridge: OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger>,
    bridged: SdkLogger,
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
        let cx = super::event_span(event, |span, dispatch| {
            tracing_opentelemetry::get_otel_context(&span.id(), dispatch)
        })
        .flatten();
        let _attached = cx.map(opentelemetry::Context::attach);
        if event.metadata().fields().field(LOG_TARGET_FIELD).is_some() {
            self.emit_bridged(event);
            return;
        }
        <OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger> as Layer<S>>::on_event(&self.bridge, event, ctx);
    }
}

impl TraceContextLogs {
    /// Writes a record bridged from the `log` crate under the suite's names.
    fn emit_bridged(&self, event: &Event<'_>) {
        let level = *event.metadata().level();
        let mut record = self.bridged.create_log_record();
        record.set_event_name(eshop::event::LOG_BRIDGED);
        record.set_severity_number(severity(level));
        record.set_severity_text(level.as_str());
        event.record(&mut BridgedFields(&mut record));
        self.bridged.emit(record);
    }
}

fn severity(level: Level) -> Severity {
    match level {
        Level::ERROR => Severity::Error,
        Level::WARN => Severity::Warn,
        Level::INFO => Severity::Info,
        Level::DEBUG => Severity::Debug,
        _ => Severity::Trace,
    }
}

/// The fields of a bridged `log` record, renamed: tracing-log's `log.*` names
/// are the registry's (`log.file.*` means a log *file*).
struct BridgedFields<'a>(&'a mut SdkLogRecord);

impl BridgedFields<'_> {
    fn name(field: &Field) -> Option<&'static str> {
        Some(match field.name() {
            "log.target" => eshop::attribute::LOG_TARGET,
            "log.module_path" => eshop::attribute::LOG_MODULE_PATH,
            "log.file" => attribute::CODE_FILE_PATH,
            "log.line" => attribute::CODE_LINE_NUMBER,
            // The `log` crate's key-values are not bridged by tracing-log 0.2:
            // anything else is unknown and left out rather than exported unnamed.
            _ => return None,
        })
    }
}

impl tracing::field::Visit for BridgedFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.set_body(AnyValue::from(value.to_owned()));
        } else if let Some(name) = Self::name(field) {
            self.0.add_attribute(name, value.to_owned());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(name) = Self::name(field) {
            self.0.add_attribute(name, i64::try_from(value).unwrap_or(i64::MAX));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(name) = Self::name(field) {
            self.0.add_attribute(name, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.set_body(AnyValue::from(format!("{value:?}")));
        } else if let Some(name) = Self::name(field) {
            self.0.add_attribute(name, format!("{value:?}"));
        }
    }
}
