//! Replaying dead letters: each selected one published again to its original topic, exactly once, inside the original request's trace.
//!
//! "Exactly once" rests on a Kafka transaction. The replayed record and a
//! marker naming the dead letter it came from ([`dead_letter::REPLAYED_FROM`],
//! written to the dead letter's own partition, after it) are committed
//! together or not at all. Before each replay the dead-letter partition is read
//! from the letter to its end with `isolation.level=read_committed`: a letter
//! with a committed marker is not replayed again. Every replayer shares one
//! `transactional.id`, so a second replayer (another replica, or a request
//! racing this one) fences the first: `init_transactions` aborts whatever the
//! other had not committed before this one reads the markers (KIP-98, "zombie
//! fencing"). Consumers that read committed records only (librdkafka's
//! default) never see an aborted replay.
//!
//! The replayed record carries the original headers, so its CONSUMER span is
//! again the child of the original PRODUCER span; see [`crate::dead_letter`]
//! for the links that tie it to the dead letter and to this replay's send.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig, Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    error::KafkaError,
    message::{Header, Headers as _, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord, Producer as _},
    util::Timeout,
};
use telemetry::propagation;
use tokio::sync::Mutex;

use crate::{
    KafkaSettings,
    client_log::ClientLogs,
    dead_letter::{self, Prefixed},
    producer::SendSpan,
};

/// A dead letter, by its place in the dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LetterAt {
    pub partition: i32,
    pub offset: i64,
}

/// What became of one selected dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Published again, at this partition and offset of the original topic.
    Replayed { partition: i32, offset: i64 },
    /// A committed marker says it was replayed before: not published again.
    AlreadyReplayed,
    /// No dead letter there (past the end, removed by retention, or a marker).
    NotFound,
}

/// Why a replay published nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("the dead-letter topic was not read to its end within {0:?}")]
    ReadTimedOut(Duration),
    #[error("the replay task failed: {0}")]
    Task(String),
}

/// Replays dead letters from one dead-letter topic to one topic.
#[derive(Debug)]
pub struct Replayer {
    settings: KafkaSettings,
    dead_letter_topic: String,
    target_topic: String,
    transactional_id: String,
    timeout: Duration,
    /// One replay at a time in this process; other processes are fenced by the transactional id.
    one_at_a_time: Mutex<()>,
}

impl Replayer {
    /// Replays from `settings.dlq_topic` to `settings.topic`. Every replayer
    /// of the same dead letters must use the same `transactional_id`. Each
    /// step waits for the broker at most `timeout`.
    pub fn new(settings: &KafkaSettings, transactional_id: String, timeout: Duration) -> Self {
        Self {
            settings: settings.clone(),
            dead_letter_topic: settings.dlq_topic.clone(),
            target_topic: settings.topic.clone(),
            transactional_id,
            timeout,
            one_at_a_time: Mutex::new(()),
        }
    }

    /// Replays `letters` (each once, however often listed) in one transaction:
    /// all that are found and not yet replayed are published, or none is.
    /// Each published record gets a PRODUCER span `send {topic}` under the
    /// current span, linked to its dead letter's span.
    pub async fn replay(&self, letters: &[LetterAt]) -> Result<BTreeMap<LetterAt, Outcome>, ReplayError> {
        let _one = self.one_at_a_time.lock().await;
        let selected: BTreeSet<LetterAt> = letters.iter().copied().collect();
        let producer: Arc<FutureProducer<ClientLogs>> =
            Arc::new(self.producer_config().create_with_context(ClientLogs)?);
        let timeout = self.timeout;
        // Fences every other replayer before the markers are read.
        blocking({
            let producer = producer.clone();
            move || producer.init_transactions(timeout)
        })
        .await?;
        let found = blocking({
            let config = self.scan_config();
            let topic = self.dead_letter_topic.clone();
            let selected = selected.clone();
            move || scan(&config, &topic, &selected, timeout)
        })
        .await?;
        producer.begin_transaction()?;
        match self.publish(&producer, found).await {
            Ok(outcomes) => {
                blocking({
                    let producer = producer.clone();
                    move || producer.commit_transaction(timeout)
                })
                .await?;
                Ok(outcomes)
            }
            Err(err) => {
                // Nothing of it is ever read by a read_committed consumer.
                let _ = blocking(move || producer.abort_transaction(timeout)).await;
                Err(err.into())
            }
        }
    }

    /// Publishes each letter still to be replayed and its marker, inside the open transaction.
    async fn publish(
        &self,
        producer: &FutureProducer<ClientLogs>,
        found: BTreeMap<LetterAt, Found>,
    ) -> Result<BTreeMap<LetterAt, Outcome>, KafkaError> {
        let broker = self.settings.broker();
        let mut outcomes = BTreeMap::new();
        for (at, found) in found {
            let letter = match found {
                Found::Letter(letter) => letter,
                Found::Replayed => {
                    outcomes.insert(at, Outcome::AlreadyReplayed);
                    continue;
                }
                Found::Missing => {
                    outcomes.insert(at, Outcome::NotFound);
                    continue;
                }
            };
            let from = dead_letter::location(&self.dead_letter_topic, at.partition, at.offset);
            let key = letter.key().unwrap_or_default();
            let send = SendSpan::open(&self.target_topic, &String::from_utf8_lossy(key), &broker);
            let mut replay_context = Prefixed::new(dead_letter::REPLAY_PREFIX);
            propagation::inject_span(send.span(), &mut replay_context);
            let mut headers = Vec::new();
            if let Some(letter_headers) = letter.headers() {
                propagation::link_to(send.span(), &Prefixed::read("", letter_headers));
                headers = dead_letter::replay_headers(letter_headers, &from);
            }
            headers.extend(replay_context.into_headers());
            let record = FutureRecord::to(&self.target_topic)
                .key(key)
                .payload(letter.payload().unwrap_or_default())
                .headers(owned(&headers));
            let delivery = match producer.send(record, Timeout::After(self.timeout)).await {
                Ok(delivery) => {
                    send.delivered(delivery.partition, delivery.offset);
                    delivery
                }
                Err((err, _)) => {
                    send.failed(&err);
                    return Err(err);
                }
            };
            let to = dead_letter::location(&self.target_topic, delivery.partition, delivery.offset);
            let marker = owned(&[
                (dead_letter::REPLAYED_FROM.to_owned(), from.into_bytes()),
                (dead_letter::REPLAYED_TO.to_owned(), to.into_bytes()),
            ]);
            let marker = FutureRecord::<[u8], [u8]>::to(&self.dead_letter_topic)
                .partition(at.partition)
                .key(key)
                .headers(marker);
            producer
                .send(marker, Timeout::After(self.timeout))
                .await
                .map_err(|(err, _)| err)?;
            outcomes.insert(
                at,
                Outcome::Replayed {
                    partition: delivery.partition,
                    offset: delivery.offset,
                },
            );
        }
        Ok(outcomes)
    }

