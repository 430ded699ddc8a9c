//! `bench half-load RATE SECONDS`: one open-loop run at a chosen rate, and where spans went missing, by service.
//!
//! The span-loss line of `make bench` says how many spans did not arrive; this
//! says which service's spans they were, and prints what the services logged
//! about dropping them (the SDK's batch processor warns when its queue is full).

use std::{collections::BTreeMap, process::ExitCode, time::Duration};

use crate::measure::{self, SPANS_PER_CHECKOUT};

/// Words the OpenTelemetry SDK's warnings about lost telemetry contain.
const LOSS_WORDS: [&str; 2] = ["dropped", "Dropping"];

pub async fn run(rate: f64, duration: Duration, extra: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let stack = measure::stack_with(true, extra).await;
    eprintln!("half-load: {rate:.1} checkouts/s for {duration:?}, tracing on");
    let report = loadgen::run(&measure::open_loop(&stack, rate, duration, 0)).await?;
    println!("{}", report.summary());
    let trace_ids = report.accepted_trace_ids();
    let traces = measure::settled_traces(stack.receiver.store(), &trace_ids).await;
    // Spans per service in a complete trace, from the first complete one.
    let per_checkout = traces
        .values()
        .find(|trace| trace.len() == SPANS_PER_CHECKOUT)
        .map(|trace| count_by_service(trace.iter().map(|span| span.service.as_str())))
        .unwrap_or_default();
    let received = count_by_service(traces.values().flatten().map(|span| span.service.as_str()));
    println!("| service | spans expected | received | lost |");
    println!("| --- | --- | --- | --- |");
    for (service, per) in &per_checkout {
        let expected = per * trace_ids.len();
        let got = received.get(service).copied().unwrap_or(0);
        println!("| {service} | {expected} | {got} | {} |", expected.saturating_sub(got));
    }
    let timed_hops: Vec<(u64, f64)> = traces
        .values()
        .filter_map(|trace| measure::kafka_hop_at(trace))
        .collect();
    let mut hops: Vec<f64> = timed_hops.iter().map(|(_, ms)| *ms).collect();
    let [(first_p50, first_p99), (last_p50, last_p99)] =
        measure::kafka_hop_first_and_last(&timed_hops, Duration::from_secs(10));
    println!(
        "Kafka hop, publish -> email: p50 {:.1} ms, p99 {:.1} ms; first 10 s p50 {first_p50:.1} p99 {first_p99:.1}, last 10 s p50 {last_p50:.1} p99 {last_p99:.1}",
        measure::quantile(&mut hops, 0.5),
        measure::quantile(&mut hops, 0.99)
    );
    // Shut the services down so that their processors report their totals.
    drop(traces);
    let mut stack = stack;
    for process in [
        &mut stack.eshop,
        &mut stack.inventory,
        &mut stack.billing,
        &mut stack.delivery,
        &mut stack.consumer,
        &mut stack.notification,
    ] {
        process.terminate().await;
        for line in process
            .logs()
            .iter()
            .filter(|line| LOSS_WORDS.iter().any(|w| line.contains(w)))
        {
            println!("{}: {line}", process.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn count_by_service<'a>(services: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for service in services {
        *counts.entry(service.to_owned()).or_insert(0) += 1;
    }
    counts
}
