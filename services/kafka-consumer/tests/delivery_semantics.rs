//! What a user of the Kafka leg relies on, checked on the real broker and the real processes:
//! a poison record is dead-lettered without blocking, a notification outage loses nothing,
//! a killed consumer resumes without losing or re-sending, and a broker outage is survived.
//!
//! The broker outage freezes the broker (SIGSTOP): it answers nothing, as in a
//! network partition, and comes back with its topics and committed offsets.

mod common;

use std::time::Duration;

use common::{
    QUIET, assert_emailed_once, checkout, placed, wait_for_commit, wait_for_consumed, wait_for_emails, wait_for_log,
};
use rdkafka::{Message as _, message::Headers as _};
use serde_json::Value;
use test_support::{Fault, SpanKind, Stack, StackOptions, Trace, WAIT};

#[tokio::test]
async fn a_poison_record_goes_to_the_dead_letter_topic_and_later_records_still_flow() {
    let stack = Stack::start().await;
    let producer = common::producer(&stack);
    // The poison record and, behind it on the same partition, a good one:
    // its lane must go on past the poison record.
    common::send_to(&producer, 0, "poison-1", b"this is not JSON").await;
    let behind = common::placed_event(&stack, "behind.poison@example.com").await;
    common::send_event_to(&producer, 0, &behind).await;
    assert_emailed_once(&stack, &[&behind.order_id.to_string()]).await;

    let dead = common::first_dead_letter(&stack, "test-dead-letter-reader").await;
    assert_eq!(dead.key(), Some(&b"poison-1"[..]));
    assert_eq!(dead.payload(), Some(&b"this is not JSON"[..]));
    let headers = dead.headers().expect("headers");
    let header = |key: &str| {
        headers
            .iter()
            .find(|header| header.key == key)
            .and_then(|header| header.value)
            .map(|value| String::from_utf8_lossy(value).into_owned())
    };
    assert!(
        header("dlq.reason").is_some_and(|reason| reason.contains("not an OrderPlaced")),
        "{:?}",
        header("dlq.reason")
    );
    assert!(header("dlq.source").is_some_and(|source| source.starts_with("eshop-topic/")));

    // The poison record's CONSUMER span is an error, with the dead-letter send under it.
    let trace = stack
        .receiver
        .store()
        .wait_for(WAIT, |spans| {
            let consumer = spans.iter().find(|span| {
                span.kind == SpanKind::Consumer && span.str_attribute("messaging.kafka.message.key") == Some("poison-1")
            })?;
            let trace = Trace::new(
                spans
                    .iter()
                    .filter(|span| span.trace_id == consumer.trace_id)
                    .cloned()
                    .collect(),
            );
            trace
                .has("kafka-consumer", SpanKind::Producer, "send eshop-topic.dlq")
                .then_some(trace)
        })
        .await
        .unwrap_or_else(|timed_out| panic!("{timed_out}"));
    let consumer = trace.one("kafka-consumer", SpanKind::Consumer, "process eshop-topic");
    assert!(consumer.is_error(), "{}", trace.render());
    assert_eq!(consumer.str_attribute("error.type"), Some("invalid_message"));
    trace.child(consumer, "kafka-consumer", SpanKind::Producer, "send eshop-topic.dlq");
}

