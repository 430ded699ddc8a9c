//! Draws a trace as an indented tree: service, span name, kind, duration, errors, links, and each span's log records.

use std::collections::{BTreeMap, HashSet};

use crate::{LogRecord, SpanRecord};

/// One trace as a tree. Spans whose parent is not in `spans` are drawn as roots
/// and say so: the caller's span when a trace was continued from outside, a
/// hole in the trace otherwise.
pub fn render(spans: &[SpanRecord]) -> String {
    render_with_logs(spans, &[])
}

/// [`render`], with each span's log records (those carrying its span id) under it, oldest first.
pub fn render_with_logs(spans: &[SpanRecord], logs: &[LogRecord]) -> String {
    let Some(first) = spans.first() else {
        return String::from("(no spans)\n");
    };
    let ids: HashSet<&str> = spans.iter().map(|span| span.span_id.as_str()).collect();
    let mut children: BTreeMap<Option<&str>, Vec<&SpanRecord>> = BTreeMap::new();
    for span in spans {
        let parent = span.parent_span_id.as_deref().filter(|parent| ids.contains(parent));
        children.entry(parent).or_default().push(span);
    }
    for siblings in children.values_mut() {
        siblings.sort_by_key(|span| span.start_unix_nanos);
    }
    let services: HashSet<&str> = spans.iter().map(|span| span.service.as_str()).collect();
    let start = spans.iter().map(|span| span.start_unix_nanos).min().unwrap_or(0);
    let end = spans.iter().map(|span| span.end_unix_nanos).max().unwrap_or(0);
    let mut out = format!(
        "trace {}  ({} spans, {} services, {})\n",
        first.trace_id,
        spans.len(),
        services.len(),
        millis(end.saturating_sub(start))
    );
    let names: BTreeMap<&str, &SpanRecord> = spans.iter().map(|span| (span.span_id.as_str(), span)).collect();
    let mut span_logs: BTreeMap<&str, Vec<&LogRecord>> = BTreeMap::new();
    for log in logs {
        if let Some(span_id) = log.span_id.as_deref().filter(|id| names.contains_key(id)) {
            span_logs.entry(span_id).or_default().push(log);
        }
    }
    for records in span_logs.values_mut() {
        records.sort_by_key(|log| log.time_unix_nanos);
    }
    let tree = Tree {
        children: &children,
        names: &names,
        logs: &span_logs,
    };
    for root in children.get(&None).into_iter().flatten() {
        draw(&mut out, root, "", "", &tree);
    }
    out
}

struct Tree<'a> {
    children: &'a BTreeMap<Option<&'a str>, Vec<&'a SpanRecord>>,
    names: &'a BTreeMap<&'a str, &'a SpanRecord>,
    logs: &'a BTreeMap<&'a str, Vec<&'a LogRecord>>,
}

/// Every trace among `spans`, in order of their first span.
pub fn render_all(spans: &[SpanRecord]) -> String {
    let mut traces: Vec<(u64, Vec<SpanRecord>)> = Vec::new();
    let mut by_id: BTreeMap<&str, usize> = BTreeMap::new();
    for span in spans {
        let index = *by_id.entry(span.trace_id.as_str()).or_insert_with(|| {
            traces.push((span.start_unix_nanos, Vec::new()));
            traces.len() - 1
        });
        traces[index].0 = traces[index].0.min(span.start_unix_nanos);
        traces[index].1.push(span.clone());
    }
    traces.sort_by_key(|(start, _)| *start);
    traces.iter().map(|(_, trace)| render(trace)).collect()
}

