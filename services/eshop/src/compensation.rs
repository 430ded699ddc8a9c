//! Undoing a failed checkout: each step that may have happened is reversed now, or, while its service does not answer, in the background until it does.
//!
//! An undo is never dropped: one that fails inside the checkout is handed to
//! a background task that retries it with backoff (each attempt a CLIENT span
//! in the checkout's trace) until the service accepts it or eshop stops. While
//! one is pending it is logged with its order id and trace id and counted on
//! `/readyz` (`pending_undos N`); shutdown waits for it within
//! `SHUTDOWN_GRACE_MS`, and logs any it has to abandon, for reconciliation.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use service_kit::Backoff;
use telemetry::semconv::{attribute, eshop};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{Service, downstream::Downstream};

/// Undos of failed checkouts, and the background tasks that retry them.
#[derive(Debug)]
pub(crate) struct Compensator {
    downstream: Arc<Downstream>,
    pending: Arc<AtomicUsize>,
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

    /// True when so many undos are pending that a new checkout, which may
    /// need undoing too, should be refused rather than add to them.
    pub(crate) fn backlog_full(&self) -> bool {
        self.pending.load(Ordering::Relaxed) >= self.max_pending
    }

    /// Reverses `steps` for the order, most recent first, one call each now;
    /// a call that fails is retried in the background.
    pub(crate) async fn undo(&self, order_id: Uuid, steps: &[Service]) {
        for &service in steps.iter().rev() {
            if let Err(err) = self.downstream.undo(service, order_id).await {
                self.retry_in_background(service, order_id, &err);
            }
        }
    }

    fn retry_in_background(&self, service: Service, order_id: Uuid, first_error: &dyn std::fmt::Display) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        // The records carry the trace's id (log lines print it): the order can be found from them.
        tracing::warn!(
            name: eshop::event::UNDO_PENDING,
            {
                { eshop::attribute::SERVICE } = service.name(),
                { eshop::attribute::ORDER_ID } = %order_id,
                { attribute::EXCEPTION_MESSAGE } = %first_error,
            },
            "undo pending; retrying in the background"
        );
        // A child of the checkout's undo span: the retries are part of its trace.
        let span = tracing::info_span!(
            "retry undo",
            { eshop::attribute::ORDER_ID } = %order_id,
            { eshop::attribute::SERVICE } = service.name()
        );
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
                            tracing::error!(
                                name: eshop::event::UNDO_ABANDONED,
                                {
                                    { eshop::attribute::SERVICE } = service.name(),
                                    { eshop::attribute::ORDER_ID } = %order_id,
                                },
                                "undo abandoned at shutdown; reconcile this order by hand"
                            );
                            break;
                        }
                        () = tokio::time::sleep(backoff.next_wait()) => {}
                    }
                    match downstream.undo(service, order_id).await {
                        Ok(()) => {
                            tracing::info!(
                                name: eshop::event::UNDO_DONE,
                                {
                                    { eshop::attribute::SERVICE } = service.name(),
                                    { eshop::attribute::ORDER_ID } = %order_id,
                                },
                                "pending undo done"
                            );
                            break;
                        }
                        Err(err) => tracing::warn!(
                            name: eshop::event::UNDO_FAILED,
                            {
                                { eshop::attribute::SERVICE } = service.name(),
                                { eshop::attribute::ORDER_ID } = %order_id,
                                { attribute::EXCEPTION_MESSAGE } = %err,
                            },
                            "undo failed again; retrying"
                        ),
                    }
                }
                pending.fetch_sub(1, Ordering::Relaxed);
            }
            .instrument(span),
        );
    }

    /// Makes background retries stop at their next attempt, logging what they abandon.
    pub(crate) fn give_up(&self) {
        self.give_up.cancel();
    }
}
