//! RFC 9457 problem details: the one shape every error response of the suite has.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

/// The media type of a problem details body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An `application/problem+json` body. Turning it into a response is where
/// every service logs its errors, so each failure is logged exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// A URN naming the kind of problem, e.g. `urn:eshop:problem:out-of-stock`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Members beyond the standard ones, e.g. `service` or `violations`.
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// A problem of kind `slug` (a short kebab-case name) answered with `status`.
    pub fn new(status: StatusCode, slug: &str, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            problem_type: format!("urn:eshop:problem:{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            extensions: serde_json::Map::new(),
        }
    }

    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.extensions.insert(key.to_owned(), value);
        self
    }

    /// The `422` answer to input that breaks the rules in [`api::validation`].
    pub fn invalid_input(violations: &[api::validation::Violation]) -> Self {
        let detail = violations
            .iter()
            .map(|violation| format!("{}: {}", violation.field, violation.reason))
            .collect::<Vec<_>>()
            .join("; ");
        let listed: Vec<_> = violations
            .iter()
            .map(|violation| serde_json::json!({ "field": violation.field, "reason": violation.reason }))
            .collect();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "The request breaks the rules",
            detail,
        )
        .with("violations", listed)
    }

    /// The `409` answer to a step (reserve, charge, schedule) for an order
    /// that was already cancelled: the undo overtook it, so it must not happen.
    pub fn order_cancelled(order_id: uuid::Uuid) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "order-cancelled",
            "The order was cancelled",
            format!("order {order_id} was cancelled before this request arrived"),
        )
        .with("order_id", order_id)
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(status = self.status, problem = %self.problem_type, detail = %self.detail, "request failed");
        } else {
            tracing::info!(status = self.status, problem = %self.problem_type, detail = %self.detail, "request refused");
        }
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response()
    }
}
