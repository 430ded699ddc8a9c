//! The client side: a CLIENT span per outbound HTTP call, with the context injected into its headers.
//!
//! [`http_client`] is the only way the services build an HTTP client. Its stack
//! is reqwest-tracing's `TracingMiddleware`, which opens the CLIENT span, runs
//! the call inside it and asks the global propagator (see [`crate::propagation`])
//! to write `traceparent` and the B3 headers, with [`ClientSpans`] as its span
//! backend: the span's name and every semantic-convention field, and
//! `http.client.request.duration` with the CLIENT span as the exemplar. In front
//! of it, [`ForwardRequestId`] copies `x-request-id` (see [`crate::request_id`]).
//!
//! Versions: the OpenTelemetry family stays on 0.32 (tracing-opentelemetry 0.33)
//! because reqwest-tracing 0.7 injects the context only up to OpenTelemetry 0.32
//! (feature `opentelemetry_0_32`). On 0.33 it would open the span but inject
//! nothing, and the suite would inject by hand again. Move the whole family, this
//! feature included, once reqwest-tracing ships an `opentelemetry_0_33` feature.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use telemetry::client::{ResendCount, http_client};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // Once per process: the SDK and the global propagator the client injects through.
//! let _guard = telemetry::init("eshop")?;
//! let client = http_client(Duration::from_secs(5))?;
//!
//! // Called while serving a request, the CLIENT span is a child of its SERVER span
//! // and `billing` receives `traceparent`, the B3 headers and `x-request-id`.
//! let charge = serde_json::json!({ "orderId": "o-1", "amount": 42 });
//! let response = client.post("http://billing:8080/charge").json(&charge).send().await?;
//!
//! if response.status().is_server_error() {
//!     // The second try: its span carries `http.request.resend_count = 1`.
//!     client
//!         .post("http://billing:8080/charge")
//!         .json(&charge)
//!         .with_extension(ResendCount(1))
//!         .send()
//!         .await?;
//! }
//! # Ok(())
//! # }
//! ```

use std::time::{Duration, Instant};

use http::Extensions;
use opentelemetry::KeyValue;
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use reqwest_tracing::{ReqwestOtelSpanBackend, TracingMiddleware};
use tracing::{Span, field::Empty};

use crate::{
    request_id,
    semconv::{self, attribute},
};

/// A client whose every call is traced, carries the trace context and gives up after `timeout`.
pub fn http_client(timeout: Duration) -> Result<ClientWithMiddleware, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()?;
    Ok(ClientBuilder::new(client)
        .with(ForwardRequestId)
        .with(TracingMiddleware::<ClientSpans>::new())
        .build())
}

/// Put on a request (`.with_extension(ResendCount(n))`) that repeats an earlier
/// one, so its CLIENT span carries `http.request.resend_count` and a retry shows
/// in the trace as a retry, not as an unrelated call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResendCount(pub u32);

/// The span backend [`http_client`] gives reqwest-tracing's `TracingMiddleware`.
///
/// Not reqwest-tracing's `reqwest_otel_span!`: it records `server.port` and the
/// status code as strings, the method without `_OTHER`, and no `error.type`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientSpans;

impl ReqwestOtelSpanBackend for ClientSpans {
    fn on_request_start(request: &Request, extensions: &mut Extensions) -> Span {
        let started = Instant::now();
        let span = client_span(request, extensions);
        // Kept until the call ends, where the backend no longer sees the
        // request: on the span, whose extensions are allocated and kept with
        // it, rather than in the request's, which would allocate a map per call.
        if crate::metrics::instruments().is_some() {
            let url = request.url();
            let started = CallStarted {
                at: started,
                method: semconv::method(request.method()),
                server_address: url.host_str().map(str::to_owned),
                server_port: url.port_or_known_default().map(i64::from),
            };
            crate::with_registry_span(&span, |span| span.extensions_mut().insert(started));
        }
        span
    }

    fn on_request_end(span: &Span, outcome: &reqwest_middleware::Result<Response>, _extensions: &mut Extensions) {
        let status = outcome.as_ref().ok().map(Response::status);
        let protocol_version = outcome
            .as_ref()
            .ok()
            .and_then(|response| semconv::protocol_version(response.version()));
        let error_type = match (outcome, status) {
            (_, Some(status)) => {
                span.record("http.response.status_code", i64::from(status.as_u16()));
                // For CLIENT spans every 4xx and 5xx is an error.
                (status.is_client_error() || status.is_server_error()).then(|| status.as_str().to_owned())
            }
            (Err(err), _) => Some(transport_error_type(err).to_owned()),
            (Ok(_), None) => None,
        };
        if let Some(error_type) = &error_type {
            span.record("error.type", error_type.as_str());
            span.record("otel.status_code", "error");
            if let Err(err) = outcome {
                span.record("otel.status_description", tracing::field::display(err));
            }
        }
        if let Some(started) =
            crate::with_registry_span(span, |span| span.extensions_mut().remove::<CallStarted>()).flatten()
            && let Some(instruments) = crate::metrics::instruments()
        {
            let mut attributes = Vec::with_capacity(6);
            attributes.push(KeyValue::new(attribute::HTTP_REQUEST_METHOD, started.method));
            if let Some(version) = protocol_version {
                attributes.push(KeyValue::new(attribute::NETWORK_PROTOCOL_VERSION, version));
            }
            if let Some(address) = started.server_address {
                attributes.push(KeyValue::new(attribute::SERVER_ADDRESS, address));
            }
            if let Some(port) = started.server_port {
                attributes.push(KeyValue::new(attribute::SERVER_PORT, port));
            }
            if let Some(status) = status {
                attributes.push(KeyValue::new(
                    attribute::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(status.as_u16()),
                ));
            }
            if let Some(error_type) = error_type {
                attributes.push(KeyValue::new(attribute::ERROR_TYPE, error_type));
            }
            instruments.http_client_duration.record(
                started.at.elapsed().as_secs_f64(),
                &attributes,
                Some(&crate::span_context(span)),
            );
        }
    }
}

