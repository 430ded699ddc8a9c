//! The metric signal: the OTLP metric exporter and the provider that pushes to it periodically.

use opentelemetry_otlp::{MetricExporter, WithHttpConfig as _};
use opentelemetry_sdk::{Resource, metrics::SdkMeterProvider};

use super::{
    TelemetryError,
    otlp::{self, Protocol},
};
use crate::{metrics::Sinks, tls::Signal};

/// The metrics-only form of `OTEL_EXPORTER_OTLP_PROTOCOL`, which it overrides.
const OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL";
/// `otlp` (the default) pushes metrics over OTLP every `OTEL_METRIC_EXPORT_INTERVAL`
/// ms; `prometheus` serves them at `GET /metrics`, with exemplars; `otlp,prometheus`
/// does both (each observation then aggregated twice); `none` neither.
const OTEL_METRICS_EXPORTER: &str = "OTEL_METRICS_EXPORTER";

/// Where metrics go, from `OTEL_METRICS_EXPORTER`.
pub(super) fn sinks() -> Result<Sinks, TelemetryError> {
    let named = otlp::exporters(OTEL_METRICS_EXPORTER, &["otlp", "prometheus"])?;
    Ok(Sinks {
        otlp: named.contains(&"otlp"),
        prometheus: named.contains(&"prometheus"),
    })
}

/// The OTLP metric exporter; reads `OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT`,
/// TLS adds the CA of `OTEL_EXPORTER_OTLP_(METRICS_)CERTIFICATE` (tls.rs).
fn metric_exporter() -> Result<MetricExporter, TelemetryError> {
    Ok(match otlp::protocol(OTEL_EXPORTER_OTLP_METRICS_PROTOCOL)? {
        Protocol::HttpProtobuf => match crate::tls::http_client(Signal::Metrics)? {
            Some(client) => MetricExporter::builder().with_http().with_http_client(client).build()?,
            None => MetricExporter::builder().with_http().build()?,
        },
        #[cfg(feature = "grpc")]
        Protocol::Grpc => {
            use opentelemetry_otlp::WithTonicConfig as _;
            match crate::tls::grpc_tls_config(Signal::Metrics)? {
                Some(tls) => MetricExporter::builder().with_tonic().with_tls_config(tls).build()?,
                None => MetricExporter::builder().with_tonic().build()?,
            }
        }
    })
}

/// The provider; its periodic reader reads `OTEL_METRIC_EXPORT_INTERVAL` and `_TIMEOUT`.
pub(super) fn meter_provider(resource: Resource) -> Result<SdkMeterProvider, TelemetryError> {
    Ok(SdkMeterProvider::builder()
        .with_resource(resource)
        .with_periodic_exporter(metric_exporter()?)
        .build())
}
