//! Liveness and readiness probes (`/healthz`, `/readyz`), kept out of the traces.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{Router, http::StatusCode, routing::get};

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";

/// Whether the service can take work: an HTTP service is ready once it serves,
/// the Kafka consumer once it has partitions assigned.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn ready() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    pub fn not_ready() -> Self {
        Self::default()
    }

    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// `/healthz` answers while the process runs; `/readyz` while it is ready.
pub fn routes(readiness: Readiness) -> Router {
    Router::new().route(HEALTHZ, get(|| async { "ok" })).route(
        READYZ,
        get(move || {
            let ready = readiness.is_ready();
            async move {
                if ready {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }
        }),
    )
}