/// What `http.client.request.duration` needs of a call, from its start to its end.
#[derive(Debug, Clone)]
struct CallStarted {
    at: Instant,
    method: &'static str,
    server_address: Option<String>,
    server_port: Option<i64>,
}

/// Copies the `x-request-id` of the request being served onto the call.
///
/// A middleware of its own, not part of [`ClientSpans`]: a span backend sees the
/// request read-only, and the header must go out even with the SDK off, when no
/// propagator writes anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardRequestId;

#[async_trait::async_trait]
impl Middleware for ForwardRequestId {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        forward_request_id(&mut request);
        next.run(request, extensions).await
    }
}

/// [`ForwardRequestId`] then reqwest-tracing's `TracingMiddleware` with
/// [`ClientSpans`], as one middleware: what [`http_client`] installs, for a
/// stack built by hand.
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
        forward_request_id(&mut request);
        TracingMiddleware::<ClientSpans>::new()
            .handle(request, extensions, next)
            .await
    }
}

/// The caller's span, or the nearest span above it, knows the request id: the
/// CLIENT span about to open below it would find the same one.
fn forward_request_id(request: &mut Request) {
    if let Some(id) = request_id::current() {
        request.headers_mut().insert(request_id::X_REQUEST_ID_HEADER, id);
    }
}

/// `{METHOD} {path}` names the span: in this suite the path is a low-cardinality
/// `url.template` (its paths carry no identifiers; the query is not part of it),
/// recorded as such, since the HTTP conventions name a CLIENT span after its
/// template only when the span carries it.
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
        url.full = full_url(url).as_ref(),
        url.template = url.path(),
        error.type = Empty,
    );
    if let Some(ResendCount(count)) = extensions.get::<ResendCount>()
        && *count > 0
    {
        span.record("http.request.resend_count", i64::from(*count));
    }
    span
}

