//! Binding, routing conventions and graceful shutdown, the same for every service.

use std::{future::Future, io, net::SocketAddr};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{StatusCode, Uri},
    middleware,
};
use telemetry::semconv::{attribute, eshop};
use tokio::net::TcpListener;

use crate::{Problem, ServerLimits, config::Listen, health, health::Readiness, limits};

/// Request bodies above this are refused with 413: orders are small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Wraps a service's API routes in the suite's conventions: a traced SERVER span
/// per request, the [`ServerLimits`] and a body size limit, problem+json for
/// unknown routes, and the untraced health probes and `GET /metrics`
/// (Prometheus) beside them. Problem types are named under
/// `problem_type_prefix` (see [`crate::problem::set_type_prefix`]).
pub fn service_router(
    api: Router,
    readiness: Readiness,
    limits: ServerLimits,
    problem_type_prefix: &'static str,
) -> Router {
    crate::problem::set_type_prefix(problem_type_prefix);
    api.fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            limits::Enforcer::new(limits),
            limits::enforce,
        ))
        .layer(middleware::from_fn(telemetry::server::trace_request))
        .layer(middleware::from_fn_with_state(limits, limits::refuse_large_headers))
        .merge(health::routes(readiness))
        .merge(telemetry::metrics::router())
}

async fn not_found(uri: Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "No such route",
        format!("nothing is served at {}", uri.path()),
    )
}

/// Binds the listener and logs `listening` with the address actually bound
/// in `server.address` and `server.port` (port 0 picks a free one: the tests
/// read it from this line).
pub async fn bind(listen: Listen) -> io::Result<TcpListener> {
    let listener = TcpListener::bind((listen.host, listen.port)).await?;
    let addr = listener.local_addr()?;
    tracing::info!(
        name: eshop::event::SERVER_LISTENING,
        {
            { attribute::SERVER_ADDRESS } = %addr.ip(),
            { attribute::SERVER_PORT } = i64::from(addr.port()),
        },
        "listening"
    );
    Ok(listener)
}

/// Serves until `shutdown` completes, then stops accepting and lets the
/// requests in flight finish before returning.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!(name: eshop::event::SERVER_STOPPED, "stopped serving");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(
                name: eshop::event::SERVER_SIGNAL_UNAVAILABLE,
                {
                    { attribute::EXCEPTION_MESSAGE } = %err,
                },
                "cannot listen for Ctrl-C"
            );
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(
                    name: eshop::event::SERVER_SIGNAL_UNAVAILABLE,
                    {
                        { attribute::EXCEPTION_MESSAGE } = %err,
                    },
                    "cannot listen for SIGTERM"
                );
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!(name: eshop::event::SERVER_SHUTDOWN_REQUESTED, "shutdown requested");
}
