//! One call per binary: exporters, sampler, resource, propagators, metrics and logs, and the guard that flushes them.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{LogExporter, MetricExporter, SpanExporter, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::{
    Resource,
    logs::SdkLoggerProvider,
    metrics::SdkMeterProvider,
    trace::{BatchSpanProcessor, SdkTracerProvider},
};
use tracing::Level;
use tracing_subscriber::{
    EnvFilter, Layer as _,
    filter::{LevelFilter, filter_fn},
    fmt::MakeWriter,
    layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

use crate::{baggage::BaggageSpanProcessor, logs, metrics, propagation, sampler, tls::Signal};

/// `true` switches the SDK off: no spans, metrics or OTLP log records; stdout
/// logs stay, and `x-request-id` is still forwarded.
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// Overrides the service name the binary passes to [`init`].
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// `key=value,...` resource attributes; may also name `service.name`.
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// `http/protobuf` (the default) or `grpc`.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// The traces-only form of [`OTEL_EXPORTER_OTLP_PROTOCOL`], which it overrides.
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// The metrics-only form of [`OTEL_EXPORTER_OTLP_PROTOCOL`], which it overrides.
pub const OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL";
/// The logs-only form of [`OTEL_EXPORTER_OTLP_PROTOCOL`], which it overrides.
pub const OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL";
/// `otlp` (the default) pushes metrics over OTLP every `OTEL_METRIC_EXPORT_INTERVAL`
/// ms; `none` or `prometheus` does not (`GET /metrics` is served either way).
pub const OTEL_METRICS_EXPORTER: &str = "OTEL_METRICS_EXPORTER";
/// `otlp` (the default) sends log records over OTLP; `none` does not (stdout logging stays).
pub const OTEL_LOGS_EXPORTER: &str = "OTEL_LOGS_EXPORTER";
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
    #[error(transparent)]
    Sampler(#[from] sampler::UnsupportedSampler),
    #[error("{var}: unsupported exporter {value:?} (supported: {supported})")]
    UnsupportedExporter {
        var: &'static str,
        value: String,
        supported: &'static str,
    },
    #[error("cannot build an OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("OTLP exporter TLS: {0}")]
    Tls(#[from] crate::tls::TlsConfigError),
    #[error("{RUST_LOG}: {0}")]
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

    let enabled = !sdk_disabled();
    let resource = Resource::builder()
        .with_service_name(service_name(default_service_name))
        .build();
    let provider = if enabled {
        Some(tracer_provider(resource.clone())?)
    } else {
        None
    };
    let meter_provider = if enabled && exporter_enabled(OTEL_METRICS_EXPORTER, &["otlp"], &["none", "prometheus"])? {
        Some(meter_provider(resource.clone())?)
    } else {
        None
    };
    let logger_provider = if enabled && exporter_enabled(OTEL_LOGS_EXPORTER, &["otlp"], &["none"])? {
        Some(logger_provider(resource)?)
    } else {
        None
    };

    install(
        Providers {
            tracer: provider,
            meter: meter_provider,
            logger: logger_provider,
        },
        &service_name(default_service_name),
        std::io::stdout,
    )
}

/// The providers [`install`] wires into the subscriber; `None` leaves that signal off.
#[derive(Debug, Default)]
pub struct Providers {
    pub tracer: Option<SdkTracerProvider>,
    pub meter: Option<SdkMeterProvider>,
    pub logger: Option<SdkLoggerProvider>,
}

/// What [`init`] does once it has built the providers from the environment:
/// the subscriber's layers, the global providers and the crate's instruments.
///
/// Public so that the micro-benchmarks measure the very pipeline the services
/// run, with providers and a log writer of their own; services call [`init`].
#[doc(hidden)]
pub fn install<W>(providers: Providers, service_name: &str, log_writer: W) -> Result<TelemetryGuard, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let Providers {
        tracer: provider,
        meter: meter_provider,
        logger: logger_provider,
    } = providers;
    let enabled = provider.is_some();
    let log_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(log_writer)
        .fmt_fields(logs::NoSpanFields)
        .event_format(logs::EventFormat::new(logs::LogFormat::from_env()))
        .with_filter(log_filter()?);
    // Log records over OTLP: the same events as stdout, filtered alike, less
    // the SDK's own (a warning that records are being dropped must not become
    // one more record in the queue that is full; it still reaches stdout).
    let otlp_log_layer = match &logger_provider {
        Some(provider) => Some(logs::otlp_layer(provider).with_filter(log_filter()?.add_directive(sdk_targets_off()?))),
        None => None,
    };
    // Spans go to the exporter whatever RUST_LOG says: quietening logs must not
    // cut holes in the trace. Library spans below INFO stay out of it, and so
    // do events: each one already goes out as an OTLP log record carrying its
    // span's ids, and tracing-opentelemetry would copy it onto the span as a
    // span event too (2,300 instructions per line, and the bytes exported
    // twice). OpenTelemetry is deprecating the span event API in favour of
    // exactly that, logs correlated with the span (OTEP 4430; "Deprecating Span
    // Events API", opentelemetry.io blog, 2026-03-17).
    let trace_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service_name.to_owned()))
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
            // The hint keeps the subscriber's maximum level at INFO: without it
            // every `debug!` and `trace!` call site in the libraries (and, through
            // tracing-log, every `log` record, rdkafka's included) would be
            // dispatched only to be turned away.
            .with_filter(
                filter_fn(|metadata| metadata.is_span() && *metadata.level() <= Level::INFO)
                    .with_max_level_hint(Level::INFO),
            )
    });
    // With the SDK off, INFO spans must still exist: x-request-id is found
    // through them (see request_id), even when RUST_LOG is quieter than INFO.
    let keep_spans = trace_layer
        .is_none()
        .then(|| tracing_subscriber::layer::Identity::new().with_filter(LevelFilter::INFO));
    tracing_subscriber::registry()
        .with(log_layer)
        .with(trace_layer)
        .with(keep_spans)
        .with(otlp_log_layer)
        // Filtered like the others: a layer with no filter (hence no level
        // hint) would lift the subscriber's maximum level to TRACE.
        .with(enabled.then(|| metrics::CloseLayer.with_filter(LevelFilter::INFO)))
        .try_init()?;

    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    if let Some(provider) = &meter_provider {
        opentelemetry::global::set_meter_provider(provider.clone());
    }
    if enabled {
        // After the meter provider is global, or the instruments would be no-ops.
        metrics::install();
    }
    Ok(TelemetryGuard {
        provider,
        meter_provider,
        logger_provider,
    })
}

