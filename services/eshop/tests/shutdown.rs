//! SIGTERM on the real eshop binary: the checkout in flight is finished or undone,
//! even when its client hung up before the signal, the spans still queued are
//! exported, the publish of a checkout in flight reaches the broker, and the
//! process exits 0; an undo still failing when the grace
//! period runs out is abandoned and logged for reconciliation. The trace of
//! that failed checkout also shows where it failed.

mod common;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use api::PaymentStatus;
use axum::{Json, Router, http::StatusCode, routing::post};
use common::{Services, eshop_process};
use otlp_sink::{MetricPoint, Receiver};
use test_support::{ServiceProcess, SpanKind, TestApp, Trace, WAIT, spawn_app};
use tokio::{io::AsyncWriteExt as _, sync::Notify};
use trace_model::AttributeValue;

/// A delivery service that holds each delivery until `release` and then fails
/// it (its undo succeeds): the checkout is in flight for as long as a test needs.
async fn held_failing_delivery(called: Arc<Notify>, release: Arc<Notify>) -> TestApp {
    spawn_app(
        Router::new()
            .route(
                "/arrangeDelivery",
                post(move || async move {
                    called.notify_one();
                    release.notified().await;
                    StatusCode::INTERNAL_SERVER_ERROR
                }),
            )
            .route("/cancelDelivery", post(|| async { StatusCode::NO_CONTENT })),
    )
    .await
}

/// eshop with a delivery that holds each checkout until released.
struct HeldCheckout {
    receiver: Receiver,
    services: Services,
    eshop: ServiceProcess,
    /// Notified when delivery has the request: the checkout is in flight.
    called: Arc<Notify>,
    /// Lets delivery answer (500).
    release: Arc<Notify>,
    _delivery: TestApp,
}

async fn held_checkout() -> HeldCheckout {
    let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("receiver");
    let services = Services::start().await;
    let (called, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let delivery = held_failing_delivery(called.clone(), release.clone()).await;
    let eshop = eshop_process(
        &receiver,
        [
            &services.inventory.url(""),
            &services.billing.url(""),
            &delivery.url(""),
        ],
        &[],
    )
    .await;
    HeldCheckout {
        receiver,
        services,
        eshop,
        called,
        release,
        _delivery: delivery,
    }
}

impl HeldCheckout {
    /// SIGTERM while the checkout is held; once eshop has stopped accepting,
    /// delivery answers, so the checkout ends during the shutdown, not before.
    async fn terminate_then_release(&mut self) -> std::process::ExitStatus {
        self.eshop.send_sigterm();
        self.eshop.wait_until_refusing().await;
        self.release.notify_one();
        self.eshop.exited().await
    }
}

/// The TCP state (`/proc/net/tcp`, hex: `06` is TIME_WAIT) of this machine's
/// IPv4 socket whose local port is `port`.
fn tcp_state(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields.get(1)?.rsplit(':').next()?;
        (u16::from_str_radix(local_port, 16).ok()? == port).then(|| fields.get(3).map(|s| (*s).to_owned()))?
    })
}

/// Waits until the peer of the client socket on local `port`, already closed
/// by the client, has closed its end too (the client's socket is in
/// TIME_WAIT): the server saw the hang-up and dropped the connection.
async fn wait_for_server_close(port: u16) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state = tcp_state(port);
        if state.as_deref() == Some("06") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never closed its end of the hung-up connection: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_flushes_its_spans_and_exits_zero() {
    let mut held = held_checkout().await;
    let request = tokio::spawn(reqwest::get(held.eshop.url("/checkout")));
    held.called.notified().await;
    let status = held.terminate_then_release().await;
    let response = request.await.expect("task").expect("the request in flight is answered");
    let receiver = &held.receiver;
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
    let mut held = held_checkout().await;
    let mut client = tokio::net::TcpStream::connect(held.eshop.addr).await.expect("connect");
    client
        .write_all(b"GET /checkout HTTP/1.1\r\nhost: eshop\r\n\r\n")
        .await
        .expect("request sent");
    held.called.notified().await;
    // The client gives up, and eshop sees it (its end of the connection is
    // closed, the handler dropped) before it is told to stop.
    let port = client.local_addr().expect("client address").port();
    drop(client);
    wait_for_server_close(port).await;
    let status = held.terminate_then_release().await;
    assert!(status.success(), "eshop exits 0 on SIGTERM: {status:?}");

    let services = &held.services;
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
    let trace = Trace::new(held.receiver.store().spans());
    let root = trace.one("eshop", SpanKind::Server, "GET /checkout");
    assert_eq!(
        root.attribute("http.response.status_code"),
        None,
        "nobody was answered: the client had gone\n{}",
        trace.render()
    );
    let undo = trace.child(root, "eshop", SpanKind::Internal, "undo checkout");
    trace.child(undo, "eshop", SpanKind::Client, "POST /refund");
    trace.child(undo, "eshop", SpanKind::Client, "POST /cancelOrder");
}

