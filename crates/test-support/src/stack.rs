//! The whole suite as real processes: broker, six services, and an in-process OTLP receiver they export to.

use std::{net::SocketAddr, time::Duration};

use otlp_sink::Receiver;

use crate::{Broker, ServiceProcess, WAIT};

/// What to vary between stacks.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Variables for every service, after the stack's own.
    pub env: Vec<(String, String)>,
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
    pub client: reqwest::Client,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(StackOptions::default()).await
    }

    pub async fn start_with(options: StackOptions) -> Self {
        let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("start the OTLP receiver");
        let broker = Broker::start().await;
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
        ];
        env.extend(options.env);

        let (inventory, billing, delivery, notification) = tokio::join!(
            ServiceProcess::start("inventory", &env),
            ServiceProcess::start("billing", &env),
            ServiceProcess::start("delivery", &env),
            ServiceProcess::start("notification", &env),
        );
        let mut eshop_env = env.clone();
        eshop_env.extend([
            ("INVENTORY_URL".to_owned(), inventory.url("")),
            ("BILLING_URL".to_owned(), billing.url("")),
            ("DELIVERY_URL".to_owned(), delivery.url("")),
        ]);
        let mut consumer_env = env.clone();
        consumer_env.extend([
            ("NOTIFICATION_URL".to_owned(), notification.url("")),
            ("BILLING_URL".to_owned(), billing.url("")),
            // Tansu answers a fetch only when this expires (see messaging);
            // statistics (consumer lag) every half second for the metrics test.
            (
                "KAFKA_CONFIG".to_owned(),
                "fetch.wait.max.ms=10,statistics.interval.ms=500".to_owned(),
            ),
        ]);
        let (eshop, consumer) = tokio::join!(
            ServiceProcess::start("eshop", &eshop_env),
            ServiceProcess::start("kafka-consumer", &consumer_env),
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
            client: reqwest::Client::new(),
        };
        stack.wait_ready(&stack.consumer).await;
        stack
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
