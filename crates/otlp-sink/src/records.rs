//! Received metric points and log records, and a way to wait until they say what a test expects.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::watch;

/// Everything of one signal received so far, shared between the receiver and its readers.
#[derive(Debug, Clone)]
pub struct Records<T> {
    items: Arc<Mutex<Vec<T>>>,
    arrivals: watch::Sender<u64>,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Self {
            items: Arc::default(),
            arrivals: watch::Sender::new(0),
        }
    }
}

impl<T: Clone> Records<T> {
    pub fn push(&self, items: Vec<T>) {
        self.items.lock().unwrap_or_else(PoisonError::into_inner).extend(items);
        self.arrivals.send_modify(|count| *count += 1);
    }

    /// A copy of everything received.
    pub fn all(&self) -> Vec<T> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Takes everything received so far out of the store.
    pub fn drain(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Waits until `condition` returns `Some` over everything received,
    /// checking again after each export; `Err` carries what was received.
    pub async fn wait_for<R>(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&[T]) -> Option<R>,
    ) -> Result<R, Vec<T>> {
        let mut arrivals = self.arrivals.subscribe();
        let check = async {
            loop {
                arrivals.borrow_and_update();
                if let Some(found) = condition(&self.all()) {
                    return found;
                }
                if arrivals.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, check).await.map_err(|_| self.all())
    }
}
