//! The checkout: validate, reserve, charge, schedule delivery, publish, confirm the payment; on any failure, undo every step that may have happened.

use api::{CheckoutRequest, CheckoutResponse, OrderPlaced, catalog, unchecked, validation::Violations};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse as _, Response},
};
use std::sync::LazyLock;

use service_kit::{Json, Problem};
use telemetry::metrics::{Counter, KeyValue};
use telemetry::semconv::{attribute, eshop};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    AppState, CheckoutError, Service,
    idempotency::{self, Claim, Claimed},
};

/// Checkouts that failed after a step may have happened, and were undone.
static ORDERS_UNDONE: LazyLock<Counter> = LazyLock::new(|| {
    telemetry::metrics::counter(
        eshop::metric::ORDERS_UNDONE,
        "{order}",
        "Checkouts undone after a step failed, by why (error.type) and where (eshop.failed_step).",
    )
});

/// `GET /checkout`: places the catalogue's sample order, so a bare `curl` shows the whole flow.
pub(crate) async fn sample_checkout(State(state): State<AppState>) -> Response {
    place(state, Ok(catalog::sample_order()), None).await
}

/// `POST /checkout` with a JSON order, and optionally an `Idempotency-Key`.
pub(crate) async fn checkout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<unchecked::CheckoutRequest>,
) -> Response {
    let key = match idempotency::key(&headers) {
        Ok(key) => key,
        Err(problem) => return problem.into_response(),
    };
    let Some(key) = key else {
        return place(state, CheckoutRequest::try_from(body), None).await;
    };
    // An order that breaks a rule takes no key: it is answered the same 422
    // on every retry anyway, and a flood of them must not crowd out the keys
    // of real checkouts. The key remembers the body as sent.
    let fingerprint = idempotency::fingerprint(&body);
    let order = match CheckoutRequest::try_from(body) {
        Ok(order) => order,
        Err(broken) => return place(state, Err(broken), None).await,
    };
    match state.0.idempotency_keys.claim(key, fingerprint) {
        Claim::Answered(response) => response,
        Claim::New(claimed) => place(state, Ok(order), Some(claimed)).await,
    }
}

/// Places the order, or answers why it is not one (422, every broken rule listed).
async fn place(state: AppState, order: Result<CheckoutRequest, Violations>, claimed: Option<Claimed>) -> Response {
    let order = match order {
        Ok(order) => order,
        Err(broken) => {
            let response = CheckoutError::Invalid(broken.into()).into_response();
            return match claimed {
                Some(claimed) => claimed.complete(response).await,
                None => response,
            };
        }
    };
    // The steps run in a task of their own, tracked for shutdown: if the
    // client hangs up, axum drops this handler, and a checkout stopped halfway
    // would leave stock reserved or money taken. The task finishes, undo and
    // the Idempotency-Key's answer included, either way.
    let tasks = state.0.tasks.clone();
    let steps = tasks.spawn(
        async move {
            let response = match run_steps(&state, order).await {
                Ok(placed) => (StatusCode::OK, Json(placed)).into_response(),
                Err(err) => err.into_response(),
            };
            match claimed {
                Some(claimed) => claimed.complete(response).await,
                None => response,
            }
        }
        .in_current_span(),
    );
    steps.await.unwrap_or_else(|err| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Checkout failed",
            err.to_string(),
        )
        .into_response()
    })
}

/// The checkout as the trace shows it: the steps in order and the payment's
/// confirmation, or, if a step failed, one `undo checkout` span reversing
/// every step that may have happened.
async fn run_steps(state: &AppState, order: CheckoutRequest) -> Result<CheckoutResponse, CheckoutError> {
    // Room for this checkout's undos first: once a step is sent, its undo
    // must have a place in the backlog whatever happens.
    let Some(mut undo_room) = state.0.compensator.reserve() else {
        return Err(CheckoutError::UndoBacklog);
    };
    let order_id = Uuid::new_v4();
    telemetry::span::set_attribute(
        &tracing::Span::current(),
        eshop::attribute::ORDER_ID,
        order_id.to_string(),
    );
    let mut sent = Vec::with_capacity(3);
    let outcome = place_order(state, order_id, order, &mut sent).await;
    if outcome.is_ok() {
        // Kafka holds the event: the order stands, and billing may say so to
        // kafka-consumer, which emails only confirmed orders. Until now a
        // failure could still have refunded the charge.
        state.0.compensator.confirm(order_id, &mut undo_room).await;
    }
    if let Err(err) = &outcome {
        // The failing step is undone too unless its service refused it
        // outright: after a timeout or a lost answer it may have happened.
        if matches!(err, CheckoutError::Call(call) if !call.step_may_have_happened()) {
            sent.pop();
        }
        if !sent.is_empty() {
            ORDERS_UNDONE.add(
                1,
                &[
                    KeyValue::new(attribute::ERROR_TYPE, err.kind()),
                    KeyValue::new(eshop::attribute::FAILED_STEP, err.failed_step()),
                ],
            );
            state
                .0
                .compensator
                .undo(order_id, &sent, &mut undo_room)
                .instrument(tracing::info_span!("undo checkout", { eshop::attribute::ORDER_ID } = %order_id))
                .await;
        }
    }
    outcome
}

/// The four steps. Each REST step is listed in `sent` before its request
/// leaves: from that moment the service may do it, whatever eshop hears back.
async fn place_order(
    state: &AppState,
    order_id: Uuid,
    order: CheckoutRequest,
    sent: &mut Vec<Service>,
) -> Result<CheckoutResponse, CheckoutError> {
    let downstream = &state.0.downstream;
    sent.push(Service::Inventory);
    let reservation = downstream.reserve(order_id, &order.items).await?;
    sent.push(Service::Billing);
    let payment = downstream.charge(order_id, &order.email, &order.items).await?;
    sent.push(Service::Delivery);
    let delivery = downstream
        .arrange_delivery(order_id, &order.email, &order.items)
        .await?;

    let event = OrderPlaced {
        order_id,
        email: order.email,
        items: order.items,
        amount_cents: payment.amount_cents,
        currency: payment.currency.clone(),
        tracking_id: delivery.tracking_id.clone(),
        estimated_delivery: delivery.estimated_delivery.clone(),
    };
    // A publish that fails may still land in Kafka later: the consumer
    // emails only once billing says the payment was confirmed, which
    // happens only after this acknowledgement.
    let published = state.0.publisher.publish(&event).await?;
    tracing::info!(
        name: eshop::event::ORDER_PLACED,
        {
            { eshop::attribute::ORDER_ID } = %order_id,
            { attribute::MESSAGING_DESTINATION_NAME } = %published.topic,
            { attribute::MESSAGING_DESTINATION_PARTITION_ID } = published.partition.to_string(),
            { attribute::MESSAGING_KAFKA_OFFSET } = published.offset,
        },
        "order placed"
    );

    Ok(CheckoutResponse {
        order_id,
        trace_id: telemetry::current_trace_id(),
        reservation,
        payment,
        delivery,
        event: Some(published),
    })
}
