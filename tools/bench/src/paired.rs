//! Tracing's CPU per span with a traced and an untraced stack under the same load at the same time.
//!
//! The half-saturation figure compares an untraced phase with the traced one
//! that follows it, and the saturation rounds alternate; on a shared machine
//! whose speed drifts (a bare HTTP hop cost 26 to 35 µs of CPU across one
//! afternoon's runs), either can move by half between runs. Run side by side,
//! both stacks see the same machine for the whole measurement, so its drift
//! cancels out of the difference.

use std::time::Duration;

use serde::Serialize;
use test_support::Stack;

use crate::{
    drain,
    measure::{self, SPANS_PER_CHECKOUT},
    run_bench::SPAN_PROCESSES,
};

/// What one side-by-side run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Paired {
    /// Checkouts per second offered to each stack.
    pub(crate) rate: f64,
    pub(crate) seconds: f64,
    /// The six services' CPU milliseconds per checkout, traced and untraced.
    pub(crate) services_traced_ms: f64,
    pub(crate) services_untraced_ms: f64,
    /// Traced minus untraced, over the spans of a checkout.
    pub(crate) span_cpu_us: f64,
    /// Untraced over traced CPU per checkout.
    pub(crate) services_cpu_ratio: f64,
}

/// Both stacks at `rate` checkouts per second each for `duration`, then drained.
pub(crate) async fn run(rate: f64, duration: Duration) -> anyhow::Result<Paired> {
    let traced = measure::stack(true).await;
    let untraced = measure::stack(false).await;
    let before = (measure::cpu_times(&traced), measure::cpu_times(&untraced));
    let (load_on, load_off) = (
        measure::open_loop(&traced, rate, duration, 0),
        measure::open_loop(&untraced, rate, duration, 0),
    );
    let (on, off) = tokio::join!(loadgen::run(&load_on), loadgen::run(&load_off));
    let (on, off) = (on?, off?);
    drain::until_drained(&traced).await?;
    drain::until_drained(&untraced).await?;
    let services_traced_ms = services_ms(&traced, &before.0, (on.requests + on.warmup_requests) as f64);
    let services_untraced_ms = services_ms(&untraced, &before.1, (off.requests + off.warmup_requests) as f64);
    Ok(Paired {
        rate,
        seconds: duration.as_secs_f64(),
        services_traced_ms,
        services_untraced_ms,
        span_cpu_us: (services_traced_ms - services_untraced_ms) * 1_000.0 / SPANS_PER_CHECKOUT as f64,
        services_cpu_ratio: services_untraced_ms / services_traced_ms,
    })
}

/// The six services' CPU milliseconds per checkout since `before`.
fn services_ms(stack: &Stack, before: &[(String, Duration)], checkouts: f64) -> f64 {
    measure::cpu_ms_per_checkout(before, &measure::cpu_times(stack), checkouts)
        .iter()
        .take(SPAN_PROCESSES)
        .map(|(_, ms)| ms)
        .sum()
}

/// `bench paired RATE SECONDS`: one side-by-side run, printed.
pub(crate) async fn print(rate: f64, duration: Duration) -> anyhow::Result<std::process::ExitCode> {
    let paired = run(rate, duration).await?;
    println!(
        "side by side, {:.1}/s each for {:.0} s: services' CPU per checkout traced {:.3} ms, untraced {:.3} ms; \
         tracing's CPU per span {:.1} µs; ratio by CPU {:.3}",
        paired.rate,
        paired.seconds,
        paired.services_traced_ms,
        paired.services_untraced_ms,
        paired.span_cpu_us,
        paired.services_cpu_ratio
    );
    Ok(std::process::ExitCode::SUCCESS)
}
