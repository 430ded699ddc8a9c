//! TLS where a user's deployment needs it, against real TLS servers with a CA
//! made for the test: the OTLP/HTTP and the OTLP/gRPC exporters send spans to an
//! `https://` collector they trust through the SDK's
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`, and eshop calls an `https://` inventory it
//! trusts through `SSL_CERT_FILE`. The HTTP cases also show the other side:
//! without the CA the client refuses the handshake.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use otlp_sink::SpanStore;
use test_support::{HttpsServer, ServiceProcess, Stack, TestCa, WAIT};
use tonic::transport::{Identity, Server, ServerTlsConfig, server::TcpIncoming};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[tokio::test]
async fn spans_reach_an_https_collector_trusted_through_otel_exporter_otlp_certificate() {
    let ca = TestCa::new();
    let store = SpanStore::default();
    let collector = HttpsServer::start(
        otlp_sink::router(otlp_sink::Stores {
            spans: store.clone(),
            ..Default::default()
        }),
        &ca,
    )
    .await;
    let ca_file = ca.ca_file().to_str().expect("utf-8 path").to_owned();
    let delivery = ServiceProcess::start(
        "delivery",
        &env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url()),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca_file),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ]),
    )
    .await;

    // Any request but the probes opens a SERVER span.
    let status = reqwest::get(delivery.url("/no-such-route"))
        .await
        .expect("delivery answers")
        .status();
    assert_eq!(status, 404);
    let span = store
        .wait_for(WAIT, |spans| spans.iter().find(|s| s.service == "delivery").cloned())
        .await
        .expect("delivery's span over HTTPS");
    // No route matched, so the name is the method alone (HTTP semantic conventions).
    assert_eq!((span.kind, span.name.as_str()), (trace_model::SpanKind::Server, "GET"));
    assert!(collector.handshakes() > 0);

    // The same exporter without the CA: the collector's certificate is refused.
    let untrusting = ServiceProcess::start(
        "delivery",
        &env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ]),
    )
    .await;
    reqwest::get(untrusting.url("/no-such-route"))
        .await
        .expect("delivery answers");
    collector.wait_for_failed_handshake().await;
}

#[tokio::test]
async fn eshop_calls_an_https_inventory() {
    let stack = Stack::start().await;
    let ca = TestCa::new();
    // The real inventory, served over TLS with the test CA's certificate.
    let config = inventory::Config::from_env().expect("inventory's defaults");
    let inventory = HttpsServer::start(inventory::app(inventory::AppState::new(&config)), &ca).await;
    let ca_file = ca.ca_file().to_str().expect("utf-8 path").to_owned();
    let eshop_env = |trust: bool| {
        let mut vars = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &stack.receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("KAFKA_BOOTSTRAP_SERVERS", &stack.broker.bootstrap_servers()),
            ("INVENTORY_URL", &inventory.url()),
            ("BILLING_URL", &stack.billing.url("")),
            ("DELIVERY_URL", &stack.delivery.url("")),
        ]);
        if trust {
            // rustls' platform verifier reads the roots through rustls-native-certs,
            // which takes SSL_CERT_FILE instead of the system's bundle.
            vars.push(("SSL_CERT_FILE".to_owned(), ca_file.clone()));
        }
        vars
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    let eshop = ServiceProcess::start("eshop", &eshop_env(true)).await;
    let response = client.get(eshop.url("/checkout")).send().await.expect("eshop answers");
    let status = response.status();
    let body = response.text().await.expect("a body");
    assert_eq!(status, 200, "{body}");
    assert!(inventory.handshakes() > 0, "the order went to inventory over TLS");

    let untrusting = ServiceProcess::start("eshop", &eshop_env(false)).await;
    let response = client
        .get(untrusting.url("/checkout"))
        .send()
        .await
        .expect("eshop answers");
    let status = response.status();
    let body = response.text().await.expect("a body");
    assert_eq!(status, 502, "an untrusted inventory is a failed call: {body}");
    assert!(body.contains("inventory"), "{body}");
    inventory.wait_for_failed_handshake().await;
}

/// An OTLP/gRPC collector: the generated TraceService, storing what it receives.
struct GrpcCollector(SpanStore);

#[tonic::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.push(trace_model::records(request.into_inner()));
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test]
async fn spans_reach_a_grpc_collector_over_tls() {
    let ca = TestCa::new();
    let store = SpanStore::default();
    let (cert, key) = ca.server_pem();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = Server::builder()
        .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
        .expect("TLS settings")
        .add_service(TraceServiceServer::new(GrpcCollector(store.clone())))
        .serve_with_incoming(TcpIncoming::from(listener));
    let server = tokio::spawn(server);

    let ca_file = ca.ca_file().to_str().expect("utf-8 path").to_owned();
    let delivery = ServiceProcess::start(
        "delivery",
        &env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("https://localhost:{port}")),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca_file),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ]),
    )
    .await;
    reqwest::get(delivery.url("/no-such-route"))
        .await
        .expect("delivery answers");
    let span = store
        .wait_for(WAIT, |spans| spans.iter().find(|s| s.service == "delivery").cloned())
        .await
        .expect("delivery's span over gRPC with TLS");
    assert_eq!((span.kind, span.name.as_str()), (trace_model::SpanKind::Server, "GET"));
    server.abort();
}
