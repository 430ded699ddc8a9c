//! A span as a flat record: what trace assertions and the trace contract read, whichever backend it came from.

use std::collections::BTreeMap;

use crate::AttributeValue;

/// OTLP span kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "UNSPECIFIED",
            Self::Internal => "INTERNAL",
            Self::Server => "SERVER",
            Self::Client => "CLIENT",
            Self::Producer => "PRODUCER",
            Self::Consumer => "CONSUMER",
        }
    }
}

/// A span's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanStatus {
    Unset,
    Ok,
    Error(String),
}

/// A link from one span to another, e.g. a CONSUMER span's to its PRODUCER span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    pub trace_id: String,
    pub span_id: String,
}

/// One span, ids as lowercase hex.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: String,
    pub span_id: String,
    /// `None` for a root span.
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    /// The resource's `service.name`.
    pub service: String,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub status: SpanStatus,
    pub links: Vec<LinkRecord>,
    /// The names of the span's events (OTLP `Span.events`).
    pub events: Vec<String>,
}

impl SpanRecord {
    pub fn attribute(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes.get(key)
    }

    /// A string attribute, or `None` when absent or of another type.
    pub fn str_attribute(&self, key: &str) -> Option<&str> {
        self.attribute(key).and_then(AttributeValue::as_str)
    }

    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }

    pub fn is_error(&self) -> bool {
        matches!(self.status, SpanStatus::Error(_))
    }
}
