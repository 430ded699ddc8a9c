//! The poll loop: records to their partition's lane, partitions paused while their lane is full, lanes supervised, a clean close.

use std::{sync::Arc, time::Duration};

use rdkafka::{
    Message as _, TopicPartitionList,
    consumer::{CommitMode, Consumer as _},
    error::KafkaError,
    message::OwnedMessage,
};
use service_kit::{Backoff, Readiness};
use telemetry::semconv::{attribute, eshop};
use tokio::{sync::mpsc::error::SendTimeoutError, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    Config, WorkerError,
    handle::Handler,
    lanes::{self, Assignment, KafkaConsumer, LANE_CAPACITY, LaneEnd, Lanes},
};

/// How long a record waits for room in its partition's full lane before the
/// partition is paused: far above handling one record (about a millisecond),
/// far below what a stuck record's retries take.
const LANE_WAIT: Duration = Duration::from_millis(200);
/// How often paused partitions are checked for room in their lane.
const RESUME_CHECK: Duration = Duration::from_millis(50);
/// How long shutdown may wait for the final commit and for leaving the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Worker {
    consumer: Arc<KafkaConsumer>,
    handler: Arc<Handler>,
    lanes: Lanes,
    topic: String,
    group_id: String,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("topic", &self.topic)
            .field("group_id", &self.group_id)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(config: &Config, readiness: Readiness) -> Result<Self, WorkerError> {
        let lanes = Lanes::default();
        let assignment = Assignment {
            lanes: lanes.clone(),
            readiness,
            topic: config.kafka.topic.clone(),
        };
        Ok(Self {
            consumer: Arc::new(config.kafka.consumer_config().create_with_context(assignment)?),
            handler: Arc::new(Handler::new(config)?),
            lanes,
            topic: config.kafka.topic.clone(),
            group_id: config.kafka.group_id.clone(),
        })
    }

    /// Consumes until `shutdown` is cancelled, then lets each lane finish its
    /// record, commits what was handled and leaves the group. Returns an error,
    /// so that the process exits non-zero and is restarted, if a lane fails.
    ///
    /// A partition's records are handled in order, one at a time; partitions
    /// are handled side by side. A lane that is full (its record being retried)
    /// gets its partition paused, so polling goes on for the others and within
    /// `max.poll.interval.ms`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        self.consumer.subscribe(&[&self.topic])?;
        tracing::info!(
            name: eshop::event::CONSUMER_STARTED,
            {
                { attribute::MESSAGING_DESTINATION_NAME } = %self.topic,
                { attribute::MESSAGING_CONSUMER_GROUP_NAME } = %self.group_id,
            },
            "consuming"
        );
        let mut lane_tasks = JoinSet::new();
        let mut resume_check = tokio::time::interval(RESUME_CHECK);
        let failure = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break None,
                Some(ended) = lane_tasks.join_next(), if !lane_tasks.is_empty() => {
                    if let Some(failure) = lane_failure(ended) {
                        break Some(failure);
                    }
                }
                _ = resume_check.tick() => self.resume_drained(),
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        if let Err(err) = self.route(message.detach(), &mut lane_tasks, &shutdown).await {
                            break Some(WorkerError::Kafka(err));
                        }
                    }
                    // librdkafka reconnects by itself; a broker that went away is
                    // waited out here, and consumption resumes from the committed offset.
                    Err(err) => {
                        tracing::warn!(
                            name: eshop::event::CONSUMER_RECEIVE_FAILED,
                            {
                                { attribute::EXCEPTION_MESSAGE } = %err,
                            },
                            "Kafka receive failed; waiting for the broker"
                        );
                        tokio::select! {
                            () = shutdown.cancelled() => break None,
                            () = tokio::time::sleep(Backoff::FIRST) => {}
                        }
                    }
                },
            }
        };
        if let Some(failure) = failure {
            tracing::error!(
                name: eshop::event::CONSUMER_FAILED,
                {
                    { attribute::EXCEPTION_MESSAGE } = %failure,
                },
                "the consumer failed; exiting so that it is restarted"
            );
            return Err(failure);
        }
        // Each lane finishes its in-flight record (interrupting retries) and stores its offset.
        self.lanes.lock().clear();
        while let Some(ended) = lane_tasks.join_next().await {
            if let Err(err) = ended {
                tracing::error!(
                    name: eshop::event::CONSUMER_LANE_FAILED,
                    {
                        { attribute::EXCEPTION_MESSAGE } = %err,
                    },
                    "a lane failed while stopping"
                );
            }
        }
        self.close().await;
        Ok(())
    }

    /// Puts the record into its partition's lane, opening the lane on the
    /// partition's first record. A full lane is waited for up to
    /// [`LANE_WAIT`]; one still full then (its record being retried) gets its
    /// partition paused, so that the other partitions flow.
    async fn route(
        &self,
        message: OwnedMessage,
        lane_tasks: &mut JoinSet<LaneEnd>,
        shutdown: &CancellationToken,
    ) -> Result<(), KafkaError> {
        let (partition, offset) = (message.partition(), message.offset());
        let records = {
            let mut lanes = self.lanes.lock();
            let lane = lanes.entry(partition).or_insert_with(|| {
                let (lane, task) = lanes::open(self.handler.clone(), self.consumer.clone(), offset, shutdown);
                lane_tasks.spawn(task);
                lane
            });
            if !lane.accepts(offset) {
                return Ok(());
            }
            lane.records.clone()
        };
        // Waiting, not pausing at once: a pause makes librdkafka discard what
        // it has fetched ahead for the partition (up to
        // max.partition.fetch.bytes), to fetch it again on resume; a lane that
        // merely keeps up with a burst would have the broker read each record
        // many times over. No rebalance callback runs meanwhile: they run
        // inside recv(), on this loop.
        let sent = records.send_timeout(message, LANE_WAIT).await;
        let mut lanes = self.lanes.lock();
        let Some(lane) = lanes.get_mut(&partition) else {
            return Ok(());
        };
        match sent {
            Ok(()) => lane.next_offset = offset + 1,
            // The record is kept, not dropped: librdkafka resumes a paused
            // partition after the last record it handed over (this one), and
            // discards what it fetched meanwhile (rd_kafka_toppar_pause_resume
            // in librdkafka 2.12: "Save offset of last consumed message+1 as
            // the next message to fetch on resume"). No seek is needed, and a
            // seek would have to agree with that position.
            Err(SendTimeoutError::Timeout(message)) => match self.consumer.pause(&self.partition_list(partition)) {
                Ok(()) => {
                    lane.waiting = Some(message);
                    tracing::info!(
                        name: eshop::event::PARTITION_PAUSED,
                        {
                            { attribute::MESSAGING_DESTINATION_PARTITION_ID } = partition.to_string(),
                            { attribute::MESSAGING_KAFKA_OFFSET } = offset,
                        },
                        "lane full; partition paused"
                    );
                }
                // Neither kept nor skipped can be made safe from here: the
                // consumer exits, and its successor reads from the last commit.
                Err(err) => return Err(err),
            },
            // The lane was stopped (its partition revoked): the new owner reads it.
            Err(SendTimeoutError::Closed(_)) => {
                lanes.remove(&partition);
            }
        }
        Ok(())
    }

    /// Resumes paused partitions whose lane has room again, the record that did not fit first.
    fn resume_drained(&self) {
        let mut lanes = self.lanes.lock();
        let mut stopped = Vec::new();
        for (&partition, lane) in lanes.iter_mut() {
            if lane.waiting.is_none() || lane.records.capacity() < LANE_CAPACITY / 2 {
                continue;
            }
            // Resumed first: should that fail, the record stays waiting and
            // the partition paused until the next check.
            if let Err(err) = self.consumer.resume(&self.partition_list(partition)) {
                tracing::warn!(
                    name: eshop::event::PARTITION_RESUME_FAILED,
                    {
                        { attribute::MESSAGING_DESTINATION_PARTITION_ID } = partition.to_string(),
                        { attribute::EXCEPTION_MESSAGE } = %err,
                    },
                    "cannot resume the partition yet"
                );
                continue;
            }
            let Some(message) = lane.waiting.take() else { continue };
            let offset = message.offset();
            // The poll loop shares this lock and the lane only takes records
            // out, so there is room; only a stopped lane refuses, and its
            // partition is another consumer's now.
            match lane.records.try_send(message) {
                Ok(()) => {
                    lane.next_offset = offset + 1;
                    tracing::info!(
                        name: eshop::event::PARTITION_RESUMED,
                        {
                            { attribute::MESSAGING_DESTINATION_PARTITION_ID } = partition.to_string(),
                            { attribute::MESSAGING_KAFKA_OFFSET } = offset,
                        },
                        "partition resumed"
                    );
                }
                Err(_) => stopped.push(partition),
            }
        }
        for partition in stopped {
            lanes.remove(&partition);
        }
    }

    fn partition_list(&self, partition: i32) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.topic, partition);
        list
    }

    /// Commits the stored offsets and leaves the group, giving up after
    /// [`CLOSE_TIMEOUT`]: both block on the broker, which may be gone too
    /// (when the whole stack stops at once). Giving up loses nothing: records
    /// after the last commit are delivered again, and notification drops repeats.
    async fn close(self) {
        let Self { consumer, handler, .. } = self;
        // A thread of its own, not spawn_blocking: the runtime waits for its
        // blocking tasks when it shuts down, and this one may never finish.
        let (closed, closing) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            if let Err(err) = consumer.commit_consumer_state(CommitMode::Sync)
                && !matches!(
                    err,
                    KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)
                )
            {
                tracing::warn!(
                    name: eshop::event::CONSUMER_FINAL_COMMIT_FAILED,
                    {
                        { attribute::EXCEPTION_MESSAGE } = %err,
                    },
                    "final offset commit failed; the last records will be delivered again"
                );
            }
            // Dropping the consumer leaves the group; the handler's producer, its queue.
            drop(consumer);
            drop(handler);
            let _ = closed.send(());
        });
        match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
            Ok(_) => tracing::info!(name: eshop::event::CONSUMER_STOPPED, "consumer stopped"),
            Err(_) => tracing::warn!(
                name: eshop::event::CONSUMER_STOPPED,
                {
                    { eshop::attribute::SHUTDOWN_TIMEOUT_MS } = i64::try_from(CLOSE_TIMEOUT.as_millis()).unwrap_or(i64::MAX),
                },
                "broker unreachable at shutdown; stopping without the final commit"
            ),
        }
    }
}

/// A lane that ended other than by being stopped (it panicked, or was
/// cancelled by the runtime) is a failure of the whole consumer: its
/// partition would be assigned yet never handled.
fn lane_failure(ended: Result<LaneEnd, tokio::task::JoinError>) -> Option<WorkerError> {
    match ended {
        Ok(LaneEnd::Stopped) => None,
        Err(err) => Some(WorkerError::LaneFailed(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lane_that_panics_fails_the_consumer() {
        let mut lanes = JoinSet::new();
        lanes.spawn(async { LaneEnd::Stopped });
        assert!(lane_failure(lanes.join_next().await.expect("a lane")).is_none());
        lanes.spawn(async { panic!("a bug in a lane") });
        let failure = lane_failure(lanes.join_next().await.expect("a lane"));
        assert!(
            matches!(failure, Some(WorkerError::LaneFailed(ref why)) if why.contains("panic")),
            "{failure:?}"
        );
    }
}
