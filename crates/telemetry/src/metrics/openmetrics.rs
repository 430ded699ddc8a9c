//! The in-process half of the metrics: every observation kept per series, served as OpenMetrics text with exemplars.
//!
//! The OpenTelemetry Rust SDK keeps no exemplars (opentelemetry-rust #3369), so
//! this store keeps, per histogram bucket, the last observation made inside a
//! sampled span: its value, time, `trace_id` and `span_id`. Rendered per the
//! OpenMetrics 1.0 exposition format (`# {trace_id="…",span_id="…"} value timestamp`
//! after a bucket sample), which is what Prometheus ingests with
//! `--enable-feature=exemplar-storage`.
//!
//! Names follow the OpenTelemetry-to-Prometheus compatibility rules: dots
//! become underscores, a unit of `s` adds `_seconds`, counters get `_total`.

use std::{
    collections::HashMap,
    fmt::Write as _,
    hash::{DefaultHasher, Hash as _, Hasher as _},
    sync::{Arc, Mutex, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use opentelemetry::{
    KeyValue, Value,
    trace::{SpanId, TraceId},
};

/// The content type of [`Exposition::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every family registered in this process, in registration order.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Mutex<Vec<Family>>,
}

#[derive(Debug, Clone)]
enum Family {
    Histogram(Arc<HistogramFamily>),
    Counter(Arc<CounterFamily>),
    Gauge(Arc<GaugeFamily>),
}

/// One histogram instrument: its series by label set.
#[derive(Debug)]
pub struct HistogramFamily {
    name: String,
    unit: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    series: Mutex<SeriesTable<HistogramSeries>>,
}

#[derive(Debug, Clone)]
struct HistogramSeries {
    /// Per bucket, not cumulative; the last one is `+Inf`.
    counts: Vec<u64>,
    exemplars: Vec<Option<Exemplar>>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Clone, Copy)]
struct Exemplar {
    trace_id: TraceId,
    span_id: SpanId,
    value: f64,
    at: SystemTime,
}

/// One counter instrument: its series by label set.
#[derive(Debug)]
pub struct CounterFamily {
    name: String,
    help: &'static str,
    series: Mutex<SeriesTable<u64>>,
}

/// One gauge instrument: the last value of each series.
#[derive(Debug)]
pub struct GaugeFamily {
    name: String,
    help: &'static str,
    series: Mutex<SeriesTable<i64>>,
}

/// At most this many series per family; observations with further label sets
/// go to one series labelled `otel_metric_overflow="true"`, as the
/// OpenTelemetry metrics SDK specification does at its cardinality limit.
pub const MAX_SERIES: usize = 2_000;
/// At most this many distinct attribute sets are remembered per family (two
/// sets can render to the same labels); past it they go to the overflow series.
const MAX_ATTRIBUTE_SETS: usize = 2 * MAX_SERIES;
/// The labels of the series that stands for every one past [`MAX_SERIES`].
const OVERFLOW_LABELS: &str = r#"otel_metric_overflow="true""#;

/// One family's series, by label set.
///
/// An observation finds its series by a hash of its attributes, compared as
/// attributes: recording into an existing series renders no labels and
/// allocates nothing. Rendering the labels on every observation, as this store
/// first did, cost 2,800 of a histogram observation's 4,000 instructions
/// (callgrind, docs/benchmarks.md). Labels are rendered once per new attribute
/// set, and sets that render alike (a status code given as a string once and
/// as an integer once) share their series, as Prometheus would see one.
#[derive(Debug)]
struct SeriesTable<T> {
    /// Each series: its rendered labels (shared, so a scrape copies a pointer) and its value.
    series: Vec<(Arc<str>, T)>,
    by_labels: HashMap<String, usize>,
    /// Each attribute set seen, with the index of its series.
    attribute_sets: Vec<(Vec<KeyValue>, usize)>,
    /// Attribute hash to indexes into `attribute_sets` (more than one only on a collision).
    by_hash: HashMap<u64, Vec<usize>>,
}

impl<T> Default for SeriesTable<T> {
    fn default() -> Self {
        Self {
            series: Vec::new(),
            by_labels: HashMap::new(),
            attribute_sets: Vec::new(),
            by_hash: HashMap::new(),
        }
    }
}

impl<T> SeriesTable<T> {
    /// The series of `attributes`, created with `new` if absent (or the overflow series once full).
    fn get_or_insert_with(&mut self, attributes: &[KeyValue], new: impl Fn() -> T) -> &mut T {
        let hash = hash_attributes(attributes);
        let index = match self.find(hash, attributes) {
            Some(index) => index,
            None => self.add(hash, attributes, &new),
        };
        &mut self.series[index].1
    }

