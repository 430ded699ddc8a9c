//! Settling a checkout once its outcome is known: a failed one's steps undone, a placed one's payment confirmed; now, or, while the service does not answer, in the background until it does.
//!
//! An undo is not dropped while it can still succeed: one that fails inside
//! the checkout is handed to a background task that retries it with backoff
//! (each attempt a CLIENT span in the checkout's trace) until the service
//! accepts it or eshop stops. While one is pending it is logged with its order
//! id and trace id and counted on `/readyz` (`pending_undos N`); shutdown
//! waits for it within `SHUTDOWN_GRACE_MS`, and logs any it has to abandon, for
//! reconciliation. An answer that no retry can change (a 4xx other than 408,
//! 409 and 429) ends the retries at once, logged at error level with the order
//! and trace id and counted in `eshop.undos.abandoned`.
//!
//! A placed checkout's payment is confirmed the same way (`eshop.confirm.*`
//! events instead of `eshop.undo.*`): billing holds a charge as unconfirmed
//! until then, and kafka-consumer emails only confirmed orders.
//!
//! The backlog is bounded by `PENDING_UNDOS_MAX`, and the bound holds: each
//! checkout reserves, before its first step, room for the undos it could need
//! (one per step), and gives back what it did not use when it ends.

use std::{
    sync::{
        Arc, LazyLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use service_kit::Backoff;
use telemetry::semconv::{attribute, eshop};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    Service,
    downstream::{CallError, Downstream, Settle},
};

/// The steps a checkout may have to undo: inventory, billing, delivery.
pub(crate) const STEPS: usize = 3;

/// Undos given up because the service refused them for good.
static UNDOS_ABANDONED: LazyLock<telemetry::metrics::Counter> = LazyLock::new(|| {
    telemetry::metrics::counter(
        eshop::metric::UNDOS_ABANDONED,
        "{undo}",
        "Undos the service refused for good (a 4xx no retry can change), by service and status: reconcile these orders by hand.",
    )
});

/// Undos of failed checkouts, and the background tasks that retry them.
#[derive(Debug)]
pub(crate) struct Compensator {
    downstream: Arc<Downstream>,
    /// Undos being retried in the background, for `/readyz`.
    pending: Arc<AtomicUsize>,
    /// Pending undos plus the room reserved by running checkouts; never above `max_pending`.
    committed: Arc<AtomicUsize>,
    max_pending: usize,
    max_backoff: Duration,
    tasks: TaskTracker,
    /// Cancelled when the shutdown grace period has run out.
    give_up: CancellationToken,
}

impl Compensator {
    pub(crate) fn new(
        downstream: Arc<Downstream>,
        tasks: TaskTracker,
        max_pending: usize,
        max_backoff: Duration,
    ) -> Self {
        Self {
            downstream,
            pending: Arc::default(),
            committed: Arc::default(),
            max_pending,
            max_backoff,
            tasks,
            give_up: CancellationToken::new(),
        }
    }

    /// The undos being retried in the background, for `/readyz`.
    pub(crate) fn pending(&self) -> Arc<AtomicUsize> {
        self.pending.clone()
    }

    /// Room for the undos of one checkout, or `None` when the backlog could
    /// not take them: the checkout is refused before it does anything.
    pub(crate) fn reserve(&self) -> Option<UndoRoom> {
        self.committed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |committed| {
                (committed + STEPS <= self.max_pending).then_some(committed + STEPS)
            })
            .ok()?;
        Some(UndoRoom {
            committed: self.committed.clone(),
            left: STEPS,
        })
    }

    /// Reverses `steps` for the order, most recent first, one call each now;
    /// a call that fails is retried in the background, in the room reserved.
    pub(crate) async fn undo(&self, order_id: Uuid, steps: &[Service], room: &mut UndoRoom) {
        for &service in steps.iter().rev() {
            self.settle(Settle::Undo(service), order_id, room).await;
        }
    }

    /// Tells billing the checkout went through (its event is in Kafka), so
    /// kafka-consumer may email it; retried in the background while billing
    /// does not take it. The checkout is placed either way.
    pub(crate) async fn confirm(&self, order_id: Uuid, room: &mut UndoRoom) {
        self.settle(Settle::Confirm, order_id, room).await;
    }

    /// One attempt now; in the background, in one of the room's places, while it fails.
    async fn settle(&self, action: Settle, order_id: Uuid, room: &mut UndoRoom) {
        match self.downstream.settle(action, order_id).await {
            Ok(()) => {}
            Err(err) if is_permanent(&err) => abandon(action, order_id, &err),
            Err(err) => self.retry_in_background(action, order_id, &err, room.take()),
        }
    }

    fn retry_in_background(&self, action: Settle, order_id: Uuid, first_error: &CallError, slot: Slot) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        // The records carry the trace's id (log lines print it): the order can be found from them.
        action.log_pending(order_id, first_error);
        // A child of the checkout's span: the retries are part of its trace.
        let span = action.retry_span(order_id);
        let downstream = self.downstream.clone();
        let pending = self.pending.clone();
        let give_up = self.give_up.clone();
        let max_backoff = self.max_backoff;
        self.tasks.spawn(
            async move {
                let mut backoff = Backoff::new(max_backoff);
                loop {
                    tokio::select! {
                        () = give_up.cancelled() => {
                            action.log_abandoned_at_shutdown(order_id);
                            break;
                        }
                        () = tokio::time::sleep(backoff.next_wait()) => {}
                    }
                    match downstream.settle(action, order_id).await {
                        Ok(()) => {
                            action.log_done(order_id);
                            break;
                        }
                        Err(err) if is_permanent(&err) => {
                            abandon(action, order_id, &err);
                            break;
                        }
                        Err(err) => action.log_failed_again(order_id, &err),
                    }
                }
                pending.fetch_sub(1, Ordering::Relaxed);
                drop(slot);
            }
            .instrument(span),
        );
    }

    /// Makes background retries stop at their next attempt, logging what they abandon.
    pub(crate) fn give_up(&self) {
        self.give_up.cancel();
    }
}

