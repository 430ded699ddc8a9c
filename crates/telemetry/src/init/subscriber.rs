//! The subscriber every binary installs: stdout log lines, spans to the tracer, log records over OTLP, metrics on span close.

use opentelemetry_sdk::{logs::SdkLoggerProvider, trace::SdkTracerProvider};
use tracing::{Metadata, Subscriber, subscriber::Interest};
use tracing_subscriber::{
    Layer as _,
    filter::LevelFilter,
    fmt::MakeWriter,
    layer::{Context, Filter, SubscriberExt as _},
    util::SubscriberInitExt as _,
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
        serve_metrics,
    } = providers;
    let enabled = provider.is_some();
    subscriber(
        provider.as_ref(),
        logger_provider.as_ref(),
        service_name,
        log_writer,
        crate::logs::LogFormat::from_env(),
    )?
    .try_init()?;

    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    if let Some(provider) = &meter_provider {
        opentelemetry::global::set_meter_provider(provider.clone());
    }
    if enabled {
        // After the meter provider is global, or the instruments would be no-ops.
        metrics::install(metrics::Sinks {
            otlp: meter_provider.is_some(),
            prometheus: serve_metrics,
        });
    }
    Ok(TelemetryGuard {
        provider,
        meter_provider,
        logger_provider,
        log_writer: None,
    })
}

/// The layers, each behind its own filter (see [`AskEachTime`]).
fn subscriber<W>(
    provider: Option<&SdkTracerProvider>,
    logger_provider: Option<&SdkLoggerProvider>,
    service_name: &str,
    log_writer: W,
    log_format: crate::logs::LogFormat,
) -> Result<impl Subscriber + Send + Sync + 'static, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let log_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(log_writer)
        .fmt_fields(crate::logs::NoSpanFields)
        .event_format(crate::logs::EventFormat::new(log_format))
        .with_filter(AskEachTime(logs::filter()?));
    // Log records over OTLP: the same events as stdout, filtered alike.
    let otlp_log_layer = match logger_provider {
        Some(provider) => Some(crate::logs::otlp_layer(provider).with_filter(AskEachTime(logs::otlp_filter()?))),
        None => None,
    };
    let trace_layer = provider.map(|provider| traces::layer(provider, service_name));
    // With the SDK off, INFO spans must still exist: x-request-id is found
    // through them (see request_id), even when RUST_LOG is quieter than INFO.
    let keep_spans = trace_layer
        .is_none()
        .then(|| tracing_subscriber::layer::Identity::new().with_filter(AskEachTime(LevelFilter::INFO)));
    Ok(tracing_subscriber::registry()
        .with(log_layer)
        .with(trace_layer)
        .with(keep_spans)
        .with(otlp_log_layer)
        // Filtered like the others: a layer with no filter (hence no level
        // hint) would lift the subscriber's maximum level to TRACE.
        .with(
            provider
                .is_some()
                .then(|| metrics::CloseLayer.with_filter(AskEachTime(LevelFilter::INFO))),
        ))
}

/// A per-layer filter whose callsites are never cached as "always enabled".
///
/// tracing-subscriber 0.3.23 hands each per-layer filter's decision from
/// `enabled` to `on_new_span`/`on_event` through a thread-local bitmap. A
/// callsite whose interest is cached as `always` skips `enabled`, so the span
/// reads the bits an earlier, unrelated `enabled` call left (an
/// `event_enabled!`, a `log_enabled!` through tracing-log) and may be dropped
/// from the trace layer without a word: its OpenTelemetry context is empty,
/// its children start traces of their own. tokio-rs/tracing#2519; the fix
/// proposed there (tokio-rs/tracing#3572, open) caps the interest at
/// `sometimes`, which is what this wrapper does, at the cost of one
/// `enabled` call per span and event.
pub(crate) struct AskEachTime<F>(pub(crate) F);

impl<S, F: Filter<S>> Filter<S> for AskEachTime<F> {
    fn enabled(&self, metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        self.0.enabled(metadata, cx)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.0.callsite_enabled(metadata).is_never() {
            Interest::never()
        } else {
            Interest::sometimes()
        }
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, cx: &Context<'_, S>) -> bool {
        self.0.event_enabled(event, cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.0.max_level_hint()
    }

    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, cx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, cx);
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, cx: Context<'_, S>) {
        self.0.on_record(id, values, cx);
    }

    fn on_enter(&self, id: &tracing::span::Id, cx: Context<'_, S>) {
        self.0.on_enter(id, cx);
    }

    fn on_exit(&self, id: &tracing::span::Id, cx: Context<'_, S>) {
        self.0.on_exit(id, cx);
    }

    fn on_close(&self, id: tracing::span::Id, cx: Context<'_, S>) {
        self.0.on_close(id, cx);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::*;
    use crate::logs::LogFormat;

    /// Lines written by the stdout layer, for a test to read.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("not poisoned").clone()).expect("UTF-8")
        }
    }

    /// A JSON line is one object with the line's own members once each; an
    /// event field of the same name does not replace or repeat them. (Which
    /// span a line names is tested with the subscriber installed globally, as
    /// services install it: tests/stdout_lines.rs and eshop's checkout trace.)
    #[test]
    fn a_json_line_keeps_its_own_members_once() {
        let provider = SdkTracerProvider::builder().build();
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = subscriber(
            Some(&provider),
            None,
            "log-test",
            move || writer.clone(),
            LogFormat::Json,
        )
        .expect("the layers");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(order = 7, level = "not the level", note = ?"quoted \"debug\"", "inside");
        });
        let text = lines.text();
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).expect(&text);
        assert_eq!(line["message"], "inside", "{text}");
        assert_eq!(line["order"], 7, "{text}");
        assert_eq!(line["note"], "\"quoted \\\"debug\\\"\"", "{text}");
        assert_eq!(line["level"], "INFO", "{text}");
        assert_eq!(text.matches("\"level\"").count(), 1, "{text}");
        assert!(line["timestamp"].as_str().is_some_and(|at| at.ends_with('Z')), "{text}");
    }

    /// An `enabled` check with nothing dispatched after it (what
    /// `event_enabled!` and tracing-log's `log_enabled!` do) must not cost
    /// the next span its place in the trace.
    #[test]
    fn a_span_after_a_bare_enabled_check_is_still_traced() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            subscriber(Some(&provider), None, "filter-test", std::io::sink, LogFormat::Text).expect("the layers");
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                let _ = tracing::event_enabled!(tracing::Level::INFO);
                let span = tracing::info_span!("after a bare check");
                assert!(
                    span.context().span().span_context().is_valid(),
                    "the span reached the trace layer"
                );
            }
        });
    }
}
