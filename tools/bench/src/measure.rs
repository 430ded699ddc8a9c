//! What bench and soak share: the stack they load, per-process memory and CPU, and trace bookkeeping.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Duration,
};

use otlp_sink::SpanStore;
use test_support::{ServiceProcess, Stack, StackOptions};
use trace_model::{SpanKind, SpanRecord};

/// Spans one successful checkout produces (the tree of one checkout; how to
/// read it: docs/trace.md, "Reading the trace").
pub(crate) const SPANS_PER_CHECKOUT: usize = 20;

/// The OpenTelemetry SDK's default export schedules (ms): spans, log records, metrics.
pub(crate) const SDK_EXPORT_SCHEDULES: [(&str, &str); 3] = [
    ("OTEL_BSP_SCHEDULE_DELAY", "5000"),
    ("OTEL_BLRP_SCHEDULE_DELAY", "1000"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "60000"),
];

/// The propagators the Kubernetes manifests deploy (the specification's
/// default), in place of test-support's W3C and B3 for callers of either kind.
pub(crate) const DEPLOYED_PROPAGATORS: (&str, &str) = ("OTEL_PROPAGATORS", "tracecontext,baggage");

/// The metric sink the Kubernetes manifests deploy (the specification's
/// default), in place of test-support's two (OTLP and `GET /metrics`).
const DEPLOYED_METRICS_EXPORTER: (&str, &str) = ("OTEL_METRICS_EXPORTER", "otlp");

/// Settings that change the figures, set here on purpose and printed with them.
pub(crate) const SETTINGS: [(&str, &str); 11] = [
    (
        "OTEL_BSP_SCHEDULE_DELAY / OTEL_BLRP_SCHEDULE_DELAY / OTEL_METRIC_EXPORT_INTERVAL",
        "5000 / 1000 / 60000 ms (SDK defaults; runs before 2026-11-21 16:00 UTC kept test-support's 100 / 100 / 500)",
    ),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "2048 (SDK default)"),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512 (SDK default)"),
    ("sampling", "100% (parent-based always-on); one round at 10%"),
    (
        "OTEL_PROPAGATORS",
        "tracecontext,baggage (the specification's default, as Kubernetes deploys; runs before 2026-12-02 20:00 UTC also injected and extracted B3 multi)",
    ),
    (
        "OTEL_METRICS_EXPORTER",
        "otlp (the specification's default, as Kubernetes deploys; runs before 2026-12-02 23:00 UTC also kept every observation for GET /metrics)",
    ),
    (
        "broker",
        "Apache Kafka 4.4.0, KRaft, one node (scripts/kafka-broker.sh, k8s/base/kafka/kraft.env)",
    ),
    (
        "producer linger.ms / acks / idempotence",
        "1 / all / on (the suite's code; librdkafka defaults otherwise)",
    ),
    (
        "consumer session.timeout.ms",
        "6000 (test-support's TEST_CONSUMER_CONFIG; librdkafka defaults otherwise)",
    ),
    ("KAFKA_PUBLISH_TIMEOUT_MS", "5000"),
    ("INITIAL_STOCK", "1000000000 (so load never runs out of stock)"),
];

/// The local stack, with tracing on or off.
pub(crate) async fn stack(tracing: bool) -> Stack {
    stack_with(tracing, &[]).await
}

/// The local stack, with tracing on or off and `extra` variables for every service.
pub(crate) async fn stack_with(tracing: bool, extra: &[(String, String)]) -> Stack {
    let mut env = stack_env(tracing);
    env.extend_from_slice(extra);
    Stack::start_with(StackOptions {
        env,
        ..StackOptions::default()
    })
    .await
}

/// `KEY=VALUE` arguments as variables.
pub(crate) fn env_args(args: impl Iterator<Item = String>) -> anyhow::Result<Vec<(String, String)>> {
    args.map(|arg| {
        arg.split_once('=')
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .ok_or_else(|| anyhow::anyhow!("{arg:?} is not KEY=VALUE"))
    })
    .collect()
}

