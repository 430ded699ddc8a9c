//! The Kafka side: PRODUCER and CONSUMER spans, with the record headers as the carrier.
//!
//! The producer writes its span's context into the record's headers with the
//! same propagators as HTTP ([`KafkaHeaderInjector`]); the consumer reads it back
//! ([`KafkaHeaderExtractor`]) and opens its CONSUMER span with the PRODUCER span
//! as parent *and* as link. The parent keeps the consumer and everything it calls
//! (the notification request) in the checkout's trace; the link is what Jaeger
//! draws as FOLLOWS_FROM. The span stays open while the message is processed,
//! which is what the 2019 Java demo needed a custom interceptor for.
//!
//! The messaging metrics are recorded here too: `messaging.client.operation.duration`
//! and `messaging.client.sent.messages` when a PRODUCER span ends,
//! `messaging.client.consumed.messages` when a CONSUMER span opens and
//! `messaging.process.duration` when it ends, each with that span as exemplar;
//! and the consumer lag per partition from librdkafka's statistics.

use opentelemetry::{
    KeyValue,
    propagation::{Extractor, Injector},
    trace::TraceContextExt as _,
};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    metrics::{self, Instruments},
    propagation, request_id,
    semconv::attribute,
};

/// Writes propagation fields into rdkafka's owned record headers.
#[derive(Debug)]
pub struct KafkaHeaderInjector {
    headers: OwnedHeaders,
}

impl KafkaHeaderInjector {
    pub fn new(headers: OwnedHeaders) -> Self {
        Self { headers }
    }

    pub fn into_headers(self) -> OwnedHeaders {
        self.headers
    }
}

impl Injector for KafkaHeaderInjector {
    fn set(&mut self, key: &str, value: String) {
        // OwnedHeaders::insert takes the headers by value and hands them back.
        let headers = std::mem::replace(&mut self.headers, OwnedHeaders::new());
        self.headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
}

/// Reads propagation fields from a received record's headers (borrowed or owned).
#[derive(Debug)]
pub struct KafkaHeaderExtractor<'a, H>(pub &'a H);

impl<H: Headers> Extractor for KafkaHeaderExtractor<'_, H> {
    /// The last header with this key (Kafka allows repeats), compared case-insensitively like HTTP.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|header| header.key.eq_ignore_ascii_case(key))
            .filter_map(|header| header.value.and_then(|value| std::str::from_utf8(value).ok()))
            .last()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|header| header.key).collect()
    }
}

/// Opens the PRODUCER span `send {topic}` for one record; enter it (or
/// instrument the send with it) and take the record's headers from [`record_headers`].
pub fn producer_span(topic: &str, key: &str) -> Span {
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
        messaging.kafka.message.key = key,
        messaging.destination.partition.id = Empty,
        messaging.kafka.offset = Empty,
    );
    metrics::record_on_close(
        &span,
        |instruments: &Instruments| &instruments.messaging_operation_duration,
        Some(|instruments: &Instruments| &instruments.messaging_sent),
        vec![
            KeyValue::new(attribute::MESSAGING_SYSTEM, "kafka"),
            KeyValue::new(attribute::MESSAGING_OPERATION_NAME, "send"),
            KeyValue::new(attribute::MESSAGING_OPERATION_TYPE, "send"),
            KeyValue::new(attribute::MESSAGING_DESTINATION_NAME, topic.to_owned()),
        ],
    );
    span
}

/// Record headers carrying `span`'s context (trace formats and `x-request-id`).
pub fn record_headers(span: &Span) -> OwnedHeaders {
    let mut injector = KafkaHeaderInjector::new(OwnedHeaders::new());
    propagation::inject(&span.context(), &mut injector);
    if let Some(id) = request_id::of(span) {
        injector.set(request_id::X_REQUEST_ID, id);
    }
    injector.into_headers()
}

/// Records where the broker stored the record, once it acknowledged it.
pub fn record_delivery(span: &Span, partition: i32, offset: i64) {
    span.record("messaging.destination.partition.id", partition.to_string());
    span.record("messaging.kafka.offset", offset);
}

