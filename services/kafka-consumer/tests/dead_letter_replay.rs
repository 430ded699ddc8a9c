//! `POST /dead-letters/replay` on the real broker and processes: a replayed dead letter is handled once more, inside the original trace, and never replayed twice.

mod common;

use api::paths;
use common::{QUIET, assert_emailed_once, wait_for_consumer_span, wait_for_span};
use serde_json::{Value, json};
use test_support::{SpanKind, SpanRecord, Stack, StackOptions};

/// The PRODUCER span that "sent" the original record: the test writes its context itself.
const ORIGINAL_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const ORIGINAL_SEND: &str = "00f067aa0ba902b7";

fn linked_to(span: &SpanRecord, trace_id: &str, span_id: &str) -> bool {
    span.links
        .iter()
        .any(|link| link.trace_id == trace_id && link.span_id == span_id)
}

async fn replay(stack: &Stack, letters: &Value) -> reqwest::Response {
    stack
        .client
        .post(stack.consumer.url(paths::DEAD_LETTERS_REPLAY))
        .json(&json!({ "dead_letters": letters }))
        .send()
        .await
        .expect("kafka-consumer answers")
}

#[tokio::test]
async fn a_replayed_dead_letter_is_emailed_once_in_the_original_trace_and_never_replayed_twice() {
    // A charged order whose payment eshop never confirmed is dead-lettered
    // after the wait; the operator confirms it by hand, then replays it.
    let stack = Stack::start_with(StackOptions {
        consumer_env: vec![("PAYMENT_CONFIRM_WAIT_MS".to_owned(), "1000".to_owned())],
        ..StackOptions::default()
    })
    .await;
    let event = common::order_event("replayed@example.com");
    common::charge(&stack, &event).await;
    let order = event.order_id.to_string();
    let traceparent = format!("00-{ORIGINAL_TRACE}-{ORIGINAL_SEND}-01");
    let payload = serde_json::to_vec(&event).expect("json");
    common::send_with_headers(
        &common::producer(&stack),
        Some(0),
        &order,
        &payload,
        &[("traceparent", traceparent.as_str()), ("x-request-id", "req-replay")],
    )
    .await;

    let dead_letter_send = wait_for_span(&stack, |span| {
        span.trace_id == ORIGINAL_TRACE
            && span.kind == SpanKind::Producer
            && span.name == "send eshop-topic.dlq"
            && span.attribute("messaging.kafka.offset").is_some()
    })
    .await;
    let partition: i64 = dead_letter_send
        .str_attribute("messaging.destination.partition.id")
        .expect("the dead letter's partition")
        .parse()
        .expect("a number");
    let offset = dead_letter_send
        .attribute("messaging.kafka.offset")
        .and_then(|offset| offset.as_i64())
        .expect("the dead letter's offset");
    common::settle(&stack, paths::CONFIRM_PAYMENT, &event, 200).await;

    // Asked twice at once, and with a place where there is no dead letter.
    let letters =
        json!([{ "partition": partition, "offset": offset }, { "partition": partition, "offset": offset + 1000 }]);
    let (first, second) = tokio::join!(replay(&stack, &letters), replay(&stack, &letters));
    let mut answers = Vec::new();
    for answer in [first, second] {
        assert_eq!(answer.status(), 200);
        answers.push(answer.json::<Value>().await.expect("JSON"));
    }
    let outcomes: Vec<&str> = answers
        .iter()
        .map(|answer| answer["dead_letters"][0]["outcome"].as_str().expect("an outcome"))
        .collect();
    assert!(
        outcomes == ["replayed", "already_replayed"] || outcomes == ["already_replayed", "replayed"],
        "{answers:?}"
    );
    for answer in &answers {
        assert_eq!(answer["dead_letters"][1]["outcome"], "not_found", "{answer}");
    }
    let replayed = answers
        .iter()
        .find(|answer| answer["dead_letters"][0]["outcome"] == "replayed")
        .expect("one replay");
    let replayed_to = &replayed["dead_letters"][0]["replayed_to"];

    assert_emailed_once(&stack, &[&order]).await;
    let consumer = wait_for_consumer_span(&stack, |span| {
        span.str_attribute("messaging.kafka.message.key") == Some(order.as_str())
            && span.str_attribute("messaging.destination.partition.id")
                == replayed_to["partition"]
                    .as_i64()
                    .map(|partition| partition.to_string())
                    .as_deref()
            && span
                .attribute("messaging.kafka.offset")
                .and_then(|offset| offset.as_i64())
                == replayed_to["offset"].as_i64()
    })
    .await;
    assert!(!consumer.is_error(), "{consumer:?}");
    assert_eq!(
        consumer.trace_id, ORIGINAL_TRACE,
        "the replay stays in the original trace"
    );
    assert_eq!(consumer.parent_span_id.as_deref(), Some(ORIGINAL_SEND));
    assert!(
        linked_to(&consumer, ORIGINAL_TRACE, ORIGINAL_SEND),
        "{:?}",
        consumer.links
    );
    assert!(
        linked_to(&consumer, ORIGINAL_TRACE, &dead_letter_send.span_id),
        "linked to the dead letter's send: {:?}",
        consumer.links
    );
    let replay_send = wait_for_span(&stack, |span| {
        span.service == "kafka-consumer" && span.kind == SpanKind::Producer && span.name == "send eshop-topic"
    })
    .await;
    assert!(
        linked_to(&consumer, &replay_send.trace_id, &replay_send.span_id),
        "linked to the replay's send: {:?}",
        consumer.links
    );
    assert!(
        linked_to(&replay_send, ORIGINAL_TRACE, &dead_letter_send.span_id),
        "the replay's send links to the dead letter: {:?}",
        replay_send.links
    );
    let email = wait_for_span(&stack, |span| {
        span.service == "notification" && span.kind == SpanKind::Server && span.trace_id == ORIGINAL_TRACE
    })
    .await;
    let email_call = wait_for_span(&stack, |span| {
        Some(span.span_id.as_str()) == email.parent_span_id.as_deref()
    })
    .await;
    assert_eq!(
        email_call.parent_span_id.as_deref(),
        Some(consumer.span_id.as_str()),
        "notification under the replayed consumer"
    );

    // A third ask, after the first replay was handled: still not replayed.
    let again = replay(&stack, &json!([{ "partition": partition, "offset": offset }])).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("JSON");
    assert_eq!(again["dead_letters"][0]["outcome"], "already_replayed", "{again}");
    tokio::time::sleep(QUIET).await;
    let sent = assert_emailed_once(&stack, &[&order]).await;
    assert_eq!(
        common::requests_for(&sent, &order),
        1,
        "the order was handed to notification once"
    );

    let refused = stack
        .client
        .post(stack.consumer.url(paths::DEAD_LETTERS_REPLAY))
        .json(&json!({ "dead_letters": [] }))
        .send()
        .await
        .expect("kafka-consumer answers");
    assert_eq!(refused.status(), 422);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
}
