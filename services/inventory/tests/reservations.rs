//! inventory's own behaviour through its router: reserving, releasing twice, refusing a reservation after its cancellation, the stock list, problem answers.
//!
//! inventory's list, `GET /stock`, is one entry per catalogue SKU and has no pages.

use api::StockLevel;
use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::config::Listen;
use test_support::{TestApp, spawn_app};
use uuid::Uuid;

const INITIAL: u32 = 10;

async fn inventory() -> TestApp {
    let config = inventory::Config {
        listen: Listen {
            host: [127, 0, 0, 1].into(),
            port: 0,
        },
        limits: Default::default(),
        tables: Default::default(),
        initial_stock: INITIAL,
    };
    spawn_app(inventory::app(inventory::AppState::new(&config))).await
}

fn reserve(order_id: Uuid, items: Value) -> Value {
    json!({ "order_id": order_id, "items": items })
}

fn books_and_mugs() -> Value {
    json!([{ "sku": "BOOK-RUST", "quantity": 3 }, { "sku": "MUG-FERRIS", "quantity": 1 }])
}

/// `(available, reserved)` of `sku`.
async fn level(app: &TestApp, sku: &str) -> (u32, u32) {
    let levels: Vec<StockLevel> = serde_json::from_value(app.get("/stock").await.body).expect("stock levels");
    let level = levels.iter().find(|level| level.sku == sku).expect("a catalogue SKU");
    (level.available, level.reserved)
}

#[tokio::test]
async fn an_order_is_reserved_once() {
    let app = inventory().await;
    let order_id = Uuid::new_v4();
    let first = app
        .post_json("/createOrder", &reserve(order_id, books_and_mugs()))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_eq!(first.body["items"], books_and_mugs());
    assert_eq!(level(&app, "BOOK-RUST").await, (INITIAL - 3, 3));
    assert_eq!(level(&app, "MUG-FERRIS").await, (INITIAL - 1, 1));

    let again = app
        .post_json("/createOrder", &reserve(order_id, books_and_mugs()))
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "a retry gets the first reservation: {again:?}"
    );
    assert_eq!(again.body["reservation_id"], first.body["reservation_id"]);
    assert_eq!(
        level(&app, "BOOK-RUST").await,
        (INITIAL - 3, 3),
        "nothing reserved twice"
    );
}

#[tokio::test]
async fn short_stock_reserves_nothing() {
    let app = inventory().await;
    let too_many = json!([{ "sku": "MUG-FERRIS", "quantity": 1 }, { "sku": "BOOK-RUST", "quantity": INITIAL + 1 }]);
    let refused = app.post_json("/createOrder", &reserve(Uuid::new_v4(), too_many)).await;
    refused.assert_problem(StatusCode::CONFLICT, "out-of-stock");
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("BOOK-RUST")),
        "{refused:?}"
    );
    assert_eq!(level(&app, "MUG-FERRIS").await, (INITIAL, 0), "all lines or none");
}

#[tokio::test]
async fn a_cancellation_asked_twice_releases_once_and_answers_the_same() {
    let app = inventory().await;
    let order_id = Uuid::new_v4();
    app.post_json("/createOrder", &reserve(order_id, books_and_mugs()))
        .await;
    let undo = json!({ "order_id": order_id });
    let first = app.post_json("/cancelOrder", &undo).await;
    let second = app.post_json("/cancelOrder", &undo).await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT)
    );
    assert_eq!(level(&app, "BOOK-RUST").await, (INITIAL, 0), "released once, not twice");
    assert_eq!(level(&app, "MUG-FERRIS").await, (INITIAL, 0));
    let never_seen = app
        .post_json("/cancelOrder", &json!({ "order_id": Uuid::new_v4() }))
        .await;
    assert_eq!(never_seen.status, StatusCode::NO_CONTENT, "an undo of nothing is fine");
}

#[tokio::test]
async fn a_reservation_after_its_cancellation_is_refused() {
    let app = inventory().await;
    let overtaken = Uuid::new_v4();
    app.post_json("/cancelOrder", &json!({ "order_id": overtaken })).await;
    app.post_json("/createOrder", &reserve(overtaken, books_and_mugs()))
        .await
        .assert_problem(StatusCode::CONFLICT, "order-cancelled");
    assert_eq!(level(&app, "BOOK-RUST").await, (INITIAL, 0));

    let cancelled = Uuid::new_v4();
    app.post_json("/createOrder", &reserve(cancelled, books_and_mugs()))
        .await;
    app.post_json("/cancelOrder", &json!({ "order_id": cancelled })).await;
    app.post_json("/createOrder", &reserve(cancelled, books_and_mugs()))
        .await
        .assert_problem(StatusCode::CONFLICT, "order-cancelled");
    assert_eq!(level(&app, "BOOK-RUST").await, (INITIAL, 0));
}

#[tokio::test]
async fn the_stock_lists_every_catalogue_sku() {
    let app = inventory().await;
    let levels: Vec<StockLevel> = serde_json::from_value(app.get("/stock").await.body).expect("stock levels");
    let skus: Vec<&str> = levels.iter().map(|level| level.sku.as_str()).collect();
    let mut catalogue: Vec<&str> = api::catalog::PRODUCTS.iter().map(|product| product.sku).collect();
    catalogue.sort_unstable();
    assert_eq!(skus, catalogue);
    assert!(
        levels
            .iter()
            .all(|level| (level.available, level.reserved) == (INITIAL, 0))
    );
}

#[tokio::test]
async fn bad_bodies_are_answered_with_problems() {
    let app = inventory().await;
    app.post_raw_json("/createOrder", "{\"items\": [")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "malformed-json");
    let negative = reserve(Uuid::new_v4(), json!([{ "sku": "BOOK-RUST", "quantity": -1 }]));
    app.post_json("/createOrder", &negative)
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body");

    let broken = json!([
        { "sku": "BOOK-RUST", "quantity": 1_001 },
        { "sku": "NO-SUCH-SKU", "quantity": 1 },
        { "sku": "BOOK-RUST", "quantity": 1 },
    ]);
    let refused = app.post_json("/createOrder", &reserve(Uuid::new_v4(), broken)).await;
    refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-input");
    assert_eq!(
        refused.violated_fields(),
        ["items[2].sku", "items[0].quantity", "items[1].sku"]
    );
    let empty = app.post_json("/createOrder", &reserve(Uuid::new_v4(), json!([]))).await;
    empty.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-input");
    assert_eq!(empty.violated_fields(), ["items"]);
    assert_eq!(level(&app, "BOOK-RUST").await, (INITIAL, 0), "nothing was reserved");
}
