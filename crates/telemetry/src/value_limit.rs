//! The SDK's attribute value length limit, as a second line behind the caps on what is copied from requests.
//!
//! The suite caps what it copies from a request before a span is made (see
//! [`crate::untrusted`]); this limit catches whatever a later change forgets.
//! opentelemetry_sdk 0.32's `SpanLimits` has no value length, so the limit is
//! applied here as each span ends, with the specification's variables:
//! `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`
//! (SDK environment variables, "Attribute Limits"). Strings and the strings of
//! string arrays longer than the limit are truncated at a character boundary,
//! as the specification's attribute limits say; other values are kept whole.
//!
//! Like the baggage processor, it wraps the batch processor, so that the SDK
//! sees one processor and moves each ended span once.

use std::time::Duration;

use opentelemetry::{Array, Context, StringValue, Value};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanProcessor},
};

const OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: &str = "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT";
const OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: &str = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT";
/// The suite's default (the specification's is no limit): four times the
/// longest value it copies from a request on purpose (512, a URL's path).
pub const DEFAULT_VALUE_LENGTH_LIMIT: usize = 2_048;

/// Truncates long string attribute values of each ended span, then hands it to `inner`.
#[derive(Debug)]
pub struct ValueLengthLimit<P> {
    limit: usize,
    inner: P,
}

impl<P: SpanProcessor> ValueLengthLimit<P> {
    pub fn new(limit: usize, inner: P) -> Self {
        Self { limit, inner }
    }

    /// The limit from the environment, else [`DEFAULT_VALUE_LENGTH_LIMIT`].
    pub fn from_env(inner: P) -> Self {
        let limit = [
            OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT,
            OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT,
        ]
        .into_iter()
        .find_map(|var| std::env::var(var).ok()?.trim().parse().ok())
        .unwrap_or(DEFAULT_VALUE_LENGTH_LIMIT);
        Self::new(limit, inner)
    }
}

impl<P: SpanProcessor> SpanProcessor for ValueLengthLimit<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        for attribute in &mut span.attributes {
            truncate(&mut attribute.value, self.limit);
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

fn truncate(value: &mut Value, limit: usize) {
    match value {
        Value::String(text) if text.as_str().len() > limit => {
            *text = StringValue::from(crate::untrusted::capped(text.as_str(), limit).to_owned());
        }
        Value::Array(Array::String(texts)) => {
            for text in texts.iter_mut().filter(|text| text.as_str().len() > limit) {
                *text = StringValue::from(crate::untrusted::capped(text.as_str(), limit).to_owned());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;

    use super::*;

    #[test]
    fn long_strings_are_cut_at_a_character_boundary_and_the_rest_kept() {
        let mut attributes = vec![
            KeyValue::new("url.query", "é".repeat(10)),
            KeyValue::new("short", "ok"),
            KeyValue::new("http.response.status_code", 200_i64),
            KeyValue::new(
                "http.request.header.x-request-id",
                Value::Array(Array::String(vec!["a".repeat(9).into(), "b".into()])),
            ),
        ];
        for attribute in &mut attributes {
            truncate(&mut attribute.value, 5);
        }
        assert_eq!(attributes[0].value.as_str(), "éé", "5 bytes hold two 2-byte characters");
        assert_eq!(attributes[1].value.as_str(), "ok");
        assert_eq!(attributes[2].value, Value::I64(200));
        assert_eq!(
            attributes[3].value,
            Value::Array(Array::String(vec!["aaaaa".into(), "b".into()]))
        );
    }
}
