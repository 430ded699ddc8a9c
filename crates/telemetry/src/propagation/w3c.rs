//! W3C Trace Context (`traceparent`, `tracestate`), read to the letter of the Level 1 Recommendation.
//!
//! The SDK's `TraceContextPropagator` parses each `traceparent` field as a
//! number, so a field of the wrong length (`000-…`, a 15-digit parent id,
//! flags `1` or `001`, a 31-digit trace id) continued the caller's trace; it
//! reads only the first of several `tracestate` fields and drops the whole
//! list when one member has whitespace around its comma. This propagator
//! follows <https://www.w3.org/TR/trace-context/> instead:
//! - `traceparent` (§3.2): exactly one field; `version "-" trace-id "-"
//!   parent-id "-" trace-flags` with exactly 2, 32, 16 and 2 lowercase hex
//!   digits; version `ff` is invalid; version `00` is exactly 55 characters, a
//!   later version may append `-…` fields, which are ignored (§4.3). An invalid
//!   `traceparent` starts a new trace and discards `tracestate` (§4.3).
//! - `tracestate` (§3.3): every field is combined in order (RFC 9110 §5.3);
//!   whitespace around members is ignored, empty members are skipped, members
//!   whose key or value breaks the grammar are dropped, a repeated key keeps its
//!   first value (§3.3.1.1 lets a vendor discard duplicates), and at most 32
//!   members of at most 512 characters in all are kept, removing members longer
//!   than 128 characters first and then from the right (§3.3.1.5). One
//!   departure, the SDK's: a multi-tenant key whose system id has the full 14
//!   characters is dropped, since opentelemetry 0.32's `TraceState` takes 13.
//! - Of the trace flags only `sampled` is kept. Level 2's `random` flag (bit 1,
//!   a Candidate Recommendation) is not carried: Level 1 says unknown flags are
//!   written as 0, and the SDK's ids are random anyway.
//!
//! Injection writes `traceparent`, and `tracestate` only when it has members
//! (the SDK writes an empty field).

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState},
};

use crate::hex::push_hex;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The most `tracestate` members kept (§3.3.1.1).
pub const TRACESTATE_MEMBERS_MAX: usize = 32;
/// The most characters of `tracestate` kept and forwarded, commas included (§3.3.1.5).
pub const TRACESTATE_CHARS_MAX: usize = 512;
/// Members longer than this are the first removed when the list is too long (§3.3.1.5).
const TRACESTATE_LONG_MEMBER: usize = 128;

/// W3C Trace Context, Level 1, strict on extraction.
#[derive(Debug, Clone)]
pub struct W3cTraceContext {
    fields: [String; 2],
}

impl W3cTraceContext {
    pub fn new() -> Self {
        Self {
            fields: [TRACEPARENT.to_owned(), TRACESTATE.to_owned()],
        }
    }
}

impl Default for W3cTraceContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return;
        }
        let mut traceparent = String::with_capacity(55);
        traceparent.push_str("00-");
        push_hex(&span_context.trace_id().to_bytes(), &mut traceparent);
        traceparent.push('-');
        push_hex(&span_context.span_id().to_bytes(), &mut traceparent);
        traceparent.push_str(if span_context.is_sampled() { "-01" } else { "-00" });
        injector.set(TRACEPARENT, traceparent);
        let tracestate = span_context.trace_state().header();
        if !tracestate.is_empty() {
            injector.set(TRACESTATE, tracestate);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extract(extractor) {
            Some(span_context) => cx.with_remote_span_context(span_context),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

fn extract(extractor: &dyn Extractor) -> Option<SpanContext> {
    let fields = extractor.get_all(TRACEPARENT)?;
    let [traceparent] = fields.as_slice() else {
        // Two traceparent fields: which one is the caller's is unknowable.
        return None;
    };
    let parent = Traceparent::parse(traceparent)?;
    let trace_state = extractor
        .get_all(TRACESTATE)
        .map(|fields| tracestate(&fields))
        .unwrap_or_default();
    Some(SpanContext::new(
        parent.trace_id,
        parent.span_id,
        parent.flags,
        true,
        trace_state,
    ))
}

/// A valid `traceparent`'s fields.
#[derive(Debug, PartialEq, Eq)]
struct Traceparent {
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
}

impl Traceparent {
    fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches(is_ows).as_bytes();
        let version = hex_field::<1>(value.get(0..2)?)?[0];
        let exact_length = match version {
            0xff => return None,
            0x00 => value.len() == 55,
            // A later version may append fields after a dash (§4.3).
            _ => value.len() == 55 || (value.len() > 55 && value[55] == b'-'),
        };
        if !exact_length || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let trace_id = TraceId::from_bytes(hex_field::<16>(&value[3..35])?);
        let span_id = SpanId::from_bytes(hex_field::<8>(&value[36..52])?);
        let flags = hex_field::<1>(&value[53..55])?[0];
        if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags: TraceFlags::new(flags) & TraceFlags::SAMPLED,
        })
    }
}