/// Open-loop load of `GET /checkout` on `stack` at `rate` per second for `duration`.
pub(crate) fn open_loop(stack: &Stack, rate: f64, duration: Duration, slowest: usize) -> loadgen::Config {
    loadgen::Config {
        url: stack.eshop.url("/checkout"),
        load: loadgen::Load::Rate(rate),
        stop: loadgen::Stop::After(duration),
        warmup: Duration::ZERO,
        method: loadgen::Method::Get,
        propagation: loadgen::Propagation::W3c,
        timeout: Duration::from_secs(15),
        progress: false,
        slowest,
    }
}

/// The variables every bench and soak stack runs with.
pub(crate) fn stack_env(tracing: bool) -> Vec<(String, String)> {
    let mut env = vec![("INITIAL_STOCK".to_owned(), "1000000000".to_owned())];
    // The SDK's own export schedules, which the Compose and Kubernetes
    // deployments keep, in place of test-support's quick ones (spans and log
    // records every 100 ms, metrics every 500 ms, so that tests need not wait).
    env.extend(SDK_EXPORT_SCHEDULES.map(|(key, value)| (key.to_owned(), value.to_owned())));
    env.push((DEPLOYED_PROPAGATORS.0.to_owned(), DEPLOYED_PROPAGATORS.1.to_owned()));
    env.push((
        DEPLOYED_METRICS_EXPORTER.0.to_owned(),
        DEPLOYED_METRICS_EXPORTER.1.to_owned(),
    ));
    if !tracing {
        env.push(("OTEL_SDK_DISABLED".to_owned(), "true".to_owned()));
    }
    env
}

pub(crate) fn processes(stack: &Stack) -> [&ServiceProcess; 6] {
    [
        &stack.eshop,
        &stack.inventory,
        &stack.billing,
        &stack.delivery,
        &stack.consumer,
        &stack.notification,
    ]
}

/// Resident memory in MiB, from /proc.
pub(crate) fn rss_mib(process: &ServiceProcess) -> f64 {
    process.pid().map_or(0.0, rss_mib_of)
}

/// A process's resident memory in its two parts (`/proc/PID/status`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// `RssAnon`: heap, stacks, anonymous mappings.
    pub(crate) anonymous_mib: f64,
    /// `RssFile`: file-backed pages, the binary and its libraries.
    pub(crate) file_mib: f64,
}

impl Memory {
    pub(crate) fn resident(&self) -> f64 {
        self.anonymous_mib + self.file_mib
    }
}

pub(crate) fn memory(process: &ServiceProcess) -> Memory {
    let Some(status) = process
        .pid()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
    else {
        return Memory::default();
    };
    Memory {
        anonymous_mib: status_mib(&status, "RssAnon:"),
        file_mib: status_mib(&status, "RssFile:"),
    }
}

/// A `kB` line of `/proc/PID/status`, in MiB.
fn status_mib(status: &str, field: &str) -> f64 {
    status
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

pub(crate) fn rss_mib_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status")).map_or(0.0, |status| status_mib(&status, "VmRSS:"))
}

/// CPU milliseconds per checkout by process between two [`cpu_times`] readings.
pub(crate) fn cpu_ms_per_checkout(
    before: &[(String, Duration)],
    after: &[(String, Duration)],
    checkouts: f64,
) -> Vec<(String, f64)> {
    before
        .iter()
        .zip(after)
        .map(|((name, before), (_, after))| {
            (
                name.clone(),
                (*after - *before).as_secs_f64() * 1_000.0 / checkouts.max(1.0),
            )
        })
        .collect()
}

/// CPU time (user plus system) consumed so far by each process on the
/// checkout path: the six services, the broker, and this process (load
/// generator and OTLP receiver).
pub(crate) fn cpu_times(stack: &Stack) -> Vec<(String, Duration)> {
    let mut times: Vec<(String, Duration)> = processes(stack)
        .iter()
        .map(|process| {
            (
                process.name.clone(),
                process.pid().map_or(Duration::ZERO, |pid| cpu_time(&pid.to_string())),
            )
        })
        .collect();
    times.push((
        "kafka (broker)".to_owned(),
        stack
            .broker
            .pid()
            .map_or(Duration::ZERO, |pid| cpu_time(&pid.to_string())),
    ));
    times.push(("bench (load + OTLP receiver)".to_owned(), cpu_time("self")));
    times
}

