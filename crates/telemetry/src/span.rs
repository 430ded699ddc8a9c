//! What a handler may add to the span it runs in, without reaching for OpenTelemetry itself.
//!
//! The SERVER, CLIENT, PRODUCER and CONSUMER spans are opened by this crate
//! and the messaging crate; a service only adds what it knows, such as the
//! order the request is about, or marks its span failed.

use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub use opentelemetry::Value;

/// Sets an attribute that is not one of the span's declared `tracing` fields
/// (it still goes to the exported span; nothing happens with the SDK off).
pub fn set_attribute(span: &tracing::Span, key: &'static str, value: impl Into<Value>) {
    span.set_attribute(key, value);
}

/// Marks the span failed: its status becomes `Error` with `description`. For
/// spans that record their outcome themselves (a handler's, the Kafka ones);
/// the caller also records `error.type` where the conventions ask for it.
pub fn mark_error(span: &tracing::Span, description: impl Into<std::borrow::Cow<'static, str>>) {
    span.set_status(opentelemetry::trace::Status::error(description));
}
