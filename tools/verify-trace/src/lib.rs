//! Where Jaeger serves one trace: verify-trace fetches these and reads the answers
//! with `trace_model::jaeger`.

/// Jaeger v2's query API for one trace (OTLP JSON), read by `trace_model::jaeger::read_trace_v3`.
pub const V3_TRACE_PATH: &str = "/api/v3/traces/";
/// Jaeger's UI API for one trace, the fallback, read by `trace_model::jaeger::read_trace`.
pub const V1_TRACE_PATH: &str = "/api/traces/";
