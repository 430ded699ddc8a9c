//! Reads a trace as Jaeger's HTTP APIs return it into the suite's span records,
//! so it can be checked like the tests check theirs.
//!
//! Jaeger v2's `GET /api/v3/traces/{id}` answers `{"result": <OTLP JSON>}`: the
//! OTLP `TracesData` in the OTLP/JSON encoding (hex ids, enums as numbers,
//! 64-bit integers as strings), decoded here by opentelemetry-proto's serde
//! support into the same request type, and flattened by the same code
//! ([`otlp_sink::records`]), as the sink's protobuf
//! (Jaeger's query extension, `apiv3/http_gateway.go`: route `/api/v3/traces/{trace_id}`,
//! errors as `{"error": {"httpCode", "message"}}`).
//!
//! The older `GET /api/traces/{id}` (Jaeger v1's UI API, still served by v2):
//! `data[]` holds traces, each with `spans[]` and `processes`; a span names its
//! process by `processID`, its kind in the `span.kind` tag, its parent as its
//! first reference and its links as `FOLLOWS_FROM` ones. The parent reference
//! is `CHILD_OF` unless a link names the parent too: Jaeger's OTLP translation
//! then keeps one reference, typed `FOLLOWS_FROM` (so a CONSUMER span whose
//! parent and link are the PRODUCER has that one reference, no `CHILD_OF`).
//! A trace Jaeger does not hold is a 404 with `"data": null` and
//! `"errors": [{"code": 404, "msg": "trace not found"}]`.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_sink::{AttributeValue, LinkRecord, SpanKind, SpanRecord, SpanStatus};
use serde::Deserialize;

/// Jaeger v2's query API for one trace (OTLP JSON).
pub const V3_TRACE_PATH: &str = "/api/v3/traces/";
/// Jaeger's UI API for one trace, the fallback.
pub const V1_TRACE_PATH: &str = "/api/traces/";

/// The body of `GET /api/v3/traces/{id}`: a result, or an error such as 404 "trace not found".
#[derive(Debug, Deserialize)]
struct V3Response {
    result: Option<ExportTraceServiceRequest>,
    error: Option<V3Error>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct V3Error {
    #[serde(default)]
    http_code: u16,
    #[serde(default)]
    message: String,
}

/// The spans of trace `trace_id` in a `GET /api/v3/traces/{id}` body.
pub fn read_trace_v3(body: &str, trace_id: &str) -> Result<Vec<SpanRecord>, ReadError> {
    let response: V3Response = serde_json::from_str(body).map_err(|err| ReadError::Malformed(err.to_string()))?;
    if let Some(error) = response.error {
        return Err(if error.http_code == 404 {
            ReadError::NotFound(trace_id.to_owned())
        } else {
            ReadError::Malformed(format!("Jaeger answered {}: {}", error.http_code, error.message))
        });
    }
    let request = response
        .result
        .ok_or_else(|| ReadError::Malformed("neither result nor error".to_owned()))?;
    let wanted = normalize(trace_id);
    let spans: Vec<SpanRecord> = otlp_sink::records(request)
        .into_iter()
        .filter(|span| span.trace_id == wanted)
        .collect();
    if spans.is_empty() {
        return Err(ReadError::NotFound(trace_id.to_owned()));
    }
    Ok(spans)
}

#[derive(Debug, Deserialize)]
pub struct Response {
    /// `null` (not absent, not `[]`) when Jaeger has no such trace.
    #[serde(default)]
    pub data: Option<Vec<JaegerTrace>>,
    #[serde(default)]
    pub errors: Option<Vec<V1Error>>,
}

#[derive(Debug, Deserialize)]
pub struct V1Error {
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub msg: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerTrace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<JaegerSpan>,
    #[serde(default)]
    pub processes: HashMap<String, Process>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerSpan {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    pub operation_name: String,
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Microseconds since the epoch.
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(rename = "processID")]
    pub process_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    pub ref_type: String,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Debug, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub service_name: String,
}

/// Why a Jaeger answer could not be read as one trace.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    NotFound(String),
    Malformed(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(id) => write!(f, "Jaeger has no trace {id}"),
            Self::Malformed(why) => write!(f, "not a Jaeger trace document: {why}"),
        }
    }
}

