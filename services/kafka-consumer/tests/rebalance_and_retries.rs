//! The consumer under a rebalance, a partition stuck in retries, and a mesh policy that says 403.
//!
//! Real processes and the real broker; billing's answers to the consumer pass
//! through a proxy that can drop them, and notification can be a stand-in.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use api::{EmailReceipt, EmailStatus, OrderPlaced};
use axum::{Json, Router, http::StatusCode, response::IntoResponse as _, routing::post};
use common::{QUIET, assert_emailed_once, checkout, wait_for_emails, wait_for_log};
use test_support::{Fault, PARTITIONS, SpanKind, Stack, StackOptions, Trace, WAIT, spawn_app};

/// Records in the burst that pauses a partition again and again (a lane holds 64).
const BURST: usize = 1_000;
/// Billing's answer to the consumer while a lane is to stay full: longer than
/// the consumer waits for room in a lane before it pauses the partition (200 ms).
const SLOW_BILLING: Duration = Duration::from_millis(300);

/// Sends `events` to `partition` all at once, so that they reach the broker
/// together and the consumer fetches them faster than it handles them.
async fn produce_all_to(stack: &Stack, partition: i32, events: &[OrderPlaced]) {
    let producer = common::producer(stack);
    let mut sends = tokio::task::JoinSet::new();
    for event in events {
        let (producer, event) = (producer.clone(), event.clone());
        sends.spawn(async move { common::send_event_to(&producer, partition, &event).await });
    }
    while let Some(sent) = sends.join_next().await {
        sent.expect("a send task");
    }
}

/// The stack with a proxy between the consumer and billing, for its faults.
async fn stack_with_billing_proxy() -> Stack {
    Stack::start_with(StackOptions {
        proxy_consumer_billing: true,
        ..StackOptions::default()
    })
    .await
}

/// The keys of every CONSUMER span the receiver holds, one entry per span.
fn consumed_keys(stack: &Stack) -> Vec<String> {
    stack.receiver.store().inspect(|spans| {
        spans
            .iter()
            .filter(|span| span.kind == SpanKind::Consumer)
            .filter_map(|span| span.str_attribute("messaging.kafka.message.key"))
            .map(str::to_owned)
            .collect()
    })
}

/// Waits for a CONSUMER span of each of `keys` and asserts there is exactly one,
/// then again after [`QUIET`]: each record processed once, by one consumer,
/// with no redelivery arriving late.
async fn assert_consumed_once(stack: &Stack, keys: &[String]) {
    // Twice the usual wait: a burst of a thousand records, handled while the
    // other tests of this file load the same two cores.
    stack
        .receiver
        .store()
        .wait_for(2 * WAIT, |_| {
            let consumed = consumed_keys(stack);
            keys.iter().all(|key| consumed.contains(key)).then_some(())
        })
        .await
        .unwrap_or_else(|timed_out| panic!("{timed_out}"));
    for consumed in [consumed_keys(stack), {
        tokio::time::sleep(QUIET).await;
        consumed_keys(stack)
    }] {
        for key in keys {
            let times = consumed.iter().filter(|consumed| *consumed == key).count();
            assert_eq!(times, 1, "{key} processed {times} times");
        }
    }
}

