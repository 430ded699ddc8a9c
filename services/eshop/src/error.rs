//! The one error type of eshop, and how each failure is answered (problem+json) and logged.

use api::validation::Violation;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use service_kit::Problem;

use crate::{Service, downstream::CallError, publisher::PublishError};

/// Why a checkout did not place an order. Every variant but `Invalid` comes
/// after the steps already done were undone.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("the order is invalid")]
    Invalid(Vec<Violation>),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("too many undos of failed checkouts are still pending; a service eshop calls is failing")]
    UndoBacklog,
}

impl CheckoutError {
    /// Why the checkout failed, as a low-cardinality `error.type` value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_input",
            Self::Call(CallError::TimedOut { .. }) => "timeout",
            Self::Call(CallError::Unreachable { .. }) => "unreachable",
            Self::Call(CallError::Refused { .. }) => "refused",
            Self::Call(CallError::Failed { .. }) => "server_error",
            Self::Call(CallError::BadResponse { .. }) => "bad_response",
            Self::Publish(_) => "kafka_unavailable",
            Self::UndoBacklog => "undo_backlog",
        }
    }

    /// The step that failed: a service's name, `kafka`, or `eshop` itself.
    pub fn failed_step(&self) -> &'static str {
        match self {
            Self::Call(
                CallError::TimedOut { service, .. }
                | CallError::Unreachable { service, .. }
                | CallError::Refused { service, .. }
                | CallError::Failed { service, .. }
                | CallError::BadResponse { service, .. },
            ) => service.name(),
            Self::Publish(_) => "kafka",
            Self::Invalid(_) | Self::UndoBacklog => "eshop",
        }
    }
}

impl IntoResponse for CheckoutError {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        let problem = match self {
            Self::Invalid(violations) => Problem::invalid_input(&violations),
            // Business answers from a service are passed on as they are.
            Self::Call(CallError::Refused {
                service: Service::Inventory,
                status: StatusCode::CONFLICT,
                problem,
            }) => passed_on(
                StatusCode::CONFLICT,
                "out-of-stock",
                "Not enough stock",
                problem,
                detail,
            ),
            Self::Call(CallError::Refused {
                service: Service::Billing,
                status: StatusCode::PAYMENT_REQUIRED,
                problem,
            }) => passed_on(
                StatusCode::PAYMENT_REQUIRED,
                "payment-declined",
                "Payment declined",
                problem,
                detail,
            ),
            Self::Call(CallError::TimedOut { service, .. }) => Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "downstream-timeout",
                format!("{service} timed out"),
                detail,
            )
            .with("service", service.name()),
            Self::Call(
                CallError::Unreachable { service, .. }
                | CallError::Failed { service, .. }
                | CallError::Refused { service, .. }
                | CallError::BadResponse { service, .. },
            ) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "downstream-failed",
                format!("{service} failed"),
                detail,
            )
            .with("service", service.name()),
            // 502, not 503: the steps ran (and were undone) before the
            // publish failed, and Istio's default retry policy retries 503,
            // which would run them all again for one click.
            Self::Publish(_) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "kafka-unavailable",
                "The order could not be published to Kafka",
                detail,
            )
            .with("service", "kafka"),
            Self::UndoBacklog => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "undo-backlog",
                "Checkouts are paused until failed ones are undone",
                detail,
            ),
        };
        problem.into_response()
    }
}

fn passed_on(status: StatusCode, slug: &str, title: &str, problem: Option<Problem>, fallback: String) -> Problem {
    let detail = problem.map_or(fallback, |problem| problem.detail);
    Problem::new(status, slug, title, detail)
}