/// The spans of trace `trace_id` in a `GET /api/traces/{id}` body.
pub fn read_trace(body: &str, trace_id: &str) -> Result<Vec<SpanRecord>, ReadError> {
    let response: Response = serde_json::from_str(body).map_err(|err| ReadError::Malformed(err.to_string()))?;
    // A 400 (a malformed id) or 500 says more than "no such trace".
    if let Some(error) = response.errors.iter().flatten().find(|error| error.code != 404) {
        return Err(ReadError::Malformed(format!(
            "Jaeger answered {}: {}",
            error.code, error.msg
        )));
    }
    let wanted = normalize(trace_id);
    let trace = response
        .data
        .into_iter()
        .flatten()
        .find(|trace| normalize(&trace.trace_id) == wanted)
        .ok_or_else(|| ReadError::NotFound(trace_id.to_owned()))?;
    Ok(trace.spans.iter().map(|span| record(span, &trace.processes)).collect())
}

/// Jaeger v1 dropped leading zeros from ids (v2 keeps them); the suite writes 32 (trace) or 16 (span) hex digits.
fn normalize(id: &str) -> String {
    format!("{:0>32}", id.to_ascii_lowercase())
}

fn span_id(id: &str) -> String {
    format!("{:0>16}", id.to_ascii_lowercase())
}

fn record(span: &JaegerSpan, processes: &HashMap<String, Process>) -> SpanRecord {
    let tags: BTreeMap<String, AttributeValue> = span
        .tags
        .iter()
        .map(|tag| (tag.key.clone(), attribute(&tag.value)))
        .collect();
    let kind = match tags.get("span.kind").and_then(AttributeValue::as_str) {
        Some("server") => SpanKind::Server,
        Some("client") => SpanKind::Client,
        Some("producer") => SpanKind::Producer,
        Some("consumer") => SpanKind::Consumer,
        Some("internal") => SpanKind::Internal,
        _ => SpanKind::Unspecified,
    };
    let error = matches!(tags.get("error"), Some(AttributeValue::Bool(true)))
        || tags.get("otel.status_code").and_then(AttributeValue::as_str) == Some("ERROR");
    let message = tags
        .get("otel.status_description")
        .and_then(AttributeValue::as_str)
        .unwrap_or_default();
    // The first reference is the parent, whatever its type (see the module's doc).
    let parent = span
        .references
        .first()
        .filter(|reference| normalize(&reference.trace_id) == normalize(&span.trace_id))
        .map(|reference| span_id(&reference.span_id));
    SpanRecord {
        trace_id: normalize(&span.trace_id),
        span_id: span_id(&span.span_id),
        parent_span_id: parent,
        name: span.operation_name.clone(),
        kind,
        service: processes
            .get(&span.process_id)
            .map_or_else(|| span.process_id.clone(), |p| p.service_name.clone()),
        start_unix_nanos: span.start_time.saturating_mul(1_000),
        end_unix_nanos: span.start_time.saturating_add(span.duration).saturating_mul(1_000),
        status: if error {
            SpanStatus::Error(message.to_owned())
        } else {
            SpanStatus::Unset
        },
        links: span
            .references
            .iter()
            .filter(|reference| reference.ref_type == "FOLLOWS_FROM")
            .map(|reference| LinkRecord {
                trace_id: normalize(&reference.trace_id),
                span_id: span_id(&reference.span_id),
            })
            .collect(),
        attributes: tags,
        // The trace contract does not look at events; Jaeger's span logs are not read.
        events: Vec::new(),
    }
}

fn attribute(value: &serde_json::Value) -> AttributeValue {
    match value {
        serde_json::Value::String(text) => AttributeValue::String(text.clone()),
        serde_json::Value::Bool(flag) => AttributeValue::Bool(*flag),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(int) => AttributeValue::Int(int),
            None => AttributeValue::Double(number.as_f64().unwrap_or_default()),
        },
        other => AttributeValue::Other(other.to_string()),
    }
}
