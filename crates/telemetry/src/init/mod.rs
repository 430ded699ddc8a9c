//! One call per binary: [`init`] builds each signal's provider from the `OTEL_*` variables, wires them into the subscriber and returns the guard that flushes them.
//!
//! One module per signal, each with the one function that builds its exporter:
//! [`traces`], [`metrics`], [`logs`]; [`resource`] names the service and
//! [`otlp`] reads the protocol. [`subscriber`] puts the layers together,
//! with [`log_filter`] reading `RUST_LOG`.

use std::time::Duration;

use opentelemetry_sdk::{logs::SdkLoggerProvider, metrics::SdkMeterProvider, trace::SdkTracerProvider};

use crate::{propagation, sampler};

mod log_filter;
mod logs;
mod metrics;
mod otlp;
mod resource;
mod subscriber;
mod traces;

pub use subscriber::install;
pub use traces::span_processor;

/// `true` switches the SDK off: no spans, metrics or OTLP log records; stdout
/// logs stay, and `x-request-id` is still forwarded.
const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";

/// How long shutdown may spend flushing the last spans.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why telemetry could not be set up. The binary should refuse to start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{var}: unsupported OTLP protocol {value:?} (supported: http/protobuf, grpc)")]
    UnsupportedProtocol { var: &'static str, value: String },
    #[error(transparent)]
    Propagator(#[from] propagation::UnsupportedPropagator),
    #[error(transparent)]
    Sampler(#[from] sampler::UnsupportedSampler),
    #[error("{var}: unsupported exporter {value:?} (supported: {supported})")]
    UnsupportedExporter {
        var: &'static str,
        value: String,
        supported: String,
    },
    #[error("cannot build an OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("OTLP exporter TLS: {0}")]
    Tls(#[from] crate::tls::TlsConfigError),
    #[error("RUST_LOG: {0}")]
    LogFilter(#[from] tracing_subscriber::filter::ParseError),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInitialised(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the providers alive; dropping it (or [`TelemetryGuard::shutdown`])
/// exports the spans, metrics and log records still queued, so a binary that exits loses none.
#[must_use = "dropping the guard shuts tracing down"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    /// The thread writing log lines; dropped last, so the providers' own last
    /// words still reach stdout.
    log_writer: Option<crate::logs::LogWriterGuard>,
}

impl TelemetryGuard {
    /// Flushes and stops the exporter now, reporting a failure on stderr.
    pub fn shutdown(mut self) {
        self.flush_and_stop();
    }

    fn flush_and_stop(&mut self) {
        // The subscriber may already be gone: stderr is the one place left.
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown_with_timeout(SHUTDOWN_FLUSH_TIMEOUT)
        {
            eprintln!("telemetry: flushing spans at shutdown failed: {err}");
        }
        if let Some(provider) = self.meter_provider.take()
            && let Err(err) = provider.shutdown_with_timeout(SHUTDOWN_FLUSH_TIMEOUT)
        {
            eprintln!("telemetry: flushing metrics at shutdown failed: {err}");
        }
        if let Some(provider) = self.logger_provider.take()
            && let Err(err) = provider.shutdown_with_timeout(SHUTDOWN_FLUSH_TIMEOUT)
        {
            eprintln!("telemetry: flushing log records at shutdown failed: {err}");
        }
        if let Some(log_writer) = self.log_writer.take() {
            log_writer.flush();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.flush_and_stop();
    }
}

/// Sets up tracing for a binary whose service name defaults to `default_service_name`.
///
/// Everything else comes from the standard `OTEL_*` variables (endpoint, protocol,
/// sampler, resource attributes, propagators), `RUST_LOG` and `LOG_FORMAT`.
/// Call it once, inside the Tokio runtime (the gRPC exporter needs one).
pub fn init(default_service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(propagation::propagator_from_env()?);

    let service_name = resource::service_name(default_service_name);
    let enabled = !sdk_disabled();
    let resource = resource::resource(&service_name);
    let metric_sinks = if enabled {
        metrics::sinks()?
    } else {
        crate::metrics::Sinks::default()
    };
    let providers = Providers {
        tracer: enabled.then(|| traces::tracer_provider(resource.clone())).transpose()?,
        meter: metric_sinks
            .otlp
            .then(|| metrics::meter_provider(resource.clone()))
            .transpose()?,
        logger: (enabled && logs::exported()?)
            .then(|| logs::logger_provider(resource))
            .transpose()?,
        serve_metrics: metric_sinks.prometheus,
    };
    let (stdout, mut log_writer) = crate::logs::off_the_request_path(std::io::stdout());
    let metered = providers.meter.is_some();
    let mut guard = install(providers, &service_name, stdout)?;
    if metered {
        log_writer.count_dropped();
    }
    guard.log_writer = Some(log_writer);
    Ok(guard)
}

/// The providers [`install`] wires into the subscriber; `None` leaves that signal off.
#[derive(Debug, Default)]
pub struct Providers {
    pub tracer: Option<SdkTracerProvider>,
    pub meter: Option<SdkMeterProvider>,
    pub logger: Option<SdkLoggerProvider>,
    /// Whether the instruments also keep what `GET /metrics` serves
    /// (`prometheus` in `OTEL_METRICS_EXPORTER`).
    pub serve_metrics: bool,
}

fn sdk_disabled() -> bool {
    std::env::var(OTEL_SDK_DISABLED).is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"))
}
