//! billing: prices orders from the catalogue, charges them, declines what exceeds the credit limit, refunds on undo.
//!
//! The charge runs through two method-level spans named as in the 2019 Java
//! demo, `BankTransaction.transfer` and `DBAccess.save2db`, so the trace shows
//! where inside a service the time goes, not only between services.
//!
//! A refund remembers the order as cancelled, and a charge that arrives after
//! it is refused (409): an undo that overtakes its charge still leaves no
//! money taken.

use std::sync::Arc;

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
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self {
            credit_limit_cents: config.credit_limit_cents,
            limits: config.limits,
            payments: Arc::new(OrderSteps::new(config.tables, ())),
        }
    }
}

pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let api = Router::new()
        .route(paths::PAYMENT, post(payment))
        .route(paths::REFUND, post(refund))
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
        if payment.status == PaymentStatus::Charged {
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
    StatusCode::NO_CONTENT
}

/// `GET /payments`: a page of payments (`?limit=&after=`), or with
/// `?order_id=<uuid>` the one of that order (an empty list when it was never
/// charged). kafka-consumer asks this before emailing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentsQuery {
    order_id: Option<Uuid>,
    limit: Option<usize>,
    after: Option<Uuid>,
}

async fn payments(
    State(state): State<AppState>,
    Query(query): Query<PaymentsQuery>,
) -> Result<Json<Vec<Payment>>, Problem> {
    if let Some(order_id) = query.order_id {
        return Ok(Json(state.payments.get(order_id).into_iter().collect()));
    }
    let page = Page {
        limit: query.limit,
        after: query.after,
    };
    Ok(Json(state.payments.page(page.after.as_ref(), page.limit()?)))
}
