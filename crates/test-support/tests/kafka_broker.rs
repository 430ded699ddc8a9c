//! The tests' Apache Kafka: started from the settings Compose and Kubernetes use, clean on SIGTERM, durable across a restart.

use std::time::Duration;

use rdkafka::{
    ClientConfig, Message as _, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};
use test_support::{Broker, PARTITIONS, TOPICS, WAIT, kafka_launcher, kraft_settings};

/// A consumer of partition 1 in `group`, from the group's committed offset
/// (or the start), and that offset. Assigned, not subscribed: a subscribed
/// StreamConsumer dropped while its group rebalances blocks in librdkafka's close.
fn consumer(broker: &Broker, group: &str) -> (StreamConsumer, Offset) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let committed = committed_offset(&consumer);
    let start = if committed == Offset::Invalid {
        Offset::Beginning
    } else {
        committed
    };
    let mut partition = TopicPartitionList::new();
    partition.add_partition_offset(TOPICS[0], 1, start).expect("an offset");
    consumer.assign(&partition).expect("assign");
    (consumer, committed)
}

/// The group's committed offset of partition 1, asked again while the group
/// coordinator is still loading after a start (NOT_COORDINATOR).
fn committed_offset(consumer: &StreamConsumer) -> Offset {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(TOPICS[0], 1);
        match consumer.committed_offsets(wanted, Duration::from_secs(5)) {
            Ok(list) => return list.find_partition(TOPICS[0], 1).expect("the partition").offset(),
            Err(err) => assert!(std::time::Instant::now() < deadline, "no committed offsets: {err}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The next record on the consumer.
async fn next_record(consumer: &StreamConsumer) -> rdkafka::message::OwnedMessage {
    tokio::time::timeout(WAIT, consumer.recv())
        .await
        .expect("a record within WAIT")
        .expect("a record")
        .detach()
}

#[tokio::test]
async fn a_restarted_broker_keeps_topics_records_and_committed_offsets_and_stops_cleanly() {
    let dir = std::env::temp_dir().join(format!("eshop-kafka-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut broker = Broker::start_persistent(&dir).await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .expect("a producer");
    for key in ["first", "second"] {
        producer
            .send(
                FutureRecord::to(TOPICS[0]).partition(1).key(key).payload(key),
                Duration::from_secs(10),
            )
            .await
            .expect("the broker acknowledges the record");
    }
    let (reader, committed) = consumer(&broker, "restart-test");
    assert_eq!(committed, Offset::Invalid, "a new group has no commit");
    let first = next_record(&reader).await;
    assert_eq!(first.key(), Some(&b"first"[..]));
    let mut done = TopicPartitionList::new();
    done.add_partition_offset(TOPICS[0], 1, Offset::Offset(first.offset() + 1))
        .expect("an offset");
    reader.commit(&done, CommitMode::Sync).expect("commit");
    drop(reader);

    // The JVM runs Kafka's shutdown hook on SIGTERM (a controlled shutdown)
    // and exits with 143, as under kafka-server-stop.sh or `docker stop`; a
    // broker that hung would fail shut_down's wait, one killed would have no code.
    let status = broker.shut_down().await;
    assert_eq!(
        status.code(),
        Some(143),
        "SIGTERM ends the broker through its shutdown hook, got {status}"
    );
    // Started again on the same log directory: the topics are found, not
    // re-created (create_topics accepts both), so look at what they hold.
    broker.start_again().await;

    let (reader, committed) = consumer(&broker, "restart-test");
    assert_eq!(committed, Offset::Offset(1), "the group's commit survived");
    let next = next_record(&reader).await;
    assert_eq!(next.key(), Some(&b"second"[..]), "the group goes on after its commit");

    let metadata = reader.fetch_metadata(None, Duration::from_secs(10)).expect("metadata");
    for topic in TOPICS {
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .expect("the topic survived");
        assert_eq!(found.partitions().len(), usize::try_from(PARTITIONS).expect("a count"));
    }
    drop(reader);
    broker.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The launcher refuses what `kafka-storage.sh format` should: a cluster id
/// that is not Kafka's Uuid form (22 base64url characters, 16 bytes), such as
/// the `eshop-tracing-kraft-1` the Compose and Kubernetes files once had.
#[tokio::test]
async fn a_settings_file_with_a_wrong_cluster_id_does_not_start() {
    let dir = std::env::temp_dir().join(format!("eshop-kafka-bad-id-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a folder");
    let real = std::fs::read_to_string(kraft_settings()).expect("k8s/base/kafka/kraft.env");
    let line = real
        .lines()
        .find(|line| line.starts_with("CLUSTER_ID="))
        .expect("kraft.env has a CLUSTER_ID");
    let bad = dir.join("kraft.env");
    std::fs::write(&bad, real.replace(line, "CLUSTER_ID=eshop-tracing-kraft-1")).expect("write");

    let launch = tokio::process::Command::new(kafka_launcher())
        .args(["start", &dir.join("broker").to_string_lossy(), "0", "0"])
        .env("KRAFT_ENV", &bad)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT, launch)
        .await
        .expect("the launcher refuses at once rather than starting a broker")
        .expect("run the launcher");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started with a wrong cluster id");
    assert!(said.contains("is not a Kafka cluster id"), "{said}");
    assert!(!dir.join("broker/data").exists(), "nothing formatted");
    let _ = std::fs::remove_dir_all(&dir);
}
