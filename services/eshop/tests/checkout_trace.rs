//! The trace contract, end to end: one `/checkout` through all six real processes and a real
//! Kafka-protocol broker is ONE trace, whichever header format the caller (or mesh) speaks.

use api::CheckoutResponse;
use test_support::{SpanKind, SpanRecord, Stack, Trace, WAIT};

const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// Every span a successful checkout produces, by service, kind and name.
const EXPECTED: [(&str, SpanKind, &str); 18] = [
    ("eshop", SpanKind::Server, "GET /checkout"),
    ("eshop", SpanKind::Client, "POST /createOrder"),
    ("inventory", SpanKind::Server, "POST /createOrder"),
    ("inventory", SpanKind::Internal, "reserve stock"),
    ("eshop", SpanKind::Client, "POST /payment"),
    ("billing", SpanKind::Server, "POST /payment"),
    ("billing", SpanKind::Internal, "BankTransaction.transfer"),
    ("billing", SpanKind::Internal, "DBAccess.save2db"),
    ("eshop", SpanKind::Client, "POST /arrangeDelivery"),
    ("delivery", SpanKind::Server, "POST /arrangeDelivery"),
    ("delivery", SpanKind::Internal, "schedule delivery"),
    ("eshop", SpanKind::Producer, "send eshop-topic"),
    ("kafka-consumer", SpanKind::Consumer, "process eshop-topic"),
    ("kafka-consumer", SpanKind::Client, "GET /payments"),
    ("billing", SpanKind::Server, "GET /payments"),
    ("kafka-consumer", SpanKind::Client, "POST /sendEmail"),
    ("notification", SpanKind::Server, "POST /sendEmail"),
    ("notification", SpanKind::Internal, "send email"),
];

/// Calls `GET /checkout` with `headers`, waits for the whole trace and checks it.
async fn checkout_is_one_trace(stack: &Stack, headers: &[(&str, &str)]) -> (CheckoutResponse, Trace) {
    let response = stack.get("/checkout", headers).await;
    assert_eq!(response.status(), 200);
    let traceresponse = response.headers()["traceresponse"].to_str().expect("ascii").to_owned();
    let body: CheckoutResponse = response.json().await.expect("a checkout response");
    assert_eq!(
        body.trace_id.as_deref(),
        Some(CALLER_TRACE_ID),
        "the caller's trace is continued"
    );
    assert!(
        traceresponse.starts_with(&format!("00-{CALLER_TRACE_ID}-")),
        "{traceresponse}"
    );

    let trace = stack
        .receiver
        .store()
        .wait_for(WAIT, |spans| {
            let trace = Trace::new(
                spans
                    .iter()
                    .filter(|span| span.trace_id == CALLER_TRACE_ID)
                    .cloned()
                    .collect(),
            );
            EXPECTED
                .iter()
                .all(|(service, kind, name)| trace.has(service, *kind, name))
                .then_some(trace)
        })
        .await
        .unwrap_or_else(|timed_out| panic!("{timed_out}"));

    trace.assert_whole(Some(CALLER_SPAN_ID));
    // The same contract `verify-trace` checks against a deployment's Jaeger.
    assert_eq!(
        otlp_sink::contract::check_checkout(&trace.spans),
        Vec::<String>::new(),
        "{}",
        trace.render()
    );
    trace.assert_no_errors();
    for (service, kind, name) in EXPECTED {
        trace.one(service, kind, name);
    }

    let root = trace.one("eshop", SpanKind::Server, "GET /checkout");
    assert_eq!(
        root.parent_span_id.as_deref(),
        Some(CALLER_SPAN_ID),
        "eshop's span is the caller's child"
    );
    assert_eq!(traceresponse, format!("00-{CALLER_TRACE_ID}-{}-01", root.span_id));
    assert_attr(root, "http.request.method", "GET");
    assert_attr(root, "http.route", "/checkout");
    assert_attr(root, "url.path", "/checkout");
    assert_attr(root, "server.address", "127.0.0.1");
    assert_attr(root, "client.address", "127.0.0.1");
    assert_eq!(
        root.attribute("http.response.status_code").and_then(|v| v.as_i64()),
        Some(200)
    );
    assert_eq!(
        root.attribute("server.port").and_then(|v| v.as_i64()),
        Some(i64::from(stack.eshop.addr.port()))
    );

    for (service, path) in [
        ("inventory", "/createOrder"),
        ("billing", "/payment"),
        ("delivery", "/arrangeDelivery"),
    ] {
        let name = format!("POST {path}");
        let client = trace.child(root, "eshop", SpanKind::Client, &name);
        assert_attr(client, "http.request.method", "POST");
        assert_eq!(
            client.attribute("http.response.status_code").and_then(|v| v.as_i64()),
            Some(201),
            "{service}"
        );
        let server = trace.child(client, service, SpanKind::Server, &name);
        assert_attr(server, "http.route", path);
        assert_eq!(
            server.attribute("http.response.status_code").and_then(|v| v.as_i64()),
            Some(201),
            "{service}: {:?}",
            server.attributes
        );
    }
    let billing = trace.one("billing", SpanKind::Server, "POST /payment");
    trace.child(billing, "billing", SpanKind::Internal, "BankTransaction.transfer");
    trace.child(billing, "billing", SpanKind::Internal, "DBAccess.save2db");

    let producer = trace.child(root, "eshop", SpanKind::Producer, "send eshop-topic");
    let event = body.event.as_ref().expect("the event's position");
    assert_attr(producer, "messaging.system", "kafka");
    assert_attr(producer, "messaging.operation.type", "send");
    assert_attr(producer, "messaging.operation.name", "send");
    assert_attr(producer, "messaging.destination.name", "eshop-topic");
    assert_attr(producer, "messaging.kafka.message.key", &body.order_id.to_string());
    assert_attr(
        producer,
        "messaging.destination.partition.id",
        &event.partition.to_string(),
    );
    assert_eq!(
        producer.attribute("messaging.kafka.offset").and_then(|v| v.as_i64()),
        Some(event.offset)
    );

    let consumer = trace.child(producer, "kafka-consumer", SpanKind::Consumer, "process eshop-topic");
    assert!(
        consumer
            .links
            .iter()
            .any(|link| link.span_id == producer.span_id && link.trace_id == producer.trace_id),
        "the CONSUMER span links to the PRODUCER span (FOLLOWS_FROM):\n{}",
        trace.render()
    );
    assert_attr(consumer, "messaging.system", "kafka");
    assert_attr(consumer, "messaging.operation.type", "process");
    assert_attr(consumer, "messaging.consumer.group.name", "eshop-demo-app");
    assert_attr(
        consumer,
        "messaging.destination.partition.id",
        &event.partition.to_string(),
    );
    assert_eq!(
        consumer.attribute("messaging.kafka.offset").and_then(|v| v.as_i64()),
        Some(event.offset)
    );

    // The consumer asks billing whether the order stands before emailing.
    let stands = trace.child(consumer, "kafka-consumer", SpanKind::Client, "GET /payments");
    trace.child(stands, "billing", SpanKind::Server, "GET /payments");
    let email_call = trace.child(consumer, "kafka-consumer", SpanKind::Client, "POST /sendEmail");
    let email = trace.child(email_call, "notification", SpanKind::Server, "POST /sendEmail");
    trace.child(email, "notification", SpanKind::Internal, "send email");
    (body, trace)
}