/// Marks a PRODUCER or CONSUMER span as failed, with a short error type.
pub fn record_error(span: &Span, error_type: &str, message: &dyn std::fmt::Display) {
    span.record("error.type", error_type);
    span.set_status(opentelemetry::trace::Status::error(message.to_string()));
    metrics::add_close_attribute(span, KeyValue::new(attribute::ERROR_TYPE, error_type.to_owned()));
}

/// Records the consumer lag of each assigned partition from librdkafka's
/// statistics (enable them with `statistics.interval.ms`); call it from the
/// consumer context's `ClientContext::stats`.
pub fn record_consumer_lag(statistics: &rdkafka::Statistics) {
    let Some(instruments) = metrics::instruments() else {
        return;
    };
    for (topic, stats) in &statistics.topics {
        for (partition, stats) in &stats.partitions {
            // -1 is librdkafka's internal unassigned partition; a lag of -1 means unknown.
            if *partition < 0 || stats.consumer_lag < 0 {
                continue;
            }
            instruments.consumer_lag.record(
                stats.consumer_lag,
                &[
                    KeyValue::new(attribute::MESSAGING_SYSTEM, "kafka"),
                    KeyValue::new(attribute::MESSAGING_DESTINATION_NAME, topic.clone()),
                    KeyValue::new(attribute::MESSAGING_DESTINATION_PARTITION_ID, partition.to_string()),
                ],
            );
        }
    }
}

/// Opens the CONSUMER span `process {topic}` for one received record, parented
/// to and linked to the PRODUCER span found in its headers.
///
/// Run the whole processing of the record, including the calls it makes,
/// inside this span.
pub fn consumer_span<M: Message>(message: &M, consumer_group: &str) -> Span
where
    M::Headers: Headers,
{
    let topic = message.topic();
    let key = message.key().and_then(|key| std::str::from_utf8(key).ok());
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
    );
    let producer = message
        .headers()
        .map(|headers| propagation::extract(&KafkaHeaderExtractor(headers)))
        .unwrap_or_default();
    let producer_span_context = producer.span().span_context().clone();
    // Parent: keeps this span and everything it calls in the producer's trace.
    let _ = span.set_parent(producer);
    // Link: the messaging conventions' record of which send this processes.
    span.add_link(producer_span_context);
    if let Some(headers) = message.headers()
        && let Some(id) = KafkaHeaderExtractor(headers).get(request_id::X_REQUEST_ID)
    {
        request_id::remember(&span, id);
    }
    let attributes = vec![
        KeyValue::new(attribute::MESSAGING_SYSTEM, "kafka"),
        KeyValue::new(attribute::MESSAGING_OPERATION_NAME, "process"),
        KeyValue::new(attribute::MESSAGING_OPERATION_TYPE, "process"),
        KeyValue::new(attribute::MESSAGING_DESTINATION_NAME, topic.to_owned()),
        KeyValue::new(attribute::MESSAGING_CONSUMER_GROUP_NAME, consumer_group.to_owned()),
        KeyValue::new(
            attribute::MESSAGING_DESTINATION_PARTITION_ID,
            message.partition().to_string(),
        ),
    ];
    if let Some(instruments) = metrics::instruments() {
        instruments.messaging_consumed.add(1, &attributes);
    }
    metrics::record_on_close(
        &span,
        |instruments: &Instruments| &instruments.messaging_process_duration,
        None,
        attributes,
    );
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_fields_read_back_from_the_headers() {
        let mut injector = KafkaHeaderInjector::new(OwnedHeaders::new());
        injector.set(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        );
        injector.set("x-request-id", "req-7".into());
        let headers = injector.into_headers();
        let extractor = KafkaHeaderExtractor(&headers);
        assert_eq!(
            extractor.get("traceparent"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        assert_eq!(extractor.get("X-Request-Id"), Some("req-7"));
        assert_eq!(extractor.get("b3"), None);
        assert_eq!(extractor.keys(), vec!["traceparent", "x-request-id"]);
    }
}
