//! The JSON contracts between the services, shared by caller and callee so they cannot drift apart.
//!
//! Paths are the 2019 Java demo's, so its walkthrough still works:
//! eshop `/checkout` -> inventory `/createOrder`, billing `/payment`, delivery
//! `/arrangeDelivery` -> Kafka `eshop-topic` -> notification `/sendEmail`.
//! The undo paths (`/cancelOrder`, `/refund`, `/cancelDelivery`) are this suite's own.
//!
//! The request types deserialize only when they keep the rules (see
//! [`validation`]): a handler that holds one needs no checks of its own.
//! [`unchecked`] has the same bodies before the rules, for services that
//! answer a wrong shape and a broken rule differently.

pub mod catalog;
mod email;
mod order;
pub mod problems;
mod requests;
pub mod tables;
pub mod unchecked;
pub mod validation;

pub use tables::TableLimits;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use email::Email;
pub use order::{OrderLine, OrderLines, Quantity, Sku};

/// The routes each service serves, named once for both sides of the call.
pub mod paths {
    pub const CHECKOUT: &str = "/checkout";
    pub const CREATE_ORDER: &str = "/createOrder";
    pub const CANCEL_ORDER: &str = "/cancelOrder";
    pub const STOCK: &str = "/stock";
    pub const PAYMENT: &str = "/payment";
    pub const REFUND: &str = "/refund";
    pub const CONFIRM_PAYMENT: &str = "/confirmPayment";
    pub const PAYMENTS: &str = "/payments";
    pub const ARRANGE_DELIVERY: &str = "/arrangeDelivery";
    pub const CANCEL_DELIVERY: &str = "/cancelDelivery";
    pub const DELIVERIES: &str = "/deliveries";
    pub const SEND_EMAIL: &str = "/sendEmail";
    pub const SENT_EMAILS: &str = "/sentEmails";
    pub const DEAD_LETTERS_REPLAY: &str = "/dead-letters/replay";
}

/// eshop `POST /checkout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "unchecked::CheckoutRequest")]
pub struct CheckoutRequest {
    pub email: Email,
    pub items: OrderLines,
}

/// eshop's answer to a successful checkout: what every step returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutResponse {
    pub order_id: Uuid,
    /// Paste into Jaeger's search box; also in the `traceresponse` header.
    pub trace_id: Option<String>,
    pub reservation: Reservation,
    pub payment: Payment,
    pub delivery: Delivery,
    pub event: Option<PublishedEvent>,
}

/// Where the "order placed" event landed in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedEvent {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// inventory `POST /createOrder`: reserve stock for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "unchecked::ReserveRequest")]
pub struct ReserveRequest {
    pub order_id: Uuid,
    pub items: OrderLines,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub order_id: Uuid,
    pub items: OrderLines,
}

/// The body of every undo call: inventory `/cancelOrder`, billing `/refund`, delivery `/cancelDelivery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRef {
    pub order_id: Uuid,
}

/// inventory `GET /stock`: one entry per SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub sku: String,
    pub available: u32,
    pub reserved: u32,
}

/// billing `POST /payment`: billing prices the items itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "unchecked::PaymentRequest")]
pub struct PaymentRequest {
    pub order_id: Uuid,
    pub email: Email,
    pub items: OrderLines,
}

/// The longest billing holds a `GET /payments?order_id=&wait_ms=` for the
/// payment to be confirmed or refunded: well inside a caller's default 2 s timeout.
pub const MAX_SETTLE_WAIT_MS: u64 = 1_000;

/// Where a payment stands. kafka-consumer emails an order only once its
/// payment is `Confirmed`: eshop confirms after Kafka acknowledged the order's
/// event, and refunds instead when the checkout failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Charged by a checkout still running: it may yet be refunded.
    Charged,
    /// The checkout went through (its event is in Kafka): the order stands.
    Confirmed,
    /// The checkout failed and was undone.
    Refunded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount_cents: u64,
    pub currency: String,
    pub status: PaymentStatus,
}

/// delivery `POST /arrangeDelivery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "unchecked::DeliveryRequest")]
pub struct DeliveryRequest {
    pub order_id: Uuid,
    pub email: Email,
    pub items: OrderLines,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Scheduled,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub tracking_id: String,
    pub order_id: Uuid,
    /// `YYYY-MM-DD`.
    pub estimated_delivery: String,
    pub status: DeliveryStatus,
}

/// The event eshop publishes to Kafka once every REST step succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub email: Email,
    pub items: OrderLines,
    pub amount_cents: u64,
    pub currency: String,
    pub tracking_id: String,
    pub estimated_delivery: String,
}

/// notification `POST /sendEmail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "unchecked::EmailRequest")]
pub struct EmailRequest {
    pub order_id: Uuid,
    pub to: Email,
    /// Not blank.
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    /// Sent now.
    Sent,
    /// This order's email went out before; nothing was sent again.
    AlreadySent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailReceipt {
    pub order_id: Uuid,
    pub status: EmailStatus,
}

/// notification `GET /sentEmails`: every email sent, once per order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentEmail {
    pub order_id: Uuid,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// How many requests asked for this email, the first included.
    pub requests: u32,
}
