//! The traced producer: one `send` is one PRODUCER span, its context in the record's headers, closed with where the broker stored the record or why it did not.

use std::time::Duration;

use rdkafka::{
    error::KafkaError,
    message::OwnedHeaders,
    producer::{FutureProducer, FutureRecord, Producer as _, future_producer::Delivery},
    util::Timeout,
};
use telemetry::{
    metrics::{self, KeyValue},
    semconv::attribute,
};
use tracing::{Instrument as _, Span, field::Empty};

use crate::{KafkaSettings, client_log::ClientLogs, failure, headers, settings::Broker};

/// A producer whose every send is traced and waits for the broker's acknowledgement.
pub struct TracedProducer {
    producer: FutureProducer<ClientLogs>,
    ack_timeout: Duration,
    broker: Broker,
}

impl std::fmt::Debug for TracedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedProducer")
            .field("ack_timeout", &self.ack_timeout)
            .finish_non_exhaustive()
    }
}

impl TracedProducer {
    /// Creates the producer from [`KafkaSettings::producer_config`]; it
    /// connects lazily, so a service starts even while the broker is away.
    /// Each send waits at most `ack_timeout` for the acknowledgement (and as
    /// long again for room in a full local queue).
    pub fn new(settings: &KafkaSettings, ack_timeout: Duration) -> Result<Self, KafkaError> {
        let ack_timeout_ms = u64::try_from(ack_timeout.as_millis()).unwrap_or(u64::MAX);
        Ok(Self {
            producer: settings
                .producer_config(ack_timeout_ms)
                .create_with_context(ClientLogs)?,
            ack_timeout,
            broker: settings.broker(),
        })
    }

    /// Sends one record to `topic` and waits for the broker's acknowledgement,
    /// inside a PRODUCER span `send {topic}` (a child of the current span).
    ///
    /// The record's headers carry the span's context and `x-request-id`,
    /// then `extra_headers` in order. The span records the partition and
    /// offset the broker stored the record at, or is marked failed with
    /// `error.type = kafka_error`; `messaging.client.operation.duration` and
    /// `messaging.client.sent.messages` are recorded when it closes.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// use messaging::{KafkaSettings, TracedProducer};
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let settings = KafkaSettings::from_env()?;
    /// let producer = TracedProducer::new(&settings, Duration::from_secs(5))?;
    /// let delivery = producer
    ///     .send(&settings.topic, b"order-1", br#"{"order_id":"order-1"}"#, &[("dlq.reason", b"example".as_slice())])
    ///     .await?;
    /// println!("stored at partition {} offset {}", delivery.partition, delivery.offset);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        extra_headers: &[(&str, &[u8])],
    ) -> Result<Delivery, KafkaError> {
        let send = SendSpan::open(topic, &String::from_utf8_lossy(key), &self.broker);
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(send.headers(extra_headers));
        // message.timeout.ms (set to ack_timeout) bounds the wait for the
        // acknowledgement; this bounds the wait for room in a full local queue.
        let outcome = self
            .producer
            .send(record, Timeout::After(self.ack_timeout))
            .instrument(send.span.clone())
            .await;
        match outcome {
            Ok(delivery) => {
                send.delivered(delivery.partition, delivery.offset);
                Ok(delivery)
            }
            Err((err, _record)) => {
                send.failed(&err);
                Err(err)
            }
        }
    }

    /// Waits up to `timeout` for records still queued, e.g. at shutdown.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(Timeout::After(timeout))
    }
}

/// The PRODUCER span of one send, from opening to the broker's answer: what
/// [`TracedProducer::send`] wraps around rdkafka's send. Public so that the
/// benchmarks can measure it without a broker; services send with
/// [`TracedProducer`], which cannot forget a step.
#[derive(Debug)]
pub struct SendSpan {
    span: Span,
}

impl SendSpan {
    /// Opens the span `send {topic}` under the current span, with its metrics
    /// recorded when it closes; `broker` is the bootstrap broker the producer was given.
    pub fn open(topic: &str, key: &str, broker: &Broker) -> Self {
        let span = tracing::info_span!(
            "kafka send",
            otel.name = format!("send {topic}"),
            otel.kind = "producer",
            otel.status_code = Empty,
            error.type = Empty,
            messaging.system = "kafka",
            messaging.operation.type = "send",
            messaging.operation.name = "send",
            messaging.destination.name = topic,
            // A key may come from a record (a dead letter's, replayed): capped like a copied header.
            messaging.kafka.message.key = telemetry::untrusted::capped(key, telemetry::untrusted::MAX_COPIED_HEADER),
            messaging.destination.partition.id = Empty,
            messaging.kafka.offset = Empty,
            server.address = broker.address.as_str(),
            server.port = broker.port,
        );
        if let Some(instruments) = metrics::messaging() {
            let mut attributes = vec![
                KeyValue::new(attribute::MESSAGING_SYSTEM, "kafka"),
                KeyValue::new(attribute::MESSAGING_OPERATION_NAME, "send"),
                KeyValue::new(attribute::MESSAGING_OPERATION_TYPE, "send"),
                KeyValue::new(attribute::MESSAGING_DESTINATION_NAME, topic.to_owned()),
                KeyValue::new(attribute::SERVER_ADDRESS, broker.address.clone()),
            ];
            if let Some(port) = broker.port {
                attributes.push(KeyValue::new(attribute::SERVER_PORT, port));
            }
            metrics::record_on_close(
                &span,
                &instruments.operation_duration,
                Some(&instruments.sent_messages),
                attributes,
            );
        }
        Self { span }
    }

    /// The span, e.g. to link it or to write its context under other header names.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The record's headers: this span's context, `x-request-id`, then `extra`.
    pub fn headers(&self, extra: &[(&str, &[u8])]) -> OwnedHeaders {
        headers::for_span(&self.span, extra)
    }

    /// Records where the broker stored the record, and closes the span.
    pub fn delivered(self, partition: i32, offset: i64) {
        let partition = partition.to_string();
        // Known only now: the metrics get it as the span does.
        metrics::add_close_attribute(
            &self.span,
            KeyValue::new(attribute::MESSAGING_DESTINATION_PARTITION_ID, partition.clone()),
        );
        self.span.record("messaging.destination.partition.id", partition);
        self.span.record("messaging.kafka.offset", offset);
    }

    /// Marks the send failed, and closes the span.
    pub fn failed(self, err: &KafkaError) {
        failure::record_error(&self.span, "kafka_error", err);
    }
}
