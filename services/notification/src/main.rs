//! notification: "sends" the order confirmation email, once per order, whatever the retries.
//!
//! Run: `PORT=8084 cargo run -p notification`; `GET /sentEmails` lists what it sent.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::launch("notification", notification::Config::from_env, |config| {
        Ok(notification::app(notification::AppState::new(config)))
    })
    .await
}
