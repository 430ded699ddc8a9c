//! `Idempotency-Key` on `POST /checkout`, on the whole suite: a retried request returns the first answer and places nothing twice.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::{Fault, Stack, StackOptions};

const KEY: &str = "idempotency-key";

async fn post(stack: &Stack, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = stack.client.post(stack.eshop.url("/checkout")).json(body);
    if let Some(key) = key {
        request = request.header(KEY, key);
    }
    request.send().await.expect("eshop answers")
}

#[tokio::test]
async fn a_repeated_key_returns_the_first_answer_and_places_one_order() {
    let stack = Stack::start().await;
    let order = json!({ "email": "jane.doe@example.com", "items": [{ "sku": "BOOK-RUST", "quantity": 1 }] });

    let first = post(&stack, Some("\"order-attempt-1\""), &order).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("JSON");

    let again = post(&stack, Some("\"order-attempt-1\""), &order).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("JSON");
    assert_eq!(again, first, "the same answer, the same order id");

    let different = json!({ "email": "jane.doe@example.com", "items": [{ "sku": "MUG-FERRIS", "quantity": 1 }] });
    let reused = post(&stack, Some("\"order-attempt-1\""), &different).await;
    assert_eq!(reused.status(), 422);
    let problem: Value = reused.json().await.expect("problem+json");
    assert_eq!(problem["type"], "urn:eshop:problem:idempotency-key-reused");

    let malformed = post(&stack, Some("\"unterminated"), &order).await;
    assert_eq!(malformed.status(), 400);

    // Without a key, each request is an order of its own.
    assert_eq!(post(&stack, None, &order).await.status(), 200);

    let payments = stack.json(&stack.billing, "/payments").await;
    let payments = payments.as_array().expect("a list");
    assert_eq!(payments.len(), 2, "two orders charged, not three: {payments:?}");
    let charged_first = payments
        .iter()
        .filter(|payment| payment["order_id"] == first["order_id"])
        .count();
    assert_eq!(charged_first, 1);
}

#[tokio::test]
async fn a_key_in_flight_is_409_a_4xx_is_replayed_and_a_5xx_is_not_kept() {
    let stack = Stack::start_with(StackOptions {
        proxy_eshop_billing: true,
        ..StackOptions::default()
    })
    .await;
    let billing = stack.eshop_billing.as_ref().expect("a proxy");
    let order = json!({ "email": "jane.doe@example.com", "items": [{ "sku": "BOOK-RUST", "quantity": 1 }] });

    // While the first request waits for billing's (held) answer, a second
    // with its key is told that it is still being processed.
    billing.set(Fault::AnswerLate(Duration::from_millis(1_000)), &["/payment"]);
    let first = tokio::spawn({
        let request = stack
            .client
            .post(stack.eshop.url("/checkout"))
            .header(KEY, "\"in-flight\"")
            .json(&order);
        async move { request.send().await }
    });
    billing.wait_for_answers(1).await;
    let second = post(&stack, Some("\"in-flight\""), &order).await;
    assert_eq!(second.status(), 409, "still being processed");
    let problem: Value = second.json().await.expect("problem+json");
    assert_eq!(problem["type"], "urn:eshop:problem:idempotency-key-in-use", "{problem}");
    let first = first.await.expect("task").expect("eshop answers");
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("JSON");
    let again = post(&stack, Some("\"in-flight\""), &order).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.expect("JSON"), first);

    // A 4xx is kept: the declined order's answer is replayed.
    billing.set(Fault::None, &[]);
    let laptop = json!({ "email": "jane.doe@example.com", "items": [{ "sku": "LAPTOP-PRO", "quantity": 1 }] });
    let declined = post(&stack, Some("\"declined\""), &laptop).await;
    assert_eq!(declined.status(), 402);
    assert!(declined.headers().get("idempotent-replayed").is_none());
    let declined: Value = declined.json().await.expect("problem+json");
    let replayed = post(&stack, Some("\"declined\""), &laptop).await;
    assert_eq!(replayed.status(), 402);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true", "a 4xx is kept");
    assert_eq!(replayed.json::<Value>().await.expect("problem+json"), declined);

    // A 5xx is not kept: billing's answer is lost (502, the charge undone),
    // and the same key, sent again once billing answers, places the order.
    billing.set(Fault::DropAnswer, &["/payment"]);
    let lost = post(&stack, Some("\"lost-answer\""), &order).await;
    assert_eq!(lost.status(), 502);
    billing.set(Fault::None, &[]);
    let retried = post(&stack, Some("\"lost-answer\""), &order).await;
    assert_eq!(retried.status(), 200, "a 5xx is not kept: the retry is a new attempt");
    assert!(retried.headers().get("idempotent-replayed").is_none());
    let retried: Value = retried.json().await.expect("JSON");

    let payments = stack.json(&stack.billing, "/payments").await;
    let status_of = |order_id: &Value| {
        payments
            .as_array()
            .expect("a list")
            .iter()
            .filter(|payment| payment["order_id"] == *order_id)
            .map(|payment| payment["status"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(status_of(&first["order_id"]), ["confirmed"], "{payments}");
    assert_eq!(status_of(&retried["order_id"]), ["confirmed"], "{payments}");
    let statuses: Vec<&str> = payments
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|payment| payment["status"].as_str())
        .collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == "confirmed").count(),
        2,
        "the lost answer's charge was refunded: {payments}"
    );
}

