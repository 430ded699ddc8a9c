//! Allow-listed W3C baggage entries copied onto every span as attributes, keys unchanged.
//!
//! The same behaviour as the OpenTelemetry contrib baggage span processors: at
//! span start, each entry of the parent context's baggage whose key is on the
//! list becomes an attribute of the span. Baggage reaches the context through
//! the `baggage` propagator, over HTTP and Kafka alike, and is bounded there by
//! the SDK's baggage limits (180 entries, 4096 bytes); the allow-list keeps
//! callers from writing arbitrary attributes into the suite's spans.
//!
//! `synthetic_request` is on the list by default: the OpenTelemetry Demo's
//! marker for generated traffic, which the load generator sends.
//!
//! It wraps the batch processor rather than sitting beside it: with more than
//! one processor, the SDK clones every ended span's data once per processor
//! (`Span::ensure_ended_and_exported`, opentelemetry_sdk 0.32), which cost
//! 7,500 instructions per span for a processor with nothing to do at the end
//! (callgrind, docs/benchmarks.md). Wrapped, the SDK sees one processor and
//! moves the data straight to the batch queue.

use std::{sync::Arc, time::Duration};

use opentelemetry::{Context, Key, KeyValue, baggage::BaggageExt as _, trace::Span as _};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanProcessor},
};

/// Comma-separated baggage keys to copy onto spans; empty copies none.
pub const BAGGAGE_SPAN_ATTRIBUTES: &str = "BAGGAGE_SPAN_ATTRIBUTES";
/// The default list.
pub const DEFAULT_BAGGAGE_SPAN_ATTRIBUTES: &str = "synthetic_request";

/// Copies the allow-listed baggage entries onto each span as it starts, then
/// hands the span to `inner` (the batch processor) at both ends.
#[derive(Debug)]
pub struct BaggageSpanProcessor<P> {
    /// Shared, not owned: each span's attribute key is then a reference
    /// count, not a copy of the string.
    keys: Vec<Key>,
    inner: P,
}

impl<P: SpanProcessor> BaggageSpanProcessor<P> {
    pub fn new(keys: impl IntoIterator<Item = impl Into<String>>, inner: P) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|key| Key::from(Arc::<str>::from(key.into())))
                .collect(),
            inner,
        }
    }

    /// The list in [`BAGGAGE_SPAN_ATTRIBUTES`], else [`DEFAULT_BAGGAGE_SPAN_ATTRIBUTES`].
    pub fn from_env(inner: P) -> Self {
        let spec =
            std::env::var(BAGGAGE_SPAN_ATTRIBUTES).unwrap_or_else(|_| DEFAULT_BAGGAGE_SPAN_ATTRIBUTES.to_owned());
        Self::new(spec.split(',').map(str::trim).filter(|key| !key.is_empty()), inner)
    }
}

impl<P: SpanProcessor> SpanProcessor for BaggageSpanProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if !self.keys.is_empty() {
            copy_baggage(&self.keys, span, cx);
        }
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

fn copy_baggage(keys: &[Key], span: &mut Span, cx: &Context) {
    let baggage = cx.baggage();
    if baggage.is_empty() {
        return;
    }
    for key in keys {
        if let Some(value) = baggage.get(key.as_str()) {
            // The caller chose the value: capped like any header copied into a span.
            let value = value.as_str();
            let value = crate::untrusted::capped(value, crate::untrusted::MAX_COPIED_HEADER);
            span.set_attribute(KeyValue::new(key.clone(), value.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::{
        propagation::TextMapPropagator as _,
        trace::{Tracer as _, TracerProvider as _},
    };
    use opentelemetry_sdk::{propagation::BaggagePropagator, trace::SdkTracerProvider};
    use std::{
        collections::HashMap,
        sync::{Arc, Mutex},
    };

    /// Keeps ended spans, as an exporter would receive them, and the resource it was given.
    #[derive(Debug, Default, Clone)]
    struct Ended(Arc<Mutex<Vec<SpanData>>>, Arc<Mutex<Option<Resource>>>);

    impl SpanProcessor for Ended {
        fn on_start(&self, _span: &mut Span, _cx: &Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().expect("lock").push(span);
        }
        fn set_resource(&mut self, resource: &Resource) {
            *self.1.lock().expect("lock") = Some(resource.clone());
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn only_allow_listed_entries_become_attributes() {
        let ended = Ended::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BaggageSpanProcessor::new(["synthetic_request"], ended.clone()))
            .build();
        let carrier = HashMap::from([(
            "baggage".to_owned(),
            "synthetic_request=true,user.email=someone%40example.com".to_owned(),
        )]);
        let cx = BaggagePropagator::new().extract(&carrier);
        provider.tracer("test").start_with_context("GET /checkout", &cx).end();
        let spans = ended.0.lock().expect("lock");
        let attributes: Vec<_> = spans[0]
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str().to_owned(), kv.value.as_str().into_owned()))
            .collect();
        assert_eq!(attributes, [("synthetic_request".to_owned(), "true".to_owned())]);
    }

    #[test]
    fn the_wrapped_processor_gets_the_resource_and_spans_without_baggage() {
        let ended = Ended::default();
        let provider = SdkTracerProvider::builder()
            .with_resource(Resource::builder().with_service_name("billing").build())
            .with_span_processor(BaggageSpanProcessor::new(["synthetic_request"], ended.clone()))
            .build();
        provider.tracer("test").start("GET /health").end();
        assert_eq!(ended.0.lock().expect("lock").len(), 1);
        let resource = ended.1.lock().expect("lock").clone().expect("resource passed on");
        let name = resource.get(&opentelemetry::Key::new("service.name"));
        assert_eq!(name.map(|value| value.to_string()).as_deref(), Some("billing"));
    }

    #[test]
    fn a_long_baggage_value_is_capped_on_the_span() {
        let ended = Ended::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BaggageSpanProcessor::new(["synthetic_request"], ended.clone()))
            .build();
        let long = "x".repeat(3_000);
        let carrier = HashMap::from([("baggage".to_owned(), format!("synthetic_request={long}"))]);
        let cx = BaggagePropagator::new().extract(&carrier);
        provider.tracer("test").start_with_context("GET /checkout", &cx).end();
        let spans = ended.0.lock().expect("lock");
        let value = spans[0].attributes[0].value.as_str().into_owned();
        assert_eq!(value.len(), crate::untrusted::MAX_COPIED_HEADER);
    }
}
