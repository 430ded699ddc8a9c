//! librdkafka's log lines, errors and statistics as the suite's named log events, for every Kafka client.
//!
//! rdkafka's default client context hands librdkafka's lines to the `log`
//! crate (so they arrive as `log event` records with `log.*` fields) and
//! logs every statistics report, a JSON document, as one INFO line per
//! `statistics.interval.ms`. [`ClientLogs`] writes the lines as
//! `eshop.kafka.client.log` and `eshop.kafka.client.error` events and
//! drops statistics: the consumer reads them for its lag metric
//! ([`crate::lag`]), nobody reads them as a line.

use rdkafka::{ClientContext, config::RDKafkaLogLevel, error::KafkaError};
use telemetry::semconv::{attribute, eshop};

/// The client context of the suite's producers (and of consumers without
/// callbacks of their own); a consumer's own context
/// calls [`log`] and [`error`] from its `ClientContext` methods.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientLogs;

impl ClientContext for ClientLogs {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log(level, facility, message);
    }

    fn stats(&self, _statistics: rdkafka::Statistics) {}

    fn stats_raw(&self, _statistics: &[u8]) {}

    fn error(&self, err: KafkaError, reason: &str) {
        error(&err, reason);
    }
}

/// For consumers that need no callbacks of their own (the dead-letter replay's reader).
impl rdkafka::consumer::ConsumerContext for ClientLogs {}

/// One librdkafka log line, at its level (debug lines stay below the suite's INFO).
pub fn log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(
                name: eshop::event::KAFKA_CLIENT_LOG,
                {
                    { eshop::attribute::KAFKA_FACILITY } = facility,
                },
                "{message}"
            );
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(
                name: eshop::event::KAFKA_CLIENT_LOG,
                {
                    { eshop::attribute::KAFKA_FACILITY } = facility,
                },
                "{message}"
            );
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(
                name: eshop::event::KAFKA_CLIENT_LOG,
                {
                    { eshop::attribute::KAFKA_FACILITY } = facility,
                },
                "{message}"
            );
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(
                name: eshop::event::KAFKA_CLIENT_LOG,
                {
                    { eshop::attribute::KAFKA_FACILITY } = facility,
                },
                "{message}"
            );
        }
    }
}

/// A client-wide error librdkafka reports (all brokers down, authentication failed, ...).
pub fn error(err: &KafkaError, reason: &str) {
    // The end of a partition, which only a reader that asked to be told
    // (`enable.partition.eof`, the dead-letter replay) hears of: no error.
    if err.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) {
        return;
    }
    let error_type = err
        .rdkafka_error_code()
        .map_or_else(|| "kafka_error".to_owned(), |code| format!("{code:?}"));
    tracing::error!(
        name: eshop::event::KAFKA_CLIENT_ERROR,
        {
            { attribute::ERROR_TYPE } = error_type,
            { attribute::EXCEPTION_MESSAGE } = reason,
        },
        "{err}"
    );
}
