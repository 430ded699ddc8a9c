//! Kafka client settings shared by eshop's producer and the kafka-consumer, read from the environment.
//!
//! The names follow the 2019 demo (`KAFKA_BOOTSTRAP_SERVERS`, topic `eshop-topic`,
//! group `eshop-demo-app`). Any other librdkafka property can be set through
//! `KAFKA_CONFIG`, e.g. `KAFKA_CONFIG=fetch.wait.max.ms=10,session.timeout.ms=15000`.
//!
//! Every setting not written here is librdkafka's default; each one written
//! here says why. Tweaks for one broker (Tansu, `make run KAFKA=tansu`) belong
//! in `KAFKA_CONFIG` where that broker runs, not in the code a production
//! deployment runs.

use rdkafka::ClientConfig;

pub const KAFKA_BOOTSTRAP_SERVERS: &str = "KAFKA_BOOTSTRAP_SERVERS";
pub const KAFKA_TOPIC: &str = "KAFKA_TOPIC";
pub const KAFKA_DLQ_TOPIC: &str = "KAFKA_DLQ_TOPIC";
pub const KAFKA_GROUP_ID: &str = "KAFKA_GROUP_ID";
/// Comma-separated `property=value` pairs passed to librdkafka as they are, last.
pub const KAFKA_CONFIG: &str = "KAFKA_CONFIG";

pub const DEFAULT_BOOTSTRAP_SERVERS: &str = "kafka:9092";
pub const DEFAULT_TOPIC: &str = "eshop-topic";
pub const DEFAULT_GROUP_ID: &str = "eshop-demo-app";
/// Appended to the topic to name the dead-letter topic.
pub const DLQ_SUFFIX: &str = ".dlq";

/// A variable that is set but cannot be used; its fields are those of the
/// services' own configuration error, so they can report it alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?}: {reason}")]
pub struct SettingsError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// Where the broker is, which topics to use, and any librdkafka overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub group_id: String,
    pub overrides: Vec<(String, String)>,
}

impl KafkaSettings {
    pub fn from_env() -> Result<Self, SettingsError> {
        let topic = env_string(KAFKA_TOPIC, DEFAULT_TOPIC);
        Ok(Self {
            bootstrap_servers: env_string(KAFKA_BOOTSTRAP_SERVERS, DEFAULT_BOOTSTRAP_SERVERS),
            dlq_topic: env_string(KAFKA_DLQ_TOPIC, &format!("{topic}{DLQ_SUFFIX}")),
            topic,
            group_id: env_string(KAFKA_GROUP_ID, DEFAULT_GROUP_ID),
            overrides: parse_overrides(&env_string(KAFKA_CONFIG, ""))?,
        })
    }

    /// Settings for a producer that must hear the broker's acknowledgement
    /// within `ack_timeout_ms`, or report the record as failed.
    pub fn producer_config(&self, ack_timeout_ms: u64) -> ClientConfig {
        let mut config = self.base();
        config
            // The delivery report arrives within this time, with success or failure:
            // the bound on how long a checkout waits for Kafka.
            .set("message.timeout.ms", ack_timeout_ms.to_string())
            // No duplicate or reordered record when a send is retried after a
            // lost acknowledgement (implies acks=all: every in-sync replica
            // has the record before it counts as placed).
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // A checkout waits for the acknowledgement: batch for 1 ms, not
            // librdkafka's 5, since every millisecond here is checkout latency.
            .set("linger.ms", "1");
        self.apply_overrides(config)
    }

