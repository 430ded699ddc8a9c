//! An OTLP/HTTP receiver of the suite's own: it decodes the real
//! `ExportTraceServiceRequest`, `ExportMetricsServiceRequest` and
//! `ExportLogsServiceRequest` protobufs that the services' exporters send,
//! keeps what they carry, and draws traces as indented trees with their logs.
//! Reading and drawing a trace is `trace-model`'s job; this crate receives and stores.
//!
//! The tests start one in-process and assert on what it received; `make run`
//! starts the `otlp-sink` binary so a trace can be seen without Jaeger.

mod metric;
mod receiver;
mod records;
mod store;

pub use metric::{MetricKind, MetricPoint, decode_metrics_request};
pub use receiver::{Receiver, Stores, router};
pub use records::Records;
pub use store::{SpanStore, WaitTimedOut};