#[tokio::test]
async fn an_undo_still_failing_when_the_grace_period_ends_is_abandoned_logged_and_eshop_exits_zero() {
    const GRACE: Duration = Duration::from_millis(1_500);
    let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("receiver");
    let services = Services::start().await;
    // A billing that fails every charge and every refund, and notes the refunds' orders.
    let refunded: Arc<Mutex<Vec<String>>> = Arc::default();
    let billing = spawn_app(
        Router::new()
            .route("/payment", post(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
            .route(
                "/refund",
                post({
                    let refunded = refunded.clone();
                    move |Json(order): Json<api::OrderRef>| async move {
                        refunded.lock().expect("lock").push(order.order_id.to_string());
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }),
            ),
    )
    .await;
    let mut eshop = eshop_process(
        &receiver,
        [
            &services.inventory.url(""),
            &billing.url(""),
            &services.delivery.url(""),
        ],
        &[
            ("SHUTDOWN_GRACE_MS", &GRACE.as_millis().to_string()),
            ("UNDO_MAX_BACKOFF_MS", "200"),
        ],
    )
    .await;
    let response = reqwest::get(eshop.url("/checkout")).await.expect("eshop answers");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let order = refunded.lock().expect("lock").first().cloned().expect("a refund tried");

    let asked = Instant::now();
    let status = eshop.terminate().await;
    let took = asked.elapsed();
    assert!(status.success(), "eshop exits 0 on SIGTERM: {status:?}");
    assert!(took >= GRACE, "the pending undo was given its grace period: {took:?}");
    assert!(
        refunded.lock().expect("lock").len() >= 3,
        "retried during the grace period: {:?}",
        refunded.lock().expect("lock")
    );

    // Abandoned for reconciliation: an error logged under the background
    // retry of the checkout's undo, in its trace, naming the order.
    let trace = Trace::new(receiver.store().spans());
    let root = trace.one("eshop", SpanKind::Server, "GET /checkout");
    let undo = trace.child(root, "eshop", SpanKind::Internal, "undo checkout");
    let retry = trace.child(undo, "eshop", SpanKind::Internal, "retry undo");
    let abandoned: Vec<_> = receiver
        .logs()
        .all()
        .into_iter()
        .filter(|log| log.severity_text == "ERROR" && log.span_id.as_deref() == Some(retry.span_id.as_str()))
        .collect();
    assert_eq!(abandoned.len(), 1, "{abandoned:#?}");
    assert!(
        abandoned[0]
            .attributes
            .values()
            .any(|value| value.as_str() == Some(order.as_str())),
        "the abandoned undo names its order {order}: {abandoned:#?}"
    );
}

#[tokio::test]
async fn a_checkout_in_flight_at_sigterm_publishes_to_the_live_broker_before_eshop_exits() {
    let mut stack = test_support::Stack::start_with(test_support::StackOptions {
        proxy_eshop_billing: true,
        ..test_support::StackOptions::default()
    })
    .await;
    // Billing's answer is held: the checkout is in flight when the signal comes,
    // and its publish happens during the shutdown.
    let billing = stack.eshop_billing.as_ref().expect("a proxy");
    billing.set(
        test_support::Fault::AnswerLate(Duration::from_millis(1_000)),
        &["/payment"],
    );
    let request = tokio::spawn(reqwest::get(stack.eshop.url("/checkout")));
    billing.wait_for_answers(1).await;
    stack.eshop.send_sigterm();
    let response = request.await.expect("task").expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let placed: api::CheckoutResponse = response.json().await.expect("a checkout response");
    let status = stack.eshop.exited().await;
    assert!(status.success(), "eshop exits 0 on SIGTERM: {status:?}");

    // The record is on the broker: the consumer emails the order.
    let order = placed.order_id.to_string();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let sent = stack.json_all(&stack.notification, "/sentEmails").await;
        if sent.iter().any(|email| email["order_id"] == order) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{order} never emailed: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
