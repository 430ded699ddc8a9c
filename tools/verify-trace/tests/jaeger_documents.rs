//! verify-trace's reading of Jaeger's JSON and its verdict, on documents shaped the way
//! Jaeger's `GET /api/traces/{id}` shapes them: `data[].spans` with `CHILD_OF` and
//! `FOLLOWS_FROM` references, `processes`, and Envoy's sidecar spans in between.
//! The shapes were checked against a real Jaeger 2.13 (services/eshop/tests/
//! through_collector_to_jaeger.rs reads a checkout from one).

use serde_json::{Value, json};
use trace_contract as contract;
use trace_model::{
    SpanKind, SpanStatus,
    jaeger::{ReadError, read_trace},
};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// One span as Jaeger returns it. Ids are given short, as Jaeger v1 wrote
/// them (without leading zeros; v2 keeps them), which the reader must pad back.
/// The references as Jaeger's OTLP translation makes them: the parent first,
/// `CHILD_OF`, unless a link names the parent too: then that one reference is
/// `FOLLOWS_FROM` and there is no `CHILD_OF` (the consumer's case).
fn span(id: &str, parent: Option<&str>, process: &str, operation: &str, kind: &str, follows: Option<&str>) -> Value {
    let mut references = Vec::new();
    if let Some(parent) = parent {
        let ref_type = if follows == Some(parent) {
            "FOLLOWS_FROM"
        } else {
            "CHILD_OF"
        };
        references.push(json!({ "refType": ref_type, "traceID": TRACE, "spanID": parent }));
    }
    if let Some(follows) = follows.filter(|follows| Some(*follows) != parent) {
        references.push(json!({ "refType": "FOLLOWS_FROM", "traceID": TRACE, "spanID": follows }));
    }
    json!({
        "traceID": TRACE,
        "spanID": id,
        "operationName": operation,
        "references": references,
        "startTime": 1_763_700_000_000_000u64 + u64::from_str_radix(id, 16).unwrap_or(0),
        "duration": 1500,
        "tags": [{ "key": "span.kind", "type": "string", "value": kind }],
        "logs": [],
        "processID": process,
        "warnings": null
    })
}

/// A checkout as it looks in Jaeger inside Istio: the ingress gateway first,
/// and a sidecar span on each side of every REST call.
fn checkout_spans() -> Vec<Value> {
    vec![
        span(
            "a1",
            None,
            "gw",
            "eshop.eshop.svc.cluster.local:8080/checkout",
            "server",
            None,
        ),
        span(
            "a2",
            Some("a1"),
            "p_eshop",
            "eshop.eshop.svc.cluster.local:8080/*",
            "server",
            None,
        ),
        span("a3", Some("a2"), "eshop", "GET /checkout", "server", None),
        span("b1", Some("a3"), "eshop", "POST /createOrder", "client", None),
        span(
            "b2",
            Some("b1"),
            "p_eshop",
            "inventory.eshop.svc.cluster.local:8080/*",
            "client",
            None,
        ),
        span(
            "b3",
            Some("b2"),
            "p_inventory",
            "inventory.eshop.svc.cluster.local:8080/*",
            "server",
            None,
        ),
        span("b4", Some("b3"), "inventory", "POST /createOrder", "server", None),
        span("c1", Some("a3"), "eshop", "POST /payment", "client", None),
        span("c2", Some("c1"), "billing", "POST /payment", "server", None),
        span("d1", Some("a3"), "eshop", "POST /arrangeDelivery", "client", None),
        span("d2", Some("d1"), "delivery", "POST /arrangeDelivery", "server", None),
        span("e1", Some("a3"), "eshop", "send eshop-topic", "producer", None),
        span("f1", Some("a3"), "eshop", "POST /confirmPayment", "client", None),
        span("f2", Some("f1"), "billing", "POST /confirmPayment", "server", None),
        span(
            "e2",
            Some("e1"),
            "consumer",
            "process eshop-topic",
            "consumer",
            Some("e1"),
        ),
        span("e3", Some("e2"), "consumer", "POST /sendEmail", "client", None),
        span(
            "e4",
            Some("e3"),
            "p_notification",
            "notification.eshop.svc.cluster.local:8080/*",
            "server",
            None,
        ),
        span("e5", Some("e4"), "notification", "POST /sendEmail", "server", None),
    ]
}

fn document(spans: Vec<Value>) -> String {
    json!({
        "data": [{
            "traceID": TRACE,
            "spans": spans,
            "processes": {
                "gw": { "serviceName": "istio-ingressgateway.istio-system", "tags": [] },
                "p_eshop": { "serviceName": "eshop.eshop", "tags": [] },
                "p_inventory": { "serviceName": "inventory.eshop", "tags": [] },
                "p_notification": { "serviceName": "notification.eshop", "tags": [] },
                "eshop": { "serviceName": "eshop", "tags": [] },
                "inventory": { "serviceName": "inventory", "tags": [] },
                "billing": { "serviceName": "billing", "tags": [] },
                "delivery": { "serviceName": "delivery", "tags": [] },
                "consumer": { "serviceName": "kafka-consumer", "tags": [] },
                "notification": { "serviceName": "notification", "tags": [] }
            },
            "warnings": null
        }],
        "total": 0, "limit": 0, "offset": 0, "errors": null
    })
    .to_string()
}

