//! `make bench`: throughput with tracing on and off, one bare HTTP hop, then latency,
//! span loss, the Kafka hop, memory and CPU at half of saturation. One run, one table.

use std::{process::ExitCode, time::Duration};

use axum::{Router, routing::get};
use loadgen::{Config, Load, Method, Propagation, Report, Stop};
use serde::Serialize;
use test_support::spawn_app;
use trace_contract as contract;

use crate::{
    bare_span, kafka_rtt,
    measure::{self, SPANS_PER_CHECKOUT},
};

/// Alternating rounds of tracing on / tracing off / bare hop.
const ROUNDS: usize = 3;
const SATURATION_WORKERS: usize = 32;
const SATURATION_TIME: Duration = Duration::from_secs(10);
const WARMUP: Duration = Duration::from_secs(2);
const HALF_LOAD_TIME: Duration = Duration::from_secs(60);
/// client -> eshop, eshop -> inventory, billing, delivery, kafka-consumer -> notification.
const HTTP_HOPS_PER_CHECKOUT: f64 = 5.0;
const IDLE_SETTLE: Duration = Duration::from_secs(3);
/// Bare Kafka round trips: this many records, one at a time, this far apart.
const ROUND_TRIPS: usize = 200;
const ROUND_TRIP_GAP: Duration = Duration::from_millis(20);
/// The processes a span's CPU is counted in: the six services and the broker,
/// not the bench process (load generator and OTLP receiver).
const SPAN_PROCESSES: usize = 7;

#[derive(Debug, Serialize)]
struct ServiceFigures {
    service: String,
    idle_rss_mib: f64,
    loaded_rss_mib: f64,
    cpu_ms_per_checkout: f64,
}

/// CPU milliseconds one checkout costs a process at saturation, median of the rounds.
#[derive(Debug, Serialize)]
struct CpuShare {
    process: String,
    traced_ms: f64,
    untraced_ms: f64,
}

#[derive(Debug, Serialize)]
struct BenchReport {
    machine: String,
    settings: Vec<(String, String)>,
    traced_rps: Vec<f64>,
    untraced_rps: Vec<f64>,
    hop_rps: Vec<f64>,
    traced_median_rps: f64,
    untraced_median_rps: f64,
    traced_over_untraced: f64,
    hop_median_rps: f64,
    checkout_vs_hop_budget: f64,
    /// CPU microseconds per bare hop (client and trivial handler, one process), median.
    bare_request_cpu_us: f64,
    /// Untraced CPU per checkout (services and broker) over five bare hops' CPU.
    untraced_checkout_cpu_vs_hops: f64,
    /// Tracing's CPU per span: services and broker, traced minus untraced, over the spans of a checkout.
    span_cpu_us: f64,
    /// An SDK span built and exported with no tracing layer, in a process of its own.
    bare_span_cpu_us: f64,
    span_cpu_over_bare: f64,
    /// One record at a time on a broker of its own, no services: p50 and p99 ms.
    kafka_bare_round_trip_ms: (f64, f64),
    /// The same while other records go to the topic at the half-saturation rate.
    kafka_bare_round_trip_loaded_ms: (f64, f64),
    kafka_background_rate: f64,
    kafka_hop_p50_over_bare: f64,
    cpu_at_saturation: Vec<CpuShare>,
    half_load: Report,
    checkouts_accepted: usize,
    spans_expected: usize,
    spans_received: usize,
    spans_lost: usize,
    traces_complete: usize,
    kafka_hop_p50_ms: f64,
    kafka_hop_p99_ms: f64,
    /// p50 and p99 of: acknowledgement wait, broker to consumer, consumer handling.
    kafka_hop_parts_ms: Vec<(String, f64, f64)>,
    services: Vec<ServiceFigures>,
}

fn closed_loop(url: String, propagation: Propagation) -> Config {
    Config {
        url,
        load: Load::Concurrency(SATURATION_WORKERS),
        stop: Stop::After(SATURATION_TIME),
        warmup: WARMUP,
        method: Method::Get,
        propagation,
        timeout: Duration::from_secs(10),
        progress: false,
        slowest: 0,
    }
}

