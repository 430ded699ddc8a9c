//! One lane per assigned partition: its records handled in order, its offsets stored only while the partition is ours.
//!
//! The poll loop puts records into a partition's lane; the lane handles them
//! one at a time. When Kafka revokes a partition (another consumer joined,
//! this one is leaving), [`Assignment`] stops that lane: its in-flight record
//! finishes, its buffered records are dropped (the new owner reads them from
//! the committed offset), its stored offsets are committed, and from then on
//! it cannot store an offset again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc as std_mpsc},
    time::Duration,
};

use rdkafka::{
    ClientContext, Message as _,
    consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer},
    message::OwnedMessage,
};
use service_kit::Readiness;
use telemetry::semconv::{attribute, eshop};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::handle::{Handled, Handler};

/// Records buffered per partition before the partition is paused.
pub(crate) const LANE_CAPACITY: usize = 64;
/// How long a revoke waits for a lane's in-flight record: above the HTTP
/// timeout and the dead-letter acknowledgement timeout, far below
/// `max.poll.interval.ms` (the rebalance waits for this callback).
const REVOKE_WAIT: Duration = Duration::from_secs(10);

/// The consumer, its context and the lanes share one type of consumer.
pub(crate) type KafkaConsumer = StreamConsumer<Assignment>;

/// A lane as the poll loop and the rebalance callback see it.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) records: mpsc::Sender<OwnedMessage>,
    stop: CancellationToken,
    /// True while the partition is ours; the lane stores offsets only under this lock.
    owned: Arc<Mutex<bool>>,
    finished: std_mpsc::Receiver<()>,
    /// Set while the partition is paused: the record that did not fit, first in
    /// line when the lane has room again.
    pub(crate) waiting: Option<OwnedMessage>,
    /// The next offset the lane expects; anything below is a repeat.
    pub(crate) next_offset: i64,
}

impl Lane {
    /// Whether a record at `offset` should go into this lane: not while the
    /// partition is paused, and not a record it has had already.
    pub(crate) fn accepts(&self, offset: i64) -> bool {
        self.waiting.is_none() && offset >= self.next_offset
    }
}

/// How a lane ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LaneEnd {
    /// Its partition was revoked or the consumer is stopping.
    Stopped,
}

/// The lanes by partition, shared by the poll loop and the rebalance callback.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lanes(Arc<Mutex<HashMap<i32, Lane>>>);

impl Lanes {
    /// A lane's registry entry is a few fields; a poisoned lock's data is whole.
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<i32, Lane>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Opens a lane for `partition` starting at `offset`, and returns its entry and its task.
pub(crate) fn open(
    handler: Arc<Handler>,
    consumer: Arc<KafkaConsumer>,
    offset: i64,
    shutdown: &CancellationToken,
) -> (Lane, impl Future<Output = LaneEnd> + Send + 'static) {
    let (records, receiver) = mpsc::channel(LANE_CAPACITY);
    let stop = shutdown.child_token();
    let owned = Arc::new(Mutex::new(true));
    let (finished_tx, finished) = std_mpsc::sync_channel(1);
    let task = run(
        handler,
        consumer,
        receiver,
        stop.clone(),
        owned.clone(),
        Finished(finished_tx),
    );
    let lane = Lane {
        records,
        stop,
        owned,
        finished,
        waiting: None,
        next_offset: offset,
    };
    (lane, task)
}

/// Tells a waiting revoke that the lane is done, even if it panicked.
struct Finished(std_mpsc::SyncSender<()>);

impl Drop for Finished {
    fn drop(&mut self) {
        let _ = self.0.try_send(());
    }
}

/// Handles the partition's records in order until the lane is stopped.
async fn run(
    handler: Arc<Handler>,
    consumer: Arc<KafkaConsumer>,
    mut records: mpsc::Receiver<OwnedMessage>,
    stop: CancellationToken,
    owned: Arc<Mutex<bool>>,
    _finished: Finished,
) -> LaneEnd {
    loop {
        let message = tokio::select! {
            biased;
            () = stop.cancelled() => return LaneEnd::Stopped,
            message = records.recv() => match message {
                Some(message) => message,
                None => return LaneEnd::Stopped,
            },
        };
        match handler.handle(&message, &stop).await {
            Handled::Done => {
                // Stored, not yet committed: librdkafka commits stored offsets
                // every second, a revoke and shutdown commit the last ones.
                let owned = owned.lock().unwrap_or_else(PoisonError::into_inner);
                if !*owned {
                    tracing::warn!(
                        name: eshop::event::OFFSET_NOT_STORED,
                        {
                            { attribute::MESSAGING_DESTINATION_PARTITION_ID } = message.partition().to_string(),
                            { attribute::MESSAGING_KAFKA_OFFSET } = message.offset(),
                        },
                        "partition no longer ours; offset not stored"
                    );
                    return LaneEnd::Stopped;
                }
                if let Err(err) = consumer.store_offset(message.topic(), message.partition(), message.offset()) {
                    tracing::warn!(
                        name: eshop::event::OFFSET_NOT_STORED,
                        {
                            { attribute::MESSAGING_DESTINATION_PARTITION_ID } = message.partition().to_string(),
                            { attribute::MESSAGING_KAFKA_OFFSET } = message.offset(),
                            { attribute::EXCEPTION_MESSAGE } = %err,
                        },
                        "cannot store the offset; the record may be delivered again"
                    );
                }
            }
            Handled::Interrupted => return LaneEnd::Stopped,
        }
    }
}

/// The consumer's context: stops the lanes of revoked partitions and tracks
/// whether any partition is assigned, for `/readyz`.
#[derive(Debug)]
pub(crate) struct Assignment {
    pub(crate) lanes: Lanes,
    pub(crate) readiness: Readiness,
    pub(crate) topic: String,
}

impl ClientContext for Assignment {
    // Consumer lag per partition, from librdkafka's statistics (never logged).
    fn stats(&self, statistics: rdkafka::Statistics) {
        messaging::lag::record_consumer_lag(&statistics);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        messaging::client_log::log(level, facility, message);
    }

