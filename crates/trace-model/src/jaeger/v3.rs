//! Jaeger v2's `GET /api/v3/traces/{id}`: `{"result": <OTLP JSON>}`, the OTLP
//! `TracesData` in the OTLP/JSON encoding (hex ids, enums as numbers, 64-bit
//! integers as strings), decoded by opentelemetry-proto's serde support into the
//! same request type, and flattened by the same code ([`crate::records`]), as
//! the sink's protobuf (Jaeger's query extension, `apiv3/http_gateway.go`: route
//! `/api/v3/traces/{trace_id}`, errors as `{"error": {"httpCode", "message"}}`).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::Deserialize;

use super::{ReadError, normalize};
use crate::SpanRecord;

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
    let spans: Vec<SpanRecord> = crate::records(request)
        .into_iter()
        .filter(|span| span.trace_id == wanted)
        .collect();
    if spans.is_empty() {
        return Err(ReadError::NotFound(trace_id.to_owned()));
    }
    Ok(spans)
}