    fn find(&self, hash: u64, attributes: &[KeyValue]) -> Option<usize> {
        self.by_hash
            .get(&hash)?
            .iter()
            .map(|&set| &self.attribute_sets[set])
            .find(|(set, _)| set.as_slice() == attributes)
            .map(|(_, series)| *series)
    }

    /// Remembers a new attribute set and returns its series.
    fn add(&mut self, hash: u64, attributes: &[KeyValue], new: &impl Fn() -> T) -> usize {
        if self.attribute_sets.len() >= MAX_ATTRIBUTE_SETS {
            return self.series_of(OVERFLOW_LABELS.to_owned(), new);
        }
        let mut labels = String::new();
        render_labels(attributes, &mut labels);
        let series = if self.series.len() < MAX_SERIES || self.by_labels.contains_key(&labels) {
            self.series_of(labels, new)
        } else {
            self.series_of(OVERFLOW_LABELS.to_owned(), new)
        };
        self.attribute_sets.push((attributes.to_vec(), series));
        self.by_hash
            .entry(hash)
            .or_default()
            .push(self.attribute_sets.len() - 1);
        series
    }

    /// The series with these labels, created if absent.
    fn series_of(&mut self, labels: String, new: &impl Fn() -> T) -> usize {
        if let Some(&series) = self.by_labels.get(&labels) {
            return series;
        }
        self.series.push((Arc::from(labels.as_str()), new()));
        self.by_labels.insert(labels, self.series.len() - 1);
        self.series.len() - 1
    }
}

impl<T: Clone> SeriesTable<T> {
    /// A copy of each series with its labels, taken under the family's lock
    /// and sorted and formatted after it is released: an observation waits
    /// for a copy of the values, never for a scrape's formatting.
    fn snapshot(&self) -> Vec<(Arc<str>, T)> {
        self.series.clone()
    }
}

/// Sorted by labels, for a stable exposition.
fn sorted<T>(mut series: Vec<(Arc<str>, T)>) -> Vec<(Arc<str>, T)> {
    series.sort_by(|a, b| a.0.cmp(&b.0));
    series
}

/// A hash of an attribute set, keys and values in order.
fn hash_attributes(attributes: &[KeyValue]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for kv in attributes {
        kv.key.hash(&mut hasher);
        match &kv.value {
            Value::String(value) => value.hash(&mut hasher),
            Value::I64(value) => value.hash(&mut hasher),
            Value::Bool(value) => value.hash(&mut hasher),
            Value::F64(value) => value.to_bits().hash(&mut hasher),
            other => other.as_str().hash(&mut hasher),
        }
    }
    hasher.finish()
}

impl Exposition {
    /// Registers a histogram named `otel_name` (OpenTelemetry spelling) with these bucket upper bounds.
    pub fn histogram(
        &self,
        otel_name: &str,
        otel_unit: &'static str,
        help: &'static str,
        bounds: &'static [f64],
    ) -> Arc<HistogramFamily> {
        let (name, unit) = prometheus_name(otel_name, otel_unit);
        let family = Arc::new(HistogramFamily {
            name,
            unit,
            help,
            bounds,
            series: Mutex::default(),
        });
        self.lock().push(Family::Histogram(family.clone()));
        family
    }

    /// Registers a counter named `otel_name` (OpenTelemetry spelling).
    pub fn counter(&self, otel_name: &str, otel_unit: &'static str, help: &'static str) -> Arc<CounterFamily> {
        let (name, _) = prometheus_name(otel_name, otel_unit);
        let family = Arc::new(CounterFamily {
            name,
            help,
            series: Mutex::default(),
        });
        self.lock().push(Family::Counter(family.clone()));
        family
    }

