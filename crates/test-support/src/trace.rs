//! Assertions on a received trace: finding spans, parent links and orphans, with the tree in every failure message.

pub use trace_model::{SpanKind, SpanRecord};

/// The spans of one trace.
#[derive(Debug, Clone)]
pub struct Trace {
    pub spans: Vec<SpanRecord>,
}

impl Trace {
    pub fn new(spans: Vec<SpanRecord>) -> Self {
        Self { spans }
    }

    /// The tree, for failure messages.
    pub fn render(&self) -> String {
        trace_model::tree::render_all(&self.spans)
    }

    /// The spans of `service` with this name and kind.
    pub fn find(&self, service: &str, kind: SpanKind, name: &str) -> Vec<&SpanRecord> {
        self.spans
            .iter()
            .filter(|span| span.service == service && span.kind == kind && span.name == name)
            .collect()
    }

    /// Whether the trace has such a span.
    pub fn has(&self, service: &str, kind: SpanKind, name: &str) -> bool {
        !self.find(service, kind, name).is_empty()
    }

    /// The one span of `service` with this name and kind; fails if there are none or several.
    pub fn one(&self, service: &str, kind: SpanKind, name: &str) -> &SpanRecord {
        let found = self.find(service, kind, name);
        assert_eq!(
            found.len(),
            1,
            "expected one {service} {kind:?} span {name:?}, found {}:\n{}",
            found.len(),
            self.render()
        );
        found[0]
    }

    /// The span's parent in this trace.
    pub fn parent_of(&self, span: &SpanRecord) -> Option<&SpanRecord> {
        let parent = span.parent_span_id.as_deref()?;
        self.spans.iter().find(|candidate| candidate.span_id == parent)
    }

    /// The spans whose parent is `span`.
    pub fn children_of(&self, span: &SpanRecord) -> Vec<&SpanRecord> {
        self.spans
            .iter()
            .filter(|child| child.parent_span_id.as_deref() == Some(span.span_id.as_str()))
            .collect()
    }

    /// The one child of `parent` from `service` with this name and kind.
    pub fn child(&self, parent: &SpanRecord, service: &str, kind: SpanKind, name: &str) -> &SpanRecord {
        let found: Vec<_> = self
            .children_of(parent)
            .into_iter()
            .filter(|span| span.service == service && span.kind == kind && span.name == name)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one {service} {kind:?} {name:?} under {} {:?}, found {}:\n{}",
            parent.service,
            parent.name,
            found.len(),
            self.render()
        );
        found[0]
    }

    /// Every span has the same trace id as the first, and every parent id names a span of the trace,
    /// except `allowed_root_parent` (the caller's span when the trace was continued from outside).
    pub fn assert_whole(&self, allowed_root_parent: Option<&str>) {
        let trace_id = &self.spans[0].trace_id;
        for span in &self.spans {
            assert_eq!(
                &span.trace_id,
                trace_id,
                "{} {:?} is in another trace:\n{}",
                span.service,
                span.name,
                self.render()
            );
            if let Some(parent) = span.parent_span_id.as_deref()
                && Some(parent) != allowed_root_parent
            {
                assert!(
                    self.spans.iter().any(|candidate| candidate.span_id == parent),
                    "{} {:?} has parent {parent}, which is not in the trace:\n{}",
                    span.service,
                    span.name,
                    self.render()
                );
            }
        }
    }

    /// No span has an error status.
    pub fn assert_no_errors(&self) {
        for span in &self.spans {
            assert!(
                !span.is_error(),
                "{} {:?} has error status {:?}:\n{}",
                span.service,
                span.name,
                span.status,
                self.render()
            );
        }
    }
}
