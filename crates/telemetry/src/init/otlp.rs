//! Which OTLP protocol each signal's exporter speaks, and whether a signal is exported at all.

use super::TelemetryError;

/// `http/protobuf` (the default) or `grpc` (with the `grpc` feature).
const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";

/// The wire an exporter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    HttpProtobuf,
    #[cfg(feature = "grpc")]
    Grpc,
}

/// The protocol for one signal: its own variable (e.g.
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`), else the shared one, else the
/// specification's default `http/protobuf`.
pub(super) fn protocol(signal_var: &'static str) -> Result<Protocol, TelemetryError> {
    for var in [signal_var, OTEL_EXPORTER_OTLP_PROTOCOL] {
        let Ok(value) = std::env::var(var) else { continue };
        return match value.trim() {
            "" => continue,
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            #[cfg(feature = "grpc")]
            "grpc" => Ok(Protocol::Grpc),
            _ => Err(TelemetryError::UnsupportedProtocol { var, value }),
        };
    }
    Ok(Protocol::HttpProtobuf)
}

/// Whether `var` (`OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER`) asks for OTLP
/// export; unset means yes, the specification's default.
pub(super) fn exporter_enabled(var: &'static str, on: &[&str], off: &[&str]) -> Result<bool, TelemetryError> {
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
