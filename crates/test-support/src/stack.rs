//! The whole suite as real processes: broker, six services, and an in-process OTLP receiver they export to.

use std::{net::SocketAddr, time::Duration};

use otlp_sink::Receiver;

use crate::{Broker, FlakyProxy, ServiceProcess, WAIT};

/// librdkafka settings the tests' kafka-consumers run with; everything else
/// is the suite's code and librdkafka's defaults, as in production.
///
/// `session.timeout.ms=6000` (the broker's `group.min.session.timeout.ms`, the
/// shortest it accepts; librdkafka's default is 45 s): the tests kill consumers
/// with SIGKILL, and a member that dies without leaving keeps its partitions
/// until its session expires, so a restarted or second consumer gets them
/// within seconds rather than after 45.
pub const TEST_CONSUMER_CONFIG: &str = "session.timeout.ms=6000";

/// What to vary between stacks.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Variables for every service, after the stack's own.
    pub env: Vec<(String, String)>,
    /// Variables for kafka-consumer only, after all others (e.g. another `NOTIFICATION_URL`).
    pub consumer_env: Vec<(String, String)>,
    /// Puts a [`FlakyProxy`] between kafka-consumer and billing (`Stack::consumer_billing`).
    pub proxy_consumer_billing: bool,
    /// Puts a [`FlakyProxy`] between eshop and billing (`Stack::eshop_billing`).
    pub proxy_eshop_billing: bool,
    /// Where the broker keeps its data, to survive a restart; in memory when `None`.
    pub broker_storage: Option<std::path::PathBuf>,
    /// Where the service binaries are: beside the running executable when
    /// `None`, another build's directory to compare two builds (`bench ab`).
    pub binaries: Option<std::path::PathBuf>,
}

/// A running suite; everything stops when it is dropped.
#[derive(Debug)]
pub struct Stack {
    pub receiver: Receiver,
    pub broker: Broker,
    pub inventory: ServiceProcess,
    pub billing: ServiceProcess,
    pub delivery: ServiceProcess,
    pub notification: ServiceProcess,
    pub eshop: ServiceProcess,
    pub consumer: ServiceProcess,
    /// Between kafka-consumer and billing, when [`StackOptions::proxy_consumer_billing`] asked for it.
    pub consumer_billing: Option<FlakyProxy>,
    /// Between eshop and billing, when [`StackOptions::proxy_eshop_billing`] asked for it.
    pub eshop_billing: Option<FlakyProxy>,
    /// What kafka-consumer was started with, for starting another.
    consumer_env: Vec<(String, String)>,
    pub client: reqwest::Client,
}

