//! What every HTTP service of the suite shares: serving with graceful shutdown, health probes,
//! configuration from the environment and RFC 9457 problem+json errors.
//!
//! A service's `main.rs` reads its config, calls `telemetry::init`, then
//! [`bind`] and [`serve`] with the router that [`service_router`] assembles.

pub mod config;
pub mod health;
pub mod healthcheck;
pub mod json;
pub mod limits;
pub mod problem;
pub mod query;
mod serve;
pub mod table;

pub use health::Readiness;
pub use json::Json;
pub use limits::ServerLimits;
pub use problem::Problem;
pub use query::{Page, Query};
pub use serve::{MAX_BODY_BYTES, bind, serve, service_router, shutdown_signal};
pub use table::BoundedTable;
