//! The consume loop: one CONSUMER span per record, notification called inside it, offset stored after.

use std::{collections::HashMap, sync::Arc, time::Duration};

use api::{EmailRequest, OrderPlaced, Payment, PaymentStatus, paths};
use rdkafka::{
    ClientContext, Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer},
    error::KafkaError,
    message::{Header, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use reqwest_middleware::ClientWithMiddleware;
use service_kit::Readiness;
use telemetry::{client::ResendCount, kafka};
use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::Config;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Records buffered per partition lane before fetching waits.
const LANE_CAPACITY: usize = 64;
/// How long shutdown may wait for the final commit and for leaving the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one dead-letter send may wait for the broker's acknowledgement.
const DLQ_ACK_TIMEOUT_MS: u64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Tracks partition assignment to answer `/readyz`.
struct Events {
    readiness: Readiness,
}

impl ClientContext for Events {
    // Consumer lag per partition, from librdkafka's statistics.
    fn stats(&self, statistics: rdkafka::Statistics) {
        kafka::record_consumer_lag(&statistics);
    }
}

impl ConsumerContext for Events {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions assigned");
                self.readiness.set(partitions.count() > 0);
            }
            Rebalance::Revoke(_) => {
                tracing::info!("partitions revoked");
                self.readiness.set(false);
            }
            Rebalance::Error(err) => tracing::warn!(%err, "rebalance failed"),
        }
    }
}

/// How handling one record ended.
enum Handled {
    /// Emailed, or dead-lettered: commit it.
    Done,
    /// Shutdown came first: leave it uncommitted, it will be delivered again.
    Interrupted,
}

pub struct Worker {
    consumer: StreamConsumer<Events>,
    dead_letters: FutureProducer,
    client: ClientWithMiddleware,
    config: Config,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(config: &Config, readiness: Readiness) -> Result<Self, WorkerError> {
        Ok(Self {
            consumer: config
                .kafka
                .consumer_config()
                .create_with_context(Events { readiness })?,
            dead_letters: config.kafka.producer_config(DLQ_ACK_TIMEOUT_MS).create()?,
            client: telemetry::client::http_client(config.http_timeout)?,
            config: config.clone(),
        })
    }

