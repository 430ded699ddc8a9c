//! verify-trace against Jaeger v2's `GET /api/v3/traces/{id}` (OTLP JSON, the way
//! Jaeger writes it: hex ids, span kinds and status codes as numbers, 64-bit
//! integers as strings, `{"error": ...}` with 404 for a trace it does not have
//! and 400 for an id it cannot parse), read directly and through the binary
//! against a real HTTP server, including the fallback to `/api/traces/{id}`
//! when the v3 API is absent. The bodies are shaped as a real Jaeger 2.13
//! answered (services/eshop/tests/through_collector_to_jaeger.rs runs one).

use std::{net::SocketAddr, process::Command};

use axum::{Router, http::StatusCode, routing::get};
use serde_json::{Value, json};
use trace_contract as contract;
use trace_model::{
    SpanKind,
    jaeger::{ReadError, read_trace_v3},
};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const OTHER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// One span: (id, parent, service, name, OTLP kind number, linked span).
type Spec = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    u8,
    Option<&'static str>,
);

const SERVER: u8 = 2;
const CLIENT: u8 = 3;
const PRODUCER: u8 = 4;
const CONSUMER: u8 = 5;

/// A checkout as Jaeger holds it inside Istio: the ingress gateway, sidecar spans
/// around the calls, and the services' own spans.
fn checkout() -> Vec<Spec> {
    vec![
        (
            "a1",
            None,
            "eshop-gateway-istio.eshop",
            "eshop.eshop.svc.cluster.local:8080/checkout",
            SERVER,
            None,
        ),
        (
            "a2",
            Some("a1"),
            "eshop.eshop",
            "eshop.eshop.svc.cluster.local:8080/*",
            SERVER,
            None,
        ),
        ("a3", Some("a2"), "eshop", "GET /checkout", SERVER, None),
        ("b1", Some("a3"), "eshop", "POST /createOrder", CLIENT, None),
        (
            "b2",
            Some("b1"),
            "eshop.eshop",
            "inventory.eshop.svc.cluster.local:8080/*",
            CLIENT,
            None,
        ),
        (
            "b3",
            Some("b2"),
            "inventory.eshop",
            "inventory.eshop.svc.cluster.local:8080/*",
            SERVER,
            None,
        ),
        ("b4", Some("b3"), "inventory", "POST /createOrder", SERVER, None),
        ("c1", Some("a3"), "eshop", "POST /payment", CLIENT, None),
        ("c2", Some("c1"), "billing", "POST /payment", SERVER, None),
        ("d1", Some("a3"), "eshop", "POST /arrangeDelivery", CLIENT, None),
        ("d2", Some("d1"), "delivery", "POST /arrangeDelivery", SERVER, None),
        ("e1", Some("a3"), "eshop", "send eshop-topic", PRODUCER, None),
        ("f1", Some("a3"), "eshop", "POST /confirmPayment", CLIENT, None),
        ("f2", Some("f1"), "billing", "POST /confirmPayment", SERVER, None),
        (
            "e2",
            Some("e1"),
            "kafka-consumer",
            "process eshop-topic",
            CONSUMER,
            Some("e1"),
        ),
        ("e3", Some("e2"), "kafka-consumer", "POST /sendEmail", CLIENT, None),
        (
            "e4",
            Some("e3"),
            "notification.eshop",
            "notification.eshop.svc.cluster.local:8080/*",
            SERVER,
            None,
        ),
        ("e5", Some("e4"), "notification", "POST /sendEmail", SERVER, None),
    ]
}

fn span_id(short: &str) -> String {
    format!("{short:0>16}")
}

