//! The dead-letter topic: where a record that can never be handled goes, with why and where it came from.

use std::time::Duration;

use messaging::KafkaSettings;
use rdkafka::{
    Message as _,
    error::KafkaError,
    message::{Header, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use telemetry::kafka;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::retry::{FIRST_BACKOFF, capped};

/// How long one dead-letter send may wait for the broker's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    max_backoff: Duration,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetters {
    pub(crate) fn new(settings: &KafkaSettings, max_backoff: Duration) -> Result<Self, KafkaError> {
        let ack_timeout_ms = u64::try_from(ACK_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        Ok(Self {
            producer: settings.producer_config(ack_timeout_ms).create()?,
            topic: settings.dlq_topic.clone(),
            max_backoff,
        })
    }

    /// Copies the record to the dead-letter topic, retrying until the broker
    /// acknowledges it; `false` when `stop` came first (the record stays
    /// unhandled and will be delivered again).
    pub(crate) async fn send(&self, message: &OwnedMessage, reason: &str, stop: &CancellationToken) -> bool {
        let key = message.key().unwrap_or_default();
        let payload = message.payload().unwrap_or_default();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let span = kafka::producer_span(&self.topic, &String::from_utf8_lossy(key));
            let headers = dead_letter_headers(kafka::record_headers(&span), message, reason);
            let record = FutureRecord::to(&self.topic).key(key).payload(payload).headers(headers);
            match self
                .producer
                .send(record, Timeout::After(ACK_TIMEOUT))
                .instrument(span.clone())
                .await
            {
                Ok(delivery) => {
                    kafka::record_delivery(&span, delivery.partition, delivery.offset);
                    return true;
                }
                Err((err, _)) => {
                    kafka::record_error(&span, "kafka_error", &err);
                    tracing::warn!(%err, "dead-letter send failed; retrying");
                }
            }
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }
}

/// Where the record came from and why it was dead-lettered, for whoever replays it.
fn dead_letter_headers(headers: OwnedHeaders, message: &OwnedMessage, reason: &str) -> OwnedHeaders {
    let source = format!("{}/{}/{}", message.topic(), message.partition(), message.offset());
    headers
        .insert(Header {
            key: "dlq.reason",
            value: Some(capped(reason)),
        })
        .insert(Header {
            key: "dlq.source",
            value: Some(&source),
        })
}
