//! inventory: stock per SKU, kept in memory; reservations made for orders and released on undo.
//!
//! `POST /createOrder` reserves every line of an order or nothing (409 when
//! stock is short); `POST /cancelOrder` releases an order's reservation;
//! `GET /stock` shows what is available and reserved. A reservation that
//! arrives after its order's cancellation is refused (409), so an undo that
//! overtakes the step it undoes still leaves nothing reserved.

use std::{collections::BTreeMap, sync::Arc};

use api::{
    OrderLine, OrderRef, Reservation, ReserveRequest, StockLevel, TableLimits, catalog, paths, problems, unchecked,
};
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use order_steps::{AfterUndo, OrderSteps, Stepped};
use service_kit::{
    Json, Problem, Readiness, ServerLimits,
    config::{ConfigError, Listen, env_count, env_or},
};
use telemetry::semconv::eshop;
use uuid::Uuid;

/// Units of each catalogue SKU in stock at start.
pub const INITIAL_STOCK: &str = "INITIAL_STOCK";
pub const DEFAULT_INITIAL_STOCK: u32 = 1_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub limits: ServerLimits,
    pub tables: TableLimits,
    pub initial_stock: u32,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env()?,
            limits: ServerLimits::from_env()?,
            tables: TableLimits::read(env_count)?,
            initial_stock: env_or(INITIAL_STOCK, DEFAULT_INITIAL_STOCK)?,
        })
    }
}

impl service_kit::ServiceConfig for Config {
    fn listen(&self) -> Listen {
        self.listen
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Level {
    available: u32,
    reserved: u32,
}

/// Units per SKU, changed by the steps under the same lock as their records.
type Levels = BTreeMap<String, Level>;

#[derive(Debug, Clone)]
pub struct AppState {
    /// One reservation per order. The oldest are forgotten when the table is
    /// full; their units stay reserved (those orders were placed long ago).
    stock: Arc<OrderSteps<Reservation, Levels>>,
    limits: ServerLimits,
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        let levels = catalog::PRODUCTS
            .iter()
            .map(|product| {
                (
                    product.sku.to_owned(),
                    Level {
                        available: config.initial_stock,
                        reserved: 0,
                    },
                )
            })
            .collect();
        Self {
            stock: Arc::new(OrderSteps::new(config.tables, levels)),
            limits: config.limits,
        }
    }
}

pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let api = Router::new()
        .route(paths::CREATE_ORDER, post(create_order))
        .route(paths::CANCEL_ORDER, post(cancel_order))
        .route(paths::STOCK, get(stock))
        .with_state(state);
    service_kit::service_router(api, Readiness::ready(), limits, problems::TYPE_PREFIX)
}

/// Reserves all lines or none. Asking again for the same order returns the
/// reservation already made, so a retried call cannot reserve twice; asking
/// after the order was cancelled is refused.
#[tracing::instrument(name = "reserve stock", skip_all, fields({ eshop::attribute::ORDER_ID } = %request.order_id))]
async fn create_order(
    State(state): State<AppState>,
    Json(request): Json<unchecked::ReserveRequest>,
) -> Result<Stepped<Reservation>, Problem> {
    let request = ReserveRequest::try_from(request).map_err(|broken| Problem::invalid_input(&broken))?;
    state.stock.take(request.order_id, |levels| {
        let short: Vec<String> = request
            .items
            .iter()
            .filter_map(|line| {
                let available = levels.get(line.sku.as_str()).map_or(0, |level| level.available);
                (available < line.quantity.get())
                    .then(|| format!("{}: {} requested, {} available", line.sku, line.quantity, available))
            })
            .collect();
        if !short.is_empty() {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "out-of-stock",
                "Not enough stock",
                short.join("; "),
            ));
        }
        for OrderLine { sku, quantity } in &request.items {
            let level = levels.entry(sku.as_str().to_owned()).or_default();
            level.available -= quantity.get();
            level.reserved += quantity.get();
        }
        let reservation = Reservation {
            reservation_id: Uuid::new_v4(),
            order_id: request.order_id,
            items: request.items,
        };
        tracing::info!(
            name: eshop::event::STOCK_RESERVED,
            {
                { eshop::attribute::RESERVATION_ID } = %reservation.reservation_id,
            },
            "stock reserved"
        );
        Ok(reservation)
    })
}

/// Puts an order's reserved units back and remembers the order as cancelled.
/// Idempotent: 204 whether or not there was anything to release, even for an
/// order never seen (its reservation may still be on its way).
#[tracing::instrument(name = "release stock", skip_all, fields({ eshop::attribute::ORDER_ID } = %request.order_id))]
async fn cancel_order(State(state): State<AppState>, Json(request): Json<OrderRef>) -> StatusCode {
    state.stock.undo(request.order_id, |reservation, levels| {
        for OrderLine { sku, quantity } in &reservation.items {
            let level = levels.entry(sku.as_str().to_owned()).or_default();
            level.reserved -= quantity.get();
            level.available += quantity.get();
        }
        tracing::info!(name: eshop::event::STOCK_RELEASED, "reservation released");
        AfterUndo::Forget
    });
    StatusCode::NO_CONTENT
}

async fn stock(State(state): State<AppState>) -> Json<Vec<StockLevel>> {
    Json(state.stock.read_shared(|levels| {
        levels
            .iter()
            .map(|(sku, level)| StockLevel {
                sku: sku.clone(),
                available: level.available,
                reserved: level.reserved,
            })
            .collect()
    }))
}
