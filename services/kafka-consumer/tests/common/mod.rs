//! What the kafka-consumer tests share: placing orders, waiting for emails, logs and commits.
#![allow(dead_code)] // each test binary uses its own part

use std::time::Duration;

use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _, StreamConsumer},
    message::OwnedMessage,
    producer::FutureProducer,
};
use serde_json::Value;
use test_support::{Stack, WAIT};

/// Places a sample order and returns its id.
/// An "order placed" event for one book, addressed to `email`, as eshop writes it.
pub(crate) fn order_event(email: &str) -> api::OrderPlaced {
    api::OrderPlaced {
        order_id: uuid::Uuid::new_v4(),
        email: api::Email::try_from(email).expect("a test address"),
        items: serde_json::from_value(serde_json::json!([{ "sku": "BOOK-RUST", "quantity": 1 }])).expect("one book"),
        amount_cents: 3_999,
        currency: "EUR".to_owned(),
        tracking_id: "TRK-TEST".to_owned(),
        estimated_delivery: "2026-11-24".to_owned(),
    }
}

pub(crate) async fn checkout(stack: &Stack) -> String {
    placed(stack).await.0
}

/// Places a sample order and returns its id and the partition and offset of its event.
pub(crate) async fn placed(stack: &Stack) -> (String, i32, i64) {
    let response = stack.get("/checkout", &[]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    (
        body["order_id"].as_str().expect("an order id").to_owned(),
        i32::try_from(body["event"]["partition"].as_i64().expect("a partition")).expect("i32"),
        body["event"]["offset"].as_i64().expect("an offset"),
    )
}

/// Waits until the consumer group has committed past `offset` on `partition`
/// (asked the broker with OffsetFetch, without joining the group).
pub(crate) async fn wait_for_commit(stack: &Stack, partition: i32, offset: i64) {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.broker.bootstrap_servers())
        .set("group.id", "eshop-demo-app")
        .set("enable.auto.commit", "false")
        .create()
        .expect("an offset reader");
    let reader = std::sync::Arc::new(reader);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reader = reader.clone();
        let committed = tokio::task::spawn_blocking(move || {
            let mut list = TopicPartitionList::new();
            list.add_partition("eshop-topic", partition);
            reader
                .committed_offsets(list, Duration::from_secs(5))
                .ok()
                .and_then(|list| list.find_partition("eshop-topic", partition).map(|p| p.offset()))
        })
        .await
        .expect("offset fetch");
        if let Some(Offset::Offset(next)) = committed
            && next > offset
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "offset {offset} of partition {partition} not committed within {WAIT:?}: {committed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until notification has sent an email for every one of `orders`, and returns the list.
pub(crate) async fn wait_for_emails(stack: &Stack, orders: &[&str]) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Every page: other tests' records may be more than one page holds.
        let sent = stack.json_all(&stack.notification, "/sentEmails").await;
        if orders
            .iter()
            .all(|order| sent.iter().any(|email| email["order_id"] == *order))
        {
            return sent;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "emails for {orders:?} not all sent within {WAIT:?}: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn requests_for(sent: &[Value], order: &str) -> u64 {
    let matching: Vec<_> = sent.iter().filter(|email| email["order_id"] == order).collect();
    assert_eq!(matching.len(), 1, "one email per order: {sent:?}");
    matching[0]["requests"].as_u64().expect("a count")
}

/// Waits until `process` has logged a line containing `text` at least `times` times.
pub(crate) async fn wait_for_log(process: &test_support::ServiceProcess, text: &str, times: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while process.logs().iter().filter(|line| line.contains(text)).count() < times {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never logged {text:?} {times} times",
            process.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first record of the dead-letter topic, read by a group of its own (`group`).
pub(crate) async fn first_dead_letter(stack: &Stack, group: &str) -> OwnedMessage {
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.broker.bootstrap_servers())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    reader.subscribe(&["eshop-topic.dlq"]).expect("subscribe");
    tokio::time::timeout(WAIT, reader.recv())
        .await
        .expect("a dead letter within WAIT")
        .expect("a record")
        .detach()
}

/// A producer on the stack's broker with librdkafka's defaults, for records the tests write themselves.
pub(crate) fn producer(stack: &Stack) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", stack.broker.bootstrap_servers())
        .create()
        .expect("producer")
}
