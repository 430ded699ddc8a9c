//! `make soak`: load at a moderate rate while things break, then a reconciliation of every order.
//!
//! Faults, in order, during 60 s of load at 20 checkouts/s:
//! - at 10 s kafka-consumer is killed with SIGKILL and started again;
//! - at 25 s notification stops answering for ten seconds (frozen with SIGSTOP,
//!   so that its record of what it sent, kept in memory, survives to be counted);
//! - at 45 s the broker freezes (SIGSTOP) for ten seconds, then resumes.
//!
//! The broker is frozen rather than restarted: the embedded Tansu stores in
//! memory, so a restarted Tansu comes back without topics, records or
//! committed offsets, which no Kafka deployment with storage does. Freezing
//! exercises the same client paths (acknowledgement timeouts, 503s with undo,
//! reconnects, a consumer that waits) and keeps the broker's data.

use std::{
    collections::{BTreeMap, HashSet},
    process::ExitCode,
    time::Duration,
};

use loadgen::{Config, Load, Method, Propagation, Stop};
use otlp_sink::SpanKind;
use serde_json::Value;
use test_support::Stack;
use trace_contract as contract;

use crate::measure;

const RATE: f64 = 20.0;
const LOAD_TIME: Duration = Duration::from_secs(60);
const OUTAGE: Duration = Duration::from_secs(10);
/// Units of stock the sample order (`GET /checkout`) reserves.
const UNITS_PER_ORDER: u64 = 3;
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn run() -> anyhow::Result<ExitCode> {
    let mut stack = measure::stack(true).await;
    let config = Config {
        url: stack.eshop.url("/checkout"),
        load: Load::Rate(RATE),
        stop: Stop::After(LOAD_TIME),
        warmup: Duration::ZERO,
        method: Method::Get,
        propagation: Propagation::W3c,
        timeout: Duration::from_secs(15),
        progress: false,
        slowest: 5,
    };
    let load = loadgen::run(&config);
    let faults = inject_faults(&mut stack);
    let (report, ()) = tokio::join!(load, faults);
    let report = report?;
    println!("{}", report.summary());

    let accepted: HashSet<String> = report.accepted.iter().map(|order| order.order_id.clone()).collect();
    let emails = wait_for_emails(&stack, &accepted).await;
    let mut problems = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    counts.insert("checkouts sent", (report.requests + report.warmup_requests) as usize);
    counts.insert("accepted (200)", accepted.len());
    counts.insert("refused", report.errors.values().sum::<u64>() as usize);

    let emailed: HashSet<String> = emails
        .iter()
        .filter_map(|e| e["order_id"].as_str().map(str::to_owned))
        .collect();
    let missing = accepted.difference(&emailed).count();
    let unexpected = emailed.difference(&accepted).count();
    let redelivered = emails
        .iter()
        .filter(|e| e["requests"].as_u64().unwrap_or(1) > 1)
        .count();
    counts.insert("emails sent", emailed.len());
    counts.insert("accepted orders without an email", missing);
    counts.insert("emails for orders not accepted", unexpected);
    counts.insert("emails asked for again (redelivery, not re-sent)", redelivered);
    if missing > 0 {
        let positions: Vec<usize> = report
            .accepted
            .iter()
            .enumerate()
            .filter(|(_, order)| !emailed.contains(&order.order_id))
            .map(|(position, _)| position)
            .collect();
        problems.push(format!(
            "{missing} accepted orders got no email (positions {}..={} of {} in completion order); \
             kafka-consumer's log is in target/bench/soak-kafka-consumer.log",
            positions.first().unwrap_or(&0),
            positions.last().unwrap_or(&0),
            report.accepted.len()
        ));
    }
    std::fs::create_dir_all("target/bench")?;
    std::fs::write("target/bench/soak-kafka-consumer.log", stack.consumer.logs().join("\n"))?;
    if unexpected > 0 {
        problems.push(format!("{unexpected} emails for orders eshop did not accept"));
    }

    let stock = stack.json(&stack.inventory, "/stock").await;
    let reserved: u64 = stock
        .as_array()
        .into_iter()
        .flatten()
        .map(|level| level["reserved"].as_u64().unwrap_or(0))
        .sum();
    counts.insert("units reserved", reserved as usize);
    if reserved != UNITS_PER_ORDER * accepted.len() as u64 {
        problems.push(format!(
            "{reserved} units reserved for {} accepted orders of {UNITS_PER_ORDER}",
            accepted.len()
        ));
    }
    let payments = stack.json(&stack.billing, "/payments").await;
    let charged: HashSet<String> = by_status(&payments, "charged");
    counts.insert("payments charged", charged.len());
    counts.insert("payments refunded", by_status(&payments, "refunded").len());
    if charged != accepted {
        problems.push(format!(
            "charges left for {} orders not accepted, {} accepted orders not charged",
            charged.difference(&accepted).count(),
            accepted.difference(&charged).count()
        ));
    }
    let deliveries = stack.json(&stack.delivery, "/deliveries").await;
    let scheduled = by_status(&deliveries, "scheduled");
    counts.insert("deliveries scheduled", scheduled.len());
    if scheduled != accepted {
        problems.push("scheduled deliveries do not match the accepted orders".to_owned());
    }

    let trace_ids = report.accepted_trace_ids();
    let traces = measure::settled_traces(stack.receiver.store(), &trace_ids).await;
    let reaches_notification = |id: &String| {
        traces.get(id).is_some_and(|trace| {
            trace.iter().any(|span| {
                span.service == "notification" && span.kind == SpanKind::Server && span.name == "POST /sendEmail"
            })
        })
    };
    let unreached = trace_ids.iter().filter(|id| !reaches_notification(id)).count();
    let incomplete: Vec<String> = trace_ids
        .iter()
        .filter_map(|id| {
            let found = traces
                .get(id)
                .map(|trace| contract::check_checkout(trace))
                .unwrap_or_default();
            (!found.is_empty()).then(|| format!("trace {id}: {}", found.join("; ")))
        })
        .collect();
    let retried = traces
        .values()
        .filter(|trace| {
            trace
                .iter()
                .filter(|s| s.kind == SpanKind::Client && s.name == "POST /sendEmail")
                .count()
                > 1
        })
        .count();
    counts.insert(
        "accepted orders whose trace reaches notification",
        trace_ids.len() - unreached,
    );
    counts.insert(
        "of those, traces complete per the contract",
        trace_ids.len() - incomplete.len(),
    );
    counts.insert("traces with a retried email call (same trace)", retried);
    if unreached > 0 {
        problems.push(format!("{unreached} accepted orders' traces do not reach notification"));
    }
    for example in incomplete.iter().take(3) {
        // A process killed with SIGKILL cannot export the spans still in its
        // batch queue; its callees' spans then point at a parent never received.
        println!("incomplete (spans lost with a killed process?): {example}");
    }

    println!("\n## Soak: faults under load\n\n| count | value |\n| --- | --- |");
    for (label, value) in &counts {
        println!("| {label} | {value} |");
    }
    if problems.is_empty() {
        println!("\nOK: nothing lost, nothing sent twice, nothing left behind.");
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &problems {
            println!("PROBLEM: {problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}

async fn inject_faults(stack: &mut Stack) {
    tokio::time::sleep(Duration::from_secs(10)).await;
    eprintln!("soak: SIGKILL kafka-consumer, start it again");
    stack.consumer.restart().await;

    tokio::time::sleep(Duration::from_secs(15)).await;
    eprintln!("soak: notification frozen for {OUTAGE:?}");
    stack.notification.pause();
    tokio::time::sleep(OUTAGE).await;
    stack.notification.resume();

    tokio::time::sleep(Duration::from_secs(10)).await;
    eprintln!("soak: broker frozen for {OUTAGE:?}");
    stack.broker.pause();
    tokio::time::sleep(OUTAGE).await;
    stack.broker.resume();
}

async fn wait_for_emails(stack: &Stack, accepted: &HashSet<String>) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + RECONCILE_TIMEOUT;
    loop {
        let emails = stack.json(&stack.notification, "/sentEmails").await;
        let emails = emails.as_array().cloned().unwrap_or_default();
        let emailed: HashSet<&str> = emails.iter().filter_map(|e| e["order_id"].as_str()).collect();
        if accepted.iter().all(|order| emailed.contains(order.as_str())) || tokio::time::Instant::now() >= deadline {
            return emails;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn by_status(records: &Value, status: &str) -> HashSet<String> {
    records
        .as_array()
        .into_iter()
        .flatten()
        .filter(|record| record["status"] == status)
        .filter_map(|record| record["order_id"].as_str().map(str::to_owned))
        .collect()
}
