//! An undo that fails inside the checkout, on the real eshop binary: retried in
//! the background until billing takes it (a CLIENT span per attempt, a log
//! record naming the order, `pending_undos` on `/readyz`), and new checkouts
//! refused 503 `undo-backlog` while `PENDING_UNDOS_MAX` are pending.

mod common;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, http::StatusCode, routing::post};
use common::{Services, eshop_process, problem};
use otlp_sink::Receiver;
use test_support::{ServiceProcess, SpanKind, TestApp, Trace, WAIT, spawn_app};

/// A billing that fails every charge (500: the charge may have happened, so
/// it is refunded) and refuses refunds (503) until `accept` is set.
struct RefusingBilling {
    app: TestApp,
    charges: Arc<AtomicUsize>,
    refunds: Arc<AtomicUsize>,
    accept: Arc<AtomicBool>,
    refunded_orders: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn refusing_billing() -> RefusingBilling {
    let (charges, refunds, accept) = (
        Arc::<AtomicUsize>::default(),
        Arc::<AtomicUsize>::default(),
        Arc::<AtomicBool>::default(),
    );
    let refunded_orders = Arc::<std::sync::Mutex<Vec<String>>>::default();
    let app = spawn_app(
        Router::new()
            .route(
                "/payment",
                post({
                    let charges = charges.clone();
                    move || async move {
                        charges.fetch_add(1, Ordering::SeqCst);
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }),
            )
            .route(
                "/refund",
                post({
                    let (refunds, accept, orders) = (refunds.clone(), accept.clone(), refunded_orders.clone());
                    move |Json(order): Json<api::OrderRef>| async move {
                        refunds.fetch_add(1, Ordering::SeqCst);
                        if accept.load(Ordering::SeqCst) {
                            orders.lock().expect("lock").push(order.order_id.to_string());
                            StatusCode::NO_CONTENT
                        } else {
                            StatusCode::SERVICE_UNAVAILABLE
                        }
                    }
                }),
            ),
    )
    .await;
    RefusingBilling {
        app,
        charges,
        refunds,
        accept,
        refunded_orders,
    }
}

struct Setup {
    receiver: Receiver,
    services: Services,
    billing: RefusingBilling,
    eshop: ServiceProcess,
}

async fn setup(env: &[(&str, &str)]) -> Setup {
    let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("receiver");
    let services = Services::start().await;
    let billing = refusing_billing().await;
    let mut env = env.to_vec();
    env.push(("UNDO_MAX_BACKOFF_MS", "200"));
    let eshop = eshop_process(
        &receiver,
        [
            &services.inventory.url(""),
            &billing.app.url(""),
            &services.delivery.url(""),
        ],
        &env,
    )
    .await;
    Setup {
        receiver,
        services,
        billing,
        eshop,
    }
}

/// The `pending_undos` count `/readyz` shows.
async fn pending_undos(eshop: &ServiceProcess) -> u64 {
    let readyz = reqwest::get(eshop.url("/readyz"))
        .await
        .expect("readyz")
        .text()
        .await
        .expect("body");
    readyz
        .lines()
        .find_map(|line| line.trim().strip_prefix("pending_undos "))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no pending_undos in {readyz:?}"))
}

async fn wait_for_pending_undos(eshop: &ServiceProcess, expected: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let pending = pending_undos(eshop).await;
        if pending == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pending_undos {pending}, not {expected}, after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_calls(calls: &AtomicUsize, at_least: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while calls.load(Ordering::SeqCst) < at_least {
        assert!(tokio::time::Instant::now() < deadline, "fewer than {at_least} calls");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_undo_that_fails_is_retried_in_the_background_until_billing_takes_it() {
    let Setup {
        receiver,
        services,
        billing,
        mut eshop,
    } = setup(&[]).await;
    let response = reqwest::get(eshop.url("/checkout")).await.expect("eshop answers");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(services.reserved_units().await, 0, "the reservation is undone at once");
    assert_eq!(pending_undos(&eshop).await, 1, "the refund is pending");

    // The inline attempt and two in the background fail; then billing takes it.
    wait_for_calls(&billing.refunds, 3).await;
    billing.accept.store(true, Ordering::SeqCst);
    wait_for_pending_undos(&eshop, 0).await;
    let attempts = billing.refunds.load(Ordering::SeqCst);
    let refunded = billing.refunded_orders.lock().expect("lock").clone();
    assert_eq!(refunded.len(), 1, "refunded once, then no more attempts: {refunded:?}");
    let order = refunded[0].clone();

    let status = eshop.terminate().await;
    assert!(status.success());
    let trace = Trace::new(receiver.store().spans());
    let root = trace.one("eshop", SpanKind::Server, "GET /checkout");
    let undo = trace.child(root, "eshop", SpanKind::Internal, "undo checkout");
    let inline = trace.child(undo, "eshop", SpanKind::Client, "POST /refund");
    assert!(inline.is_error(), "{}", trace.render());
    let retry = trace.child(undo, "eshop", SpanKind::Internal, "retry undo");
    let mut retried: Vec<_> = trace
        .children_of(retry)
        .into_iter()
        .filter(|span| span.kind == SpanKind::Client && span.name == "POST /refund")
        .collect();
    retried.sort_by_key(|attempt| attempt.start_unix_nanos);
    assert_eq!(
        retried.len() + 1,
        attempts,
        "one CLIENT span per attempt, in the checkout's trace:\n{}",
        trace.render()
    );
    let (last, failed) = retried.split_last().expect("background attempts");
    assert!(failed.iter().all(|attempt| attempt.is_error()), "{}", trace.render());
    assert!(!last.is_error(), "the attempt billing took:\n{}", trace.render());

    // The pending undo was logged (a warning under the checkout's undo span) with its order.
    let logged: Vec<_> = receiver
        .logs()
        .all()
        .into_iter()
        .filter(|log| log.severity_text == "WARN" && log.span_id.as_deref() == Some(undo.span_id.as_str()))
        .collect();
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(
        logged[0]
            .attributes
            .values()
            .any(|value| value.as_str() == Some(order.as_str())),
        "the log names the order {order}: {logged:#?}"
    );
}

#[tokio::test]
async fn at_pending_undos_max_new_checkouts_are_refused_503_undo_backlog_before_any_step() {
    let Setup {
        services,
        billing,
        eshop,
        ..
    // Three: room for one checkout's undos (one per step). The failed
    // checkout leaves one pending; the next would need three more.
    } = setup(&[("PENDING_UNDOS_MAX", "3")]).await;
    let response = reqwest::get(eshop.url("/checkout")).await.expect("eshop answers");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(pending_undos(&eshop).await, 1);

    let (status, body) = problem(reqwest::get(eshop.url("/checkout")).await.expect("eshop answers")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["type"], "urn:eshop:problem:undo-backlog", "{body}");
    assert_eq!(billing.charges.load(Ordering::SeqCst), 1, "nothing charged");
    let stock: Vec<api::StockLevel> = common::get_json(&services.inventory.url("/stock")).await;
    assert!(
        stock.iter().all(|level| level.reserved == 0),
        "nothing reserved: {stock:?}"
    );

    // Once the backlog drains, checkouts are taken again.
    billing.accept.store(true, Ordering::SeqCst);
    wait_for_pending_undos(&eshop, 0).await;
    let response = reqwest::get(eshop.url("/checkout")).await.expect("eshop answers");
    assert_eq!(
        response.status(),
        StatusCode::BAD_GATEWAY,
        "tried again: billing still fails charges"
    );
    assert_eq!(billing.charges.load(Ordering::SeqCst), 2);
}
