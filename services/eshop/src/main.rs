//! eshop: the entry point of the suite. `GET /checkout` places a sample order,
//! `POST /checkout` a JSON one, across inventory, billing, delivery and Kafka.
//!
//! Run: `make run` starts it with everything it calls; alone,
//! `INVENTORY_URL=... BILLING_URL=... DELIVERY_URL=... KAFKA_BOOTSTRAP_SERVERS=... cargo run -p eshop`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::launch("eshop", eshop::Config::from_env, |config| Ok(eshop::service(config)?)).await
}
