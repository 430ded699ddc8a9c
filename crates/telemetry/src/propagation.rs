//! Which headers carry the trace between processes, for HTTP and Kafka alike.
//!
//! Istio's sidecars speak one of two formats depending on the mesh's tracing
//! provider: W3C Trace Context (the OpenTelemetry provider) or B3 (the Zipkin
//! provider). `OTEL_PROPAGATORS` chooses, with the names and the default the
//! OpenTelemetry specification defines (`tracecontext,baggage`); B3 is added
//! where a mesh or a caller needs it ([`W3C_AND_B3_PROPAGATORS`]: `make run`
//! and the tests accept either format, the Kubernetes manifests name W3C only
//! because their mesh uses the OpenTelemetry provider). Each propagator costs
//! every request an extraction and every outbound call or record its headers.
//!
//! `x-request-id` is not a trace format and is not handled here: it must be
//! forwarded even when the SDK is off, see [`crate::request_id`].

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{TextMapCompositePropagator, TextMapPropagator},
    trace::TraceContextExt as _,
};
use opentelemetry_sdk::propagation::BaggagePropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The carrier traits: implement them for another transport's headers (the
/// `messaging` crate does for Kafka records) and pass them to [`inject_span`]
/// and [`continue_and_link`].
pub use opentelemetry::propagation::{Extractor, Injector};

pub use b3::{B3Debug, B3Deferred, B3Encoding, B3Propagator, B3RootDecision};
pub use w3c::{TRACESTATE_CHARS_MAX, TRACESTATE_MEMBERS_MAX, W3cTraceContext};

mod b3;
mod w3c;

/// The variable the OpenTelemetry specification names for choosing propagators.
pub const OTEL_PROPAGATORS: &str = "OTEL_PROPAGATORS";

/// The default when `OTEL_PROPAGATORS` is unset: the specification's
/// ("Environment Variable Specification", `OTEL_PROPAGATORS`).
pub const DEFAULT_PROPAGATORS: &str = "tracecontext,baggage";

/// W3C and B3 both: extracts either, injects both, for a caller or a mesh
/// that may speak either. On extraction the last propagator that finds a
/// context wins. When a request carries both formats, the mesh has refreshed
/// only its own one; Istio's current default provider is OpenTelemetry, so W3C
/// comes last and wins. In a mesh on the Zipkin provider set
/// `OTEL_PROPAGATORS=b3multi` (see docs/trace.md, "Propagation behind Istio").
pub const W3C_AND_B3_PROPAGATORS: &str = "b3multi,tracecontext,baggage";

/// An `OTEL_PROPAGATORS` entry this suite cannot honour.
#[derive(Debug, thiserror::Error)]
#[error("{OTEL_PROPAGATORS}: unsupported propagator {0:?} (supported: tracecontext, baggage, b3, b3multi, none)")]
pub struct UnsupportedPropagator(pub String);

/// Builds the propagator set named by `spec`, a comma-separated list as in `OTEL_PROPAGATORS`.
pub fn propagator_from_spec(spec: &str) -> Result<TextMapCompositePropagator, UnsupportedPropagator> {
    let mut propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        match name {
            "tracecontext" => propagators.push(Box::new(W3cTraceContext::new())),
            "baggage" => propagators.push(Box::new(BaggagePropagator::new())),
            // Both B3 variants extract the single and the multi-header forms;
            // they differ only in what they inject.
            "b3" => propagators.push(Box::new(B3Propagator::new(B3Encoding::SingleHeader))),
            "b3multi" => propagators.push(Box::new(B3Propagator::new(B3Encoding::MultipleHeaders))),
            "none" => {}
            other => return Err(UnsupportedPropagator(other.to_owned())),
        }
    }
    Ok(TextMapCompositePropagator::new(propagators))
}

/// Reads `OTEL_PROPAGATORS`, falling back to [`DEFAULT_PROPAGATORS`].
pub fn propagator_from_env() -> Result<TextMapCompositePropagator, UnsupportedPropagator> {
    let spec = std::env::var(OTEL_PROPAGATORS).unwrap_or_default();
    if spec.trim().is_empty() {
        propagator_from_spec(DEFAULT_PROPAGATORS)
    } else {
        propagator_from_spec(&spec)
    }
}

