//! The callee's side of a checkout step (reserve, charge, schedule): taken once per order, answered alike when repeated, refused after its undo.
//!
//! eshop retries a step whose answer it did not get, and undoes every step
//! of a checkout that failed, possibly before the step itself arrives (the
//! undo can overtake it). Each of inventory, billing and delivery must then
//! keep the same three promises, which live here once:
//! - a repeated step answers with the first outcome (200) and changes nothing;
//! - an undo is idempotent and remembers the order as cancelled, even for an
//!   order never seen;
//! - a step after its order's undo is refused (409 `order-cancelled`).
//!
//! The records and the cancelled markers are bounded tables (sizes from
//! `ORDER_RECORDS_MAX` and `CANCELLED_ORDERS_MAX`), kept under one lock with
//! whatever the service changes along with them (inventory's stock levels),
//! so no request sees half a step.

use std::sync::{Mutex, MutexGuard, PoisonError};

use api::{TableLimits, problems::OrderCancelled};
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use service_kit::{BoundedTable, Json, Problem};
use uuid::Uuid;

/// The steps a service took, one record `T` per order, beside the state `S`
/// that a step changes along with its record.
#[derive(Debug)]
pub struct OrderSteps<T, S = ()> {
    inner: Mutex<Inner<T, S>>,
}

#[derive(Debug)]
struct Inner<T, S> {
    records: BoundedTable<Uuid, T>,
    cancelled: BoundedTable<Uuid, ()>,
    shared: S,
}

/// How a step was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stepped<T> {
    /// Taken now: 201 with the record.
    Taken(T),
    /// Taken by an earlier request for the same order: 200 with that record.
    Already(T),
}

/// What an undo leaves of the order's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterUndo {
    /// The record stays, changed by the undo (a refunded payment is still listed).
    Keep,
    /// The record goes (a released reservation), so a second undo finds nothing to undo.
    Forget,
}

impl<T: Clone, S> OrderSteps<T, S> {
    pub fn new(limits: TableLimits, shared: S) -> Self {
        Self {
            inner: Mutex::new(Inner {
                records: BoundedTable::with_capacity(limits.records),
                cancelled: BoundedTable::with_capacity(limits.cancelled),
                shared,
            }),
        }
    }

    /// What an earlier request settled for this order: its record, or the
    /// 409 of an undone order; `None` when the step is still to be taken.
    /// For a step that does slow work first: [`OrderSteps::take`] checks again.
    pub fn earlier(&self, order_id: Uuid) -> Result<Option<T>, Problem> {
        let inner = self.lock();
        inner.settled(order_id)
    }

    /// Takes the step once: `step` runs under the lock, with the shared
    /// state, only when the order has neither a record nor an undo; its record is kept.
    pub fn take(&self, order_id: Uuid, step: impl FnOnce(&mut S) -> Result<T, Problem>) -> Result<Stepped<T>, Problem> {
        let mut inner = self.lock();
        if let Some(earlier) = inner.settled(order_id)? {
            return Ok(Stepped::Already(earlier));
        }
        let record = step(&mut inner.shared)?;
        inner.records.insert(order_id, record.clone());
        Ok(Stepped::Taken(record))
    }

    /// Remembers the order as cancelled and, when it has a record, runs
    /// `undo` on it under the lock. Idempotent as long as `undo` is: a second
    /// undo of a [`AfterUndo::Forget`] record finds nothing.
    pub fn undo(&self, order_id: Uuid, undo: impl FnOnce(&mut T, &mut S) -> AfterUndo) {
        let mut inner = self.lock();
        let Inner {
            records,
            cancelled,
            shared,
        } = &mut *inner;
        cancelled.insert(order_id, ());
        if let Some(record) = records.get_mut(&order_id)
            && undo(record, shared) == AfterUndo::Forget
        {
            records.remove(&order_id);
        }
    }

    /// Changes the record of a step already taken, under the lock: `Ok(None)`
    /// when the order has no record, the 409 of an undone order when it was undone.
    pub fn amend<R>(&self, order_id: Uuid, amend: impl FnOnce(&mut T) -> R) -> Result<Option<R>, Problem> {
        let mut inner = self.lock();
        inner.refuse_if_undone(order_id)?;
        Ok(inner.records.get_mut(&order_id).map(amend))
    }

    /// The record of one order.
    pub fn get(&self, order_id: Uuid) -> Option<T> {
        self.lock().records.get(&order_id).cloned()
    }

    /// Up to `limit` records in order id order, after `after`.
    pub fn page(&self, after: Option<&Uuid>, limit: usize) -> Vec<T> {
        self.lock().records.page(after, limit)
    }

    /// Reads the shared state, under the same lock as the steps.
    pub fn read_shared<R>(&self, read: impl FnOnce(&S) -> R) -> R {
        read(&self.lock().shared)
    }

