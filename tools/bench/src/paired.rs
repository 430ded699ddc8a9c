//! Tracing's CPU per span with a traced and an untraced stack under the same load at the same time.
//!
//! The half-saturation figure compares an untraced phase with the traced one
//! that follows it, and the saturation rounds alternate; on a shared machine
//! whose speed drifts (a bare HTTP hop cost 26 to 35 µs of CPU across one
//! afternoon's runs), either can move by half between runs. Run side by side,
//! both stacks see the same machine for the whole measurement, so its drift
//! cancels out of the difference.

use std::{path::PathBuf, time::Duration};

use loadgen::{Config, Propagation};
use serde::Serialize;
use test_support::{Stack, StackOptions};

use crate::{
    drain,
    measure::{self, SPANS_PER_CHECKOUT},
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
    let [services_traced_ms, services_untraced_ms] = side_by_side(
        rate,
        duration,
        Propagation::W3c,
        [measure::stack_env(true), measure::stack_env(false)].map(|env| StackOptions {
            env,
            ..StackOptions::default()
        }),
    )
    .await?;
    Ok(Paired {
        rate,
        seconds: duration.as_secs_f64(),
        services_traced_ms,
        services_untraced_ms,
        span_cpu_us: (services_traced_ms - services_untraced_ms) * 1_000.0 / SPANS_PER_CHECKOUT as f64,
        services_cpu_ratio: services_untraced_ms / services_traced_ms,
    })
}

/// Two stacks under the same open-loop load at the same time: the six
/// services' CPU milliseconds per checkout of each.
async fn side_by_side(
    rate: f64,
    duration: Duration,
    propagation: Propagation,
    options: [StackOptions; 2],
) -> anyhow::Result<[f64; 2]> {
    let [a, b] = options;
    let a = Stack::start_with(a).await;
    let b = Stack::start_with(b).await;
    let before = (measure::cpu_times(&a), measure::cpu_times(&b));
    let load = |stack: &Stack| Config {
        propagation,
        ..measure::open_loop(stack, rate, duration, 0)
    };
    let (load_a, load_b) = (load(&a), load(&b));
    let (done_a, done_b) = tokio::join!(loadgen::run(&load_a), loadgen::run(&load_b));
    let (done_a, done_b) = (done_a?, done_b?);
    anyhow::ensure!(
        done_a.errors.is_empty() && done_b.errors.is_empty(),
        "errors side by side: {:?} / {:?}",
        done_a.errors,
        done_b.errors
    );
    drain::until_drained(&a).await?;
    drain::until_drained(&b).await?;
    Ok([
        services_ms(&a, &before.0, (done_a.requests + done_a.warmup_requests) as f64),
        services_ms(&b, &before.1, (done_b.requests + done_b.warmup_requests) as f64),
    ])
}

/// `bench ab RATE SECONDS ROUNDS A B`: two builds (directories holding the
/// six service binaries), traced, side by side at RATE checkouts/s each,
/// ROUNDS times with the sides swapped every other round (the stack started
/// second meets a warmer machine). `A` and `B` may end in
/// `:KEY=VALUE,KEY=VALUE` for variables of that side only, e.g.
/// `target/release:OTEL_PROPAGATORS=b3multi,tracecontext,baggage`, where a
/// comma inside a value is kept when what follows has no `=`. The load sends
/// `propagation`'s headers: W3C (sampled) decides every trace for the
/// services, `none` leaves the decision to eshop's sampler, as compared
/// samplers need.
pub(crate) async fn ab(
    rate: f64,
    duration: Duration,
    rounds: usize,
    sides: [&str; 2],
    propagation: Propagation,
) -> anyhow::Result<std::process::ExitCode> {
    let [a, b] = sides;
    let sides = [side(a), side(b)];
    let mut ms = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let options = order.map(|i| StackOptions {
            env: [measure::stack_env(true), sides[i].1.clone()].concat(),
            binaries: Some(sides[i].0.clone()),
            ..StackOptions::default()
        });
        let figures = side_by_side(rate, duration, propagation, options).await?;
        for (slot, i) in order.into_iter().enumerate() {
            ms[i].push(figures[slot]);
        }
        eprintln!(
            "ab round {}: A {:.3} ms, B {:.3} ms per checkout",
            round + 1,
            ms[0][round],
            ms[1][round]
        );
    }
    let ratios: Vec<f64> = ms[0].iter().zip(&ms[1]).map(|(a, b)| b / a).collect();
    println!(
        "side by side, {rate:.1}/s each for {:.0} s, {rounds} rounds: the six services' CPU per checkout, medians: \
         A {:.3} ms ({a}), B {:.3} ms ({b}); B / A {:.3} (per round {:?})",
        duration.as_secs_f64(),
        measure::median(&ms[0]),
        measure::median(&ms[1]),
        measure::median(&ratios),
        ratios.iter().map(|r| (r * 1000.0).round() / 1000.0).collect::<Vec<_>>()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// `DIR[:KEY=VALUE,...]` as a directory and its variables.
fn side(spec: &str) -> (PathBuf, Vec<(String, String)>) {
    let Some((dir, vars)) = spec.split_once(':') else {
        return (PathBuf::from(spec), Vec::new());
    };
    let mut env: Vec<(String, String)> = Vec::new();
    for piece in vars.split(',') {
        match (piece.split_once('='), env.last_mut()) {
            (Some((key, value)), _) => env.push((key.to_owned(), value.to_owned())),
            (None, Some((_, value))) => {
                value.push(',');
                value.push_str(piece);
            }
            (None, None) => {}
        }
    }
    (PathBuf::from(dir), env)
}

/// The six services' CPU milliseconds per checkout since `before`.
fn services_ms(stack: &Stack, before: &[(String, Duration)], checkouts: f64) -> f64 {
    measure::services_cpu(&measure::cpu_ms_per_checkout(
        before,
        &measure::cpu_times(stack),
        checkouts,
    ))
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
