//! B3, Zipkin's propagation format and the one Istio's Zipkin tracing provider speaks.
//!
//! Written here because the opentelemetry-zipkin crate that used to carry it is
//! deprecated as a whole. It follows the OpenTelemetry B3 propagator
//! requirements (specification, context/api-propagators.md#b3-requirements) and
//! the B3 format itself (github.com/openzipkin/b3-propagation):
//! - extraction accepts both forms, the single header taking precedence;
//! - single header: `b3: {trace_id}-{span_id}[-{sampling}[-{parent_span_id}]]`,
//!   or a sampling state alone (`b3: 0`, `1`, `d`);
//! - multiple headers: `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`, `x-b3-flags`;
//! - 64-bit trace ids are left-padded with zeros to 128 bits;
//! - the parent span id is never propagated (OpenTelemetry does not share span ids).
//!
//! The sampling state has four values, and only two fit in W3C trace flags, so
//! the other two ride in the [`Context`] beside the span context:
//! - **accept / deny** (`1` / `0`): the sampled flag;
//! - **debug** (`d`, `x-b3-flags: 1`): sampled, plus [`B3Debug`], which every
//!   span below inherits and every injection writes back out;
//! - **deferred** (no sampling state): not sampled *and* [`B3Deferred`], which
//!   tells [`crate::sampler`] to decide as for a root instead of following the
//!   unsampled flag.
//!
//! A sampling state sent without ids (`b3: 0`) is kept as [`B3RootDecision`]:
//! the trace starts here, and the sampler applies the caller's decision to it.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState},
};

use crate::hex::push_hex;

const B3: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";

/// Lowercase hex of an id, written into its string directly (see [`crate::hex`]).
fn hex(bytes: &[u8]) -> String {
    let mut value = String::with_capacity(bytes.len() * 2);
    push_hex(bytes, &mut value);
    value
}

/// Which B3 form is written on injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum B3Encoding {
    SingleHeader,
    MultipleHeaders,
}

/// The caller set B3's debug flag: sample, and say so to every callee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct B3Debug;

/// The caller sent ids without a sampling decision for the remote span with this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct B3Deferred(pub SpanId);

/// The caller sent only a sampling decision (`b3: 0`, `1` or `d`), no ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum B3RootDecision {
    Deny,
    Accept,
}

/// Extracts B3 in either form and injects the configured one.
#[derive(Debug)]
pub struct B3Propagator {
    encoding: B3Encoding,
    fields: Vec<String>,
}

impl B3Propagator {
    pub fn new(encoding: B3Encoding) -> Self {
        // fields() names what inject writes, as the propagator API asks.
        let fields = match encoding {
            B3Encoding::SingleHeader => vec![B3.to_owned()],
            B3Encoding::MultipleHeaders => [TRACE_ID, SPAN_ID, SAMPLED, FLAGS].map(str::to_owned).to_vec(),
        };
        Self { encoding, fields }
    }
}