    /// Registers a gauge named `otel_name` (OpenTelemetry spelling).
    pub fn gauge(&self, otel_name: &str, otel_unit: &'static str, help: &'static str) -> Arc<GaugeFamily> {
        let (name, _) = prometheus_name(otel_name, otel_unit);
        let family = Arc::new(GaugeFamily {
            name,
            help,
            series: Mutex::default(),
        });
        self.lock().push(Family::Gauge(family.clone()));
        family
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Family>> {
        self.families.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The whole exposition, ending with `# EOF`.
    pub fn render(&self) -> String {
        let families = self.lock().clone();
        let mut out = String::new();
        for family in families {
            match family {
                Family::Histogram(family) => family.render(&mut out),
                Family::Counter(family) => family.render(&mut out),
                Family::Gauge(family) => family.render(&mut out),
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

impl HistogramFamily {
    /// Adds one observation; `exemplar` names the sampled span it was made in.
    pub fn observe(&self, value: f64, attributes: &[KeyValue], exemplar: Option<(TraceId, SpanId)>) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        let buckets = self.bounds.len() + 1;
        let mut table = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let series = table.get_or_insert_with(attributes, || HistogramSeries {
            counts: vec![0; buckets],
            exemplars: vec![None; buckets],
            sum: 0.0,
            count: 0,
        });
        series.counts[bucket] += 1;
        series.sum += value;
        series.count += 1;
        if let Some((trace_id, span_id)) = exemplar {
            series.exemplars[bucket] = Some(Exemplar {
                trace_id,
                span_id,
                value,
                at: SystemTime::now(),
            });
        }
    }

    fn render(&self, out: &mut String) {
        let name = &self.name;
        let _ = writeln!(out, "# TYPE {name} histogram");
        if !self.unit.is_empty() {
            let _ = writeln!(out, "# UNIT {name} {}", self.unit);
        }
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let series_now = self.series.lock().unwrap_or_else(PoisonError::into_inner).snapshot();
        for (labels, series) in sorted(series_now) {
            let labels = &*labels;
            let separator = if labels.is_empty() { "" } else { "," };
            let mut cumulative = 0;
            for (index, count) in series.counts.iter().enumerate() {
                cumulative += count;
                let _ = write!(out, "{name}_bucket{{{labels}{separator}le=\"");
                match self.bounds.get(index) {
                    // Debug keeps the decimal point (1.0, not 1), OpenMetrics' canonical form.
                    Some(bound) => {
                        let _ = write!(out, "{bound:?}");
                    }
                    None => out.push_str("+Inf"),
                }
                let _ = write!(out, "\"}} {cumulative}");
                if let Some(exemplar) = &series.exemplars[index] {
                    let at = exemplar.at.duration_since(UNIX_EPOCH).unwrap_or_default();
                    let _ = write!(
                        out,
                        " # {{trace_id=\"{}\",span_id=\"{}\"}} {:?} {}.{:03}",
                        exemplar.trace_id,
                        exemplar.span_id,
                        exemplar.value,
                        at.as_secs(),
                        at.subsec_millis()
                    );
                }
                out.push('\n');
            }
            let _ = writeln!(out, "{name}_count{} {}", Braces(labels), series.count);
            let _ = writeln!(out, "{name}_sum{} {:?}", Braces(labels), series.sum);
        }
    }
}

impl CounterFamily {
    pub fn add(&self, value: u64, attributes: &[KeyValue]) {
        let mut table = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        *table.get_or_insert_with(attributes, || 0) += value;
    }

    fn render(&self, out: &mut String) {
        let name = &self.name;
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let series_now = self.series.lock().unwrap_or_else(PoisonError::into_inner).snapshot();
        for (labels, total) in sorted(series_now) {
            let _ = writeln!(out, "{name}_total{} {total}", Braces(&labels));
        }
    }
}

impl GaugeFamily {
    pub fn set(&self, value: i64, attributes: &[KeyValue]) {
        let mut table = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        *table.get_or_insert_with(attributes, || 0) = value;
    }

    fn render(&self, out: &mut String) {
        let name = &self.name;
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let series_now = self.series.lock().unwrap_or_else(PoisonError::into_inner).snapshot();
        for (labels, last) in sorted(series_now) {
            let _ = writeln!(out, "{name}{} {last}", Braces(&labels));
        }
    }
}

/// A rendered label set in braces, or nothing for an empty one.
struct Braces<'a>(&'a str);

impl std::fmt::Display for Braces<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{{{}}}", self.0)
        }
    }
}

/// The Prometheus family name and OpenMetrics unit for an OpenTelemetry name and unit.
fn prometheus_name(otel_name: &str, otel_unit: &'static str) -> (String, &'static str) {
    let mut name = sanitize(otel_name);
    // Units in braces ({message}) are annotations, not units: no suffix.
    let unit = match otel_unit {
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        _ => "",
    };
    if !unit.is_empty() && !name.ends_with(unit) {
        name.push('_');
        name.push_str(unit);
    }
    (name, unit)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect()
}

/// `key="value",...` in the attributes' order, keys sanitised and values escaped.
fn render_labels(attributes: &[KeyValue], out: &mut String) {
    out.clear();
    for (index, kv) in attributes.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        sanitize_into(kv.key.as_str(), out);
        out.push_str("=\"");
        match &kv.value {
            Value::String(value) => escape(value.as_str(), out),
            Value::I64(value) => {
                let _ = write!(out, "{value}");
            }
            Value::Bool(value) => {
                let _ = write!(out, "{value}");
            }
            other => escape(&other.as_str(), out),
        }
        out.push('"');
    }
}

/// A label name as Prometheus spells it: each character not `[a-zA-Z0-9_]` (the
/// conventions' dots) becomes `_`.
fn sanitize_into(key: &str, out: &mut String) {
    for (index, run) in key
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .enumerate()
    {
        if index > 0 {
            out.push('_');
        }
        out.push_str(run);
    }
}

