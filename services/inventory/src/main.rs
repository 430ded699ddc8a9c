//! inventory: reserves stock for orders and releases it when a checkout is undone.
//!
//! Run: `PORT=8081 cargo run -p inventory` (stock per SKU from `INITIAL_STOCK`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::launch("inventory", inventory::Config::from_env, |config| {
        Ok(inventory::app(inventory::AppState::new(config)))
    })
    .await
}
