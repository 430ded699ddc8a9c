//! Request bodies as they are sent, before any rule is checked: the shapes serde reads first.
//!
//! A body of the wrong shape (a missing or extra field, a negative quantity)
//! fails here; a body of the right shape that breaks a rule (an unknown SKU,
//! a quantity of 0) fails in the checked type's `TryFrom`, with every broken
//! rule listed. Services read these and parse them, so the two failures can
//! be answered differently; everything else uses the checked types.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    pub sku: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub email: String,
    pub items: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    pub order_id: Uuid,
    pub items: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub order_id: Uuid,
    pub email: String,
    pub items: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryRequest {
    pub order_id: Uuid,
    pub email: String,
    pub items: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    pub order_id: Uuid,
    pub to: String,
    pub subject: String,
    pub body: String,
}
