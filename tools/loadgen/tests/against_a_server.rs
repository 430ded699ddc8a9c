//! loadgen against a real HTTP server in-process: counting, error accounting, trace headers,
//! and an open loop charging a server's stall to latency instead of hiding it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    http::{HeaderMap, StatusCode},
    routing::get,
};
use loadgen::{Config, Load, Method, Propagation, Stop};
use test_support::spawn_app;

fn config(url: String, load: Load, stop: Stop) -> Config {
    Config {
        url,
        load,
        stop,
        warmup: Duration::ZERO,
        method: Method::Get,
        propagation: Propagation::W3c,
        timeout: Duration::from_secs(5),
        progress: false,
        slowest: 3,
    }
}

/// `GET /checkout` that counts its calls in `calls`, refuses every
/// `refuse_every`th with 503 and accepts the others as an order in the
/// trace of the request's `traceparent`.
fn checkout(calls: Arc<AtomicU64>, refuse_every: u64) -> Router {
    Router::new().route(
        "/checkout",
        get(move |headers: HeaderMap| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let trace = headers["traceparent"].to_str().unwrap_or_default()[3..35].to_owned();
            assert_eq!(
                headers["baggage"], "synthetic_request=true",
                "generated traffic is marked"
            );
            async move {
                if n % refuse_every == refuse_every - 1 {
                    (StatusCode::SERVICE_UNAVAILABLE, String::new())
                } else {
                    (
                        StatusCode::OK,
                        format!(r#"{{"order_id":"order-{n}","trace_id":"{trace}"}}"#),
                    )
                }
            }
        }),
    )
}

#[tokio::test]
async fn counts_answers_and_errors_and_reports_the_orders_accepted() {
    let calls = Arc::new(AtomicU64::new(0));
    // Every fourth order is refused.
    let app = spawn_app(checkout(calls.clone(), 4)).await;

    let report = loadgen::run(&config(app.url("/checkout"), Load::Concurrency(4), Stop::Requests(200)))
        .await
        .expect("a report");
    let served = calls.load(Ordering::SeqCst);
    assert!(report.requests >= 200 && report.requests <= 204, "{report:?}");
    assert_eq!(report.requests, served, "every request sent was counted once");
    assert_eq!(report.ok + report.errors["503"], report.requests);
    assert_eq!(report.errors["503"], served / 4);
    assert_eq!(report.accepted.len() as u64, report.ok);
    assert!(
        report
            .accepted
            .iter()
            .all(|order| order.trace_id.as_deref().is_some_and(|id| id.len() == 32))
    );
    assert_eq!(report.slowest.len(), 3);
    assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.p50 <= report.latency_ms.max);
}

#[tokio::test]
async fn an_open_loop_keeps_its_schedule_and_charges_a_stall_to_latency() {
    // The server stops answering for 300 ms, once: every request due meanwhile waits.
    let stall = Arc::new(tokio::sync::Mutex::new(()));
    let held = stall.clone();
    let app = spawn_app(Router::new().route(
        "/checkout",
        get(move || {
            let stall = held.clone();
            async move {
                let _turn = stall.lock().await;
                StatusCode::OK
            }
        }),
    ))
    .await;
    let stalled = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _hold = stall.lock().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    });

    let report = loadgen::run(&config(
        app.url("/checkout"),
        Load::Rate(100.0),
        Stop::After(Duration::from_secs(1)),
    ))
    .await
    .expect("a report");
    stalled.await.expect("stall task");
    assert!(
        (95..=101).contains(&report.requests),
        "the schedule was kept: {report:?}"
    );
    assert!(report.latency_ms.max >= 250.0, "the stall shows in latency: {report:?}");
    assert!(
        report.latency_ms.p90 >= 50.0,
        "the requests due during the stall all waited: {report:?}"
    );
}

#[tokio::test]
async fn orders_of_the_warm_up_are_reconciled_but_not_timed() {
    let app = spawn_app(checkout(Arc::new(AtomicU64::new(0)), u64::MAX)).await;

    let report = loadgen::run(&Config {
        warmup: Duration::from_millis(300),
        ..config(
            app.url("/checkout"),
            Load::Rate(100.0),
            Stop::After(Duration::from_millis(300)),
        )
    })
    .await
    .expect("a report");
    assert!(report.warmup_requests >= 25 && report.requests >= 25, "{report:?}");
    assert_eq!(
        report.accepted_trace_ids().len() as u64,
        report.warmup_requests + report.requests,
        "every order is there to reconcile"
    );
    let measured = report.measured_trace_ids();
    assert_eq!(
        measured.len() as u64,
        report.requests,
        "only the measured ones are timed"
    );
    let warm_up: Vec<_> = report.accepted.iter().filter(|order| order.warmup).collect();
    assert_eq!(warm_up.len() as u64, report.warmup_requests);
    assert!(
        warm_up
            .iter()
            .all(|order| !measured.contains(order.trace_id.as_ref().expect("a trace id")))
    );
}
