//! inventory: stock per SKU, kept in memory; reservations made for orders and released on undo.
//!
//! `POST /createOrder` reserves every line of an order or nothing (409 when
//! stock is short); `POST /cancelOrder` releases an order's reservation;
//! `GET /stock` shows what is available and reserved. A reservation that
//! arrives after its order's cancellation is refused (409), so an undo that
//! overtakes the step it undoes still leaves nothing reserved.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
};

use api::{
    OrderLine, OrderRef, Reservation, ReserveRequest, StockLevel, TableLimits, catalog, paths,
    problems::{self, OrderCancelled},
    unchecked,
};
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use service_kit::{
    BoundedTable, Json, Problem, Readiness, ServerLimits,
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

/// Everything one request reads and changes together, under one lock.
#[derive(Debug)]
struct Stock {
    levels: BTreeMap<String, Level>,
    /// The oldest reservations are forgotten when the table is full; their
    /// units stay reserved (those orders were placed long ago).
    reservations: BoundedTable<Uuid, Reservation>,
    cancelled: BoundedTable<Uuid, ()>,
}

#[derive(Debug, Clone)]
pub struct AppState {
    stock: Arc<Mutex<Stock>>,
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
            stock: Arc::new(Mutex::new(Stock {
                levels,
                reservations: BoundedTable::with_capacity(config.tables.records),
                cancelled: BoundedTable::with_capacity(config.tables.cancelled),
            })),
            limits: config.limits,
        }
    }

    fn stock(&self) -> std::sync::MutexGuard<'_, Stock> {
        self.stock.lock().unwrap_or_else(PoisonError::into_inner)
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
) -> Result<(StatusCode, Json<Reservation>), Problem> {
    let request = ReserveRequest::try_from(request).map_err(|broken| Problem::invalid_input(&broken))?;
    let mut stock = state.stock();
    if stock.cancelled.contains(&request.order_id) {
        return Err(Problem::described(
            OrderCancelled::KIND,
            OrderCancelled::new(request.order_id),
        ));
    }
    if let Some(existing) = stock.reservations.get(&request.order_id) {
        return Ok((StatusCode::OK, Json(existing.clone())));
    }
    let short: Vec<String> = request
        .items
        .iter()
        .filter_map(|line| {
            let available = stock.levels.get(line.sku.as_str()).map_or(0, |level| level.available);
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
        let level = stock.levels.entry(sku.as_str().to_owned()).or_default();
        level.available -= quantity.get();
        level.reserved += quantity.get();
    }
    let reservation = Reservation {
        reservation_id: Uuid::new_v4(),
        order_id: request.order_id,
        items: request.items,
    };
    stock.reservations.insert(reservation.order_id, reservation.clone());
    tracing::info!(
        name: eshop::event::STOCK_RESERVED,
        {
            { eshop::attribute::RESERVATION_ID } = %reservation.reservation_id,
        },
        "stock reserved"
    );
    Ok((StatusCode::CREATED, Json(reservation)))
}

/// Puts an order's reserved units back and remembers the order as cancelled.
/// Idempotent: 204 whether or not there was anything to release, even for an
/// order never seen (its reservation may still be on its way).
#[tracing::instrument(name = "release stock", skip_all, fields({ eshop::attribute::ORDER_ID } = %request.order_id))]
async fn cancel_order(State(state): State<AppState>, Json(request): Json<OrderRef>) -> StatusCode {
    let mut stock = state.stock();
    stock.cancelled.insert(request.order_id, ());
    if let Some(reservation) = stock.reservations.remove(&request.order_id) {
        for OrderLine { sku, quantity } in &reservation.items {
            let level = stock.levels.entry(sku.as_str().to_owned()).or_default();
            level.reserved -= quantity.get();
            level.available += quantity.get();
        }
        tracing::info!(name: eshop::event::STOCK_RELEASED, "reservation released");
    }
    StatusCode::NO_CONTENT
}

async fn stock(State(state): State<AppState>) -> Json<Vec<StockLevel>> {
    let levels = state
        .stock()
        .levels
        .iter()
        .map(|(sku, level)| StockLevel {
            sku: sku.clone(),
            available: level.available,
            reserved: level.reserved,
        })
        .collect();
    Json(levels)
}
