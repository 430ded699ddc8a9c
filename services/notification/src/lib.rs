//! notification: records the confirmation email it would send, idempotent per order id.
//!
//! kafka-consumer calls `POST /sendEmail` at least once per order; a repeated
//! call for the same order sends nothing new and answers `already_sent`, so a
//! redelivered Kafka message never becomes a second email. `GET /sentEmails`
//! is what an operator (or the soak test) reads to count them.

use std::sync::LazyLock;

use api::{EmailReceipt, EmailRequest, EmailStatus, SentEmail, paths, validation};
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use service_kit::{
    Json, OrderTable, Problem, Readiness,
    config::{ConfigError, Listen},
};

/// Emails sent, not counting requests repeated for an order already emailed.
static EMAILS_SENT: LazyLock<telemetry::metrics::Counter> =
    LazyLock::new(|| telemetry::metrics::counter("notification.emails.sent", "{email}", "Emails sent."));

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env()?,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct AppState {
    sent: OrderTable<SentEmail>,
}

pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route(paths::SEND_EMAIL, post(send_email))
        .route(paths::SENT_EMAILS, get(sent_emails))
        .with_state(state);
    service_kit::service_router(api, Readiness::ready())
}

#[tracing::instrument(name = "send email", skip_all, fields(order.id = %request.order_id))]
async fn send_email(
    State(state): State<AppState>,
    Json(request): Json<EmailRequest>,
) -> Result<Json<EmailReceipt>, Problem> {
    let mut violations = validation::check_email(&request.to);
    if request.subject.trim().is_empty() {
        violations.push(validation::Violation {
            field: "subject".into(),
            reason: "must not be empty".into(),
        });
    }
    if !violations.is_empty() {
        return Err(Problem::invalid_input(&violations));
    }
    let mut sent = state.sent.lock();
    if let Some(earlier) = sent.get_mut(&request.order_id) {
        earlier.requests += 1;
        tracing::info!(
            requests = earlier.requests,
            "email already sent for this order; not sending again"
        );
        return Ok(Json(EmailReceipt {
            order_id: request.order_id,
            status: EmailStatus::AlreadySent,
        }));
    }
    tracing::info!(to = %request.to, subject = %request.subject, "email sent");
    EMAILS_SENT.add(1, &[]);
    sent.insert(
        request.order_id,
        SentEmail {
            order_id: request.order_id,
            to: request.to,
            subject: request.subject,
            body: request.body,
            requests: 1,
        },
    );
    Ok(Json(EmailReceipt {
        order_id: request.order_id,
        status: EmailStatus::Sent,
    }))
}

async fn sent_emails(State(state): State<AppState>) -> (StatusCode, Json<Vec<SentEmail>>) {
    (StatusCode::OK, Json(state.sent.all()))
}