/// Jaeger's v3 body for these spans: one resourceSpans per service, as the OTLP
/// exporters sent them.
fn document(spans: &[Spec]) -> String {
    let mut services: Vec<&str> = spans.iter().map(|s| s.2).collect();
    services.dedup();
    services.sort_unstable();
    services.dedup();
    let resource_spans: Vec<Value> = services
        .iter()
        .map(|service| {
            let spans: Vec<Value> = spans
                .iter()
                .filter(|s| s.2 == *service)
                .enumerate()
                .map(|(i, (id, parent, _, name, kind, link))| {
                    let start = 1_763_700_000_000_000_000u64 + i as u64 * 1_000_000;
                    let mut span = json!({
                        "traceId": TRACE,
                        "spanId": span_id(id),
                        "name": name,
                        "kind": kind,
                        "startTimeUnixNano": start.to_string(),
                        "endTimeUnixNano": (start + 1_500_000).to_string(),
                        "attributes": [
                            { "key": "http.response.status_code", "value": { "intValue": "200" } },
                            { "key": "network.protocol.version", "value": { "stringValue": "1.1" } }
                        ],
                        "status": {}
                    });
                    if let Some(parent) = parent {
                        span["parentSpanId"] = json!(span_id(parent));
                    }
                    if let Some(link) = link {
                        span["links"] = json!([{ "traceId": TRACE, "spanId": span_id(link) }]);
                    }
                    span
                })
                .collect();
            json!({
                "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": service } }] },
                "scopeSpans": [{ "scope": { "name": "eshop-tracing" }, "spans": spans }]
            })
        })
        .collect();
    json!({ "result": { "resourceSpans": resource_spans } }).to_string()
}

fn without(id: &str) -> Vec<Spec> {
    checkout().into_iter().filter(|s| s.0 != id).collect()
}

#[test]
fn a_complete_checkout_in_otlp_json_holds() {
    let spans = read_trace_v3(&document(&checkout()), TRACE).expect("a trace");
    assert_eq!(spans.len(), checkout().len());
    assert_eq!(contract::check_checkout(&spans), Vec::<String>::new());
}

#[test]
fn ids_kinds_parents_links_services_and_attributes_are_decoded() {
    let spans = read_trace_v3(&document(&checkout()), TRACE).expect("a trace");
    let consumer = spans
        .iter()
        .find(|s| s.name == "process eshop-topic")
        .expect("consumer span");
    assert_eq!(consumer.kind, SpanKind::Consumer);
    assert_eq!(consumer.service, "kafka-consumer");
    assert_eq!(consumer.trace_id, TRACE);
    assert_eq!(consumer.span_id, span_id("e2"));
    assert_eq!(consumer.parent_span_id.as_deref(), Some(span_id("e1").as_str()));
    assert_eq!(consumer.links.len(), 1);
    assert_eq!(consumer.links[0].span_id, span_id("e1"));
    assert_eq!(consumer.duration_nanos(), 1_500_000);
    assert_eq!(
        consumer.attribute("http.response.status_code").and_then(|v| v.as_i64()),
        Some(200),
        "OTLP JSON writes 64-bit integers as strings"
    );
}

#[test]
fn a_consumer_without_its_link_or_a_missing_service_is_reported() {
    let mut unlinked = checkout();
    unlinked.iter_mut().filter(|s| s.0 == "e2").for_each(|s| s.5 = None);
    let problems = contract::check_checkout(&read_trace_v3(&document(&unlinked), TRACE).expect("a trace"));
    assert_eq!(
        problems,
        ["the CONSUMER span has no link (FOLLOWS_FROM) to the PRODUCER span"],
        "a CONSUMER span without its link is reported, and only that"
    );

    let problems = contract::check_checkout(&read_trace_v3(&document(&without("d2")), TRACE).expect("a trace"));
    assert!(problems.iter().any(|p| p.contains("delivery")), "{problems:?}");
}