fn draw(out: &mut String, span: &SpanRecord, lead: &str, branch: &str, tree: &Tree<'_>) {
    let names = tree.names;
    let mut line = format!(
        "{lead}{branch}{} {} [{}] {}",
        span.service,
        span.name,
        span.kind.as_str(),
        millis(span.duration_nanos())
    );
    if let crate::SpanStatus::Error(message) = &span.status {
        line.push_str(&format!("  ERROR {message}"));
    }
    if let Some(parent) = span
        .parent_span_id
        .as_deref()
        .filter(|parent| !names.contains_key(parent))
    {
        line.push_str(&format!("  (parent {parent} not received)"));
    }
    for link in &span.links {
        match names.get(link.span_id.as_str()) {
            Some(linked) => line.push_str(&format!("  (follows from {} {})", linked.service, linked.name)),
            None => line.push_str(&format!("  (follows from span {})", link.span_id)),
        }
    }
    out.push_str(&line);
    out.push('\n');
    let child_lead = format!(
        "{lead}{}",
        match branch {
            "" => "",
            "└─ " => "   ",
            _ => "│  ",
        }
    );
    let kids = tree.children.get(&Some(span.span_id.as_str()));
    // Log lines hang under their span, before its children, behind a "·".
    let log_lead = if kids.is_some() { "│  " } else { "   " };
    for log in tree.logs.get(span.span_id.as_str()).into_iter().flatten() {
        out.push_str(&format!("{child_lead}{log_lead}· {} {}", log.severity_text, log.body));
        for (key, value) in &log.attributes {
            match value.as_str() {
                Some(text) => out.push_str(&format!(" {key}={text}")),
                None => out.push_str(&format!(" {key}={}", crate::attribute::display(value))),
            }
        }
        out.push('\n');
    }
    let Some(kids) = kids else {
        return;
    };
    for (index, kid) in kids.iter().enumerate() {
        let branch = if index + 1 == kids.len() { "└─ " } else { "├─ " };
        draw(out, kid, &child_lead, branch, tree);
    }
}

fn millis(nanos: u64) -> String {
    format!("{:.1} ms", nanos as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LinkRecord, LogRecord, SpanKind, SpanStatus};

    fn span(id: &str, parent: Option<&str>, service: &str, name: &str, kind: SpanKind, start: u64) -> SpanRecord {
        SpanRecord {
            trace_id: "t1".into(),
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            name: name.into(),
            kind,
            service: service.into(),
            start_unix_nanos: start,
            end_unix_nanos: start + 2_000_000,
            attributes: Default::default(),
            status: SpanStatus::Unset,
            links: Vec::new(),
            events: Vec::new(),
        }
    }

    #[test]
    fn draws_children_under_parents_in_start_order_with_links_and_orphans() {
        let mut consumer = span(
            "c",
            Some("p"),
            "kafka-consumer",
            "process eshop-topic",
            SpanKind::Consumer,
            40,
        );
        consumer.links.push(LinkRecord {
            trace_id: "t1".into(),
            span_id: "p".into(),
        });
        let spans = vec![
            span("b", Some("a"), "eshop", "POST /payment", SpanKind::Client, 20),
            span("a", None, "eshop", "GET /checkout", SpanKind::Server, 0),
            span("i", Some("a"), "eshop", "POST /createOrder", SpanKind::Client, 10),
            span("p", Some("a"), "eshop", "send eshop-topic", SpanKind::Producer, 30),
            consumer,
            span(
                "x",
                Some("gone"),
                "notification",
                "POST /sendEmail",
                SpanKind::Server,
                50,
            ),
        ];
        let log = |span: &str, body: &str, at: u64| LogRecord {
            service: "eshop".into(),
            trace_id: Some("t1".into()),
            span_id: Some(span.into()),
            time_unix_nanos: at,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: body.into(),
            event_name: String::new(),
            attributes: [("order.id".to_owned(), crate::AttributeValue::String("o-1".into()))].into(),
        };
        let logs = [
            log("a", "order placed", 2),
            log("a", "checkout started", 1),
            log("elsewhere", "not drawn", 0),
        ];
        let drawn = render_with_logs(&spans, &logs);
        let expected = "\
trace t1  (6 spans, 3 services, 2.0 ms)
eshop GET /checkout [SERVER] 2.0 ms
│  · INFO checkout started order.id=o-1
│  · INFO order placed order.id=o-1
├─ eshop POST /createOrder [CLIENT] 2.0 ms
├─ eshop POST /payment [CLIENT] 2.0 ms
└─ eshop send eshop-topic [PRODUCER] 2.0 ms
   └─ kafka-consumer process eshop-topic [CONSUMER] 2.0 ms  (follows from eshop send eshop-topic)
notification POST /sendEmail [SERVER] 2.0 ms  (parent gone not received)
";
        assert_eq!(drawn, expected);
    }
}
