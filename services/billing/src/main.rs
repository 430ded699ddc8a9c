//! billing: prices an order, charges it (declining what is over the credit limit) and refunds on undo.
//!
//! Run: `PORT=8082 cargo run -p billing` (limit from `BILLING_CREDIT_LIMIT_CENTS`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::launch("billing", billing::Config::from_env, |config| {
        Ok(billing::app(billing::AppState::new(config)))
    })
    .await
}
