//! A bounded in-memory table: at most `capacity` entries, the oldest evicted first, read in key order.
//!
//! A service that runs for days under load must not grow without limit: when
//! the table is full, inserting a new key evicts the entry that arrived first.
//! Replacing the value of a key already present keeps that key's place in the
//! eviction order (it is not a new arrival); removing a key and inserting it
//! again makes it the newest. The table has no lock of its own: a service
//! keeps the tables that one request reads and changes together under one
//! mutex, so no other request sees half a change.

use std::{
    collections::{BTreeMap, VecDeque},
    ops::Bound,
};

/// Entries by key, at most `capacity` of them.
#[derive(Debug, Clone)]
pub struct BoundedTable<K, V> {
    entries: BTreeMap<K, Slot<V>>,
    /// Keys in arrival order, for eviction. A removed key lingers here until
    /// it reaches the front or the queue is compacted; its arrival number
    /// tells it from a later insert of the same key.
    arrivals: VecDeque<(u64, K)>,
    next_arrival: u64,
    capacity: usize,
}

#[derive(Debug, Clone)]
struct Slot<V> {
    arrival: u64,
    value: V,
}

impl<K: Ord + Clone, V> BoundedTable<K, V> {
    /// A table of at most `capacity` entries (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            arrivals: VecDeque::new(),
            next_arrival: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|slot| &slot.value)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key).map(|slot| &mut slot.value)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Inserts or replaces an entry. A replaced entry keeps its place in the
    /// eviction order; a new key evicts the oldest entry when the table is
    /// full, and the evicted entry is returned.
    pub fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if let Some(slot) = self.entries.get_mut(&key) {
            slot.value = value;
            return None;
        }
        self.push_new(key, value);
        if self.entries.len() > self.capacity {
            self.evict_oldest()
        } else {
            None
        }
    }

    /// Like [`BoundedTable::insert`], but a full table evicts the oldest entry
    /// that `evictable` allows, not simply the oldest; when it allows none,
    /// nothing changes and the value is handed back. For entries that must
    /// not be forgotten while they are in use (a request still running).
    pub fn insert_evicting(&mut self, key: K, value: V, evictable: impl Fn(&V) -> bool) -> Result<Option<(K, V)>, V> {
        if let Some(slot) = self.entries.get_mut(&key) {
            slot.value = value;
            return Ok(None);
        }
        let evicted = if self.entries.len() >= self.capacity {
            let entries = &self.entries;
            let victim = self.arrivals.iter().find_map(|(arrival, key)| {
                entries
                    .get(key)
                    .filter(|slot| slot.arrival == *arrival && evictable(&slot.value))
                    .map(|_| key.clone())
            });
            let Some(victim) = victim else { return Err(value) };
            self.entries.remove(&victim).map(|slot| (victim, slot.value))
        } else {
            None
        };
        self.push_new(key, value);
        Ok(evicted)
    }

    /// Adds a key not in the table as the newest arrival.
    fn push_new(&mut self, key: K, value: V) {
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.arrivals.push_back((arrival, key.clone()));
        self.entries.insert(key, Slot { arrival, value });
        // Removed keys leave their arrivals behind; keep the queue within
        // twice the table so that insert-and-remove traffic cannot grow it.
        if self.arrivals.len() > 2 * self.capacity {
            let entries = &self.entries;
            self.arrivals
                .retain(|(arrival, key)| is_current(entries, *arrival, key));
        }
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.entries.remove(key).map(|slot| slot.value)
    }

    /// Entries in key order, starting after `after` (from the first when `None`).
    pub fn iter_after(&self, after: Option<&K>) -> impl Iterator<Item = (&K, &V)> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.entries
            .range::<K, _>((start, Bound::Unbounded))
            .map(|(key, slot)| (key, &slot.value))
    }

    fn evict_oldest(&mut self) -> Option<(K, V)> {
        while let Some((arrival, oldest)) = self.arrivals.pop_front() {
            if is_current(&self.entries, arrival, &oldest) {
                return self.entries.remove(&oldest).map(|slot| (oldest, slot.value));
            }
        }
        None
    }
}

