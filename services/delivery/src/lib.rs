//! delivery: schedules shipments (a tracking id and an estimated date) and cancels them on undo.

use api::{Delivery, DeliveryRequest, DeliveryStatus, OrderRef, paths, validation};
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use service_kit::{
    Json, OrderTable, Problem, Readiness,
    config::{ConfigError, Listen, env_or},
};
use uuid::Uuid;

/// Days from order to estimated delivery.
pub const DELIVERY_DAYS: &str = "DELIVERY_DAYS";
pub const DEFAULT_DELIVERY_DAYS: u16 = 3;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub delivery_days: u16,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env()?,
            delivery_days: env_or(DELIVERY_DAYS, DEFAULT_DELIVERY_DAYS)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    delivery_days: u16,
    deliveries: OrderTable<Delivery>,
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self {
            delivery_days: config.delivery_days,
            deliveries: OrderTable::default(),
        }
    }
}

pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route(paths::ARRANGE_DELIVERY, post(arrange_delivery))
        .route(paths::CANCEL_DELIVERY, post(cancel_delivery))
        .route(paths::DELIVERIES, get(deliveries))
        .with_state(state);
    service_kit::service_router(api, Readiness::ready())
}

/// Schedules one shipment per order: asking again returns the first one.
#[tracing::instrument(name = "schedule delivery", skip_all, fields(order.id = %request.order_id))]
async fn arrange_delivery(
    State(state): State<AppState>,
    Json(request): Json<DeliveryRequest>,
) -> Result<(StatusCode, Json<Delivery>), Problem> {
    let mut violations = validation::check_lines(&request.items);
    violations.extend(validation::check_email(&request.email));
    if !violations.is_empty() {
        return Err(Problem::invalid_input(&violations));
    }
    let mut deliveries = state.deliveries.lock();
    if let Some(existing) = deliveries.get(&request.order_id) {
        return Ok((StatusCode::OK, Json(existing.clone())));
    }
    let estimated = time::OffsetDateTime::now_utc().date() + time::Duration::days(i64::from(state.delivery_days));
    let delivery = Delivery {
        tracking_id: format!("TRK-{}", &Uuid::new_v4().simple().to_string()[..12].to_uppercase()),
        order_id: request.order_id,
        estimated_delivery: estimated.to_string(),
        status: DeliveryStatus::Scheduled,
    };
    deliveries.insert(delivery.order_id, delivery.clone());
    tracing::info!(tracking_id = %delivery.tracking_id, "delivery scheduled");
    Ok((StatusCode::CREATED, Json(delivery)))
}

/// Cancels an order's shipment. Idempotent: 204 whether or not there was one.
#[tracing::instrument(name = "cancel delivery", skip_all, fields(order.id = %request.order_id))]
async fn cancel_delivery(State(state): State<AppState>, Json(request): Json<OrderRef>) -> StatusCode {
    if let Some(delivery) = state.deliveries.lock().get_mut(&request.order_id) {
        delivery.status = DeliveryStatus::Cancelled;
        tracing::info!(tracking_id = %delivery.tracking_id, "delivery cancelled");
    }
    StatusCode::NO_CONTENT
}

async fn deliveries(State(state): State<AppState>) -> Json<Vec<Delivery>> {
    Json(state.deliveries.all())
}
