//! `Idempotency-Key` on `POST /checkout`, on the whole suite: a retried request returns the first answer and places nothing twice.

use serde_json::{Value, json};
use test_support::Stack;

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

    // Two requests at once with a new key: one order, whatever each is answered.
    let (a, b) = tokio::join!(
        post(&stack, Some("\"order-attempt-2\""), &order),
        post(&stack, Some("\"order-attempt-2\""), &order),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert!(
        statuses == [200, 200] || statuses == [200, 409],
        "one is placed, the other replayed or told it is in progress: {statuses:?}"
    );

    // Without a key, each request is an order of its own.
    assert_eq!(post(&stack, None, &order).await.status(), 200);

    let payments = stack.json(&stack.billing, "/payments").await;
    let payments = payments.as_array().expect("a list");
    assert_eq!(payments.len(), 3, "three orders charged, not five: {payments:?}");
    let charged_first = payments
        .iter()
        .filter(|payment| payment["order_id"] == first["order_id"])
        .count();
    assert_eq!(charged_first, 1);
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
