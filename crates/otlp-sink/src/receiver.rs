//! The HTTP side of the receiver: `POST /v1/traces`, `/v1/metrics` and `/v1/logs` with binary protobuf bodies, as OTLP/HTTP specifies.

use std::{io, net::SocketAddr};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::post,
};
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceResponse, metrics::v1::ExportMetricsServiceResponse,
    trace::v1::ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::{net::TcpListener, task::JoinHandle};
use trace_model::{LogRecord, decode_export_request, decode_logs_request};

use crate::{MetricPoint, Records, SpanStore, decode_metrics_request};

/// The path OTLP/HTTP exporters post traces to.
pub(crate) const TRACES_PATH: &str = "/v1/traces";
/// The path OTLP/HTTP exporters post metrics to.
pub(crate) const METRICS_PATH: &str = "/v1/metrics";
/// The path OTLP/HTTP exporters post logs to.
pub(crate) const LOGS_PATH: &str = "/v1/logs";

/// What the receiver keeps, one store per signal.
#[derive(Debug, Clone, Default)]
pub struct Stores {
    pub spans: SpanStore,
    pub metrics: Records<MetricPoint>,
    pub logs: Records<LogRecord>,
}

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    stores: Stores,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Listens on `addr` (port 0 picks a free port) and serves in the background.
    pub async fn start(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self::serve(listener))
    }

    /// Serves on an already bound listener.
    pub fn serve(listener: TcpListener) -> Self {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let stores = Stores::default();
        let app = router(stores.clone());
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("otlp-sink: receiver stopped: {err}");
            }
        });
        Self { addr, stores, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporters append `/v1/traces`, ...).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The spans received.
    pub fn store(&self) -> &SpanStore {
        &self.stores.spans
    }

    /// The metric points received.
    pub fn metrics(&self) -> &Records<MetricPoint> {
        &self.stores.metrics
    }

    /// The log records received.
    pub fn logs(&self) -> &Records<LogRecord> {
        &self.stores.logs
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The receiver's routes over `stores`, for embedding in another server.
pub fn router(stores: Stores) -> Router {
    Router::new()
        .route(TRACES_PATH, post(export_traces))
        .route(METRICS_PATH, post(export_metrics))
        .route(LOGS_PATH, post(export_logs))
        .with_state(stores)
}

async fn export_traces(State(stores): State<Stores>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    if let Some(refused) = refuse(&headers) {
        return refused;
    }
    match decode_export_request(&body) {
        Ok(spans) => {
            stores.spans.push(spans);
            accepted(ExportTraceServiceResponse { partial_success: None }.encode_to_vec())
        }
        Err(err) => bad_request("ExportTraceServiceRequest", &err),
    }
}

async fn export_metrics(State(stores): State<Stores>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    if let Some(refused) = refuse(&headers) {
        return refused;
    }
    match decode_metrics_request(&body) {
        Ok(points) => {
            stores.metrics.push(points);
            accepted(ExportMetricsServiceResponse { partial_success: None }.encode_to_vec())
        }
        Err(err) => bad_request("ExportMetricsServiceRequest", &err),
    }
}

async fn export_logs(State(stores): State<Stores>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    if let Some(refused) = refuse(&headers) {
        return refused;
    }
    match decode_logs_request(&body) {
        Ok(records) => {
            stores.logs.push(records);
            accepted(ExportLogsServiceResponse { partial_success: None }.encode_to_vec())
        }
        Err(err) => bad_request("ExportLogsServiceRequest", &err),
    }
}

fn accepted(response: Vec<u8>) -> axum::response::Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        response,
    )
        .into_response()
}

fn bad_request(what: &str, err: &prost::DecodeError) -> axum::response::Response {
    (StatusCode::BAD_REQUEST, format!("not an {what}: {err}")).into_response()
}

/// Only binary protobuf, uncompressed, is accepted (what the services send).
fn refuse(headers: &HeaderMap) -> Option<axum::response::Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-protobuf") {
        return Some(
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "only application/x-protobuf is accepted".to_owned(),
            )
                .into_response(),
        );
    }
    if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|encoding| encoding != "identity")
    {
        return Some(
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "compressed bodies are not accepted".to_owned(),
            )
                .into_response(),
        );
    }
    None
}
