//! verify-trace: fetches one trace from Jaeger and checks it the way the end-to-end test does.
//!
//! Usage: `verify-trace TRACE_ID [JAEGER_URL]` (default `http://localhost:16686`),
//! or `make verify-trace TRACE=<id> [JAEGER=<url>]`. Prints the trace as a tree
//! and exits 0 when it is one complete checkout, 1 when something is missing,
//! 2 when the trace cannot be fetched.

use std::{process::ExitCode, time::Duration};

use otlp_sink::tree;
use trace_contract as contract;

const DEFAULT_JAEGER: &str = "http://localhost:16686";

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(trace_id) = args.next() else {
        eprintln!("usage: verify-trace TRACE_ID [JAEGER_URL]");
        return ExitCode::from(2);
    };
    let jaeger = args.next().unwrap_or_else(|| DEFAULT_JAEGER.to_owned());
    let url = format!("{}/api/traces/{trace_id}", jaeger.trim_end_matches('/'));

    let body = match fetch(&url).await {
        Ok(body) => body,
        Err(err) => {
            eprintln!("cannot fetch {url}: {err}");
            return ExitCode::from(2);
        }
    };
    let spans = match verify_trace::read_trace(&body, &trace_id) {
        Ok(spans) => spans,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    print!("{}", tree::render(&spans));
    let problems = contract::check_checkout(&spans);
    if problems.is_empty() {
        println!(
            "OK: one trace through all six services, CLIENT -> SERVER calls, PRODUCER -> CONSUMER with FOLLOWS_FROM, notification under the consumer"
        );
        ExitCode::SUCCESS
    } else {
        for problem in &problems {
            println!("MISSING: {problem}");
        }
        ExitCode::FAILURE
    }
}

async fn fetch(url: &str) -> Result<String, reqwest::Error> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    client.get(url).send().await?.error_for_status()?.text().await
}
