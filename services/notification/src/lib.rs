//! notification: records the confirmation email it would send, idempotent per order id.
//!
//! kafka-consumer calls `POST /sendEmail` at least once per order; a repeated
//! call for the same order sends nothing new and answers `already_sent`, so a
//! redelivered Kafka message never becomes a second email. `GET /sentEmails`
//! is what an operator (or the soak test) reads to count them, a page at a time.
//! Addresses appear masked in logs and spans (`j***@example.com`).

use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use api::{EmailReceipt, EmailRequest, EmailStatus, SentEmail, TableLimits, paths, problems, unchecked};
use axum::{
    Router,
    extract::State,
    routing::{get, post},
};
use service_kit::{
    BoundedTable, Json, Page, Problem, Query, Readiness, ServerLimits,
    config::{ConfigError, Listen, env_count},
};
use telemetry::semconv::eshop;
use uuid::Uuid;

/// Emails sent, not counting requests repeated for an order already emailed.
static EMAILS_SENT: LazyLock<telemetry::metrics::Counter> =
    LazyLock::new(|| telemetry::metrics::counter(eshop::metric::EMAILS_SENT, "{email}", "Emails sent."));

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub limits: ServerLimits,
    pub tables: TableLimits,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env()?,
            limits: ServerLimits::from_env()?,
            tables: TableLimits::read(env_count)?,
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
    limits: ServerLimits,
    /// The oldest records are forgotten when full: a redelivery of an order
    /// that old would be emailed again (see docs/guarantees.md, "The limits that
    /// come with the bounds").
    sent: Arc<Mutex<BoundedTable<Uuid, SentEmail>>>,
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self {
            limits: config.limits,
            sent: Arc::new(Mutex::new(BoundedTable::with_capacity(config.tables.records))),
        }
    }

    /// Each update is a single insert or field change, so a poisoned lock's data is whole.
    fn sent(&self) -> MutexGuard<'_, BoundedTable<Uuid, SentEmail>> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let api = Router::new()
        .route(paths::SEND_EMAIL, post(send_email))
        .route(paths::SENT_EMAILS, get(sent_emails))
        .with_state(state);
    service_kit::service_router(api, Readiness::ready(), limits, problems::TYPE_PREFIX)
}

#[tracing::instrument(name = "send email", skip_all, fields({ eshop::attribute::ORDER_ID } = %request.order_id))]
async fn send_email(
    State(state): State<AppState>,
    Json(request): Json<unchecked::EmailRequest>,
) -> Result<Json<EmailReceipt>, Problem> {
    let request = EmailRequest::try_from(request).map_err(|broken| Problem::invalid_input(&broken))?;
    let mut sent = state.sent();
    if let Some(earlier) = sent.get_mut(&request.order_id) {
        earlier.requests += 1;
        tracing::info!(
            name: eshop::event::EMAIL_ALREADY_SENT,
            {
                { eshop::attribute::EMAIL_REQUESTS } = earlier.requests,
            },
            "email already sent for this order; not sending again"
        );
        return Ok(Json(EmailReceipt {
            order_id: request.order_id,
            status: EmailStatus::AlreadySent,
        }));
    }
    tracing::info!(
        name: eshop::event::EMAIL_SENT,
        {
            { eshop::attribute::EMAIL_RECIPIENT } = %request.to.masked(),
        },
        "email sent"
    );
    EMAILS_SENT.add(1, &[]);
    sent.insert(
        request.order_id,
        SentEmail {
            order_id: request.order_id,
            to: request.to.into(),
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

/// A page of sent emails: `?limit=&after=<order id>`.
async fn sent_emails(
    State(state): State<AppState>,
    Query(page): Query<Page<Uuid>>,
) -> Result<Json<Vec<SentEmail>>, Problem> {
    Ok(Json(state.sent().page(page.after.as_ref(), page.limit()?)))
}
