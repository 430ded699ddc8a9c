//! An HTTP proxy in front of a real service that lets chosen requests through but answers late, drops the answer, or holds the request.
//!
//! This is the ambiguous failure a caller cannot tell apart from a failed
//! call: the service did the step, only the answer went wrong. Requests to
//! other paths (the undo calls) pass untouched, headers and all, so the trace
//! stays whole.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::WAIT;

/// What happens to a request on one of the chosen paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Passed through as it is.
    None,
    /// Forwarded at once; the service's answer is held back this long.
    AnswerLate(Duration),
    /// Forwarded at once; the connection is closed instead of answering.
    DropAnswer,
    /// Held this long before it is forwarded (the caller has given up by then).
    HoldRequest(Duration),
}

#[derive(Debug)]
struct Rules {
    fault: Fault,
    paths: Vec<String>,
    /// `(path, status)` of every answer the service gave to a faulted request.
    answers: Vec<(String, u16)>,
    /// The bodies of those answers, in the same order.
    bodies: Vec<Bytes>,
}

/// A proxy on a free loopback port; stops when dropped.
#[derive(Debug)]
pub struct FlakyProxy {
    pub addr: SocketAddr,
    rules: Arc<Mutex<Rules>>,
    task: tokio::task::JoinHandle<()>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl FlakyProxy {
    /// Proxies to `upstream` (`http://host:port`), passing everything through until [`FlakyProxy::set`].
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let rules = Arc::new(Mutex::new(Rules {
            fault: Fault::None,
            paths: Vec::new(),
            answers: Vec::new(),
            bodies: Vec::new(),
        }));
        let client = reqwest::Client::new();
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let task = tokio::spawn({
            let rules = rules.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (rules, client, upstream) = (rules.clone(), client.clone(), upstream.clone());
                    let service =
                        service_fn(move |request| forward(request, rules.clone(), client.clone(), upstream.clone()));
                    tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
                }
            }
        });
        Self { addr, rules, task }
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// From now on, requests to `paths` meet `fault`. A path matches a
    /// request's path, or its path and the start of its query
    /// (`/payments?order_id=...` matches whatever parameters follow).
    pub fn set(&self, fault: Fault, paths: &[&str]) {
        let mut rules = self.rules();
        rules.fault = fault;
        rules.paths = paths.iter().map(|path| (*path).to_owned()).collect();
    }

    /// The statuses the service answered to faulted requests, in order.
    pub fn answers(&self) -> Vec<(String, u16)> {
        self.rules().answers.clone()
    }

    /// The bodies the service answered to faulted requests, in order, as JSON
    /// (`Null` for a body that is not JSON).
    pub fn answered_bodies(&self) -> Vec<serde_json::Value> {
        self.rules()
            .bodies
            .iter()
            .map(|body| serde_json::from_slice(body).unwrap_or_default())
            .collect()
    }

    /// Waits until the service has answered `count` faulted requests.
    pub async fn wait_for_answers(&self, count: usize) -> Vec<(String, u16)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let answers = self.answers();
            if answers.len() >= count {
                return answers;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {answers:?} answered within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn rules(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    request: Request<Incoming>,
    rules: Arc<Mutex<Rules>>,
    client: reqwest::Client,
    upstream: Arc<str>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let path = request.uri().path().to_owned();
    let path_and_query = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    // A chosen path matches a request's path, or its path and the start of its query (`/payments?order_id=...`).
    let fault = {
        let rules = rules.lock().unwrap_or_else(PoisonError::into_inner);
        let chosen = rules
            .paths
            .iter()
            .any(|chosen| *chosen == path || (chosen.contains('?') && path_and_query.starts_with(chosen.as_str())));
        if chosen { rules.fault } else { Fault::None }
    };
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    // A task of its own: once a request has left, it reaches the service even
    // if the caller gives up and closes the connection (hyper then drops this future).
    let exchange = tokio::spawn(async move {
        if let Fault::HoldRequest(hold) = fault {
            tokio::time::sleep(hold).await;
        }
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut upstream_request = client.request(parts.method, format!("{upstream}{path_and_query}"));
        for (name, value) in &parts.headers {
            if name != hyper::header::HOST {
                upstream_request = upstream_request.header(name, value);
            }
        }
        let answer = upstream_request.body(body).send().await?;
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = answer.bytes().await?;
        if fault != Fault::None {
            let mut rules = rules.lock().unwrap_or_else(PoisonError::into_inner);
            rules.answers.push((path, status.as_u16()));
            rules.bodies.push(body.clone());
        }
        Ok::<_, reqwest::Error>((status, headers, body))
    });
    let (status, headers, body) = exchange.await??;
    match fault {
        Fault::AnswerLate(delay) => tokio::time::sleep(delay).await,
        // An error from the service makes hyper close the connection unanswered.
        Fault::DropAnswer => return Err("answer dropped by the proxy".into()),
        Fault::None | Fault::HoldRequest(_) => {}
    }
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}
