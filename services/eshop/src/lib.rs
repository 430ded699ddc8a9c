//! eshop: places orders. A checkout reserves stock (inventory), charges (billing),
//! schedules delivery (delivery), then publishes "order placed" to Kafka, where
//! kafka-consumer picks it up and has notification email the customer.
//!
//! A checkout that fails at any step undoes every step that may have
//! happened, the failing one included, so it leaves no stock reserved, no
//! money taken and no delivery scheduled; an undo that cannot be done at once
//! is retried in the background until it is.

mod checkout;
mod compensation;
mod downstream;
mod error;
mod idempotency;
mod publisher;

use std::{sync::Arc, time::Duration};

use api::{paths, problems};
use axum::{Router, routing::get};
use messaging::KafkaSettings;
use service_kit::{
    Readiness, ServerLimits, ServiceApp,
    config::{ConfigError, DEFAULT_HTTP_CLIENT_TIMEOUT, HTTP_CLIENT_TIMEOUT_MS, Listen, env_millis, env_or, env_url},
};
use tokio_util::task::TaskTracker;

pub use downstream::Service;
pub use error::CheckoutError;

pub const INVENTORY_URL: &str = "INVENTORY_URL";
pub const BILLING_URL: &str = "BILLING_URL";
pub const DELIVERY_URL: &str = "DELIVERY_URL";
/// How long a checkout waits for Kafka to acknowledge the "order placed" event.
pub const KAFKA_PUBLISH_TIMEOUT_MS: &str = "KAFKA_PUBLISH_TIMEOUT_MS";
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest pause between two attempts at an undo that keeps failing.
pub const UNDO_MAX_BACKOFF_MS: &str = "UNDO_MAX_BACKOFF_MS";
pub const DEFAULT_UNDO_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The most undos retried in the background. Each running checkout holds room
/// for three (one per step), so new checkouts are refused (503) when the
/// pending undos and that room would pass it; at least 3.
pub const PENDING_UNDOS_MAX: &str = "PENDING_UNDOS_MAX";
pub const DEFAULT_PENDING_UNDOS_MAX: usize = 1_000;
/// After eshop stopped serving, how long checkouts still running and undos
/// still being retried may take before the undos are abandoned (and logged).
pub const SHUTDOWN_GRACE_MS: &str = "SHUTDOWN_GRACE_MS";
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
pub use idempotency::{DEFAULT_IDEMPOTENCY_KEYS_MAX, IDEMPOTENCY_KEYS_MAX};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub limits: ServerLimits,
    pub inventory_url: String,
    pub billing_url: String,
    pub delivery_url: String,
    pub http_timeout: Duration,
    pub kafka: KafkaSettings,
    pub publish_timeout: Duration,
    pub undo_max_backoff: Duration,
    pub pending_undos_max: usize,
    pub shutdown_grace: Duration,
    pub idempotency_keys_max: usize,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env()?,
            limits: ServerLimits::from_env()?,
            inventory_url: env_url(INVENTORY_URL, "http://inventory:8080")?,
            billing_url: env_url(BILLING_URL, "http://billing:8080")?,
            delivery_url: env_url(DELIVERY_URL, "http://delivery:8080")?,
            http_timeout: env_millis(HTTP_CLIENT_TIMEOUT_MS, DEFAULT_HTTP_CLIENT_TIMEOUT)?,
            // The Kafka crate knows nothing of service-kit; its error has the same fields.
            kafka: KafkaSettings::from_env().map_err(|err| ConfigError {
                name: err.name,
                value: err.value,
                reason: err.reason,
            })?,
            publish_timeout: env_millis(KAFKA_PUBLISH_TIMEOUT_MS, DEFAULT_PUBLISH_TIMEOUT)?,
            undo_max_backoff: env_millis(UNDO_MAX_BACKOFF_MS, DEFAULT_UNDO_MAX_BACKOFF)?,
            pending_undos_max: Self::pending_undos_max_checked(env_or(PENDING_UNDOS_MAX, DEFAULT_PENDING_UNDOS_MAX)?)?,
            shutdown_grace: env_millis(SHUTDOWN_GRACE_MS, DEFAULT_SHUTDOWN_GRACE)?,
            idempotency_keys_max: env_or(IDEMPOTENCY_KEYS_MAX, DEFAULT_IDEMPOTENCY_KEYS_MAX)?,
        })
    }

    /// Below three, no checkout could ever reserve room for its undos.
    fn pending_undos_max_checked(value: usize) -> Result<usize, ConfigError> {
        if value < compensation::STEPS {
            return Err(ConfigError {
                name: PENDING_UNDOS_MAX,
                value: value.to_string(),
                reason: format!(
                    "must be at least {} (room for one checkout's undos)",
                    compensation::STEPS
                ),
            });
        }
        Ok(value)
    }

    /// A configuration for tests and embedding: these addresses, every other
    /// setting at its default.
    pub fn new(
        listen: Listen,
        inventory_url: &str,
        billing_url: &str,
        delivery_url: &str,
        kafka: KafkaSettings,
    ) -> Self {
        Self {
            listen,
            limits: ServerLimits::default(),
            inventory_url: inventory_url.to_owned(),
            billing_url: billing_url.to_owned(),
            delivery_url: delivery_url.to_owned(),
            http_timeout: DEFAULT_HTTP_CLIENT_TIMEOUT,
            kafka,
            publish_timeout: DEFAULT_PUBLISH_TIMEOUT,
            undo_max_backoff: DEFAULT_UNDO_MAX_BACKOFF,
            pending_undos_max: DEFAULT_PENDING_UNDOS_MAX,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            idempotency_keys_max: DEFAULT_IDEMPOTENCY_KEYS_MAX,
        }
    }
}

