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
