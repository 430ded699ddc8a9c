//! billing's own behaviour through its router: charging, refunding twice, refusing a charge after its refund, paging, problem answers.

use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::config::Listen;
use service_kit::query::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use test_support::{TestApp, check_paging, spawn_app};
use uuid::Uuid;

async fn billing() -> TestApp {
    billing_with(api::TableLimits::default()).await
}

async fn billing_with(tables: api::TableLimits) -> TestApp {
    let config = billing::Config {
        listen: Listen {
            host: [127, 0, 0, 1].into(),
            port: 0,
        },
        limits: Default::default(),
        tables,
        credit_limit_cents: billing::DEFAULT_CREDIT_LIMIT_CENTS,
    };
    spawn_app(billing::app(billing::AppState::new(&config))).await
}

fn charge(order_id: Uuid, items: Value) -> Value {
    json!({ "order_id": order_id, "email": "jane.doe@example.com", "items": items })
}

fn books(quantity: u32) -> Value {
    json!([{ "sku": "BOOK-RUST", "quantity": quantity }, { "sku": "MUG-FERRIS", "quantity": 1 }])
}

#[tokio::test]
async fn an_order_is_charged_its_catalogue_price_once() {
    let app = billing().await;
    let order_id = Uuid::new_v4();
    let first = app.post_json("/payment", &charge(order_id, books(2))).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_eq!(first.body["amount_cents"], 2 * 3_999 + 1_299);
    assert_eq!(
        (first.body["currency"].as_str(), first.body["status"].as_str()),
        (Some("EUR"), Some("charged"))
    );

    let again = app.post_json("/payment", &charge(order_id, books(2))).await;
    assert_eq!(again.status, StatusCode::OK, "a retry gets the first charge: {again:?}");
    assert_eq!(again.body["payment_id"], first.body["payment_id"]);
    let listed = app.get(&format!("/payments?order_id={order_id}")).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{listed:?}");
}

#[tokio::test]
async fn an_order_over_the_credit_limit_is_declined_and_not_recorded() {
    let app = billing().await;
    let order_id = Uuid::new_v4();
    let laptop = json!([{ "sku": "LAPTOP-PRO", "quantity": 1 }]);
    app.post_json("/payment", &charge(order_id, laptop))
        .await
        .assert_problem(StatusCode::PAYMENT_REQUIRED, "payment-declined");
    assert_eq!(app.get(&format!("/payments?order_id={order_id}")).await.body, json!([]));
}

#[tokio::test]
async fn a_refund_asked_twice_refunds_once_and_answers_the_same() {
    let app = billing().await;
    let order_id = Uuid::new_v4();
    let charged = app.post_json("/payment", &charge(order_id, books(1))).await;
    let undo = json!({ "order_id": order_id });
    let first = app.post_json("/refund", &undo).await;
    let second = app.post_json("/refund", &undo).await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT)
    );

    let listed = app.get(&format!("/payments?order_id={order_id}")).await.body;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["status"], "refunded");
    assert_eq!(
        listed[0]["amount_cents"], charged.body["amount_cents"],
        "the amount is not touched"
    );
    let never_charged = app.post_json("/refund", &json!({ "order_id": Uuid::new_v4() })).await;
    assert_eq!(
        never_charged.status,
        StatusCode::NO_CONTENT,
        "an undo of nothing is fine"
    );
}

#[tokio::test]
async fn a_charge_after_its_refund_is_refused() {
    let app = billing().await;
    let overtaken = Uuid::new_v4();
    app.post_json("/refund", &json!({ "order_id": overtaken })).await;
    app.post_json("/payment", &charge(overtaken, books(1)))
        .await
        .assert_problem(StatusCode::CONFLICT, "order-cancelled");
    assert_eq!(
        app.get(&format!("/payments?order_id={overtaken}")).await.body,
        json!([])
    );

    let refunded = Uuid::new_v4();
    app.post_json("/payment", &charge(refunded, books(1))).await;
    app.post_json("/refund", &json!({ "order_id": refunded })).await;
    app.post_json("/payment", &charge(refunded, books(1)))
        .await
        .assert_problem(StatusCode::CONFLICT, "order-cancelled");
}

