//! Reading a trace as Jaeger's HTTP APIs return it, into the same span records as OTLP.
//!
//! Jaeger v2's `GET /api/v3/traces/{id}` answers OTLP JSON ([`read_trace_v3`]);
//! the older `GET /api/traces/{id}`, Jaeger v1's UI API and still served by v2,
//! answers its own documents ([`read_trace`]). Fetching them is the caller's job.

mod v1;
mod v3;

pub use v1::read_trace;
pub use v3::read_trace_v3;

/// Why a Jaeger answer could not be read as one trace.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    NotFound(String),
    Malformed(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(id) => write!(f, "Jaeger has no trace {id}"),
            Self::Malformed(why) => write!(f, "not a Jaeger trace document: {why}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Jaeger v1 dropped leading zeros from ids (v2 keeps them); the suite writes 32 (trace) or 16 (span) hex digits.
fn normalize(id: &str) -> String {
    format!("{:0>32}", id.to_ascii_lowercase())
}
