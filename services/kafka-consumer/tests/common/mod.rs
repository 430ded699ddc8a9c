//! What the kafka-consumer tests share: placing orders, waiting for emails, logs and commits.
#![allow(dead_code)] // each test binary uses its own part

use std::time::Duration;

use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _, StreamConsumer},
    message::{Header, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use serde_json::Value;
use test_support::{SpanKind, SpanRecord, Stack, WAIT};

/// How long a test keeps watching after everything it waited for arrived, so
/// that a duplicate arriving late (a redelivery after a rebalance or a
/// restart, a retry that raced its own success) fails it too. Nothing
/// announces "no more duplicates", so this is a plain pause; it is above the
/// consumer's commit interval (1 s) and its retry backoff cap in the tests (500 ms).
pub(crate) const QUIET: Duration = Duration::from_secs(3);

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

/// The event of an order eshop placed: charged and confirmed in the stack's
/// billing, as eshop leaves it once Kafka acknowledged the event, so the
/// consumer emails it.
pub(crate) async fn placed_event(stack: &Stack, email: &str) -> api::OrderPlaced {
    let event = order_event(email);
    charge(stack, &event).await;
    settle(stack, api::paths::CONFIRM_PAYMENT, &event, 200).await;
    event
}

/// Confirms or refunds the event's payment in the stack's billing, as eshop
/// does once the checkout's outcome is known, expecting `status`.
pub(crate) async fn settle(stack: &Stack, path: &str, event: &api::OrderPlaced, status: u16) {
    let settled = stack
        .client
        .post(stack.billing.url(path))
        .json(&api::OrderRef {
            order_id: event.order_id,
        })
        .send()
        .await
        .expect("billing answers");
    assert_eq!(settled.status(), status, "{path}");
}

/// The events of `count` placed orders (see [`placed_event`]).
pub(crate) async fn placed_events(stack: &Stack, count: usize) -> Vec<api::OrderPlaced> {
    let mut events = Vec::with_capacity(count);
    for n in 0..count {
        events.push(placed_event(stack, &format!("placed.{n}@example.com")).await);
    }
    events
}

/// Charges the event's order in the stack's billing, as eshop's checkout does.
pub(crate) async fn charge(stack: &Stack, event: &api::OrderPlaced) {
    let charge = api::PaymentRequest {
        order_id: event.order_id,
        email: event.email.clone(),
        items: event.items.clone(),
    };
    let charged = stack
        .client
        .post(stack.billing.url(api::paths::PAYMENT))
        .json(&charge)
        .send()
        .await
        .expect("billing answers");
    assert_eq!(charged.status(), 201, "charged");
}

/// Places a sample order and returns its id.
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

/// Waits until every one of `orders` was emailed, asserts each was sent once,
/// and asserts it again after [`QUIET`]: a late duplicate fails as well.
pub(crate) async fn assert_emailed_once(stack: &Stack, orders: &[&str]) -> Vec<Value> {
    let sent = wait_for_emails(stack, orders).await;
    for order in orders {
        assert_eq!(requests_for(&sent, order), 1, "{order} sent more than once");
    }
    tokio::time::sleep(QUIET).await;
    let sent = stack.json_all(&stack.notification, "/sentEmails").await;
    for order in orders {
        assert_eq!(
            requests_for(&sent, order),
            1,
            "{order} sent again within {QUIET:?} of its first email"
        );
    }
    sent
}

/// Waits for the CONSUMER span of the record whose key is `key`: the record was handled.
pub(crate) async fn wait_for_consumed(stack: &Stack, key: &str) -> SpanRecord {
    wait_for_consumer_span(stack, |span| {
        span.str_attribute("messaging.kafka.message.key") == Some(key)
    })
    .await
}

/// Waits for a CONSUMER span that `wanted` picks.
pub(crate) async fn wait_for_consumer_span(stack: &Stack, wanted: impl Fn(&SpanRecord) -> bool) -> SpanRecord {
    wait_for_span(stack, |span| span.kind == SpanKind::Consumer && wanted(span)).await
}

/// Waits for a span, of any process, that `wanted` picks.
pub(crate) async fn wait_for_span(stack: &Stack, wanted: impl Fn(&SpanRecord) -> bool) -> SpanRecord {
    stack
        .receiver
        .store()
        .wait_for(WAIT, |spans| spans.iter().find(|span| wanted(span)).cloned())
        .await
        .unwrap_or_else(|timed_out| panic!("{timed_out}"))
}

/// Writes a record with `headers` (key, value) to eshop-topic: to
/// `partition` when given, else where its key hashes to.
pub(crate) async fn send_with_headers(
    producer: &FutureProducer,
    partition: Option<i32>,
    key: &str,
    payload: &[u8],
    headers: &[(&str, &str)],
) {
    let headers = headers.iter().fold(OwnedHeaders::new(), |all, (key, value)| {
        all.insert(Header {
            key,
            value: Some(*value),
        })
    });
    let mut record = FutureRecord::to("eshop-topic")
        .key(key)
        .payload(payload)
        .headers(headers);
    if let Some(partition) = partition {
        record = record.partition(partition);
    }
    producer
        .send(record, Timeout::After(WAIT))
        .await
        .expect("the broker acknowledges");
}

/// Writes `payload` under `key` to `partition` of eshop-topic, so that a test
/// knows which lane handles it and what is ahead of it.
pub(crate) async fn send_to(producer: &FutureProducer, partition: i32, key: &str, payload: &[u8]) {
    producer
        .send(
            FutureRecord::to("eshop-topic")
                .partition(partition)
                .key(key)
                .payload(payload),
            Timeout::After(WAIT),
        )
        .await
        .expect("the broker acknowledges");
}

/// Writes `event` to `partition`, keyed by its order id as eshop keys it.
pub(crate) async fn send_event_to(producer: &FutureProducer, partition: i32, event: &api::OrderPlaced) {
    let payload = serde_json::to_vec(event).expect("json");
    send_to(producer, partition, &event.order_id.to_string(), &payload).await;
}

/// How many times notification was asked to email `order`, from one read of `/sentEmails`.
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