    /// Settings for an at-least-once consumer: the application stores a
    /// message's offset only after it has fully handled it, and librdkafka
    /// commits the stored offsets every second (one commit per second rather
    /// than one per message: a crash redelivers at most a second's worth,
    /// which notification's idempotency absorbs).
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "1000")
            // A group's first start reads what was published before it joined.
            .set("auto.offset.reset", "earliest")
            // A topic created (or re-created) after the consumer joined is
            // noticed within 10 s instead of librdkafka's 5 minutes.
            .set("topic.metadata.refresh.interval.ms", "10000")
            // Statistics every 5 s carry each partition's consumer lag, which
            // `crate::lag` records as a metric.
            .set("statistics.interval.ms", "5000");
        self.apply_overrides(config)
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            // A broker that comes back is used within a second, not after
            // librdkafka's default 10 s of reconnect backoff.
            .set("reconnect.backoff.max.ms", "1000");
        config
    }

    fn apply_overrides(&self, mut config: ClientConfig) -> ClientConfig {
        for (key, value) in &self.overrides {
            config.set(key, value);
        }
        config
    }
}

/// The variable trimmed, or `default` when it is unset or blank.
fn env_string(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().to_owned(),
        _ => default.to_owned(),
    }
}

/// `KAFKA_CONFIG`'s form, `property=value,...`, as pairs in order.
pub fn parse_overrides(spec: &str) -> Result<Vec<(String, String)>, SettingsError> {
    spec.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.trim().to_owned())),
            _ => Err(SettingsError {
                name: KAFKA_CONFIG,
                value: spec.to_owned(),
                reason: format!("{pair:?} is not property=value"),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rdkafka::{consumer::BaseConsumer, producer::BaseProducer};

    use super::*;

    fn settings(kafka_config: &str) -> KafkaSettings {
        KafkaSettings {
            // Nothing listens there: creating a client does not connect.
            bootstrap_servers: "127.0.0.1:1".to_owned(),
            topic: DEFAULT_TOPIC.to_owned(),
            dlq_topic: format!("{DEFAULT_TOPIC}{DLQ_SUFFIX}"),
            group_id: DEFAULT_GROUP_ID.to_owned(),
            overrides: parse_overrides(kafka_config).expect("valid KAFKA_CONFIG"),
        }
    }

    /// A librdkafka built without OpenSSL refuses these properties when the client
    /// is created ("OpenSSL not available at build time"), so creation succeeding
    /// is what tells that managed Kafka (TLS, SASL over TLS) can be used.
    #[test]
    fn clients_with_ssl_and_sasl_are_created() {
        for kafka_config in [
            "security.protocol=ssl",
            "security.protocol=sasl_ssl,sasl.mechanism=SCRAM-SHA-512,sasl.username=eshop,sasl.password=secret",
            "security.protocol=sasl_ssl,sasl.mechanism=PLAIN,sasl.username=eshop,sasl.password=secret",
        ] {
            let _producer: BaseProducer = settings(kafka_config)
                .producer_config(1000)
                .create()
                .unwrap_or_else(|err| panic!("producer with {kafka_config}: {err}"));
            let _consumer: BaseConsumer = settings(kafka_config)
                .consumer_config()
                .create()
                .unwrap_or_else(|err| panic!("consumer with {kafka_config}: {err}"));
        }
    }

    #[test]
    fn overrides_are_property_value_pairs() {
        assert_eq!(
            parse_overrides("fetch.wait.max.ms=10, linger.ms = 0").expect("valid"),
            vec![
                ("fetch.wait.max.ms".to_owned(), "10".to_owned()),
                ("linger.ms".to_owned(), "0".to_owned())
            ]
        );
        assert!(parse_overrides("").expect("valid").is_empty());
        assert!(parse_overrides("fetch.wait.max.ms").is_err());
    }

    #[test]
    fn overrides_win_over_the_suite_defaults() {
        let settings = KafkaSettings {
            bootstrap_servers: "127.0.0.1:9092".into(),
            topic: DEFAULT_TOPIC.into(),
            dlq_topic: format!("{DEFAULT_TOPIC}{DLQ_SUFFIX}"),
            group_id: DEFAULT_GROUP_ID.into(),
            overrides: vec![("fetch.wait.max.ms".into(), "10".into())],
        };
        let config = settings.consumer_config();
        assert_eq!(config.get("fetch.wait.max.ms"), Some("10"));
        assert_eq!(settings.producer_config(5_000).get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("group.id"), Some(DEFAULT_GROUP_ID));
    }
}
