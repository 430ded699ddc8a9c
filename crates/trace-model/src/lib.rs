//! The suite's model of a trace: spans and the log records tied to them as plain
//! records, read from OTLP protobuf ([`decode_export_request`],
//! [`decode_logs_request`]) or from Jaeger's JSON ([`jaeger`]), and drawn as
//! indented trees ([`tree`]); all without a server, so whatever checks a trace
//! (the trace contract, verify-trace, the bench) needs no receiver to read one.
//!
//! # Example
//!
//! Decoding the body an OTLP/HTTP exporter posts to `/v1/traces`:
//!
//! ```
//! use opentelemetry_proto::tonic::{
//!     collector::trace::v1::ExportTraceServiceRequest,
//!     common::v1::{AnyValue, KeyValue, any_value::Value},
//!     resource::v1::Resource,
//!     trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind as ProtoKind},
//! };
//! use prost::Message as _;
//! use trace_model::{SpanKind, decode_export_request};
//!
//! let service_name = KeyValue {
//!     key: "service.name".into(),
//!     value: Some(AnyValue { value: Some(Value::StringValue("eshop".into())) }),
//!     ..KeyValue::default()
//! };
//! let span = Span {
//!     trace_id: vec![0x4b; 16],
//!     span_id: vec![0xf9; 8],
//!     name: "GET /checkout".into(),
//!     kind: ProtoKind::Server as i32,
//!     start_time_unix_nano: 1_000,
//!     end_time_unix_nano: 3_000,
//!     ..Span::default()
//! };
//! let request = ExportTraceServiceRequest {
//!     resource_spans: vec![ResourceSpans {
//!         resource: Some(Resource { attributes: vec![service_name], ..Resource::default() }),
//!         scope_spans: vec![ScopeSpans { spans: vec![span], ..ScopeSpans::default() }],
//!         ..ResourceSpans::default()
//!     }],
//! };
//!
//! let spans = decode_export_request(&request.encode_to_vec())?;
//! assert_eq!(spans.len(), 1);
//! assert_eq!(spans[0].service, "eshop");
//! assert_eq!(spans[0].kind, SpanKind::Server);
//! assert_eq!(spans[0].span_id, "f9f9f9f9f9f9f9f9");
//! assert_eq!(spans[0].parent_span_id, None);
//! assert_eq!(spans[0].duration_nanos(), 2_000);
//! # Ok::<(), prost::DecodeError>(())
//! ```

mod attribute;
pub mod jaeger;
mod log;
pub mod otlp;
mod span;
pub mod tree;

pub use attribute::AttributeValue;
pub use log::LogRecord;
pub use otlp::{decode_export_request, decode_logs_request, records};
pub use span::{LinkRecord, SpanKind, SpanRecord, SpanStatus};
