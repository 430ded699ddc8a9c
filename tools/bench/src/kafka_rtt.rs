//! The bare broker round trip: one small record produced and consumed, no services, the suite's client settings.
//!
//! The floor under the suite's Kafka hop: eshop's producer settings and the
//! kafka-consumer's (`messaging::KafkaSettings`, with the tests' consumer
//! session), a fresh broker with the suite's topic and partitions,
//! one record at a time, timed from the send to the consumer holding it.
//! And the clients' CPU for one record produced and consumed at a given rate
//! ([`produce_consume_cpu_us`]), measured in a process of its own: the Kafka
//! share of the floor under an untraced checkout's CPU.

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

/// eshop's producer and the kafka-consumer's consumer (with the tests'
/// session), the consumer subscribed to the suite's topic.
fn clients(bootstrap_servers: &str) -> anyhow::Result<(FutureProducer, StreamConsumer)> {
    let producer: FutureProducer = KafkaSettings {
        bootstrap_servers: bootstrap_servers.to_owned(),
        ..settings("")
    }
    .producer_config(ACK_TIMEOUT_MS)
    .create()?;
    let consumer: StreamConsumer = KafkaSettings {
        bootstrap_servers: bootstrap_servers.to_owned(),
        ..settings(TEST_CONSUMER_CONFIG)
    }
    .consumer_config()
    .create()?;
    consumer.subscribe(&[TOPIC])?;
    Ok((producer, consumer))
}

/// Milliseconds from send to receipt for `count` records, one at a time, `gap`
/// apart, while `background_rate` other records a second go to the same topic
/// (the suite's record rate, so that the broker holds as much as it does under load).
pub(crate) async fn round_trips(count: usize, gap: Duration, background_rate: f64) -> anyhow::Result<Vec<f64>> {
    let broker = Broker::start().await;
    let (producer, consumer) = clients(&broker.bootstrap_servers())?;

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

/// A record the size of eshop's `OrderPlaced` event.
const RECORD: &str = r#"{"order_id":"6f1c1f0e-5b8e-4a43-9a41-4c5b2d9e7a10","email":"someone@example.com","items":[{"sku":"book-1","quantity":1,"unit_price_cents":1299},{"sku":"mug-2","quantity":2,"unit_price_cents":850}],"total_cents":2999,"currency":"EUR","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}"#;

/// CPU microseconds (both clients together, one process) per record produced
/// and consumed at `rate` records a second for `seconds`, on a fresh broker
/// with the suite's client settings. The broker's own CPU is not counted, as
/// it is not in the services' CPU this is set against.
pub(crate) async fn produce_consume_cpu_us(rate: f64, seconds: f64) -> anyhow::Result<f64> {
    let broker = Broker::start().await;
    let stdout = crate::measure::run_child(&[
        "bare-produce-consume",
        &broker.bootstrap_servers(),
        &rate.to_string(),
        &seconds.to_string(),
    ])
    .await?;
    let cpu_us: f64 = stdout
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("bare-produce-consume printed {stdout:?}"))?;
    eprintln!("  bare produce and consume at {rate:.0}/s: {cpu_us:.1} µs CPU per record");
    Ok(cpu_us)
}

/// The child: produces `rate` records a second for `seconds` (an open loop,
/// each send awaited on a task of its own, as eshop does), consumes them, and
/// prints its CPU microseconds per record, from the first timed send to the
/// last record consumed. One record first waits out the group join.
pub(crate) async fn produce_consume_child(bootstrap_servers: String, rate: f64, seconds: f64) -> anyhow::Result<()> {
    let (producer, consumer) = clients(&bootstrap_servers)?;
    let send = |producer: FutureProducer, key: String| async move {
        producer
            .send(
                FutureRecord::to(TOPIC).key(&key).payload(RECORD),
                Timeout::After(Duration::from_millis(ACK_TIMEOUT_MS)),
            )
            .await
            .map(drop)
            .map_err(|(err, _)| err)
    };
    send(producer.clone(), "join".to_owned()).await?;
    tokio::time::timeout(FIRST_RECORD_WAIT, consumer.recv()).await??;

    let count = (rate * seconds).round() as usize;
    let start = crate::measure::cpu_time("self");
    let producing = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            let mut sends = tokio::task::JoinSet::new();
            for i in 0..count {
                tick.tick().await;
                sends.spawn(send(producer.clone(), format!("record-{i}")));
            }
            sends.join_all().await.into_iter().collect::<Result<Vec<()>, _>>()
        })
    };
    let mut received = 0;
    while received < count {
        tokio::time::timeout(RECORD_WAIT, consumer.recv()).await??;
        received += 1;
    }
    let cpu = crate::measure::cpu_time("self") - start;
    producing.await??;
    println!("{}", cpu.as_secs_f64() * 1e6 / count as f64);
    Ok(())
}
