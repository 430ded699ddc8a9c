//! RFC 9457 problem details: the one shape every error response of a service has.
//!
//! A problem's type is a URI made of the process's type prefix, named once by
//! the caller (see [`set_type_prefix`]), and a slug naming the kind of problem.

use std::{fmt::Display, sync::OnceLock};

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use telemetry::semconv::{attribute, eshop};

/// The media type of a problem details body.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// The type prefix of a process that named none: problems stay distinct by
/// slug, under a namespace that claims no owner.
pub const DEFAULT_TYPE_PREFIX: &str = "urn:problem:";

static TYPE_PREFIX: OnceLock<&'static str> = OnceLock::new();

/// Names the namespace of every problem type this process answers with,
/// e.g. `urn:example:problem:`: a problem of slug `out-of-stock` then has
/// type `urn:example:problem:out-of-stock`. The first call wins; a later one
/// naming another prefix is logged and ignored, since a process answers for
/// one owner. [`crate::service_router`] calls it with the caller's prefix, so
/// a service names it once, where it builds its router.
pub fn set_type_prefix(prefix: &'static str) {
    let first = *TYPE_PREFIX.get_or_init(|| prefix);
    if first != prefix {
        tracing::warn!(
            name: eshop::event::PROBLEM_PREFIX_IGNORED,
            {
                { eshop::attribute::PROBLEM_TYPE_PREFIX } = first,
                { eshop::attribute::PROBLEM_IGNORED_PREFIX } = prefix,
            },
            "problem type prefix already set"
        );
    }
}

/// The prefix problem types get: the one set, or [`DEFAULT_TYPE_PREFIX`].
pub fn type_prefix() -> &'static str {
    TYPE_PREFIX.get().copied().unwrap_or(DEFAULT_TYPE_PREFIX)
}

/// An `application/problem+json` body. Turning it into a response is where
/// every service logs its errors, so each failure is logged exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the kind of problem: the type prefix and a slug, e.g. `urn:example:problem:out-of-stock`.
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
        Self::of_status(status.as_u16(), slug, title.into(), detail.into())
    }

    fn of_status(status: u16, slug: &str, title: String, detail: String) -> Self {
        Self {
            problem_type: format!("{}{slug}", type_prefix()),
            title,
            status,
            detail,
            extensions: serde_json::Map::new(),
        }
    }

    /// A problem described as plain data by a crate that does not depend on
    /// the kit: `kind` is its HTTP status, slug and title; the description's
    /// `Display` is the detail and its fields (it serializes to a JSON
    /// object) are the extension members.
    pub fn described(kind: (u16, &str, &str), description: impl Display + Serialize) -> Self {
        let (status, slug, title) = kind;
        let mut problem = Self::of_status(status, slug, title.to_owned(), description.to_string());
        if let Ok(serde_json::Value::Object(members)) = serde_json::to_value(&description) {
            problem.extensions = members;
        }
        problem
    }

    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.extensions.insert(key.to_owned(), value);
        self
    }

    /// The `422` answer to input that breaks rules: the detail lists each
    /// broken rule as it displays, the `violations` member as it serializes.
    pub fn invalid_input<V: Display + Serialize>(violations: &[V]) -> Self {
        let detail = violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "The request breaks the rules",
            detail,
        )
        .with("violations", violations)
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
        // The detail may quote the request (a query, a field): one capped line.
        let detail = telemetry::untrusted::one_line(&self.detail, telemetry::untrusted::MAX_LOGGED_TEXT);
        if status.is_server_error() {
            tracing::error!(
                name: eshop::event::REQUEST_FAILED,
                {
                    { attribute::HTTP_RESPONSE_STATUS_CODE } = i64::from(self.status),
                    { eshop::attribute::PROBLEM_TYPE } = %self.problem_type,
                    { eshop::attribute::PROBLEM_DETAIL } = %detail,
                },
                "request failed"
            );
        } else {
            tracing::info!(
                name: eshop::event::REQUEST_REFUSED,
                {
                    { attribute::HTTP_RESPONSE_STATUS_CODE } = i64::from(self.status),
                    { eshop::attribute::PROBLEM_TYPE } = %self.problem_type,
                    { eshop::attribute::PROBLEM_DETAIL } = %detail,
                },
                "request refused"
            );
        }
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Broken {
        field: &'static str,
        reason: &'static str,
    }

    impl Display for Broken {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} {}", self.field, self.reason)
        }
    }

    const BROKEN: [Broken; 2] = [
        Broken {
            field: "a",
            reason: "is empty",
        },
        Broken {
            field: "b",
            reason: "is too long",
        },
    ];

    #[test]
    fn types_are_the_callers_prefix_and_the_slug() {
        set_type_prefix("urn:test:problem:");
        set_type_prefix("urn:other:problem:");
        let problem = Problem::new(StatusCode::CONFLICT, "taken", "Taken", "");
        assert_eq!(problem.problem_type, "urn:test:problem:taken");
    }

    #[test]
    fn invalid_input_lists_each_rule_as_it_displays_and_serializes() {
        let problem = Problem::invalid_input(&BROKEN);
        assert_eq!(problem.status, 422);
        assert_eq!(problem.detail, "a is empty; b is too long");
        assert_eq!(
            problem.extensions["violations"],
            serde_json::json!([{ "field": "a", "reason": "is empty" }, { "field": "b", "reason": "is too long" }])
        );
    }

    #[test]
    fn a_described_problem_takes_its_detail_and_members_from_the_description() {
        let problem = Problem::described((409, "broken", "Broken"), &BROKEN[1]);
        assert_eq!((problem.status, problem.title.as_str()), (409, "Broken"));
        assert!(problem.problem_type.ends_with(":broken"), "{}", problem.problem_type);
        assert_eq!(problem.detail, "b is too long");
        assert_eq!(problem.extensions["field"], "b");
        assert_eq!(problem.extensions.len(), 2);
    }
}
