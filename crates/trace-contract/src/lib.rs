//! The suite's trace contract as one function: what a complete checkout trace must contain.
//!
//! Used by `verify-trace` against a real deployment's Jaeger, where Envoy's
//! sidecar spans sit between a CLIENT span and the SERVER span it called: a
//! call may therefore pass through spans of services outside the suite.

use std::collections::{HashMap, HashSet};

use trace_model::{SpanKind, SpanRecord};

/// The six services of the suite, by `service.name`.
pub const SERVICES: [&str; 6] = [
    "eshop",
    "inventory",
    "billing",
    "delivery",
    "kafka-consumer",
    "notification",
];

/// The REST calls eshop makes: callee and path. The last one, after Kafka
/// acknowledged the event, confirms the payment so the email may go out.
pub const ESHOP_CALLS: [(&str, &str); 4] = [
    ("inventory", "/createOrder"),
    ("billing", "/payment"),
    ("delivery", "/arrangeDelivery"),
    ("billing", "/confirmPayment"),
];

/// Everything wrong with `spans` as the trace of one checkout; empty when it holds.
pub fn check_checkout(spans: &[SpanRecord]) -> Vec<String> {
    let Some(first) = spans.first() else {
        return vec!["the trace has no spans".to_owned()];
    };
    let mut problems = Vec::new();
    if spans.iter().any(|span| span.trace_id != first.trace_id) {
        problems.push("the spans belong to more than one trace".to_owned());
    }
    let services: HashSet<&str> = spans.iter().map(|span| span.service.as_str()).collect();
    for service in SERVICES {
        if !services.contains(service) {
            problems.push(format!("no span from {service}"));
        }
    }
    let trace = Index::new(spans);

    let roots = trace.find("eshop", SpanKind::Server, |name| name.ends_with(" /checkout"));
    let Some(root) = roots.first().copied() else {
        problems.push("no eshop SERVER span for /checkout".to_owned());
        return problems;
    };
    for (service, path) in ESHOP_CALLS {
        let name = format!("POST {path}");
        let client = trace
            .find("eshop", SpanKind::Client, |n| n == name)
            .into_iter()
            .find(|c| trace.descends(c, root));
        let Some(client) = client else {
            problems.push(format!("no eshop CLIENT span {name:?} under eshop's SERVER span"));
            continue;
        };
        let server = trace.find(service, SpanKind::Server, |n| n == name);
        if !server.iter().any(|server| trace.calls(server, client)) {
            problems.push(format!("no {service} SERVER span {name:?} under eshop's CLIENT span"));
        }
    }

    let producers: Vec<_> = trace
        .find("eshop", SpanKind::Producer, |name| name.ends_with(" eshop-topic"))
        .into_iter()
        .filter(|producer| trace.descends(producer, root))
        .collect();
    let Some(producer) = producers.first().copied() else {
        problems.push("no eshop PRODUCER span for eshop-topic under eshop's SERVER span".to_owned());
        return problems;
    };
    let consumers: Vec<_> = trace
        .find("kafka-consumer", SpanKind::Consumer, |name| {
            name == "process eshop-topic"
        })
        .into_iter()
        .filter(|consumer| consumer.parent_span_id.as_deref() == Some(producer.span_id.as_str()))
        .collect();
    let Some(consumer) = consumers.first().copied() else {
        problems.push("no kafka-consumer CONSUMER span whose parent is the PRODUCER span".to_owned());
        return problems;
    };
    if !consumer.links.iter().any(|link| link.span_id == producer.span_id) {
        problems.push("the CONSUMER span has no link (FOLLOWS_FROM) to the PRODUCER span".to_owned());
    }
    let email_calls: Vec<_> = trace
        .find("kafka-consumer", SpanKind::Client, |name| name == "POST /sendEmail")
        .into_iter()
        .filter(|call| call.parent_span_id.as_deref() == Some(consumer.span_id.as_str()))
        .collect();
    let notified = trace
        .find("notification", SpanKind::Server, |name| name == "POST /sendEmail")
        .into_iter()
        .any(|server| email_calls.iter().any(|call| trace.calls(server, call)));
    if !notified {
        problems
            .push("no notification SERVER span under a kafka-consumer CLIENT span under the CONSUMER span".to_owned());
    }

    let top = trace.topmost();
    for span in spans {
        if let Some(parent) = span.parent_span_id.as_deref()
            && !trace.by_id.contains_key(parent)
            && top.is_none_or(|top| top.span_id != span.span_id)
        {
            problems.push(format!(
                "{} {:?} has a parent ({parent}) that is not in the trace",
                span.service, span.name
            ));
        }
    }
    problems
}

struct Index<'a> {
    spans: &'a [SpanRecord],
    by_id: HashMap<&'a str, &'a SpanRecord>,
}

impl<'a> Index<'a> {
    fn new(spans: &'a [SpanRecord]) -> Self {
        Self {
            spans,
            by_id: spans.iter().map(|span| (span.span_id.as_str(), span)).collect(),
        }
    }

    fn find(&self, service: &str, kind: SpanKind, name: impl Fn(&str) -> bool) -> Vec<&'a SpanRecord> {
        self.spans
            .iter()
            .filter(|span| span.service == service && span.kind == kind && name(&span.name))
            .collect()
    }

    fn parent(&self, span: &SpanRecord) -> Option<&'a SpanRecord> {
        span.parent_span_id
            .as_deref()
            .and_then(|parent| self.by_id.get(parent).copied())
    }

    /// Whether `ancestor` is above `span`, however far.
    fn descends(&self, span: &SpanRecord, ancestor: &SpanRecord) -> bool {
        let mut current = self.parent(span);
        while let Some(parent) = current {
            if parent.span_id == ancestor.span_id {
                return true;
            }
            current = self.parent(parent);
        }
        false
    }

    /// Whether `server` was called by `client`: its parent is the CLIENT span,
    /// or only spans of services outside the suite (mesh proxies) stand between.
    fn calls(&self, server: &SpanRecord, client: &SpanRecord) -> bool {
        let mut current = self.parent(server);
        while let Some(parent) = current {
            if parent.span_id == client.span_id {
                return true;
            }
            if SERVICES.contains(&parent.service.as_str()) {
                return false;
            }
            current = self.parent(parent);
        }
        false
    }

    /// The earliest span without a parent in the trace (the entry point).
    fn topmost(&self) -> Option<&'a SpanRecord> {
        self.spans
            .iter()
            .filter(|span| self.parent(span).is_none())
            .min_by_key(|span| span.start_unix_nanos)
    }
}
