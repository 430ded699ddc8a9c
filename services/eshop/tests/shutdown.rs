//! SIGTERM on the real eshop binary: the checkout in flight is finished or undone,
//! even when its client hung up, the spans still queued are exported, and the
//! process exits 0. The trace of that failed checkout also shows where it failed.

mod common;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use api::PaymentStatus;
use axum::{Router, http::StatusCode, routing::post};
use common::Services;
use otlp_sink::{MetricPoint, Receiver};
use test_support::{ServiceProcess, SpanKind, TestApp, Trace, spawn_app};
use tokio::sync::Notify;
use trace_model::AttributeValue;

/// A delivery service that is slow and then fails (its undo succeeds): the
/// checkout is in flight while eshop is told to stop.
async fn slow_failing_delivery(called: Arc<Notify>) -> TestApp {
    spawn_app(
        Router::new()
            .route(
                "/arrangeDelivery",
                post(move || async move {
                    called.notify_one();
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    StatusCode::INTERNAL_SERVER_ERROR
                }),
            )
            .route("/cancelDelivery", post(|| async { StatusCode::NO_CONTENT })),
    )
    .await
}

/// A checkout in flight in the real eshop binary, its delivery call under way.
struct InFlight {
    receiver: Receiver,
    services: Services,
    eshop: ServiceProcess,
    request: tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
    _delivery: TestApp,
}

async fn checkout_in_flight() -> InFlight {
    let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("receiver");
    let services = Services::start().await;
    let called = Arc::new(Notify::new());
    let delivery = slow_failing_delivery(called.clone()).await;
    let eshop = ServiceProcess::start(
        "eshop",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), receiver.endpoint()),
            // Nothing is exported before shutdown: what arrives was flushed by it.
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "600000".into()),
            ("INVENTORY_URL".into(), services.inventory.url("")),
            ("BILLING_URL".into(), services.billing.url("")),
            ("DELIVERY_URL".into(), delivery.url("")),
            ("KAFKA_BOOTSTRAP_SERVERS".into(), "127.0.0.1:1".into()),
        ],
    )
    .await;
    let request = tokio::spawn(reqwest::get(eshop.url("/checkout")));
    called.notified().await;
    InFlight {
        receiver,
        services,
        eshop,
        request,
        _delivery: delivery,
    }
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_flushes_its_spans_and_exits_zero() {
    // Every part bound: the stand-ins must stay up until the end.
    let InFlight {
        receiver,
        services: _services,
        mut eshop,
        request,
        _delivery,
    } = checkout_in_flight().await;
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
    // The failing step is undone too: after a 500, delivery may have scheduled it.
    trace.child(undo, "eshop", SpanKind::Client, "POST /cancelDelivery");
    trace.child(undo, "eshop", SpanKind::Client, "POST /refund");
    trace.child(undo, "eshop", SpanKind::Client, "POST /cancelOrder");

    // Counted, by why and where, and exported at shutdown with the spans.
    let undone: Vec<MetricPoint> = receiver
        .metrics()
        .all()
        .into_iter()
        .filter(|point| point.service == "eshop" && point.name == "eshop.orders.undone")
        .collect();
    assert_eq!(undone.len(), 1, "{undone:#?}");
    assert_eq!(undone[0].unit, "{order}");
    assert_eq!(undone[0].value, 1.0);
    assert_eq!(
        undone[0].attribute("error.type"),
        Some(&AttributeValue::String("server_error".into()))
    );
    assert_eq!(
        undone[0].attribute("eshop.failed_step"),
        Some(&AttributeValue::String("delivery".into()))
    );
}

#[tokio::test]
async fn sigterm_after_the_client_hung_up_still_undoes_the_checkout_before_exiting() {
    let InFlight {
        receiver,
        services,
        mut eshop,
        request,
        _delivery,
    } = checkout_in_flight().await;
    // The client gives up: axum drops the handler, the checkout goes on.
    request.abort();
    let status = eshop.terminate().await;
    assert!(status.success(), "eshop exits 0 on SIGTERM: {status:?}");

    assert_eq!(
        services.reserved_units().await,
        0,
        "the reservation was released before exit"
    );
    let payments = services.payments().await;
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(
        payments[0].status,
        PaymentStatus::Refunded,
        "the charge was refunded before exit"
    );
    let trace = Trace::new(receiver.store().spans());
    let root = trace.one("eshop", SpanKind::Server, "GET /checkout");
    trace.child(root, "eshop", SpanKind::Internal, "undo checkout");
}
