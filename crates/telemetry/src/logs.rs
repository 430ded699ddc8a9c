//! Log lines that say which trace and span they belong to: readable text, or JSON lines for Kubernetes.
//!
//! A line written inside a span carries `trace_id` and `span_id`, so a user can
//! go from a log line to the trace in Jaeger and back. The same events also go
//! over OTLP as log records ([`otlp_layer`]), with the ids in the record's own
//! trace context fields.

use std::fmt;

use opentelemetry::trace::TraceContextExt as _;
use serde::{Serialize, Serializer as _, ser::SerializeMap};
use tracing::{Dispatch, Event, Subscriber, field::Field};
use tracing_subscriber::{
    Registry,
    field::RecordFields,
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::{DefaultFields, Writer},
        time::{FormatTime as _, SystemTime},
    },
    registry::{LookupSpan, SpanRef},
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
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let span = event_span(event, |span, dispatch| {
            (span.name(), trace_and_span_ids(&span.id(), dispatch))
        });
        let (span, ids) = match span {
            Some((name, ids)) => (Some(name), ids),
            None => (None, None),
        };
        let timestamp = Timestamp::now()?;
        let metadata = event.metadata();

        match self.format {
            LogFormat::Text => {
                write!(writer, "{} {:>5} ", timestamp.as_str(), metadata.level())?;
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
                // Streamed into the writer, not built as a `serde_json::Map`
                // first: a map costs two allocations per member, on every line.
                let mut line = serde_json::Serializer::new(FmtToIo(writer.by_ref()));
                let mut members = line.serialize_map(None).map_err(|_| fmt::Error)?;
                let written = (|| {
                    members.serialize_entry("timestamp", timestamp.as_str())?;
                    members.serialize_entry("level", metadata.level().as_str())?;
                    members.serialize_entry("target", metadata.target())?;
                    let mut fields = JsonFields {
                        members: &mut members,
                        failed: None,
                    };
                    event.record(&mut fields);
                    if let Some(err) = fields.failed {
                        return Err(err);
                    }
                    if let Some(span) = span {
                        members.serialize_entry("span", span)?;
                    }
                    if let Some(ids) = &ids {
                        members.serialize_entry("trace_id", ids.trace_id())?;
                        members.serialize_entry("span_id", ids.span_id())?;
                    }
                    Ok::<_, serde_json::Error>(())
                })();
                written.and_then(|()| members.end()).map_err(|_| fmt::Error)?;
                writeln!(writer)
            }
        }
    }
}

/// The members every JSON line has; an event field of the same name is left
/// out rather than written twice.
const LINE_MEMBERS: [&str; 6] = ["timestamp", "level", "target", "span", "trace_id", "span_id"];

/// A line's timestamp, formatted on the stack (RFC 3339 with microseconds is
/// 27 bytes) rather than into a `String` per line.
struct Timestamp {
    bytes: [u8; 40],
    len: usize,
}

impl Timestamp {
    fn now() -> Result<Self, fmt::Error> {
        let mut timestamp = Self { bytes: [0; 40], len: 0 };
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        Ok(timestamp)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for Timestamp {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// serde_json writes to an `io::Write`, the fmt layer hands out a `fmt::Write`.
/// serde_json only ever writes whole UTF-8 sequences (it cuts strings at the
/// ASCII characters it escapes), so each piece is a `str`.
struct FmtToIo<'w>(Writer<'w>);

impl std::io::Write for FmtToIo<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(bytes).map_err(std::io::Error::other)?;
        self.0.write_str(text).map_err(std::io::Error::other)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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

/// Calls `f` with the span `event` was emitted in: its explicit parent, or
/// the current span. Looked up in the registry itself, not through a layer's
/// context: the log layers' filters turn spans away (see
/// `init::log_filter`), so their contexts do not see them.
pub(crate) fn event_span<T>(event: &Event<'_>, f: impl FnOnce(&SpanRef<'_, Registry>, &Dispatch) -> T) -> Option<T> {
    let mut f = Some(f);
    tracing::dispatcher::get_default(|dispatch| {
        let current;
        let id = match event.parent() {
            Some(id) => id,
            None if event.is_contextual() => {
                current = dispatch.current_span();
                current.id()?
            }
            None => return None,
        };
        let span = dispatch.downcast_ref::<Registry>()?.span(id)?;
        f.take().map(|f| f(&span, dispatch))
    })
}

fn trace_and_span_ids(id: &tracing::span::Id, dispatch: &Dispatch) -> Option<Ids> {
    let cx = tracing_opentelemetry::get_otel_context(id, dispatch)?;
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

/// Writes an event's fields as top-level JSON members, numbers and booleans
/// kept as such; the first error stops the line.
struct JsonFields<'a, M> {
    members: &'a mut M,
    failed: Option<serde_json::Error>,
}

impl<M: SerializeMap<Error = serde_json::Error>> JsonFields<'_, M> {
    fn member(&mut self, field: &Field, value: &(impl Serialize + ?Sized)) {
        if self.failed.is_some() || LINE_MEMBERS.contains(&field.name()) {
            return;
        }
        if let Err(err) = self.members.serialize_entry(field.name(), value) {
            self.failed = Some(err);
        }
    }
}

/// A value written as a JSON string through its `Display`, without a `String` in between.
struct Displayed<T>(T);

impl<T: fmt::Display> Serialize for Displayed<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<M: SerializeMap<Error = serde_json::Error>> tracing::field::Visit for JsonFields<'_, M> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, &value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, &value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.member(field, &value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, &value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.member(field, &Displayed(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, &Displayed(format_args!("{value:?}")));
    }
}