/// One saturation run: throughput, and CPU milliseconds per checkout by process.
async fn saturation(tracing: bool) -> anyhow::Result<(f64, Vec<(String, f64)>)> {
    let stack = measure::stack(tracing).await;
    let before = measure::cpu_times(&stack);
    let report = loadgen::run(&closed_loop(stack.eshop.url("/checkout"), Propagation::None)).await?;
    let after = measure::cpu_times(&stack);
    anyhow::ensure!(
        report.errors.is_empty(),
        "errors at saturation (tracing {tracing}): {:?}",
        report.errors
    );
    let checkouts = (report.requests + report.warmup_requests).max(1) as f64;
    let cpu = before
        .iter()
        .zip(&after)
        .map(|((name, before), (_, after))| (name.clone(), (*after - *before).as_secs_f64() * 1_000.0 / checkouts))
        .collect();
    eprintln!(
        "  checkout, tracing {}: {:.1} checkouts/s",
        if tracing { "on " } else { "off" },
        report.throughput_rps
    );
    Ok((report.throughput_rps, cpu))
}

/// One bare HTTP hop at saturation: throughput, and CPU microseconds per request
/// (load generator and handler, both in this process).
async fn bare_hop() -> anyhow::Result<(f64, f64)> {
    let app = spawn_app(Router::new().route("/hop", get(|| async { "ok" }))).await;
    let before = measure::cpu_time("self");
    let report = loadgen::run(&closed_loop(app.url("/hop"), Propagation::None)).await?;
    let cpu = measure::cpu_time("self").saturating_sub(before);
    let requests = (report.requests + report.warmup_requests).max(1) as f64;
    eprintln!("  bare HTTP hop: {:.1} requests/s", report.throughput_rps);
    Ok((report.throughput_rps, cpu.as_secs_f64() * 1e6 / requests))
}

