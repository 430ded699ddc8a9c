//! Decoded log records, flattened from OTLP's resource/scope/log-record nesting.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::{collector::logs::v1::ExportLogsServiceRequest, common::v1::any_value::Value};
use prost::Message as _;

use crate::{
    AttributeValue,
    span::{attributes, hex, service_name},
};

/// One received log record, ids as lowercase hex (`None` when the record has none).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The resource's `service.name`.
    pub service: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub time_unix_nanos: u64,
    pub severity_number: i32,
    pub severity_text: String,
    /// The body as text (a string body as is, anything else as debug text).
    pub body: String,
    pub event_name: String,
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// Decodes the body of an OTLP/HTTP `POST /v1/logs` (binary protobuf).
pub fn decode_logs_request(body: &[u8]) -> Result<Vec<LogRecord>, prost::DecodeError> {
    let request = ExportLogsServiceRequest::decode(body)?;
    let mut records = Vec::new();
    for resource_logs in request.resource_logs {
        let service = service_name(resource_logs.resource.as_ref());
        for scope_logs in resource_logs.scope_logs {
            for record in scope_logs.log_records {
                let id = |bytes: &[u8]| (!bytes.is_empty() && bytes.iter().any(|b| *b != 0)).then(|| hex(bytes));
                records.push(LogRecord {
                    service: service.clone(),
                    trace_id: id(&record.trace_id),
                    span_id: id(&record.span_id),
                    time_unix_nanos: if record.time_unix_nano > 0 {
                        record.time_unix_nano
                    } else {
                        record.observed_time_unix_nano
                    },
                    severity_number: record.severity_number,
                    severity_text: record.severity_text,
                    body: match record.body.and_then(|body| body.value) {
                        Some(Value::StringValue(text)) => text,
                        Some(other) => format!("{other:?}"),
                        None => String::new(),
                    },
                    event_name: record.event_name,
                    attributes: attributes(&record.attributes),
                });
            }
        }
    }
    Ok(records)
}
