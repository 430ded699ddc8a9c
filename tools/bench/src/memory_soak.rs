//! `make soak`, second part: ten minutes of steady load while each service's resident memory is sampled; with every table bounded it stays flat.
//!
//! 100 checkouts/s fill the default tables (`ORDER_RECORDS_MAX` 10,000
//! orders) within the first two minutes, so from minute 2 on every table is
//! at its bound: memory between minute 2 and minute 10 must not grow by more
//! than 10%: the median of the last three samples against the
//! median of the first three from minute 2, so that a step back and forth
//! (an allocator returning pages, a brief burst) is not read as growth while
//! a creep still is. What is judged is resident memory; its anonymous part (heap, stacks:
//! what the program allocates) and file-backed part (the binary's code,
//! paged in as new paths first run) are shown beside it. The OTLP receiver in this process drops what it
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
        "| service | MiB at 0:30 | MiB at 2:00 (anonymous + file) | anonymous from 2:00 to 10:00 | its largest move | its growth, start to end | resident's growth | resident's growth within {:.0}% |",
        TOLERANCE * 100.0
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut flat = true;
    for (index, name) in names.iter().enumerate() {
        let first = samples.first().map_or(0.0, |(_, memory)| memory[index].resident());
        let steady: Vec<measure::Memory> = samples
            .iter()
            .filter(|(at, _)| *at >= STEADY_FROM)
            .map(|(_, memory)| memory[index])
            .collect();
        let Some(base) = steady.first().copied() else {
            continue;
        };
        let anonymous: Vec<f64> = steady.iter().map(|memory| memory.anonymous_mib).collect();
        let resident: Vec<f64> = steady.iter().map(measure::Memory::resident).collect();
        let (min, max, largest_move) = spread(&anonymous);
        let growth = growth(&anonymous);
        let resident_growth = self::growth(&resident);
        let ok = resident_growth <= TOLERANCE;
        flat &= ok;
        println!(
            "| {name} | {first:.1} | {:.1} + {:.1} | {min:.1}..{max:.1} | {:.1}% | {:+.1}% | {:+.1}% | {} |",
            base.anonymous_mib,
            base.file_mib,
            largest_move * 100.0,
            growth * 100.0,
            resident_growth * 100.0,
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

/// How many samples make each end of [`growth`].
const ENDS: usize = 3;

/// The median of the last [`ENDS`] values against the median of the first
/// [`ENDS`], as a fraction of the latter: a creep shows, a step back and
/// forth does not.
fn growth(values: &[f64]) -> f64 {
    if values.len() < 2 * ENDS {
        return f64::INFINITY;
    }
    let first = median(&values[..ENDS]);
    let last = median(&values[values.len() - ENDS..]);
    if first > 0.0 {
        (last - first) / first
    } else {
        f64::INFINITY
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The smallest and largest value, and the largest change from the first, as a fraction of it.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let base = values.first().copied().unwrap_or(0.0);
    let (min, max) = values.iter().fold((f64::MAX, f64::MIN), |(min, max), value| {
        (min.min(*value), max.max(*value))
    });
    let change = if base > 0.0 {
        (max - base).abs().max((min - base).abs()) / base
    } else {
        f64::INFINITY
    };
    (min, max, change)
}

/// Memory of each service every [`SAMPLE_EVERY`] until the load ends.
async fn sample(stack: &Stack) -> Vec<(Duration, Vec<measure::Memory>)> {
    let start = tokio::time::Instant::now();
    let mut samples = Vec::new();
    let mut every = tokio::time::interval_at(start + SAMPLE_EVERY, SAMPLE_EVERY);
    loop {
        every.tick().await;
        let at = start.elapsed();
        if at > LOAD_TIME + Duration::from_secs(1) {
            return samples;
        }
        let memory: Vec<measure::Memory> = measure::processes(stack).iter().map(|p| measure::memory(p)).collect();
        let anonymous: Vec<f64> = memory.iter().map(|memory| memory.anonymous_mib).collect();
        eprintln!("memory soak {:>4}s, anonymous MiB: {anonymous:.1?}", at.as_secs());
        samples.push((at, memory));
        // The receiver keeps every span; this run does not read them.
        drop(stack.receiver.store().drain());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// eshop's anonymous memory in a run at b0ca109 (jemalloc then): steps, no creep.
    const STEPS: [f64; 17] = [
        11.8, 11.7, 11.9, 12.0, 12.3, 12.0, 12.0, 11.8, 11.9, 11.9, 12.1, 11.9, 11.9, 11.9, 12.0, 12.0, 11.9,
    ];

    #[test]
    fn steps_back_and_forth_are_no_growth_and_a_creep_is() {
        assert!(growth(&STEPS).abs() < TOLERANCE, "{}", growth(&STEPS));
        let creep: Vec<f64> = (0..17).map(|minute| 11.8 * (1.0 + 0.01 * f64::from(minute))).collect();
        assert!(growth(&creep) > TOLERANCE, "{}", growth(&creep));
        assert_eq!(growth(&[1.0, 2.0]), f64::INFINITY, "too few samples to judge");
    }

    #[test]
    fn the_spread_is_the_largest_move_from_the_first_sample_either_way() {
        let (min, max, change) = spread(&[20.0, 20.5, 19.0, 21.0]);
        assert_eq!((min, max), (19.0, 21.0));
        assert!((change - 0.05).abs() < 1e-9, "{change}");
    }
}
