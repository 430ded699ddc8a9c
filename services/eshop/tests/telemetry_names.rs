//! Every name a real run exports over OTLP is in docs/telemetry.md: a registry constant it lists, or an `eshop.*` name it documents.
//!
//! The six services run against a real broker and an in-process OTLP
//! receiver; checkouts of every shape the suite answers (plain, W3C, B3, a
//! valid POST, a malformed body, a 404, an unknown method) make the spans,
//! metrics and log records. Each attribute key, metric name and log event
//! name they carry must be a row of the document's tables, and each row must
//! be a constant of `telemetry::semconv`: the registry's from
//! `opentelemetry-semantic-conventions`, the suite's from `semconv::eshop`.

use std::collections::{BTreeMap, BTreeSet};

use otlp_sink::MetricPoint;
use telemetry::semconv::{self, eshop};
use test_support::{Stack, StackOptions, WAIT};
use trace_model::{AttributeValue, LogRecord, SpanKind};

const DOC: &str = include_str!("../../../docs/telemetry.md");
/// Where a registry row links to.
const REGISTRY_LINK: &str = "](https://opentelemetry.io/docs/specs/semconv/";

/// The names docs/telemetry.md lists, by table.
#[derive(Debug, Default)]
struct Documented {
    attributes: BTreeSet<String>,
    metrics: BTreeSet<String>,
    events: BTreeSet<String>,
    /// Names of registry rows that do not link to the registry.
    unlinked: Vec<String>,
    /// Names the spans, metrics and events tables give as attributes.
    used_as_attributes: BTreeSet<String>,
}

/// The first `code span` of a table cell.
fn first_code(cell: &str) -> Option<&str> {
    let (_, rest) = cell.split_once('`')?;
    rest.split_once('`').map(|(code, _)| code)
}

/// Every `code span` of a table cell.
fn codes(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('`').skip(1).step_by(2)
}

/// The cells of each body row of every table under the `## {heading}` section.
fn rows<'a>(doc: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
    let start = doc
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("docs/telemetry.md has no `## {heading}`"));
    let section = &doc[start + heading.len() + 5..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut rows = Vec::new();
    // Lines of the current table so far: its header and separator come first.
    let mut table_line = 0;
    for line in section.lines() {
        let Some(line) = line.strip_prefix('|') else {
            table_line = 0;
            continue;
        };
        table_line += 1;
        if table_line > 2 {
            rows.push(line.trim_end_matches('|').split(" | ").map(str::trim).collect());
        }
    }
    rows
}

fn documented() -> Documented {
    let mut documented = Documented::default();
    for row in rows(DOC, "Attributes") {
        let name = first_code(row[0])
            .expect("an attribute row names its attribute")
            .to_owned();
        if !name.starts_with("eshop.") && !row[0].contains(REGISTRY_LINK) {
            documented.unlinked.push(name.clone());
        }
        documented.attributes.insert(name);
    }
    for row in rows(DOC, "Metrics") {
        let name = first_code(row[0]).expect("a metric row names its metric").to_owned();
        if !name.starts_with("eshop.") && !row[0].contains(REGISTRY_LINK) {
            documented.unlinked.push(name.clone());
        }
        documented.used_as_attributes.extend(codes(row[5]).map(str::to_owned));
        documented.metrics.insert(name);
    }
    for row in rows(DOC, "Log events") {
        let name = first_code(row[0]).expect("an event row names its event").to_owned();
        documented.used_as_attributes.extend(codes(row[3]).map(str::to_owned));
        documented.events.insert(name);
    }
    for row in rows(DOC, "Spans") {
        documented.used_as_attributes.extend(codes(row[3]).map(str::to_owned));
    }
    documented
}

