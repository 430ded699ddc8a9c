//! The server side: one SERVER span per inbound HTTP request, continuing the caller's trace.
//!
//! [`trace_request`] is an axum middleware. Apply it with `Router::layer` so that
//! it runs after routing and can name the span after the matched route
//! (`POST /createOrder`), as the HTTP semantic conventions ask. It also records
//! `http.server.request.duration`, with the SERVER span as the exemplar.
//!
//! # Example
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use axum::{Router, middleware, routing::post};
//!
//! async fn create_order() -> &'static str {
//!     "created"
//! }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // Once per process: the SDK and the global propagator the caller's headers are read with.
//! let _guard = telemetry::init("eshop")?;
//! let app = Router::new()
//!     .route("/createOrder", post(create_order))
//!     // `layer`, after the routes: it then sees the matched route and names
//!     // the span `POST /createOrder`.
//!     .layer(middleware::from_fn(telemetry::server::trace_request));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! // With the peer's address, `client.address` falls back to it without `x-forwarded-for`.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(())
//! # }
//! ```

use std::{net::SocketAddr, time::Instant};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use http::{HeaderMap, HeaderName, HeaderValue, header};
use opentelemetry::{KeyValue, Value};
use tracing::{Instrument as _, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    hex::hex_into,
    propagation, request_id,
    request_id::X_REQUEST_ID_HEADER,
    semconv::{self, attribute},
    untrusted::{MAX_COPIED_HEADER, MAX_COPIED_URL_PART, capped},
};

/// `http.request.header.x-request-id`: header attributes are string arrays,
/// one element per header value, in the HTTP conventions.
const REQUEST_ID_ATTRIBUTE: &str = "http.request.header.x-request-id";
/// At most this many `x-request-id` values go into that attribute (one is usual).
const MAX_REQUEST_ID_VALUES: usize = 4;

/// The W3C Trace Context Level 2 response header naming the trace a request landed in.
pub const TRACERESPONSE: &str = "traceresponse";
/// [`TRACERESPONSE`] as a header name, parsed once rather than on every response.
const TRACERESPONSE_HEADER: HeaderName = HeaderName::from_static(TRACERESPONSE);

/// Opens the SERVER span of one request, runs the rest of the stack inside it,
/// then records the response status and answers with a `traceresponse` header.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let span = server_span(&request);
    // Fails only when tracing is off (OTEL_SDK_DISABLED), where there is no parent to set.
    let _ = span.set_parent(propagation::extract_http(request.headers()));
    // Capped, in length and in number: the caller controls them.
    let request_ids: Vec<&str> = request
        .headers()
        .get_all(&X_REQUEST_ID_HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(|id| crate::untrusted::capped(id, crate::untrusted::MAX_REQUEST_ID))
        .take(MAX_REQUEST_ID_VALUES)
        .collect();
    if let Some(first) = request_ids.first() {
        // Forwarded whatever the SDK does: Envoy needs it on every outbound call.
        request_id::remember(&span, first);
        let values = request_ids.iter().map(|id| (*id).to_owned().into()).collect();
        span.set_attribute(REQUEST_ID_ATTRIBUTE, Value::Array(opentelemetry::Array::String(values)));
    }
    let method = semconv::method(request.method());
    let protocol_version = semconv::protocol_version(request.version());
    let route = request.extensions().get::<MatchedPath>().cloned();

    let mut response = next.run(request).instrument(span.clone()).await;

    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    // For SERVER spans only 5xx are errors: a 4xx is the caller's mistake.
    let error = status.is_server_error();
    if error {
        span.record("otel.status_code", "error");
        span.record("error.type", status.as_str());
    }
    let span_context = crate::span_context(&span);
    if let Some(value) = traceresponse(&span_context) {
        response.headers_mut().insert(TRACERESPONSE_HEADER, value);
    }
    if let Some(instruments) = crate::metrics::instruments() {
        let mut attributes = Vec::with_capacity(6);
        attributes.extend([
            KeyValue::new(attribute::HTTP_REQUEST_METHOD, method),
            KeyValue::new(attribute::URL_SCHEME, "http"),
            KeyValue::new(attribute::HTTP_RESPONSE_STATUS_CODE, i64::from(status.as_u16())),
        ]);
        if let Some(version) = protocol_version {
            attributes.push(KeyValue::new(attribute::NETWORK_PROTOCOL_VERSION, version));
        }
        if let Some(route) = route {
            attributes.push(KeyValue::new(attribute::HTTP_ROUTE, route.as_str().to_owned()));
        }
        if error {
            attributes.push(KeyValue::new(attribute::ERROR_TYPE, status.as_str().to_owned()));
        }
        instruments
            .http_server_duration
            .record(start.elapsed().as_secs_f64(), &attributes, Some(&span_context));
    }
    response
}