    fn producer_config(&self) -> ClientConfig {
        let timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut config = self.settings.producer_config(timeout_ms);
        config.set("transactional.id", &self.transactional_id);
        config
    }

    /// A consumer that reads assigned partitions only, committed records
    /// only, and says when it reached a partition's end; it never joins a
    /// group nor commits.
    fn scan_config(&self) -> ClientConfig {
        let mut config = self.settings.consumer_config();
        config
            .set("group.id", &self.transactional_id)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .set("statistics.interval.ms", "0");
        config
    }
}

/// What the read of the dead-letter topic found at a selected place.
#[derive(Debug)]
enum Found {
    Letter(OwnedMessage),
    Replayed,
    Missing,
}

/// Reads each selected letter's partition from the first selected offset to
/// its end, noting the letters and the markers of earlier replays.
fn scan(
    config: &ClientConfig,
    topic: &str,
    selected: &BTreeSet<LetterAt>,
    timeout: Duration,
) -> Result<BTreeMap<LetterAt, Found>, ReplayError> {
    let consumer: BaseConsumer<ClientLogs> = config.create_with_context(ClientLogs)?;
    let mut found: BTreeMap<LetterAt, Found> = selected.iter().map(|at| (*at, Found::Missing)).collect();
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    let mut start: BTreeMap<i32, i64> = BTreeMap::new();
    for at in selected {
        if usize::try_from(at.partition).is_ok_and(|partition| partition < partitions) {
            let (low, high) = consumer.fetch_watermarks(topic, at.partition, timeout)?;
            if (low..high).contains(&at.offset) {
                let first = start.entry(at.partition).or_insert(at.offset);
                *first = (*first).min(at.offset);
            }
        }
    }
    if start.is_empty() {
        return Ok(found);
    }
    let mut assignment = TopicPartitionList::new();
    for (&partition, &offset) in &start {
        assignment.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let mut reading: BTreeSet<i32> = start.keys().copied().collect();
    while !reading.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReplayError::ReadTimedOut(timeout));
        }
        let message = match consumer.poll(left) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                reading.remove(&partition);
                continue;
            }
            Some(Err(err)) => return Err(err.into()),
            Some(Ok(message)) => message,
        };
        let at = LetterAt {
            partition: message.partition(),
            offset: message.offset(),
        };
        let headers = message.headers();
        let header = |key: &str| {
            headers.and_then(|headers| {
                headers
                    .iter()
                    .find(|header| header.key == key)
                    .and_then(|header| header.value)
            })
        };
        if selected.contains(&at) && header(dead_letter::SOURCE).is_some() {
            found.insert(at, Found::Letter(message.detach()));
        }
        if let Some(from) = header(dead_letter::REPLAYED_FROM).and_then(|from| std::str::from_utf8(from).ok())
            && let Some(replayed) = parse_location(topic, from)
            && selected.contains(&replayed)
        {
            found.insert(replayed, Found::Replayed);
        }
    }
    Ok(found)
}

/// The letter a `topic/partition/offset` names, if in `topic`.
fn parse_location(topic: &str, location: &str) -> Option<LetterAt> {
    let (rest, offset) = location.rsplit_once('/')?;
    let (named, partition) = rest.rsplit_once('/')?;
    (named == topic).then_some(())?;
    Some(LetterAt {
        partition: partition.parse().ok()?,
        offset: offset.parse().ok()?,
    })
}

fn owned(headers: &[(String, Vec<u8>)]) -> OwnedHeaders {
    headers.iter().fold(OwnedHeaders::new(), |all, (key, value)| {
        all.insert(Header {
            key,
            value: Some(value.as_slice()),
        })
    })
}

/// Runs librdkafka's blocking calls (they wait for the broker) off the async workers.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ReplayError>
where
    T: Send + 'static,
    E: Into<ReplayError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ReplayError::Task(err.to_string()))?
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_names_its_letter_by_topic_partition_and_offset() {
        assert_eq!(
            parse_location("eshop-topic.dlq", "eshop-topic.dlq/2/17"),
            Some(LetterAt {
                partition: 2,
                offset: 17
            })
        );
        assert_eq!(parse_location("eshop-topic.dlq", "eshop-topic/2/17"), None);
        assert_eq!(parse_location("eshop-topic.dlq", "eshop-topic.dlq/x/17"), None);
        assert_eq!(parse_location("eshop-topic.dlq", "17"), None);
    }
}