    /// Consumes until `shutdown` is cancelled, then commits what was handled and leaves the group.
    ///
    /// Records of one partition are handled in order, one at a time; the
    /// partitions are handled side by side, each in a lane of its own, so a
    /// slow or retried email holds up only its own partition.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        self.consumer.subscribe(&[&self.config.kafka.topic])?;
        tracing::info!(topic = %self.config.kafka.topic, group = %self.config.kafka.group_id, "consuming");
        let worker = Arc::new(self);
        let mut lanes: HashMap<i32, mpsc::Sender<OwnedMessage>> = HashMap::new();
        let mut lane_tasks = JoinSet::new();
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => break,
                received = worker.consumer.recv() => received,
            };
            let message = match received {
                Ok(message) => message.detach(),
                // librdkafka reconnects by itself; a broker that went away is
                // waited out here, and consumption resumes from the committed offset.
                Err(err) => {
                    tracing::warn!(%err, "Kafka receive failed; waiting for the broker");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(FIRST_BACKOFF) => continue,
                    }
                }
            };
            let lane = lanes.entry(message.partition()).or_insert_with(|| {
                let (sender, receiver) = mpsc::channel(LANE_CAPACITY);
                lane_tasks.spawn(worker.clone().lane(receiver, shutdown.clone()));
                sender
            });
            // Waits while this partition's lane is full: back-pressure on fetching.
            tokio::select! {
                () = shutdown.cancelled() => break,
                sent = lane.send(message) => if sent.is_err() { break },
            }
        }
        drop(lanes);
        let mut handled = TopicPartitionList::new();
        while let Some(lane) = lane_tasks.join_next().await {
            if let Ok(Some((topic, partition, offset))) = lane {
                handled.add_partition_offset(&topic, partition, Offset::Offset(offset + 1))?;
            }
        }
        match Arc::into_inner(worker) {
            Some(worker) => worker.close(handled).await,
            None => tracing::warn!("a lane outlived the consumer; stopping without the final commit"),
        }
        Ok(())
    }

    /// Handles one partition's records in order until its channel closes or
    /// shutdown interrupts a retry; returns the last record handled.
    async fn lane(
        self: Arc<Self>,
        mut messages: mpsc::Receiver<OwnedMessage>,
        shutdown: CancellationToken,
    ) -> Option<(String, i32, i64)> {
        let mut last = None;
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                message = messages.recv() => match message {
                    Some(message) => message,
                    None => break,
                },
            };
            match self.handle(&message, &shutdown).await {
                Handled::Done => {
                    // Stored, not yet committed: librdkafka commits stored
                    // offsets every second, and close() commits the last ones.
                    let stored = self
                        .consumer
                        .store_offset(message.topic(), message.partition(), message.offset());
                    if let Err(err) = stored {
                        tracing::warn!(%err, "cannot store the offset; the record may be delivered again");
                    }
                    last = Some((message.topic().to_owned(), message.partition(), message.offset()));
                }
                Handled::Interrupted => break,
            }
        }
        last
    }

    /// Commits what was handled and leaves the group, giving up after
    /// [`CLOSE_TIMEOUT`]: both block on the broker, which may be gone too
    /// (when the whole stack stops at once). Giving up loses nothing: records
    /// after the last commit are delivered again, and notification drops repeats.
    async fn close(self, handled: TopicPartitionList) {
        let Self {
            consumer, dead_letters, ..
        } = self;
        // A thread of its own, not spawn_blocking: the runtime waits for its
        // blocking tasks when it shuts down, and this one may never finish.
        let (closed, closing) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            if handled.count() > 0
                && let Err(err) = consumer.commit(&handled, CommitMode::Sync)
            {
                tracing::warn!(%err, "final offset commit failed; the last records will be delivered again");
            }
            // Dropping the consumer leaves the group; the producer, its queue.
            drop(consumer);
            drop(dead_letters);
            let _ = closed.send(());
        });
        match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
            Ok(_) => tracing::info!("consumer stopped"),
            Err(_) => tracing::warn!(
                timeout = ?CLOSE_TIMEOUT,
                "broker unreachable at shutdown; stopping without the final commit"
            ),
        }
    }

    async fn handle(&self, message: &OwnedMessage, shutdown: &CancellationToken) -> Handled {
        let span = kafka::consumer_span(message, &self.config.kafka.group_id);
        async {
            let order = match parse(message) {
                Ok(order) => order,
                Err(reason) => {
                    kafka::record_error(&tracing::Span::current(), "invalid_message", &reason);
                    tracing::error!(%reason, "record cannot be parsed; dead-lettering it");
                    return self.dead_letter(message, &reason, shutdown).await;
                }
            };
            let stands = match self.order_stands(&order, shutdown).await {
                Answer::Final(stands) => stands,
                Answer::Interrupted => return Handled::Interrupted,
                Answer::Rejected(reason) => {
                    kafka::record_error(&tracing::Span::current(), "rejected_by_billing", &reason);
                    tracing::error!(%reason, "cannot tell whether the order stands; dead-lettering it");
                    return self.dead_letter(message, &reason, shutdown).await;
                }
            };
            if !stands {
                // eshop answered 503 and undid the order, but Kafka had kept the record.
                tracing::Span::current().set_attribute("eshop.order.undone", true);
                tracing::warn!(order.id = %order.order_id, "the order was undone; no email");
                return Handled::Done;
            }
            match self.notify(&order, shutdown).await {
                Answer::Final(()) => Handled::Done,
                Answer::Interrupted => Handled::Interrupted,
                Answer::Rejected(reason) => {
                    kafka::record_error(&tracing::Span::current(), "rejected_by_notification", &reason);
                    tracing::error!(%reason, "notification will never accept this record; dead-lettering it");
                    self.dead_letter(message, &reason, shutdown).await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Whether the order still stands: billing holds a charge for it that was
    /// not refunded. Asks until billing answers.
    async fn order_stands(&self, order: &OrderPlaced, shutdown: &CancellationToken) -> Answer<bool> {
        let url = format!(
            "{}{}?order_id={}",
            self.config.billing_url,
            paths::PAYMENTS,
            order.order_id
        );
        let answer = self
            .call_until_answered("billing", shutdown, |client| client.get(&url))
            .await;
        match answer {
            Answer::Final(Ok(response)) => match response.json::<Vec<Payment>>().await {
                Ok(payments) => Answer::Final(payments.iter().any(|payment| payment.status == PaymentStatus::Charged)),
                Err(err) => Answer::Rejected(format!(
                    "billing answered with a body that is not a payment list: {err}"
                )),
            },
            Answer::Final(Err(rejected)) | Answer::Rejected(rejected) => Answer::Rejected(rejected),
            Answer::Interrupted => Answer::Interrupted,
        }
    }

    /// Calls notification until it accepts.
    async fn notify(&self, order: &OrderPlaced, shutdown: &CancellationToken) -> Answer<()> {
        let request = EmailRequest {
            order_id: order.order_id,
            to: order.email.clone(),
            subject: format!("Your order {} is confirmed", order.order_id),
            body: format!(
                "Thank you for your order of {} item(s), {:.2} {}. Tracking id {}, expected on {}.",
                order.items.iter().map(|line| u64::from(line.quantity)).sum::<u64>(),
                order.amount_cents as f64 / 100.0,
                order.currency,
                order.tracking_id,
                order.estimated_delivery
            ),
        };
        let url = format!("{}{}", self.config.notification_url, paths::SEND_EMAIL);
        match self
            .call_until_answered("notification", shutdown, |client| client.post(&url).json(&request))
            .await
        {
            Answer::Final(Ok(_)) => Answer::Final(()),
            Answer::Final(Err(rejected)) | Answer::Rejected(rejected) => Answer::Rejected(rejected),
            Answer::Interrupted => Answer::Interrupted,
        }
    }

    /// Sends the request `build` makes until the service answers 2xx (`Final(Ok)`)
    /// or 4xx (`Final(Err)`: it never will accept it), backing off while it is
    /// down or failing. Each attempt is a CLIENT span of the current trace,
    /// marked with `http.request.resend_count` from the second on.
    async fn call_until_answered(
        &self,
        service: &str,
        shutdown: &CancellationToken,
        build: impl Fn(&ClientWithMiddleware) -> reqwest_middleware::RequestBuilder,
    ) -> Answer<Result<reqwest::Response, String>> {
        let mut backoff = FIRST_BACKOFF;
        let mut resend_count = 0;
        loop {
            match build(&self.client)
                .with_extension(ResendCount(resend_count))
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => return Answer::Final(Ok(response)),
                Ok(response) if response.status().is_client_error() => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    return Answer::Final(Err(format!("{service} answered {status}: {body}")));
                }
                Ok(response) => {
                    tracing::warn!(service, status = %response.status(), attempt = resend_count + 1, "call failed; retrying")
                }
                Err(err) => tracing::warn!(service, %err, attempt = resend_count + 1, "service unreachable; retrying"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return Answer::Interrupted,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
            resend_count += 1;
        }
    }

    /// Copies the record to the dead-letter topic, retrying until the broker acknowledges it.
    async fn dead_letter(&self, message: &OwnedMessage, reason: &str, shutdown: &CancellationToken) -> Handled {
        let topic = &self.config.kafka.dlq_topic;
        let key = message.key().unwrap_or_default();
        let payload = message.payload().unwrap_or_default();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let span = kafka::producer_span(topic, &String::from_utf8_lossy(key));
            let headers = dead_letter_headers(kafka::record_headers(&span), message, reason);
            let record = FutureRecord::to(topic).key(key).payload(payload).headers(headers);
            let sent = self
                .dead_letters
                .send(record, Timeout::After(Duration::from_millis(DLQ_ACK_TIMEOUT_MS)));
            match sent.instrument(span.clone()).await {
                Ok(delivery) => {
                    kafka::record_delivery(&span, delivery.partition, delivery.offset);
                    return Handled::Done;
                }
                Err((err, _)) => {
                    kafka::record_error(&span, "kafka_error", &err);
                    tracing::warn!(%err, "dead-letter send failed; retrying");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return Handled::Interrupted,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }
}

/// How a call that is retried until answered ended.
enum Answer<T> {
    Final(T),
    /// The service will never accept this record (a 4xx, or an unreadable answer).
    Rejected(String),
    /// Shutdown came first.
    Interrupted,
}

fn parse(message: &OwnedMessage) -> Result<OrderPlaced, String> {
    let payload = message.payload().ok_or("the record has no payload")?;
    serde_json::from_slice(payload).map_err(|err| format!("not an OrderPlaced event: {err}"))
}

/// Where the record came from and why it was dead-lettered, for whoever replays it.
fn dead_letter_headers(headers: OwnedHeaders, message: &OwnedMessage, reason: &str) -> OwnedHeaders {
    let source = format!("{}/{}/{}", message.topic(), message.partition(), message.offset());
    headers
        .insert(Header {
            key: "dlq.reason",
            value: Some(reason),
        })
        .insert(Header {
            key: "dlq.source",
            value: Some(&source),
        })
}
