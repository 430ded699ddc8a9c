//! delivery: schedules shipments (a tracking id and an estimated date) and cancels them on undo.
//!
//! A cancellation remembers the order, and a schedule request that arrives
//! after it is refused (409): an undo that overtakes its step still leaves no
//! delivery scheduled.

use std::sync::Arc;

use api::{Delivery, DeliveryRequest, DeliveryStatus, OrderRef, TableLimits, paths, problems, unchecked};
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use order_steps::{AfterUndo, OrderSteps, Stepped};
use service_kit::{
    Json, Page, Problem, Query, Readiness, ServerLimits,
    config::{ConfigError, Listen, env_count, env_or},
};
use telemetry::semconv::eshop;
use uuid::Uuid;

/// Days from order to estimated delivery.
pub const DELIVERY_DAYS: &str = "DELIVERY_DAYS";
pub const DEFAULT_DELIVERY_DAYS: u16 = 3;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub limits: ServerLimits,
    pub tables: TableLimits,
    pub delivery_days: u16,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env()?,
            limits: ServerLimits::from_env()?,
            tables: TableLimits::read(env_count)?,
            delivery_days: env_or(DELIVERY_DAYS, DEFAULT_DELIVERY_DAYS)?,
        })
    }
}

impl service_kit::ServiceConfig for Config {
    fn listen(&self) -> Listen {
        self.listen
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    delivery_days: u16,
    limits: ServerLimits,
    /// One delivery per order.
    deliveries: Arc<OrderSteps<Delivery>>,
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self {
            delivery_days: config.delivery_days,
            limits: config.limits,
            deliveries: Arc::new(OrderSteps::new(config.tables, ())),
        }
    }
}

pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let api = Router::new()
        .route(paths::ARRANGE_DELIVERY, post(arrange_delivery))
        .route(paths::CANCEL_DELIVERY, post(cancel_delivery))
        .route(paths::DELIVERIES, get(deliveries))
        .with_state(state);
    service_kit::service_router(api, Readiness::ready(), limits, problems::TYPE_PREFIX)
}

/// Schedules one shipment per order: asking again returns the first one;
/// asking after the order was cancelled is refused.
#[tracing::instrument(name = "schedule delivery", skip_all, fields({ eshop::attribute::ORDER_ID } = %request.order_id))]
async fn arrange_delivery(
    State(state): State<AppState>,
    Json(request): Json<unchecked::DeliveryRequest>,
) -> Result<Stepped<Delivery>, Problem> {
    let request = DeliveryRequest::try_from(request).map_err(|broken| Problem::invalid_input(&broken))?;
    state.deliveries.take(request.order_id, |()| {
        let estimated = time::OffsetDateTime::now_utc().date() + time::Duration::days(i64::from(state.delivery_days));
        let delivery = Delivery {
            tracking_id: format!("TRK-{}", &Uuid::new_v4().simple().to_string()[..12].to_uppercase()),
            order_id: request.order_id,
            estimated_delivery: estimated.to_string(),
            status: DeliveryStatus::Scheduled,
        };
        tracing::info!(
            name: eshop::event::DELIVERY_SCHEDULED,
            {
                { eshop::attribute::DELIVERY_TRACKING_ID } = %delivery.tracking_id,
            },
            "delivery scheduled"
        );
        Ok(delivery)
    })
}

/// Cancels an order's shipment and remembers the order as cancelled.
/// Idempotent: 204 whether or not there was one, even for an order never seen.
#[tracing::instrument(name = "cancel delivery", skip_all, fields({ eshop::attribute::ORDER_ID } = %request.order_id))]
async fn cancel_delivery(State(state): State<AppState>, Json(request): Json<OrderRef>) -> StatusCode {
    state.deliveries.undo(request.order_id, |delivery, ()| {
        if delivery.status != DeliveryStatus::Cancelled {
            delivery.status = DeliveryStatus::Cancelled;
            tracing::info!(
                name: eshop::event::DELIVERY_CANCELLED,
                {
                    { eshop::attribute::DELIVERY_TRACKING_ID } = %delivery.tracking_id,
                },
                "delivery cancelled"
            );
        }
        AfterUndo::Keep
    });
    StatusCode::NO_CONTENT
}

/// A page of deliveries: `?limit=&after=<order id>`.
async fn deliveries(
    State(state): State<AppState>,
    Query(page): Query<Page<Uuid>>,
) -> Result<Json<Vec<Delivery>>, Problem> {
    Ok(Json(state.deliveries.page(page.after.as_ref(), page.limit()?)))
}
