//! billing: prices orders from the catalogue, charges them, declines what exceeds the credit limit, refunds on undo.
//!
//! The charge runs through two method-level spans named as in the 2019 Java
//! demo, `BankTransaction.transfer` and `DBAccess.save2db`, so the trace shows
//! where inside a service the time goes, not only between services.

use api::{OrderRef, Payment, PaymentRequest, PaymentStatus, catalog, paths, validation};
use axum::{
    Router,
    extract::{RawQuery, State},
    http::StatusCode,
    routing::{get, post},
};
use service_kit::{
    Json, OrderTable, Problem, Readiness,
    config::{ConfigError, Listen, env_or},
};
use uuid::Uuid;

/// Orders costing more than this many cents are declined (402).
pub const BILLING_CREDIT_LIMIT_CENTS: &str = "BILLING_CREDIT_LIMIT_CENTS";
pub const DEFAULT_CREDIT_LIMIT_CENTS: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub credit_limit_cents: u64,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env()?,
            credit_limit_cents: env_or(BILLING_CREDIT_LIMIT_CENTS, DEFAULT_CREDIT_LIMIT_CENTS)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    credit_limit_cents: u64,
    payments: OrderTable<Payment>,
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self {
            credit_limit_cents: config.credit_limit_cents,
            payments: OrderTable::default(),
        }
    }
}

pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route(paths::PAYMENT, post(payment))
        .route(paths::REFUND, post(refund))
        .route(paths::PAYMENTS, get(payments))
        .with_state(state);
    service_kit::service_router(api, Readiness::ready())
}

/// Charges an order once: asking again for the same order returns the first charge.
async fn payment(
    State(state): State<AppState>,
    Json(request): Json<PaymentRequest>,
) -> Result<(StatusCode, Json<Payment>), Problem> {
    let mut violations = validation::check_lines(&request.items);
    violations.extend(validation::check_email(&request.email));
    if !violations.is_empty() {
        return Err(Problem::invalid_input(&violations));
    }
    if let Some(existing) = state.payments.lock().get(&request.order_id) {
        return Ok((StatusCode::OK, Json(existing.clone())));
    }
    let amount_cents = validation::order_total_cents(&request.items).ok_or_else(|| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount-overflow",
            "The order's amount is out of range",
            "",
        )
    })?;
    bank_transfer(amount_cents, state.credit_limit_cents).await?;
    let payment = Payment {
        payment_id: Uuid::new_v4(),
        order_id: request.order_id,
        amount_cents,
        currency: catalog::CURRENCY.to_owned(),
        status: PaymentStatus::Charged,
    };
    save_to_db(&state, &payment).await;
    Ok((StatusCode::CREATED, Json(payment)))
}

/// The bank's side of the charge: declined over the credit limit.
#[tracing::instrument(name = "BankTransaction.transfer", skip(credit_limit_cents))]
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

#[tracing::instrument(name = "DBAccess.save2db", skip_all, fields(payment.id = %payment.payment_id))]
async fn save_to_db(state: &AppState, payment: &Payment) {
    state.payments.lock().insert(payment.order_id, payment.clone());
    tracing::info!(amount_cents = payment.amount_cents, "payment charged");
}

fn mark_span_error(message: &str) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    tracing::Span::current().set_status(opentelemetry::trace::Status::error(message.to_owned()));
}

/// Refunds an order's charge. Idempotent: 204 whether or not there was a charge to refund.
#[tracing::instrument(name = "refund", skip_all, fields(order.id = %request.order_id))]
async fn refund(State(state): State<AppState>, Json(request): Json<OrderRef>) -> StatusCode {
    if let Some(payment) = state.payments.lock().get_mut(&request.order_id)
        && payment.status == PaymentStatus::Charged
    {
        payment.status = PaymentStatus::Refunded;
        tracing::info!(amount_cents = payment.amount_cents, "payment refunded");
    }
    StatusCode::NO_CONTENT
}

/// Every payment, or with `?order_id=<uuid>` the one of that order (an empty
/// list when it was never charged). kafka-consumer asks this before emailing.
async fn payments(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Json<Vec<Payment>>, Problem> {
    let Some(query) = query else {
        return Ok(Json(state.payments.all()));
    };
    let order_id = query
        .strip_prefix("order_id=")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                "Expected ?order_id=<uuid>",
                format!("query {query:?}"),
            )
        })?;
    Ok(Json(
        state.payments.lock().get(&order_id).cloned().into_iter().collect(),
    ))
}
