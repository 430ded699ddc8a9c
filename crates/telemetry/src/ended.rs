//! For unit tests: an exporter that keeps every span that ended, as the SDK would export it.

use std::sync::{Arc, Mutex};

use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

#[derive(Debug, Clone, Default)]
pub(crate) struct Ended(pub(crate) Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Ended {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().expect("not poisoned").extend(batch);
        Ok(())
    }
}

impl Ended {
    /// The spans ended so far.
    pub(crate) fn spans(&self) -> Vec<SpanData> {
        self.0.lock().expect("not poisoned").clone()
    }
}
