//! Marking a PRODUCER or CONSUMER span failed: `error.type` on the span and on its metric, and the span's status.

use telemetry::{
    metrics::{self, KeyValue},
    semconv::attribute,
};
use tracing::Span;

/// Marks `span` (opened by this crate) as failed: `error_type` is a short,
/// low-cardinality name such as `kafka_error`; `message` is the status description.
pub fn record_error(span: &Span, error_type: &str, message: &dyn std::fmt::Display) {
    span.record("error.type", error_type);
    telemetry::span::mark_error(span, message.to_string());
    metrics::add_close_attribute(span, KeyValue::new(attribute::ERROR_TYPE, error_type.to_owned()));
}
