//! The client side: a CLIENT span per outbound HTTP call, with the context injected into its headers.
//!
//! [`http_client`] is the only way the services build an HTTP client. It wraps
//! reqwest in reqwest-tracing's middleware, which opens the CLIENT span and asks
//! the global propagator (see [`crate::propagation`]) to write `traceparent`, the
//! B3 headers and `x-request-id` into the request.

use std::time::Duration;

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_tracing::{ReqwestOtelSpanBackend, TracingMiddleware, default_on_request_end, reqwest_otel_span};
use tracing::Span;

/// A client whose every call is traced, carries the trace context and gives up after `timeout`.
pub fn http_client(timeout: Duration) -> Result<ClientWithMiddleware, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()?;
    Ok(ClientBuilder::new(client)
        .with(TracingMiddleware::<ClientSpans>::new())
        .build())
}

/// Put on a request (`.with_extension(ResendCount(n))`) that repeats an earlier
/// one, so its CLIENT span carries `http.request.resend_count` and a retry shows
/// in the trace as a retry, not as an unrelated call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResendCount(pub u32);

/// Names CLIENT spans `{METHOD} {path}`, which in this suite is a low-cardinality
/// `url.template` (its paths carry no identifiers), and records the full URL.
#[derive(Debug)]
pub struct ClientSpans;

impl ReqwestOtelSpanBackend for ClientSpans {
    fn on_request_start(request: &reqwest::Request, extensions: &mut http::Extensions) -> Span {
        let name = format!("{} {}", request.method(), request.url().path());
        let span = reqwest_otel_span!(
            name = name,
            request,
            url.full = %request.url(),
            http.request.resend_count = tracing::field::Empty
        );
        if let Some(ResendCount(count)) = extensions.get::<ResendCount>()
            && *count > 0
        {
            span.record("http.request.resend_count", i64::from(*count));
        }
        span
    }

    fn on_request_end(span: &Span, outcome: &reqwest_middleware::Result<reqwest::Response>, _: &mut http::Extensions) {
        default_on_request_end(span, outcome);
        // Recorded again as i64: reqwest-tracing records a u16, which
        // tracing-opentelemetry would export as a string.
        let status = match outcome {
            Ok(response) => Some(response.status()),
            Err(reqwest_middleware::Error::Reqwest(err)) => err.status(),
            Err(reqwest_middleware::Error::Middleware(_)) => None,
        };
        if let Some(status) = status {
            span.record("http.response.status_code", i64::from(status.as_u16()));
        }
    }
}