/// Room for one checkout's undos (or, once it is placed, its payment's
/// confirmation) in the backlog, given back as it is dropped.
#[derive(Debug)]
pub(crate) struct UndoRoom {
    committed: Arc<AtomicUsize>,
    left: usize,
}

impl UndoRoom {
    /// One reserved place, for an undo moving to the background.
    fn take(&mut self) -> Slot {
        // A checkout undoes at most STEPS steps, each at most once.
        debug_assert!(self.left > 0, "more undos than steps");
        self.left = self.left.saturating_sub(1);
        Slot {
            committed: self.committed.clone(),
        }
    }
}

impl Drop for UndoRoom {
    fn drop(&mut self) {
        self.committed.fetch_sub(self.left, Ordering::AcqRel);
    }
}

/// One place in the backlog, held by a background undo until it ends.
#[derive(Debug)]
struct Slot {
    committed: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.committed.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer no retry can change: a 4xx other than 408 (timeout), 409
/// (conflict, may clear) and 429 (slow down).
fn is_permanent(err: &CallError) -> bool {
    matches!(err, CallError::Refused { status, .. }
        if !matches!(status.as_u16(), 408 | 409 | 429))
}

fn abandon(action: Settle, order_id: Uuid, err: &CallError) {
    let status = match err {
        CallError::Refused { status, .. } => i64::from(status.as_u16()),
        _ => 0,
    };
    let service = action.service();
    // The record carries the trace's id: the order and its trace for reconciliation.
    match action {
        Settle::Undo(_) => {
            tracing::error!(
                name: eshop::event::UNDO_REFUSED,
                {
                    { eshop::attribute::SERVICE } = service.name(),
                    { eshop::attribute::ORDER_ID } = %order_id,
                    { attribute::EXCEPTION_MESSAGE } = %err,
                },
                "undo refused for good; reconcile this order by hand"
            );
            UNDOS_ABANDONED.add(
                1,
                &[
                    telemetry::metrics::KeyValue::new(eshop::attribute::SERVICE, service.name()),
                    telemetry::metrics::KeyValue::new(attribute::HTTP_RESPONSE_STATUS_CODE, status),
                ],
            );
        }
        Settle::Confirm => tracing::error!(
            name: eshop::event::CONFIRM_REFUSED,
            {
                { eshop::attribute::ORDER_ID } = %order_id,
                { attribute::EXCEPTION_MESSAGE } = %err,
            },
            "payment confirmation refused for good; the order's email waits in the dead-letter topic"
        ),
    }
}

/// What each call settling an order logs: the undos under `eshop.undo.*`,
/// the confirmation under `eshop.confirm.*` (event names are static).
impl Settle {
    fn retry_span(self, order_id: Uuid) -> tracing::Span {
        let service = self.service().name();
        match self {
            Self::Undo(_) => tracing::info_span!(
                "retry undo",
                { eshop::attribute::ORDER_ID } = %order_id,
                { eshop::attribute::SERVICE } = service
            ),
            Self::Confirm => tracing::info_span!(
                "retry confirm payment",
                { eshop::attribute::ORDER_ID } = %order_id,
                { eshop::attribute::SERVICE } = service
            ),
        }
    }

