//! The received spans, and a way to wait until they say what a test expects.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::watch;
use trace_model::{SpanRecord, tree};

/// Every span received so far, shared between the receiver and its readers.
#[derive(Debug, Clone)]
pub struct SpanStore {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
    // Bumped on every export, so waiters re-check only when something arrived.
    arrivals: watch::Sender<u64>,
}

/// The condition waited for did not hold in time; carries what was received.
#[derive(Debug)]
pub struct WaitTimedOut {
    pub waited: Duration,
    pub spans: Vec<SpanRecord>,
}

impl std::fmt::Display for WaitTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "condition not met after {:?}; {} spans received:",
            self.waited,
            self.spans.len()
        )?;
        f.write_str(&tree::render_all(&self.spans))
    }
}

impl std::error::Error for WaitTimedOut {}

impl Default for SpanStore {
    fn default() -> Self {
        Self {
            spans: Arc::default(),
            arrivals: watch::Sender::new(0),
        }
    }
}

impl SpanStore {
    pub fn push(&self, spans: Vec<SpanRecord>) {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).extend(spans);
        self.arrivals.send_modify(|count| *count += 1);
    }

    /// A copy of every span received.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Runs `f` over every span received so far, without copying them.
    pub fn inspect<T>(&self, f: impl FnOnce(&[SpanRecord]) -> T) -> T {
        f(&self.spans.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes every span received so far out of the store.
    pub fn drain(&self) -> Vec<SpanRecord> {
        std::mem::take(&mut *self.spans.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        self.spans()
            .into_iter()
            .filter(|span| span.trace_id == trace_id)
            .collect()
    }

    /// Waits until `condition` returns `Some` over all spans received, checking
    /// again after each export, and gives up after `timeout`.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&[SpanRecord]) -> Option<T>,
    ) -> Result<T, WaitTimedOut> {
        let mut arrivals = self.arrivals.subscribe();
        let check = async {
            loop {
                arrivals.borrow_and_update();
                if let Some(found) = condition(&self.spans()) {
                    return found;
                }
                if arrivals.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, check).await.map_err(|_| WaitTimedOut {
            waited: timeout,
            spans: self.spans(),
        })
    }

    /// Waits until the trace `trace_id` has at least `count` spans and returns them.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<SpanRecord>, WaitTimedOut> {
        self.wait_for(timeout, |spans| {
            let trace: Vec<SpanRecord> = spans.iter().filter(|span| span.trace_id == trace_id).cloned().collect();
            (trace.len() >= count).then_some(trace)
        })
        .await
    }
}
