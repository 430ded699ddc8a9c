//! verify-trace: fetches one trace from Jaeger and checks it the way the end-to-end test does.
//!
//! Usage: `verify-trace TRACE_ID [JAEGER_URL]` (default `http://localhost:16686`),
//! or `make verify-trace TRACE=<id> [JAEGER=<url>]`. Reads Jaeger v2's
//! `/api/v3/traces/{id}` and falls back to `/api/traces/{id}`. Prints the trace
//! as a tree and exits 0 when it is one complete checkout, 1 when something is
//! missing, 2 when the trace cannot be fetched.

use std::{process::ExitCode, time::Duration};

use trace_contract as contract;
use trace_model::{jaeger, tree};

const DEFAULT_JAEGER: &str = "http://localhost:16686";

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(trace_id) = args.next() else {
        eprintln!("usage: verify-trace TRACE_ID [JAEGER_URL]");
        return ExitCode::from(2);
    };
    let jaeger = args.next().unwrap_or_else(|| DEFAULT_JAEGER.to_owned());
    let jaeger = jaeger.trim_end_matches('/');

    // Jaeger v2's OTLP API first; Jaeger v1 (and proxies that expose only the
    // UI's API) answer the older one.
    let v3 = format!("{jaeger}{}{trace_id}", verify_trace::V3_TRACE_PATH);
    let v1 = format!("{jaeger}{}{trace_id}", verify_trace::V1_TRACE_PATH);
    let spans = match fetch(&v3)
        .await
        .and_then(|body| jaeger::read_trace_v3(&body, &trace_id).map_err(|err| err.to_string()))
    {
        Ok(spans) => spans,
        Err(v3_err) => match fetch(&v1)
            .await
            .and_then(|body| jaeger::read_trace(&body, &trace_id).map_err(|err| err.to_string()))
        {
            Ok(spans) => {
                eprintln!("note: {v3}: {v3_err}; read {v1} instead");
                spans
            }
            Err(v1_err) => {
                eprintln!("{v3}: {v3_err}");
                eprintln!("{v1}: {v1_err}");
                return ExitCode::from(2);
            }
        },
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

async fn fetch(url: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|err| err.to_string())?;
    let response = client.get(url).send().await.map_err(|err| err.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|err| err.to_string())?;
    // v3 answers a missing trace with 404 and a JSON error body, which says more than the status.
    if status.is_success() || body.trim_start().starts_with('{') {
        Ok(body)
    } else {
        Err(format!("HTTP {status}"))
    }
}
