//! The client side: a CLIENT span per outbound HTTP call, with the context injected into its headers.
//!
//! [`http_client`] is the only way the services build an HTTP client. Its
//! [`ClientTracing`] middleware opens the CLIENT span, asks the global
//! propagator (see [`crate::propagation`]) to write `traceparent` and the B3
//! headers, forwards `x-request-id` (see [`crate::request_id`]), and records
//! `http.client.request.duration` with the CLIENT span as the exemplar.

use std::time::{Duration, Instant};

use http::{Extensions, HeaderValue};
use opentelemetry::{KeyValue, trace::TraceContextExt as _};
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use tracing::{Instrument as _, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    propagation, request_id,
    semconv::{self, attribute},
};

/// A client whose every call is traced, carries the trace context and gives up after `timeout`.
pub fn http_client(timeout: Duration) -> Result<ClientWithMiddleware, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()?;
    Ok(ClientBuilder::new(client).with(ClientTracing).build())
}

/// Put on a request (`.with_extension(ResendCount(n))`) that repeats an earlier
/// one, so its CLIENT span carries `http.request.resend_count` and a retry shows
/// in the trace as a retry, not as an unrelated call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResendCount(pub u32);

/// The middleware [`http_client`] installs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientTracing;

#[async_trait::async_trait]
impl Middleware for ClientTracing {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let start = Instant::now();
        let span = client_span(&request, extensions);
        // One context for both: building it from the span is not free.
        let cx = span.context();
        let span_context = cx.span().span_context().clone();
        propagation::inject_http(&cx, request.headers_mut());
        if let Some(id) = request_id::of(&span)
            && let Ok(value) = HeaderValue::try_from(id)
        {
            request.headers_mut().insert(request_id::X_REQUEST_ID_HEADER, value);
        }

        let method = semconv::method(request.method());
        let server_address = request.url().host_str().map(str::to_owned);
        let server_port = request.url().port_or_known_default().map(i64::from);

        let outcome = next.run(request, extensions).instrument(span.clone()).await;

        let error_type = match &outcome {
            Ok(response) => {
                let status = response.status();
                span.record("http.response.status_code", i64::from(status.as_u16()));
                // For CLIENT spans every 4xx and 5xx is an error.
                (status.is_client_error() || status.is_server_error()).then(|| status.as_str().to_owned())
            }
            Err(err) => Some(transport_error_type(err).to_owned()),
        };
        if let Some(error_type) = &error_type {
            span.record("error.type", error_type.as_str());
            span.record("otel.status_code", "error");
            if let Err(err) = &outcome {
                span.record("otel.status_description", tracing::field::display(err));
            }
        }
        if let Some(instruments) = crate::metrics::instruments() {
            let mut attributes = Vec::with_capacity(5);
            attributes.push(KeyValue::new(attribute::HTTP_REQUEST_METHOD, method));
            if let Some(address) = server_address {
                attributes.push(KeyValue::new(attribute::SERVER_ADDRESS, address));
            }
            if let Some(port) = server_port {
                attributes.push(KeyValue::new(attribute::SERVER_PORT, port));
            }
            if let Ok(response) = &outcome {
                attributes.push(KeyValue::new(
                    attribute::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(response.status().as_u16()),
                ));
            }
            if let Some(error_type) = error_type {
                attributes.push(KeyValue::new(attribute::ERROR_TYPE, error_type));
            }
            instruments
                .http_client_duration
                .record(start.elapsed().as_secs_f64(), &attributes, Some(&span_context));
        }
        outcome
    }
}

/// `{METHOD} {path}` names the span: in this suite the path is a low-cardinality
/// `url.template` (its paths carry no identifiers; the query is not part of it).
fn client_span(request: &Request, extensions: &Extensions) -> Span {
    let url = request.url();
    let method = request.method();
    let name = semconv::span_name(method, url.path());
    // Integers are passed as i64: tracing-opentelemetry records other integer
    // types as strings, and the conventions want ints.
    let span = tracing::info_span!(
        "HTTP client request",
        otel.name = name,
        otel.kind = "client",
        otel.status_code = Empty,
        otel.status_description = Empty,
        http.request.method = semconv::method(method),
        http.request.method_original = semconv::method_original(method),
        http.response.status_code = Empty,
        http.request.resend_count = Empty,
        server.address = url.host_str(),
        server.port = url.port_or_known_default().map(i64::from),
        url.full = url.as_str(),
        error.type = Empty,
    );
    if let Some(ResendCount(count)) = extensions.get::<ResendCount>()
        && *count > 0
    {
        span.record("http.request.resend_count", i64::from(*count));
    }
    span
}

/// `error.type` for a call that got no response: a short, low-cardinality name.
fn transport_error_type(err: &reqwest_middleware::Error) -> &'static str {
    match err {
        reqwest_middleware::Error::Reqwest(err) if err.is_timeout() => "timeout",
        reqwest_middleware::Error::Reqwest(err) if err.is_connect() => "connect",
        reqwest_middleware::Error::Reqwest(err) if err.is_body() || err.is_decode() => "body",
        reqwest_middleware::Error::Reqwest(_) => "reqwest::Error",
        reqwest_middleware::Error::Middleware(_) => "middleware",
    }
}
