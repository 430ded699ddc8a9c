//! billing: prices an order, charges it (declining what is over the credit limit) and refunds on undo.
//!
//! Run: `PORT=8082 cargo run -p billing` (limit from `BILLING_CREDIT_LIMIT_CENTS`).

use service_kit::{bind, serve, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::healthcheck::run_if_requested();
    let config = billing::Config::from_env()?;
    let _telemetry = telemetry::init("billing")?;
    let listener = bind(config.listen).await?;
    serve(
        listener,
        billing::app(billing::AppState::new(&config)),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}
