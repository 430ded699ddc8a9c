//! What every HTTP service of the suite shares: serving with graceful shutdown, health probes,
//! configuration from the environment and RFC 9457 problem+json errors.
//!
//! A service's `main.rs` is one call to [`launch`] with its name, its
//! configuration reader and how to build its app (usually the router that
//! [`service_router`] assembles); the tests serve the same app in-process
//! with [`ServiceApp::serve`].
//!
//! Nothing here knows what a service sells: problem types are named under a
//! prefix the caller gives, tables and pages are keyed by the caller's keys.

pub mod backoff;
pub mod config;
pub mod health;
pub mod healthcheck;
pub mod json;
mod launch;
pub mod limits;
pub mod problem;
pub mod query;
mod serve;
pub mod table;

pub use backoff::Backoff;
pub use health::Readiness;
pub use json::Json;
pub use launch::{ServiceApp, ServiceConfig, launch, prepare};
pub use limits::ServerLimits;
pub use problem::Problem;
pub use query::{Page, Query};
pub use serve::{MAX_BODY_BYTES, bind, serve, service_router, shutdown_signal};
pub use table::BoundedTable;
