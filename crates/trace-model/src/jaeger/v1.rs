//! Jaeger's older `GET /api/traces/{id}` (v1's UI API, still served by v2):
//! `data[]` holds traces, each with `spans[]` and `processes`; a span names its
//! process by `processID`, its kind in the `span.kind` tag, its parent as its
//! first reference and its links as `FOLLOWS_FROM` ones. The parent reference
//! is `CHILD_OF` unless a link names the parent too: Jaeger's OTLP translation
//! then keeps one reference, typed `FOLLOWS_FROM` (so a CONSUMER span whose
//! parent and link are the PRODUCER has that one reference, no `CHILD_OF`).
//! A trace Jaeger does not hold is a 404 with `"data": null` and
//! `"errors": [{"code": 404, "msg": "trace not found"}]`.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::{ReadError, normalize};
use crate::{AttributeValue, LinkRecord, SpanKind, SpanRecord, SpanStatus};

/// The body of `GET /api/traces/{id}`.
#[derive(Debug, Deserialize)]
struct Response {
    /// `null` (not absent, not `[]`) when Jaeger has no such trace.
    #[serde(default)]
    data: Option<Vec<JaegerTrace>>,
    #[serde(default)]
    errors: Option<Vec<V1Error>>,
}

#[derive(Debug, Deserialize)]
struct V1Error {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    msg: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerTrace {
    #[serde(rename = "traceID")]
    trace_id: String,
    spans: Vec<JaegerSpan>,
    #[serde(default)]
    processes: HashMap<String, Process>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerSpan {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    operation_name: String,
    #[serde(default)]
    references: Vec<Reference>,
    /// Microseconds since the epoch.
    start_time: u64,
    /// Microseconds.
    duration: u64,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(rename = "processID")]
    process_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reference {
    ref_type: String,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Debug, Deserialize)]
struct Tag {
    key: String,
    value: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    service_name: String,
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
