//! The trace contract, end to end: one `/checkout` through all six real processes and a real
//! Kafka-protocol broker is ONE trace, whichever header format the caller (or mesh) speaks.

use api::CheckoutResponse;
use otlp_sink::{MetricKind, MetricPoint};
use telemetry::semconv::eshop;
use test_support::{SpanKind, SpanRecord, Stack, Trace, WAIT};
use trace_model::{AttributeValue, LogRecord};

const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// Every span a successful checkout produces, by service, kind and name.
const EXPECTED: [(&str, SpanKind, &str); 20] = [
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
    ("eshop", SpanKind::Client, "POST /confirmPayment"),
    ("billing", SpanKind::Server, "POST /confirmPayment"),
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
        trace_contract::check_checkout(&trace.spans),
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
        let callee = match service {
            "inventory" => &stack.inventory,
            "billing" => &stack.billing,
            _ => &stack.delivery,
        };
        // An int, as the conventions type it (it was once exported as a string).
        assert_eq!(
            client.attribute("server.port"),
            Some(&AttributeValue::Int(i64::from(callee.addr.port()))),
            "{service}: {:?}",
            client.attributes
        );
        assert_attr(client, "server.address", "127.0.0.1");
        assert_eq!(client.attribute("error.type"), None, "{service}");
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

    // The payment confirmed after the acknowledgement: only now may the email go out.
    let confirm = trace.child(root, "eshop", SpanKind::Client, "POST /confirmPayment");
    assert!(
        confirm.start_unix_nanos >= producer.end_unix_nanos,
        "confirmed after Kafka acknowledged:\n{}",
        trace.render()
    );
    let confirmed = trace.child(confirm, "billing", SpanKind::Server, "POST /confirmPayment");
    assert_eq!(
        confirmed
            .attribute("http.response.status_code")
            .and_then(|v| v.as_i64()),
        Some(200)
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

    // The consumer asks billing whether the payment was confirmed before
    // emailing; billing holds the answer until it is (one look).
    let stands = trace.child(consumer, "kafka-consumer", SpanKind::Client, "GET /payments");
    let payments = trace.child(stands, "billing", SpanKind::Server, "GET /payments");
    assert!(
        payments
            .str_attribute("url.query")
            .is_some_and(|query| query.starts_with(&format!("order_id={}&wait_ms=", body.order_id))),
        "{:?}",
        payments.attributes
    );
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
    let (body, trace) = checkout_is_one_trace(
        &stack,
        &[
            ("traceparent", &traceparent),
            ("x-request-id", "req-w3c-1"),
            ("baggage", "synthetic_request=true,not.listed=x"),
        ],
    )
    .await;

    // x-request-id reaches every SERVER span of every service, across the
    // Kafka hop too (billing's `GET /payments` is asked by the consumer;
    // its `POST /confirmPayment` by eshop after the acknowledgement), as
    // the string array the conventions define for header attributes.
    for (service, requests) in [
        ("eshop", 1),
        ("inventory", 1),
        ("billing", 3),
        ("delivery", 1),
        ("notification", 1),
    ] {
        let servers: Vec<_> = trace
            .spans
            .iter()
            .filter(|span| span.service == service && span.kind == SpanKind::Server)
            .collect();
        assert_eq!(servers.len(), requests, "{service}:\n{}", trace.render());
        for server in servers {
            assert_eq!(
                server
                    .attribute("http.request.header.x-request-id")
                    .and_then(AttributeValue::as_str_array),
                Some(vec!["req-w3c-1"]),
                "{service} {}:\n{}",
                server.name,
                trace.render()
            );
        }
    }
    // The allow-listed baggage entry is on every span of all six services,
    // after the Kafka hop too; the entry not on the list is on none.
    for span in &trace.spans {
        assert_attr(span, "synthetic_request", "true");
        assert_eq!(span.attribute("not.listed"), None);
    }
    assert_metrics(&stack).await;
    assert_logs_carry_their_span(&stack, &trace).await;
    assert_stdout_lines_carry_their_span(&stack, &trace).await;
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
    let (_, trace) = checkout_is_one_trace(
        &stack,
        &[
            ("x-b3-traceid", CALLER_TRACE_ID),
            ("x-b3-spanid", CALLER_SPAN_ID),
            ("x-b3-sampled", "1"),
        ],
    )
    .await;
    assert!(
        trace
            .spans
            .iter()
            .all(|span| span.attribute("synthetic_request").is_none()),
        "no baggage sent, none on the spans:\n{}",
        trace.render()
    );
}

#[tokio::test]
async fn b3_single_header_is_continued() {
    let stack = Stack::start().await;
    // First, a request whose headers are too large: refused before its SERVER
    // span exists, so nothing of it reaches telemetry.
    let refused_trace = "5ef92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{refused_trace}-{CALLER_SPAN_ID}-01");
    let padding = "x".repeat(20 * 1024);
    let refused = stack
        .get("/checkout", &[("traceparent", &traceparent), ("x-padding", &padding)])
        .await;
    assert_eq!(refused.status(), 431);
    assert!(
        refused.headers().get("traceresponse").is_none(),
        "a SERVER span was made"
    );

    checkout_is_one_trace(&stack, &[("b3", &format!("{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-1"))]).await;
    // eshop exported the checkout's spans after the refused request's, had there been any.
    let spans = stack.receiver.store().spans();
    assert!(
        spans.iter().all(|span| span.trace_id != refused_trace),
        "the refused request left a span"
    );
}

