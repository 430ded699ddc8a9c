//! The client side: a CLIENT span per outbound HTTP call, with the context injected into its headers.
//!
//! [`http_client`] is the only way the services build an HTTP client. Its
//! [`ClientTracing`] middleware opens the CLIENT span, asks the global
//! propagator (see [`crate::propagation`]) to write `traceparent` and the B3
//! headers, forwards `x-request-id` (see [`crate::request_id`]), and records
//! `http.client.request.duration` with the CLIENT span as the exemplar.

use std::time::{Duration, Instant};

use http::{Extensions, HeaderName, HeaderValue};
use opentelemetry::{KeyValue, propagation::Injector, trace::TraceContextExt as _};
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
        let mut injector = HeaderInjector(request.headers_mut());
        propagation::inject(&cx, &mut injector);
        if let Some(id) = request_id::of(&span) {
            injector.set(request_id::X_REQUEST_ID, id);
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
    let name = format!("{} {}", semconv::span_name_method(method), url.path());
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

/// Writes propagation fields into the outbound request's headers.
struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let name = match known_header(key) {
            Some(name) => name,
            None => match HeaderName::try_from(key) {
                Ok(name) => name,
                Err(_) => return,
            },
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            self.0.insert(name, value);
        }
    }
}

/// The headers the propagators and [`request_id`] write on every call, named
/// without parsing: `HeaderName::try_from` validates and looks the name up
/// each time, a fifth of the injection's cost (callgrind, docs/benchmarks.md).
fn known_header(key: &str) -> Option<HeaderName> {
    const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
    const BAGGAGE: HeaderName = HeaderName::from_static("baggage");
    const B3: HeaderName = HeaderName::from_static("b3");
    const B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
    const B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
    const B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
    const B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");
    Some(match key {
        "traceparent" => TRACEPARENT,
        "tracestate" => TRACESTATE,
        "baggage" => BAGGAGE,
        "b3" => B3,
        "x-b3-traceid" => B3_TRACE_ID,
        "x-b3-spanid" => B3_SPAN_ID,
        "x-b3-sampled" => B3_SAMPLED,
        "x-b3-flags" => B3_FLAGS,
        request_id::X_REQUEST_ID => request_id::X_REQUEST_ID_HEADER,
        _ => return None,
    })
}
