//! kafka-consumer: turns "order placed" events into confirmation emails, at least once, inside the checkout's trace.
//!
//! For each record of `eshop-topic` (group `eshop-demo-app`) it opens a CONSUMER
//! span parented to and linked to eshop's PRODUCER span, and calls notification
//! `/sendEmail` inside it. Its offset is stored for commit only after
//! notification accepted the email, so a crash means redelivery, never loss, and
//! notification's idempotency turns a redelivery into no second email.
//! A record that can never be handled goes to `eshop-topic.dlq` and is
//! committed, so it does not block its partition.
//!
//! Before emailing, it waits for billing to confirm the order's payment:
//! eshop confirms only after Kafka acknowledged the record, and refunds
//! instead when the checkout failed, yet a record acknowledged too late is in
//! the topic all the same. A refunded order gets no email; one still
//! unconfirmed `PAYMENT_CONFIRM_WAIT_MS` after its publication is
//! dead-lettered for an operator to look at.
//!
//! | module | what it does |
//! | --- | --- |
//! | `consume` | the poll loop: records to lanes, pausing full partitions, supervision, close |
//! | `lanes` | one lane per partition; what a revoke does to it |
//! | `handle` | one record: parse, wait for the payment's confirmation, email, retries |
//! | `retry` | which answers are retried (all but 400 and 422), `Retry-After` |
//! | `dead_letter` | the dead-letter topic |
//! | `replay` | `POST /dead-letters/replay`: chosen dead letters published again, each at most once |

mod consume;
mod dead_letter;
mod handle;
mod lanes;
mod replay;
mod retry;

use std::{sync::Arc, time::Duration};

use api::{paths, problems};
use axum::{Router, routing::post};
use messaging::{KafkaSettings, replay::Replayer};
use service_kit::{
    Readiness, ServerLimits,
    config::{ConfigError, DEFAULT_HTTP_CLIENT_TIMEOUT, HTTP_CLIENT_TIMEOUT_MS, Listen, env_millis, env_url},
};

pub use consume::Worker;

/// Why the consumer could not start, or stopped for a reason other than shutdown.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("a partition lane failed: {0}")]
    LaneFailed(String),
}

pub const NOTIFICATION_URL: &str = "NOTIFICATION_URL";
/// Asked whether an order's charge still stands before its email goes out.
pub const BILLING_URL: &str = "BILLING_URL";
/// The longest pause between two attempts at notification while it is down.
pub const NOTIFY_MAX_BACKOFF_MS: &str = "NOTIFY_MAX_BACKOFF_MS";
pub const DEFAULT_NOTIFY_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long after an order's event was published kafka-consumer waits for
/// billing to confirm its payment before dead-lettering the record.
pub const PAYMENT_CONFIRM_WAIT_MS: &str = "PAYMENT_CONFIRM_WAIT_MS";
/// Well past eshop's publish timeout (5 s) and a billing restart, so only an
/// order eshop never settled (it crashed, or billing stayed away) waits it out.
pub const DEFAULT_PAYMENT_CONFIRM_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub limits: ServerLimits,
    pub kafka: KafkaSettings,
    pub notification_url: String,
    pub billing_url: String,
    pub http_timeout: Duration,
    pub max_backoff: Duration,
    pub confirm_wait: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env()?,
            limits: ServerLimits::from_env()?,
            // The Kafka crate knows nothing of service-kit; its error has the same fields.
            kafka: KafkaSettings::from_env().map_err(|err| ConfigError {
                name: err.name,
                value: err.value,
                reason: err.reason,
            })?,
            notification_url: env_url(NOTIFICATION_URL, "http://notification:8080")?,
            billing_url: env_url(BILLING_URL, "http://billing:8080")?,
            http_timeout: env_millis(HTTP_CLIENT_TIMEOUT_MS, DEFAULT_HTTP_CLIENT_TIMEOUT)?,
            max_backoff: env_millis(NOTIFY_MAX_BACKOFF_MS, DEFAULT_NOTIFY_MAX_BACKOFF)?,
            confirm_wait: env_millis(PAYMENT_CONFIRM_WAIT_MS, DEFAULT_PAYMENT_CONFIRM_WAIT)?,
        })
    }
}

/// How long each step of a dead-letter replay waits for the broker.
const REPLAY_STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// The replayer of this consumer group's dead letters. Every replica shares
/// its transactional id, so two replays never both publish a letter.
pub fn dead_letter_replayer(config: &Config) -> Arc<Replayer> {
    Arc::new(Replayer::new(
        &config.kafka,
        format!("{}.dead-letter-replay", config.kafka.group_id),
        REPLAY_STEP_TIMEOUT,
    ))
}

/// The consumer serves its probes (`/readyz` turns ready once Kafka has
/// assigned it partitions) and the operators' `POST /dead-letters/replay`.
pub fn app(readiness: Readiness, limits: ServerLimits, replayer: Arc<Replayer>) -> Router {
    let api = Router::new()
        .route(paths::DEAD_LETTERS_REPLAY, post(replay::replay))
        .with_state(replayer);
    service_kit::service_router(api, readiness, limits, problems::TYPE_PREFIX)
}
