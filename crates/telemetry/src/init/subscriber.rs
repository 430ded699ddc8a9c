//! The subscriber every binary installs: stdout log lines, spans to the tracer, log records over OTLP, metrics on span close.

use tracing_subscriber::{
    Layer as _, filter::LevelFilter, fmt::MakeWriter, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

use super::{Providers, TelemetryError, TelemetryGuard, logs, traces};
use crate::metrics;

/// What [`super::init`] does once it has built the providers from the environment:
/// the subscriber's layers, the global providers and the crate's instruments.
///
/// Public so that the micro-benchmarks measure the very pipeline the services
/// run, with providers and a log writer of their own; services call [`super::init`].
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
        .fmt_fields(crate::logs::NoSpanFields)
        .event_format(crate::logs::EventFormat::new(crate::logs::LogFormat::from_env()))
        .with_filter(logs::filter()?);
    // Log records over OTLP: the same events as stdout, filtered alike.
    let otlp_log_layer = match &logger_provider {
        Some(provider) => Some(crate::logs::otlp_layer(provider).with_filter(logs::otlp_filter()?)),
        None => None,
    };
    let trace_layer = provider.as_ref().map(|provider| traces::layer(provider, service_name));
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
        log_writer: None,
    })
}