/// The context the caller sent in these HTTP headers, through the global propagator.
pub fn extract_http(headers: &HeaderMap) -> Context {
    extract(&HttpHeaders(headers))
}

/// Writes `cx` into an outbound request's headers, through the global propagator.
pub fn inject_http(cx: &Context, headers: &mut HeaderMap) {
    inject(cx, &mut HttpHeadersMut(headers));
}

/// The context found in any carrier (HTTP headers, Kafka headers, a map).
pub fn extract(carrier: &dyn Extractor) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(carrier))
}

/// Writes `cx` into any carrier.
pub fn inject(cx: &Context, carrier: &mut dyn Injector) {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(cx, carrier));
}

/// Writes the context of `span` into any carrier: how a record carries the
/// span that sent it.
pub fn inject_span(span: &Span, carrier: &mut dyn Injector) {
    inject(&span.context(), carrier);
}

/// Makes `span` continue the trace found in `carrier`, with the remote span as
/// its parent *and* as a link: the messaging conventions' shape for a consumer
/// that processes one message. The parent keeps `span` and everything it calls
/// in the sender's trace; the link records which send it processes (Jaeger
/// draws it as FOLLOWS_FROM). Call it right after opening `span`, before it is
/// entered. A carrier without a context makes `span` the root of a new trace
/// (not a child of whatever span is current), with an invalid link that the
/// SDK drops.
pub fn continue_and_link(span: &Span, carrier: &dyn Extractor) {
    let sender = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract_with_context(&Context::new(), carrier)
    });
    let sender_span_context = sender.span().span_context().clone();
    let _ = span.set_parent(sender);
    span.add_link(sender_span_context);
}

/// Adds a link from `span` to the span whose context `carrier` holds, leaving
/// its parent alone; `false` (and no link) when the carrier has no valid
/// context. How a record delivered a second time (a replayed dead letter)
/// points at the spans that handled it before.
pub fn link_to(span: &Span, carrier: &dyn Extractor) -> bool {
    let found = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract_with_context(&Context::new(), carrier)
    });
    let span_context = found.span().span_context().clone();
    if !span_context.is_valid() {
        return false;
    }
    span.add_link(span_context);
    true
}

/// Inbound HTTP headers as a carrier.
struct HttpHeaders<'a>(&'a HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = match header_name(key) {
            Some(name) => self.0.get(name),
            None => self.0.get(key),
        };
        value.and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    /// Every field of that name, in order: `tracestate` may come in several
    /// (W3C Trace Context §3.3.1), and two `traceparent`s must be seen as two.
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values = match header_name(key) {
            Some(name) => self.0.get_all(name),
            None => self.0.get_all(key),
        };
        let values: Vec<&str> = values.iter().filter_map(|value| value.to_str().ok()).collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Outbound HTTP headers as a carrier; a field that is not a valid header is dropped.
struct HttpHeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HttpHeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        let name = match header_name(key) {
            Some(name) => name.clone(),
            None => match HeaderName::try_from(key) {
                Ok(name) => name,
                Err(_) => return,
            },
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            self.0.insert(name, value);
        }
    }
}

