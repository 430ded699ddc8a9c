//! Spans out of an OTLP `ExportTraceServiceRequest`.

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{span::SpanKind as ProtoKind, status::StatusCode},
};
use prost::Message as _;

use super::{attributes, hex, service_name};
use crate::{LinkRecord, SpanKind, SpanRecord, SpanStatus};

/// Decodes the body of an OTLP/HTTP `POST /v1/traces` (binary protobuf).
pub fn decode_export_request(body: &[u8]) -> Result<Vec<SpanRecord>, prost::DecodeError> {
    Ok(records(ExportTraceServiceRequest::decode(body)?))
}

/// The spans of a decoded OTLP trace request, flattened; also what Jaeger's
/// OTLP JSON (`/api/v3/traces/{id}`) is read into.
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
                    kind: kind(span.kind),
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

fn kind(kind: i32) -> SpanKind {
    match ProtoKind::try_from(kind) {
        Ok(ProtoKind::Internal) => SpanKind::Internal,
        Ok(ProtoKind::Server) => SpanKind::Server,
        Ok(ProtoKind::Client) => SpanKind::Client,
        Ok(ProtoKind::Producer) => SpanKind::Producer,
        Ok(ProtoKind::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value},
        trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span},
    };

    use super::*;
    use crate::AttributeValue;

    fn string(text: &str) -> AnyValue {
        AnyValue {
            value: Some(Value::StringValue(text.into())),
        }
    }

    #[test]
    fn parents_statuses_links_events_and_attributes_are_flattened() {
        let consumer = Span {
            trace_id: vec![0x0a; 16],
            span_id: vec![0x02; 8],
            parent_span_id: vec![0x01; 8],
            name: "process eshop-topic".into(),
            kind: ProtoKind::Consumer as i32,
            attributes: vec![KeyValue {
                key: "messaging.destination.name".into(),
                value: Some(AnyValue {
                    value: Some(Value::ArrayValue(ArrayValue {
                        values: vec![string("eshop-topic")],
                    })),
                }),
                ..KeyValue::default()
            }],
            status: Some(Status {
                code: StatusCode::Error as i32,
                message: "boom".into(),
            }),
            links: vec![span::Link {
                trace_id: vec![0x0a; 16],
                span_id: vec![0x01; 8],
                ..span::Link::default()
            }],
            events: vec![span::Event {
                name: "retry".into(),
                ..span::Event::default()
            }],
            ..Span::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                // No resource: the service is OTLP's "unknown_service".
                resource: None,
                scope_spans: vec![ScopeSpans {
                    spans: vec![consumer],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };

        let spans = records(request);

        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.trace_id, "0a".repeat(16));
        assert_eq!(span.parent_span_id.as_deref(), Some("0101010101010101"));
        assert_eq!(span.service, "unknown_service");
        assert_eq!(span.kind, SpanKind::Consumer);
        assert_eq!(span.status, SpanStatus::Error("boom".into()));
        assert_eq!(
            span.links,
            vec![LinkRecord {
                trace_id: "0a".repeat(16),
                span_id: "0101010101010101".into(),
            }]
        );
        assert_eq!(span.events, vec!["retry".to_owned()]);
        assert_eq!(
            span.attribute("messaging.destination.name"),
            Some(&AttributeValue::Array(vec![AttributeValue::String(
                "eshop-topic".into()
            )]))
        );
    }

    #[test]
    fn a_body_that_is_not_a_request_is_an_error() {
        assert!(decode_export_request(b"\xff\xff\xff").is_err());
    }
}
