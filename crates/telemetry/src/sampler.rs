//! The sampler: the one `OTEL_TRACES_SAMPLER` names, taught B3's states that W3C trace flags cannot hold.
//!
//! A parent-based sampler reads an unsampled remote parent as "the caller
//! decided not to sample". For a B3 caller that deferred its decision (ids, no
//! sampling state) that reading is wrong: B3 says the callee decides. So when
//! the remote parent is marked [`B3Deferred`], the configured sampler is asked
//! as for a root span (the trace id is kept). A caller that sent only a state
//! (`b3: 0`, `b3: 1`) gets that decision applied to the trace started here.

use opentelemetry::{
    Context, KeyValue,
    trace::{Link, SpanKind, TraceContextExt as _, TraceId, TraceState},
};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

use crate::propagation::{B3Deferred, B3RootDecision};

/// `always_on`, `always_off`, `traceidratio`, `parentbased_always_on` (default), ...
pub const OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// The ratio for the `traceidratio` samplers, `0.0` to `1.0`.
pub const OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";

/// An `OTEL_TRACES_SAMPLER` value (or argument) this SDK cannot honour.
#[derive(Debug, thiserror::Error)]
#[error(
    "{OTEL_TRACES_SAMPLER}={0:?}: unsupported (supported: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio, with {OTEL_TRACES_SAMPLER_ARG} a ratio in [0, 1])"
)]
pub struct UnsupportedSampler(pub String);

/// The sampler named by `OTEL_TRACES_SAMPLER`/`_ARG`, with the B3 states honoured.
pub fn from_env() -> Result<B3AwareSampler, UnsupportedSampler> {
    let name = std::env::var(OTEL_TRACES_SAMPLER).unwrap_or_default();
    let arg = std::env::var(OTEL_TRACES_SAMPLER_ARG).ok();
    from_spec(&name, arg.as_deref()).map(B3AwareSampler)
}

/// The sampler the specification names `name` (empty: `parentbased_always_on`).
pub fn from_spec(name: &str, arg: Option<&str>) -> Result<Sampler, UnsupportedSampler> {
    let ratio = || -> Result<f64, UnsupportedSampler> {
        match arg.map(str::trim).filter(|arg| !arg.is_empty()) {
            // The specification's default ratio.
            None => Ok(1.0),
            Some(arg) => arg
                .parse::<f64>()
                .ok()
                .filter(|ratio| (0.0..=1.0).contains(ratio))
                .ok_or_else(|| UnsupportedSampler(format!("{name} with {OTEL_TRACES_SAMPLER_ARG}={arg}"))),
        }
    };
    Ok(match name.trim() {
        "" | "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio()?))),
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
        other => return Err(UnsupportedSampler(other.to_owned())),
    })
}

/// Wraps the configured sampler; see the module documentation.
#[derive(Debug, Clone)]
pub struct B3AwareSampler(pub Sampler);

impl ShouldSample for B3AwareSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        if let Some(cx) = parent_context {
            let span = cx.span();
            let parent = span.span_context();
            if parent.is_remote()
                && cx
                    .get::<B3Deferred>()
                    .is_some_and(|deferred| deferred.0 == parent.span_id())
            {
                return self.0.should_sample(None, trace_id, name, span_kind, attributes, links);
            }
            if !parent.is_valid() {
                match cx.get::<B3RootDecision>() {
                    Some(B3RootDecision::Deny) => return decided(SamplingDecision::Drop),
                    Some(B3RootDecision::Accept) => return decided(SamplingDecision::RecordAndSample),
                    None => {}
                }
            }
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

fn decided(decision: SamplingDecision) -> SamplingResult {
    SamplingResult {
        decision,
        attributes: Vec::new(),
        trace_state: TraceState::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagation::{B3Encoding, B3Propagator};
    use opentelemetry::propagation::TextMapPropagator as _;
    use std::collections::HashMap;

    const TID: &str = "80f198ee56343ba864fe8b2a57d3eff7";

    fn decide(sampler: Sampler, headers: &[(&str, &str)]) -> SamplingDecision {
        let carrier: HashMap<String, String> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let cx = B3Propagator::new(B3Encoding::SingleHeader).extract(&carrier);
        let trace_id = TraceId::from_hex(TID).expect("hex");
        B3AwareSampler(sampler)
            .should_sample(Some(&cx), trace_id, "GET /checkout", &SpanKind::Server, &[], &[])
            .decision
    }

    #[test]
    fn a_deferred_b3_parent_lets_the_configured_sampler_decide() {
        let deferred = [("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1")];
        let on = from_spec("parentbased_always_on", None).expect("valid");
        assert_eq!(decide(on, &deferred), SamplingDecision::RecordAndSample);
        let off = from_spec("parentbased_always_off", None).expect("valid");
        assert_eq!(decide(off, &deferred), SamplingDecision::Drop);
        // An explicit deny is still a deny for a parent-based sampler.
        let on = from_spec("", None).expect("valid");
        assert_eq!(
            decide(on, &[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0")]),
            SamplingDecision::Drop
        );
    }

    #[test]
    fn a_sampling_state_without_ids_decides_the_new_trace() {
        let on = || from_spec("", None).expect("valid");
        assert_eq!(decide(on(), &[("b3", "0")]), SamplingDecision::Drop);
        assert_eq!(decide(on(), &[]), SamplingDecision::RecordAndSample);
        let off = from_spec("parentbased_always_off", None).expect("valid");
        assert_eq!(decide(off, &[("b3", "d")]), SamplingDecision::RecordAndSample);
    }

    #[test]
    fn spec_names_and_arguments() {
        assert!(from_spec("traceidratio", Some("0.25")).is_ok());
        assert!(from_spec("parentbased_traceidratio", Some("2")).is_err());
        assert!(from_spec("jaeger_remote", None).is_err());
    }
}