impl<K: Ord + Clone, V: Clone> BoundedTable<K, V> {
    /// Up to `limit` values in key order, starting after `after`: a page of a list endpoint.
    pub fn page(&self, after: Option<&K>, limit: usize) -> Vec<V> {
        self.iter_after(after)
            .take(limit)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

/// Whether this arrival is the one of the entry now in the table under `key`.
fn is_current<K: Ord, V>(entries: &BTreeMap<K, Slot<V>>, arrival: u64, key: &K) -> bool {
    entries.get(key).is_some_and(|slot| slot.arrival == arrival)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_skips_what_may_not_be_evicted_and_refuses_when_nothing_may() {
        // Values: true = may be evicted.
        let mut table = BoundedTable::with_capacity(3);
        table.insert(1, false);
        table.insert(2, true);
        table.insert(3, false);
        assert_eq!(
            table.insert_evicting(4, false, |evictable| *evictable),
            Ok(Some((2, true)))
        );
        assert_eq!(table.insert_evicting(5, false, |evictable| *evictable), Err(false));
        assert_eq!(table.len(), 3);
        assert!(table.contains(&1) && table.contains(&3) && table.contains(&4));
        // A replaced key needs no room.
        assert_eq!(table.insert_evicting(1, true, |evictable| *evictable), Ok(None));
        // The oldest evictable one goes, and the next insert lands as the newest.
        assert_eq!(
            table.insert_evicting(6, false, |evictable| *evictable),
            Ok(Some((1, true)))
        );
        assert_eq!(
            table.insert(7, true),
            Some((3, false)),
            "plain insert still evicts the oldest"
        );
    }

    #[test]
    fn a_full_table_evicts_the_oldest_entry() {
        let mut table = BoundedTable::with_capacity(3);
        for key in [30, 10, 20] {
            assert!(table.insert(key, key * 10).is_none());
        }
        assert_eq!(table.insert(5, 50), Some((30, 300)), "30 came first, whatever its key");
        assert_eq!(table.insert(40, 400), Some((10, 100)));
        assert_eq!(table.insert(1, 10), Some((20, 200)));
        assert_eq!(table.len(), 3);
        assert_eq!(table.page(None, 10), vec![10, 50, 400]);
    }

    #[test]
    fn replacing_a_value_keeps_its_place_in_the_eviction_order() {
        let mut table = BoundedTable::with_capacity(2);
        assert!(table.insert("b", 1).is_none());
        assert!(table.insert("a", 1).is_none());
        assert!(table.insert("b", 2).is_none(), "replacing is not a new arrival");
        assert_eq!(table.get(&"b"), Some(&2));
        assert_eq!(table.insert("c", 1), Some(("b", 2)), "b came first");
        assert!(table.contains(&"a") && table.contains(&"c"));
    }

    #[test]
    fn a_key_removed_and_inserted_again_is_the_newest() {
        let mut table = BoundedTable::with_capacity(2);
        table.insert("a", ());
        table.remove(&"a");
        table.insert("b", ());
        table.insert("a", ());
        assert_eq!(table.insert("c", ()), Some(("b", ())), "a's first arrival is stale");
        assert_eq!(table.insert("d", ()), Some(("a", ())));
    }

    #[test]
    fn removed_keys_do_not_grow_the_queue_or_get_evicted_twice() {
        let mut table = BoundedTable::with_capacity(3);
        for key in 100..200 {
            table.insert(key, ());
            table.remove(&key);
        }
        assert!(table.arrivals.len() <= 6, "{}", table.arrivals.len());
        for key in [1, 2, 3] {
            table.insert(key, ());
        }
        assert_eq!(table.insert(4, ()), Some((1, ())));
    }

    #[test]
    fn pages_follow_key_order_after_the_cursor() {
        let mut table = BoundedTable::with_capacity(10);
        for key in (1..=5).rev() {
            table.insert(key, key * 10);
        }
        assert_eq!(table.page(None, 2), vec![10, 20]);
        assert_eq!(table.page(Some(&2), 2), vec![30, 40]);
        assert_eq!(
            table.page(Some(&3), 10),
            vec![40, 50],
            "the cursor itself is not repeated"
        );
        assert_eq!(table.page(Some(&5), 2), Vec::<i32>::new());
    }

    #[test]
    fn a_cursor_that_is_not_a_key_starts_after_where_it_would_be() {
        let mut table = BoundedTable::with_capacity(10);
        for key in ["apple", "cherry", "plum"] {
            table.insert(key.to_owned(), key);
        }
        assert_eq!(table.page(Some(&"banana".to_owned()), 10), vec!["cherry", "plum"]);
    }
}
