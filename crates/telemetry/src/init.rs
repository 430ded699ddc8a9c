//! One call per binary: exporter, sampler, resource, propagators and logs, and the guard that flushes them.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::LevelFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

use crate::{logs, propagation};

/// `true` switches the SDK off: no spans are recorded or exported, logs stay.
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// Overrides the service name the binary passes to [`init`].
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// `key=value,...` resource attributes; may also name `service.name`.
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// `http/protobuf` (the default) or `grpc`.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// The traces-only form of [`OTEL_EXPORTER_OTLP_PROTOCOL`], which it overrides.
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// Filters log lines (not spans), as in `RUST_LOG=info,eshop=debug`.
pub const RUST_LOG: &str = "RUST_LOG";

/// How long shutdown may spend flushing the last spans.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why telemetry could not be set up. The binary should refuse to start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{var}: unsupported OTLP protocol {value:?} (supported: http/protobuf, grpc)")]
    UnsupportedProtocol { var: &'static str, value: String },
    #[error(transparent)]
    Propagator(#[from] propagation::UnsupportedPropagator),
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("OTLP exporter TLS: {0}")]
    Tls(#[from] crate::tls::TlsConfigError),
    #[error("{RUST_LOG}: {0}")]
    LogFilter(#[from] tracing_subscriber::filter::ParseError),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInitialised(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the tracer provider alive; dropping it (or [`TelemetryGuard::shutdown`])
/// exports the spans still queued, so a binary that exits loses none.
#[must_use = "dropping the guard shuts tracing down"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops the exporter now, reporting a failure on stderr.
    pub fn shutdown(mut self) {
        self.flush_and_stop();
    }

    fn flush_and_stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown_with_timeout(SHUTDOWN_FLUSH_TIMEOUT)
        {
            // The subscriber may already be gone: stderr is the one place left.
            eprintln!("telemetry: flushing spans at shutdown failed: {err}");
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

    let provider = if sdk_disabled() {
        None
    } else {
        Some(tracer_provider(default_service_name)?)
    };

    let log_filter = match std::env::var(RUST_LOG) {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(spec)?,
        _ => EnvFilter::new("info"),
    };
    let log_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .event_format(logs::EventFormat::new(logs::LogFormat::from_env()))
        .with_filter(log_filter);
    // Spans go to the exporter whatever RUST_LOG says: quietening logs must not
    // cut holes in the trace. Library spans below INFO stay out of it.
    let trace_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service_name(default_service_name)))
            // Keep spans to the semantic conventions: no busy/idle timings,
            // thread or source-location attributes.
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_target(false)
            // Parents come from tracing's own span stack; attaching the OTel
            // context on every poll of an instrumented future as well costs
            // CPU on every await and nothing here reads Context::current().
            .with_context_activation(false)
            .with_filter(LevelFilter::INFO)
    });
    tracing_subscriber::registry()
        .with(log_layer)
        .with(trace_layer)
        .try_init()?;

    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    Ok(TelemetryGuard { provider })
}

fn sdk_disabled() -> bool {
    std::env::var(OTEL_SDK_DISABLED).is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// `OTEL_SERVICE_NAME`, else a `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else the binary's own.
fn service_name(default_service_name: &str) -> String {
    if let Ok(name) = std::env::var(OTEL_SERVICE_NAME)
        && !name.trim().is_empty()
    {
        return name.trim().to_owned();
    }
    std::env::var(OTEL_RESOURCE_ATTRIBUTES)
        .ok()
        .and_then(|attributes| {
            attributes.split(',').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key.trim() == "service.name" && !value.trim().is_empty()).then(|| value.trim().to_owned())
            })
        })
        .unwrap_or_else(|| default_service_name.to_owned())
}

fn tracer_provider(default_service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    // The builders read OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS and _TIMEOUT.
    // TLS: the trusted CA of OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE (tls.rs).
    let exporter = match otlp_protocol()? {
        Protocol::HttpProtobuf => match crate::tls::http_client()? {
            Some(client) => SpanExporter::builder().with_http().with_http_client(client).build()?,
            None => SpanExporter::builder().with_http().build()?,
        },
        Protocol::Grpc => match crate::tls::grpc_tls_config()? {
            Some(tls) => SpanExporter::builder().with_tonic().with_tls_config(tls).build()?,
            None => SpanExporter::builder().with_tonic().build()?,
        },
    };
    // Resource::builder reads OTEL_RESOURCE_ATTRIBUTES; the name is set last so
    // that the precedence above holds.
    let resource = Resource::builder()
        .with_service_name(service_name(default_service_name))
        .build();
    // The sampler comes from OTEL_TRACES_SAMPLER/_ARG (the SDK reads them;
    // unset means parent-based always-on) and the batch settings from OTEL_BSP_*.
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

enum Protocol {
    HttpProtobuf,
    Grpc,
}

fn otlp_protocol() -> Result<Protocol, TelemetryError> {
    for var in [OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL] {
        let Ok(value) = std::env::var(var) else { continue };
        return match value.trim() {
            "" => continue,
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "grpc" => Ok(Protocol::Grpc),
            _ => Err(TelemetryError::UnsupportedProtocol { var, value }),
        };
    }
    Ok(Protocol::HttpProtobuf)
}
