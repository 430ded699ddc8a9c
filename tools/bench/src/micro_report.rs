//! `bench micro-report`: the criterion medians of `make bench-micro`, each traced piece as a ratio to its bare baseline.
//!
//! Criterion keeps every benchmark's estimates in
//! `target/criterion/<group>/<function>/new/estimates.json`; the telemetry
//! and messaging benchmarks name their pairs `<group>/bare` and `<group>/traced`.

use std::{path::Path, process::ExitCode};

const CRITERION_DIR: &str = "target/criterion";
/// The pairs `crates/telemetry/benches/per_request.rs` and
/// `crates/messaging/benches/per_record.rs` (producer, consumer) measure, in the order printed.
const GROUPS: [(&str, &str, &str); 8] = [
    (
        "span",
        "SDK span, no tracing layer",
        "tracing span through the subscriber",
    ),
    ("server", "axum request, no middleware", "through trace_request"),
    ("client", "middleware call answered in-process", "through ClientTracing"),
    (
        "producer",
        "SDK PRODUCER span + inject",
        "SendSpan: open + headers + delivered",
    ),
    ("consumer", "SDK CONSUMER span + extract + link", "consumer_span"),
    ("inject", "W3C only", "default propagators (W3C, B3, baggage)"),
    ("extract", "W3C only", "default propagators (W3C, B3, baggage)"),
    (
        "log",
        "log line in a span, stdout only (SDK off)",
        "the same with span ids and an OTLP log record",
    ),
];

/// The median of one benchmark, in nanoseconds.
fn median_ns(group: &str, function: &str) -> anyhow::Result<f64> {
    let path = Path::new(CRITERION_DIR)
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    estimates["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("{}: no median", path.display()))
}

pub(crate) fn run() -> anyhow::Result<ExitCode> {
    println!("\n## Micro-benchmarks ({})\n", crate::measure::machine());
    println!("| piece | bare baseline | median | traced | median | ratio |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (group, bare_label, traced_label) in GROUPS {
        let (Ok(bare), Ok(traced)) = (median_ns(group, "bare"), median_ns(group, "traced")) else {
            eprintln!("{group}: no estimates under {CRITERION_DIR}; run make bench-micro");
            return Ok(ExitCode::FAILURE);
        };
        println!(
            "| {group} | {bare_label} | {:.2} µs | {traced_label} | {:.2} µs | {:.2} |",
            bare / 1_000.0,
            traced / 1_000.0,
            traced / bare
        );
    }
    Ok(ExitCode::SUCCESS)
}