/// One expected metric: service, name, kind, unit, and attributes it must carry.
struct Expected {
    service: &'static str,
    name: &'static str,
    kind: MetricKind,
    unit: &'static str,
    attributes: Vec<(&'static str, AttributeValue)>,
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::String(value.to_owned())
}

/// The HTTP conventions' duration buckets, also the messaging conventions'.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Every semantic-convention instrument, with its unit and attributes (names and types), as received over OTLP.
async fn assert_metrics(stack: &Stack) {
    let kafka = |operation: &'static str| {
        vec![
            ("messaging.system", text("kafka")),
            ("messaging.operation.name", text(operation)),
            ("messaging.destination.name", text("eshop-topic")),
        ]
    };
    let port = |process: &test_support::ServiceProcess| AttributeValue::Int(i64::from(process.addr.port()));
    let mut expected = vec![
        Expected {
            service: "eshop",
            name: "http.server.request.duration",
            kind: MetricKind::Histogram,
            unit: "s",
            attributes: vec![
                ("http.request.method", text("GET")),
                ("http.route", text("/checkout")),
                ("http.response.status_code", AttributeValue::Int(200)),
                ("url.scheme", text("http")),
            ],
        },
        Expected {
            service: "eshop",
            name: "http.client.request.duration",
            kind: MetricKind::Histogram,
            unit: "s",
            attributes: vec![
                ("http.request.method", text("POST")),
                ("server.address", text("127.0.0.1")),
                ("server.port", port(&stack.billing)),
                ("http.response.status_code", AttributeValue::Int(201)),
            ],
        },
        Expected {
            service: "kafka-consumer",
            name: "http.client.request.duration",
            kind: MetricKind::Histogram,
            unit: "s",
            attributes: vec![
                ("http.request.method", text("POST")),
                ("server.port", port(&stack.notification)),
            ],
        },
        Expected {
            service: "eshop",
            name: "messaging.client.operation.duration",
            kind: MetricKind::Histogram,
            unit: "s",
            attributes: kafka("send"),
        },
        Expected {
            service: "eshop",
            name: "messaging.client.sent.messages",
            kind: MetricKind::Counter,
            unit: "{message}",
            attributes: kafka("send"),
        },
        Expected {
            service: "kafka-consumer",
            name: "messaging.client.consumed.messages",
            kind: MetricKind::Counter,
            unit: "{message}",
            attributes: [
                kafka("process"),
                vec![("messaging.consumer.group.name", text("eshop-demo-app"))],
            ]
            .concat(),
        },
        Expected {
            service: "kafka-consumer",
            name: "messaging.process.duration",
            kind: MetricKind::Histogram,
            unit: "s",
            attributes: kafka("process"),
        },
        Expected {
            service: "kafka-consumer",
            name: eshop::metric::KAFKA_CONSUMER_LAG,
            kind: MetricKind::Gauge,
            unit: "{message}",
            attributes: vec![
                ("messaging.system", text("kafka")),
                ("messaging.destination.name", text("eshop-topic")),
            ],
        },
        Expected {
            service: "eshop",
            name: eshop::metric::ORDERS_PLACED,
            kind: MetricKind::Counter,
            unit: "{order}",
            attributes: Vec::new(),
        },
        Expected {
            service: "notification",
            name: eshop::metric::EMAILS_SENT,
            kind: MetricKind::Counter,
            unit: "{email}",
            attributes: Vec::new(),
        },
    ];
    for (service, method, route) in [
        ("inventory", "POST", "/createOrder"),
        ("billing", "POST", "/payment"),
        ("billing", "GET", "/payments"),
        ("delivery", "POST", "/arrangeDelivery"),
        ("notification", "POST", "/sendEmail"),
    ] {
        expected.push(Expected {
            service,
            name: "http.server.request.duration",
            kind: MetricKind::Histogram,
            unit: "s",
            attributes: vec![("http.request.method", text(method)), ("http.route", text(route))],
        });
    }
    let matches = |point: &MetricPoint, want: &Expected| {
        point.service == want.service
            && point.name == want.name
            && want
                .attributes
                .iter()
                .all(|(key, value)| point.attribute(key) == Some(value))
    };
    let found = stack
        .receiver
        .metrics()
        .wait_for(WAIT, |points| {
            expected
                .iter()
                .all(|want| points.iter().any(|point| matches(point, want)))
                .then(|| points.to_vec())
        })
        .await
        .unwrap_or_else(|points| {
            let missing: Vec<_> = expected
                .iter()
                .filter(|want| !points.iter().any(|point| matches(point, want)))
                .map(|want| format!("{} {} {:?}", want.service, want.name, want.attributes))
                .collect();
            panic!("metrics missing: {missing:#?}\nreceived: {points:#?}")
        });
    for want in &expected {
        let point = found.iter().find(|point| matches(point, want)).expect("found above");
        assert_eq!(
            (point.kind, point.unit.as_str()),
            (want.kind, want.unit),
            "{}",
            want.name
        );
        match want.kind {
            MetricKind::Histogram => {
                assert_eq!(point.bounds, DURATION_BUCKETS, "{}", want.name);
                assert!(point.count >= 1, "{point:?}");
            }
            // Records behind: none or a few, never negative (librdkafka's "unknown").
            MetricKind::Gauge => assert!(point.value >= 0.0, "{point:?}"),
            _ => assert!(point.value >= 1.0, "{point:?}"),
        }
        for point in found.iter().filter(|point| point.name == want.name) {
            // Types hold on every point, not only the one matched.
            if let Some(status) = point.attribute("http.response.status_code") {
                assert!(matches!(status, AttributeValue::Int(_)), "{point:?}");
            }
            if let Some(port) = point.attribute("server.port") {
                assert!(matches!(port, AttributeValue::Int(_)), "{point:?}");
            }
        }
    }
}

