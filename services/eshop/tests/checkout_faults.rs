//! eshop's answers to bad input and to failing services, and the undo that leaves nothing behind.
//!
//! eshop and the real inventory, billing and delivery apps run in-process on
//! free ports; a failing service is a stand-in that answers 500, answers too
//! late, or a port nobody listens on. The broker is a closed port too: these
//! tests never get as far as a successful publish.

mod common;

use std::{sync::atomic::Ordering, time::Duration};

use api::{DeliveryStatus, PaymentStatus};
use axum::http::StatusCode;
use common::{HTTP_TIMEOUT, Services, assert_failed_at, closed_port, eshop, order, post_checkout, problem, stand_in};
use serde_json::{Value, json};

#[tokio::test]
async fn bad_input_is_refused_with_problem_json_and_calls_nobody() {
    let (downstream, calls) = stand_in(StatusCode::OK, Duration::ZERO).await;
    let url = downstream.url("");
    let app = eshop(&url, &url, &url).await;

    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "no items",
            json!({ "email": "a@b.example" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
        ),
        (
            "extra field",
            json!({ "email": "a@b.example", "items": [], "coupon": "X" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
        ),
        (
            "empty items",
            json!({ "email": "a@b.example", "items": [] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
        ),
        (
            "quantity 0",
            order("BOOK-RUST", 0),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
        ),
        (
            "absurd quantity",
            order("BOOK-RUST", 1_000_000),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
        ),
        (
            "negative quantity",
            order("BOOK-RUST", 0)
                .to_string()
                .replace(":0", ":-1")
                .parse()
                .expect("json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
        ),
        (
            "unknown SKU",
            order("NO-SUCH-SKU", 1),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
        ),
        (
            "bad email",
            json!({ "email": "jane", "items": [{ "sku": "BOOK-RUST", "quantity": 1 }] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
        ),
    ];
    for (case, body, expected, kind) in cases {
        let (status, problem) = post_checkout(&app, &body).await;
        assert_eq!(status, expected, "{case}: {problem}");
        assert_eq!(
            problem["type"],
            format!("urn:eshop:problem:{kind}"),
            "{case}: {problem}"
        );
    }
    let (_, unknown) = post_checkout(&app, &order("NO-SUCH-SKU", 1)).await;
    assert!(
        unknown["detail"].as_str().is_some_and(|d| d.contains("NO-SUCH-SKU")),
        "names the SKU: {unknown}"
    );

    let malformed = app
        .client
        .post(app.url("/checkout"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .expect("answer");
    let (status, body) = problem(malformed).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("urn:eshop:problem:malformed-json"))
    );

    let wrong_type = app
        .client
        .post(app.url("/checkout"))
        .header("content-type", "text/plain")
        .body(order("BOOK-RUST", 1).to_string())
        .send()
        .await
        .expect("answer");
    assert_eq!(problem(wrong_type).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = json!({ "email": "a@b.example", "items": [], "padding": "x".repeat(service_kit::MAX_BODY_BYTES) });
    assert_eq!(post_checkout(&app, &huge).await.0, StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no service may be called for bad input"
    );
}

#[tokio::test]
async fn out_of_stock_and_declined_payment_are_passed_on_and_undone() {
    let services = Services::start().await;
    let app = eshop(
        &services.inventory.url(""),
        &services.billing.url(""),
        &services.delivery.url(""),
    )
    .await;

    let (status, body) = post_checkout(&app, &order("BOOK-RUST", 11)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("BOOK-RUST")),
        "{body}"
    );
    assert!(
        services.payments().await.is_empty(),
        "nothing charged when stock is short"
    );

    let (status, body) = post_checkout(&app, &order("LAPTOP-PRO", 1)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(
        services.reserved_units().await,
        0,
        "the reservation is released after a declined payment"
    );
    assert!(
        services.deliveries().await.is_empty(),
        "no delivery after a declined payment"
    );
}

#[tokio::test]
async fn a_service_that_is_down_is_named_in_a_502_and_earlier_steps_are_undone() {
    let services = Services::start().await;

    let app = eshop(&closed_port(), &services.billing.url(""), &services.delivery.url("")).await;
    let (status, body) = post_checkout(&app, &order("BOOK-RUST", 1)).await;
    assert_failed_at(status, &body, StatusCode::BAD_GATEWAY, "inventory");
    assert!(services.payments().await.is_empty());

    let app = eshop(&services.inventory.url(""), &services.billing.url(""), &closed_port()).await;
    let (status, body) = post_checkout(&app, &order("BOOK-RUST", 2)).await;
    assert_failed_at(status, &body, StatusCode::BAD_GATEWAY, "delivery");
    assert_eq!(services.reserved_units().await, 0, "stock released");
    let payments = services.payments().await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].status, PaymentStatus::Refunded, "charge refunded");
}

#[tokio::test]
async fn a_5xx_is_a_502_and_a_slow_service_a_504_with_everything_undone() {
    let services = Services::start().await;

    let (failing, failing_calls) = stand_in(StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO).await;
    let app = eshop(
        &services.inventory.url(""),
        &failing.url(""),
        &services.delivery.url(""),
    )
    .await;
    let (status, body) = post_checkout(&app, &order("MUG-FERRIS", 3)).await;
    assert_failed_at(status, &body, StatusCode::BAD_GATEWAY, "billing");
    assert_eq!(
        services.reserved_units().await,
        0,
        "stock released after billing failed"
    );
    // The charge call, then the refund: after a 500 the charge may have
    // happened. The stand-in fails the refund too, so it is retried in the
    // background and shows as pending on /readyz.
    assert!(
        failing_calls.load(Ordering::SeqCst) >= 2,
        "the failed charge is refunded too"
    );
    let readyz = reqwest::get(app.url("/readyz"))
        .await
        .expect("readyz")
        .text()
        .await
        .expect("body");
    assert!(readyz.lines().any(|line| line.trim() == "pending_undos 1"), "{readyz}");
    assert!(services.deliveries().await.is_empty(), "no later step runs");

    let (slow, _) = stand_in(StatusCode::OK, HTTP_TIMEOUT * 4).await;
    let app = eshop(&services.inventory.url(""), &services.billing.url(""), &slow.url("")).await;
    let (status, body) = post_checkout(&app, &order("MUG-FERRIS", 3)).await;
    assert_failed_at(status, &body, StatusCode::GATEWAY_TIMEOUT, "delivery");
    assert_eq!(
        services.reserved_units().await,
        0,
        "stock released after delivery timed out"
    );
    let payments = services.payments().await;
    assert_eq!(payments.len(), 1, "the order was charged: {payments:?}");
    assert_eq!(payments[0].status, PaymentStatus::Refunded, "and refunded");
}

#[tokio::test]
async fn oversized_headers_are_refused_with_431_problem_json() {
    let (downstream, calls) = stand_in(StatusCode::OK, Duration::ZERO).await;
    let url = downstream.url("");
    let app = eshop(&url, &url, &url).await;
    let response = app
        .client
        .get(app.url("/checkout"))
        .header("x-padding", "x".repeat(200 * 1024))
        .send()
        .await
        .expect("answer");
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{body}");
    assert_eq!(body["type"], "urn:eshop:problem:headers-too-large");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_unreachable_broker_is_a_502_and_leaves_nothing_reserved_charged_or_scheduled() {
    let services = Services::start().await;
    let app = eshop(
        &services.inventory.url(""),
        &services.billing.url(""),
        &services.delivery.url(""),
    )
    .await;

    let response = app.client.get(app.url("/checkout")).send().await.expect("answer");
    let (status, body) = problem(response).await;
    // Not 503: the steps ran before the publish failed, and a mesh retries 503.
    assert_failed_at(status, &body, StatusCode::BAD_GATEWAY, "kafka");
    assert_eq!(services.reserved_units().await, 0);
    let payments = services.payments().await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].status, PaymentStatus::Refunded);
    let deliveries = services.deliveries().await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, DeliveryStatus::Cancelled);
}

#[tokio::test]
async fn unknown_routes_are_problem_json_and_probes_answer() {
    let (downstream, _) = stand_in(StatusCode::OK, Duration::ZERO).await;
    let url = downstream.url("");
    let app = eshop(&url, &url, &url).await;
    let response = app.client.get(app.url("/nope")).send().await.expect("answer");
    assert_eq!(problem(response).await.0, StatusCode::NOT_FOUND);
    for probe in ["/healthz", "/readyz"] {
        let status = app.client.get(app.url(probe)).send().await.expect("answer").status();
        assert_eq!(status, StatusCode::OK, "{probe}");
    }
}

#[tokio::test]
async fn above_max_concurrent_requests_the_answer_is_503_with_retry_after_and_after_request_timeout_504() {
    // An inventory that takes a second: the first checkout holds its place that long.
    let (slow, calls) = stand_in(StatusCode::OK, Duration::from_secs(1)).await;
    let url = slow.url("");
    let mut config = common::eshop_config(&url, &url, &url);
    config.http_timeout = Duration::from_secs(5);
    config.limits.max_concurrent_requests = 1;
    let app = test_support::spawn_app(eshop::service(&config).expect("eshop")).await;
    let first = tokio::spawn(app.client.get(app.url("/checkout")).send());
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = app.client.get(app.url("/checkout")).send().await.expect("answer");
    let retry_after = second.headers().get("retry-after").cloned();
    let (status, body) = problem(second).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["type"], "urn:eshop:problem:overloaded", "{body}");
    assert!(retry_after.is_some(), "a 503 for load says when to come back");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the refused request called nobody");
    first.await.expect("task").expect("the first is answered");

    // A request that outlasts REQUEST_TIMEOUT_MS is answered 504 then: not
    // 503, which a mesh retries, since it may have done its work.
    let mut config = common::eshop_config(&url, &url, &url);
    config.http_timeout = Duration::from_secs(5);
    config.limits.request_timeout = Duration::from_millis(200);
    let app = test_support::spawn_app(eshop::service(&config).expect("eshop")).await;
    let started = std::time::Instant::now();
    let (status, body) = problem(app.client.get(app.url("/checkout")).send().await.expect("answer")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["type"], "urn:eshop:problem:request-timeout", "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered at the timeout, not after the call"
    );
}
