//! bench and soak: the figures behind docs/benchmarks.md (what tracing costs, and whether anything is lost).
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
//! For one question at a time: `bench saturation [KEY=VALUE ...]` (one round
//! at saturation with these variables for the services: what a setting costs),
//! `bench half-load RATE SECONDS [KEY=VALUE ...]` (which service's spans went
//! missing, and the Kafka hop early and late in the run), `bench paired RATE
//! SECONDS` (a traced and an untraced stack side by side: tracing's CPU per span).
//! Both start their own broker and services (test-support's Stack) and an
//! in-process OTLP receiver that counts what arrives.

mod bare_hop;
mod bare_span;
mod bench_report;
mod drain;
mod half_load;
mod kafka_rtt;
mod measure;
mod memory_soak;
mod micro_report;
mod paired;
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
        Some("bare-spans") => {
            let mut args = std::env::args().skip(2);
            let (Some(endpoint), Some(count)) = (args.next(), args.next().and_then(|n| n.parse().ok())) else {
                anyhow::bail!("usage: bench bare-spans <OTLP endpoint> <count>");
            };
            bare_span::child(endpoint, count).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some("bare-hops") => {
            let mut args = std::env::args().skip(2);
            let (Some(endpoint), Some(seconds)) = (args.next(), args.next().and_then(|n| n.parse().ok())) else {
                anyhow::bail!("usage: bench bare-hops <OTLP endpoint> <seconds>");
            };
            bare_hop::child(endpoint, seconds).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some("bare-produce-consume") => {
            let mut args = std::env::args().skip(2);
            let (Some(bootstrap), Some(rate), Some(seconds)) = (
                args.next(),
                args.next().and_then(|n| n.parse().ok()),
                args.next().and_then(|n| n.parse().ok()),
            ) else {
                anyhow::bail!("usage: bench bare-produce-consume <bootstrap servers> <records per second> <seconds>");
            };
            kafka_rtt::produce_consume_child(bootstrap, rate, seconds).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some("kafka-cpu") => {
            let rate: f64 = std::env::args()
                .nth(2)
                .and_then(|rate| rate.parse().ok())
                .unwrap_or(1_000.0);
            let cpu_us = kafka_rtt::produce_consume_cpu_us(rate, 10.0).await?;
            println!("bare produce and consume, {rate}/s for 10 s: {cpu_us:.1} µs CPU per record");
            Ok(ExitCode::SUCCESS)
        }
        Some("hop-baseline") => {
            let hop = bare_hop::cpu_per_hop(12.0).await?;
            println!(
                "one HTTP hop, 5,000 a second, six turns of 2 s each way (medians): {:.1} µs CPU bare, {:.1} µs instrumented by hand on the SDK (instrumentation {:.1} µs)",
                hop.bare_us,
                hop.instrumented_us,
                hop.instrumentation_us()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some("half-load") => {
            let mut args = std::env::args().skip(2);
            let (rate, duration) = rate_and_duration(
                &mut args,
                "bench half-load <checkouts per second> <seconds> [KEY=VALUE ...]",
            )?;
            half_load::run(rate, duration, &measure::env_args(args)?).await
        }
        Some("paired") => {
            let mut args = std::env::args().skip(2);
            let (rate, duration) =
                rate_and_duration(&mut args, "bench paired <checkouts per second, each stack> <seconds>")?;
            paired::print(rate, duration).await
        }
        Some("ab") => {
            let mut args = std::env::args().skip(2);
            let usage = "bench ab <checkouts per second, each stack> <seconds> <rounds> <dir A[:K=V,...]> <dir B[:K=V,...]> [w3c|b3|none: the load's trace headers, w3c by default]";
            let (rate, duration) = rate_and_duration(&mut args, usage)?;
            let rounds: usize = args
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("usage: {usage}"))?;
            let (Some(a), Some(b)) = (args.next(), args.next()) else {
                anyhow::bail!("usage: {usage}");
            };
            let propagation = match args.next().as_deref() {
                None | Some("w3c") => loadgen::Propagation::W3c,
                Some("b3") => loadgen::Propagation::B3,
                Some("none") => loadgen::Propagation::None,
                Some(other) => anyhow::bail!("{other:?}: not w3c, b3 or none; usage: {usage}"),
            };
            paired::ab(rate, duration, rounds, [&a, &b], propagation).await
        }
        Some("idle-rss") => run_bench::idle_rss().await,
        Some("saturation") => run_bench::one_round(&measure::env_args(std::env::args().skip(2))?).await,
        Some("kafka-round-trip") => {
            let rate: f64 = std::env::args()
                .nth(2)
                .and_then(|rate| rate.parse().ok())
                .unwrap_or(0.0);
            let mut times = kafka_rtt::round_trips(200, std::time::Duration::from_millis(20), rate).await?;
            println!(
                "bare Kafka round trip, 200 records, {rate}/s other records: p50 {:.1} ms, p99 {:.1} ms",
                measure::quantile(&mut times, 0.5),
                measure::quantile(&mut times, 0.99)
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!(
                "usage: bench bench | bench soak | bench soak-memory | bench micro-report   (or make bench / make soak / make bench-micro)\n       bench saturation [KEY=VALUE ...] | bench half-load RATE SECONDS [KEY=VALUE ...] | bench paired RATE SECONDS | bench ab RATE SECONDS ROUNDS DIR_A[:K=V,..] DIR_B[:K=V,..] | bench kafka-round-trip [RATE] | bench kafka-cpu [RATE] | bench idle-rss | bench hop-baseline"
            );
            Ok(ExitCode::from(2))
        }
    }
}

/// The `RATE SECONDS` arguments that open a load's command line.
fn rate_and_duration(
    args: &mut impl Iterator<Item = String>,
    usage: &str,
) -> anyhow::Result<(f64, std::time::Duration)> {
    match (
        args.next().map(|arg| arg.parse::<f64>()),
        args.next().map(|arg| arg.parse::<f64>()),
    ) {
        (Some(Ok(rate)), Some(Ok(seconds))) if seconds >= 0.0 => {
            Ok((rate, std::time::Duration::from_secs_f64(seconds)))
        }
        _ => anyhow::bail!("usage: {usage}"),
    }
}
