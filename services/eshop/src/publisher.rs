//! eshop's Kafka producer: publishes "order placed" and waits for the broker's acknowledgement.

use std::{sync::LazyLock, time::Duration};

use api::{OrderPlaced, PublishedEvent};
use messaging::KafkaSettings;
use rdkafka::{
    error::KafkaError,
    producer::{FutureProducer, FutureRecord, Producer as _},
    util::Timeout,
};
use telemetry::kafka;
use tracing::Instrument as _;

/// How long shutdown waits for records still queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Orders whose "order placed" event Kafka acknowledged: the last step of a
/// checkout, so this counts checkouts that went through.
static ORDERS_PLACED: LazyLock<telemetry::metrics::Counter> = LazyLock::new(|| {
    telemetry::metrics::counter(
        "eshop.orders.placed",
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

pub(crate) struct Publisher {
    producer: FutureProducer,
    topic: String,
    ack_timeout: Duration,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.topic)
            .field("ack_timeout", &self.ack_timeout)
            .finish()
    }
}

impl Publisher {
    /// Creates the producer; it connects lazily, so eshop starts even while the broker is away.
    pub(crate) fn new(settings: &KafkaSettings, ack_timeout: Duration) -> Result<Self, KafkaError> {
        let ack_timeout_ms = u64::try_from(ack_timeout.as_millis()).unwrap_or(u64::MAX);
        Ok(Self {
            producer: settings.producer_config(ack_timeout_ms).create()?,
            topic: settings.topic.clone(),
            ack_timeout,
        })
    }

    /// Publishes the event keyed by order id (so one order's events stay in
    /// order on one partition) inside a PRODUCER span whose context travels in
    /// the record headers, and returns where the broker stored it.
    pub(crate) async fn publish(&self, event: &OrderPlaced) -> Result<PublishedEvent, PublishError> {
        let key = event.order_id.to_string();
        let payload = serde_json::to_vec(event)?;
        let span = kafka::producer_span(&self.topic, &key);
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&payload)
            .headers(kafka::record_headers(&span));
        // message.timeout.ms (set to ack_timeout) bounds the wait for the
        // acknowledgement; this bounds the wait for room in a full local queue.
        let outcome = self
            .producer
            .send(record, Timeout::After(self.ack_timeout))
            .instrument(span.clone())
            .await;
        match outcome {
            Ok(delivery) => {
                kafka::record_delivery(&span, delivery.partition, delivery.offset);
                ORDERS_PLACED.add(1, &[]);
                Ok(PublishedEvent {
                    topic: self.topic.clone(),
                    partition: delivery.partition,
                    offset: delivery.offset,
                })
            }
            Err((err, _record)) => {
                kafka::record_error(&span, "kafka_error", &err);
                Err(PublishError::NotAcknowledged(err))
            }
        }
    }

    pub(crate) fn flush(&self) {
        if let Err(err) = self.producer.flush(Timeout::After(FLUSH_TIMEOUT)) {
            tracing::error!(%err, "records left unsent at shutdown");
        }
    }
}
