//! The dead-letter topic: where a record that can never be handled goes, with why and where it came from.

use std::time::Duration;

use messaging::{KafkaSettings, TracedProducer, dead_letter};
use rdkafka::{Message as _, error::KafkaError, message::OwnedMessage};
use service_kit::Backoff;
use telemetry::semconv::{attribute, eshop};
use tokio_util::sync::CancellationToken;

use crate::retry::capped;

/// How long one dead-letter send may wait for the broker's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct DeadLetters {
    producer: TracedProducer,
    topic: String,
    max_backoff: Duration,
}

impl DeadLetters {
    pub(crate) fn new(settings: &KafkaSettings, max_backoff: Duration) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: TracedProducer::new(settings, ACK_TIMEOUT)?,
            topic: settings.dlq_topic.clone(),
            max_backoff,
        })
    }

    /// Copies the record to the dead-letter topic, with why and where it came
    /// from in its headers and its own headers kept for a replay (see
    /// `messaging::dead_letter`), retrying until the broker acknowledges it
    /// (each attempt a PRODUCER span); `false` when `stop` came first (the
    /// record stays unhandled and will be delivered again).
    pub(crate) async fn send(&self, message: &OwnedMessage, reason: &str, stop: &CancellationToken) -> bool {
        let key = message.key().unwrap_or_default();
        let payload = message.payload().unwrap_or_default();
        let source = dead_letter::location(message.topic(), message.partition(), message.offset());
        let headers = dead_letter::letter_headers(capped(reason), &source, message.headers());
        let headers: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_slice()))
            .collect();
        let mut backoff = Backoff::new(self.max_backoff);
        loop {
            match self.producer.send(&self.topic, key, payload, &headers).await {
                Ok(delivery) => {
                    // Where an operator finds it to replay it (POST /dead-letters/replay).
                    tracing::info!(
                        name: eshop::event::DEAD_LETTER_WRITTEN,
                        {
                            { attribute::MESSAGING_DESTINATION_NAME } = %self.topic,
                            { attribute::MESSAGING_DESTINATION_PARTITION_ID } = delivery.partition.to_string(),
                            { attribute::MESSAGING_KAFKA_OFFSET } = delivery.offset,
                        },
                        "dead letter written"
                    );
                    return true;
                }
                Err(err) => tracing::warn!(
                    name: eshop::event::DEAD_LETTER_SEND_FAILED,
                    {
                        { attribute::EXCEPTION_MESSAGE } = %err,
                    },
                    "dead-letter send failed; retrying"
                ),
            }
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(backoff.next_wait()) => {}
            }
        }
    }
}
