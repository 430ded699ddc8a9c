//! A load generator for eshop's `/checkout`, usable as a library (by `bench`) and as a binary.
//!
//! Two ways to load: a closed loop (a fixed number of workers, each sending its
//! next request when the last one is answered), which finds saturation
//! throughput; and an open loop (requests start on a fixed schedule whatever
//! happens to earlier ones), which measures latency honestly under load: each
//! latency counts from when the request was *due*, so a stalled server is not
//! hidden by the generator waiting for it (coordinated omission).

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tokio::{task::JoinSet, time::Instant};

/// At most this many requests in flight in open-loop mode; past it the
/// schedule slips, and the slip is charged to latency.
const MAX_IN_FLIGHT: usize = 4_096;

/// How requests are issued.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// This many workers, each with one request in flight.
    Concurrency(usize),
    /// This many requests started per second, on schedule.
    Rate(f64),
}

/// When to stop (warm-up not included).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    After(Duration),
    Requests(u64),
}

/// The W3C baggage every request carries, marking it as generated traffic.
pub const SYNTHETIC_REQUEST_BAGGAGE: &str = "synthetic_request=true";

/// What each request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    /// No trace headers: eshop starts a trace of its own.
    None,
    /// A `traceparent` header with a fresh trace id per request.
    W3c,
    /// A `b3` header with a fresh trace id per request.
    B3,
}

/// `GET /checkout` (the sample order) or `POST /checkout` with a generated order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Get,
    Post,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The full URL, e.g. `http://127.0.0.1:8080/checkout`.
    pub url: String,
    pub load: Load,
    pub stop: Stop,
    pub warmup: Duration,
    pub method: Method,
    pub propagation: Propagation,
    pub timeout: Duration,
    /// Show a progress bar (only sensible on a terminal).
    pub progress: bool,
    /// How many of the slowest requests to report.
    pub slowest: usize,
}

/// One of the slowest requests, to open in Jaeger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slow {
    pub latency_ms: f64,
    pub status: String,
    pub trace_id: Option<String>,
}

/// An order eshop accepted (200), with the trace it was placed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub order_id: String,
    pub trace_id: Option<String>,
    /// Sent during the warm-up: reconciled, but left out of timings.
    #[serde(default)]
    pub warmup: bool,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// What a run measured, warm-up excluded (except `accepted`, which lists every
/// order eshop accepted, warm-up included, for reconciliation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub url: String,
    pub mode: String,
    pub duration_s: f64,
    pub requests: u64,
    pub ok: u64,
    pub throughput_rps: f64,
    pub latency_ms: Percentiles,
    /// By HTTP status, or `timeout` / `connect` / `io` for requests that got none.
    pub errors: BTreeMap<String, u64>,
    pub slowest: Vec<Slow>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub accepted: Vec<Accepted>,
    /// Requests sent during the warm-up (not in the figures above).
    pub warmup_requests: u64,
}

/// Outcome of one request.
struct Outcome {
    due: Instant,
    latency: Duration,
    status: Result<u16, &'static str>,
    trace_id: Option<String>,
    order_id: Option<String>,
}

/// Everything recorded while the run goes on.
struct Recorder {
    measured_from: Instant,
    histogram: Histogram<u64>,
    requests: u64,
    ok: u64,
    warmup: u64,
    errors: BTreeMap<String, u64>,
    slowest: Vec<Slow>,
    keep_slowest: usize,
    accepted: Vec<Accepted>,
}

impl Recorder {
    fn record(&mut self, outcome: Outcome) {
        let warmup = outcome.due < self.measured_from;
        if let (Ok(200), Some(order_id)) = (&outcome.status, outcome.order_id) {
            self.accepted.push(Accepted {
                order_id,
                trace_id: outcome.trace_id.clone(),
                warmup,
            });
        }
        if warmup {
            self.warmup += 1;
            return;
        }
        self.requests += 1;
        let micros = u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX).max(1);
        self.histogram.saturating_record(micros);
        let status = match outcome.status {
            Ok(code) if (200..300).contains(&code) => {
                self.ok += 1;
                code.to_string()
            }
            Ok(code) => {
                *self.errors.entry(code.to_string()).or_default() += 1;
                code.to_string()
            }
            Err(kind) => {
                *self.errors.entry(kind.to_owned()).or_default() += 1;
                kind.to_owned()
            }
        };
        let latency_ms = micros as f64 / 1_000.0;
        if self.keep_slowest > 0
            && (self.slowest.len() < self.keep_slowest
                || self.slowest.last().is_some_and(|slow| slow.latency_ms < latency_ms))
        {
            self.slowest.push(Slow {
                latency_ms,
                status,
                trace_id: outcome.trace_id,
            });
            self.slowest.sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms));
            self.slowest.truncate(self.keep_slowest);
        }
    }
}

