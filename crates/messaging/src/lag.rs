//! Consumer lag per partition, from the statistics librdkafka emits every `statistics.interval.ms`.

use telemetry::{
    metrics::{self, KeyValue},
    semconv::attribute,
};

/// Records the consumer lag of each assigned partition (the gauge
/// `eshop.kafka.consumer.lag`); call it from the consumer context's
/// `ClientContext::stats`. [`crate::KafkaSettings::consumer_config`] turns
/// the statistics on.
pub fn record_consumer_lag(statistics: &rdkafka::Statistics) {
    let Some(instruments) = metrics::messaging() else {
        return;
    };
    for (topic, stats) in &statistics.topics {
        for (partition, stats) in &stats.partitions {
            // -1 is librdkafka's internal unassigned partition; a lag of -1 means unknown.
            if *partition < 0 || stats.consumer_lag < 0 {
                continue;
            }
            instruments.consumer_lag.record(
                stats.consumer_lag,
                &[
                    KeyValue::new(attribute::MESSAGING_SYSTEM, "kafka"),
                    KeyValue::new(attribute::MESSAGING_DESTINATION_NAME, topic.clone()),
                    KeyValue::new(attribute::MESSAGING_DESTINATION_PARTITION_ID, partition.to_string()),
                ],
            );
        }
    }
}
