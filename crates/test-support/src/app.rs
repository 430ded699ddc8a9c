//! A service's app served in-process on a free port, the way its binary serves it.

use std::net::SocketAddr;

use service_kit::ServiceApp;
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

/// Serves `app` (a service's [`ServiceApp`] or any router) on port 0 through
/// [`ServiceApp::serve`], as the binaries do, and returns where. It serves
/// until dropped: its finishing work never runs.
pub async fn spawn_app(app: impl Into<ServiceApp>) -> TestApp {
    let app = app.into();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        app.serve(listener, std::future::pending())
            .await
            .expect("serve test app");
    });
    TestApp {
        addr,
        client: reqwest::Client::new(),
        task,
    }
}