#[test]
fn not_found_and_malformed_answers_are_told_apart() {
    let not_found = V3_NOT_FOUND;
    assert_eq!(
        read_trace_v3(not_found, TRACE),
        Err(ReadError::NotFound(TRACE.to_owned()))
    );
    assert_eq!(
        read_trace_v3(&document(&checkout()), OTHER_TRACE),
        Err(ReadError::NotFound(OTHER_TRACE.to_owned()))
    );
    assert!(matches!(read_trace_v3("<html>", TRACE), Err(ReadError::Malformed(_))));
    assert!(matches!(
        read_trace_v3(r#"{"error":{"httpCode":500,"message":"storage down"}}"#, TRACE),
        Err(ReadError::Malformed(why)) if why.contains("storage down")
    ));
    assert!(matches!(
        read_trace_v3(
            r#"{"error":{"httpCode":400,"message":"malformed parameter trace_id: strconv.ParseUint: parsing \"xyz\": invalid syntax"}}"#,
            "xyz"
        ),
        Err(ReadError::Malformed(why)) if why.contains("400")
    ));
}

/// Jaeger 2.13's answers for a trace it does not hold: 404 from both APIs,
/// with a JSON body (sent as text/plain); `/api/traces` has `"data": null`.
const V3_NOT_FOUND: &str = r#"{"error":{"httpCode":404,"message":"No traces found"}}"#;
const V1_NOT_FOUND: &str =
    r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#;

/// A Jaeger stand-in on loopback serving the given v3 and v1 bodies with 200 (None: 404 as a server without that API).
async fn jaeger(v3: Option<String>, v1: Option<String>) -> SocketAddr {
    let ok = |body: Option<String>| body.map(|body| (StatusCode::OK, body));
    jaeger_answering(ok(v3), ok(v1)).await
}

/// A Jaeger stand-in on loopback answering each API with a status and body (None: 404 as a server without that API).
async fn jaeger_answering(v3: Option<(StatusCode, String)>, v1: Option<(StatusCode, String)>) -> SocketAddr {
    let absent = || (StatusCode::NOT_FOUND, "404 page not found".to_owned());
    let router = Router::new()
        .route(
            "/api/v3/traces/{id}",
            get(move || async move { v3.unwrap_or_else(absent) }),
        )
        .route(
            "/api/traces/{id}",
            get(move || async move { v1.unwrap_or_else(absent) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn verify(addr: SocketAddr) -> (Option<i32>, String) {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_verify-trace"))
            .args([TRACE, &format!("http://{addr}")])
            .output()
            .expect("run verify-trace")
    })
    .await
    .expect("join");
    (
        output.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A v1 (`/api/traces`) document of a complete checkout, for the fallback.
fn v1_document() -> String {
    let process = |service: &str| service.replace('.', "_");
    let spans: Vec<Value> = checkout()
        .iter()
        .enumerate()
        .map(|(i, (id, parent, service, name, kind, link))| {
            // As Jaeger translates OTLP: a link to the parent turns the parent's
            // CHILD_OF reference into FOLLOWS_FROM instead of adding one.
            let mut references = Vec::new();
            if let Some(parent) = parent {
                let ref_type = if *link == Some(*parent) {
                    "FOLLOWS_FROM"
                } else {
                    "CHILD_OF"
                };
                references.push(json!({ "refType": ref_type, "traceID": TRACE, "spanID": span_id(parent) }));
            }
            if let Some(link) = link.filter(|link| Some(link) != parent.as_ref()) {
                references.push(json!({ "refType": "FOLLOWS_FROM", "traceID": TRACE, "spanID": span_id(link) }));
            }
            let kind = ["", "internal", "server", "client", "producer", "consumer"][usize::from(*kind)];
            json!({
                "traceID": TRACE, "spanID": span_id(id), "operationName": name, "references": references,
                "startTime": 1_763_700_000_000_000u64 + i as u64, "duration": 1500,
                "tags": [{ "key": "span.kind", "type": "string", "value": kind }], "processID": process(service)
            })
        })
        .collect();
    let processes: serde_json::Map<String, Value> = checkout()
        .iter()
        .map(|s| (process(s.2), json!({ "serviceName": s.2 })))
        .collect();
    json!({ "data": [{ "traceID": TRACE, "spans": spans, "processes": processes }] }).to_string()
}

#[tokio::test]
async fn the_binary_reads_v3_and_exits_by_the_verdict() {
    let (code, output) = verify(jaeger(Some(document(&checkout())), None).await).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("OK: one trace"), "{output}");
    assert!(!output.contains("note:"), "v3 answered, no fallback expected: {output}");

    let (code, output) = verify(jaeger(Some(document(&without("e5"))), None).await).await;
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("MISSING"), "{output}");
}

#[tokio::test]
async fn the_binary_falls_back_to_api_traces_when_v3_is_absent() {
    let (code, output) = verify(jaeger(None, Some(v1_document())).await).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("read http://"), "the fallback is announced: {output}");

    let (code, output) = verify(jaeger(None, None).await).await;
    assert_eq!(code, Some(2), "{output}");
}

#[tokio::test]
async fn a_trace_jaeger_does_not_hold_is_reported_as_missing_by_both_apis() {
    let not_found = |body: &str| Some((StatusCode::NOT_FOUND, body.to_owned()));
    let (code, output) = verify(jaeger_answering(not_found(V3_NOT_FOUND), not_found(V1_NOT_FOUND)).await).await;
    assert_eq!(code, Some(2), "{output}");
    assert_eq!(
        output.matches(&format!("Jaeger has no trace {TRACE}")).count(),
        2,
        "both answers read as 'no such trace', not as malformed documents: {output}"
    );
}