#[tokio::test]
async fn a_charge_is_confirmed_once_and_an_unknown_or_refunded_one_never() {
    let app = billing().await;
    let order_id = Uuid::new_v4();
    let charged = app.post_json("/payment", &charge(order_id, books(1))).await;
    for _ in 0..2 {
        let confirmed = app.post_json("/confirmPayment", &json!({ "order_id": order_id })).await;
        assert_eq!(confirmed.status, StatusCode::OK, "{confirmed:?}");
        assert_eq!(confirmed.body["status"], "confirmed");
        assert_eq!(confirmed.body["payment_id"], charged.body["payment_id"]);
    }
    let listed = app.get(&format!("/payments?order_id={order_id}")).await.body;
    assert_eq!(listed[0]["status"], "confirmed", "{listed}");

    app.post_json("/confirmPayment", &json!({ "order_id": Uuid::new_v4() }))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "payment-not-found");

    let refunded = Uuid::new_v4();
    app.post_json("/payment", &charge(refunded, books(1))).await;
    app.post_json("/refund", &json!({ "order_id": refunded })).await;
    app.post_json("/confirmPayment", &json!({ "order_id": refunded }))
        .await
        .assert_problem(StatusCode::CONFLICT, "order-cancelled");
    let listed = app.get(&format!("/payments?order_id={refunded}")).await.body;
    assert_eq!(
        listed[0]["status"], "refunded",
        "a refused confirmation changes nothing: {listed}"
    );
}

#[tokio::test]
async fn payments_are_listed_a_page_at_a_time() {
    let app = billing().await;
    let mut ids = Vec::new();
    for _ in 0..=DEFAULT_PAGE_LIMIT {
        let order_id = Uuid::new_v4();
        let charged = app.post_json("/payment", &charge(order_id, books(1))).await;
        assert_eq!(charged.status, StatusCode::CREATED, "{charged:?}");
        ids.push(order_id.to_string());
    }
    check_paging(&app, "/payments", ids, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT).await;
}

#[tokio::test]
async fn bad_bodies_are_answered_with_problems() {
    let app = billing().await;
    app.post_raw_json("/payment", "{\"order_id\":")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "malformed-json");
    let missing_email = json!({ "order_id": Uuid::new_v4(), "items": books(1) });
    app.post_json("/payment", &missing_email)
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body");

    let broken = json!({
        "order_id": Uuid::new_v4(),
        "email": "jane",
        "items": [{ "sku": "NO-SUCH-SKU", "quantity": 1 }, { "sku": "BOOK-RUST", "quantity": 0 }],
    });
    let refused = app.post_json("/payment", &broken).await;
    refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-input");
    assert_eq!(
        refused.violated_fields(),
        ["email", "items[0].sku", "items[1].quantity"]
    );
    assert!(
        !refused.body.to_string().contains("\"jane\""),
        "the address is masked: {refused:?}"
    );
    assert_eq!(app.get("/payments").await.body, json!([]), "nothing was charged");
}

#[tokio::test]
async fn the_oldest_payments_and_cancelled_markers_are_forgotten_past_their_table_sizes() {
    let app = billing_with(api::TableLimits {
        records: 2,
        cancelled: 1,
    })
    .await;
    let orders: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for order_id in &orders {
        let charged = app.post_json("/payment", &charge(*order_id, books(1))).await;
        assert_eq!(charged.status, StatusCode::CREATED, "{charged:?}");
    }
    let listed = app.get("/payments").await.body;
    let mut kept: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|payment| payment["order_id"].as_str())
        .collect();
    kept.sort_unstable();
    let mut newest = [orders[1].to_string(), orders[2].to_string()];
    newest.sort_unstable();
    assert_eq!(kept, newest, "the oldest payment forgotten: {listed}");

    // Two refunds of orders billing never saw; only the newer marker is kept,
    // so a charge arriving after the older refund is taken.
    let (older, newer) = (Uuid::new_v4(), Uuid::new_v4());
    for order_id in [older, newer] {
        app.post_json("/refund", &json!({ "order_id": order_id })).await;
    }
    app.post_json("/payment", &charge(newer, books(1)))
        .await
        .assert_problem(StatusCode::CONFLICT, "order-cancelled");
    let late = app.post_json("/payment", &charge(older, books(1))).await;
    assert_eq!(late.status, StatusCode::CREATED, "its marker was evicted: {late:?}");
}