/// A log line written inside each service's request arrives over OTLP with the
/// trace id and the id of a span of that service in this trace.
async fn assert_logs_carry_their_span(stack: &Stack, trace: &Trace) {
    let expected = [
        ("eshop", eshop::event::ORDER_PLACED),
        ("inventory", eshop::event::STOCK_RESERVED),
        ("billing", eshop::event::PAYMENT_CHARGED),
        ("delivery", eshop::event::DELIVERY_SCHEDULED),
        ("notification", eshop::event::EMAIL_SENT),
    ];
    let in_trace = |log: &LogRecord| log.trace_id.as_deref() == Some(CALLER_TRACE_ID);
    let logs = stack
        .receiver
        .logs()
        .wait_for(WAIT, |logs| {
            expected
                .iter()
                .all(|(service, event)| {
                    logs.iter()
                        .any(|log| in_trace(log) && log.service == *service && log.event_name == *event)
                })
                .then(|| logs.to_vec())
        })
        .await
        .unwrap_or_else(|logs| panic!("log records missing; received: {logs:#?}"));
    for (service, event) in expected {
        let log = logs
            .iter()
            .find(|log| in_trace(log) && log.service == service && log.event_name == event)
            .expect("found above");
        let span = trace
            .spans
            .iter()
            .find(|span| Some(span.span_id.as_str()) == log.span_id.as_deref());
        assert_eq!(
            span.map(|span| span.service.as_str()),
            Some(service),
            "{service} {event:?} carries span id {:?}:\n{}",
            log.span_id,
            trace.render()
        );
        assert_eq!(log.severity_text, "INFO", "{log:?}");
    }
    let billing = logs
        .iter()
        .find(|log| in_trace(log) && log.event_name == eshop::event::PAYMENT_CHARGED)
        .expect("found above");
    assert!(
        matches!(
            billing.attributes.get(eshop::attribute::PAYMENT_AMOUNT_CENTS),
            Some(AttributeValue::Int(_))
        ),
        "{billing:?}"
    );
    assert_eq!(
        billing.attributes.get(eshop::attribute::ORDER_ID),
        logs.iter()
            .find(|log| in_trace(log) && log.event_name == eshop::event::ORDER_PLACED)
            .and_then(|placed| placed.attributes.get(eshop::attribute::ORDER_ID)),
        "one key for the order id: {billing:?}"
    );
}

