//! billing: prices orders from the catalogue, charges them, declines what exceeds the credit limit, refunds on undo.
//!
//! The charge runs through two method-level spans named as in the 2019 Java
//! demo, `BankTransaction.transfer` and `DBAccess.save2db`, so the trace shows
//! where inside a service the time goes, not only between services.
//!
//! A refund remembers the order as cancelled, and a charge that arrives after
//! it is refused (409): an undo that overtakes its charge still leaves no
//! money taken.
//!
//! A charge stays `charged` until eshop confirms it (`POST /confirmPayment`),
//! which eshop does only after Kafka acknowledged the order's event; a failed
//! checkout is refunded instead. kafka-consumer emails only `confirmed`
//! orders, so no email goes out for a charge that is, or will be, refunded.

use std::{sync::Arc, time::Duration};

use api::{OrderRef, Payment, PaymentRequest, PaymentStatus, TableLimits, catalog, paths, problems, unchecked};
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use order_steps::{AfterUndo, OrderSteps, Stepped};
use serde::Deserialize;
use service_kit::{
    Json, Page, Problem, Query, Readiness, ServerLimits,
    config::{ConfigError, Listen, env_count, env_or},
};
use telemetry::semconv::eshop;
use tokio::{sync::Notify, time::Instant};
use uuid::Uuid;

/// Orders costing more than this many cents are declined (402).
pub const BILLING_CREDIT_LIMIT_CENTS: &str = "BILLING_CREDIT_LIMIT_CENTS";
pub const DEFAULT_CREDIT_LIMIT_CENTS: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub limits: ServerLimits,
    pub tables: TableLimits,
    pub credit_limit_cents: u64,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env()?,
            limits: ServerLimits::from_env()?,
            tables: TableLimits::read(env_count)?,
            credit_limit_cents: env_or(BILLING_CREDIT_LIMIT_CENTS, DEFAULT_CREDIT_LIMIT_CENTS)?,
        })
    }
}

impl service_kit::ServiceConfig for Config {
    fn listen(&self) -> Listen {
        self.listen
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    credit_limit_cents: u64,
    limits: ServerLimits,
    /// One payment per order; a charge and a refund of the same order never interleave.
    payments: Arc<OrderSteps<Payment>>,
    /// Woken when a payment is confirmed or refunded, for the `GET /payments` that wait for it.
    settled: Arc<Notify>,
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self {
            credit_limit_cents: config.credit_limit_cents,
            limits: config.limits,
            payments: Arc::new(OrderSteps::new(config.tables, ())),
            settled: Arc::new(Notify::new()),
        }
    }
}

pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let api = Router::new()
        .route(paths::PAYMENT, post(payment))
        .route(paths::REFUND, post(refund))
        .route(paths::CONFIRM_PAYMENT, post(confirm))
        .route(paths::PAYMENTS, get(payments))
        .with_state(state);
    service_kit::service_router(api, Readiness::ready(), limits, problems::TYPE_PREFIX)
}

/// Charges an order once: asking again for the same order returns the first
/// charge; asking after the order was cancelled is refused.
async fn payment(
    State(state): State<AppState>,
    Json(request): Json<unchecked::PaymentRequest>,
) -> Result<Stepped<Payment>, Problem> {
    let request = PaymentRequest::try_from(request).map_err(|broken| Problem::invalid_input(&broken))?;
    if let Some(earlier) = state.payments.earlier(request.order_id)? {
        return Ok(Stepped::Already(earlier));
    }
    let amount_cents = request.items.total_cents();
    bank_transfer(amount_cents, state.credit_limit_cents).await?;
    let payment = Payment {
        payment_id: Uuid::new_v4(),
        order_id: request.order_id,
        amount_cents,
        currency: catalog::CURRENCY.to_owned(),
        status: PaymentStatus::Charged,
    };
    save_to_db(&state, payment).await
}

