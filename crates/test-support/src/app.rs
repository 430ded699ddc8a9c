//! A service's router served in-process on a free port.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

/// An app served on `127.0.0.1:<free port>` until dropped.
#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl TestApp {
    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on port 0 and returns where.
pub async fn spawn_app(router: Router) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .expect("serve test app");
    });
    TestApp {
        addr,
        client: reqwest::Client::new(),
        task,
    }
}