    fn log_pending(self, order_id: Uuid, err: &CallError) {
        let service = self.service().name();
        match self {
            Self::Undo(_) => tracing::warn!(
                name: eshop::event::UNDO_PENDING,
                {
                    { eshop::attribute::SERVICE } = service,
                    { eshop::attribute::ORDER_ID } = %order_id,
                    { attribute::EXCEPTION_MESSAGE } = %err,
                },
                "undo pending; retrying in the background"
            ),
            Self::Confirm => tracing::warn!(
                name: eshop::event::CONFIRM_PENDING,
                {
                    { eshop::attribute::ORDER_ID } = %order_id,
                    { attribute::EXCEPTION_MESSAGE } = %err,
                },
                "payment confirmation pending; retrying in the background"
            ),
        }
    }

    fn log_failed_again(self, order_id: Uuid, err: &CallError) {
        let service = self.service().name();
        match self {
            Self::Undo(_) => tracing::warn!(
                name: eshop::event::UNDO_FAILED,
                {
                    { eshop::attribute::SERVICE } = service,
                    { eshop::attribute::ORDER_ID } = %order_id,
                    { attribute::EXCEPTION_MESSAGE } = %err,
                },
                "undo failed again; retrying"
            ),
            Self::Confirm => tracing::warn!(
                name: eshop::event::CONFIRM_FAILED,
                {
                    { eshop::attribute::ORDER_ID } = %order_id,
                    { attribute::EXCEPTION_MESSAGE } = %err,
                },
                "payment confirmation failed again; retrying"
            ),
        }
    }

    fn log_done(self, order_id: Uuid) {
        let service = self.service().name();
        match self {
            Self::Undo(_) => tracing::info!(
                name: eshop::event::UNDO_DONE,
                {
                    { eshop::attribute::SERVICE } = service,
                    { eshop::attribute::ORDER_ID } = %order_id,
                },
                "pending undo done"
            ),
            Self::Confirm => tracing::info!(
                name: eshop::event::CONFIRM_DONE,
                {
                    { eshop::attribute::ORDER_ID } = %order_id,
                },
                "pending payment confirmation done"
            ),
        }
    }

