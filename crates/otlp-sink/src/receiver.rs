//! The HTTP side of the receiver: `POST /v1/traces` with a binary protobuf body, as OTLP/HTTP specifies.

use std::{io, net::SocketAddr};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::post,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{SpanStore, decode_export_request};

/// The path OTLP/HTTP exporters post traces to.
pub const TRACES_PATH: &str = "/v1/traces";

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    store: SpanStore,
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
        let store = SpanStore::default();
        let app = router(store.clone());
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("otlp-sink: receiver stopped: {err}");
            }
        });
        Self { addr, store, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter appends `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn store(&self) -> &SpanStore {
        &self.store
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The receiver's routes over `store`, for embedding in another server.
pub fn router(store: SpanStore) -> Router {
    Router::new().route(TRACES_PATH, post(export)).with_state(store)
}

async fn export(State(store): State<SpanStore>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-protobuf") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "only application/x-protobuf is accepted".to_owned(),
        )
            .into_response();
    }
    if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|encoding| encoding != "identity")
    {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "compressed bodies are not accepted".to_owned(),
        )
            .into_response();
    }
    match decode_export_request(&body) {
        Ok(spans) => {
            store.push(spans);
            let response = ExportTraceServiceResponse { partial_success: None }.encode_to_vec();
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                response,
            )
                .into_response()
        }
        Err(err) => (
            StatusCode::BAD_REQUEST,
            format!("not an ExportTraceServiceRequest: {err}"),
        )
            .into_response(),
    }
}