/// User plus system CPU time consumed so far by `/proc/{pid}`.
pub(crate) fn cpu_time(pid: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// How often [`settled_traces`] looks at the receiver's store.
const SETTLE_POLL: Duration = Duration::from_millis(500);
/// Looks in a row without a new span after which a trace still short of spans
/// is counted as lost (8 s: longer than the batch span processor's 5 s schedule).
const SETTLE_QUIET_POLLS: u32 = 16;

/// The spans received for each of `trace_ids`, once every one of those traces
/// is complete or nothing new has arrived for eight seconds.
pub(crate) async fn settled_traces(store: &SpanStore, trace_ids: &[String]) -> HashMap<String, Vec<SpanRecord>> {
    let wanted: HashSet<&str> = trace_ids.iter().map(String::as_str).collect();
    let expected = wanted.len() * SPANS_PER_CHECKOUT;
    let mut last_count = usize::MAX;
    let mut quiet = 0;
    loop {
        // Every span of every wanted trace, not just the last one to end: each
        // service exports on its own schedule, so notification's `send email`
        // can arrive before billing's or the consumer's last batch does (the
        // spans "lost" by billing and kafka-consumer in earlier runs were
        // still on their way).
        let (count, received) = store.inspect(|spans| {
            let received = spans
                .iter()
                .filter(|span| wanted.contains(span.trace_id.as_str()))
                .count();
            (spans.len(), received)
        });
        if received >= expected || quiet >= SETTLE_QUIET_POLLS {
            return store.inspect(|spans| {
                let mut traces: HashMap<String, Vec<SpanRecord>> = HashMap::new();
                for span in spans.iter().filter(|span| wanted.contains(span.trace_id.as_str())) {
                    traces.entry(span.trace_id.clone()).or_default().push(span.clone());
                }
                traces
            });
        }
        quiet = if count == last_count { quiet + 1 } else { 0 };
        last_count = count;
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// When the Kafka hop (eshop's PRODUCER span start to notification's `send email` end) began (the PRODUCER span's start, Unix nanoseconds), and its milliseconds.
pub(crate) fn kafka_hop_at(trace: &[SpanRecord]) -> Option<(u64, f64)> {
    let producer = trace
        .iter()
        .find(|span| span.kind == SpanKind::Producer && span.service == "eshop")?;
    let email = trace
        .iter()
        .find(|span| span.service == "notification" && span.name == "send email")?;
    Some((
        producer.start_unix_nanos,
        email.end_unix_nanos.saturating_sub(producer.start_unix_nanos) as f64 / 1e6,
    ))
}

/// p50 and p99 of the Kafka hops that began in the first and in the last
/// `window` of the run: whether the hop grows as the broker holds more records.
pub(crate) fn kafka_hop_first_and_last(hops: &[(u64, f64)], window: Duration) -> [(f64, f64); 2] {
    let (Some(first), Some(last)) = (
        hops.iter().map(|(at, _)| *at).min(),
        hops.iter().map(|(at, _)| *at).max(),
    ) else {
        return [(f64::NAN, f64::NAN); 2];
    };
    let window = window.as_nanos() as u64;
    let quantiles = |keep: &dyn Fn(u64) -> bool| {
        let mut values: Vec<f64> = hops.iter().filter(|(at, _)| keep(*at)).map(|(_, ms)| *ms).collect();
        (quantile(&mut values, 0.5), quantile(&mut values, 0.99))
    };
    [
        quantiles(&|at| at < first + window),
        quantiles(&|at| at + window > last),
    ]
}

/// The Kafka hop in three parts, in milliseconds: waiting for the broker's
/// acknowledgement (the PRODUCER span), from the acknowledgement to the
/// consumer picking the record up, and the consumer's handling (the CONSUMER span).
pub(crate) fn kafka_hop_parts_ms(trace: &[SpanRecord]) -> Option<[f64; 3]> {
    let producer = trace
        .iter()
        .find(|span| span.kind == SpanKind::Producer && span.service == "eshop")?;
    let consumer = trace.iter().find(|span| span.kind == SpanKind::Consumer)?;
    let ms = |nanos: u64| nanos as f64 / 1e6;
    Some([
        ms(producer.duration_nanos()),
        ms(consumer.start_unix_nanos.saturating_sub(producer.end_unix_nanos)),
        ms(consumer.duration_nanos()),
    ])
}

/// The six services' share of [`cpu_ms_per_checkout`]: the sum over the
/// processes a span's CPU is counted in.
pub(crate) fn services_cpu(cpu: &[(String, f64)]) -> f64 {
    cpu.iter()
        .take(crate::run_bench::SPAN_PROCESSES)
        .map(|(_, ms)| ms)
        .sum()
}

/// The names of the Kafka hop's three parts, in [`kafka_hop_parts_ms`]'s order.
pub(crate) const KAFKA_HOP_PARTS: [&str; 3] = [
    "acknowledgement wait (PRODUCER span)",
    "acknowledged -> consumer starts",
    "consumer handling (CONSUMER span)",
];

/// Each part of the hop over `traces`: its name, p50 and p99 in milliseconds.
pub(crate) fn kafka_hop_parts_quantiles<'a>(
    traces: impl Iterator<Item = &'a Vec<SpanRecord>>,
) -> Vec<(String, f64, f64)> {
    let parts: Vec<[f64; 3]> = traces.filter_map(|trace| kafka_hop_parts_ms(trace)).collect();
    KAFKA_HOP_PARTS
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let mut values: Vec<f64> = parts.iter().map(|part| part[i]).collect();
            (
                (*label).to_owned(),
                quantile(&mut values, 0.5),
                quantile(&mut values, 0.99),
            )
        })
        .collect()
}