/// `N` bytes from exactly `2N` lowercase hex digits.
fn hex_field<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let mut bytes = [0; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (lower_hex(pair[0])? << 4) | lower_hex(pair[1])?;
    }
    Some(bytes)
}

fn lower_hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// RFC 9110's optional whitespace.
fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The members of every `tracestate` field, in order, within the limits.
fn tracestate(fields: &[&str]) -> TraceState {
    let mut members: Vec<(&str, &str)> = Vec::new();
    'fields: for field in fields {
        for member in field.split(',').map(|member| member.trim_matches(is_ows)) {
            if member.is_empty() {
                continue;
            }
            let Some((key, value)) = member.split_once('=') else {
                continue;
            };
            if !valid_key(key) || !valid_value(value) || members.iter().any(|(seen, _)| *seen == key) {
                continue;
            }
            members.push((key, value));
            if members.len() == TRACESTATE_MEMBERS_MAX {
                break 'fields;
            }
        }
    }
    // The SDK refuses a whole list for one key it finds invalid, and it finds
    // a 14-character system id one too long (opentelemetry 0.32,
    // TraceState::valid_key): such a member is dropped rather than the list.
    members.retain(|member| TraceState::from_key_value([*member]).is_ok());
    within_size(&mut members);
    TraceState::from_key_value(members).unwrap_or_default()
}

/// Removes members until the list fits [`TRACESTATE_CHARS_MAX`]: the long ones first, then from the right.
fn within_size(members: &mut Vec<(&str, &str)>) {
    let size = |members: &[(&str, &str)]| -> usize {
        members
            .iter()
            .map(|(key, value)| key.len() + 1 + value.len())
            .sum::<usize>()
            + members.len().saturating_sub(1)
    };
    while size(members) > TRACESTATE_CHARS_MAX {
        match members
            .iter()
            .rposition(|(key, value)| key.len() + 1 + value.len() > TRACESTATE_LONG_MEMBER)
        {
            Some(long) => {
                members.remove(long);
            }
            None => {
                members.pop();
            }
        }
    }
}

/// Level 1's `key`: a `simple-key`, or `tenant-id@system-id`.
fn valid_key(key: &str) -> bool {
    let key_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/');
    match key.split_once('@') {
        None => {
            let bytes = key.as_bytes();
            (1..=256).contains(&bytes.len()) && bytes[0].is_ascii_lowercase() && bytes.iter().all(|&c| key_char(c))
        }
        Some((tenant, system)) => {
            let (tenant, system) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&tenant.len())
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && tenant.iter().all(|&c| key_char(c))
                && (1..=14).contains(&system.len())
                && system[0].is_ascii_lowercase()
                && system.iter().all(|&c| key_char(c))
        }
    }
}

