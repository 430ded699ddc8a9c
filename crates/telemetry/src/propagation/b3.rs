//! B3, Zipkin's propagation format and the one Istio's Zipkin tracing provider speaks.
//!
//! Written here because the opentelemetry-zipkin crate that used to carry it is
//! deprecated as a whole. Extraction accepts both forms, as the OpenTelemetry
//! specification asks; the encoding only chooses what is injected:
//! - single header: `b3: {trace_id}-{span_id}-{sampling}[-{parent_span_id}]`
//! - multiple headers: `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled` (and `x-b3-flags: 1` for debug)

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState},
};

const B3: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";

/// Which B3 form is written on injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum B3Encoding {
    SingleHeader,
    MultipleHeaders,
}

/// Extracts B3 in either form and injects the configured one.
#[derive(Debug)]
pub struct B3Propagator {
    encoding: B3Encoding,
    fields: Vec<String>,
}

impl B3Propagator {
    pub fn new(encoding: B3Encoding) -> Self {
        let fields = match encoding {
            B3Encoding::SingleHeader => vec![B3.to_owned()],
            B3Encoding::MultipleHeaders => vec![TRACE_ID.to_owned(), SPAN_ID.to_owned(), SAMPLED.to_owned()],
        };
        Self { encoding, fields }
    }
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return;
        }
        let sampled = if span_context.is_sampled() { "1" } else { "0" };
        match self.encoding {
            B3Encoding::SingleHeader => injector.set(
                B3,
                format!("{}-{}-{sampled}", span_context.trace_id(), span_context.span_id()),
            ),
            B3Encoding::MultipleHeaders => {
                injector.set(TRACE_ID, span_context.trace_id().to_string());
                injector.set(SPAN_ID, span_context.span_id().to_string());
                injector.set(SAMPLED, sampled.to_owned());
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extract_single(extractor).or_else(|| extract_multi(extractor)) {
            Some(span_context) => cx.with_remote_span_context(span_context),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

fn extract_single(extractor: &dyn Extractor) -> Option<SpanContext> {
    let mut parts = extractor.get(B3)?.trim().split('-');
    let trace_id = parse_trace_id(parts.next()?)?;
    let span_id = parse_span_id(parts.next()?)?;
    let sampled = match parts.next() {
        None => None,
        Some("1" | "d") => Some(true),
        Some("0") => Some(false),
        Some(_) => return None,
    };
    Some(remote(trace_id, span_id, sampled))
}

fn extract_multi(extractor: &dyn Extractor) -> Option<SpanContext> {
    let trace_id = parse_trace_id(extractor.get(TRACE_ID)?.trim())?;
    let span_id = parse_span_id(extractor.get(SPAN_ID)?.trim())?;
    let debug = extractor.get(FLAGS).is_some_and(|flags| flags.trim() == "1");
    let sampled = match extractor.get(SAMPLED).map(str::trim) {
        _ if debug => Some(true),
        Some("1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        _ => None,
    };
    Some(remote(trace_id, span_id, sampled))
}

/// A missing sampling decision ("defer") is taken as sampled: the caller made
/// no decision, and dropping the trace would hide the request entirely.
fn remote(trace_id: TraceId, span_id: SpanId, sampled: Option<bool>) -> SpanContext {
    let flags = if sampled.unwrap_or(true) {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(trace_id, span_id, flags, true, TraceState::default())
}

/// 32 hex digits, or 16 (a 64-bit Zipkin id, left-padded with zeros).
fn parse_trace_id(hex: &str) -> Option<TraceId> {
    if !(hex.len() == 16 || hex.len() == 32) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(TraceId::from_hex(hex).ok())
        .flatten()
        .filter(|id| *id != TraceId::INVALID)
}

fn parse_span_id(hex: &str) -> Option<SpanId> {
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    SpanId::from_hex(hex).ok().filter(|id| *id != SpanId::INVALID)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(headers: &[(&str, &str)]) -> Option<SpanContext> {
        let carrier: HashMap<String, String> = headers
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        let cx = B3Propagator::new(B3Encoding::MultipleHeaders).extract(&carrier);
        let span_context = cx.span().span_context().clone();
        span_context.is_valid().then_some(span_context)
    }

    #[test]
    fn single_header_with_and_without_parent_and_sampling() {
        let full = extract(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )])
        .expect("valid");
        assert_eq!(full.trace_id().to_string(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(full.span_id().to_string(), "e457b5a2e4d86bd1");
        assert!(full.is_sampled() && full.is_remote());
        let unsampled = extract(&[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0")]).expect("valid");
        assert!(!unsampled.is_sampled());
        let deferred = extract(&[("b3", "64fe8b2a57d3eff7-e457b5a2e4d86bd1")]).expect("valid");
        assert_eq!(deferred.trace_id().to_string(), "000000000000000064fe8b2a57d3eff7");
        assert!(deferred.is_sampled());
    }

    #[test]
    fn multiple_headers_including_debug_flag() {
        let found = extract(&[
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-sampled", "0"),
            ("x-b3-flags", "1"),
        ])
        .expect("valid");
        assert!(found.is_sampled());
    }

    #[test]
    fn malformed_values_are_ignored() {
        assert!(extract(&[("b3", "0")]).is_none());
        assert!(extract(&[("b3", "xyz-e457b5a2e4d86bd1-1")]).is_none());
        assert!(extract(&[("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7")]).is_none());
        assert!(
            extract(&[
                ("x-b3-traceid", "0000000000000000"),
                ("x-b3-spanid", "e457b5a2e4d86bd1")
            ])
            .is_none()
        );
    }

    #[test]
    fn injects_the_configured_form() {
        let span_context = SpanContext::new(
            TraceId::from_hex("80f198ee56343ba864fe8b2a57d3eff7").expect("hex"),
            SpanId::from_hex("e457b5a2e4d86bd1").expect("hex"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = Context::new().with_remote_span_context(span_context);
        let mut single = HashMap::new();
        B3Propagator::new(B3Encoding::SingleHeader).inject_context(&cx, &mut single);
        assert_eq!(
            single,
            HashMap::from([(
                B3.to_owned(),
                "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1".to_owned()
            )])
        );
        let mut multi = HashMap::new();
        B3Propagator::new(B3Encoding::MultipleHeaders).inject_context(&cx, &mut multi);
        assert_eq!(multi[SAMPLED], "1");
        assert_eq!(multi[SPAN_ID], "e457b5a2e4d86bd1");
    }
}