/// Runs this executable's subcommand `args` (a baseline measured in a
/// process of its own, so that the parent's work is not counted) and returns
/// what it printed.
pub(crate) async fn run_child(args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed: {}",
        args.first().unwrap_or(&"the child"),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The `q` quantile of `values` (sorted in place), nearest rank.
pub(crate) fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

pub(crate) fn median(values: &[f64]) -> f64 {
    quantile(&mut values.to_vec(), 0.5)
}

/// The machine the figures come from.
pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                line.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .next()
                .map(|line| line.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cores} cores ({cpu}), {memory:.0} GiB, everything on one host")
}

/// Spans expected, received and lost by service: the spans per service of a
/// complete trace, times the traces wanted.
pub(crate) fn lost_by_service(traces: &HashMap<String, Vec<SpanRecord>>, wanted: usize) -> Vec<(String, usize, usize)> {
    let per_checkout = traces
        .values()
        .find(|trace| trace.len() == SPANS_PER_CHECKOUT)
        .map(|trace| count_by_service(trace.iter().map(|span| span.service.as_str())))
        .unwrap_or_default();
    let received = count_by_service(traces.values().flatten().map(|span| span.service.as_str()));
    per_checkout
        .into_iter()
        .map(|(service, per)| {
            let got = received.get(&service).copied().unwrap_or(0);
            (service, per * wanted, got)
        })
        .collect()
}

fn count_by_service<'a>(services: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for service in services {
        *counts.entry(service.to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Words the OpenTelemetry SDK's warnings about lost telemetry contain.
const LOSS_WORDS: [&str; 2] = ["dropped", "Dropping"];

/// What the services logged about dropping telemetry, as `service: line`.
pub(crate) fn loss_warnings(stack: &Stack) -> Vec<String> {
    processes(stack)
        .iter()
        .flat_map(|process| {
            process
                .logs()
                .into_iter()
                .filter(|line| LOSS_WORDS.iter().any(|word| line.contains(word)))
                .map(|line| format!("{}: {line}", process.name))
                .collect::<Vec<_>>()
        })
        .collect()
}