#[tokio::test]
async fn an_order_refused_by_validation_takes_no_key() {
    let stack = Stack::start().await;
    let invalid = json!({ "email": "not an address", "items": [{ "sku": "BOOK-RUST", "quantity": 1 }] });
    let refused = post(&stack, Some("\"fixed-later\""), &invalid).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.headers().get("idempotent-replayed").is_none());

    // The client corrects the order and sends it with the same key: it is
    // placed, not refused as a different request under a used key.
    let corrected = json!({ "email": "jane.doe@example.com", "items": [{ "sku": "BOOK-RUST", "quantity": 1 }] });
    let placed = post(&stack, Some("\"fixed-later\""), &corrected).await;
    assert_eq!(placed.status(), 200, "{:?}", placed.text().await);
}

/// The table is as small as it gets (two keys) and both are taken by
/// checkouts still running: a third key is refused and takes nothing, and
/// the first client's retry is told to wait rather than charged again.
#[tokio::test]
async fn a_key_in_flight_is_never_evicted_by_new_keys() {
    let stack = Stack::start_with(StackOptions {
        proxy_eshop_billing: true,
        env: vec![("IDEMPOTENCY_KEYS_MAX".to_owned(), "2".to_owned())],
        ..StackOptions::default()
    })
    .await;
    let billing = stack.eshop_billing.as_ref().expect("a proxy");
    let order = json!({ "email": "jane.doe@example.com", "items": [{ "sku": "BOOK-RUST", "quantity": 1 }] });
    billing.set(Fault::AnswerLate(Duration::from_millis(1_500)), &["/payment"]);
    let in_flight = |key: &'static str| {
        let request = stack
            .client
            .post(stack.eshop.url("/checkout"))
            .header(KEY, key)
            .json(&order);
        tokio::spawn(async move { request.send().await })
    };
    let first = in_flight("\"first\"");
    billing.wait_for_answers(1).await;
    let second = in_flight("\"second\"");
    billing.wait_for_answers(2).await;

    // Both keys are in flight: a new one would have to evict one of them.
    let third = post(&stack, Some("\"third\""), &order).await;
    assert_eq!(third.status(), 503);
    assert!(third.headers().get("retry-after").is_some(), "{:?}", third.headers());
    let problem: Value = third.json().await.expect("problem+json");
    assert_eq!(problem["type"], "urn:eshop:problem:idempotency-keys-busy", "{problem}");
    // The first client retries while its checkout still runs.
    let retry = post(&stack, Some("\"first\""), &order).await;
    assert_eq!(retry.status(), 409, "the key was kept while its checkout ran");

    let first = first.await.expect("task").expect("eshop answers");
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("JSON");
    assert_eq!(second.await.expect("task").expect("eshop answers").status(), 200);
    let replayed = post(&stack, Some("\"first\""), &order).await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(replayed.json::<Value>().await.expect("JSON"), first);

    // Two checkouts, two charges: the refused third and the retries took none.
    let payments = stack.json(&stack.billing, "/payments").await;
    assert_eq!(payments.as_array().map(Vec::len), Some(2), "{payments}");
    assert_eq!(billing.answers().len(), 2, "billing was asked twice");
}