/// The checkout with span `id` replaced by `with`.
fn replacing(id: &str, with: Value) -> Vec<Value> {
    checkout_spans()
        .into_iter()
        .map(|span| if span["spanID"] == id { with.clone() } else { span })
        .collect()
}

fn problems(spans: Vec<Value>) -> Vec<String> {
    contract::check_checkout(&read_trace(&document(spans), TRACE).expect("a trace"))
}

#[test]
fn a_complete_checkout_with_sidecar_spans_in_between_holds() {
    assert_eq!(problems(checkout_spans()), Vec::<String>::new());
}

#[test]
fn spans_are_read_with_kinds_parents_links_services_and_padded_ids() {
    let spans = read_trace(&document(checkout_spans()), TRACE).expect("a trace");
    let consumer = spans
        .iter()
        .find(|span| span.name == "process eshop-topic")
        .expect("consumer span");
    assert_eq!(consumer.kind, SpanKind::Consumer);
    assert_eq!(consumer.service, "kafka-consumer");
    assert_eq!(consumer.span_id, "00000000000000e2");
    assert_eq!(consumer.parent_span_id.as_deref(), Some("00000000000000e1"));
    assert_eq!(consumer.links.len(), 1);
    assert_eq!(consumer.links[0].span_id, "00000000000000e1");
    assert_eq!(consumer.duration_nanos(), 1_500_000);
    let root = spans
        .iter()
        .find(|span| span.span_id == "00000000000000a1")
        .expect("root");
    assert_eq!(root.parent_span_id, None);
}

#[test]
fn a_consumer_without_its_follows_from_reference_is_reported() {
    let spans = replacing(
        "e2",
        self::span("e2", Some("e1"), "consumer", "process eshop-topic", "consumer", None),
    );
    let found = problems(spans);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("FOLLOWS_FROM"), "{found:?}");
}

#[test]
fn a_trace_split_at_kafka_or_missing_a_service_is_reported() {
    // The consumer started a trace of its own, as the OpenTelemetry Demo does.
    let split: Vec<Value> = checkout_spans()
        .into_iter()
        .filter(|span| !["e2", "e3", "e4", "e5"].contains(&span["spanID"].as_str().unwrap_or("")))
        .collect();
    let found = problems(split);
    assert!(
        found
            .iter()
            .any(|problem| problem.contains("no span from kafka-consumer")),
        "{found:?}"
    );
    assert!(found.iter().any(|problem| problem.contains("CONSUMER")), "{found:?}");

    // billing's SERVER span hangs off eshop's SERVER span, not off the CLIENT span.
    let reparented: Vec<Value> = replacing(
        "c2",
        self::span("c2", Some("a3"), "billing", "POST /payment", "server", None),
    );
    let found = problems(reparented);
    assert_eq!(
        found,
        vec!["no billing SERVER span \"POST /payment\" under eshop's CLIENT span".to_owned()]
    );
}

#[test]
fn an_orphan_below_the_entry_point_is_reported() {
    let spans = replacing(
        "d2",
        self::span("d2", Some("ff"), "delivery", "POST /arrangeDelivery", "server", None),
    );
    let found = problems(spans);
    assert!(
        found.iter().any(|problem| problem.contains("not in the trace")),
        "{found:?}"
    );
}

#[test]
fn error_tags_missing_traces_and_other_documents() {
    let mut failing = checkout_spans();
    failing[6]["tags"] = json!([
        { "key": "span.kind", "type": "string", "value": "server" },
        { "key": "error", "type": "bool", "value": true },
        { "key": "otel.status_description", "type": "string", "value": "boom" }
    ]);
    let spans = read_trace(&document(failing), TRACE).expect("a trace");
    assert_eq!(spans[6].status, SpanStatus::Error("boom".into()));
    assert_eq!(
        spans[6].attribute("error").and_then(|value| match value {
            trace_model::AttributeValue::Bool(flag) => Some(*flag),
            _ => None,
        }),
        Some(true)
    );

    assert_eq!(
        read_trace(&document(checkout_spans()), "1234"),
        Err(ReadError::NotFound("1234".into()))
    );
    // Jaeger 2.13's 404: data is null, not an empty list.
    let not_found = r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#;
    assert_eq!(read_trace(not_found, TRACE), Err(ReadError::NotFound(TRACE.into())));
    let bad_id = r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":400,"msg":"strconv.ParseUint: parsing \"xyz\": invalid syntax"}]}"#;
    assert!(matches!(read_trace(bad_id, "xyz"), Err(ReadError::Malformed(why)) if why.contains("400")));
    assert!(matches!(read_trace("<html>", TRACE), Err(ReadError::Malformed(_))));
}
