//! eshop's Kafka producer: publishes "order placed" and waits for the broker's acknowledgement.

use std::{sync::LazyLock, time::Duration};

use api::{OrderPlaced, PublishedEvent};
use messaging::{KafkaSettings, TracedProducer};
use rdkafka::error::KafkaError;
use telemetry::semconv::{attribute, eshop};

/// How long shutdown waits for records still queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Orders whose "order placed" event Kafka acknowledged: the last step of a
/// checkout, so this counts checkouts that went through.
static ORDERS_PLACED: LazyLock<telemetry::metrics::Counter> = LazyLock::new(|| {
    telemetry::metrics::counter(
        eshop::metric::ORDERS_PLACED,
        "{order}",
        "Orders placed (event acknowledged by Kafka).",
    )
});

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("Kafka did not acknowledge the event: {0}")]
    NotAcknowledged(#[from] KafkaError),
    #[error("cannot encode the event: {0}")]
    Encode(#[from] serde_json::Error),
}

#[derive(Debug)]
pub(crate) struct Publisher {
    producer: TracedProducer,
    topic: String,
}

impl Publisher {
    /// Creates the producer; it connects lazily, so eshop starts even while the broker is away.
    pub(crate) fn new(settings: &KafkaSettings, ack_timeout: Duration) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: TracedProducer::new(settings, ack_timeout)?,
            topic: settings.topic.clone(),
        })
    }

    /// Publishes the event keyed by order id (so one order's events stay in
    /// order on one partition), traced by [`TracedProducer::send`], and
    /// returns where the broker stored it.
    pub(crate) async fn publish(&self, event: &OrderPlaced) -> Result<PublishedEvent, PublishError> {
        let key = event.order_id.to_string();
        let payload = serde_json::to_vec(event)?;
        let delivery = self.producer.send(&self.topic, key.as_bytes(), &payload, &[]).await?;
        ORDERS_PLACED.add(1, &[]);
        Ok(PublishedEvent {
            topic: self.topic.clone(),
            partition: delivery.partition,
            offset: delivery.offset,
        })
    }

    pub(crate) fn flush(&self) {
        if let Err(err) = self.producer.flush(FLUSH_TIMEOUT) {
            tracing::error!(
                name: eshop::event::PUBLISH_UNSENT_AT_SHUTDOWN,
                {
                    { attribute::EXCEPTION_MESSAGE } = %err,
                },
                "records left unsent at shutdown"
            );
        }
    }
}
