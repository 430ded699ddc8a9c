//! Log records out of an OTLP `ExportLogsServiceRequest`.

use opentelemetry_proto::tonic::{collector::logs::v1::ExportLogsServiceRequest, common::v1::any_value::Value};
use prost::Message as _;

use super::{attributes, hex, service_name};
use crate::LogRecord;

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

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        common::v1::{AnyValue, KeyValue},
        logs::v1::{LogRecord as ProtoLogRecord, ResourceLogs, ScopeLogs},
        resource::v1::Resource,
    };

    use super::*;

    fn request(records: Vec<ProtoLogRecord>) -> Vec<u8> {
        let service_name = KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue("billing".into())),
            }),
            ..KeyValue::default()
        };
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![service_name],
                    ..Resource::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn records_keep_their_span_and_fall_back_to_the_observed_time() {
        let in_span = ProtoLogRecord {
            trace_id: vec![0x0a; 16],
            span_id: vec![0x02; 8],
            observed_time_unix_nano: 7,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(Value::StringValue("payment taken".into())),
            }),
            ..ProtoLogRecord::default()
        };
        // The SDK writes all-zero ids for a record outside any span.
        let outside = ProtoLogRecord {
            trace_id: vec![0; 16],
            span_id: vec![0; 8],
            time_unix_nano: 9,
            observed_time_unix_nano: 7,
            ..ProtoLogRecord::default()
        };

        let records = decode_logs_request(&request(vec![in_span, outside])).expect("a logs request");

        assert_eq!(records[0].service, "billing");
        assert_eq!(records[0].span_id.as_deref(), Some("0202020202020202"));
        assert_eq!(records[0].time_unix_nanos, 7);
        assert_eq!(records[0].body, "payment taken");
        assert_eq!((records[1].trace_id.clone(), records[1].span_id.clone()), (None, None));
        assert_eq!(records[1].time_unix_nanos, 9);
    }
}