/// The document against the constants: each row is a constant, each constant a row.
#[test]
fn every_documented_name_is_a_constant_and_every_constant_documented() {
    let documented = documented();
    let mut wrong = Vec::new();
    for name in &documented.attributes {
        let known = if name.starts_with("eshop.") {
            eshop::attribute::ALL.contains(&name.as_str())
        } else {
            semconv::is_registry_attribute(name)
        };
        if !known {
            wrong.push(format!("attribute `{name}` is no constant of telemetry::semconv"));
        }
    }
    for name in &documented.metrics {
        let known = if name.starts_with("eshop.") {
            eshop::metric::ALL.contains(&name.as_str())
        } else {
            semconv::REGISTRY_METRICS.contains(&name.as_str())
        };
        if !known {
            wrong.push(format!("metric `{name}` is no constant of telemetry::semconv"));
        }
    }
    for name in &documented.events {
        if !eshop::event::ALL.contains(&name.as_str()) {
            wrong.push(format!(
                "event `{name}` is no constant of telemetry::semconv::eshop::event"
            ));
        }
    }
    for name in eshop::attribute::ALL.iter().chain(semconv::REGISTRY_ATTRIBUTES) {
        let listed = documented
            .attributes
            .iter()
            .any(|row| row == name || row.strip_prefix(name).is_some_and(|key| key.starts_with('.')));
        if !listed {
            wrong.push(format!("attribute constant `{name}` has no row"));
        }
    }
    for name in eshop::metric::ALL.iter().chain(semconv::REGISTRY_METRICS) {
        if !documented.metrics.contains(*name) {
            wrong.push(format!("metric constant `{name}` has no row"));
        }
    }
    for name in eshop::event::ALL {
        if !documented.events.contains(*name) {
            wrong.push(format!("event constant `{name}` has no row"));
        }
    }
    for name in &documented.used_as_attributes {
        if !documented.attributes.contains(name) {
            wrong.push(format!(
                "`{name}` is given as an attribute but has no row under ## Attributes"
            ));
        }
    }
    for name in &documented.unlinked {
        wrong.push(format!("registry name `{name}` does not link to the registry"));
    }
    assert!(wrong.is_empty(), "docs/telemetry.md:\n{}", wrong.join("\n"));
}

/// Where an exported name was seen, for the failure message.
type Sightings = BTreeMap<String, BTreeSet<String>>;