/// The fields the propagators read and write on every request, as header
/// names made once: naming a header from a `&str` validates and looks the name
/// up each time, a fifth of what injection cost (callgrind, docs/benchmarks.md).
fn header_name(key: &str) -> Option<&'static HeaderName> {
    static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
    static BAGGAGE: HeaderName = HeaderName::from_static("baggage");
    static B3: HeaderName = HeaderName::from_static("b3");
    static B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
    static B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
    static B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
    static B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");
    Some(match key {
        "traceparent" => &TRACEPARENT,
        "tracestate" => &TRACESTATE,
        "baggage" => &BAGGAGE,
        "b3" => &B3,
        "x-b3-traceid" => &B3_TRACE_ID,
        "x-b3-spanid" => &B3_SPAN_ID,
        "x-b3-sampled" => &B3_SAMPLED,
        "x-b3-flags" => &B3_FLAGS,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;
    use std::collections::HashMap;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN_ID: &str = "00f067aa0ba902b7";

    /// A span linked to a span of another trace keeps its own context, and
    /// is exported with the link: what a replayed record's spans rely on.
    #[test]
    fn a_link_to_another_trace_leaves_the_span_in_its_own() {
        use opentelemetry::trace::TracerProvider as _;
        use opentelemetry_sdk::trace::SdkTracerProvider;
        use tracing_subscriber::layer::SubscriberExt as _;

        use crate::ended::Ended;

        opentelemetry::global::set_text_map_propagator(propagator_from_spec(DEFAULT_PROPAGATORS).expect("valid"));
        let ended = Ended::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(ended.clone()).build();
        let subscriber = tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("link-test"))
                .with_context_activation(false),
        );
        let other: HashMap<String, String> =
            HashMap::from([("traceparent".to_owned(), format!("00-{TRACE_ID}-{SPAN_ID}-01"))]);
        tracing::subscriber::with_default(subscriber, || {
            let root = tracing::info_span!("root");
            let child = root.in_scope(|| tracing::info_span!("child"));
            assert!(link_to(&child, &other));
            let mut written: HashMap<String, String> = HashMap::new();
            inject_span(&child, &mut written);
            assert!(written.contains_key("traceparent"), "{written:?}");
            drop(child);
            drop(root);
        });
        let spans = ended.spans();
        let child = spans
            .iter()
            .find(|span| span.name == "child")
            .expect("the child exported");
        let root = spans
            .iter()
            .find(|span| span.name == "root")
            .expect("the root exported");
        assert_eq!(child.span_context.trace_id(), root.span_context.trace_id());
        assert_eq!(child.links.links[0].span_context.trace_id().to_string(), TRACE_ID);
    }

    fn extract_with(spec: &str, headers: &[(&str, &str)]) -> Context {
        let carrier: HashMap<String, String> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        propagator_from_spec(spec).expect("valid spec").extract(&carrier)
    }

    fn ids(cx: &Context) -> (String, String) {
        let sc = cx.span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    }

    /// Unset, `OTEL_PROPAGATORS` means the specification's default: W3C
    /// Trace Context and Baggage, nothing else read or written.
    #[test]
    fn the_default_set_is_w3c_and_baggage_only() {
        let traceparent = format!("00-{TRACE_ID}-{SPAN_ID}-01");
        let incoming = extract_with(
            DEFAULT_PROPAGATORS,
            &[("traceparent", &traceparent), ("baggage", "synthetic_request=true")],
        );
        let mut out: HashMap<String, String> = HashMap::new();
        propagator_from_spec(DEFAULT_PROPAGATORS)
            .expect("valid spec")
            .inject_context(&incoming, &mut out);
        let mut names: Vec<&str> = out.keys().map(String::as_str).collect();
        names.sort_unstable();
        // No empty `tracestate` either: the caller sent none.
        assert_eq!(names, ["baggage", "traceparent"]);
        assert_eq!(out["traceparent"], traceparent);
        let b3_only = extract_with(DEFAULT_PROPAGATORS, &[("b3", &format!("{TRACE_ID}-{SPAN_ID}-1"))]);
        assert!(!b3_only.span().span_context().is_valid(), "B3 is not read by default");
    }

    #[test]
    fn w3c_and_b3_set_extracts_w3c_b3_single_and_b3_multi() {
        let w3c = extract_with(
            W3C_AND_B3_PROPAGATORS,
            &[("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01"))],
        );
        let single = extract_with(W3C_AND_B3_PROPAGATORS, &[("b3", &format!("{TRACE_ID}-{SPAN_ID}-1"))]);
        let multi = extract_with(
            W3C_AND_B3_PROPAGATORS,
            &[
                ("x-b3-traceid", TRACE_ID),
                ("x-b3-spanid", SPAN_ID),
                ("x-b3-sampled", "1"),
            ],
        );
        for cx in [w3c, single, multi] {
            assert_eq!(ids(&cx), (TRACE_ID.to_owned(), SPAN_ID.to_owned()));
            assert!(cx.span().span_context().is_remote());
            assert!(cx.span().span_context().is_sampled());
        }
    }

    #[test]
    fn w3c_and_b3_set_injects_both() {
        let incoming = extract_with(
            W3C_AND_B3_PROPAGATORS,
            &[("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01"))],
        );
        let mut out: HashMap<String, String> = HashMap::new();
        propagator_from_spec(W3C_AND_B3_PROPAGATORS)
            .expect("valid spec")
            .inject_context(&incoming, &mut out);
        assert_eq!(out["traceparent"], format!("00-{TRACE_ID}-{SPAN_ID}-01"));
        assert_eq!(out["x-b3-traceid"], TRACE_ID);
        assert_eq!(out["x-b3-spanid"], SPAN_ID);
    }

    #[test]
    fn http_headers_carry_the_context_out_and_back() {
        let incoming = extract_with(
            "tracecontext,baggage",
            &[
                ("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01")),
                ("baggage", "synthetic_request=true"),
            ],
        );
        let propagator = propagator_from_spec(W3C_AND_B3_PROPAGATORS).expect("valid spec");
        let mut headers = HeaderMap::new();
        propagator.inject_context(&incoming, &mut HttpHeadersMut(&mut headers));
        assert_eq!(headers["traceparent"], format!("00-{TRACE_ID}-{SPAN_ID}-01").as_str());
        assert_eq!(headers["x-b3-traceid"], TRACE_ID);
        assert_eq!(headers["x-b3-spanid"], SPAN_ID);
        assert_eq!(headers["x-b3-sampled"], "1");
        assert_eq!(headers["baggage"], "synthetic_request=true");
        // A field outside the known set goes through the parsed path.
        HttpHeadersMut(&mut headers).set("X-Custom-Field", "v".to_owned());
        assert_eq!(HttpHeaders(&headers).get("x-custom-field"), Some("v"));
        let back = propagator.extract(&HttpHeaders(&headers));
        assert_eq!(ids(&back), (TRACE_ID.to_owned(), SPAN_ID.to_owned()));
        assert!(back.span().span_context().is_sampled());
    }

    #[test]
    fn repeated_http_fields_are_all_read() {
        let propagator = propagator_from_spec("tracecontext").expect("valid spec");
        let mut headers = HeaderMap::new();
        headers.append("tracestate", HeaderValue::from_static(""));
        headers.append("tracestate", HeaderValue::from_static("foo=1, bar=2"));
        headers.append("tracestate", HeaderValue::from_static("baz=3"));
        headers.append(
            "traceparent",
            HeaderValue::try_from(format!("00-{TRACE_ID}-{SPAN_ID}-01")).expect("valid"),
        );
        let cx = propagator.extract(&HttpHeaders(&headers));
        assert_eq!(ids(&cx), (TRACE_ID.to_owned(), SPAN_ID.to_owned()));
        assert_eq!(cx.span().span_context().trace_state().header(), "foo=1,bar=2,baz=3");

        // A second traceparent: the caller's context is unknowable, a new trace starts.
        headers.append(
            "traceparent",
            HeaderValue::try_from(format!("00-{TRACE_ID}-1111111111111111-01")).expect("valid"),
        );
        assert!(
            !propagator
                .extract(&HttpHeaders(&headers))
                .span()
                .span_context()
                .is_valid()
        );
    }

    #[test]
    fn w3c_wins_over_a_stale_b3_context_when_both_are_read() {
        let other_span = "1111111111111111";
        let cx = extract_with(
            W3C_AND_B3_PROPAGATORS,
            &[
                ("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01")),
                ("x-b3-traceid", TRACE_ID),
                ("x-b3-spanid", other_span),
            ],
        );
        assert_eq!(ids(&cx).1, SPAN_ID);
    }

    #[test]
    fn spec_parsing_rejects_unknown_names_and_honours_none() {
        assert!(propagator_from_spec("tracecontext,jaeger").is_err());
        let cx = extract_with("none", &[("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01"))]);
        assert!(!cx.span().span_context().is_valid());
        let mut out: HashMap<String, String> = HashMap::new();
        propagator_from_spec("b3").expect("valid").inject_context(
            &extract_with(
                "tracecontext",
                &[("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01"))],
            ),
            &mut out,
        );
        assert_eq!(out["b3"], format!("{TRACE_ID}-{SPAN_ID}-1"));
        assert!(!out.contains_key("traceparent"));
    }
}