/// The bank's side of the charge: declined over the credit limit.
#[tracing::instrument(
    name = "BankTransaction.transfer",
    skip_all,
    fields({ eshop::attribute::PAYMENT_AMOUNT_CENTS } = amount_cents)
)]
async fn bank_transfer(amount_cents: u64, credit_limit_cents: u64) -> Result<(), Problem> {
    if amount_cents > credit_limit_cents {
        mark_span_error("payment declined");
        return Err(Problem::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment-declined",
            "Payment declined",
            format!("{amount_cents} cents exceeds the credit limit of {credit_limit_cents} cents"),
        ));
    }
    Ok(())
}

/// Records the charge, unless the order was cancelled (or charged by a
/// concurrent retry) while the bank was asked: checked again under the lock.
#[tracing::instrument(name = "DBAccess.save2db", skip_all, fields({ eshop::attribute::PAYMENT_ID } = %payment.payment_id))]
async fn save_to_db(state: &AppState, payment: Payment) -> Result<Stepped<Payment>, Problem> {
    state.payments.take(payment.order_id, |()| {
        tracing::info!(
            name: eshop::event::PAYMENT_CHARGED,
            {
                { eshop::attribute::ORDER_ID } = %payment.order_id,
                { eshop::attribute::PAYMENT_AMOUNT_CENTS } = payment.amount_cents,
            },
            "payment charged"
        );
        Ok(payment)
    })
}

fn mark_span_error(message: &str) {
    telemetry::span::mark_error(&tracing::Span::current(), message.to_owned());
}

/// Refunds an order's charge and remembers the order as cancelled.
/// Idempotent: 204 whether or not there was a charge to refund, even for an
/// order never seen (its charge may still be on its way).
#[tracing::instrument(name = "refund", skip_all, fields({ eshop::attribute::ORDER_ID } = %request.order_id))]
async fn refund(State(state): State<AppState>, Json(request): Json<OrderRef>) -> StatusCode {
    state.payments.undo(request.order_id, |payment, ()| {
        // eshop refunds only checkouts that failed, which it never confirmed;
        // billing refunds whatever it is asked to.
        if payment.status != PaymentStatus::Refunded {
            payment.status = PaymentStatus::Refunded;
            tracing::info!(
                name: eshop::event::PAYMENT_REFUNDED,
                {
                    { eshop::attribute::PAYMENT_AMOUNT_CENTS } = payment.amount_cents,
                },
                "payment refunded"
            );
        }
        AfterUndo::Keep
    });
    state.settled.notify_waiters();
    StatusCode::NO_CONTENT
}

/// Confirms an order's charge: its checkout went through. Idempotent (200
/// with the payment each time); 404 for an order billing holds no charge of,
/// 409 `order-cancelled` for a refunded one.
async fn confirm(State(state): State<AppState>, Json(request): Json<OrderRef>) -> Result<Json<Payment>, Problem> {
    let confirmed = state.payments.amend(request.order_id, |payment| {
        if payment.status == PaymentStatus::Charged {
            payment.status = PaymentStatus::Confirmed;
            tracing::info!(
                name: eshop::event::PAYMENT_CONFIRMED,
                {
                    { eshop::attribute::ORDER_ID } = %payment.order_id,
                },
                "payment confirmed"
            );
        }
        payment.clone()
    })?;
    state.settled.notify_waiters();
    confirmed.map(Json).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "payment-not-found",
            "No payment for this order",
            format!("billing holds no charge for order {}", request.order_id),
        )
    })
}

/// `GET /payments`: a page of payments (`?limit=&after=`), or with
/// `?order_id=<uuid>` the one of that order (an empty list when it was never
/// charged). kafka-consumer asks this before emailing, with `wait_ms=N`: the
/// answer then comes as soon as the payment is confirmed or refunded, or
/// after N ms (at most [`api::MAX_SETTLE_WAIT_MS`]), so the email waits for eshop's
/// confirmation without polling.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentsQuery {
    order_id: Option<Uuid>,
    wait_ms: Option<u64>,
    limit: Option<usize>,
    after: Option<Uuid>,
}

