//! Requests to an app under test, answered whole (status, content type, JSON body), and the checks every service's answers share.

use reqwest::StatusCode;
use serde_json::Value;

use crate::TestApp;

/// What a service answered: enough to check a success and a problem alike.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    /// `Null` for an empty body (204).
    pub body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("a readable body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("{status}: not JSON ({err}): {text}"))
        };
        Self {
            status,
            content_type,
            body,
        }
    }

    /// Panics unless this is an RFC 9457 problem of kind `kind` (the slug at
    /// the end of its type URI, whatever the prefix) answered with `status`.
    pub fn assert_problem(&self, status: StatusCode, kind: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        let problem_type = self.body["type"].as_str().unwrap_or_default();
        assert!(
            problem_type.ends_with(&format!(":{kind}")),
            "a {kind} problem: {self:?}"
        );
        assert_eq!(self.body["status"], status.as_u16(), "{self:?}");
    }

    /// The `field` of each violation a 422 `invalid-input` problem lists.
    pub fn violated_fields(&self) -> Vec<&str> {
        self.body["violations"]
            .as_array()
            .map(|violations| violations.iter().filter_map(|v| v["field"].as_str()).collect())
            .unwrap_or_default()
    }
}

impl TestApp {
    /// `POST path` with `body` as JSON.
    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        let response = self.client.post(self.url(path)).json(body).send().await;
        Answer::read(response.expect("the app answers")).await
    }

    /// `POST path` with `body` sent as it is, labelled JSON: for bodies that are not.
    pub async fn post_raw_json(&self, path: &str, body: &str) -> Answer {
        let request = self
            .client
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        Answer::read(request.send().await.expect("the app answers")).await
    }

    /// `GET path` (with its query string).
    pub async fn get(&self, path: &str) -> Answer {
        Answer::read(self.client.get(self.url(path)).send().await.expect("the app answers")).await
    }
}
