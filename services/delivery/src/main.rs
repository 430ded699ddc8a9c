//! delivery: schedules the shipment of an order and returns a tracking id and an estimated date.
//!
//! Run: `PORT=8083 cargo run -p delivery` (days to deliver from `DELIVERY_DAYS`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::launch("delivery", delivery::Config::from_env, |config| {
        Ok(delivery::app(delivery::AppState::new(config)))
    })
    .await
}
