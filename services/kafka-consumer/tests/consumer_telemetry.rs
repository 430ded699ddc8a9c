//! The consumer's telemetry beyond its spans, on the real broker and process: a log
//! record written while handling a record carries the CONSUMER span's ids,
//! `x-request-id` and baggage go on from the record to the dead-letter copy, and
//! the dead letter is counted as a message sent to the dead-letter topic.

mod common;

use rdkafka::{Message as _, message::Headers as _};
use test_support::{SpanKind, Stack, WAIT};
use trace_model::AttributeValue;

const TRACE_ID: &str = "5bf92f3577b34da6a3ce929d0e0e4736";
const PRODUCER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_dead_lettered_record_keeps_its_log_its_request_id_and_its_baggage() {
    let stack = Stack::start().await;
    let producer = common::producer(&stack);
    let traceparent = format!("00-{TRACE_ID}-{PRODUCER_SPAN}-01");
    common::send_with_headers(
        &producer,
        None,
        "poison-2",
        b"this is not JSON",
        &[
            ("traceparent", traceparent.as_str()),
            ("x-request-id", "req-poison"),
            ("baggage", "synthetic_request=true"),
        ],
    )
    .await;

    // The dead-letter copy carries the request id and the baggage on.
    let dead = common::first_dead_letter(&stack, "test-dead-letter-telemetry").await;
    let header = |key: &str| {
        dead.headers()
            .and_then(|headers| headers.iter().find(|header| header.key == key))
            .and_then(|header| header.value)
            .map(|value| String::from_utf8_lossy(value).into_owned())
    };
    assert_eq!(header("x-request-id").as_deref(), Some("req-poison"));
    assert_eq!(header("baggage").as_deref(), Some("synthetic_request=true"));
    assert!(
        header("traceparent").is_some_and(|tp| tp.contains(TRACE_ID)),
        "{:?}",
        header("traceparent")
    );

    // The error log written while handling it is under the CONSUMER span.
    let consumer = stack
        .receiver
        .store()
        .wait_for(WAIT, |spans| {
            spans
                .iter()
                .find(|span| span.trace_id == TRACE_ID && span.kind == SpanKind::Consumer)
                .cloned()
        })
        .await
        .unwrap_or_else(|timed_out| panic!("{timed_out}"));
    assert_eq!(consumer.str_attribute("synthetic_request"), Some("true"));
    let log = stack
        .receiver
        .logs()
        .wait_for(WAIT, |logs| {
            // The error logged about this record (whatever its wording), found by its trace.
            logs.iter()
                .find(|log| {
                    log.service == "kafka-consumer"
                        && log.severity_text == "ERROR"
                        && log.trace_id.as_deref() == Some(TRACE_ID)
                })
                .cloned()
        })
        .await
        .unwrap_or_else(|logs| panic!("no log record for the poison record: {logs:#?}"));
    assert!(log.body.contains("dead-letter"), "{log:?}");
    assert_eq!(log.span_id.as_deref(), Some(consumer.span_id.as_str()), "{log:?}");

    // Counted as a message sent to the dead-letter topic.
    stack
        .receiver
        .metrics()
        .wait_for(WAIT, |points| {
            points
                .iter()
                .find(|point| {
                    point.service == "kafka-consumer"
                        && point.name == "messaging.client.sent.messages"
                        && point.attribute("messaging.destination.name")
                            == Some(&AttributeValue::String("eshop-topic.dlq".into()))
                        && point.value >= 1.0
                })
                .cloned()
        })
        .await
        .unwrap_or_else(|points| panic!("no dead-letter count: {points:#?}"));
    // And by the business counter, with why.
    let counted = stack
        .receiver
        .metrics()
        .wait_for(WAIT, |points| {
            points
                .iter()
                .find(|point| {
                    point.service == "kafka-consumer"
                        && point.name == telemetry::semconv::eshop::metric::RECORDS_DEAD_LETTERED
                })
                .cloned()
        })
        .await
        .unwrap_or_else(|points| panic!("no dead-lettered count: {points:#?}"));
    assert_eq!(counted.unit, "{record}");
    assert_eq!(
        counted.attribute("error.type"),
        Some(&AttributeValue::String("invalid_message".into()))
    );
}