/// What one B3 carrier said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sampling {
    Accept,
    Deny,
    Debug,
    Deferred,
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return;
        }
        let sampling = if cx.get::<B3Debug>().is_some() {
            Sampling::Debug
        } else if span_context.is_remote()
            && cx
                .get::<B3Deferred>()
                .is_some_and(|deferred| deferred.0 == span_context.span_id())
        {
            // Passing on the caller's own context untouched: no decision was made here either.
            Sampling::Deferred
        } else if span_context.is_sampled() {
            Sampling::Accept
        } else {
            Sampling::Deny
        };
        match self.encoding {
            B3Encoding::SingleHeader => {
                let state = match sampling {
                    Sampling::Accept => "-1",
                    Sampling::Deny => "-0",
                    Sampling::Debug => "-d",
                    Sampling::Deferred => "",
                };
                let mut value = String::with_capacity(32 + 1 + 16 + 2);
                push_hex(&span_context.trace_id().to_bytes(), &mut value);
                value.push('-');
                push_hex(&span_context.span_id().to_bytes(), &mut value);
                value.push_str(state);
                injector.set(B3, value);
            }
            B3Encoding::MultipleHeaders => {
                injector.set(TRACE_ID, hex(&span_context.trace_id().to_bytes()));
                injector.set(SPAN_ID, hex(&span_context.span_id().to_bytes()));
                match sampling {
                    Sampling::Accept => injector.set(SAMPLED, "1".to_owned()),
                    Sampling::Deny => injector.set(SAMPLED, "0".to_owned()),
                    // "Debug implies an accept decision, so don't also send the X-B3-Sampled header."
                    Sampling::Debug => injector.set(FLAGS, "1".to_owned()),
                    Sampling::Deferred => {}
                }
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let found = match extractor.get(B3) {
            Some(single) => parse_single(single.trim()),
            None => parse_multi(extractor),
        };
        let Some((ids, sampling)) = found else {
            return cx.clone();
        };
        let Some((trace_id, span_id)) = ids else {
            let cx = match sampling {
                Sampling::Deny => cx.with_value(B3RootDecision::Deny),
                Sampling::Accept => cx.with_value(B3RootDecision::Accept),
                Sampling::Debug => cx.with_value(B3RootDecision::Accept).with_value(B3Debug),
                Sampling::Deferred => cx.clone(),
            };
            return cx;
        };
        let flags = match sampling {
            Sampling::Accept | Sampling::Debug => TraceFlags::SAMPLED,
            Sampling::Deny | Sampling::Deferred => TraceFlags::default(),
        };
        let cx = cx.with_remote_span_context(SpanContext::new(trace_id, span_id, flags, true, TraceState::default()));
        match sampling {
            Sampling::Debug => cx.with_value(B3Debug),
            Sampling::Deferred => cx.with_value(B3Deferred(span_id)),
            Sampling::Accept | Sampling::Deny => cx,
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

type Ids = Option<(TraceId, SpanId)>;

fn parse_single(value: &str) -> Option<(Ids, Sampling)> {
    let mut parts = value.split('-');
    let first = parts.next()?;
    if let Some(sampling) = parse_state(first) {
        // A sampling state alone: "b3: 0" is how a caller says "do not trace".
        return parts.next().is_none().then_some((None, sampling));
    }
    let trace_id = parse_trace_id(first)?;
    let span_id = parse_span_id(parts.next()?)?;
    let sampling = match parts.next() {
        None => Sampling::Deferred,
        Some(state) => parse_state(state)?,
    };
    // The fourth field, the parent span id, is validated and dropped.
    if let Some(parent) = parts.next() {
        parse_span_id(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some((Some((trace_id, span_id)), sampling))
}

fn parse_state(value: &str) -> Option<Sampling> {
    match value {
        "1" => Some(Sampling::Accept),
        "0" => Some(Sampling::Deny),
        "d" => Some(Sampling::Debug),
        _ => None,
    }
}

fn parse_multi(extractor: &dyn Extractor) -> Option<(Ids, Sampling)> {
    let debug = extractor.get(FLAGS).is_some_and(|flags| flags.trim() == "1");
    let sampled = match extractor.get(SAMPLED).map(str::trim) {
        // "true"/"false" are legacy spellings some tracers still send.
        Some("1" | "true") => Some(Sampling::Accept),
        Some("0" | "false") => Some(Sampling::Deny),
        _ => None,
    };
    let sampling = if debug {
        Sampling::Debug
    } else {
        sampled.unwrap_or(Sampling::Deferred)
    };
    match (extractor.get(TRACE_ID), extractor.get(SPAN_ID)) {
        (Some(trace_id), Some(span_id)) => {
            let ids = (parse_trace_id(trace_id.trim())?, parse_span_id(span_id.trim())?);
            Some((Some(ids), sampling))
        }
        (None, None) if sampling != Sampling::Deferred => Some((None, sampling)),
        _ => None,
    }
}

/// 32 hex digits, or 16 (a 64-bit Zipkin id, left-padded with zeros).
fn parse_trace_id(hex: &str) -> Option<TraceId> {
    if !(hex.len() == 16 || hex.len() == 32) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    TraceId::from_hex(hex).ok().filter(|id| *id != TraceId::INVALID)
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

    const TID: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const SID: &str = "e457b5a2e4d86bd1";

    fn extract(headers: &[(&str, &str)]) -> Context {
        let carrier: HashMap<String, String> = headers
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        B3Propagator::new(B3Encoding::MultipleHeaders).extract(&carrier)
    }

    fn span_context(cx: &Context) -> Option<SpanContext> {
        let span_context = cx.span().span_context().clone();
        span_context.is_valid().then_some(span_context)
    }

    fn inject(encoding: B3Encoding, cx: &Context) -> HashMap<String, String> {
        let mut out = HashMap::new();
        B3Propagator::new(encoding).inject_context(cx, &mut out);
        out
    }

    #[test]
    fn single_header_accept_with_parent_id_dropped() {
        let cx = extract(&[("b3", &format!("{TID}-{SID}-1-05e3ac9a4f6e3b90"))]);
        let found = span_context(&cx).expect("valid");
        assert_eq!(found.trace_id().to_string(), TID);
        assert_eq!(found.span_id().to_string(), SID);
        assert!(found.is_sampled() && found.is_remote());
        let out = inject(B3Encoding::SingleHeader, &cx);
        assert_eq!(out["b3"], format!("{TID}-{SID}-1"), "no parent id is propagated");
    }

    #[test]
    fn deny_is_kept_with_and_without_ids() {
        let with_ids = extract(&[("b3", &format!("{TID}-{SID}-0"))]);
        assert!(!span_context(&with_ids).expect("valid").is_sampled());
        assert_eq!(with_ids.get::<B3Deferred>(), None);
        assert_eq!(
            inject(B3Encoding::SingleHeader, &with_ids)["b3"],
            format!("{TID}-{SID}-0")
        );
        assert_eq!(inject(B3Encoding::MultipleHeaders, &with_ids)[SAMPLED], "0");

        let alone = extract(&[("b3", "0")]);
        assert!(span_context(&alone).is_none());
        assert_eq!(alone.get::<B3RootDecision>(), Some(&B3RootDecision::Deny));
        let multi_alone = extract(&[("x-b3-sampled", "0")]);
        assert_eq!(multi_alone.get::<B3RootDecision>(), Some(&B3RootDecision::Deny));
    }

    #[test]
    fn debug_sets_sampled_and_is_injected_back() {
        for cx in [
            extract(&[("b3", &format!("{TID}-{SID}-d"))]),
            extract(&[
                ("x-b3-traceid", TID),
                ("x-b3-spanid", SID),
                ("x-b3-sampled", "0"),
                ("x-b3-flags", "1"),
            ]),
        ] {
            assert!(span_context(&cx).expect("valid").is_sampled());
            assert_eq!(cx.get::<B3Debug>(), Some(&B3Debug));
            assert_eq!(inject(B3Encoding::SingleHeader, &cx)["b3"], format!("{TID}-{SID}-d"));
            let multi = inject(B3Encoding::MultipleHeaders, &cx);
            assert_eq!(multi[FLAGS], "1");
            assert!(!multi.contains_key(SAMPLED), "debug implies accept: {multi:?}");
        }
    }

    #[test]
    fn deferred_is_not_forced_to_sampled_and_stays_deferred() {
        for cx in [
            extract(&[("b3", &format!("{TID}-{SID}"))]),
            extract(&[("x-b3-traceid", TID), ("x-b3-spanid", SID)]),
        ] {
            let found = span_context(&cx).expect("valid");
            assert!(!found.is_sampled(), "no decision is not a decision to sample");
            assert_eq!(cx.get::<B3Deferred>(), Some(&B3Deferred(found.span_id())));
            assert_eq!(inject(B3Encoding::SingleHeader, &cx)["b3"], format!("{TID}-{SID}"));
            let multi = inject(B3Encoding::MultipleHeaders, &cx);
            assert!(!multi.contains_key(SAMPLED) && !multi.contains_key(FLAGS), "{multi:?}");
        }
    }

    #[test]
    fn sixty_four_bit_trace_ids_are_left_padded_in_and_out() {
        let cx = extract(&[("b3", &format!("64fe8b2a57d3eff7-{SID}-1"))]);
        let padded = "000000000000000064fe8b2a57d3eff7";
        assert_eq!(span_context(&cx).expect("valid").trace_id().to_string(), padded);
        assert_eq!(inject(B3Encoding::MultipleHeaders, &cx)[TRACE_ID], padded);
        let multi = extract(&[
            ("x-b3-traceid", "64fe8b2a57d3eff7"),
            ("x-b3-spanid", SID),
            ("x-b3-sampled", "1"),
        ]);
        assert_eq!(span_context(&multi).expect("valid").trace_id().to_string(), padded);
    }

    #[test]
    fn single_header_takes_precedence_over_multiple_headers() {
        let other = "1111111111111111";
        let cx = extract(&[
            ("b3", &format!("{TID}-{SID}-1")),
            ("x-b3-traceid", TID),
            ("x-b3-spanid", other),
        ]);
        assert_eq!(span_context(&cx).expect("valid").span_id().to_string(), SID);
    }

    #[test]
    fn malformed_values_are_ignored() {
        for headers in [
            vec![("b3", "xyz-e457b5a2e4d86bd1-1")],
            vec![("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-2")],
            vec![("b3", "0-1")],
            vec![("x-b3-traceid", TID)],
            vec![("x-b3-traceid", "0000000000000000"), ("x-b3-spanid", SID)],
        ] {
            let cx = extract(&headers);
            assert!(span_context(&cx).is_none(), "{headers:?}");
            assert_eq!(cx.get::<B3RootDecision>(), None, "{headers:?}");
        }
    }

    #[test]
    fn fields_name_what_is_injected() {
        let multi = B3Propagator::new(B3Encoding::MultipleHeaders);
        assert_eq!(multi.fields().collect::<Vec<_>>(), [TRACE_ID, SPAN_ID, SAMPLED, FLAGS]);
        let single = B3Propagator::new(B3Encoding::SingleHeader);
        assert_eq!(single.fields().collect::<Vec<_>>(), [B3]);
    }
}
