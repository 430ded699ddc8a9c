//! inventory: reserves stock for orders and releases it when a checkout is undone.
//!
//! Run: `PORT=8081 cargo run -p inventory` (stock per SKU from `INITIAL_STOCK`).

use service_kit::{bind, serve, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::healthcheck::run_if_requested();
    let config = inventory::Config::from_env()?;
    let _telemetry = telemetry::init("inventory")?;
    let listener = bind(config.listen).await?;
    serve(
        listener,
        inventory::app(inventory::AppState::new(&config)),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}
