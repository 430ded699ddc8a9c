//! The carriers: propagation fields written into and read back from rdkafka's record headers.
//!
//! A record's headers play the part an HTTP request's headers play: the
//! producer writes its span's context there with the same propagators as HTTP
//! (W3C, B3, baggage) plus `x-request-id`; the consumer reads them back.

use rdkafka::message::{Header, Headers, OwnedHeaders};
use telemetry::{
    propagation::{self, Extractor, Injector},
    request_id,
};
use tracing::Span;

/// Writes propagation fields into rdkafka's owned record headers.
#[derive(Debug)]
pub struct HeaderInjector {
    headers: OwnedHeaders,
}

impl HeaderInjector {
    pub fn new(headers: OwnedHeaders) -> Self {
        Self { headers }
    }

    pub fn into_headers(self) -> OwnedHeaders {
        self.headers
    }
}

impl Injector for HeaderInjector {
    fn set(&mut self, key: &str, value: String) {
        // OwnedHeaders::insert takes the headers by value and hands them back.
        let headers = std::mem::replace(&mut self.headers, OwnedHeaders::new());
        self.headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
}

/// Reads propagation fields from a received record's headers (borrowed or owned).
#[derive(Debug)]
pub struct HeaderExtractor<'a, H>(pub &'a H);

impl<H: Headers> Extractor for HeaderExtractor<'_, H> {
    /// The last header with this key (Kafka allows repeats), compared case-insensitively like HTTP.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|header| header.key.eq_ignore_ascii_case(key))
            .filter_map(|header| header.value.and_then(|value| std::str::from_utf8(value).ok()))
            .last()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|header| header.key).collect()
    }
}

/// Record headers carrying `span`'s context (the trace formats, then
/// `x-request-id`), followed by `extra` in order.
///
/// The request id is written even with the SDK off: Envoy needs it whatever
/// OpenTelemetry does (see `telemetry::request_id`).
pub fn for_span(span: &Span, extra: &[(&str, &[u8])]) -> OwnedHeaders {
    let mut injector = HeaderInjector::new(OwnedHeaders::new());
    propagation::inject_span(span, &mut injector);
    let mut headers = injector.into_headers();
    if let Some(id) = request_id::of(span) {
        headers = headers.insert(Header {
            key: request_id::X_REQUEST_ID,
            value: Some(id.as_bytes()),
        });
    }
    for (key, value) in extra {
        headers = headers.insert(Header {
            key,
            value: Some(*value),
        });
    }
    headers
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn injected_fields_read_back_from_the_headers() {
        let mut injector = HeaderInjector::new(OwnedHeaders::new());
        injector.set(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        );
        injector.set("x-request-id", "req-7".into());
        let headers = injector.into_headers();
        let extractor = HeaderExtractor(&headers);
        assert_eq!(
            extractor.get("traceparent"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        assert_eq!(extractor.get("X-Request-Id"), Some("req-7"));
        assert_eq!(extractor.get("b3"), None);
        assert_eq!(extractor.keys(), vec!["traceparent", "x-request-id"]);
    }

    /// With the SDK off there is no context to write, but the request id the
    /// span was opened under still travels, ahead of the caller's own headers.
    #[test]
    fn the_request_id_travels_with_the_sdk_off() {
        let subscriber = tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new());
        tracing::subscriber::with_default(subscriber, || {
            let server = tracing::info_span!("server");
            request_id::remember(&server, "req-off");
            let send = server.in_scope(|| tracing::info_span!("send"));
            let headers = for_span(&send, &[("dlq.reason", b"rejected".as_slice())]);
            let keys: Vec<_> = headers.iter().map(|header| header.key).collect();
            assert_eq!(keys, ["x-request-id", "dlq.reason"]);
            assert_eq!(HeaderExtractor(&headers).get("x-request-id"), Some("req-off"));
            assert_eq!(HeaderExtractor(&headers).get("dlq.reason"), Some("rejected"));
        });
    }
}
