//! An OTLP/HTTP trace receiver of the suite's own: it decodes the real
//! `ExportTraceServiceRequest` protobuf that the services' exporters send,
//! keeps the spans, and draws traces as indented trees.
//!
//! The tests start one in-process and assert on what it received; `make run`
//! starts the `otlp-sink` binary so a trace can be seen without Jaeger.

pub mod contract;
mod receiver;
mod span;
mod store;
pub mod tree;

pub use receiver::{Receiver, router};
pub use span::{AttributeValue, LinkRecord, SpanKind, SpanRecord, SpanStatus, decode_export_request, records};
pub use store::{SpanStore, WaitTimedOut};