fn saw(sightings: &mut Sightings, name: &str, place: String) {
    sightings.entry(name.to_owned()).or_default().insert(place);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_run_exports_only_documented_names() {
    // Statistics for every client, producers included: none may reach the log.
    let stack = Stack::start_with(StackOptions {
        env: vec![("KAFKA_CONFIG".to_owned(), "statistics.interval.ms=500".to_owned())],
        ..StackOptions::default()
    })
    .await;

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1";
    for headers in [vec![], vec![("traceparent", traceparent)], vec![("b3", b3)]] {
        assert_eq!(stack.get("/checkout", &headers).await.status(), 200);
    }
    let checkout = stack.eshop.url("/checkout");
    let valid = serde_json::json!({"email": "jane.doe@example.com", "items": [{"sku": "BOOK-RUST", "quantity": 1}]});
    let posted = stack
        .client
        .post(&checkout)
        .json(&valid)
        .send()
        .await
        .expect("eshop answers");
    assert_eq!(posted.status(), 200);
    let malformed = stack
        .client
        .post(&checkout)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("eshop answers");
    assert_eq!(malformed.status(), 400);
    assert_eq!(stack.get("/nowhere", &[]).await.status(), 404);
    let purge = reqwest::Method::from_bytes(b"PURGE").expect("a token");
    let unknown = stack
        .client
        .request(purge, &checkout)
        .send()
        .await
        .expect("eshop answers");
    assert_eq!(unknown.status(), 405);

    // Four orders emailed, and the consumer's lag reported: every signal has had its say.
    let logs = stack
        .receiver
        .logs()
        .wait_for(WAIT, |logs| {
            (logs
                .iter()
                .filter(|log| log.event_name == eshop::event::EMAIL_SENT)
                .count()
                >= 4)
                .then(|| logs.to_vec())
        })
        .await
        .unwrap_or_else(|logs| panic!("four emails never logged: {logs:#?}"));
    let wanted_metrics = [
        eshop::metric::KAFKA_CONSUMER_LAG,
        eshop::metric::EMAILS_SENT,
        semconv::metric::MESSAGING_PROCESS_DURATION,
        semconv::metric::MESSAGING_CLIENT_SENT_MESSAGES,
        semconv::metric::HTTP_SERVER_REQUEST_DURATION,
    ];
    let metrics = stack
        .receiver
        .metrics()
        .wait_for(WAIT, |points| {
            wanted_metrics
                .iter()
                .all(|name| points.iter().any(|point| point.name == *name))
                .then(|| points.to_vec())
        })
        .await
        .unwrap_or_else(|points| panic!("metrics missing: {points:#?}"));
    let spans = stack.receiver.store().spans();
    // Later records too: statistics every 500 ms have had time to be (wrongly) logged.
    let logs = [logs, stack.receiver.logs().all()].concat();

    let documented = documented();
    let mut attributes = Sightings::new();
    let mut events = Sightings::new();
    let mut metric_names = Sightings::new();
    for span in &spans {
        for key in span.attributes.keys() {
            saw(&mut attributes, key, format!("span `{}` ({})", span.name, span.service));
        }
    }
    for log in &logs {
        events
            .entry(log.event_name.clone())
            .or_default()
            .insert(format!("{} {:?}", log.service, log.body));
        for key in log.attributes.keys() {
            saw(
                &mut attributes,
                key,
                format!("log event `{}` ({})", log.event_name, log.service),
            );
        }
    }
    for point in &metrics {
        saw(&mut metric_names, &point.name, point.service.clone());
        for key in point.attributes.keys() {
            saw(
                &mut attributes,
                key,
                format!("metric `{}` ({})", point.name, point.service),
            );
        }
    }

    let mut undocumented = Vec::new();
    for (name, places) in &attributes {
        let constant = if name.starts_with("eshop.") {
            eshop::attribute::ALL.contains(&name.as_str())
        } else {
            semconv::is_registry_attribute(name)
        };
        if !constant || !documented.attributes.contains(name) {
            undocumented.push(format!("attribute `{name}` on {places:?}"));
        }
    }
    for (name, places) in &metric_names {
        let constant =
            eshop::metric::ALL.contains(&name.as_str()) || semconv::REGISTRY_METRICS.contains(&name.as_str());
        if !constant || !documented.metrics.contains(name) {
            undocumented.push(format!("metric `{name}` from {places:?}"));
        }
    }
    for (name, records) in &events {
        if !eshop::event::ALL.contains(&name.as_str()) || !documented.events.contains(name) {
            let some: Vec<_> = records.iter().take(3).collect();
            undocumented.push(format!("log event name `{name}` on {some:?}"));
        }
    }
    assert!(
        undocumented.is_empty(),
        "not in docs/telemetry.md (add a row, and a constant in telemetry::semconv):\n{}",
        undocumented.join("\n")
    );

    assert_recommended_attributes(&stack, &spans, &metrics);
    assert_no_kafka_noise(&logs);
}

/// The attributes the conventions recommend, where the suite knows their values.
fn assert_recommended_attributes(stack: &Stack, spans: &[trace_model::SpanRecord], metrics: &[MetricPoint]) {
    let broker_port = stack
        .broker
        .bootstrap_servers()
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<i64>().ok())
        .expect("the broker's port");
    for name in [
        semconv::metric::MESSAGING_CLIENT_SENT_MESSAGES,
        semconv::metric::MESSAGING_CLIENT_OPERATION_DURATION,
    ] {
        let sent = metrics
            .iter()
            .find(|point| point.service == "eshop" && point.name == name)
            .unwrap_or_else(|| panic!("no {name} from eshop: {metrics:#?}"));
        assert!(
            sent.attribute(semconv::attribute::MESSAGING_DESTINATION_PARTITION_ID)
                .is_some(),
            "{sent:?}"
        );
        assert_eq!(
            sent.attribute(semconv::attribute::SERVER_PORT),
            Some(&AttributeValue::Int(broker_port)),
            "{sent:?}"
        );
        assert!(sent.attribute(semconv::attribute::SERVER_ADDRESS).is_some(), "{sent:?}");
    }
    let processed = metrics
        .iter()
        .find(|point| point.name == semconv::metric::MESSAGING_PROCESS_DURATION)
        .expect("waited for");
    assert_eq!(
        processed.attribute(semconv::attribute::SERVER_PORT),
        Some(&AttributeValue::Int(broker_port)),
        "{processed:?}"
    );
    for name in [
        semconv::metric::HTTP_SERVER_REQUEST_DURATION,
        semconv::metric::HTTP_CLIENT_REQUEST_DURATION,
    ] {
        for point in metrics.iter().filter(|point| point.name == name) {
            assert_eq!(
                point.attribute(semconv::attribute::NETWORK_PROTOCOL_VERSION),
                Some(&AttributeValue::String("1.1".into())),
                "{point:?}"
            );
        }
    }
    let mut clients = spans.iter().filter(|span| span.kind == SpanKind::Client).peekable();
    assert!(clients.peek().is_some(), "no CLIENT span");
    for span in clients {
        let template = span
            .str_attribute(semconv::attribute::URL_TEMPLATE)
            .unwrap_or_else(|| panic!("{span:?}"));
        assert!(span.name.ends_with(&format!(" {template}")), "{span:?}");
    }
    for span in spans
        .iter()
        .filter(|span| matches!(span.kind, SpanKind::Producer | SpanKind::Consumer))
    {
        assert_eq!(
            span.attribute(semconv::attribute::SERVER_PORT),
            Some(&AttributeValue::Int(broker_port)),
            "{span:?}"
        );
    }
}

/// librdkafka speaks through named events: no configuration warnings (each
/// client gets only its own properties) and no statistics JSON.
fn assert_no_kafka_noise(logs: &[LogRecord]) {
    for log in logs {
        assert!(
            log.attributes.get(eshop::attribute::KAFKA_FACILITY) != Some(&AttributeValue::String("CONFWARN".into())),
            "{log:?}"
        );
        assert!(
            !log.body.contains("\"brokers\"") && !log.body.contains("Client stats"),
            "{log:?}"
        );
    }
}
