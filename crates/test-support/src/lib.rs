//! Test helpers: apps on port 0, the real binaries as processes, Apache Kafka, and trace assertions.
//!
//! Unit-level tests call [`spawn_app`] with a service's `app(state)`; end-to-end
//! tests start a [`Stack`] of real processes exporting to an in-process OTLP
//! receiver, and check the [`Trace`] it received.

mod answer;
mod app;
mod broker;
mod paging;
mod process;
mod programs;
mod proxy;
mod signal;
mod stack;
pub mod tls;
mod trace;

pub use answer::Answer;
pub use app::{TestApp, spawn_app};
pub use broker::{Broker, PARTITIONS, TOPICS, kafka_launcher, kraft_settings};
pub use paging::check_paging;
pub use process::{ServiceProcess, binary_path};
pub use programs::{installed_program, repo_root};
pub use proxy::{Fault, FlakyProxy};
pub use stack::{Stack, StackOptions, TEST_CONSUMER_CONFIG};
pub use tls::{HttpsServer, TestCa};
pub use trace::{SpanKind, SpanRecord, Trace};

/// How long tests wait for anything asynchronous (a trace, a consumer) before failing.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(45);