/// `url.full` without credentials: the HTTP conventions ask for a username
/// and password in the URL to be replaced by `REDACTED` (a configured
/// `https://user:secret@billing/` must not end up in every span).
fn full_url(url: &reqwest::Url) -> std::borrow::Cow<'_, str> {
    if url.username().is_empty() && url.password().is_none() {
        return std::borrow::Cow::Borrowed(url.as_str());
    }
    let mut redacted = url.clone();
    // Fails only for URLs that cannot have credentials, which these have.
    let _ = redacted.set_username("REDACTED");
    let _ = redacted.set_password(Some("REDACTED"));
    std::borrow::Cow::Owned(redacted.to_string())
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

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, net::SocketAddr};

    use axum::{Json, Router, extract::Path, http::StatusCode, routing::any};
    use opentelemetry::{
        Value,
        trace::{SpanKind, Status, TracerProvider as _},
    };
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData};
    use tower::ServiceExt as _;
    use tracing::{Instrument as _, subscriber::DefaultGuard};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::ended::Ended;

    #[test]
    fn credentials_in_a_url_are_redacted_in_url_full() {
        let url = reqwest::Url::parse("https://eshop:s3cret@billing:8443/payment?x=1").expect("url");
        assert_eq!(full_url(&url), "https://REDACTED:REDACTED@billing:8443/payment?x=1");
        let plain = reqwest::Url::parse("http://billing:8080/payment").expect("url");
        assert_eq!(full_url(&plain), "http://billing:8080/payment");
    }
    use crate::propagation::{W3C_AND_B3_PROPAGATORS, propagator_from_spec};

    impl Ended {
        fn client_spans(&self) -> Vec<SpanData> {
            let spans = self.0.lock().expect("not poisoned");
            spans
                .iter()
                .filter(|span| span.span_kind == SpanKind::Client)
                .cloned()
                .collect()
        }

        fn one_client_span(&self) -> SpanData {
            let mut spans = self.client_spans();
            assert_eq!(spans.len(), 1, "{spans:#?}");
            spans.remove(0)
        }
    }

    fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    /// This thread's spans go to the SDK, and the global propagator writes W3C and B3.
    fn traced() -> (Ended, DefaultGuard) {
        opentelemetry::global::set_text_map_propagator(propagator_from_spec(W3C_AND_B3_PROPAGATORS).expect("valid"));
        let ended = Ended::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(ended.clone()).build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("client-test")));
        (ended, tracing::subscriber::set_default(subscriber))
    }

    /// Answers with the headers it received, or with `/status/{code}`, or never (`/never`).
    async fn downstream() -> SocketAddr {
        async fn echo(headers: http::HeaderMap) -> Json<HashMap<String, String>> {
            Json(
                headers
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_owned()))
                    .collect(),
            )
        }
        async fn status(Path(code): Path<u16>) -> StatusCode {
            StatusCode::from_u16(code).expect("a status code")
        }
        let app = Router::new()
            .route("/echo", any(echo))
            .route("/status/{code}", any(status))
            .route("/never", any(std::future::pending::<()>));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn a_call_is_a_client_span_whose_context_and_request_id_go_downstream() {
        let (ended, _guard) = traced();
        let addr = downstream().await;
        let client = http_client(Duration::from_secs(10)).expect("client");
        let server = tracing::info_span!("SERVER");
        request_id::remember(&server, "req-7");

        let seen: HashMap<String, String> = async {
            let purge = http::Method::from_bytes(b"PURGE").expect("a token");
            client
                .request(purge, format!("http://{addr}/echo?x=1"))
                .with_extension(ResendCount(2))
                .send()
                .await
                .expect("answered")
                .json()
                .await
                .expect("headers")
        }
        .instrument(server.clone())
        .await;

        let span = ended.one_client_span();
        let server_span_id = crate::span_context(&server).span_id();
        assert_eq!(span.parent_span_id, server_span_id);
        assert_eq!(span.name, "HTTP /echo");
        let trace_id = span.span_context.trace_id();
        let span_id = span.span_context.span_id();
        // Injected inside the CLIENT span, so downstream its child, not the caller's.
        assert_eq!(seen["traceparent"], format!("00-{trace_id}-{span_id}-01"), "{seen:?}");
        assert_eq!(seen["x-b3-traceid"], trace_id.to_string(), "{seen:?}");
        assert_eq!(seen["x-b3-spanid"], span_id.to_string(), "{seen:?}");
        assert_eq!(seen["x-request-id"], "req-7", "{seen:?}");

        let expected = [
            ("http.request.method", Value::from("_OTHER")),
            ("http.request.method_original", Value::from("PURGE")),
            ("server.address", Value::from("127.0.0.1")),
            ("server.port", Value::I64(i64::from(addr.port()))),
            ("url.full", Value::from(format!("http://{addr}/echo?x=1"))),
            ("http.response.status_code", Value::I64(200)),
            ("http.request.resend_count", Value::I64(2)),
        ];
        for (key, value) in expected {
            assert_eq!(attribute(&span, key), Some(&value), "{key}: {:?}", span.attributes);
        }
        assert_eq!(attribute(&span, "error.type"), None, "{:?}", span.attributes);
        assert_eq!(span.status, Status::Unset);
    }

    #[tokio::test]
    async fn failed_calls_carry_error_type_and_an_error_status() {
        let (ended, _guard) = traced();
        let addr = downstream().await;
        let client = http_client(Duration::from_millis(300)).expect("client");
        // A port nothing listens on any more.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("bound")
        };
        for (url, error_type) in [
            (format!("http://{addr}/status/404"), "404"),
            (format!("http://{addr}/status/503"), "503"),
            (format!("http://{addr}/never"), "timeout"),
            (format!("http://{closed}/echo"), "connect"),
        ] {
            let _ = client.get(&url).send().await;
            let span = ended.client_spans().pop().expect("a CLIENT span");
            assert_eq!(
                attribute(&span, "error.type"),
                Some(&Value::from(error_type)),
                "{url}: {:?}",
                span.attributes
            );
            assert!(matches!(span.status, Status::Error { .. }), "{url}: {:?}", span.status);
        }
    }

    #[tokio::test]
    async fn the_duration_histogram_has_the_client_span_as_its_exemplar() {
        crate::metrics::install(crate::metrics::Sinks {
            otlp: false,
            prometheus: true,
        });
        let (ended, _guard) = traced();
        let addr = downstream().await;
        let client = http_client(Duration::from_secs(10)).expect("client");
        client
            .get(format!("http://{addr}/echo"))
            .send()
            .await
            .expect("answered");
        let span = ended.one_client_span();

        let response = crate::metrics::router()
            .oneshot(
                http::Request::get(crate::metrics::METRICS_PATH)
                    .body(axum::body::Body::empty())
                    .expect("a request"),
            )
            .await
            .expect("served");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        let text = String::from_utf8_lossy(&body);
        let exemplar = format!(
            "# {{trace_id=\"{}\",span_id=\"{}\"}}",
            span.span_context.trace_id(),
            span.span_context.span_id()
        );
        let port = format!("server_port=\"{}\"", addr.port());
        assert!(
            text.lines()
                .any(|line| line.starts_with("http_client_request_duration_seconds_bucket")
                    && line.contains(&port)
                    && line.contains(&exemplar)),
            "no bucket of {port} with {exemplar}:\n{text}"
        );
    }
}
