//! The checkout: validate, reserve, charge, schedule delivery, publish; undo what was done when a step fails.

use api::{CheckoutRequest, CheckoutResponse, OrderPlaced, catalog, validation};
use axum::{extract::State, http::StatusCode};
use service_kit::Json;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use uuid::Uuid;

use crate::{AppState, CheckoutError, Service, downstream::Downstream};

/// `GET /checkout`: places the catalogue's sample order, so a bare `curl` shows the whole flow.
pub(crate) async fn sample_checkout(
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<CheckoutResponse>), CheckoutError> {
    place(state, catalog::sample_order()).await
}

/// `POST /checkout` with a JSON order.
pub(crate) async fn checkout(
    State(state): State<AppState>,
    Json(order): Json<CheckoutRequest>,
) -> Result<(StatusCode, Json<CheckoutResponse>), CheckoutError> {
    place(state, order).await
}

async fn place(state: AppState, order: CheckoutRequest) -> Result<(StatusCode, Json<CheckoutResponse>), CheckoutError> {
    let mut violations = validation::check_email(&order.email);
    violations.extend(validation::check_lines(&order.items));
    if !violations.is_empty() {
        return Err(CheckoutError::Invalid(violations));
    }
    // The steps run in a task of their own: if the client hangs up, axum drops
    // this handler, and a checkout stopped halfway would leave stock reserved
    // or money taken. The task finishes, undo included, either way.
    let steps = tokio::spawn(run_steps(state, order).in_current_span());
    let response = steps.await.map_err(CheckoutError::Aborted)??;
    Ok((StatusCode::OK, Json(response)))
}

async fn run_steps(state: AppState, order: CheckoutRequest) -> Result<CheckoutResponse, CheckoutError> {
    let order_id = Uuid::new_v4();
    tracing::Span::current().set_attribute("eshop.order.id", order_id.to_string());
    let downstream = &state.0.downstream;
    let mut undo = Undo {
        downstream,
        order_id,
        done: Vec::new(),
    };

    let reservation = undo
        .on_failure(downstream.reserve(order_id, &order.items).await)
        .await?;
    undo.done.push(Service::Inventory);
    let payment = undo
        .on_failure(downstream.charge(order_id, &order.email, &order.items).await)
        .await?;
    undo.done.push(Service::Billing);
    let delivery = undo
        .on_failure(downstream.arrange_delivery(order_id, &order.email, &order.items).await)
        .await?;
    undo.done.push(Service::Delivery);

    let event = OrderPlaced {
        order_id,
        email: order.email,
        items: order.items,
        amount_cents: payment.amount_cents,
        currency: payment.currency.clone(),
        tracking_id: delivery.tracking_id.clone(),
        estimated_delivery: delivery.estimated_delivery.clone(),
    };
    let published = undo.on_failure(state.0.publisher.publish(&event).await).await?;
    tracing::info!(order.id = %order_id, partition = published.partition, offset = published.offset, "order placed");

    Ok(CheckoutResponse {
        order_id,
        trace_id: telemetry::current_trace_id(),
        reservation,
        payment,
        delivery,
        event: Some(published),
    })
}

/// The steps done so far for one order, undone in reverse when a later one fails.
struct Undo<'a> {
    downstream: &'a Downstream,
    order_id: Uuid,
    done: Vec<Service>,
}

impl Undo<'_> {
    /// Passes `result` through, undoing every step done so far if it is an error.
    async fn on_failure<T, E: Into<CheckoutError>>(&self, result: Result<T, E>) -> Result<T, CheckoutError> {
        let err = match result {
            Ok(value) => return Ok(value),
            Err(err) => err.into(),
        };
        if !self.done.is_empty() {
            self.undo_all()
                .instrument(tracing::info_span!("undo checkout", order.id = %self.order_id))
                .await;
        }
        Err(err)
    }

    async fn undo_all(&self) {
        for &service in self.done.iter().rev() {
            if let Err(err) = self.downstream.undo(service, self.order_id).await {
                // Nothing more can be done in this request: the log line (with
                // the trace id) is what an operator reconciles from.
                tracing::error!(%service, order.id = %self.order_id, error = %err, "undo failed; manual reconciliation needed");
            }
        }
    }
}
