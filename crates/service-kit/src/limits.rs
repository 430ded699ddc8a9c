//! What one request may take of a server: header bytes (431), a place among the requests in flight (503), and time (504).
//!
//! Each refusal is a problem+json answer. The header check runs before the
//! SERVER span is made, so that nothing of an oversized request is copied into
//! telemetry; the other two run inside it and show in the trace.
//!
//! The status codes tell a mesh what it may retry. A 503 is only answered
//! before the request did anything (no slot free): Envoy's default retry
//! policy retries 503, and that retry is safe. A request that ran out of time
//! may have done its work, so it is answered 504, which Istio does not retry
//! by default; a client retries it with the same `Idempotency-Key`.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse as _, Response},
};
use tokio::sync::Semaphore;

use crate::{
    Problem,
    config::{ConfigError, env_count, env_millis, env_or},
};

/// How long a request may run before it is answered 504. Above the longest
/// checkout (see docs/guarantees.md, "The longest checkout, and the grace
/// period it needs").
pub const REQUEST_TIMEOUT_MS: &str = "REQUEST_TIMEOUT_MS";
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests served at once; one more is answered 503 with `Retry-After`
/// instead of queueing, so an overload sheds load rather than piling it up.
pub const MAX_CONCURRENT_REQUESTS: &str = "MAX_CONCURRENT_REQUESTS";
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;
/// Total bytes of header names and values a request may carry (431 above).
/// Envoy's own limit is 60 KiB (`max_request_headers_kb`); the suite's
/// requests carry well under 2 KiB, trace context and baggage included.
pub const MAX_REQUEST_HEADER_BYTES: &str = "MAX_REQUEST_HEADER_BYTES";
pub const DEFAULT_MAX_REQUEST_HEADER_BYTES: usize = 16 * 1024;

/// The limits a server enforces on every request but the health probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub max_header_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_header_bytes: DEFAULT_MAX_REQUEST_HEADER_BYTES,
        }
    }
}

impl ServerLimits {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            request_timeout: env_millis(REQUEST_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT)?,
            max_concurrent_requests: env_count(MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_CONCURRENT_REQUESTS)?,
            max_header_bytes: env_or(MAX_REQUEST_HEADER_BYTES, DEFAULT_MAX_REQUEST_HEADER_BYTES)?,
        })
    }
}

#[derive(Debug)]
pub(crate) struct Enforcer {
    limits: ServerLimits,
    slots: Arc<Semaphore>,
}

impl Enforcer {
    pub(crate) fn new(limits: ServerLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
        })
    }
}

/// The outer middleware, in front of the SERVER span: a request whose headers
/// are too large is answered 431 before anything is made of them.
pub(crate) async fn refuse_large_headers(State(limits): State<ServerLimits>, request: Request, next: Next) -> Response {
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "The request's headers are too large",
            format!("{header_bytes} bytes of headers; at most {}", limits.max_header_bytes),
        )
        .into_response();
    }
    next.run(request).await
}

/// The inner middleware: takes a slot, and bounds the time.
pub(crate) async fn enforce(State(enforcer): State<Arc<Enforcer>>, request: Request, next: Next) -> Response {
    let limits = &enforcer.limits;
    let Ok(_slot) = enforcer.slots.clone().try_acquire_owned() else {
        let mut response = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "Too many requests in flight",
            format!(
                "{} requests are being served; try again",
                limits.max_concurrent_requests
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        // 504, not 503: the work may have been done (see the module's doc).
        Err(_) => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "request-timeout",
            "The request took too long",
            format!("no answer within {:?}", limits.request_timeout),
        )
        .into_response(),
    }
}