/// Level 1's `value`: 1 to 256 printable characters but `,` and `=`, not ending in a space.
fn valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let printable = |c: u8| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=';
    (1..=256).contains(&bytes.len()) && bytes.iter().all(|&c| printable(c)) && bytes[bytes.len() - 1] != b' '
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const TRACE_ID: &str = "12345678901234567890123456789012";
    const PARENT_ID: &str = "1234567890123456";

    /// A carrier with repeatable fields, like HTTP headers.
    struct Fields(Vec<(&'static str, String)>);

    impl Extractor for Fields {
        fn get(&self, key: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| value.as_str())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(name, _)| *name).collect()
        }
        fn get_all(&self, key: &str) -> Option<Vec<&str>> {
            let values: Vec<&str> = self
                .0
                .iter()
                .filter(|(name, _)| *name == key)
                .map(|(_, value)| value.as_str())
                .collect();
            (!values.is_empty()).then_some(values)
        }
    }

    fn extract_from(fields: &[(&'static str, &str)]) -> Option<SpanContext> {
        extract(&Fields(
            fields
                .iter()
                .map(|(name, value)| (*name, (*value).to_owned()))
                .collect(),
        ))
    }

    fn continued(traceparent: &str) -> bool {
        extract_from(&[(TRACEPARENT, traceparent)]).is_some()
    }

    fn state(tracestate: &[&str]) -> String {
        let valid = format!("00-{TRACE_ID}-{PARENT_ID}-01");
        let mut fields = vec![(TRACEPARENT, valid.as_str())];
        fields.extend(tracestate.iter().map(|value| (TRACESTATE, *value)));
        extract_from(&fields)
            .expect("a valid traceparent")
            .trace_state()
            .header()
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_its_sampled_flag() {
        let span_context = extract_from(&[(TRACEPARENT, &format!("00-{TRACE_ID}-{PARENT_ID}-01"))]).expect("valid");
        assert_eq!(span_context.trace_id().to_string(), TRACE_ID);
        assert_eq!(span_context.span_id().to_string(), PARENT_ID);
        assert!(span_context.is_sampled() && span_context.is_remote());
        // Surrounding whitespace is HTTP's, not the value's.
        assert!(continued(&format!(" \t00-{TRACE_ID}-{PARENT_ID}-01\t ")));
        // A later version with more fields: the four known ones are read.
        assert!(continued(&format!(
            "cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-holds"
        )));
        assert!(continued(&format!("cc-{TRACE_ID}-{PARENT_ID}-01")));
    }

    #[test]
    fn a_field_of_the_wrong_length_or_case_starts_a_new_trace() {
        for invalid in [
            format!("000-{TRACE_ID}-{PARENT_ID}-01"),
            format!("0-{TRACE_ID}-{PARENT_ID}-01"),
            format!("00-{}-{PARENT_ID}-01", &TRACE_ID[1..]),
            format!("00-{TRACE_ID}3-{PARENT_ID}-01"),
            format!("00-{TRACE_ID}-{}-01", &PARENT_ID[1..]),
            format!("00-{TRACE_ID}-{PARENT_ID}7-01"),
            format!("00-{TRACE_ID}-{PARENT_ID}-1"),
            format!("00-{TRACE_ID}-{PARENT_ID}-001"),
            format!("00-{TRACE_ID}-{PARENT_ID}-01-extra"),
            format!("cc-{TRACE_ID}-{PARENT_ID}-01.extra"),
            format!("ff-{TRACE_ID}-{PARENT_ID}-01"),
            format!("0g-{TRACE_ID}-{PARENT_ID}-01"),
            format!("00-{}-{PARENT_ID}-01", TRACE_ID.replace('1', "A")),
            format!("00-{TRACE_ID}-{}-01", PARENT_ID.replace('1', "B")),
            format!("00-{TRACE_ID}-{PARENT_ID}-0A"),
            format!("00-{}-{PARENT_ID}-01", "0".repeat(32)),
            format!("00-{TRACE_ID}-{}-01", "0".repeat(16)),
            format!("00-.{}-{PARENT_ID}-01", &TRACE_ID[1..]),
            String::new(),
        ] {
            assert!(!continued(&invalid), "{invalid:?} was continued");
        }
    }

    #[test]
    fn two_traceparent_fields_start_a_new_trace() {
        let first = format!("00-{TRACE_ID}-{PARENT_ID}-01");
        let second = format!("00-{}1-{PARENT_ID}-01", &TRACE_ID[1..]);
        assert!(extract_from(&[(TRACEPARENT, &first), (TRACEPARENT, &second)]).is_none());
    }

    #[test]
    fn only_the_sampled_flag_is_kept() {
        let span_context = extract_from(&[(TRACEPARENT, &format!("00-{TRACE_ID}-{PARENT_ID}-03"))]).expect("valid");
        assert_eq!(span_context.trace_flags(), TraceFlags::SAMPLED);
    }

    #[test]
    fn every_tracestate_field_is_combined_in_order() {
        assert_eq!(
            state(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]),
            "foo=1,bar=2,rojo=1,congo=2,baz=3"
        );
        assert_eq!(state(&["", "foo=1"]), "foo=1");
        assert_eq!(state(&["foo=1", ""]), "foo=1");
    }

    #[test]
    fn whitespace_around_members_is_ignored_and_empty_members_skipped() {
        assert_eq!(state(&["foo=1 \t , \t bar=2, \t baz=3"]), "foo=1,bar=2,baz=3");
        assert_eq!(state(&["\t foo=1 \t"]), "foo=1");
        assert_eq!(state(&["foo=1,,bar=2,"]), "foo=1,bar=2");
    }

    #[test]
    fn invalid_members_are_dropped_and_the_rest_kept() {
        assert_eq!(state(&["foo=,bar=3"]), "bar=3");
        assert_eq!(state(&["foo=bar=baz,ok=1"]), "ok=1");
        assert_eq!(state(&["foo =1,FOO=1,foo.bar=1,ok=1"]), "ok=1");
        assert_eq!(state(&["@foo=1,foo@@bar=1,foo@=1,bar=2"]), "bar=2");
        assert_eq!(state(&["foo=1 ,bar=2 x"]), "foo=1,bar=2 x");
        assert_eq!(state(&["t@dd=1,1a@b=2,1a=3"]), "t@dd=1,1a@b=2");
        assert_eq!(state(&["foo=1,foo=2"]), "foo=1");
    }

    #[test]
    fn key_lengths_follow_the_grammar() {
        let simple = "z".repeat(256);
        // The grammar allows 14 characters after the `@`; the SDK's TraceState
        // only 13 (see `tracestate`), so 13 is the longest carried.
        let tenant = format!("{}@{}", "t".repeat(241), "v".repeat(13));
        assert_eq!(state(&[&format!("{simple}=1")]), format!("{simple}=1"));
        assert_eq!(state(&[&format!("{tenant}=1")]), format!("{tenant}=1"));
        for too_long in [
            "z".repeat(257),
            format!("{}@v", "t".repeat(242)),
            format!("t@{}", "v".repeat(15)),
        ] {
            assert_eq!(state(&[&format!("{too_long}=1"), "foo=1"]), "foo=1");
        }
    }

    #[test]
    fn at_most_32_members_are_kept() {
        let members: Vec<String> = (1..=33).map(|n| format!("bar{n:02}={n:02}")).collect();
        let kept = state(&[&members.join(",")]);
        assert_eq!(kept.split(',').count(), TRACESTATE_MEMBERS_MAX);
        assert!(kept.starts_with("bar01=01,") && kept.ends_with("bar32=32"));
    }

    #[test]
    fn a_long_tracestate_loses_its_long_members_first_then_from_the_right() {
        let long = format!("long={}", "x".repeat(200));
        // 20 members of 30 characters: 16 fit in 512 with their commas (16 * 31 - 1 = 495).
        let members: Vec<String> = (1..=20).map(|n| format!("k{n:02}={}", "v".repeat(26))).collect();
        let fields = [members[..2].join(","), long, members[2..].join(",")];
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let kept = state(&fields);
        assert!(kept.len() <= TRACESTATE_CHARS_MAX, "{} characters", kept.len());
        assert!(!kept.contains("long="));
        assert_eq!(kept.split(',').count(), 16);
        assert!(kept.starts_with("k01=") && kept.ends_with(&members[15]));
    }

    #[test]
    fn no_tracestate_without_a_valid_traceparent() {
        let fields = [(TRACEPARENT, "00-invalid"), (TRACESTATE, "foo=1")];
        assert!(extract_from(&fields).is_none());
    }

    #[test]
    fn injection_writes_no_empty_tracestate() {
        let propagator = W3cTraceContext::new();
        let span_context = SpanContext::new(
            TraceId::from_hex(TRACE_ID).expect("hex"),
            SpanId::from_hex(PARENT_ID).expect("hex"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let mut out: HashMap<String, String> = HashMap::new();
        propagator.inject_context(&Context::new().with_remote_span_context(span_context.clone()), &mut out);
        assert_eq!(out[TRACEPARENT], format!("00-{TRACE_ID}-{PARENT_ID}-01"));
        assert!(!out.contains_key(TRACESTATE));

        let with_state = SpanContext::new(
            span_context.trace_id(),
            span_context.span_id(),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("foo", "1")]).expect("valid"),
        );
        let mut out: HashMap<String, String> = HashMap::new();
        propagator.inject_context(&Context::new().with_remote_span_context(with_state), &mut out);
        assert_eq!(out[TRACESTATE], "foo=1");
    }
}
