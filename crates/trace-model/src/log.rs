//! A log record as a flat record, tied to its span by trace and span id.

use std::collections::BTreeMap;

use crate::AttributeValue;

/// One log record, ids as lowercase hex (`None` when the record has none).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The resource's `service.name`.
    pub service: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub time_unix_nanos: u64,
    pub severity_number: i32,
    pub severity_text: String,
    /// The body as text (a string body as is, anything else as debug text).
    pub body: String,
    pub event_name: String,
    pub attributes: BTreeMap<String, AttributeValue>,
}