impl service_kit::ServiceConfig for Config {
    fn listen(&self) -> Listen {
        self.listen
    }
}

/// Why eshop could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("cannot create the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("{url} is not a URL: {reason}")]
    BadUrl { url: String, reason: String },
}

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    downstream: Arc<downstream::Downstream>,
    publisher: publisher::Publisher,
    compensator: compensation::Compensator,
    idempotency_keys: idempotency::IdempotencyKeys,
    /// Checkouts in progress and undos being retried: what shutdown waits for.
    tasks: TaskTracker,
    limits: ServerLimits,
}

impl AppState {
    pub fn new(config: &Config) -> Result<Self, StartError> {
        let downstream = Arc::new(downstream::Downstream::new(config)?);
        let tasks = TaskTracker::new();
        Ok(Self(Arc::new(Inner {
            compensator: compensation::Compensator::new(
                downstream.clone(),
                tasks.clone(),
                config.pending_undos_max,
                config.undo_max_backoff,
            ),
            downstream,
            publisher: publisher::Publisher::new(&config.kafka, config.publish_timeout)?,
            idempotency_keys: idempotency::IdempotencyKeys::new(config.idempotency_keys_max),
            tasks,
            limits: config.limits,
        })))
    }

    /// Call once serving has stopped: waits for the checkouts still running
    /// and the undos still being retried, up to `grace`; then has the retries
    /// give up (each logs its order for reconciliation) and flushes the
    /// producer's queue.
    pub async fn finish(&self, grace: std::time::Duration) {
        let inner = &self.0;
        inner.tasks.close();
        if tokio::time::timeout(grace, inner.tasks.wait()).await.is_err() {
            inner.compensator.give_up();
            inner.tasks.wait().await;
        }
        inner.publisher.flush();
    }
}

/// eshop as its binary serves it: the app, and once serving stopped,
/// [`AppState::finish`] within the configured grace period.
pub fn service(config: &Config) -> Result<ServiceApp, StartError> {
    let state = AppState::new(config)?;
    let grace = config.shutdown_grace;
    Ok(ServiceApp::new(app(state.clone())).finishing_with(async move {
        // Checkouts whose client hung up and undos still being retried
        // finish (within the grace period), then queued records are delivered.
        state.finish(grace).await;
    }))
}

pub fn app(state: AppState) -> Router {
    let limits = state.0.limits;
    let readiness = Readiness::ready().with_gauge("pending_undos", state.0.compensator.pending());
    let api = Router::new()
        .route(paths::CHECKOUT, get(checkout::sample_checkout).post(checkout::checkout))
        .with_state(state);
    service_kit::service_router(api, readiness, limits, problems::TYPE_PREFIX)
}
