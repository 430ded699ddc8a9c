//! A service whose stdout nobody reads keeps answering: log lines are written off the request path.

use std::time::Duration;

use test_support::ServiceProcess;

/// Far more log output than a pipe holds (64 KiB): each refused request logs a line of about 300 bytes.
const REQUESTS: usize = 2_000;

#[tokio::test]
async fn a_service_whose_stdout_is_not_read_still_answers() {
    let inventory =
        ServiceProcess::start_with_stdout_unread("inventory", &[("OTEL_SDK_DISABLED".to_owned(), "true".to_owned())])
            .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    for request in 0..REQUESTS {
        // An unknown route: answered 404 problem+json, and logged.
        let response = client
            .get(inventory.url(&format!("/no-such-route-{request}")))
            .send()
            .await
            .unwrap_or_else(|err| panic!("request {request} of {REQUESTS} got no answer: {err}"));
        assert_eq!(response.status(), 404);
    }
}
