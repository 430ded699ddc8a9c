//! `make soak`, second part: ten minutes of steady load while each service's resident memory is sampled; with every table bounded it stays flat.
//!
//! 100 checkouts/s fill the default tables (`ORDER_RECORDS_MAX` 10,000
//! orders) within the first two minutes, so from minute 2 on every table is
//! at its bound: memory between minute 2 and minute 10 must stay within 10%
//! of its minute-2 figure. The OTLP receiver in this process drops what it
//! received at every sample; it is not one of the services measured.

use std::{process::ExitCode, time::Duration};

use test_support::Stack;

use crate::measure;

const RATE: f64 = 100.0;
const LOAD_TIME: Duration = Duration::from_secs(600);
const SAMPLE_EVERY: Duration = Duration::from_secs(30);
/// Samples before this are the tables filling up.
const STEADY_FROM: Duration = Duration::from_secs(120);
const TOLERANCE: f64 = 0.10;

pub(crate) async fn run() -> anyhow::Result<ExitCode> {
    let stack = measure::stack(true).await;
    let config = measure::open_loop(&stack, RATE, LOAD_TIME, 0);
    let (report, samples) = tokio::join!(loadgen::run(&config), sample(&stack));
    let report = report?;
    println!("{}", report.summary());

    let names: Vec<&str> = measure::processes(&stack).iter().map(|p| p.name.as_str()).collect();
    println!(
        "\n## Soak: resident memory under {RATE} checkouts/s for {} min\n",
        LOAD_TIME.as_secs() / 60
    );
    println!(
        "| service | MiB at 0:30 | MiB at 2:00 | min..max from 2:00 to 10:00 | largest change | within {:.0}% |",
        TOLERANCE * 100.0
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut flat = true;
    for (index, name) in names.iter().enumerate() {
        let first = samples.first().map_or(0.0, |(_, rss)| rss[index]);
        let steady: Vec<f64> = samples
            .iter()
            .filter(|(at, _)| *at >= STEADY_FROM)
            .map(|(_, rss)| rss[index])
            .collect();
        let base = steady.first().copied().unwrap_or(0.0);
        let (min, max) = steady
            .iter()
            .fold((f64::MAX, f64::MIN), |(min, max), rss| (min.min(*rss), max.max(*rss)));
        let change = if base > 0.0 {
            ((max - base).abs().max((min - base).abs())) / base
        } else {
            f64::INFINITY
        };
        let ok = change <= TOLERANCE;
        flat &= ok;
        println!(
            "| {name} | {first:.1} | {base:.1} | {min:.1}..{max:.1} | {:.1}% | {} |",
            change * 100.0,
            if ok { "yes" } else { "NO" }
        );
    }
    let failed: u64 = report.errors.values().sum();
    println!(
        "\n{} checkouts, {} accepted, {failed} failed",
        report.requests, report.ok
    );
    Ok(if flat { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Resident memory of each service every [`SAMPLE_EVERY`] until the load ends.
async fn sample(stack: &Stack) -> Vec<(Duration, Vec<f64>)> {
    let start = tokio::time::Instant::now();
    let mut samples = Vec::new();
    let mut every = tokio::time::interval_at(start + SAMPLE_EVERY, SAMPLE_EVERY);
    loop {
        every.tick().await;
        let at = start.elapsed();
        if at > LOAD_TIME + Duration::from_secs(1) {
            return samples;
        }
        let rss: Vec<f64> = measure::processes(stack).iter().map(|p| measure::rss_mib(p)).collect();
        eprintln!("memory soak {:>4}s: {rss:.1?}", at.as_secs());
        samples.push((at, rss));
        // The receiver keeps every span; this run does not read them.
        drop(stack.receiver.store().drain());
    }
}