fn log_filter() -> Result<EnvFilter, TelemetryError> {
    Ok(match std::env::var(RUST_LOG) {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(spec)?,
        _ => EnvFilter::new("info"),
    })
}

/// `opentelemetry=off`: the SDK's and exporters' own events (targets
/// `opentelemetry`, `opentelemetry_sdk`, `opentelemetry_otlp`, matched as a prefix).
fn sdk_targets_off() -> Result<tracing_subscriber::filter::Directive, TelemetryError> {
    Ok("opentelemetry=off".parse()?)
}

/// Whether `var` asks for OTLP export (unset: yes, the specification's default).
fn exporter_enabled(var: &'static str, on: &[&str], off: &[&str]) -> Result<bool, TelemetryError> {
    let value = std::env::var(var).unwrap_or_default();
    let name = value.trim();
    if name.is_empty() || on.contains(&name) {
        Ok(true)
    } else if off.contains(&name) {
        Ok(false)
    } else {
        Err(TelemetryError::UnsupportedExporter {
            var,
            value,
            supported: if off.contains(&"prometheus") {
                "otlp, none, prometheus"
            } else {
                "otlp, none"
            },
        })
    }
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

// Resource::builder reads OTEL_RESOURCE_ATTRIBUTES; the name is set last so
// that the precedence in service_name holds.
fn tracer_provider(resource: Resource) -> Result<SdkTracerProvider, TelemetryError> {
    // The builders read OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS and _TIMEOUT.
    // TLS: the trusted CA of OTEL_EXPORTER_OTLP_(..._)CERTIFICATE (tls.rs).
    let exporter = match otlp_protocol(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)? {
        Protocol::HttpProtobuf => match crate::tls::http_client(Signal::Traces)? {
            Some(client) => SpanExporter::builder().with_http().with_http_client(client).build()?,
            None => SpanExporter::builder().with_http().build()?,
        },
        Protocol::Grpc => match crate::tls::grpc_tls_config(Signal::Traces)? {
            Some(tls) => SpanExporter::builder().with_tonic().with_tls_config(tls).build()?,
            None => SpanExporter::builder().with_tonic().build()?,
        },
    };
    // The sampler is OTEL_TRACES_SAMPLER/_ARG's, taught B3's deferred and
    // sampling-only states; the batch settings come from OTEL_BSP_*.
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sampler::from_env()?)
        .with_span_processor(span_processor(exporter))
        .build())
}