/// Runs the load described by `config` and reports what it measured.
pub async fn run(config: &Config) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .pool_max_idle_per_host(1_024)
        .build()
        .context("building the HTTP client")?;
    let start = Instant::now();
    let recorder = Arc::new(Mutex::new(Recorder {
        measured_from: start + config.warmup,
        histogram: Histogram::new_with_bounds(1, 120_000_000, 3).context("histogram bounds")?,
        requests: 0,
        ok: 0,
        warmup: 0,
        errors: BTreeMap::new(),
        slowest: Vec::new(),
        keep_slowest: config.slowest,
        accepted: Vec::new(),
    }));
    let sent = Arc::new(AtomicU64::new(0));
    let progress = config.progress.then(|| progress_bar(recorder.clone(), sent.clone()));

    let deadline = match config.stop {
        Stop::After(duration) => Some(start + config.warmup + duration),
        Stop::Requests(_) => None,
    };
    let limit = match config.stop {
        Stop::Requests(count) => Some(count),
        Stop::After(_) => None,
    };
    let request = Arc::new(RequestMaker {
        client,
        config: config.clone(),
        sequence: AtomicU64::new(0),
    });

    match config.load {
        Load::Concurrency(workers) => {
            let mut tasks = JoinSet::new();
            for _ in 0..workers.max(1) {
                let (request, recorder, sent) = (request.clone(), recorder.clone(), sent.clone());
                tasks.spawn(async move {
                    loop {
                        let due = Instant::now();
                        if deadline.is_some_and(|deadline| due >= deadline) {
                            break;
                        }
                        let measured = lock(&recorder).measured_from;
                        if due >= measured && limit.is_some_and(|limit| sent.load(Ordering::Relaxed) >= limit) {
                            break;
                        }
                        if due >= measured {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        let outcome = request.send(due).await;
                        lock(&recorder).record(outcome);
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        }
        Load::Rate(rate) => {
            anyhow::ensure!(rate > 0.0, "the rate must be positive");
            let interval = Duration::from_secs_f64(1.0 / rate);
            let mut tasks = JoinSet::new();
            let mut index: u32 = 0;
            loop {
                let due = start + interval * index;
                index = index.saturating_add(1);
                if deadline.is_some_and(|deadline| due >= deadline) {
                    break;
                }
                if due >= start + config.warmup {
                    if limit.is_some_and(|limit| sent.load(Ordering::Relaxed) >= limit) {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep_until(due).await;
                while tasks.len() >= MAX_IN_FLIGHT {
                    tasks.join_next().await;
                }
                let (request, recorder) = (request.clone(), recorder.clone());
                tasks.spawn(async move {
                    let outcome = request.send(due).await;
                    lock(&recorder).record(outcome);
                });
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
    }

    let elapsed = Instant::now().saturating_duration_since(start + config.warmup);
    if let Some(progress) = progress {
        progress.abort();
    }
    let recorder = lock(&recorder);
    let histogram = &recorder.histogram;
    let ms = |micros: u64| micros as f64 / 1_000.0;
    let latency = if histogram.is_empty() {
        Percentiles::default()
    } else {
        Percentiles {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1_000.0,
        }
    };
    Ok(Report {
        url: config.url.clone(),
        mode: match config.load {
            Load::Concurrency(workers) => format!("closed loop, {workers} workers"),
            Load::Rate(rate) => format!("open loop, {rate:.1} requests/s"),
        },
        duration_s: elapsed.as_secs_f64(),
        requests: recorder.requests,
        ok: recorder.ok,
        throughput_rps: recorder.requests as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
        latency_ms: latency,
        errors: recorder.errors.clone(),
        slowest: recorder.slowest.clone(),
        accepted: recorder.accepted.clone(),
        warmup_requests: recorder.warmup,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct RequestMaker {
    client: reqwest::Client,
    config: Config,
    sequence: AtomicU64,
}

impl RequestMaker {
    async fn send(&self, due: Instant) -> Outcome {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let request = match self.config.method {
            Method::Get => self.client.get(&self.config.url),
            Method::Post => self.client.post(&self.config.url).json(&generated_order(sequence)),
        };
        // Generated traffic says so, as the OpenTelemetry Demo's load generator
        // does: the services copy this baggage entry onto every span.
        let mut request = request.header("baggage", SYNTHETIC_REQUEST_BAGGAGE);
        let trace_id = match self.config.propagation {
            Propagation::None => None,
            Propagation::W3c | Propagation::B3 => {
                let mut rng = rand::rng();
                let trace_id = format!("{:032x}", rng.random::<u128>() | 1);
                let span_id = format!("{:016x}", rng.random::<u64>() | 1);
                request = if self.config.propagation == Propagation::W3c {
                    request.header("traceparent", format!("00-{trace_id}-{span_id}-01"))
                } else {
                    request.header("b3", format!("{trace_id}-{span_id}-1"))
                };
                Some(trace_id)
            }
        };
        let result = request.send().await;
        let (status, body) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = if status == 200 {
                    response.bytes().await.ok()
                } else {
                    None
                };
                (Ok(status), body)
            }
            Err(err) if err.is_timeout() => (Err("timeout"), None),
            Err(err) if err.is_connect() => (Err("connect"), None),
            Err(_) => (Err("io"), None),
        };
        let latency = Instant::now().saturating_duration_since(due);
        let answered: Option<serde_json::Value> = body.and_then(|body| serde_json::from_slice(&body).ok());
        let field = |name: &str| answered.as_ref().and_then(|v| v[name].as_str()).map(str::to_owned);
        Outcome {
            due,
            latency,
            status,
            trace_id: trace_id.or_else(|| field("trace_id")),
            order_id: field("order_id"),
        }
    }
}

/// A small valid order, different per request; cheap SKUs only, so that
/// billing's credit limit never declines one.
fn generated_order(sequence: u64) -> api::unchecked::CheckoutRequest {
    let cheap: Vec<&api::catalog::Product> = api::catalog::PRODUCTS
        .iter()
        .filter(|product| product.unit_price_cents < 5_000)
        .collect();
    let lines = 1 + (sequence % 3) as usize;
    api::unchecked::CheckoutRequest {
        email: format!("customer{sequence}@example.com"),
        items: (0..lines)
            .map(|line| api::unchecked::OrderLine {
                sku: cheap[(sequence as usize + line) % cheap.len()].sku.to_owned(),
                quantity: 1 + (sequence % 2) as u32,
            })
            .collect(),
    }
}

fn progress_bar(recorder: Arc<Mutex<Recorder>>, sent: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new_spinner();
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let (requests, errors) = {
                let recorder = lock(&recorder);
                (
                    recorder.requests + recorder.warmup,
                    recorder.errors.values().sum::<u64>(),
                )
            };
            let rate = requests as f64 / started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "requests {requests} (measured {}), {rate:.0}/s, errors {errors}",
                sent.load(Ordering::Relaxed)
            ));
            bar.tick();
        }
    })
}

impl Report {
    /// The trace ids of the orders eshop accepted (known when trace headers were sent).
    pub fn accepted_trace_ids(&self) -> Vec<String> {
        self.accepted
            .iter()
            .filter_map(|order| order.trace_id.clone())
            .collect()
    }

    /// The trace ids of the orders eshop accepted after the warm-up: the ones to time.
    pub fn measured_trace_ids(&self) -> Vec<String> {
        self.accepted
            .iter()
            .filter(|order| !order.warmup)
            .filter_map(|order| order.trace_id.clone())
            .collect()
    }

    /// The human-readable summary.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{}: {}\n  {:.1} s, {} requests, {} ok, {:.1} requests/s\n  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
            self.url,
            self.mode,
            self.duration_s,
            self.requests,
            self.ok,
            self.throughput_rps,
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
            self.latency_ms.p999,
            self.latency_ms.max
        );
        if !self.errors.is_empty() {
            let errors: Vec<String> = self
                .errors
                .iter()
                .map(|(kind, count)| format!("{kind}: {count}"))
                .collect();
            out.push_str(&format!("  errors: {}\n", errors.join(", ")));
        }
        for slow in &self.slowest {
            out.push_str(&format!(
                "  slow: {:.2} ms  {}  trace {}\n",
                slow.latency_ms,
                slow.status,
                slow.trace_id.as_deref().unwrap_or("-")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_orders_are_valid_and_vary() {
        for sequence in 0..20 {
            let order = generated_order(sequence);
            assert!(api::CheckoutRequest::try_from(order.clone()).is_ok(), "{order:?}");
        }
        assert_ne!(generated_order(1), generated_order(2));
    }
}
