//! The log signal: the OTLP log exporter and provider, and the filters of the stdout and OTLP log layers.

use super::{
    TelemetryError,
    log_filter::LogFilter,
    otlp::{self, Protocol},
};
use crate::tls::Signal;
use opentelemetry_otlp::{LogExporter, WithHttpConfig as _};
use opentelemetry_sdk::{Resource, logs::SdkLoggerProvider};

/// The logs-only form of `OTEL_EXPORTER_OTLP_PROTOCOL`, which it overrides.
const OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL";
/// `otlp` (the default) sends log records over OTLP; `none` does not (stdout logging stays).
const OTEL_LOGS_EXPORTER: &str = "OTEL_LOGS_EXPORTER";
/// Filters log lines (not spans), as in `RUST_LOG=info,eshop=debug`.
const RUST_LOG: &str = "RUST_LOG";

/// Whether log records are sent over OTLP.
pub(super) fn exported() -> Result<bool, TelemetryError> {
    Ok(otlp::exporters(OTEL_LOGS_EXPORTER, &["otlp"])?.contains(&"otlp"))
}

/// The OTLP log exporter; reads `OTEL_EXPORTER_OTLP_(LOGS_)ENDPOINT`,
/// TLS adds the CA of `OTEL_EXPORTER_OTLP_(LOGS_)CERTIFICATE` (tls.rs).
fn log_exporter() -> Result<LogExporter, TelemetryError> {
    Ok(match otlp::protocol(OTEL_EXPORTER_OTLP_LOGS_PROTOCOL)? {
        Protocol::HttpProtobuf => match crate::tls::http_client(Signal::Logs)? {
            Some(client) => LogExporter::builder().with_http().with_http_client(client).build()?,
            None => LogExporter::builder().with_http().build()?,
        },
        #[cfg(feature = "grpc")]
        Protocol::Grpc => {
            use opentelemetry_otlp::WithTonicConfig as _;
            match crate::tls::grpc_tls_config(Signal::Logs)? {
                Some(tls) => LogExporter::builder().with_tonic().with_tls_config(tls).build()?,
                None => LogExporter::builder().with_tonic().build()?,
            }
        }
    })
}

/// The provider; its batch processor reads `OTEL_BLRP_*`.
pub(super) fn logger_provider(resource: Resource) -> Result<SdkLoggerProvider, TelemetryError> {
    Ok(SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(log_exporter()?)
        .build())
}

/// `RUST_LOG`'s filter for log lines, `info` when unset.
pub(super) fn filter() -> Result<LogFilter, TelemetryError> {
    Ok(match std::env::var(RUST_LOG) {
        Ok(spec) if !spec.trim().is_empty() => LogFilter::parse(&spec)?,
        _ => LogFilter::parse("info")?,
    })
}

/// The OTLP layer's filter: `RUST_LOG`'s, less the SDK's and exporters' own
/// events (targets `opentelemetry*`, matched as a prefix): a warning that
/// records are being dropped must not become one more record in the queue
/// that is full; it still reaches stdout.
pub(super) fn otlp_filter() -> Result<LogFilter, TelemetryError> {
    Ok(filter()?.without("opentelemetry")?)
}