async fn payments(
    State(state): State<AppState>,
    Query(query): Query<PaymentsQuery>,
) -> Result<Json<Vec<Payment>>, Problem> {
    if let Some(order_id) = query.order_id {
        let wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(api::MAX_SETTLE_WAIT_MS));
        return Ok(Json(
            settled_payment(&state, order_id, wait).await.into_iter().collect(),
        ));
    }
    let page = Page {
        limit: query.limit,
        after: query.after,
    };
    Ok(Json(state.payments.page(page.after.as_ref(), page.limit()?)))
}

/// The order's payment once it is confirmed or refunded, or as it is after `wait`.
async fn settled_payment(state: &AppState, order_id: Uuid, wait: Duration) -> Option<Payment> {
    let deadline = Instant::now() + wait;
    loop {
        // Registered before the look, so a confirmation between the two still wakes it.
        let woken = state.settled.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let payment = state.payments.get(order_id);
        let settled = payment
            .as_ref()
            .is_some_and(|payment| payment.status != PaymentStatus::Charged);
        if settled || Instant::now() >= deadline {
            return payment;
        }
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use service_kit::config::Listen;

    use super::*;

    fn state() -> AppState {
        AppState::new(&Config {
            listen: Listen {
                host: [127, 0, 0, 1].into(),
                port: 0,
            },
            limits: ServerLimits::default(),
            tables: TableLimits::default(),
            credit_limit_cents: DEFAULT_CREDIT_LIMIT_CENTS,
        })
    }

    async fn charged(state: &AppState) -> Uuid {
        let order_id = Uuid::new_v4();
        let request = unchecked::PaymentRequest {
            order_id,
            email: "jane.doe@example.com".to_owned(),
            items: vec![unchecked::OrderLine {
                sku: "BOOK-RUST".to_owned(),
                quantity: 1,
            }],
        };
        payment(State(state.clone()), Json(request)).await.expect("charged");
        order_id
    }

    /// Whether `wait` is still waiting after everything ready has run.
    async fn still_waiting(wait: &mut (impl Future<Output = Option<Payment>> + Unpin)) -> bool {
        tokio::select! {
            biased;
            _ = wait => false,
            () = tokio::task::yield_now() => true,
        }
    }

    #[tokio::test]
    async fn a_waiting_look_is_answered_by_the_confirmation_or_the_refund() {
        let state = state();
        let (confirmed, refunded) = (charged(&state).await, charged(&state).await);
        for (order_id, settle) in [(confirmed, paths::CONFIRM_PAYMENT), (refunded, paths::REFUND)] {
            let wait = settled_payment(&state, order_id, Duration::from_secs(3600));
            tokio::pin!(wait);
            assert!(still_waiting(&mut wait).await, "a charge not yet settled is waited for");
            let order = Json(OrderRef { order_id });
            if settle == paths::CONFIRM_PAYMENT {
                confirm(State(state.clone()), order).await.expect("confirmed");
            } else {
                refund(State(state.clone()), order).await;
            }
            let status = tokio::time::timeout(Duration::from_secs(5), wait)
                .await
                .unwrap_or_else(|_| panic!("{settle} did not wake the look"))
                .map(|payment| payment.status);
            let expected = if settle == paths::CONFIRM_PAYMENT {
                PaymentStatus::Confirmed
            } else {
                PaymentStatus::Refunded
            };
            assert_eq!(status, Some(expected), "{settle} wakes the look");
        }
    }

    #[tokio::test]
    async fn a_waiting_look_ends_with_its_wait() {
        let state = state();
        let order_id = charged(&state).await;
        let status = settled_payment(&state, order_id, Duration::from_millis(300)).await;
        assert_eq!(status.map(|payment| payment.status), Some(PaymentStatus::Charged));
        assert_eq!(
            settled_payment(&state, Uuid::new_v4(), Duration::from_millis(300)).await,
            None
        );
    }
}
