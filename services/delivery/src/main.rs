//! delivery: schedules the shipment of an order and returns a tracking id and an estimated date.
//!
//! Run: `PORT=8083 cargo run -p delivery` (days to deliver from `DELIVERY_DAYS`).

use service_kit::{bind, serve, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::healthcheck::run_if_requested();
    let config = delivery::Config::from_env()?;
    let _telemetry = telemetry::init("delivery")?;
    let listener = bind(config.listen).await?;
    serve(
        listener,
        delivery::app(delivery::AppState::new(&config)),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}
