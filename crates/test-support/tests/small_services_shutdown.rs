//! SIGTERM on the real inventory, billing, delivery and notification binaries:
//! each stops accepting, answers the request it is in the middle of, exports
//! its spans, and exits 0.

use std::net::SocketAddr;

use otlp_sink::Receiver;
use test_support::{ServiceProcess, SpanKind, WAIT};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

/// Each service and the POST its callers make.
const SERVICES: [(&str, &str); 4] = [
    ("inventory", "/createOrder"),
    ("billing", "/payment"),
    ("delivery", "/arrangeDelivery"),
    ("notification", "/sendEmail"),
];

#[tokio::test]
async fn each_small_service_answers_the_request_in_flight_flushes_its_spans_and_exits_zero_on_sigterm() {
    for (name, path) in SERVICES {
        let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("receiver");
        let mut service = ServiceProcess::start(
            name,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), receiver.endpoint()),
                // Nothing is exported before shutdown: what arrives was flushed by it.
                ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "600000".to_owned()),
            ],
        )
        .await;
        // A request whose handler is reading its body when the signal comes:
        // in flight. With `expect: 100-continue` the server says when it
        // starts reading the body, and the body is sent only after the signal.
        let body = br#"{"order_id": "not an order"}"#;
        let mut client = TcpStream::connect(service.addr).await.expect("connect");
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {name}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
            body.len()
        );
        client.write_all(request.as_bytes()).await.expect("head sent");
        let mut interim = [0; 25];
        tokio::time::timeout(WAIT, client.read_exact(&mut interim))
            .await
            .expect("100 Continue within WAIT")
            .expect("an interim answer");
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n", "{name}");

        service.send_sigterm();
        service.wait_until_refusing().await;
        client.write_all(body).await.expect("the body sent");
        let mut answer = String::new();
        tokio::time::timeout(WAIT, client.read_to_string(&mut answer))
            .await
            .expect("answered within WAIT")
            .expect("an answer");
        assert!(
            answer.starts_with("HTTP/1.1 4"),
            "{name}: the request in flight is answered (a 4xx for this body): {answer}"
        );
        let status = service.exited().await;
        assert!(status.success(), "{name} exits 0 on SIGTERM: {status:?}");
        assert!(
            receiver.store().spans().iter().any(|span| span.service == name
                && span.kind == SpanKind::Server
                && span.name == format!("POST {path}")),
            "{name}: the request's SERVER span was exported at shutdown"
        );
    }
}
