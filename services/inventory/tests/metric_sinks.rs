//! `OTEL_METRICS_EXPORTER` decides where each observation goes, and it goes only there: OTLP, `GET /metrics`, or both.

use std::{net::SocketAddr, time::Duration};

use otlp_sink::Receiver;
use test_support::ServiceProcess;

const REQUEST_DURATION: &str = "http.server.request.duration";
/// The same histogram as Prometheus names it on `GET /metrics`.
const REQUEST_DURATION_SERVED: &str = "http_server_request_duration_seconds_count";

#[tokio::test]
async fn each_observation_goes_only_where_otel_metrics_exporter_says() {
    // (OTEL_METRICS_EXPORTER, pushed over OTLP, served at GET /metrics);
    // unset is the specification's default, `otlp`.
    for (exporters, pushed, served) in [
        (None, true, false),
        (Some("otlp"), true, false),
        (Some("prometheus"), false, true),
        (Some("otlp, prometheus"), true, true),
        (Some("none"), false, false),
    ] {
        let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("receiver");
        let mut env = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), receiver.endpoint()),
            ("OTEL_METRIC_EXPORT_INTERVAL".to_owned(), "100".to_owned()),
        ];
        env.extend(exporters.map(|value| ("OTEL_METRICS_EXPORTER".to_owned(), value.to_owned())));
        let mut inventory = ServiceProcess::start("inventory", &env).await;
        let client = reqwest::Client::new();
        let stock = client.get(inventory.url("/stock")).send().await.expect("GET /stock");
        assert_eq!(stock.status(), 200);

        let scrape = client
            .get(inventory.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        if served {
            assert_eq!(scrape.status(), 200, "{exporters:?}");
            let text = scrape.text().await.expect("the exposition");
            assert!(
                text.lines()
                    .any(|line| line.starts_with(REQUEST_DURATION_SERVED) && line.contains("/stock")),
                "{exporters:?}: GET /stock not on /metrics:\n{text}"
            );
        } else {
            assert_eq!(scrape.status(), 404, "{exporters:?}: /metrics is not served");
        }

        // Shutting down flushes the meter: whatever was pushed has arrived.
        assert!(inventory.terminate().await.success(), "{exporters:?}");
        let durations: Vec<_> = receiver
            .metrics()
            .all()
            .into_iter()
            .filter(|point| point.name == REQUEST_DURATION)
            .collect();
        if pushed {
            assert!(
                durations.iter().any(|point| point.count > 0),
                "{exporters:?}: no {REQUEST_DURATION} over OTLP"
            );
        } else {
            assert!(durations.is_empty(), "{exporters:?}: pushed {durations:?}");
        }
    }
}

#[tokio::test]
async fn an_unknown_metrics_exporter_stops_the_service_with_its_name() {
    let env = [("OTEL_METRICS_EXPORTER".to_owned(), "otlp,console".to_owned())];
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(test_support::binary_path("inventory"))
            .env_clear()
            .envs(env)
            .output(),
    )
    .await
    .expect("exits")
    .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OTEL_METRICS_EXPORTER") && stderr.contains("\"otlp,console\""),
        "{stderr}"
    );
}
