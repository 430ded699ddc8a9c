//! notification: "sends" the order confirmation email, once per order, whatever the retries.
//!
//! Run: `PORT=8084 cargo run -p notification`; `GET /sentEmails` lists what it sent.

use service_kit::{bind, serve, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = notification::Config::from_env()?;
    let _telemetry = telemetry::init("notification")?;
    let listener = bind(config.listen).await?;
    serve(
        listener,
        notification::app(notification::AppState::new(&config)),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}
