//! A bounded in-memory table of records keyed by order id, oldest evicted first, read in pages.
//!
//! What inventory, billing, delivery and notification keep, and the cancelled
//! markers beside them. A service that runs for days under load must not grow
//! without limit: when the table is full, inserting a new order evicts the
//! oldest one. The table has no lock of its own: a service keeps the tables
//! that one request reads and changes together (a payment and the order's
//! cancelled marker) under one mutex, so no other request sees half a change.

use std::{
    collections::{BTreeMap, VecDeque},
    ops::Bound,
};

use uuid::Uuid;

use crate::config::{ConfigError, env_or};

/// How many orders each service keeps a record of (reservations, payments,
/// deliveries, emails). At about 1 KiB a record the default stays under
/// 10 MiB, well inside the 128 MiB memory limit the manifests set.
pub const ORDER_RECORDS_MAX: &str = "ORDER_RECORDS_MAX";
pub const DEFAULT_ORDER_RECORDS_MAX: usize = 10_000;
/// How many cancelled orders each service remembers, so that a step arriving
/// after its undo is refused. Only ids: 10,000 take well under 1 MiB.
pub const CANCELLED_ORDERS_MAX: &str = "CANCELLED_ORDERS_MAX";
pub const DEFAULT_CANCELLED_ORDERS_MAX: usize = 10_000;

/// The table sizes a service reads from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLimits {
    pub records: usize,
    pub cancelled: usize,
}

impl TableLimits {
    pub fn from_env() -> Result<Self, ConfigError> {
        let records = env_or(ORDER_RECORDS_MAX, DEFAULT_ORDER_RECORDS_MAX)?;
        let cancelled = env_or(CANCELLED_ORDERS_MAX, DEFAULT_CANCELLED_ORDERS_MAX)?;
        for (name, value) in [(ORDER_RECORDS_MAX, records), (CANCELLED_ORDERS_MAX, cancelled)] {
            if value == 0 {
                return Err(ConfigError {
                    name,
                    value: value.to_string(),
                    reason: "must be at least 1".into(),
                });
            }
        }
        Ok(Self { records, cancelled })
    }
}

impl Default for TableLimits {
    fn default() -> Self {
        Self {
            records: DEFAULT_ORDER_RECORDS_MAX,
            cancelled: DEFAULT_CANCELLED_ORDERS_MAX,
        }
    }
}

/// Records by order id, at most `capacity` of them.
#[derive(Debug, Clone)]
pub struct OrderTable<T> {
    records: BTreeMap<Uuid, T>,
    /// Insertion order, for eviction. Ids of removed records linger until
    /// they reach the front or the queue is compacted.
    arrivals: VecDeque<Uuid>,
    capacity: usize,
}

impl<T> OrderTable<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: BTreeMap::new(),
            arrivals: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, order_id: &Uuid) -> Option<&T> {
        self.records.get(order_id)
    }

    pub fn get_mut(&mut self, order_id: &Uuid) -> Option<&mut T> {
        self.records.get_mut(order_id)
    }

    pub fn contains(&self, order_id: &Uuid) -> bool {
        self.records.contains_key(order_id)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Inserts or replaces a record; a new order evicts the oldest one when the
    /// table is full, and the evicted record is returned.
    pub fn insert(&mut self, order_id: Uuid, record: T) -> Option<(Uuid, T)> {
        if self.records.insert(order_id, record).is_some() {
            return None;
        }
        self.arrivals.push_back(order_id);
        let evicted = if self.records.len() > self.capacity {
            self.evict_oldest()
        } else {
            None
        };
        // Removed records leave their ids behind; keep the queue within twice
        // the table so that insert-and-remove traffic cannot grow it.
        if self.arrivals.len() > 2 * self.capacity {
            let records = &self.records;
            self.arrivals.retain(|id| records.contains_key(id));
        }
        evicted
    }

    pub fn remove(&mut self, order_id: &Uuid) -> Option<T> {
        self.records.remove(order_id)
    }

    fn evict_oldest(&mut self) -> Option<(Uuid, T)> {
        while let Some(oldest) = self.arrivals.pop_front() {
            if let Some(record) = self.records.remove(&oldest) {
                return Some((oldest, record));
            }
        }
        None
    }
}

impl<T: Clone> OrderTable<T> {
    /// Up to `limit` records in order id order, starting after `after`.
    pub fn page(&self, after: Option<Uuid>, limit: usize) -> Vec<T> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.records
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|(_, record)| record.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Uuid> {
        (1..=n).map(Uuid::from_u128).collect()
    }

    #[test]
    fn a_full_table_evicts_the_oldest_order() {
        let mut table = OrderTable::with_capacity(2);
        let [a, b, c] = ids(3)[..] else { unreachable!() };
        assert!(table.insert(b, "b").is_none());
        assert!(table.insert(a, "a").is_none());
        assert!(table.insert(b, "b again").is_none(), "replacing is not a new order");
        assert_eq!(table.insert(c, "c"), Some((b, "b again")), "b came first");
        assert_eq!(table.len(), 2);
        assert!(table.contains(&a) && table.contains(&c));
    }

    #[test]
    fn removed_ids_do_not_grow_the_queue_or_get_evicted_twice() {
        let mut table = OrderTable::with_capacity(3);
        for id in ids(100) {
            table.insert(id, ());
            table.remove(&id);
        }
        assert!(table.arrivals.len() <= 6, "{}", table.arrivals.len());
        let [a, b, c, d] = ids(4)[..] else { unreachable!() };
        for id in [a, b, c] {
            table.insert(id, ());
        }
        assert_eq!(table.insert(d, ()), Some((a, ())));
    }

    #[test]
    fn pages_follow_order_id_order() {
        let mut table = OrderTable::with_capacity(10);
        for id in ids(5).into_iter().rev() {
            table.insert(id, id.as_u128());
        }
        assert_eq!(table.page(None, 2), vec![1, 2]);
        assert_eq!(table.page(Some(Uuid::from_u128(2)), 2), vec![3, 4]);
        assert_eq!(table.page(Some(Uuid::from_u128(5)), 2), Vec::<u128>::new());
    }
}
