//! A decoded span, flattened from OTLP's resource/scope/span nesting into what trace assertions need.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{span::SpanKind as ProtoKind, status::StatusCode},
};
use prost::Message as _;

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
    fn from_proto(kind: i32) -> Self {
        match ProtoKind::try_from(kind) {
            Ok(ProtoKind::Internal) => Self::Internal,
            Ok(ProtoKind::Server) => Self::Server,
            Ok(ProtoKind::Client) => Self::Client,
            Ok(ProtoKind::Producer) => Self::Producer,
            Ok(ProtoKind::Consumer) => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

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

/// An attribute's value; maps and bytes are kept as their debug text.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Array(Vec<AttributeValue>),
    Other(String),
}

impl AttributeValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(value) => Some(value),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(value) => Some(*value),
            _ => None,
        }
    }

    /// The elements of a string array, or `None` for any other value.
    pub fn as_str_array(&self) -> Option<Vec<&str>> {
        match self {
            Self::Array(values) => values.iter().map(Self::as_str).collect(),
            _ => None,
        }
    }

    pub(crate) fn from_proto(value: Option<&AnyValue>) -> Self {
        match value.and_then(|value| value.value.as_ref()) {
            Some(Value::StringValue(value)) => Self::String(value.clone()),
            Some(Value::IntValue(value)) => Self::Int(*value),
            Some(Value::DoubleValue(value)) => Self::Double(*value),
            Some(Value::BoolValue(value)) => Self::Bool(*value),
            Some(Value::ArrayValue(array)) => {
                Self::Array(array.values.iter().map(|value| Self::from_proto(Some(value))).collect())
            }
            Some(other) => Self::Other(format!("{other:?}")),
            None => Self::Other(String::new()),
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

/// One received span, ids as lowercase hex.
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

/// The `service.name` of an OTLP resource.
pub(crate) fn service_name(resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>) -> String {
    resource
        .and_then(|resource| find(&resource.attributes, "service.name"))
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown_service".to_owned())
}

/// Attributes as a map, values decoded.
pub(crate) fn attributes(attributes: &[KeyValue]) -> BTreeMap<String, AttributeValue> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), AttributeValue::from_proto(kv.value.as_ref())))
        .collect()
}

/// Decodes the body of an OTLP/HTTP `POST /v1/traces` (binary protobuf).
pub fn decode_export_request(body: &[u8]) -> Result<Vec<SpanRecord>, prost::DecodeError> {
    Ok(records(ExportTraceServiceRequest::decode(body)?))
}

/// The spans of a decoded OTLP trace request, flattened; also what verify-trace
/// reads Jaeger's OTLP JSON (`/api/v3/traces/{id}`) into.
pub fn records(request: ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let service = service_name(resource_spans.resource.as_ref());
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                spans.push(SpanRecord {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
                    name: span.name,
                    kind: SpanKind::from_proto(span.kind),
                    service: service.clone(),
                    start_unix_nanos: span.start_time_unix_nano,
                    end_unix_nanos: span.end_time_unix_nano,
                    attributes: attributes(&span.attributes),
                    status: match span.status {
                        Some(status) if status.code == StatusCode::Error as i32 => SpanStatus::Error(status.message),
                        Some(status) if status.code == StatusCode::Ok as i32 => SpanStatus::Ok,
                        _ => SpanStatus::Unset,
                    },
                    links: span
                        .links
                        .iter()
                        .map(|link| LinkRecord {
                            trace_id: hex(&link.trace_id),
                            span_id: hex(&link.span_id),
                        })
                        .collect(),
                    events: span.events.into_iter().map(|event| event.name).collect(),
                });
            }
        }
    }
    spans
}

pub(crate) fn find(attributes: &[KeyValue], key: &str) -> Option<AttributeValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| AttributeValue::from_proto(kv.value.as_ref()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// An attribute value as log-line text.
pub(crate) fn display(value: &AttributeValue) -> String {
    match value {
        AttributeValue::String(text) | AttributeValue::Other(text) => text.clone(),
        AttributeValue::Int(value) => value.to_string(),
        AttributeValue::Double(value) => value.to_string(),
        AttributeValue::Bool(value) => value.to_string(),
        AttributeValue::Array(values) => format!("[{}]", values.iter().map(display).collect::<Vec<_>>().join(",")),
    }
}