#[tokio::test]
async fn while_notification_is_down_the_consumer_retries_and_the_email_is_sent_once_in_the_same_trace() {
    let mut stack = Stack::start().await;
    stack.notification.kill().await;

    let response = stack.get("/checkout", &[]).await;
    assert_eq!(response.status(), 200, "a checkout does not wait for the email");
    let body: Value = response.json().await.expect("JSON");
    let order = body["order_id"].as_str().expect("order id").to_owned();
    let trace_id = body["trace_id"].as_str().expect("trace id").to_owned();

    wait_for_log(&stack.consumer, "service unreachable; retrying", 2).await;
    stack.notification.restart().await;

    assert_emailed_once(&stack, &[&order]).await;

    let trace = stack
        .receiver
        .store()
        .wait_for(WAIT, |spans| {
            let trace = Trace::new(spans.iter().filter(|span| span.trace_id == trace_id).cloned().collect());
            // The CONSUMER span ends (and is exported) after notification answered.
            (trace.has("notification", SpanKind::Server, "POST /sendEmail")
                && trace.has("kafka-consumer", SpanKind::Consumer, "process eshop-topic"))
            .then_some(trace)
        })
        .await
        .unwrap_or_else(|timed_out| panic!("{timed_out}"));
    let consumer = trace.one("kafka-consumer", SpanKind::Consumer, "process eshop-topic");
    let attempts = trace
        .children_of(consumer)
        .into_iter()
        .filter(|span| span.kind == SpanKind::Client && span.name == "POST /sendEmail")
        .collect::<Vec<_>>();
    assert!(
        attempts.len() >= 3,
        "two failed attempts and the one that went through:\n{}",
        trace.render()
    );
    assert!(
        attempts.iter().filter(|attempt| attempt.is_error()).count() >= 2,
        "{}",
        trace.render()
    );
    assert!(
        attempts
            .iter()
            .any(|attempt| attempt.attribute("http.request.resend_count").and_then(|v| v.as_i64()) >= Some(2)),
        "retries carry http.request.resend_count:\n{}",
        trace.render()
    );
    let accepted = trace.one("notification", SpanKind::Server, "POST /sendEmail");
    assert_eq!(
        trace.parent_of(accepted).map(|parent| parent.service.as_str()),
        Some("kafka-consumer")
    );
    trace.assert_whole(None);
}

#[tokio::test]
async fn a_killed_consumer_resumes_from_its_committed_offset_losing_and_repeating_nothing() {
    let mut stack = Stack::start().await;
    let (first, partition, offset) = placed(&stack).await;
    wait_for_emails(&stack, &[&first]).await;
    wait_for_commit(&stack, partition, offset).await;

    stack.consumer.kill().await;
    let second = checkout(&stack).await;
    let third = checkout(&stack).await;
    stack.consumer.restart().await;
    stack.wait_ready(&stack.consumer).await;

    // Published while the consumer was down: handled once; committed before
    // the kill: not delivered again, now or later.
    let sent = assert_emailed_once(&stack, &[&first, &second, &third]).await;
    assert_eq!(sent.len(), 3, "one email per order: {sent:?}");
}