#[tokio::test]
async fn a_second_consumer_takes_partitions_over_losing_and_repeating_nothing() {
    let stack = stack_with_billing_proxy().await;
    // Each record takes a while, so the lanes hold records in flight and
    // buffered when the partitions move: what a revoke must not hand out twice.
    let billing = stack.consumer_billing.as_ref().expect("a proxy");
    billing.set(Fault::AnswerLate(Duration::from_millis(700)), &["/payments"]);
    let mut orders = Vec::new();
    for _ in 0..10 {
        orders.push(checkout(&stack).await);
    }
    let second = stack.start_another_consumer().await;
    // Orders placed while the group rebalances.
    for _ in 0..20 {
        orders.push(checkout(&stack).await);
    }
    stack.wait_ready(&second).await;
    for _ in 0..10 {
        orders.push(checkout(&stack).await);
    }
    wait_for_log(&stack.consumer, "partitions revoked", 1).await;

    let all: Vec<&str> = orders.iter().map(String::as_str).collect();
    assert_emailed_once(&stack, &all).await;
    // Each record was processed once, by one consumer: one CONSUMER span per order.
    assert_consumed_once(&stack, &orders).await;
    // The slow answers the rebalance was to meet really happened, while the orders were handled.
    assert!(
        billing.answers().len() >= orders.len(),
        "billing's answers were slowed: {:?}",
        billing.answers()
    );
}

#[tokio::test]
async fn a_partition_stuck_in_retries_does_not_hold_up_the_others() {
    let stack = stack_with_billing_proxy().await;
    let billing = stack.consumer_billing.as_ref().expect("a proxy");
    let producer = common::producer(&stack);
    // Billing's answer about one order on partition 0 is lost, again and again;
    // behind it on the same partition, more records than a lane holds.
    let stuck = common::placed_event(&stack, "stuck@example.com").await;
    billing.set(Fault::DropAnswer, &[&format!("/payments?order_id={}", stuck.order_id)]);
    let behind = common::placed_events(&stack, 100).await;
    common::send_event_to(&producer, 0, &stuck).await;
    for event in &behind {
        common::send_event_to(&producer, 0, event).await;
    }
    billing.wait_for_answers(2).await;

    // Orders on the other partitions are emailed meanwhile; those on partition 0 wait.
    let flowing = common::placed_events(&stack, 6).await;
    for (n, event) in flowing.iter().enumerate() {
        let partition = 1 + i32::try_from(n).expect("a few") % (PARTITIONS - 1);
        common::send_event_to(&producer, partition, event).await;
    }
    let flowing: Vec<String> = flowing.iter().map(|event| event.order_id.to_string()).collect();
    // The stuck record and the ones behind it, in partition 0's order.
    let held: Vec<String> = std::iter::once(&stuck)
        .chain(&behind)
        .map(|event| event.order_id.to_string())
        .collect();
    let refs: Vec<&str> = flowing.iter().map(String::as_str).collect();
    let sent = wait_for_emails(&stack, &refs).await;
    assert!(
        held.iter()
            .all(|order| sent.iter().all(|email| email["order_id"] != order.as_str())),
        "partition 0 is still held by its stuck record: {sent:?}"
    );
    // Its lane is full, so partition 0 was paused rather than the poll loop blocked.
    wait_for_log(&stack.consumer, "partition paused", 1).await;

    // Billing answers again: partition 0 resumes where it paused; the stuck
    // record and every one behind it are emailed once, nothing lost or repeated.
    billing.set(Fault::None, &[]);
    let all: Vec<&str> = flowing.iter().chain(&held).map(String::as_str).collect();
    assert_emailed_once(&stack, &all).await;
    wait_for_log(&stack.consumer, "partition resumed", 1).await;
}

#[tokio::test]
async fn a_partition_paused_and_resumed_again_and_again_loses_and_repeats_nothing() {
    let stack = stack_with_billing_proxy().await;
    // A burst on one partition, while billing answers the consumer slowly
    // (each record then outlasts the consumer's wait for room in its lane)
    // and then quickly, three times over: paused, drained, resumed.
    let billing = stack.consumer_billing.as_ref().expect("a proxy");
    billing.set(Fault::AnswerLate(SLOW_BILLING), &["/payments"]);
    let orders = common::placed_events(&stack, BURST).await;
    produce_all_to(&stack, 0, &orders).await;
    for cycle in 1..=3 {
        billing.set(Fault::AnswerLate(SLOW_BILLING), &["/payments"]);
        wait_for_log(&stack.consumer, "partition paused", cycle).await;
        billing.set(Fault::None, &[]);
        wait_for_log(&stack.consumer, "partition resumed", cycle).await;
    }

    let keys: Vec<String> = orders.iter().map(|order| order.order_id.to_string()).collect();
    assert_consumed_once(&stack, &keys).await;
}