    fn log_abandoned_at_shutdown(self, order_id: Uuid) {
        let service = self.service().name();
        match self {
            Self::Undo(_) => tracing::error!(
                name: eshop::event::UNDO_ABANDONED,
                {
                    { eshop::attribute::SERVICE } = service,
                    { eshop::attribute::ORDER_ID } = %order_id,
                },
                "undo abandoned at shutdown; reconcile this order by hand"
            ),
            Self::Confirm => tracing::error!(
                name: eshop::event::CONFIRM_ABANDONED,
                {
                    { eshop::attribute::ORDER_ID } = %order_id,
                },
                "payment confirmation abandoned at shutdown; the order's email waits in the dead-letter topic"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        net::{Ipv4Addr, SocketAddr},
        sync::atomic::AtomicU16,
    };

    use axum::{Router, http::StatusCode, routing::post};
    use messaging::KafkaSettings;
    use service_kit::config::Listen;

    use super::*;
    use crate::Config;

    /// A billing whose `/refund` answers each status of `answers` in turn, then 204.
    async fn billing(answers: &'static [u16], calls: Arc<AtomicU16>) -> String {
        let refund = move || {
            let calls = calls.clone();
            async move {
                let call = usize::from(calls.fetch_add(1, Ordering::SeqCst));
                StatusCode::from_u16(answers.get(call).copied().unwrap_or(204)).unwrap_or(StatusCode::NO_CONTENT)
            }
        };
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(axum::serve(listener, Router::new().route(api::paths::REFUND, post(refund))).into_future());
        format!("http://{address}")
    }

    fn compensator_for(billing_url: &str, max_pending: usize) -> Compensator {
        let nowhere = "http://127.0.0.1:1";
        let kafka = KafkaSettings {
            bootstrap_servers: "127.0.0.1:1".into(),
            topic: "t".into(),
            dlq_topic: "t.dlq".into(),
            group_id: "g".into(),
            overrides: Vec::new(),
            consumer_overrides: Vec::new(),
            producer_overrides: Vec::new(),
        };
        let listen = Listen {
            host: Ipv4Addr::LOCALHOST.into(),
            port: 0,
        };
        let config = Config::new(listen, nowhere, billing_url, nowhere, kafka);
        let downstream = Arc::new(Downstream::new(&config).expect("client"));
        Compensator::new(downstream, TaskTracker::new(), max_pending, Duration::from_millis(20))
    }

    #[test]
    fn the_backlog_holds_room_for_every_running_checkout() {
        let compensator = compensator_for("http://127.0.0.1:1", 2 * STEPS);
        let first = compensator.reserve().expect("room");
        let second = compensator.reserve().expect("room");
        assert!(
            compensator.reserve().is_none(),
            "a third checkout could overshoot the cap"
        );
        drop(first);
        assert!(compensator.reserve().is_some(), "room given back at the end");
        drop(second);
        assert_eq!(compensator.committed.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_permanent_answer_ends_the_undo_and_a_passing_one_is_retried() {
        let calls = Arc::new(AtomicU16::new(0));
        let compensator = compensator_for(&billing(&[404], calls.clone()).await, STEPS);
        let mut room = compensator.reserve().expect("room");
        compensator.undo(Uuid::new_v4(), &[Service::Billing], &mut room).await;
        drop(room);
        compensator.tasks.close();
        compensator.tasks.wait().await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a 404 is not retried");
        assert_eq!(compensator.pending.load(Ordering::SeqCst), 0);

        let calls = Arc::new(AtomicU16::new(0));
        let compensator = compensator_for(&billing(&[503, 429, 408], calls.clone()).await, STEPS);
        let mut room = compensator.reserve().expect("room");
        compensator.undo(Uuid::new_v4(), &[Service::Billing], &mut room).await;
        assert_eq!(
            compensator.pending.load(Ordering::SeqCst),
            1,
            "retried in the background"
        );
        assert!(
            compensator.reserve().is_none(),
            "its place stays taken while it is retried"
        );
        drop(room);
        compensator.tasks.close();
        compensator.tasks.wait().await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "503, 429 and 408 retried until the 204"
        );
        assert_eq!(compensator.pending.load(Ordering::SeqCst), 0);
        assert_eq!(
            compensator.committed.load(Ordering::SeqCst),
            0,
            "every place given back"
        );
    }
}
