//! Starting a service binary, the same steps for every service: its own
//! healthcheck, configuration, telemetry, binding, serving until a signal,
//! finishing its work, flushing telemetry.
//!
//! [`ServiceApp::serve`] is the part a test runs in-process, so tests serve
//! an app exactly as the binary does.

use std::{fmt, future::Future, io, pin::Pin};

use axum::Router;
use tokio::net::TcpListener;

use crate::{
    config::{ConfigError, Listen},
    healthcheck,
    serve::{bind, serve, shutdown_signal},
};

/// What the launcher needs of a service's configuration.
pub trait ServiceConfig {
    /// Where the service listens.
    fn listen(&self) -> Listen;
}

type Finish = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A service ready to serve: its router and the work it still has to finish
/// once it stopped serving.
pub struct ServiceApp {
    router: Router,
    finish: Option<Finish>,
}

impl fmt::Debug for ServiceApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceApp")
            .field("finishes", &self.finish.is_some())
            .finish_non_exhaustive()
    }
}

impl ServiceApp {
    pub fn new(router: Router) -> Self {
        Self { router, finish: None }
    }

    /// Work awaited after serving stopped and the requests in flight were
    /// answered, e.g. background tasks to wait for and queues to flush.
    #[must_use]
    pub fn finishing_with(mut self, finish: impl Future<Output = ()> + Send + 'static) -> Self {
        self.finish = Some(Box::pin(finish));
        self
    }

    /// Serves on `listener` until `shutdown` completes, lets the requests in
    /// flight finish, then does the finishing work: what a binary's main runs
    /// (through [`launch`]) and what tests run in-process.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        serve(listener, self.router, shutdown).await?;
        if let Some(finish) = self.finish {
            finish.await;
        }
        Ok(())
    }
}

impl From<Router> for ServiceApp {
    fn from(router: Router) -> Self {
        Self::new(router)
    }
}

/// The first steps of every service binary: answers `<binary> healthcheck`
/// (and exits), reads the configuration, then starts telemetry under
/// `service_name` (unless `OTEL_SERVICE_NAME` says otherwise). Keep the guard
/// until the end of `main`: dropping it flushes what telemetry still holds.
pub fn prepare<C>(
    service_name: &str,
    read_config: impl FnOnce() -> Result<C, ConfigError>,
) -> anyhow::Result<(C, telemetry::TelemetryGuard)> {
    healthcheck::run_if_requested();
    let config = read_config()?;
    let telemetry = telemetry::init(service_name)?;
    Ok((config, telemetry))
}

/// A whole HTTP service binary: [`prepare`], build the app from the
/// configuration, bind, serve until Ctrl-C or SIGTERM, finish, flush.
pub async fn launch<C, A>(
    service_name: &str,
    read_config: impl FnOnce() -> Result<C, ConfigError>,
    build: impl FnOnce(&C) -> anyhow::Result<A>,
) -> anyhow::Result<()>
where
    C: ServiceConfig,
    A: Into<ServiceApp>,
{
    let (config, telemetry) = prepare(service_name, read_config)?;
    let app = build(&config)?.into();
    let listener = bind(config.listen()).await?;
    app.serve(listener, shutdown_signal()).await?;
    // Last, so that the finishing work's spans and logs are exported too.
    drop(telemetry);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{
        net::SocketAddr,
        sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        },
    };

    use super::*;
    use crate::{Readiness, health, healthcheck::check};

    async fn ready(addr: SocketAddr) -> Result<(), String> {
        tokio::task::spawn_blocking(move || check(addr)).await.expect("join")
    }

    #[tokio::test]
    async fn an_app_finishes_its_work_only_after_it_stopped_serving() {
        let finished = Arc::new(AtomicBool::new(false));
        let app = ServiceApp::new(health::routes(Readiness::ready())).finishing_with({
            let finished = finished.clone();
            async move {
                // Work that takes a while: work left running detached would
                // not be done by the time `serve` returned.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                finished.store(true, Ordering::SeqCst);
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));

        assert_eq!(ready(addr).await, Ok(()));
        assert!(!finished.load(Ordering::SeqCst), "finished while serving");
        stop.send(()).expect("still serving");
        serving.await.expect("join").expect("serve");
        assert!(finished.load(Ordering::SeqCst), "serve returned before finishing");
        assert!(ready(addr).await.is_err(), "still serving after shutdown");
    }
}
