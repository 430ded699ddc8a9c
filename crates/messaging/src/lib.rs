//! The Kafka side of the trace, in one crate: to copy how a record carries the trace from a producer to a consumer, copy this crate.
//!
//! A checkout's trace crosses Kafka once: eshop publishes "order placed" and
//! the kafka-consumer processes it. This crate is everything both ends need,
//! one job per module:
//!
//! | module | what it does |
//! | --- | --- |
//! | [`settings`] | [`KafkaSettings`]: broker, topics, group and librdkafka overrides (for all clients, consumers, producers) from the environment |
//! | [`client_log`] | librdkafka's log lines and errors as named log events; its statistics never logged |
//! | [`producer`] | [`TracedProducer`]: one `send` opens the PRODUCER span, writes its context into the record headers, waits for the acknowledgement and records where the record went (or why not) |
//! | [`consumer`] | [`consumer::process`] / [`consumer::consumer_span`]: the CONSUMER span of a received record, parented to and linked to the PRODUCER span its headers carry |
//! | [`headers`] | the carriers: propagation fields in and out of rdkafka's record headers |
//! | [`dead_letter`] | what a dead letter and its replay carry, and the replay's links on the CONSUMER span |
//! | [`replay`] | [`replay::Replayer`]: selected dead letters published again, each once (a Kafka transaction) |
//! | [`failure`] | marking a PRODUCER or CONSUMER span failed, with `error.type` |
//! | [`lag`] | consumer lag per partition, from librdkafka's statistics |
//!
//! The propagators, `x-request-id`, the metric instruments and the attribute
//! names are the `telemetry` crate's, the same as HTTP uses, so a record
//! carries W3C and B3 like a request does. The messaging metrics
//! (`messaging.client.operation.duration`, `messaging.client.sent.messages`,
//! `messaging.client.consumed.messages`, `messaging.process.duration`) are
//! recorded here, each with its span as exemplar.

pub mod client_log;
pub mod consumer;
pub mod dead_letter;
pub mod failure;
pub mod headers;
pub mod lag;
pub mod producer;
pub mod replay;
pub mod settings;

pub use failure::record_error;
pub use producer::TracedProducer;
pub use settings::{
    Broker, DEFAULT_BOOTSTRAP_SERVERS, DEFAULT_GROUP_ID, DEFAULT_TOPIC, DLQ_SUFFIX, KAFKA_BOOTSTRAP_SERVERS,
    KAFKA_CONFIG, KAFKA_CONSUMER_CONFIG, KAFKA_DLQ_TOPIC, KAFKA_GROUP_ID, KAFKA_PRODUCER_CONFIG, KAFKA_TOPIC,
    KafkaSettings, SettingsError, parse_overrides,
};