/// A service of the stack, from `binaries` or from beside the running executable.
async fn start_service(binaries: Option<&std::path::Path>, name: &str, env: &[(String, String)]) -> ServiceProcess {
    match binaries {
        Some(dir) => ServiceProcess::start_from(dir, name, env).await,
        None => ServiceProcess::start(name, env).await,
    }
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(StackOptions::default()).await
    }

    pub async fn start_with(options: StackOptions) -> Self {
        let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("start the OTLP receiver");
        let broker = match &options.broker_storage {
            Some(dir) => Broker::start_persistent(dir).await,
            None => Broker::start().await,
        };
        let mut env = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), receiver.endpoint()),
            // Export every 100 ms instead of 5 s (1 s for logs, 60 s for
            // metrics), so tests see what they wait for quickly.
            ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
            ("OTEL_BLRP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
            ("OTEL_METRIC_EXPORT_INTERVAL".to_owned(), "500".to_owned()),
            ("KAFKA_BOOTSTRAP_SERVERS".to_owned(), broker.bootstrap_servers()),
            ("NOTIFY_MAX_BACKOFF_MS".to_owned(), "500".to_owned()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
            // As `make run` (telemetry's W3C_AND_B3_PROPAGATORS): callers
            // may speak W3C or B3, and the B3 tests do.
            ("OTEL_PROPAGATORS".to_owned(), "b3multi,tracecontext,baggage".to_owned()),
            // Both metric sinks, so that tests see the OTLP metrics
            // (Kubernetes) and GET /metrics with exemplars (Compose).
            ("OTEL_METRICS_EXPORTER".to_owned(), "otlp,prometheus".to_owned()),
        ];
        env.extend(options.env);

        let binaries = options.binaries.as_deref();
        let (inventory, billing, delivery, notification) = tokio::join!(
            start_service(binaries, "inventory", &env),
            start_service(binaries, "billing", &env),
            start_service(binaries, "delivery", &env),
            start_service(binaries, "notification", &env),
        );
        let eshop_billing = if options.proxy_eshop_billing {
            Some(FlakyProxy::start(&billing.url("")).await)
        } else {
            None
        };
        let mut eshop_env = env.clone();
        eshop_env.extend([
            ("INVENTORY_URL".to_owned(), inventory.url("")),
            (
                "BILLING_URL".to_owned(),
                eshop_billing
                    .as_ref()
                    .map_or_else(|| billing.url(""), |proxy| proxy.url("")),
            ),
            ("DELIVERY_URL".to_owned(), delivery.url("")),
        ]);
        let consumer_billing = if options.proxy_consumer_billing {
            Some(FlakyProxy::start(&billing.url("")).await)
        } else {
            None
        };
        let mut consumer_env = env.clone();
        consumer_env.extend([
            ("NOTIFICATION_URL".to_owned(), notification.url("")),
            (
                "BILLING_URL".to_owned(),
                consumer_billing
                    .as_ref()
                    .map_or_else(|| billing.url(""), |proxy| proxy.url("")),
            ),
            // Statistics (consumer lag) every half second for the metrics test;
            // consumer properties for the consumer only, not its dead-letter producer.
            (
                "KAFKA_CONSUMER_CONFIG".to_owned(),
                format!("{TEST_CONSUMER_CONFIG},statistics.interval.ms=500"),
            ),
        ]);
        consumer_env.extend(options.consumer_env);
        let (eshop, consumer) = tokio::join!(
            start_service(binaries, "eshop", &eshop_env),
            start_service(binaries, "kafka-consumer", &consumer_env),
        );
        let stack = Self {
            receiver,
            broker,
            inventory,
            billing,
            delivery,
            notification,
            eshop,
            consumer,
            consumer_billing,
            eshop_billing,
            consumer_env,
            client: reqwest::Client::new(),
        };
        stack.wait_ready(&stack.consumer).await;
        stack
    }

    /// Starts one more kafka-consumer in the same group, with the same settings.
    pub async fn start_another_consumer(&self) -> ServiceProcess {
        ServiceProcess::start("kafka-consumer", &self.consumer_env).await
    }

    /// Polls `/readyz` until it answers 200 (the consumer: once it has partitions).
    pub async fn wait_ready(&self, process: &ServiceProcess) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ready = self
                .client
                .get(process.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} not ready within {WAIT:?}",
                process.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET` on eshop's `path` with these headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(self.eshop.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("eshop answers")
    }

    /// Every record of a paged list endpoint (`/payments`, `/deliveries`,
    /// `/sentEmails`), read a page at a time with `?limit=&after=`.
    pub async fn json_all(&self, process: &ServiceProcess, path: &str) -> Vec<serde_json::Value> {
        const PAGE: usize = 1_000;
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.json(process, &format!("{path}?limit={PAGE}{after}")).await;
            let page = page.as_array().cloned().unwrap_or_default();
            let full = page.len() == PAGE;
            if let Some(last) = page.last().and_then(|record| record["order_id"].as_str()) {
                after = format!("&after={last}");
            }
            all.extend(page);
            if !full {
                return all;
            }
        }
    }

    /// The JSON a service serves at `path` (e.g. notification's `/sentEmails`).
    pub async fn json(&self, process: &ServiceProcess, path: &str) -> serde_json::Value {
        self.client
            .get(process.url(path))
            .send()
            .await
            .expect("service answers")
            .json()
            .await
            .expect("JSON body")
    }
}
