//! Log lines that say which trace and span they belong to: readable text, or JSON lines for Kubernetes.
//!
//! A line written inside a span carries `trace_id` and `span_id`, so a user can
//! go from a log line to the trace in Jaeger and back. The same events also go
//! over OTLP as log records ([`otlp_layer`]), with the ids in the record's own
//! trace context fields.

use std::fmt;

use opentelemetry::trace::TraceContextExt as _;
use tracing::{Event, Subscriber, field::Field};
use tracing_subscriber::{
    field::RecordFields,
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::{DefaultFields, Writer},
        time::{FormatTime as _, SystemTime},
    },
    registry::LookupSpan,
};

use crate::hex::hex_into;

mod otlp;
mod writer;

pub(crate) use otlp::otlp_layer;
pub use writer::LogWriterGuard;
pub(crate) use writer::off_the_request_path;

/// `json` for one JSON object per line; anything else (or unset) for text.
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// Reads [`LOG_FORMAT`].
    pub fn from_env() -> Self {
        match std::env::var(LOG_FORMAT) {
            Ok(value) if value.trim().eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Text,
        }
    }
}

/// A [`FormatEvent`] that adds the current trace and span ids to every line.
#[derive(Debug, Clone, Copy)]
pub struct EventFormat {
    format: LogFormat,
}

impl EventFormat {
    pub fn new(format: LogFormat) -> Self {
        Self { format }
    }
}

impl<S, N> FormatEvent<S, N> for EventFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        let ids = span.as_ref().and_then(|span| trace_and_span_ids(&span.id()));
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let metadata = event.metadata();

        match self.format {
            LogFormat::Text => {
                write!(writer, "{timestamp} {:>5} ", metadata.level())?;
                if let Some(ids) = &ids {
                    write!(writer, "trace_id={} span_id={} ", ids.trace_id(), ids.span_id())?;
                }
                write!(writer, "{}: ", metadata.target())?;
                // The event's own fields, as the fmt layer's default would:
                // the layer's field formatter is [`NoSpanFields`].
                DefaultFields::new().format_fields(writer.by_ref(), event)?;
                writeln!(writer)
            }
            LogFormat::Json => {
                let mut line = serde_json::Map::new();
                line.insert("timestamp".into(), timestamp.into());
                line.insert("level".into(), metadata.level().as_str().into());
                line.insert("target".into(), metadata.target().into());
                event.record(&mut JsonFields(&mut line));
                if let Some(span) = &span {
                    line.insert("span".into(), span.name().into());
                }
                if let Some(ids) = ids {
                    line.insert("trace_id".into(), ids.trace_id().into());
                    line.insert("span_id".into(), ids.span_id().into());
                }
                writeln!(writer, "{}", serde_json::Value::Object(line))
            }
        }
    }
}

/// The fmt layer's field formatter: formats nothing.
///
/// The fmt layer formats every span's fields into a string when the span opens
/// (and again on each `record`) for lines that print them; [`EventFormat`]
/// prints the span's ids, never its fields, so that string was built for
/// nothing, on every span: 13,000 instructions of a SERVER span's 18,000 at
/// creation under callgrind (see docs/benchmarks.md).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSpanFields;

impl<'writer> FormatFields<'writer> for NoSpanFields {
    fn format_fields<R: RecordFields>(&self, _writer: Writer<'writer>, _fields: R) -> fmt::Result {
        Ok(())
    }
}

/// A span's ids in lowercase hex, written without `format!` (see [`crate::hex`]):
/// every log line inside a span carries them.
struct Ids {
    trace_id: [u8; 32],
    span_id: [u8; 16],
}

impl Ids {
    fn trace_id(&self) -> &str {
        std::str::from_utf8(&self.trace_id).unwrap_or_default()
    }

    fn span_id(&self) -> &str {
        std::str::from_utf8(&self.span_id).unwrap_or_default()
    }
}

fn trace_and_span_ids(id: &tracing::span::Id) -> Option<Ids> {
    let cx = tracing::dispatcher::get_default(|dispatch| tracing_opentelemetry::get_otel_context(id, dispatch))?;
    let span = cx.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return None;
    }
    let mut ids = Ids {
        trace_id: [0; 32],
        span_id: [0; 16],
    };
    hex_into(&span_context.trace_id().to_bytes(), &mut ids.trace_id);
    hex_into(&span_context.span_id().to_bytes(), &mut ids.span_id);
    Some(ids)
}

/// Writes an event's fields as top-level JSON members, numbers and booleans kept as such.
struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}