/// The one span processor: the batch processor (`OTEL_BSP_*`), with the
/// allow-listed baggage copied onto each span as it starts (see [`crate::baggage`]).
#[doc(hidden)]
pub fn span_processor<E: opentelemetry_sdk::trace::SpanExporter + 'static>(
    exporter: E,
) -> BaggageSpanProcessor<BatchSpanProcessor> {
    BaggageSpanProcessor::from_env(BatchSpanProcessor::builder(exporter).build())
}

fn meter_provider(resource: Resource) -> Result<SdkMeterProvider, TelemetryError> {
    // Reads OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT; the periodic reader reads
    // OTEL_METRIC_EXPORT_INTERVAL and _TIMEOUT.
    // TLS: the trusted CA of OTEL_EXPORTER_OTLP_(..._)CERTIFICATE (tls.rs).
    let exporter = match otlp_protocol(OTEL_EXPORTER_OTLP_METRICS_PROTOCOL)? {
        Protocol::HttpProtobuf => match crate::tls::http_client(Signal::Metrics)? {
            Some(client) => MetricExporter::builder().with_http().with_http_client(client).build()?,
            None => MetricExporter::builder().with_http().build()?,
        },
        Protocol::Grpc => match crate::tls::grpc_tls_config(Signal::Metrics)? {
            Some(tls) => MetricExporter::builder().with_tonic().with_tls_config(tls).build()?,
            None => MetricExporter::builder().with_tonic().build()?,
        },
    };
    Ok(SdkMeterProvider::builder()
        .with_resource(resource)
        .with_periodic_exporter(exporter)
        .build())
}

fn logger_provider(resource: Resource) -> Result<SdkLoggerProvider, TelemetryError> {
    // Reads OTEL_EXPORTER_OTLP_(LOGS_)ENDPOINT; the batch processor OTEL_BLRP_*.
    // TLS: the trusted CA of OTEL_EXPORTER_OTLP_(..._)CERTIFICATE (tls.rs).
    let exporter = match otlp_protocol(OTEL_EXPORTER_OTLP_LOGS_PROTOCOL)? {
        Protocol::HttpProtobuf => match crate::tls::http_client(Signal::Logs)? {
            Some(client) => LogExporter::builder().with_http().with_http_client(client).build()?,
            None => LogExporter::builder().with_http().build()?,
        },
        Protocol::Grpc => match crate::tls::grpc_tls_config(Signal::Logs)? {
            Some(tls) => LogExporter::builder().with_tonic().with_tls_config(tls).build()?,
            None => LogExporter::builder().with_tonic().build()?,
        },
    };
    Ok(SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

enum Protocol {
    HttpProtobuf,
    Grpc,
}

/// The protocol for one signal: its own variable, else the shared one.
fn otlp_protocol(signal_var: &'static str) -> Result<Protocol, TelemetryError> {
    for var in [signal_var, OTEL_EXPORTER_OTLP_PROTOCOL] {
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
