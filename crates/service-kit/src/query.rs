//! Query strings read into a struct, with problem+json for a bad one, and the `?limit=&after=` pages of list endpoints.

use axum::{
    extract::{FromRequestParts, rejection::QueryRejection},
    http::StatusCode,
};
use serde::Deserialize;

use crate::Problem;

/// Records in a page when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: usize = 100;
/// The largest page a list endpoint answers, so that one request cannot copy a whole table.
pub const MAX_PAGE_LIMIT: usize = 1_000;

/// Like `axum::extract::Query`, but a query string that does not fit is answered with a 400 problem+json.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "The query string does not fit",
            rejection.body_text(),
        )
    }
}

/// `?limit=N&after=<cursor>`: the next `limit` records after the cursor, a
/// key of the caller's choosing (records are listed in key order; pass the
/// last key of a page to get the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page<C> {
    pub limit: Option<usize>,
    pub after: Option<C>,
}

impl<C> Default for Page<C> {
    fn default() -> Self {
        Self {
            limit: None,
            after: None,
        }
    }
}

impl<C> Page<C> {
    /// The page size asked for, or a 400 when it is 0 or above [`MAX_PAGE_LIMIT`].
    pub fn limit(&self) -> Result<usize, Problem> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_LIMIT),
            Some(limit @ 1..=MAX_PAGE_LIMIT) => Ok(limit),
            Some(limit) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                "The page size is out of range",
                format!("limit={limit}: must be 1 to {MAX_PAGE_LIMIT}"),
            )),
        }
    }
}
