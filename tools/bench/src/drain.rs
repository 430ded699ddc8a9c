//! Waiting for the Kafka side to catch up: the consumer group's committed offsets at the topic's end.
//!
//! At saturation eshop accepts checkouts faster than the consumer emails them;
//! a throughput or a CPU share measured when the load stops would leave out
//! whatever is still queued in the topic, and leave out a different amount on
//! every run. The bench waits until the group has committed every record.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use messaging::DEFAULT_GROUP_ID;
use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
};
use test_support::{PARTITIONS, Stack};

const TOPIC: &str = "eshop-topic";
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the broker is asked; the consumer commits every second anyway.
const ASK_EVERY: Duration = Duration::from_millis(200);
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

/// Returns once the consumer group has committed up to the end of every
/// partition (asked with ListOffsets and OffsetFetch, without joining the group).
pub(crate) async fn until_drained(stack: &Stack) -> anyhow::Result<()> {
    let reader: Arc<BaseConsumer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", stack.broker.bootstrap_servers())
            .set("group.id", DEFAULT_GROUP_ID)
            .set("enable.auto.commit", "false")
            .create()?,
    );
    let deadline = Instant::now() + GIVE_UP_AFTER;
    loop {
        let reader = reader.clone();
        let behind = tokio::task::spawn_blocking(move || records_behind(&reader)).await??;
        if behind == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the consumer is still {behind} records behind after {GIVE_UP_AFTER:?}"
        );
        tokio::time::sleep(ASK_EVERY).await;
    }
}

fn records_behind(reader: &BaseConsumer) -> anyhow::Result<i64> {
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition(TOPIC, partition);
    }
    let committed = reader.committed_offsets(list, ASK_TIMEOUT)?;
    let mut behind = 0;
    for partition in 0..PARTITIONS {
        let (_, end) = reader.fetch_watermarks(TOPIC, partition, ASK_TIMEOUT)?;
        let done = match committed.find_partition(TOPIC, partition).map(|p| p.offset()) {
            Some(Offset::Offset(next)) => next,
            _ => 0,
        };
        behind += (end - done).max(0);
    }
    Ok(behind)
}
