//! eshop: places orders. A checkout reserves stock (inventory), charges (billing),
//! schedules delivery (delivery), then publishes "order placed" to Kafka, where
//! kafka-consumer picks it up and has notification email the customer.
//!
//! A checkout that fails at any step undoes the steps before it, so it leaves
//! no stock reserved and no money taken.

mod checkout;
mod downstream;
mod error;
mod publisher;

use std::{sync::Arc, time::Duration};

use api::paths;
use axum::{Router, routing::get};
use messaging::KafkaSettings;
use service_kit::{
    Readiness,
    config::{ConfigError, DEFAULT_HTTP_CLIENT_TIMEOUT, HTTP_CLIENT_TIMEOUT_MS, Listen, env_millis, env_url},
};

pub use downstream::Service;
pub use error::CheckoutError;

pub const INVENTORY_URL: &str = "INVENTORY_URL";
pub const BILLING_URL: &str = "BILLING_URL";
pub const DELIVERY_URL: &str = "DELIVERY_URL";
/// How long a checkout waits for Kafka to acknowledge the "order placed" event.
pub const KAFKA_PUBLISH_TIMEOUT_MS: &str = "KAFKA_PUBLISH_TIMEOUT_MS";
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub inventory_url: String,
    pub billing_url: String,
    pub delivery_url: String,
    pub http_timeout: Duration,
    pub kafka: KafkaSettings,
    pub publish_timeout: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env()?,
            inventory_url: env_url(INVENTORY_URL, "http://inventory:8080")?,
            billing_url: env_url(BILLING_URL, "http://billing:8080")?,
            delivery_url: env_url(DELIVERY_URL, "http://delivery:8080")?,
            http_timeout: env_millis(HTTP_CLIENT_TIMEOUT_MS, DEFAULT_HTTP_CLIENT_TIMEOUT)?,
            kafka: KafkaSettings::from_env()?,
            publish_timeout: env_millis(KAFKA_PUBLISH_TIMEOUT_MS, DEFAULT_PUBLISH_TIMEOUT)?,
        })
    }
}

/// Why eshop could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("cannot create the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    downstream: downstream::Downstream,
    publisher: publisher::Publisher,
}

impl AppState {
    pub fn new(config: &Config) -> Result<Self, StartError> {
        Ok(Self(Arc::new(Inner {
            downstream: downstream::Downstream::new(config)?,
            publisher: publisher::Publisher::new(&config.kafka, config.publish_timeout)?,
        })))
    }

    /// Waits for records still in the producer's queue; call before exiting.
    pub fn flush_producer(&self) {
        self.0.publisher.flush();
    }
}

pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route(paths::CHECKOUT, get(checkout::sample_checkout).post(checkout::checkout))
        .with_state(state);
    service_kit::service_router(api, Readiness::ready())
}
