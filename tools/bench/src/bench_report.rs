//! The report of `make bench`: what one run measured, and the table it prints.

use loadgen::Report;
use serde::Serialize;

use crate::{
    measure::{self, SPANS_PER_CHECKOUT},
    run_bench::{HOP_WINDOW, HTTP_HOPS_PER_CHECKOUT, ROUND_TRIPS},
};

#[derive(Debug, Serialize)]
pub(crate) struct ServiceFigures {
    pub(crate) service: String,
    pub(crate) idle_rss_mib: f64,
    pub(crate) loaded_rss_mib: f64,
    pub(crate) cpu_ms_per_checkout: f64,
}

/// CPU milliseconds one checkout costs a process at saturation, median of the rounds.
#[derive(Debug, Serialize)]
pub(crate) struct CpuShare {
    pub(crate) process: String,
    pub(crate) traced_ms: f64,
    pub(crate) untraced_ms: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct BenchReport {
    pub(crate) machine: String,
    pub(crate) settings: Vec<(String, String)>,
    pub(crate) traced_rps: Vec<f64>,
    pub(crate) untraced_rps: Vec<f64>,
    pub(crate) hop_rps: Vec<f64>,
    pub(crate) traced_median_rps: f64,
    pub(crate) untraced_median_rps: f64,
    pub(crate) traced_over_untraced: f64,
    /// Saturation rounds with a tenth of the traces sampled at the root.
    pub(crate) sampled_tenth_rps: Vec<f64>,
    pub(crate) sampled_tenth_over_untraced: f64,
    /// The six services' untraced over 10%-sampled CPU per checkout at saturation (medians).
    pub(crate) sampled_tenth_cpu_ratio: f64,
    /// Whole checkouts (emailed) per second, load start to the consumer's last commit.
    pub(crate) traced_emailed_rps: Vec<f64>,
    pub(crate) untraced_emailed_rps: Vec<f64>,
    /// Untraced over traced CPU per checkout in the six services at half
    /// saturation: the throughput ratio where CPU is what runs out,
    /// independent of scheduling noise and of the broker's backlog.
    pub(crate) services_cpu_ratio: f64,
    pub(crate) hop_median_rps: f64,
    pub(crate) checkout_vs_hop_budget: f64,
    /// CPU microseconds per bare hop (client and trivial handler, one process), median.
    pub(crate) bare_request_cpu_us: f64,
    /// CPU microseconds per record produced and consumed with the suite's
    /// client settings (both clients, one process, no broker), at the
    /// untraced saturation rate.
    pub(crate) bare_record_cpu_us: f64,
    /// The six services' untraced CPU per checkout at saturation over the
    /// floor: seven bare HTTP hops and one bare produce and consume.
    pub(crate) untraced_services_cpu_vs_floor: f64,
    /// Tracing's CPU per span: the six services at half saturation, traced
    /// minus untraced, over the spans of a checkout.
    pub(crate) span_cpu_us: f64,
    /// The same from the alternating saturation rounds (per-process medians).
    pub(crate) span_cpu_us_at_saturation: f64,
    /// A traced and an untraced stack under the same load at the same time.
    pub(crate) side_by_side: crate::paired::Paired,
    pub(crate) span_cpu_over_bare_side_by_side: f64,
    /// An SDK span built and exported with no tracing layer, in a process of its own.
    pub(crate) bare_span_cpu_us: f64,
    pub(crate) span_cpu_over_bare: f64,
    /// One HTTP hop bare and instrumented by hand on the SDK, no tracing layer.
    pub(crate) hop_baseline: crate::bare_hop::HopCpu,
    /// The suite's tracing CPU per hop (two spans) over that instrumentation's.
    pub(crate) hop_tracing_over_sdk_instrumentation: f64,
    /// One record at a time on a broker of its own, no services: p50 and p99 ms.
    pub(crate) kafka_bare_round_trip_ms: (f64, f64),
    /// The same while other records go to the topic at the half-saturation rate.
    pub(crate) kafka_bare_round_trip_loaded_ms: (f64, f64),
    pub(crate) kafka_background_rate: f64,
    pub(crate) kafka_hop_p50_over_bare: f64,
    /// p50 and p99 of the hops that began in the run's first and last [`HOP_WINDOW`].
    pub(crate) kafka_hop_first_last_ms: [(f64, f64); 2],
    pub(crate) cpu_at_saturation: Vec<CpuShare>,
    /// Seconds of load before the half-saturation run's measured minute.
    pub(crate) half_load_warmup_s: f64,
    pub(crate) half_load: Report,
    pub(crate) checkouts_accepted: usize,
    pub(crate) spans_expected: usize,
    pub(crate) spans_received: usize,
    pub(crate) spans_lost: usize,
    /// Spans lost by the service that made them.
    pub(crate) lost_by_service: Vec<(String, usize)>,
    /// What the services logged about dropping telemetry.
    pub(crate) loss_warnings: Vec<String>,
    pub(crate) traces_complete: usize,
    pub(crate) kafka_hop_p50_ms: f64,
    pub(crate) kafka_hop_p99_ms: f64,
    /// p50 and p99 of: acknowledgement wait, broker to consumer, consumer handling.
    pub(crate) kafka_hop_parts_ms: Vec<(String, f64, f64)>,
    pub(crate) services: Vec<ServiceFigures>,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

pub(crate) fn print_table(r: &BenchReport) {
    let list = |values: &[f64]| values.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(", ");
    println!("\n## Benchmark ({})\n", r.machine);
    println!("| measure | result | target |");
    println!("| --- | --- | --- |");
    println!(
        "| 1. saturation, tracing on (100%, OTLP): answered while the load ran | {:.1} checkouts/s median ({}) | |",
        r.traced_median_rps,
        list(&r.traced_rps)
    );
    println!(
        "| 1. saturation, tracing off (OTEL_SDK_DISABLED): answered while the load ran | {:.1} checkouts/s median ({}) | |",
        r.untraced_median_rps,
        list(&r.untraced_rps)
    );
    println!(
        "| 1. ratio on/off, answered | {:.3} | >= 0.90: {} |",
        r.traced_over_untraced,
        verdict(r.traced_over_untraced >= 0.90)
    );
    println!(
        "| 1. saturation, 10% sampled (parentbased_traceidratio 0.1): answered | {:.1} checkouts/s median ({}) | |",
        measure::median(&r.sampled_tenth_rps),
        list(&r.sampled_tenth_rps)
    );
    println!(
        "| 1. ratio 10% sampled / off, answered | {:.3} | >= 0.97: {} |",
        r.sampled_tenth_over_untraced,
        verdict(r.sampled_tenth_over_untraced >= 0.97)
    );
    println!(
        "| 1. ratio 10% sampled / off by CPU: the six services' untraced / sampled CPU per checkout at saturation | {:.3} | >= 0.97: {} |",
        r.sampled_tenth_cpu_ratio,
        verdict(r.sampled_tenth_cpu_ratio >= 0.97)
    );
    println!(
        "| 1. emailed (load start to the consumer's last commit), tracing on / off | {:.1} ({}) / {:.1} ({}) checkouts/s | |",
        measure::median(&r.traced_emailed_rps),
        list(&r.traced_emailed_rps),
        measure::median(&r.untraced_emailed_rps),
        list(&r.untraced_emailed_rps)
    );
    println!(
        "| 1. ratio on/off by CPU: the six services' untraced / traced CPU per checkout at half saturation | {:.3} | >= 0.90: {} |",
        r.services_cpu_ratio,
        verdict(r.services_cpu_ratio >= 0.90)
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
        "| 2. one bare produce and consume (the suite's client settings, both clients in one process, no broker): CPU per record | {:.1} µs | |",
        r.bare_record_cpu_us
    );
    println!(
        "| 2. the six services' untraced CPU per checkout at saturation / ({HTTP_HOPS_PER_CHECKOUT} bare hops + one bare produce and consume) | {:.2} | <= 2.5: {} |",
        r.untraced_services_cpu_vs_floor,
        verdict(r.untraced_services_cpu_vs_floor <= 2.5)
    );
    println!(
        "| 2. tracing's CPU per span (the six services at half saturation, on minus off, / {SPANS_PER_CHECKOUT}) | {:.1} µs | |",
        r.span_cpu_us
    );
    println!(
        "| 2. the same at saturation (alternating rounds, per-process medians, / {SPANS_PER_CHECKOUT}) | {:.1} µs | |",
        r.span_cpu_us_at_saturation
    );
    let side = &r.side_by_side;
    println!(
        "| 2. the same with a traced and an untraced stack side by side ({:.0}/s each, {:.0} s; services' CPU per checkout {:.3} / {:.3} ms, ratio {:.3}) | {:.1} µs | |",
        side.rate,
        side.seconds,
        side.services_traced_ms,
        side.services_untraced_ms,
        side.services_cpu_ratio,
        side.span_cpu_us
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
    println!(
        "| 2. side-by-side per-span CPU / bare SDK span | {:.2} | |",
        r.span_cpu_over_bare_side_by_side
    );
    println!(
        "| 2. one HTTP hop instrumented by hand on the SDK (CLIENT and SERVER span, W3C, two duration histograms, OTLP export; no tracing layer): CPU per hop, instrumented / bare | {:.1} / {:.1} µs, instrumentation {:.1} µs | |",
        r.hop_baseline.instrumented_us,
        r.hop_baseline.bare_us,
        r.hop_baseline.instrumentation_us()
    );
    println!(
        "| 2. the suite's tracing CPU per hop (2 x per-span CPU) / that instrumentation | {:.2} | <= 1.3: {} |",
        r.hop_tracing_over_sdk_instrumentation,
        verdict(r.hop_tracing_over_sdk_instrumentation <= 1.3)
    );
    let h = &r.half_load;
    println!(
        "| 3. half saturation, {:.1}/s for {:.0} s after {:.0} s of warm-up (the fresh broker's JIT; its checkouts counted for loss, not timed): latency ms | p50 {:.2}, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}; errors {:?} | |",
        h.throughput_rps,
        h.duration_s,
        r.half_load_warmup_s,
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
    if r.spans_lost > 0 {
        let by_service: Vec<String> = r
            .lost_by_service
            .iter()
            .filter(|(_, lost)| *lost > 0)
            .map(|(service, lost)| format!("{service} {lost}"))
            .collect();
        println!("| 3. spans lost by service | {} | |", by_service.join(", "));
    }
    println!(
        "| 3. complete traces (all six services, contract holds) | {} / {} | 100%: {} |",
        r.traces_complete,
        r.checkouts_accepted,
        verdict(r.traces_complete == r.checkouts_accepted)
    );
    println!(
        "| 3. Kafka hop, publish -> email (the measured minute) | p50 {:.1} ms, p99 {:.1} ms | p99 < 50 ms: {} |",
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
    let [(first_p50, first_p99), (last_p50, last_p99)] = r.kafka_hop_first_last_ms;
    println!(
        "| 3. Kafka hop in the first / last {} s of the run, warm-up included (the cold broker / the broker holding more records) | p50 {first_p50:.1} / {last_p50:.1} ms, p99 {first_p99:.1} / {last_p99:.1} ms | |",
        HOP_WINDOW.as_secs()
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
    println!(
        "\nWhere the time goes at saturation (the load and the drain after it): CPU ms per checkout, tracing on / off (medians)\n"
    );
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
    println!(
        "\nWhy a missed target is missed (profiles, instruction counts, what was cut): docs/benchmarks.md, \"Why the CPU targets are missed\"."
    );
    println!("\nSettings:");
    for (key, value) in &r.settings {
        println!("- {key}: {value}");
    }
    if !r.loss_warnings.is_empty() {
        println!("\nWhat the services logged about dropped telemetry:");
        for warning in &r.loss_warnings {
            println!("- {warning}");
        }
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