/// The same on stdout: each service's JSON line about this request names the
/// trace and one of that service's spans in it, as a user grepping a pod's log
/// for a trace id would find it.
async fn assert_stdout_lines_carry_their_span(stack: &Stack, trace: &Trace) {
    let services = [
        &stack.eshop,
        &stack.inventory,
        &stack.billing,
        &stack.delivery,
        &stack.notification,
    ];
    let deadline = tokio::time::Instant::now() + WAIT;
    for process in services {
        let line = loop {
            let line = process
                .logs()
                .iter()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|line| line["trace_id"] == CALLER_TRACE_ID);
            if let Some(line) = line {
                break line;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} wrote no line with trace id {CALLER_TRACE_ID}:\n{}",
                process.name,
                process.logs().join("\n")
            );
            // The lines leave through a writer thread (`logs::writer`).
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let span = trace
            .spans
            .iter()
            .find(|span| Some(span.span_id.as_str()) == line["span_id"].as_str());
        assert_eq!(
            span.map(|span| span.service.as_str()),
            Some(process.name.as_str()),
            "{line}:\n{}",
            trace.render()
        );
        assert!(line["span"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn copied_values_are_capped_and_addresses_masked_in_every_exported_span_and_log() {
    let stack = Stack::start().await;
    let traceparent = format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01");
    let request_id = "r".repeat(300);
    let baggage = format!("synthetic_request={}", "v".repeat(300));
    let (_, trace) = checkout_is_one_trace(
        &stack,
        &[
            ("traceparent", &traceparent),
            ("x-request-id", &request_id),
            ("baggage", &baggage),
        ],
    )
    .await;

    // x-request-id at 128 bytes, on every SERVER span, across the Kafka hop too.
    for server in trace.spans.iter().filter(|span| span.kind == SpanKind::Server) {
        assert_eq!(
            server
                .attribute("http.request.header.x-request-id")
                .and_then(AttributeValue::as_str_array),
            Some(vec![&request_id[..128]]),
            "{} {}",
            server.service,
            server.name
        );
    }
    // A copied header value at 256 bytes, on every span.
    for span in &trace.spans {
        assert_eq!(
            span.str_attribute("synthetic_request").map(str::len),
            Some(256),
            "{} {}",
            span.service,
            span.name
        );
    }

    // The sample order's address appears masked, and never in full, in what
    // the six services exported: span attributes, log bodies and attributes.
    const ADDRESS: &str = "jane.doe@example.com";
    let masked = stack
        .receiver
        .logs()
        .wait_for(WAIT, |logs| {
            logs.iter()
                .find(|log| {
                    log.service == "notification"
                        && log
                            .attributes
                            .values()
                            .any(|value| value.as_str() == Some("j***@example.com"))
                })
                .cloned()
        })
        .await
        .unwrap_or_else(|logs| panic!("no log names the address masked: {logs:#?}"));
    assert_eq!(masked.trace_id.as_deref(), Some(CALLER_TRACE_ID), "{masked:?}");
    let shows_address = |value: &AttributeValue| format!("{value:?}").contains(ADDRESS);
    for span in &trace.spans {
        assert!(
            !span.attributes.values().any(shows_address),
            "{} {}: {:?}",
            span.service,
            span.name,
            span.attributes
        );
    }
    for log in stack.receiver.logs().all() {
        assert!(
            !log.body.contains(ADDRESS) && !log.attributes.values().any(shows_address),
            "{log:?}"
        );
    }
}
