//! `bench half-load RATE SECONDS`: one open-loop run at a chosen rate, and where spans went missing, by service.
//!
//! The span-loss line of `make bench` says how many spans did not arrive; this
//! says which service's spans they were, and prints what the services logged
//! about dropping them (the SDK's batch processor warns when its queue is full).

use std::{process::ExitCode, time::Duration};

use crate::measure;

pub(crate) async fn run(rate: f64, duration: Duration, extra: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let stack = measure::stack_with(true, extra).await;
    eprintln!("half-load: {rate:.1} checkouts/s for {duration:?}, tracing on");
    let report = loadgen::run(&measure::open_loop(&stack, rate, duration, 0)).await?;
    println!("{}", report.summary());
    let trace_ids = report.accepted_trace_ids();
    let traces = measure::settled_traces(stack.receiver.store(), &trace_ids).await;
    println!("| service | spans expected | received | lost |");
    println!("| --- | --- | --- | --- |");
    for (service, expected, got) in measure::lost_by_service(&traces, trace_ids.len()) {
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
    for (part, p50, p99) in measure::kafka_hop_parts_quantiles(traces.values()) {
        println!("Kafka hop part, {part}: p50 {p50:.1} ms, p99 {p99:.1} ms");
    }
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
    }
    for warning in measure::loss_warnings(&stack) {
        println!("{warning}");
    }
    Ok(ExitCode::SUCCESS)
}