    fn error(&self, err: rdkafka::error::KafkaError, reason: &str) {
        messaging::client_log::error(&err, reason);
    }
}

impl ConsumerContext for Assignment {
    /// Runs on the poll loop's thread inside `recv()`, before the partitions
    /// are taken away: the last moment their offsets can be committed.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(partitions) = rebalance else {
            return;
        };
        let revoked: Vec<(i32, Lane)> = {
            let mut lanes = self.lanes.lock();
            partitions
                .elements()
                .into_iter()
                .filter(|element| element.topic() == self.topic)
                .filter_map(|element| {
                    lanes
                        .remove(&element.partition())
                        .map(|lane| (element.partition(), lane))
                })
                .collect()
        };
        tracing::info!(
            name: eshop::event::PARTITIONS_REVOKED,
            {
                { eshop::attribute::CONSUMER_PARTITIONS } = partitions.count(),
                { eshop::attribute::CONSUMER_LANES } = revoked.len(),
            },
            "partitions revoked"
        );
        self.readiness.set(false);
        for (_, lane) in &revoked {
            lane.stop.cancel();
        }
        // Waiting here holds up the poll loop's thread; tell the runtime so
        // that the lanes (and everything else) run on the others meanwhile.
        tokio::task::block_in_place(|| {
            for (partition, lane) in revoked {
                drop(lane.records);
                if lane.finished.recv_timeout(REVOKE_WAIT).is_err() {
                    tracing::warn!(
                        name: eshop::event::REVOKE_LANE_BUSY,
                        {
                            { attribute::MESSAGING_DESTINATION_PARTITION_ID } = partition.to_string(),
                        },
                        "lane still busy after {REVOKE_WAIT:?}; its record will be delivered again"
                    );
                }
                *lane.owned.lock().unwrap_or_else(PoisonError::into_inner) = false;
            }
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!(
                    name: eshop::event::REVOKE_COMMITTED,
                    "offsets of the revoked partitions committed"
                ),
                Err(err) => tracing::info!(
                    name: eshop::event::REVOKE_COMMITTED,
                    {
                        { attribute::EXCEPTION_MESSAGE } = %err,
                    },
                    "nothing committed at revoke"
                ),
            }
        });
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(
                    name: eshop::event::PARTITIONS_ASSIGNED,
                    {
                        { eshop::attribute::CONSUMER_PARTITIONS } = partitions.count(),
                    },
                    "partitions assigned"
                );
                // A partition paused because its lane was full stays paused
                // through unassign and assign (librdkafka keeps the
                // application's pause flag), but its lane, and the record it
                // was to resume with, went at the revoke: nothing would ever
                // resume it. A newly assigned partition has no lane, so it
                // starts unpaused.
                if let Err(err) = consumer.resume(partitions) {
                    tracing::warn!(
                        name: eshop::event::PARTITION_RESUME_FAILED,
                        {
                            { attribute::EXCEPTION_MESSAGE } = %err,
                        },
                        "cannot resume the assigned partitions"
                    );
                }
                self.readiness.set(partitions.count() > 0);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(err) => tracing::warn!(
                name: eshop::event::REBALANCE_FAILED,
                {
                    { attribute::EXCEPTION_MESSAGE } = %err,
                },
                "rebalance failed"
            ),
        }
    }
}
