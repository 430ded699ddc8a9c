//! loadgen: drives eshop's `/checkout` and reports throughput and latency percentiles.
//!
//! Examples:
//!   loadgen --concurrency 32 --duration 30s                 (closed loop: saturation)
//!   loadgen --rate 200 --duration 60s --propagation w3c     (open loop: latency at a given rate)
//!   loadgen --rate 50 --requests 1000 --method post --json report.json

use std::{io::IsTerminal as _, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use loadgen::{Config, Load, Method, Propagation, Stop};

#[derive(Debug, Parser)]
#[command(about = "Load generator for eshop's /checkout")]
struct Args {
    /// The checkout URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/checkout")]
    url: String,
    /// Closed loop: this many requests in flight at all times.
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open loop: start this many requests per second, on schedule.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to measure, e.g. 30s, 2m (after the warm-up).
    #[arg(long, value_parser = parse_duration, default_value = "30s", conflicts_with = "requests")]
    duration: Duration,
    /// Stop after this many measured requests instead of after --duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Not counted: load sent before measuring starts.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    warmup: Duration,
    #[arg(long, value_enum, default_value = "get")]
    method: Method,
    /// Send trace headers with a fresh trace id per request, so each one can be found in Jaeger.
    #[arg(long, value_enum, default_value = "w3c")]
    propagation: Propagation,
    /// Give up on a request after this long.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
    /// Report the trace ids of this many slowest requests.
    #[arg(long, default_value_t = 5)]
    slowest: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .trim()
        .split_at(text.trim().find(|c: char| c.is_alphabetic()).unwrap_or(text.len()));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (try 30s, 500ms, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1_000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in {text:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|err| err.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let load = match (args.concurrency, args.rate) {
        (_, Some(rate)) => Load::Rate(rate),
        (Some(workers), None) => Load::Concurrency(workers),
        (None, None) => Load::Concurrency(16),
    };
    let config = Config {
        url: args.url,
        load,
        stop: args.requests.map_or(Stop::After(args.duration), Stop::Requests),
        warmup: args.warmup,
        method: args.method,
        propagation: args.propagation,
        timeout: args.timeout,
        progress: std::io::stderr().is_terminal(),
        slowest: args.slowest,
    };
    let mut report = loadgen::run(&config).await?;
    print!("{}", report.summary());
    if let Some(path) = args.json {
        report.accepted.clear();
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
    }
}
