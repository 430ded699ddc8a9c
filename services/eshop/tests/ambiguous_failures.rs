//! A step that happened though eshop never heard so: the service did its part, but the answer came too late or was lost.
//!
//! A proxy between eshop and the real inventory, billing or delivery app lets
//! the request through and then holds the answer past eshop's timeout, or
//! closes the connection instead of answering, or holds the request itself
//! until eshop has given up and undone the order. After each failed checkout
//! nothing may stay reserved, charged or scheduled.

mod common;

use api::{DeliveryStatus, PaymentStatus, paths};
use axum::http::StatusCode;
use common::{HTTP_TIMEOUT, Services, assert_failed_at, eshop, order, post_checkout};
use test_support::{Fault, FlakyProxy};

/// The three REST steps: which service, which path, and the status eshop answers when the answer goes wrong.
const STEPS: [(&str, &str); 3] = [
    ("inventory", paths::CREATE_ORDER),
    ("billing", paths::PAYMENT),
    ("delivery", paths::ARRANGE_DELIVERY),
];

/// The services, with `faulty` behind a proxy; returns eshop's base URLs too.
async fn setup(faulty: &str) -> (Services, FlakyProxy, [String; 3]) {
    let services = Services::start().await;
    let real = [
        services.inventory.url(""),
        services.billing.url(""),
        services.delivery.url(""),
    ];
    let index = STEPS.iter().position(|(name, _)| *name == faulty).expect("a step");
    let proxy = FlakyProxy::start(&real[index]).await;
    let mut urls = real;
    urls[index] = proxy.url("");
    (services, proxy, urls)
}

/// Nothing is left of the order: no units reserved, no charge standing, no delivery scheduled.
async fn assert_nothing_left(services: &Services, context: &str) {
    assert_eq!(services.reserved_units().await, 0, "{context}: units left reserved");
    let payments = services.payments().await;
    assert!(
        payments.iter().all(|payment| payment.status == PaymentStatus::Refunded),
        "{context}: a charge stands: {payments:?}"
    );
    let deliveries = services.deliveries().await;
    assert!(
        deliveries
            .iter()
            .all(|delivery| delivery.status == DeliveryStatus::Cancelled),
        "{context}: a delivery stays scheduled: {deliveries:?}"
    );
}

#[tokio::test]
async fn a_step_whose_answer_comes_too_late_is_undone() {
    for (service, path) in STEPS {
        let (services, proxy, [inventory, billing, delivery]) = setup(service).await;
        proxy.set(Fault::AnswerLate(HTTP_TIMEOUT * 4), &[path]);
        let app = eshop(&inventory, &billing, &delivery).await;

        let (status, body) = post_checkout(&app, &order("BOOK-RUST", 2)).await;
        assert_failed_at(status, &body, StatusCode::GATEWAY_TIMEOUT, service);
        let answers = proxy.wait_for_answers(1).await;
        assert_eq!(answers[0].1, 201, "{service} did the step: {answers:?}");
        assert_nothing_left(&services, &format!("{service} answered late")).await;
    }
}

#[tokio::test]
async fn a_step_whose_answer_is_lost_is_undone() {
    for (service, path) in STEPS {
        let (services, proxy, [inventory, billing, delivery]) = setup(service).await;
        proxy.set(Fault::DropAnswer, &[path]);
        let app = eshop(&inventory, &billing, &delivery).await;

        let (status, body) = post_checkout(&app, &order("BOOK-RUST", 2)).await;
        assert_failed_at(status, &body, StatusCode::BAD_GATEWAY, service);
        let answers = proxy.wait_for_answers(1).await;
        assert_eq!(answers[0].1, 201, "{service} did the step: {answers:?}");
        assert_nothing_left(&services, &format!("{service}'s answer lost")).await;
    }
}

#[tokio::test]
async fn a_step_that_arrives_after_its_undo_is_refused_and_leaves_nothing() {
    for (service, path) in STEPS {
        let (services, proxy, [inventory, billing, delivery]) = setup(service).await;
        // The request reaches the service only after eshop timed out and sent the undo.
        proxy.set(Fault::HoldRequest(HTTP_TIMEOUT * 3), &[path]);
        let app = eshop(&inventory, &billing, &delivery).await;

        let (status, body) = post_checkout(&app, &order("BOOK-RUST", 2)).await;
        assert_failed_at(status, &body, StatusCode::GATEWAY_TIMEOUT, service);
        let answers = proxy.wait_for_answers(1).await;
        assert_eq!(
            answers[0].1, 409,
            "{service} refuses a step for a cancelled order: {answers:?}"
        );
        let refusal = &proxy.answered_bodies()[0];
        assert_eq!(
            refusal["type"], "urn:eshop:problem:order-cancelled",
            "{service} names why: {refusal}"
        );
        assert_nothing_left(&services, &format!("{service} got the step after its undo")).await;
        // And the late step left no record at all (not even a refunded one).
        match service {
            "billing" => assert!(services.payments().await.is_empty()),
            "delivery" => assert!(services.deliveries().await.is_empty()),
            _ => {}
        }
    }
}