    /// A handler that panicked while holding the lock leaves the data usable:
    /// a step inserts its record only after its change to the shared state is whole.
    fn lock(&self) -> MutexGuard<'_, Inner<T, S>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Clone, S> Inner<T, S> {
    fn settled(&self, order_id: Uuid) -> Result<Option<T>, Problem> {
        self.refuse_if_undone(order_id)?;
        Ok(self.records.get(&order_id).cloned())
    }

    fn refuse_if_undone(&self, order_id: Uuid) -> Result<(), Problem> {
        if self.cancelled.contains(&order_id) {
            return Err(Problem::described(OrderCancelled::KIND, OrderCancelled::new(order_id)));
        }
        Ok(())
    }
}

impl<T: Serialize> IntoResponse for Stepped<T> {
    fn into_response(self) -> Response {
        match self {
            Self::Taken(record) => (StatusCode::CREATED, Json(record)).into_response(),
            Self::Already(record) => (StatusCode::OK, Json(record)).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> OrderSteps<u32, u32> {
        OrderSteps::new(
            TableLimits {
                records: 2,
                cancelled: 2,
            },
            0,
        )
    }

    fn count(steps: &OrderSteps<u32, u32>, order_id: Uuid) -> Result<Stepped<u32>, Problem> {
        steps.take(order_id, |taken| {
            *taken += 1;
            Ok(*taken)
        })
    }

    #[test]
    fn a_repeated_step_answers_with_the_first_record_and_changes_nothing() {
        let steps = steps();
        let order = Uuid::from_u128(1);
        assert_eq!(count(&steps, order).expect("taken"), Stepped::Taken(1));
        assert_eq!(count(&steps, order).expect("answered"), Stepped::Already(1));
        assert_eq!(steps.read_shared(|taken| *taken), 1);
        assert_eq!(steps.earlier(order).expect("not cancelled"), Some(1));
    }

    #[test]
    fn a_step_after_its_undo_is_refused_even_when_the_undo_came_first() {
        let steps = steps();
        let order = Uuid::from_u128(2);
        steps.undo(order, |_, _| AfterUndo::Forget);
        let refused = count(&steps, order).expect_err("refused");
        assert_eq!(refused.status, 409);
        assert!(
            refused.problem_type.ends_with("order-cancelled"),
            "{}",
            refused.problem_type
        );
        assert!(steps.earlier(order).is_err());
        assert_eq!(steps.read_shared(|taken| *taken), 0, "the step did not run");
    }

    #[test]
    fn an_undo_runs_on_the_record_and_keeps_or_forgets_it() {
        let steps = steps();
        let (kept, forgotten) = (Uuid::from_u128(3), Uuid::from_u128(4));
        count(&steps, kept).expect("taken");
        count(&steps, forgotten).expect("taken");
        steps.undo(kept, |record, _| {
            *record += 100;
            AfterUndo::Keep
        });
        let mut undone = 0;
        for _ in 0..2 {
            steps.undo(forgotten, |_, taken| {
                *taken -= 1;
                undone += 1;
                AfterUndo::Forget
            });
        }
        assert_eq!(steps.get(kept), Some(101));
        assert_eq!(steps.get(forgotten), None);
        assert_eq!(undone, 1, "a forgotten record is undone once");
        assert_eq!(steps.read_shared(|taken| *taken), 1);
    }

    #[test]
    fn an_amend_changes_a_taken_record_and_is_refused_after_the_undo() {
        let steps = steps();
        let (taken, unknown) = (Uuid::from_u128(6), Uuid::from_u128(7));
        count(&steps, taken).expect("taken");
        assert_eq!(steps.amend(unknown, |record| *record).expect("not undone"), None);
        assert_eq!(
            steps
                .amend(taken, |record| {
                    *record += 10;
                    *record
                })
                .expect("not undone"),
            Some(11)
        );
        steps.undo(taken, |_, _| AfterUndo::Keep);
        let refused = steps.amend(taken, |record| *record).expect_err("undone");
        assert_eq!(refused.status, 409);
        assert_eq!(steps.get(taken), Some(11), "the refused amend changed nothing");
    }

    #[test]
    fn a_refused_step_keeps_no_record() {
        let steps = steps();
        let order = Uuid::from_u128(5);
        let refused = steps.take(order, |_| {
            Err(Problem::new(StatusCode::CONFLICT, "out-of-stock", "No", "none"))
        });
        assert!(refused.is_err());
        assert_eq!(steps.get(order), None);
        assert_eq!(count(&steps, order).expect("taken later"), Stepped::Taken(1));
    }

    #[test]
    fn records_are_bounded_and_listed_in_order_id_order() {
        let steps = steps();
        for n in [3_u128, 1, 2] {
            count(&steps, Uuid::from_u128(n)).expect("taken");
        }
        // Two records at most: the first taken (order 3) was evicted.
        assert_eq!(steps.page(None, 10), vec![2, 3]);
        assert_eq!(steps.page(Some(&Uuid::from_u128(1)), 10), vec![3]);
    }
}
