//! The consuming side: a received record's CONSUMER span, continuing the trace of the PRODUCER span its headers carry.
//!
//! The span is the producer's child *and* carries a link to it. The parent
//! keeps the consumer and everything it calls (the notification request) in
//! the checkout's trace; the link is the messaging conventions' record of
//! which send this processes, and what Jaeger draws as FOLLOWS_FROM. The span
//! stays open while the record is processed, which is what the 2019 Java demo
//! needed a custom interceptor for.

use std::future::Future;

use rdkafka::message::{Headers, Message, OwnedHeaders};
use telemetry::{
    metrics::{self, KeyValue},
    propagation::{self, Extractor},
    request_id,
    semconv::attribute,
};
use tracing::{Instrument as _, Span, field::Empty};

use crate::{headers::HeaderExtractor, settings::Broker};

/// Runs `processing` inside the CONSUMER span of `message` (see
/// [`consumer_span`]): the span is open for exactly as long as the record is
/// processed, and everything `processing` calls is part of the producer's trace.
///
/// Mark the span failed from inside with [`crate::record_error`] on
/// `tracing::Span::current()`.
///
/// # Example
///
/// ```no_run
/// use messaging::{consumer, settings::Broker};
/// use rdkafka::{Message as _, consumer::StreamConsumer};
///
/// # async fn example(kafka: StreamConsumer) -> Result<(), rdkafka::error::KafkaError> {
/// let broker = Broker::parse("kafka:9092");
/// let message = kafka.recv().await?.detach();
/// let bytes = consumer::process(&message, "eshop-demo-app", &broker, async {
///     // Calls made here (HTTP through telemetry's client) are children of the CONSUMER span.
///     message.payload().map_or(0, <[u8]>::len)
/// })
/// .await;
/// # let _ = bytes;
/// # Ok(())
/// # }
/// ```
pub async fn process<M, F>(message: &M, consumer_group: &str, broker: &Broker, processing: F) -> F::Output
where
    M: Message,
    M::Headers: Headers,
    F: Future,
{
    processing
        .instrument(consumer_span(message, consumer_group, broker))
        .await
}

/// Opens the CONSUMER span `process {topic}` for one received record, parented
/// to and linked to the PRODUCER span found in its headers, with the
/// `x-request-id` they carry; `messaging.client.consumed.messages` counts it
/// now and `messaging.process.duration` is recorded when the span closes.
///
/// Run the whole processing of the record, including the calls it makes,
/// inside this span; [`process`] does that for a future. `broker` is the
/// bootstrap broker the consumer was given ([`crate::KafkaSettings::broker`]).
///
/// # Example
///
/// ```no_run
/// use messaging::{consumer::consumer_span, settings::Broker};
/// use rdkafka::message::OwnedMessage;
///
/// fn handle(message: &OwnedMessage, broker: &Broker) {
///     let span = consumer_span(message, "eshop-demo-app", broker);
///     let _entered = span.enter();
///     tracing::info!("processing the record");
/// }
/// ```
pub fn consumer_span<M: Message>(message: &M, consumer_group: &str, broker: &Broker) -> Span
where
    M::Headers: Headers,
{
    let topic = message.topic();
    // Whoever wrote the record chose the key: capped like a copied header.
    let key = message
        .key()
        .and_then(|key| std::str::from_utf8(key).ok())
        .map(|key| telemetry::untrusted::capped(key, telemetry::untrusted::MAX_COPIED_HEADER));
    let span = tracing::info_span!(
        "kafka process",
        otel.name = format!("process {topic}"),
        otel.kind = "consumer",
        otel.status_code = Empty,
        error.type = Empty,
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = topic,
        messaging.consumer.group.name = consumer_group,
        messaging.destination.partition.id = message.partition().to_string(),
        messaging.kafka.offset = message.offset(),
        messaging.kafka.message.key = key,
        messaging.message.body.size = message.payload().map_or(0, |payload| i64::try_from(payload.len()).unwrap_or(i64::MAX)),
        server.address = broker.address.as_str(),
        server.port = broker.port,
    );
    match message.headers() {
        Some(headers) => {
            continue_trace(&span, &HeaderExtractor(headers));
            crate::dead_letter::link_replayed(&span, headers);
        }
        // No headers, no producer: a new trace, like headers without a context.
        None => continue_trace(&span, &HeaderExtractor(&OwnedHeaders::new())),
    }
    if let Some(instruments) = metrics::messaging() {
        let mut attributes = vec![
            KeyValue::new(attribute::MESSAGING_SYSTEM, "kafka"),
            KeyValue::new(attribute::MESSAGING_OPERATION_NAME, "process"),
            KeyValue::new(attribute::MESSAGING_OPERATION_TYPE, "process"),
            KeyValue::new(attribute::MESSAGING_DESTINATION_NAME, topic.to_owned()),
            KeyValue::new(attribute::MESSAGING_CONSUMER_GROUP_NAME, consumer_group.to_owned()),
            KeyValue::new(
                attribute::MESSAGING_DESTINATION_PARTITION_ID,
                message.partition().to_string(),
            ),
            KeyValue::new(attribute::SERVER_ADDRESS, broker.address.clone()),
        ];
        if let Some(port) = broker.port {
            attributes.push(KeyValue::new(attribute::SERVER_PORT, port));
        }
        instruments.consumed_messages.add(1, &attributes);
        metrics::record_on_close(&span, &instruments.process_duration, None, attributes);
    }
    span
}

/// Parents and links `span` to the sender found in `carrier`, and remembers its request id.
fn continue_trace(span: &Span, carrier: &dyn Extractor) {
    propagation::continue_and_link(span, carrier);
    if let Some(id) = carrier.get(request_id::X_REQUEST_ID) {
        request_id::remember(span, id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use rdkafka::{Timestamp, message::OwnedMessage};
    use tracing::field::{Field, Visit};
    use tracing_subscriber::{Layer, layer::SubscriberExt as _};

    use super::*;
    use crate::producer::SendSpan;

    const KEY_FIELD: &str = "messaging.kafka.message.key";

    /// Keeps the key each new span was opened with, as the trace layer reads it.
    #[derive(Clone, Default)]
    struct Keys(Arc<Mutex<Vec<String>>>);

    impl Visit for Keys {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == KEY_FIELD {
                self.0.lock().expect("not poisoned").push(value.to_owned());
            }
        }

        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    impl<S: tracing::Subscriber> Layer<S> for Keys {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            attrs.record(&mut self.clone());
        }
    }

    /// Whoever wrote a record chose its key: a 10,000-byte key reaches
    /// neither span whole, consumed or sent again (a replayed dead letter).
    #[test]
    fn a_record_key_is_capped_in_the_consumer_and_the_producer_span() {
        let keys = Keys::default();
        let broker = Broker::parse("127.0.0.1:9092");
        let key = "k".repeat(10_000);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(keys.clone()), || {
            let message = OwnedMessage::new(
                Some(b"{}".to_vec()),
                Some(key.clone().into_bytes()),
                "eshop-topic".to_owned(),
                Timestamp::NotAvailable,
                0,
                0,
                None,
            );
            drop(consumer_span(&message, "eshop-demo-app", &broker));
            drop(SendSpan::open("eshop-topic", &key, &broker));
        });
        let seen = keys.0.lock().expect("not poisoned").clone();
        assert_eq!(
            seen.iter().map(String::len).collect::<Vec<_>>(),
            [telemetry::untrusted::MAX_COPIED_HEADER; 2]
        );
    }
}
