//! The bare broker round trip: one small record produced and consumed, no services, the suite's client settings.
//!
//! The floor under the suite's Kafka hop: eshop's producer settings and the
//! kafka-consumer's (`messaging::KafkaSettings`, with the tests' consumer
//! session), a fresh broker with the suite's topic and partitions,
//! one record at a time, timed from the send to the consumer holding it.

use std::time::{Duration, Instant};

use messaging::KafkaSettings;
use rdkafka::{
    Message as _,
    consumer::{Consumer as _, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use test_support::{Broker, TEST_CONSUMER_CONFIG};

const TOPIC: &str = "eshop-topic";
const ACK_TIMEOUT_MS: u64 = 5_000;
/// Long enough for the consumer's first assignment.
const FIRST_RECORD_WAIT: Duration = Duration::from_secs(60);
const RECORD_WAIT: Duration = Duration::from_secs(10);

fn settings(consumer_overrides: &str) -> KafkaSettings {
    KafkaSettings {
        bootstrap_servers: String::new(),
        topic: TOPIC.to_owned(),
        dlq_topic: format!("{TOPIC}.dlq"),
        group_id: "bench-round-trip".to_owned(),
        overrides: Vec::new(),
        consumer_overrides: messaging::parse_overrides(consumer_overrides)
            .expect("the settings are property=value pairs"),
        producer_overrides: Vec::new(),
    }
}

/// Milliseconds from send to receipt for `count` records, one at a time, `gap`
/// apart, while `background_rate` other records a second go to the same topic
/// (the suite's record rate, so that the broker holds as much as it does under load).
pub(crate) async fn round_trips(count: usize, gap: Duration, background_rate: f64) -> anyhow::Result<Vec<f64>> {
    let broker = Broker::start().await;
    let producer_settings = KafkaSettings {
        bootstrap_servers: broker.bootstrap_servers(),
        ..settings("")
    };
    let consumer_settings = KafkaSettings {
        bootstrap_servers: broker.bootstrap_servers(),
        ..settings(TEST_CONSUMER_CONFIG)
    };
    let producer: FutureProducer = producer_settings.producer_config(ACK_TIMEOUT_MS).create()?;
    let consumer: StreamConsumer = consumer_settings.consumer_config().create()?;
    consumer.subscribe(&[TOPIC])?;

    let background = (background_rate > 0.0).then(|| {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / background_rate));
            for i in 0_u64.. {
                tick.tick().await;
                let producer = producer.clone();
                tokio::spawn(async move {
                    let key = format!("background-{i}");
                    let record = FutureRecord::to(TOPIC)
                        .key(&key)
                        .payload(r#"{"order_id":"background"}"#);
                    let _ = producer
                        .send(record, Timeout::After(Duration::from_millis(ACK_TIMEOUT_MS)))
                        .await;
                });
            }
        })
    });
    let mut times = Vec::with_capacity(count);
    // Record 0 waits out the group join and is not counted.
    for i in 0..=count {
        let key = format!("round-trip-{i}");
        let start = Instant::now();
        producer
            .send(
                FutureRecord::to(TOPIC).key(&key).payload(r#"{"order_id":"bench"}"#),
                Timeout::After(Duration::from_millis(ACK_TIMEOUT_MS)),
            )
            .await
            .map_err(|(err, _)| err)?;
        let wait = if i == 0 { FIRST_RECORD_WAIT } else { RECORD_WAIT };
        loop {
            let message = tokio::time::timeout(wait, consumer.recv()).await??;
            if message.key() == Some(key.as_bytes()) {
                break;
            }
        }
        if i > 0 {
            times.push(start.elapsed().as_secs_f64() * 1_000.0);
        }
        tokio::time::sleep(gap).await;
    }
    if let Some(background) = background {
        background.abort();
    }
    Ok(times)
}