fn assert_attr(span: &SpanRecord, key: &str, expected: &str) {
    assert_eq!(
        span.str_attribute(key),
        Some(expected),
        "{} {:?} attribute {key}: {:?}",
        span.service,
        span.name,
        span.attributes
    );
}

#[tokio::test]
async fn w3c_traceparent_is_continued_through_rest_and_kafka_into_notification() {
    let stack = Stack::start().await;
    let traceparent = format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01");
    let (body, trace) =
        checkout_is_one_trace(&stack, &[("traceparent", &traceparent), ("x-request-id", "req-w3c-1")]).await;

    // x-request-id reaches every service, across the Kafka hop too.
    for service in ["eshop", "inventory", "billing", "delivery", "notification"] {
        let server = trace
            .spans
            .iter()
            .find(|span| span.service == service && span.kind == SpanKind::Server);
        assert_eq!(
            server.and_then(|span| span.str_attribute("http.request.header.x-request-id")),
            Some("req-w3c-1"),
            "{service}:\n{}",
            trace.render()
        );
    }
    let sent = stack.json(&stack.notification, "/sentEmails").await;
    let emails: Vec<_> = sent
        .as_array()
        .expect("a list")
        .iter()
        .filter(|email| email["order_id"] == body.order_id.to_string())
        .collect();
    assert_eq!(emails.len(), 1, "one email for the order: {sent}");
    assert_eq!(emails[0]["requests"], 1);
}

#[tokio::test]
async fn b3_multi_headers_are_continued() {
    let stack = Stack::start().await;
    checkout_is_one_trace(
        &stack,
        &[
            ("x-b3-traceid", CALLER_TRACE_ID),
            ("x-b3-spanid", CALLER_SPAN_ID),
            ("x-b3-sampled", "1"),
        ],
    )
    .await;
}

#[tokio::test]
async fn b3_single_header_is_continued() {
    let stack = Stack::start().await;
    checkout_is_one_trace(&stack, &[("b3", &format!("{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-1"))]).await;
}
