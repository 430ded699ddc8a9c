//! notification's own behaviour through its router: one email per order however often asked, paging, problem answers.
//!
//! notification has no undo and so no refusal after one: an email sent is sent.

use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::config::Listen;
use service_kit::query::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use test_support::{TestApp, check_paging, spawn_app};
use uuid::Uuid;

async fn notification() -> TestApp {
    notification_with(api::TableLimits::default()).await
}

async fn notification_with(tables: api::TableLimits) -> TestApp {
    let config = notification::Config {
        listen: Listen {
            host: [127, 0, 0, 1].into(),
            port: 0,
        },
        limits: Default::default(),
        tables,
    };
    spawn_app(notification::app(notification::AppState::new(&config))).await
}

fn email(order_id: Uuid) -> Value {
    json!({
        "order_id": order_id,
        "to": "jane.doe@example.com",
        "subject": "Your order is confirmed",
        "body": "Thank you.",
    })
}

#[tokio::test]
async fn an_order_is_emailed_once_however_often_asked() {
    let app = notification().await;
    let order_id = Uuid::new_v4();
    let first = app.post_json("/sendEmail", &email(order_id)).await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    assert_eq!(first.body, json!({ "order_id": order_id, "status": "sent" }));
    for _ in 0..2 {
        let again = app.post_json("/sendEmail", &email(order_id)).await;
        assert_eq!(again.body, json!({ "order_id": order_id, "status": "already_sent" }));
    }

    let sent = app.get("/sentEmails").await.body;
    assert_eq!(sent.as_array().map(Vec::len), Some(1), "{sent}");
    assert_eq!(
        sent[0]["to"], "jane.doe@example.com",
        "the record keeps the whole address"
    );
    assert_eq!(sent[0]["subject"], "Your order is confirmed");
    assert_eq!(sent[0]["requests"], 3, "every request is counted, one email sent");
}

#[tokio::test]
async fn sent_emails_are_listed_a_page_at_a_time() {
    let app = notification().await;
    let mut ids = Vec::new();
    for _ in 0..=DEFAULT_PAGE_LIMIT {
        let order_id = Uuid::new_v4();
        let sent = app.post_json("/sendEmail", &email(order_id)).await;
        assert_eq!(sent.status, StatusCode::OK, "{sent:?}");
        ids.push(order_id.to_string());
    }
    check_paging(&app, "/sentEmails", ids, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT).await;
}

#[tokio::test]
async fn bad_bodies_are_answered_with_problems() {
    let app = notification().await;
    app.post_raw_json("/sendEmail", "{")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "malformed-json");
    let no_body = json!({ "order_id": Uuid::new_v4(), "to": "jane.doe@example.com", "subject": "Hi" });
    app.post_json("/sendEmail", &no_body)
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body");

    let broken = json!({ "order_id": Uuid::new_v4(), "to": "jane doe@example.com", "subject": "  ", "body": "" });
    let refused = app.post_json("/sendEmail", &broken).await;
    refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-input");
    assert_eq!(refused.violated_fields(), ["to", "subject"]);
    assert!(
        !refused.body.to_string().contains("jane doe"),
        "the address is masked: {refused:?}"
    );
    assert_eq!(app.get("/sentEmails").await.body, json!([]), "nothing was sent");
}

#[tokio::test]
async fn an_order_older_than_the_table_size_is_forgotten_and_emailed_again() {
    let app = notification_with(api::TableLimits {
        records: 2,
        cancelled: 1,
    })
    .await;
    let orders: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for order_id in &orders {
        app.post_json("/sendEmail", &email(*order_id)).await;
    }
    let sent = app.get("/sentEmails").await.body;
    assert_eq!(sent.as_array().map(Vec::len), Some(2), "{sent}");
    assert!(
        sent.as_array()
            .expect("a list")
            .iter()
            .all(|email| email["order_id"] != orders[0].to_string()),
        "the oldest forgotten: {sent}"
    );
    // The documented limit: an order that far back is emailed again.
    let again = app.post_json("/sendEmail", &email(orders[0])).await;
    assert_eq!(again.body["status"], "sent", "{again:?}");
    let kept = app.post_json("/sendEmail", &email(orders[2])).await;
    assert_eq!(kept.body["status"], "already_sent", "{kept:?}");
}