pub async fn run() -> anyhow::Result<ExitCode> {
    eprintln!(
        "bench: {} rounds of {SATURATION_TIME:?} at {SATURATION_WORKERS} workers, alternating",
        ROUNDS
    );
    let (mut traced, mut untraced, mut hop, mut hop_cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut traced_cpu, mut untraced_cpu) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        eprintln!("round {round}/{ROUNDS}");
        let (rps, cpu) = saturation(true).await?;
        traced.push(rps);
        traced_cpu.push(cpu);
        let (rps, cpu) = saturation(false).await?;
        untraced.push(rps);
        untraced_cpu.push(cpu);
        let (rps, cpu) = bare_hop().await?;
        hop.push(rps);
        hop_cpu.push(cpu);
    }
    let cpu_at_saturation: Vec<CpuShare> = traced_cpu[0]
        .iter()
        .enumerate()
        .map(|(i, (process, _))| CpuShare {
            process: process.clone(),
            traced_ms: measure::median(&traced_cpu.iter().map(|round| round[i].1).collect::<Vec<_>>()),
            untraced_ms: measure::median(&untraced_cpu.iter().map(|round| round[i].1).collect::<Vec<_>>()),
        })
        .collect();
    let traced_median = measure::median(&traced);
    let untraced_median = measure::median(&untraced);
    let hop_median = measure::median(&hop);

    let rate = traced_median / 2.0;
    let span_cpu_us = cpu_at_saturation
        .iter()
        .take(SPAN_PROCESSES)
        .map(|share| share.traced_ms - share.untraced_ms)
        .sum::<f64>()
        * 1_000.0
        / SPANS_PER_CHECKOUT as f64;
    let untraced_checkout_ms: f64 = cpu_at_saturation
        .iter()
        .take(SPAN_PROCESSES)
        .map(|share| share.untraced_ms)
        .sum();
    let bare_request_cpu_us = measure::median(&hop_cpu);
    let bare_span_cpu_us = bare_span::cpu_us_per_span().await?;
    eprintln!("bare Kafka round trip: {ROUND_TRIPS} records, idle and with {rate:.0} others a second");
    let mut round_trip = kafka_rtt::round_trips(ROUND_TRIPS, ROUND_TRIP_GAP, 0.0).await?;
    let mut round_trip_loaded = kafka_rtt::round_trips(ROUND_TRIPS, ROUND_TRIP_GAP, rate).await?;
    let kafka_bare_round_trip_ms = (
        measure::quantile(&mut round_trip, 0.5),
        measure::quantile(&mut round_trip, 0.99),
    );
    let kafka_bare_round_trip_loaded_ms = (
        measure::quantile(&mut round_trip_loaded, 0.5),
        measure::quantile(&mut round_trip_loaded, 0.99),
    );
    eprintln!("half saturation: {rate:.1} checkouts/s for {HALF_LOAD_TIME:?}, tracing on");
    let stack = measure::stack(true).await;
    tokio::time::sleep(IDLE_SETTLE).await;
    let processes = measure::processes(&stack);
    let idle: Vec<f64> = processes.iter().map(|p| measure::rss_mib(p)).collect();
    let cpu_before = measure::cpu_times(&stack);
    let sampler = {
        let pids: Vec<_> = processes.iter().map(|p| p.pid()).collect();
        tokio::spawn(async move {
            let mut peak = vec![0.0f64; pids.len()];
            for _ in 0..(HALF_LOAD_TIME.as_secs() + WARMUP.as_secs()) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                for (slot, pid) in peak.iter_mut().zip(&pids) {
                    *slot = slot.max(pid.map_or(0.0, measure::rss_mib_of));
                }
            }
            peak
        })
    };
    let half = loadgen::run(&Config {
        load: Load::Rate(rate),
        stop: Stop::After(HALF_LOAD_TIME),
        propagation: Propagation::W3c,
        slowest: 5,
        ..closed_loop(stack.eshop.url("/checkout"), Propagation::W3c)
    })
    .await?;
    let loaded = sampler.await?;
    let cpu_after = measure::cpu_times(&stack);
    let checkouts = (half.requests + half.warmup_requests).max(1) as f64;

    let trace_ids = half.accepted_trace_ids();
    let traces = measure::settled_traces(stack.receiver.store(), &trace_ids).await;
    let spans_received: usize = traces.values().map(Vec::len).sum();
    let spans_expected = trace_ids.len() * SPANS_PER_CHECKOUT;
    let complete = traces
        .values()
        .filter(|trace| contract::check_checkout(trace).is_empty())
        .count();
    let mut hops: Vec<f64> = traces
        .values()
        .filter_map(|trace| measure::kafka_hop_ms(trace))
        .collect();
    let parts: Vec<[f64; 3]> = traces
        .values()
        .filter_map(|trace| measure::kafka_hop_parts_ms(trace))
        .collect();
    let kafka_hop_parts_ms = [
        "acknowledgement wait (PRODUCER span)",
        "acknowledged -> consumer starts",
        "consumer handling (CONSUMER span)",
    ]
    .iter()
    .enumerate()
    .map(|(i, label)| {
        let mut values: Vec<f64> = parts.iter().map(|part| part[i]).collect();
        (
            (*label).to_owned(),
            measure::quantile(&mut values, 0.5),
            measure::quantile(&mut values, 0.99),
        )
    })
    .collect();

    let report = BenchReport {
        machine: measure::machine(),
        settings: measure::SETTINGS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        traced_median_rps: traced_median,
        untraced_median_rps: untraced_median,
        traced_over_untraced: traced_median / untraced_median,
        hop_median_rps: hop_median,
        checkout_vs_hop_budget: traced_median / (hop_median / HTTP_HOPS_PER_CHECKOUT),
        bare_request_cpu_us,
        untraced_checkout_cpu_vs_hops: untraced_checkout_ms * 1_000.0 / (HTTP_HOPS_PER_CHECKOUT * bare_request_cpu_us),
        span_cpu_us,
        bare_span_cpu_us,
        span_cpu_over_bare: span_cpu_us / bare_span_cpu_us,
        kafka_bare_round_trip_ms,
        kafka_bare_round_trip_loaded_ms,
        kafka_background_rate: rate,
        cpu_at_saturation,
        traced_rps: traced,
        untraced_rps: untraced,
        hop_rps: hop,
        checkouts_accepted: trace_ids.len(),
        spans_expected,
        spans_received,
        spans_lost: spans_expected.saturating_sub(spans_received),
        traces_complete: complete,
        kafka_hop_p50_ms: measure::quantile(&mut hops, 0.50),
        kafka_hop_p99_ms: measure::quantile(&mut hops, 0.99),
        kafka_hop_p50_over_bare: measure::quantile(&mut hops, 0.50) / kafka_bare_round_trip_ms.0,
        kafka_hop_parts_ms,
        services: processes
            .iter()
            .enumerate()
            .map(|(i, p)| ServiceFigures {
                service: p.name.clone(),
                idle_rss_mib: idle[i],
                loaded_rss_mib: loaded[i],
                cpu_ms_per_checkout: (cpu_after[i].1 - cpu_before[i].1).as_secs_f64() * 1_000.0 / checkouts,
            })
            .collect(),
        half_load: half,
    };
    print_table(&report);
    let mut saved = serde_json::to_value(&report)?;
    saved["half_load"]["accepted"] = serde_json::Value::Null;
    std::fs::create_dir_all("target/bench")?;
    std::fs::write("target/bench/report.json", serde_json::to_vec_pretty(&saved)?)?;
    println!("\n(JSON: target/bench/report.json)");
    Ok(ExitCode::SUCCESS)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn print_table(r: &BenchReport) {
    let list = |values: &[f64]| values.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(", ");
    println!("\n## Benchmark ({})\n", r.machine);
    println!("| measure | result | target |");
    println!("| --- | --- | --- |");
    println!(
        "| 1. saturation, tracing on (100%, OTLP) | {:.1} checkouts/s median ({}) | |",
        r.traced_median_rps,
        list(&r.traced_rps)
    );
    println!(
        "| 1. saturation, tracing off (OTEL_SDK_DISABLED) | {:.1} checkouts/s median ({}) | |",
        r.untraced_median_rps,
        list(&r.untraced_rps)
    );
    println!(
        "| 1. ratio on/off | {:.3} | >= 0.90: {} |",
        r.traced_over_untraced,
        verdict(r.traced_over_untraced >= 0.90)
    );
    println!(
        "| 2. one bare HTTP hop, same client | {:.0} requests/s median ({}) | |",
        r.hop_median_rps,
        list(&r.hop_rps)
    );
    println!(
        "| 2. checkout throughput / (hop throughput / {HTTP_HOPS_PER_CHECKOUT}) | {:.3} | |",
        r.checkout_vs_hop_budget
    );
    println!(
        "| 2. one bare HTTP hop: CPU per request (client and handler, one process) | {:.1} µs median | |",
        r.bare_request_cpu_us
    );
    println!(
        "| 2. untraced checkout CPU (services, broker) / ({HTTP_HOPS_PER_CHECKOUT} x bare hop CPU) | {:.2} | |",
        r.untraced_checkout_cpu_vs_hops
    );
    println!(
        "| 2. tracing's CPU per span (services and broker, on minus off, / {SPANS_PER_CHECKOUT}) | {:.1} µs | |",
        r.span_cpu_us
    );
    println!(
        "| 2. bare SDK span, no tracing layer, batch OTLP export (own process) | {:.1} µs CPU | |",
        r.bare_span_cpu_us
    );
    println!(
        "| 2. per-span CPU / bare SDK span | {:.2} | <= 2: {} |",
        r.span_cpu_over_bare,
        verdict(r.span_cpu_over_bare <= 2.0)
    );
    let h = &r.half_load;
    println!(
        "| 3. half saturation, {:.1}/s for {:.0} s: latency ms | p50 {:.2}, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}; errors {:?} | |",
        h.throughput_rps,
        h.duration_s,
        h.latency_ms.p50,
        h.latency_ms.p90,
        h.latency_ms.p99,
        h.latency_ms.p999,
        h.latency_ms.max,
        h.errors
    );
    println!(
        "| 3. spans received / expected ({} checkouts x {SPANS_PER_CHECKOUT}) | {} / {} (lost {}) | 0 lost: {} |",
        r.checkouts_accepted,
        r.spans_received,
        r.spans_expected,
        r.spans_lost,
        verdict(r.spans_lost == 0)
    );
    println!(
        "| 3. complete traces (all six services, contract holds) | {} / {} | 100%: {} |",
        r.traces_complete,
        r.checkouts_accepted,
        verdict(r.traces_complete == r.checkouts_accepted)
    );
    println!(
        "| 3. Kafka hop, publish -> email | p50 {:.1} ms, p99 {:.1} ms | p99 < 50 ms: {} |",
        r.kafka_hop_p50_ms,
        r.kafka_hop_p99_ms,
        verdict(r.kafka_hop_p99_ms < 50.0)
    );
    println!(
        "| 3. bare Kafka round trip, {ROUND_TRIPS} records one at a time, no services | p50 {:.1} ms, p99 {:.1} ms | |",
        r.kafka_bare_round_trip_ms.0, r.kafka_bare_round_trip_ms.1
    );
    println!(
        "| 3. the same, while {:.0} other records/s go to the topic | p50 {:.1} ms, p99 {:.1} ms | |",
        r.kafka_background_rate, r.kafka_bare_round_trip_loaded_ms.0, r.kafka_bare_round_trip_loaded_ms.1
    );
    println!(
        "| 3. Kafka hop p50 / bare round trip p50 | {:.2} | <= 2: {} |",
        r.kafka_hop_p50_over_bare,
        verdict(r.kafka_hop_p50_over_bare <= 2.0)
    );
    for (part, p50, p99) in &r.kafka_hop_parts_ms {
        println!("| 3. Kafka hop part: {part} | p50 {p50:.1} ms, p99 {p99:.1} ms | |");
    }
    for s in &r.services {
        println!(
            "| 4. {}: RSS idle / under load, CPU per checkout | {:.1} MiB / {:.1} MiB, {:.3} ms | idle < 20 MB: {} |",
            s.service,
            s.idle_rss_mib,
            s.loaded_rss_mib,
            s.cpu_ms_per_checkout,
            verdict(s.idle_rss_mib * 1.048_576 < 20.0)
        );
    }
    println!("\nWhere the time goes at saturation: CPU ms per checkout, tracing on / off (medians)\n");
    println!("| process | tracing on | tracing off | difference |");
    println!("| --- | --- | --- | --- |");
    let (mut on_total, mut off_total) = (0.0, 0.0);
    for share in &r.cpu_at_saturation {
        on_total += share.traced_ms;
        off_total += share.untraced_ms;
        println!(
            "| {} | {:.3} | {:.3} | {:+.3} |",
            share.process,
            share.traced_ms,
            share.untraced_ms,
            share.traced_ms - share.untraced_ms
        );
    }
    println!(
        "| all | {on_total:.3} | {off_total:.3} | {:+.3} |",
        on_total - off_total
    );
    println!("\nSettings:");
    for (key, value) in &r.settings {
        println!("- {key}: {value}");
    }
    if !h.slowest.is_empty() {
        println!("\nSlowest requests at half saturation (trace ids):");
        for slow in &h.slowest {
            println!(
                "- {:.2} ms, {}, trace {}",
                slow.latency_ms,
                slow.status,
                slow.trace_id.as_deref().unwrap_or("-")
            );
        }
    }
}
