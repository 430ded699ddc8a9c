//! kafka-consumer: reads "order placed" events from `eshop-topic` and has
//! notification email the customer, inside the checkout's own trace.
//!
//! Run: `KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 NOTIFICATION_URL=http://127.0.0.1:8084 cargo run -p kafka-consumer`.

use service_kit::{Readiness, ServiceApp, bind, shutdown_signal};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, _telemetry) = service_kit::prepare("kafka-consumer", kafka_consumer::Config::from_env)?;
    let readiness = Readiness::not_ready();
    let worker = kafka_consumer::Worker::new(&config, readiness.clone())?;
    let listener = bind(config.listen).await?;

    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            shutdown.cancel();
        }
    });
    let probes = tokio::spawn(
        ServiceApp::new(kafka_consumer::app(
            readiness,
            config.limits,
            kafka_consumer::dead_letter_replayer(&config),
        ))
        .serve(listener, shutdown.clone().cancelled_owned()),
    );
    worker.run(shutdown).await?;
    probes.await??;
    Ok(())
}
