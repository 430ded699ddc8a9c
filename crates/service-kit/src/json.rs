//! A JSON extractor whose every rejection is a problem+json answer naming what was wrong.

use axum::{
    extract::{FromRequest, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::Problem;

/// Like `axum::Json`, but a body that is not JSON, has the wrong content type,
/// the wrong shape or is too large is answered with problem+json.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let (slug, title) = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                ("unsupported-media-type", "Expected Content-Type: application/json")
            }
            JsonRejection::JsonSyntaxError(_) => ("malformed-json", "The body is not valid JSON"),
            JsonRejection::JsonDataError(_) => ("invalid-body", "The body does not have the expected fields"),
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => ("body-too-large", "The body is too large"),
            _ => ("unreadable-body", "The body could not be read"),
        };
        Problem::new(status, slug, title, rejection.body_text())
    }
}