fn escape(value: &str, out: &mut String) {
    // Most values need no escaping and are copied whole.
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: [f64; 3] = [0.005, 0.01, 1.0];

    #[test]
    fn histograms_render_cumulative_buckets_with_exemplars() {
        let exposition = Exposition::default();
        let histogram = exposition.histogram(
            "http.server.request.duration",
            "s",
            "Duration of HTTP server requests.",
            &BOUNDS,
        );
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex");
        let span_id = SpanId::from_hex("00f067aa0ba902b7").expect("hex");
        let attributes = [
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.response.status_code", 200_i64),
        ];
        histogram.observe(0.007, &attributes, Some((trace_id, span_id)));
        histogram.observe(0.002, &attributes, None);
        histogram.observe(3.0, &attributes, None);
        let text = exposition.render();
        let labels = r#"http_request_method="GET",http_response_status_code="200""#;
        assert!(text.starts_with("# TYPE http_server_request_duration_seconds histogram\n# UNIT http_server_request_duration_seconds seconds\n"), "{text}");
        assert!(
            text.contains(&format!(
                "http_server_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "http_server_request_duration_seconds_bucket{{{labels},le=\"0.01\"}} 2 # {{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"}} 0.007 "
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "http_server_request_duration_seconds_bucket{{{labels},le=\"1.0\"}} 2\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "http_server_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("http_server_request_duration_seconds_count{{{labels}}} 3\n")),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn label_names_and_values_are_spelled_as_prometheus_reads_them() {
        let mut out = String::new();
        render_labels(
            &[
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("ünï.x", "a\"b\\c\nd"),
                KeyValue::new("server.port", 8080_i64),
            ],
            &mut out,
        );
        assert_eq!(
            out,
            r#"http_request_method="GET",_n__x="a\"b\\c\nd",server_port="8080""#
        );
    }

    #[test]
    fn attribute_sets_past_the_limit_share_the_overflow_series() {
        let exposition = Exposition::default();
        let counter = exposition.counter("eshop.orders.placed", "{order}", "Orders placed.");
        for id in 0..MAX_SERIES + 5 {
            counter.add(1, &[KeyValue::new("order.id", id.to_string())]);
        }
        // A series created before the limit still counts on its own.
        counter.add(1, &[KeyValue::new("order.id", "0")]);
        let text = exposition.render();
        assert_eq!(
            text.matches("eshop_orders_placed_total{").count(),
            MAX_SERIES + 1,
            "one series per set, then one more"
        );
        assert!(
            text.contains("eshop_orders_placed_total{otel_metric_overflow=\"true\"} 5\n"),
            "{text}"
        );
        assert!(text.contains("eshop_orders_placed_total{order_id=\"0\"} 2\n"), "{text}");
    }

    #[test]
    fn attribute_sets_that_render_alike_share_one_series() {
        let exposition = Exposition::default();
        let counter = exposition.counter("http.client.requests", "{request}", "Requests.");
        counter.add(1, &[KeyValue::new("http.response.status_code", 200_i64)]);
        counter.add(2, &[KeyValue::new("http.response.status_code", "200")]);
        let text = exposition.render();
        assert_eq!(text.matches("http_client_requests_total{").count(), 1, "{text}");
        assert!(
            text.contains("http_client_requests_total{http_response_status_code=\"200\"} 3\n"),
            "{text}"
        );
    }

    #[test]
    fn gauges_keep_the_last_value() {
        let exposition = Exposition::default();
        let gauge = exposition.gauge("eshop.kafka.consumer.lag", "{message}", "Records behind.");
        gauge.set(5, &[KeyValue::new("messaging.destination.partition.id", "0")]);
        gauge.set(0, &[KeyValue::new("messaging.destination.partition.id", "0")]);
        let text = exposition.render();
        assert!(text.contains("# TYPE eshop_kafka_consumer_lag gauge\n"), "{text}");
        assert!(
            text.contains("eshop_kafka_consumer_lag{messaging_destination_partition_id=\"0\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn counters_get_total_and_escaped_labels() {
        let exposition = Exposition::default();
        let counter = exposition.counter("eshop.orders.undone", "{order}", "Orders undone.");
        counter.add(2, &[KeyValue::new("reason", "a \"quoted\"\nreason")]);
        counter.add(1, &[KeyValue::new("reason", "a \"quoted\"\nreason")]);
        exposition
            .counter("eshop.orders.placed", "{order}", "Orders placed.")
            .add(1, &[]);
        let text = exposition.render();
        assert!(text.contains("# TYPE eshop_orders_undone counter\n"), "{text}");
        assert!(
            text.contains("\neshop_orders_placed_total 1\n"),
            "no empty braces: {text}"
        );
        assert!(
            text.contains("eshop_orders_undone_total{reason=\"a \\\"quoted\\\"\\nreason\"} 3\n"),
            "{text}"
        );
    }
}
