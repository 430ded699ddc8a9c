//! delivery's own behaviour through its router: scheduling, cancelling twice, refusing a schedule after its cancellation, paging, problem answers.

use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::config::Listen;
use service_kit::query::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use test_support::{TestApp, check_paging, spawn_app};
use uuid::Uuid;

const DAYS: u16 = 5;

async fn delivery() -> TestApp {
    let config = delivery::Config {
        listen: Listen {
            host: [127, 0, 0, 1].into(),
            port: 0,
        },
        limits: Default::default(),
        tables: Default::default(),
        delivery_days: DAYS,
    };
    spawn_app(delivery::app(delivery::AppState::new(&config))).await
}

fn shipment(order_id: Uuid) -> Value {
    json!({
        "order_id": order_id,
        "email": "jane.doe@example.com",
        "items": [{ "sku": "TSHIRT-OTEL", "quantity": 2 }],
    })
}

async fn delivery_of(app: &TestApp, order_id: Uuid) -> Vec<Value> {
    let all = app.get(&format!("/deliveries?limit={MAX_PAGE_LIMIT}")).await.body;
    let all = all.as_array().cloned().unwrap_or_default();
    all.into_iter()
        .filter(|delivery| delivery["order_id"] == order_id.to_string())
        .collect()
}

#[tokio::test]
async fn an_order_is_scheduled_once() {
    let app = delivery().await;
    let order_id = Uuid::new_v4();
    let first = app.post_json("/arrangeDelivery", &shipment(order_id)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert!(
        first.body["tracking_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("TRK-")),
        "{first:?}"
    );
    let today = time::OffsetDateTime::now_utc().date();
    let expected: Vec<String> = [0, 1]
        .map(|late| (today + time::Duration::days(i64::from(DAYS) + late)).to_string())
        .into();
    assert!(
        expected
            .iter()
            .any(|date| first.body["estimated_delivery"] == date.as_str()),
        "{DAYS} days from today (or tomorrow, past midnight): {first:?}"
    );
    assert_eq!(first.body["status"], "scheduled");

    let again = app.post_json("/arrangeDelivery", &shipment(order_id)).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "a retry gets the first schedule: {again:?}"
    );
    assert_eq!(again.body["tracking_id"], first.body["tracking_id"]);
    assert_eq!(delivery_of(&app, order_id).await.len(), 1);
}

#[tokio::test]
async fn a_cancellation_asked_twice_cancels_once_and_answers_the_same() {
    let app = delivery().await;
    let order_id = Uuid::new_v4();
    let scheduled = app.post_json("/arrangeDelivery", &shipment(order_id)).await;
    let undo = json!({ "order_id": order_id });
    let first = app.post_json("/cancelDelivery", &undo).await;
    let second = app.post_json("/cancelDelivery", &undo).await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT)
    );

    let listed = delivery_of(&app, order_id).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "cancelled");
    assert_eq!(listed[0]["tracking_id"], scheduled.body["tracking_id"]);
    let never_seen = app
        .post_json("/cancelDelivery", &json!({ "order_id": Uuid::new_v4() }))
        .await;
    assert_eq!(never_seen.status, StatusCode::NO_CONTENT, "an undo of nothing is fine");
}

#[tokio::test]
async fn a_schedule_after_its_cancellation_is_refused() {
    let app = delivery().await;
    let overtaken = Uuid::new_v4();
    app.post_json("/cancelDelivery", &json!({ "order_id": overtaken }))
        .await;
    app.post_json("/arrangeDelivery", &shipment(overtaken))
        .await
        .assert_problem(StatusCode::CONFLICT, "order-cancelled");
    assert!(delivery_of(&app, overtaken).await.is_empty());

    let cancelled = Uuid::new_v4();
    app.post_json("/arrangeDelivery", &shipment(cancelled)).await;
    app.post_json("/cancelDelivery", &json!({ "order_id": cancelled }))
        .await;
    app.post_json("/arrangeDelivery", &shipment(cancelled))
        .await
        .assert_problem(StatusCode::CONFLICT, "order-cancelled");
}

#[tokio::test]
async fn deliveries_are_listed_a_page_at_a_time() {
    let app = delivery().await;
    let mut ids = Vec::new();
    for _ in 0..=DEFAULT_PAGE_LIMIT {
        let order_id = Uuid::new_v4();
        let scheduled = app.post_json("/arrangeDelivery", &shipment(order_id)).await;
        assert_eq!(scheduled.status, StatusCode::CREATED, "{scheduled:?}");
        ids.push(order_id.to_string());
    }
    check_paging(&app, "/deliveries", ids, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT).await;
}

#[tokio::test]
async fn bad_bodies_are_answered_with_problems() {
    let app = delivery().await;
    app.post_raw_json("/arrangeDelivery", "not json")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "malformed-json");
    let mut extra = shipment(Uuid::new_v4());
    extra["express"] = json!(true);
    app.post_json("/arrangeDelivery", &extra)
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body");

    let broken = json!({ "order_id": Uuid::new_v4(), "email": "jane@localhost", "items": [] });
    let refused = app.post_json("/arrangeDelivery", &broken).await;
    refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-input");
    assert_eq!(refused.violated_fields(), ["email", "items"]);
    assert_eq!(app.get("/deliveries").await.body, json!([]), "nothing was scheduled");
}
