//! Kafka client settings shared by eshop's producer and the kafka-consumer, read from the environment.
//!
//! The names follow the 2019 demo (`KAFKA_BOOTSTRAP_SERVERS`, topic `eshop-topic`,
//! group `eshop-demo-app`). Any other librdkafka property can be set through
//! `KAFKA_CONFIG` (every client), `KAFKA_CONSUMER_CONFIG` (consumers only) or
//! `KAFKA_PRODUCER_CONFIG` (producers only), e.g.
//! `KAFKA_CONSUMER_CONFIG=fetch.wait.max.ms=10,session.timeout.ms=15000`:
//! librdkafka warns (CONFWARN) about a consumer property given to a producer,
//! and the kafka-consumer runs both (its dead-letter producer).
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
/// Comma-separated `property=value` pairs passed to every librdkafka client as they are.
pub const KAFKA_CONFIG: &str = "KAFKA_CONFIG";
/// Like [`KAFKA_CONFIG`], for consumers only, applied after it.
pub const KAFKA_CONSUMER_CONFIG: &str = "KAFKA_CONSUMER_CONFIG";
/// Like [`KAFKA_CONFIG`], for producers only, applied after it.
pub const KAFKA_PRODUCER_CONFIG: &str = "KAFKA_PRODUCER_CONFIG";

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
    /// [`KAFKA_CONFIG`]: for every client.
    pub overrides: Vec<(String, String)>,
    /// [`KAFKA_CONSUMER_CONFIG`]: for consumers, after `overrides`.
    pub consumer_overrides: Vec<(String, String)>,
    /// [`KAFKA_PRODUCER_CONFIG`]: for producers, after `overrides`.
    pub producer_overrides: Vec<(String, String)>,
}

impl KafkaSettings {
    pub fn from_env() -> Result<Self, SettingsError> {
        let topic = env_string(KAFKA_TOPIC, DEFAULT_TOPIC);
        Ok(Self {
            bootstrap_servers: env_string(KAFKA_BOOTSTRAP_SERVERS, DEFAULT_BOOTSTRAP_SERVERS),
            dlq_topic: env_string(KAFKA_DLQ_TOPIC, &format!("{topic}{DLQ_SUFFIX}")),
            topic,
            group_id: env_string(KAFKA_GROUP_ID, DEFAULT_GROUP_ID),
            overrides: parse_overrides_of(KAFKA_CONFIG, &env_string(KAFKA_CONFIG, ""))?,
            consumer_overrides: parse_overrides_of(KAFKA_CONSUMER_CONFIG, &env_string(KAFKA_CONSUMER_CONFIG, ""))?,
            producer_overrides: parse_overrides_of(KAFKA_PRODUCER_CONFIG, &env_string(KAFKA_PRODUCER_CONFIG, ""))?,
        })
    }

    /// The first bootstrap broker as `server.address` and `server.port`, the
    /// messaging conventions' recommended attributes (the broker a record went
    /// to is librdkafka's to pick; the one the client was pointed at is known).
    pub fn broker(&self) -> Broker {
        Broker::parse(&self.bootstrap_servers)
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
        apply(apply(config, &self.overrides), &self.producer_overrides)
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
        apply(apply(config, &self.overrides), &self.consumer_overrides)
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
}

fn apply(mut config: ClientConfig, overrides: &[(String, String)]) -> ClientConfig {
    for (key, value) in overrides {
        config.set(key, value);
    }
    config
}

/// A bootstrap broker: `server.address` and, when given, `server.port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub address: String,
    pub port: Option<i64>,
}

impl Broker {
    /// The first of `bootstrap.servers` (`host:port,...`, an optional
    /// `PLAINTEXT://`-style scheme, IPv6 in brackets).
    pub fn parse(bootstrap_servers: &str) -> Self {
        let first = bootstrap_servers.split(',').next().unwrap_or_default().trim();
        let first = first.split_once("://").map_or(first, |(_, rest)| rest);
        match first.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && (!host.contains(':') || host.ends_with(']')) => Self {
                address: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
                port: port.parse().ok(),
            },
            _ => Self {
                address: first.to_owned(),
                port: None,
            },
        }
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
    parse_overrides_of(KAFKA_CONFIG, spec)
}