fn server_span(request: &Request) -> Span {
    let method = request.method();
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    // `{method} {http.route}`, with `HTTP` for a method the conventions do not know.
    let name = semconv::span_name(method, route.unwrap_or_default());
    let (server_address, server_port) = host_and_port(request.headers());
    // Integers are passed as i64: tracing-opentelemetry records other integer
    // types as strings, and the conventions want ints.
    tracing::info_span!(
        "HTTP request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = semconv::method(method),
        http.request.method_original = semconv::method_original(method),
        http.route = route,
        http.response.status_code = Empty,
        url.path = capped(request.uri().path(), MAX_COPIED_URL_PART),
        url.query = request.uri().query().map(|query| capped(query, MAX_COPIED_URL_PART)),
        url.scheme = "http",
        server.address = server_address,
        server.port = server_port.map(i64::from),
        client.address = client_address(request),
        user_agent.original = header_str(request.headers(), header::USER_AGENT.as_str()),
        error.type = Empty,
    )
}

/// The original client: the first `x-forwarded-for` hop when a proxy (an Envoy
/// sidecar, the ingress gateway) put one there, otherwise the TCP peer.
fn client_address(request: &Request) -> Option<String> {
    header_str(request.headers(), "x-forwarded-for")
        .and_then(|hops| hops.split(',').next())
        .map(|hop| capped(hop.trim(), MAX_COPIED_HEADER).to_owned())
        .filter(|hop| !hop.is_empty())
        .or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip().to_string())
        })
}

fn host_and_port(headers: &HeaderMap) -> (Option<&str>, Option<u16>) {
    let Some(host) = header_str(headers, header::HOST.as_str()) else {
        return (None, None);
    };
    match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => match port.parse() {
            Ok(port) => (Some(name), Some(port)),
            Err(_) => (Some(host), None),
        },
        _ => (Some(host), None),
    }
}

/// A header's value as copied into the span: text only, and capped.
fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(|value| capped(value, MAX_COPIED_HEADER))
}

/// `00-{trace id}-{span id}-{flags}`, written straight into its 55 bytes: it
/// goes on every response (see [`crate::hex`]).
fn traceresponse(span_context: &opentelemetry::trace::SpanContext) -> Option<HeaderValue> {
    if !span_context.is_valid() {
        return None;
    }
    let mut value = [b'-'; 55];
    value[..2].copy_from_slice(b"00");
    hex_into(&span_context.trace_id().to_bytes(), &mut value[3..35]);
    hex_into(&span_context.span_id().to_bytes(), &mut value[36..52]);
    hex_into(&[span_context.trace_flags().to_u8()], &mut value[53..55]);
    HeaderValue::from_bytes(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).expect("valid"));
        headers
    }

    #[test]
    fn traceresponse_is_version_trace_span_and_flags_in_lowercase_hex() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        let span_context = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        assert_eq!(
            traceresponse(&span_context).expect("valid"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(traceresponse(&SpanContext::empty_context()), None);
    }

    #[test]
    fn host_header_is_split_into_address_and_port() {
        assert_eq!(host_and_port(&headers("eshop:8080")), (Some("eshop"), Some(8080)));
        assert_eq!(host_and_port(&headers("eshop")), (Some("eshop"), None));
        assert_eq!(host_and_port(&headers("[::1]:80")), (Some("[::1]"), Some(80)));
        assert_eq!(host_and_port(&HeaderMap::new()), (None, None));
    }
}