#[tokio::test]
async fn a_403_from_notification_is_retried_not_dead_lettered() {
    // A stand-in for notification behind a mesh policy that is fixed after two tries.
    let calls = Arc::new(AtomicUsize::new(0));
    let notification = spawn_app(Router::new().route(
        "/sendEmail",
        post({
            let calls = calls.clone();
            move |Json(request): Json<api::EmailRequest>| async move {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    return (StatusCode::FORBIDDEN, "RBAC: access denied").into_response();
                }
                Json(EmailReceipt {
                    order_id: request.order_id,
                    status: EmailStatus::Sent,
                })
                .into_response()
            }
        }),
    ))
    .await;
    let stack = Stack::start_with(StackOptions {
        consumer_env: vec![("NOTIFICATION_URL".to_owned(), notification.url(""))],
        ..StackOptions::default()
    })
    .await;
    let response = stack.get("/checkout", &[]).await;
    let body: serde_json::Value = response.json().await.expect("JSON");
    let trace_id = body["trace_id"].as_str().expect("trace id").to_owned();

    let trace = stack
        .receiver
        .store()
        .wait_for(WAIT, |spans| {
            let trace = Trace::new(spans.iter().filter(|span| span.trace_id == trace_id).cloned().collect());
            trace
                .has("kafka-consumer", SpanKind::Consumer, "process eshop-topic")
                .then_some(trace)
        })
        .await
        .unwrap_or_else(|timed_out| panic!("{timed_out}"));
    let consumer = trace.one("kafka-consumer", SpanKind::Consumer, "process eshop-topic");
    assert!(!consumer.is_error(), "{}", trace.render());
    let attempts = trace
        .children_of(consumer)
        .into_iter()
        .filter(|span| span.name == "POST /sendEmail")
        .count();
    assert_eq!(attempts, 3, "two 403s, then accepted:\n{}", trace.render());
    assert!(
        !trace.has("kafka-consumer", SpanKind::Producer, "send eshop-topic.dlq"),
        "nothing dead-lettered:\n{}",
        trace.render()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_partition_paused_when_revoked_flows_again_once_it_is_assigned_back() {
    let stack = stack_with_billing_proxy().await;
    let billing = stack.consumer_billing.as_ref().expect("a proxy");
    // Partition 0 stuck behind a lost answer, with more records than its lane
    // holds: the first consumer pauses it.
    let stuck = common::placed_event(&stack, "stuck@example.com").await;
    billing.set(Fault::DropAnswer, &[&format!("/payments?order_id={}", stuck.order_id)]);
    let behind = common::placed_events(&stack, 100).await;
    let producer = common::producer(&stack);
    common::send_event_to(&producer, 0, &stuck).await;
    for event in &behind {
        common::send_event_to(&producer, 0, event).await;
    }
    wait_for_log(&stack.consumer, "partition paused", 1).await;

    // A second consumer joins (every partition of the first is revoked, its
    // lanes stopped) and dies; the first gets every partition back.
    let second = stack.start_another_consumer().await;
    wait_for_log(&stack.consumer, "partitions revoked", 1).await;
    stack.wait_ready(&second).await;
    drop(second);
    wait_for_log(&stack.consumer, "partitions assigned", 3).await;

    // Billing answers again: partition 0 flows on the first consumer.
    billing.set(Fault::None, &[]);
    let orders: Vec<String> = std::iter::once(&stuck)
        .chain(&behind)
        .map(|order| order.order_id.to_string())
        .collect();
    let refs: Vec<&str> = orders.iter().map(String::as_str).collect();
    wait_for_emails(&stack, &refs).await;
}
