//! bench and soak: the figures behind the README's "What tracing costs" section.
//!
//! Run through the Makefile, which builds release binaries first:
//!   make bench   (bench bench: throughput with tracing on and off, one HTTP hop,
//!                 latency and span loss at half saturation, memory and CPU per service)
//!   make soak    (bench soak: load while the consumer is killed, notification stops,
//!                 billing's answers are lost and the broker is restarted; then every
//!                 order is reconciled. bench soak-memory: ten minutes of steady load,
//!                 resident memory of every service sampled)
//!   make bench-micro (criterion benchmarks of the telemetry crate, then
//!                 bench micro-report: each piece as a ratio to its bare baseline)
//! Both start their own broker and services (test-support's Stack) and an
//! in-process OTLP receiver that counts what arrives.

mod measure;
mod memory_soak;
mod micro_report;
mod run_bench;
mod soak;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    match std::env::args().nth(1).as_deref() {
        Some("bench") => run_bench::run().await,
        Some("soak") => soak::run().await,
        Some("soak-memory") => memory_soak::run().await,
        Some("micro-report") => micro_report::run(),
        _ => {
            eprintln!(
                "usage: bench bench | bench soak | bench soak-memory | bench micro-report   (or make bench / make soak / make bench-micro)"
            );
            Ok(ExitCode::from(2))
        }
    }
}
