//! `x-request-id`: copied from every inbound request onto every outbound call and Kafka record.
//!
//! Istio lists it among the headers an application must forward, and Envoy
//! needs it whatever the OpenTelemetry SDK does, so it is not kept in the
//! OpenTelemetry [`Context`](opentelemetry::Context) (which does not exist when
//! `OTEL_SDK_DISABLED=true`) but in the `tracing` span it arrived with. Every
//! span below finds it by walking up its parents (two or three in this suite),
//! and gets it as the header value it will be sent as: forwarding it copies
//! nothing.

use http::HeaderValue;
use tracing::Span;

/// The header Envoy creates at the edge and that every hop must forward.
pub const X_REQUEST_ID: &str = "x-request-id";
/// [`X_REQUEST_ID`] as a header name, parsed once.
pub const X_REQUEST_ID_HEADER: http::HeaderName = http::HeaderName::from_static(X_REQUEST_ID);

#[derive(Debug, Clone)]
struct RequestId(HeaderValue);

/// Remembers `id` as the request id of `span` and everything below it.
///
/// Capped: it is forwarded on every call and copied into every SERVER span.
/// An id that is not a valid header value (a Kafka header may carry any
/// bytes) is not remembered: it could not be forwarded.
/// The server middleware calls it for HTTP; the Kafka consumer for the id a record carried.
pub fn remember(span: &Span, id: &str) {
    let id = crate::untrusted::capped(id.trim(), crate::untrusted::MAX_REQUEST_ID);
    if id.is_empty() {
        return;
    }
    let Ok(id) = HeaderValue::from_str(id) else { return };
    crate::with_registry_span(span, |span| span.extensions_mut().replace(RequestId(id)));
}

/// The request id `span` (or its nearest ancestor) was remembered with; a
/// clone of a [`HeaderValue`] shares its bytes.
pub fn of(span: &Span) -> Option<HeaderValue> {
    crate::with_registry_span(span, |span| {
        span.scope()
            .find_map(|span| span.extensions().get::<RequestId>().map(|id| id.0.clone()))
    })
    .flatten()
}

/// The request id of the span the caller is in.
pub fn current() -> Option<HeaderValue> {
    of(&Span::current())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn children_find_the_id_of_their_request() {
        let subscriber = tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new());
        tracing::subscriber::with_default(subscriber, || {
            let server = tracing::info_span!("server");
            remember(&server, " req-1 ");
            let child = server.in_scope(|| tracing::info_span!("client"));
            assert_eq!(of(&child), Some(HeaderValue::from_static("req-1")));
            assert_eq!(of(&tracing::info_span!("unrelated")), None);
        });
    }

    #[test]
    fn an_oversized_request_id_is_capped_before_it_is_forwarded() {
        let subscriber = tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new());
        tracing::subscriber::with_default(subscriber, || {
            let server = tracing::info_span!("server");
            remember(&server, &"r".repeat(10_000));
            assert_eq!(of(&server).map(|id| id.len()), Some(crate::untrusted::MAX_REQUEST_ID));
        });
    }

    #[test]
    fn an_id_that_cannot_be_a_header_is_not_remembered() {
        let subscriber = tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new());
        tracing::subscriber::with_default(subscriber, || {
            let consumer = tracing::info_span!("consumer");
            remember(&consumer, "req-1\r\nx-evil: 1");
            assert_eq!(of(&consumer), None);
        });
    }
}
