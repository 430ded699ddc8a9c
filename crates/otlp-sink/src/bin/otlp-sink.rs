//! Prints each finished trace as an indented tree, log records under their spans: the trace view of `make run` when no Jaeger runs.
//!
//! Usage: `otlp-sink [ADDR]` (default `127.0.0.1:4318`), then point the services'
//! `OTEL_EXPORTER_OTLP_ENDPOINT` at `http://ADDR`. A trace is printed once no new
//! span or log record has arrived for it for two seconds, and printed again if
//! more arrive. Metrics are accepted and dropped (each service serves its own
//! at `GET /metrics`).

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use otlp_sink::Receiver;
use tokio::time::Instant;
use trace_model::{LogRecord, SpanRecord, tree};

const DEFAULT_ADDR: &str = "127.0.0.1:4318";
/// Quiet time after which a trace counts as finished.
const SETTLE: Duration = Duration::from_secs(2);
/// How long to keep receiving after Ctrl-C, for the spans services flush as they stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Printed traces are forgotten after this long without news, to bound memory.
const FORGET: Duration = Duration::from_secs(120);

struct Pending {
    spans: Vec<SpanRecord>,
    logs: Vec<LogRecord>,
    changed: Instant,
    printed: usize,
}

impl Pending {
    fn received(&self) -> usize {
        self.spans.len() + self.logs.len()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args().nth(1).as_deref().unwrap_or(DEFAULT_ADDR).parse()?;
    let receiver = Receiver::start(addr).await?;
    println!(
        "otlp-sink: receiving OTLP/HTTP traces, metrics and logs at {}",
        receiver.endpoint()
    );

    let mut traces: HashMap<String, Pending> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        collect(&receiver, &mut traces);
        print_finished(&mut traces, SETTLE);
        let now = Instant::now();
        traces.retain(|_, pending| now - pending.changed < FORGET || pending.received() > pending.printed);
    }
    // Ctrl-C reaches the services too; what they flush on their way out
    // arrives within this grace period and is printed before exiting.
    tokio::time::sleep(SHUTDOWN_GRACE).await;
    collect(&receiver, &mut traces);
    print_finished(&mut traces, Duration::ZERO);
    Ok(())
}

fn collect(receiver: &Receiver, traces: &mut HashMap<String, Pending>) {
    let now = Instant::now();
    for span in receiver.store().drain() {
        pending(traces, &span.trace_id, now).spans.push(span);
    }
    for log in receiver.logs().drain() {
        if let Some(trace_id) = log.trace_id.clone() {
            pending(traces, &trace_id, now).logs.push(log);
        }
    }
    receiver.metrics().drain();
}

fn pending<'a>(traces: &'a mut HashMap<String, Pending>, trace_id: &str, now: Instant) -> &'a mut Pending {
    let pending = traces.entry(trace_id.to_owned()).or_insert_with(|| Pending {
        spans: Vec::new(),
        logs: Vec::new(),
        changed: now,
        printed: 0,
    });
    pending.changed = now;
    pending
}

/// Prints every trace with unprinted spans that has been quiet for `settle`.
fn print_finished(traces: &mut HashMap<String, Pending>, settle: Duration) {
    let now = Instant::now();
    for pending in traces.values_mut() {
        if pending.received() > pending.printed && !pending.spans.is_empty() && now - pending.changed >= settle {
            let update = if pending.printed > 0 { " (updated)" } else { "" };
            println!(
                "\n{}{update}",
                tree::render_with_logs(&pending.spans, &pending.logs).trim_end()
            );
            pending.printed = pending.received();
        }
    }
}