/// [`parse_overrides`] for the variable `name`, which an error names.
///
/// An error never repeats a value: the settings hold `sasl.password` and the
/// like, and the error ends up in the logs. It names the keys, with every
/// value masked, and the position of the entry that is wrong.
fn parse_overrides_of(name: &'static str, spec: &str) -> Result<Vec<(String, String)>, SettingsError> {
    spec.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .enumerate()
        .map(|(index, pair)| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.trim().to_owned())),
            _ => Err(SettingsError {
                name,
                value: masked(spec),
                reason: format!("entry {} is not property=value", index + 1),
            }),
        })
        .collect()
}

/// `key=***,...`: the keys of a settings list, its values hidden.
fn masked(spec: &str) -> String {
    spec.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => format!("{}=***", key.trim()),
            None => "***".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use rdkafka::{consumer::BaseConsumer, producer::BaseProducer};

    use super::*;

    #[test]
    fn a_malformed_setting_is_reported_without_any_value() {
        let err = parse_overrides("security.protocol=sasl_ssl,sasl.password=s3cret,oops-s3cret")
            .expect_err("the third entry has no value");
        let shown = err.to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("sasl.password=***") && shown.contains("entry 3"),
            "{shown}"
        );
    }

    fn settings(kafka_config: &str) -> KafkaSettings {
        KafkaSettings {
            // Nothing listens there: creating a client does not connect.
            bootstrap_servers: "127.0.0.1:1".to_owned(),
            topic: DEFAULT_TOPIC.to_owned(),
            dlq_topic: format!("{DEFAULT_TOPIC}{DLQ_SUFFIX}"),
            group_id: DEFAULT_GROUP_ID.to_owned(),
            overrides: parse_overrides(kafka_config).expect("valid KAFKA_CONFIG"),
            consumer_overrides: Vec::new(),
            producer_overrides: Vec::new(),
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
            consumer_overrides: Vec::new(),
            producer_overrides: Vec::new(),
        };
        let config = settings.consumer_config();
        assert_eq!(config.get("fetch.wait.max.ms"), Some("10"));
        assert_eq!(settings.producer_config(5_000).get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("group.id"), Some(DEFAULT_GROUP_ID));
    }

    /// A consumer-only property given to a producer makes librdkafka warn
    /// (CONFWARN) and a producer-only one the consumer: each goes to its own.
    #[test]
    fn component_overrides_reach_only_their_component() {
        let settings = KafkaSettings {
            consumer_overrides: vec![
                ("session.timeout.ms".into(), "6000".into()),
                ("statistics.interval.ms".into(), "500".into()),
            ],
            producer_overrides: vec![("batch.num.messages".into(), "1".into())],
            overrides: vec![("client.id".into(), "both".into())],
            ..settings("")
        };
        let consumer = settings.consumer_config();
        let producer = settings.producer_config(1_000);
        assert_eq!(consumer.get("session.timeout.ms"), Some("6000"));
        assert_eq!(consumer.get("statistics.interval.ms"), Some("500"));
        assert_eq!(consumer.get("batch.num.messages"), None);
        assert_eq!(producer.get("batch.num.messages"), Some("1"));
        assert_eq!(producer.get("session.timeout.ms"), None);
        assert_eq!(producer.get("statistics.interval.ms"), None);
        assert_eq!(
            (consumer.get("client.id"), producer.get("client.id")),
            (Some("both"), Some("both"))
        );
    }

    #[test]
    fn the_first_bootstrap_broker_is_the_server() {
        let broker = |servers| Broker::parse(servers);
        assert_eq!(
            broker("kafka:9092,other:9093"),
            Broker {
                address: "kafka".into(),
                port: Some(9092)
            }
        );
        assert_eq!(
            broker("PLAINTEXT://127.0.0.1:19092"),
            Broker {
                address: "127.0.0.1".into(),
                port: Some(19092)
            }
        );
        assert_eq!(
            broker("[::1]:9092"),
            Broker {
                address: "::1".into(),
                port: Some(9092)
            }
        );
        assert_eq!(
            broker("kafka"),
            Broker {
                address: "kafka".into(),
                port: None
            }
        );
    }
}
