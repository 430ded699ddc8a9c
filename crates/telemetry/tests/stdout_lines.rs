//! Log lines name the span they were written in, with the subscriber installed globally, as services install it.
//!
//! The stdout layer's filter turns spans away (it writes events only), so an
//! event's span is looked up in the registry itself. Its own test binary: the
//! subscriber is the process-wide default here, as in a service, which a unit
//! test beside others cannot have.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// What the stdout layer wrote.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_line_carries_the_ids_of_the_span_it_was_written_in() {
    let lines = Lines::default();
    let writer = lines.clone();
    let providers = telemetry::Providers {
        tracer: Some(SdkTracerProvider::builder().build()),
        meter: None,
        logger: None,
        serve_metrics: false,
    };
    let _guard = telemetry::install(providers, "stdout-lines", move || writer.clone()).expect("installed");

    let request = tracing::info_span!("request");
    let step = request.in_scope(|| tracing::info_span!("step"));
    step.in_scope(|| tracing::info!("inside the step"));
    tracing::info!(parent: &request, "explicit parent");
    request.in_scope(|| tracing::info!(parent: None, "a root event"));

    let ids = |span: &tracing::Span| {
        let cx = span.context();
        let span_context = cx.span().span_context().clone();
        format!(
            "trace_id={} span_id={} ",
            span_context.trace_id(),
            span_context.span_id()
        )
    };
    let text = String::from_utf8(lines.0.lock().expect("not poisoned").clone()).expect("UTF-8");
    let line = |message: &str| {
        text.lines()
            .find(|line| line.ends_with(message))
            .unwrap_or_else(|| panic!("no line {message:?} in:\n{text}"))
    };
    assert!(line("inside the step").contains(&ids(&step)), "{text}");
    assert!(line("explicit parent").contains(&ids(&request)), "{text}");
    assert!(!line("a root event").contains("span_id="), "{text}");
}
