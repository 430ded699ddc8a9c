//! Liveness and readiness probes (`/healthz`, `/readyz`), kept out of the traces.

use std::{
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use axum::{Router, http::StatusCode, routing::get};

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";

/// Whether the service can take work: an HTTP service is ready once it serves,
/// the Kafka consumer once it has partitions assigned. It may also carry
/// counts an operator should see on the probe (eshop's pending undos).
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    ready: AtomicBool,
    gauges: Vec<(&'static str, Arc<AtomicUsize>)>,
}

impl Readiness {
    pub fn ready() -> Self {
        let readiness = Self::default();
        readiness.set(true);
        readiness
    }

    pub fn not_ready() -> Self {
        Self::default()
    }

    /// Adds a count shown as `name value` on `/readyz`. Call before cloning:
    /// clones made earlier do not see it.
    #[must_use]
    pub fn with_gauge(self, name: &'static str, value: Arc<AtomicUsize>) -> Self {
        let mut gauges = self.0.gauges.clone();
        gauges.push((name, value));
        Self(Arc::new(Inner {
            ready: AtomicBool::new(self.is_ready()),
            gauges,
        }))
    }

    pub fn set(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    fn body(&self) -> String {
        let mut body = String::from(if self.is_ready() { "ready\n" } else { "not ready\n" });
        for (name, value) in &self.0.gauges {
            let _ = writeln!(body, "{name} {}", value.load(Ordering::Relaxed));
        }
        body
    }
}

/// `/healthz` answers while the process runs; `/readyz` while it is ready, with its counts.
pub fn routes(readiness: Readiness) -> Router {
    Router::new().route(HEALTHZ, get(|| async { "ok" })).route(
        READYZ,
        get(move || {
            let status = if readiness.is_ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = readiness.body();
            async move { (status, body) }
        }),
    )
}
