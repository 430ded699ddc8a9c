//! eshop: the entry point of the suite. `GET /checkout` places a sample order,
//! `POST /checkout` a JSON one, across inventory, billing, delivery and Kafka.
//!
//! Run: `make run` starts it with everything it calls; alone,
//! `INVENTORY_URL=... BILLING_URL=... DELIVERY_URL=... KAFKA_BOOTSTRAP_SERVERS=... cargo run -p eshop`.

use service_kit::{bind, serve, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = eshop::Config::from_env()?;
    let _telemetry = telemetry::init("eshop")?;
    let state = eshop::AppState::new(&config)?;
    let listener = bind(config.listen).await?;
    serve(listener, eshop::app(state.clone()), shutdown_signal()).await?;
    // Checkouts whose client hung up and undos still being retried finish
    // (within the grace period), then queued records are delivered.
    state.finish(config.shutdown_grace).await;
    Ok(())
}
