//! SIGTERM on the real eshop binary: the request in flight is finished, the spans
//! still queued are exported, and the process exits 0. The trace of that failed
//! checkout also shows where it failed.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, http::StatusCode, routing::post};
use otlp_sink::Receiver;
use service_kit::config::Listen;
use test_support::{ServiceProcess, SpanKind, Trace, spawn_app};
use tokio::sync::Notify;

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_flushes_its_spans_and_exits_zero() {
    let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("receiver");
    let listen = Listen {
        host: [127, 0, 0, 1].into(),
        port: 0,
    };
    let inventory = spawn_app(inventory::app(inventory::AppState::new(&inventory::Config {
        listen,
        initial_stock: 10,
    })))
    .await;
    let billing = spawn_app(billing::app(billing::AppState::new(&billing::Config {
        listen,
        credit_limit_cents: billing::DEFAULT_CREDIT_LIMIT_CENTS,
    })))
    .await;
    // A delivery service that is slow and then fails: the checkout is in flight
    // while eshop is told to stop.
    let called = Arc::new(Notify::new());
    let delivery = spawn_app(Router::new().route(
        "/arrangeDelivery",
        post({
            let called = called.clone();
            move || async move {
                called.notify_one();
                tokio::time::sleep(Duration::from_millis(700)).await;
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }),
    ))
    .await;

    let mut eshop = ServiceProcess::start(
        "eshop",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), receiver.endpoint()),
            // Nothing is exported before shutdown: what arrives was flushed by it.
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "600000".into()),
            ("INVENTORY_URL".into(), inventory.url("")),
            ("BILLING_URL".into(), billing.url("")),
            ("DELIVERY_URL".into(), delivery.url("")),
            ("KAFKA_BOOTSTRAP_SERVERS".into(), "127.0.0.1:1".into()),
        ],
    )
    .await;

    let request = tokio::spawn(reqwest::get(eshop.url("/checkout")));
    called.notified().await;
    let status = eshop.terminate().await;
    let response = request.await.expect("task").expect("the request in flight is answered");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(status.success(), "eshop exits 0 on SIGTERM: {status:?}");

    let trace = Trace::new(receiver.store().spans());
    let root = trace.one("eshop", SpanKind::Server, "GET /checkout");
    assert!(
        root.is_error(),
        "a 502 is an error on the SERVER span:\n{}",
        trace.render()
    );
    assert_eq!(
        root.attribute("http.response.status_code").and_then(|v| v.as_i64()),
        Some(502),
        "{:?}",
        root.attributes
    );
    let failed = trace.child(root, "eshop", SpanKind::Client, "POST /arrangeDelivery");
    assert!(failed.is_error(), "{}", trace.render());
    assert!(
        !trace.has("eshop", SpanKind::Producer, "send eshop-topic"),
        "no later step runs"
    );
    let undo = trace.child(root, "eshop", SpanKind::Internal, "undo checkout");
    trace.child(undo, "eshop", SpanKind::Client, "POST /refund");
    trace.child(undo, "eshop", SpanKind::Client, "POST /cancelOrder");
}
