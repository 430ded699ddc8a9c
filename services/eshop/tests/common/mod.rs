//! What the eshop tests share: the real inventory, billing and delivery apps
//! in-process, eshop configured against them, and problem+json checks.
#![allow(dead_code)] // each test binary uses its own part

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use api::{Delivery, Payment, StockLevel};
use axum::{Router, http::StatusCode, routing::any};
use messaging::KafkaSettings;
use serde_json::{Value, json};
use service_kit::config::Listen;
use test_support::{TestApp, spawn_app};

pub(crate) const HTTP_TIMEOUT: Duration = Duration::from_millis(500);

/// A port nothing listens on: a service that is down.
pub(crate) fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// A stand-in for a broken service: counts calls and answers with `status` after `delay`.
pub(crate) async fn stand_in(status: StatusCode, delay: Duration) -> (TestApp, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new().fallback(any(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(delay).await;
            status
        }
    }));
    (spawn_app(router).await, calls)
}

pub(crate) struct Services {
    pub inventory: TestApp,
    pub billing: TestApp,
    pub delivery: TestApp,
}

impl Services {
    pub(crate) async fn start() -> Self {
        let listen = Listen {
            host: [127, 0, 0, 1].into(),
            port: 0,
        };
        Self {
            inventory: spawn_app(inventory::app(inventory::AppState::new(&inventory::Config {
                listen,
                limits: Default::default(),
                tables: Default::default(),
                initial_stock: 10,
            })))
            .await,
            billing: spawn_app(billing::app(billing::AppState::new(&billing::Config {
                listen,
                limits: Default::default(),
                tables: Default::default(),
                credit_limit_cents: billing::DEFAULT_CREDIT_LIMIT_CENTS,
            })))
            .await,
            delivery: spawn_app(delivery::app(delivery::AppState::new(&delivery::Config {
                listen,
                limits: Default::default(),
                tables: Default::default(),
                delivery_days: 3,
            })))
            .await,
        }
    }

    pub(crate) async fn reserved_units(&self) -> u32 {
        let levels: Vec<StockLevel> = get_json(&self.inventory.url("/stock")).await;
        levels.iter().map(|level| level.reserved).sum()
    }

    pub(crate) async fn payments(&self) -> Vec<Payment> {
        get_json(&self.billing.url("/payments")).await
    }

    pub(crate) async fn deliveries(&self) -> Vec<Delivery> {
        get_json(&self.delivery.url("/deliveries")).await
    }
}

pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    reqwest::get(url).await.expect("GET").json().await.expect("JSON")
}

pub(crate) async fn eshop(inventory: &str, billing: &str, delivery: &str) -> TestApp {
    spawn_app(eshop::service(&eshop_config(inventory, billing, delivery)).expect("eshop state")).await
}

/// eshop against these services and a broker nobody listens on: these tests
/// never get as far as a successful publish.
pub(crate) fn eshop_config(inventory: &str, billing: &str, delivery: &str) -> eshop::Config {
    let kafka = KafkaSettings {
        bootstrap_servers: closed_port().trim_start_matches("http://").to_owned(),
        topic: "eshop-topic".into(),
        dlq_topic: "eshop-topic.dlq".into(),
        group_id: "eshop-demo-app".into(),
        overrides: Vec::new(),
        consumer_overrides: Vec::new(),
        producer_overrides: Vec::new(),
    };
    let listen = Listen {
        host: [127, 0, 0, 1].into(),
        port: 0,
    };
    let mut config = eshop::Config::new(listen, inventory, billing, delivery, kafka);
    config.http_timeout = HTTP_TIMEOUT;
    config.publish_timeout = Duration::from_millis(1_500);
    config
}

/// POSTs `body` as JSON to eshop's /checkout; returns the status and the problem+json body.
pub(crate) async fn post_checkout(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/checkout"))
        .json(body)
        .send()
        .await
        .expect("eshop answers");
    problem(response).await
}

pub(crate) async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = response.json().await.expect("a JSON body");
    if !status.is_success() {
        assert_eq!(
            content_type, "application/problem+json",
            "error bodies are problem+json: {body}"
        );
        assert_eq!(body["status"], status.as_u16(), "{body}");
        assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
    }
    (status, body)
}

/// The answer names the service that failed, with the status that kind of failure gets.
pub(crate) fn assert_failed_at(status: StatusCode, body: &Value, expected: StatusCode, service: &str) {
    assert_eq!((status, body["service"].as_str()), (expected, Some(service)), "{body}");
}

pub(crate) fn order(sku: &str, quantity: u64) -> Value {
    json!({ "email": "jane.doe@example.com", "items": [{ "sku": sku, "quantity": quantity }] })
}

/// The real eshop binary exporting to `receiver` only when it shuts down, against these services.
pub(crate) async fn eshop_process(
    receiver: &otlp_sink::Receiver,
    urls: [&str; 3],
    env: &[(&str, &str)],
) -> test_support::ServiceProcess {
    let [inventory, billing, delivery] = urls;
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), receiver.endpoint()),
        // Nothing is exported before shutdown: what arrives was flushed by it.
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "600000".to_owned()),
        ("INVENTORY_URL".to_owned(), inventory.to_owned()),
        ("BILLING_URL".to_owned(), billing.to_owned()),
        ("DELIVERY_URL".to_owned(), delivery.to_owned()),
        ("KAFKA_BOOTSTRAP_SERVERS".to_owned(), "127.0.0.1:1".to_owned()),
    ];
    vars.extend(
        env.iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    test_support::ServiceProcess::start("eshop", &vars).await
}
