//! An in-memory table of records keyed by order id: what billing, delivery and notification keep.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use uuid::Uuid;

/// Shared between a service's handlers; cloning shares the same table.
#[derive(Debug)]
pub struct OrderTable<T>(Arc<Mutex<BTreeMap<Uuid, T>>>);

impl<T> Clone for OrderTable<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for OrderTable<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T: Clone> OrderTable<T> {
    /// The table, for a read-modify-write that must not interleave with another request's.
    /// A handler that panicked while holding it leaves the data usable: each
    /// update is a single insert or field change, never half done.
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<Uuid, T>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of every record, in order id order.
    pub fn all(&self) -> Vec<T> {
        self.lock().values().cloned().collect()
    }
}