#[tokio::test]
async fn while_the_broker_is_away_checkouts_are_502s_and_afterwards_the_consumer_resumes_from_its_committed_offset() {
    let mut stack = Stack::start_with(StackOptions {
        env: vec![("KAFKA_PUBLISH_TIMEOUT_MS".to_owned(), "2000".to_owned())],
        ..StackOptions::default()
    })
    .await;
    let (before, partition, offset) = placed(&stack).await;
    wait_for_emails(&stack, &[&before]).await;
    wait_for_commit(&stack, partition, offset).await;

    stack.broker.pause();
    let response = stack.get("/checkout", &[]).await;
    assert_eq!(response.status(), 502);
    let problem: Value = response.json().await.expect("problem+json");
    assert_eq!(problem["service"], "kafka", "{problem}");
    let stock = stack.json(&stack.inventory, "/stock").await;
    let reserved: u64 = stock
        .as_array()
        .expect("list")
        .iter()
        .map(|level| level["reserved"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(reserved, 3, "only the first order's units stay reserved: {stock}");
    let payments = stack.json(&stack.billing, "/payments").await;
    let charged = payments
        .as_array()
        .expect("list")
        .iter()
        .filter(|payment| payment["status"] != "refunded")
        .count();
    assert_eq!(charged, 1, "the failed checkout's charge is refunded: {payments}");

    stack.broker.resume();
    // A new consumer process knows only what the broker committed.
    stack.consumer.restart().await;
    stack.wait_ready(&stack.consumer).await;
    let after = checkout(&stack).await;
    // The consumer went on from its committed offset, not from the start.
    assert_emailed_once(&stack, &[&before, &after]).await;
}

#[tokio::test]
async fn a_publish_acknowledged_after_eshops_timeout_is_refunded_once_and_never_emailed() {
    // eshop gives up on the acknowledgement and refunds, but the broker writes
    // the record anyway, and the consumer reads it while the refund is still
    // on its way (held by the proxy): billing then says "charged", which is
    // not yet "confirmed". Only the refund may decide.
    const REFUND_HELD: Duration = Duration::from_secs(5);
    let stack = Stack::start_with(StackOptions {
        env: vec![("KAFKA_PUBLISH_TIMEOUT_MS".to_owned(), "1500".to_owned())],
        proxy_eshop_billing: true,
        ..StackOptions::default()
    })
    .await;
    // A first checkout, so that eshop's producer is connected: the record of
    // the next one then leaves for the broker before eshop gives up.
    let (warm, _, _) = placed(&stack).await;
    wait_for_emails(&stack, &[&warm]).await;
    let proxy = stack.eshop_billing.as_ref().expect("a proxy");
    proxy.set(Fault::HoldRequest(REFUND_HELD), &[api::paths::REFUND]);

    stack.broker.pause();
    let response = stack.get("/checkout", &[]).await;
    assert_eq!(response.status(), 502, "Kafka did not acknowledge in time");
    let trace_id = trace_id_of(&response);
    let problem: Value = response.json().await.expect("problem+json");
    assert_eq!(problem["service"], "kafka", "{problem}");
    // The broker now writes the record; the refund reaches billing only later.
    stack.broker.resume();

    // The late record's CONSUMER span, in the failed checkout's trace.
    let consumer = common::wait_for_consumer_span(&stack, |span| span.trace_id == trace_id).await;
    assert_eq!(
        consumer.attribute("eshop.order.undone"),
        Some(&trace_model::AttributeValue::Bool(true)),
        "{consumer:?}"
    );
    let order_id = consumer
        .str_attribute("messaging.kafka.message.key")
        .expect("keyed by order")
        .to_owned();
    tokio::time::sleep(QUIET).await;
    let sent = stack.json_all(&stack.notification, "/sentEmails").await;
    assert!(
        sent.iter().all(|email| email["order_id"] != order_id.as_str()),
        "no email for the refunded order: {sent:?}"
    );
    let payments = stack.json_all(&stack.billing, "/payments").await;
    let statuses: Vec<&Value> = payments
        .iter()
        .filter(|payment| payment["order_id"] == order_id.as_str())
        .map(|payment| &payment["status"])
        .collect();
    assert_eq!(
        statuses,
        [&Value::from("refunded")],
        "one payment, refunded: {payments:?}"
    );
}

/// The trace id of eshop's answer, from its `traceresponse` header.
fn trace_id_of(response: &reqwest::Response) -> String {
    let traceresponse = response.headers()["traceresponse"].to_str().expect("ascii");
    traceresponse
        .split('-')
        .nth(1)
        .unwrap_or_else(|| panic!("a trace id in {traceresponse}"))
        .to_owned()
}

#[tokio::test]
async fn an_event_for_an_order_that_was_undone_sends_no_email() {
    // What Kafka holds when it acknowledged too late: eshop answered 502 and
    // refunded, but the record was written. Here: charged, then refunded.
    let stack = Stack::start().await;
    let undone = common::order_event("late.ack@example.com");
    charge_and_refund(&stack, &undone).await;
    // The undone record, and behind it on the same partition an order that
    // stands: once that one is emailed, the undone one was handled before it.
    let producer = common::producer(&stack);
    common::send_event_to(&producer, 0, &undone).await;
    let barrier = common::placed_event(&stack, "after.late.ack@example.com").await;
    common::send_event_to(&producer, 0, &barrier).await;
    let key = undone.order_id.to_string();
    wait_for_emails(&stack, &[&barrier.order_id.to_string()]).await;

    let consumer = wait_for_consumed(&stack, &key).await;
    assert_eq!(
        consumer.attribute("eshop.order.undone"),
        Some(&trace_model::AttributeValue::Bool(true))
    );
    let sent = stack.json_all(&stack.notification, "/sentEmails").await;
    assert!(
        sent.iter().all(|email| email["order_id"] != key),
        "no email for the undone order: {sent:?}"
    );
    // Nor later: a retry or a redelivery of the undone record sends none either.
    tokio::time::sleep(QUIET).await;
    let sent = stack.json_all(&stack.notification, "/sentEmails").await;
    assert!(
        sent.iter().all(|email| email["order_id"] != key),
        "no email for the undone order after {QUIET:?}: {sent:?}"
    );
}

/// What eshop's undo leaves in billing: the order charged, then refunded.
async fn charge_and_refund(stack: &Stack, order: &api::OrderPlaced) {
    common::charge(stack, order).await;
    common::settle(stack, api::paths::REFUND, order, 204).await;
}

#[tokio::test]
async fn an_event_whose_payment_is_never_confirmed_is_dead_lettered_after_the_wait_and_not_emailed() {
    // Charged but never confirmed (eshop crashed before confirming), and one
    // billing does not know at all (its bounded table let it go): neither
    // stands for sure, so neither is emailed; both wait PAYMENT_CONFIRM_WAIT_MS
    // from their publication and go to the dead-letter topic for an operator.
    let stack = Stack::start_with(StackOptions {
        consumer_env: vec![("PAYMENT_CONFIRM_WAIT_MS".to_owned(), "2000".to_owned())],
        ..StackOptions::default()
    })
    .await;
    let unconfirmed = common::order_event("unconfirmed@example.com");
    common::charge(&stack, &unconfirmed).await;
    let unknown = common::order_event("long.ago@example.com");
    let barrier = common::placed_event(&stack, "after.unconfirmed@example.com").await;
    let producer = common::producer(&stack);
    for event in [&unconfirmed, &unknown, &barrier] {
        common::send_event_to(&producer, 0, event).await;
    }
    wait_for_emails(&stack, &[&barrier.order_id.to_string()]).await;

    for event in [&unconfirmed, &unknown] {
        let key = event.order_id.to_string();
        let consumer = wait_for_consumed(&stack, &key).await;
        assert_eq!(
            consumer.str_attribute("error.type"),
            Some("unconfirmed_order"),
            "{consumer:?}"
        );
        let trace = Trace::new(stack.receiver.store().trace(&consumer.trace_id));
        assert!(
            trace.has("kafka-consumer", SpanKind::Producer, "send eshop-topic.dlq"),
            "dead-lettered:\n{}",
            trace.render()
        );
    }
    tokio::time::sleep(QUIET).await;
    let sent = stack.json_all(&stack.notification, "/sentEmails").await;
    for event in [&unconfirmed, &unknown] {
        assert!(
            sent.iter().all(|email| email["order_id"] != event.order_id.to_string()),
            "no email for an order not confirmed: {sent:?}"
        );
    }
}

#[tokio::test]
async fn on_sigterm_the_consumer_commits_what_it_handled_and_exits_zero() {
    // No periodic commit in this test (librdkafka's is every second): only
    // the commit at shutdown can move the group's offset.
    let mut stack = Stack::start_with(StackOptions {
        consumer_env: vec![(
            "KAFKA_CONFIG".to_owned(),
            format!("{},auto.commit.interval.ms=3600000", test_support::TEST_CONSUMER_CONFIG),
        )],
        ..StackOptions::default()
    })
    .await;
    let (order, partition, offset) = placed(&stack).await;
    wait_for_emails(&stack, &[&order]).await;
    wait_for_consumed(&stack, &order).await;

    let status = stack.consumer.terminate().await;
    assert!(status.success(), "kafka-consumer exits 0 on SIGTERM: {status:?}");
    wait_for_commit(&stack, partition, offset).await;
}
