//! An OTLP/HTTP receiver of the suite's own: it decodes the real
//! `ExportTraceServiceRequest`, `ExportMetricsServiceRequest` and
//! `ExportLogsServiceRequest` protobufs that the services' exporters send,
//! keeps what they carry, and draws traces as indented trees with their logs.
//!
//! The tests start one in-process and assert on what it received; `make run`
//! starts the `otlp-sink` binary so a trace can be seen without Jaeger.

mod log;
mod metric;
mod receiver;
mod records;
mod span;
mod store;
pub mod tree;

pub use log::{LogRecord, decode_logs_request};
pub use metric::{MetricKind, MetricPoint, decode_metrics_request};
pub use receiver::{Receiver, Stores, router};
pub use records::Records;
pub use span::{AttributeValue, LinkRecord, SpanKind, SpanRecord, SpanStatus, decode_export_request, records};
pub use store::{SpanStore, WaitTimedOut};
