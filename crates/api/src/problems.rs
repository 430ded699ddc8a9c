//! The shop's problem vocabulary: the namespace of its problem types, and the
//! refusals more than one service gives, as plain data.
//!
//! No HTTP types here: each service answers these as problem+json with
//! `service_kit::Problem::described(KIND, description)`.

use std::fmt;

use serde::Serialize;
use uuid::Uuid;

/// Every problem type the shop answers with starts with this, e.g. `urn:eshop:problem:out-of-stock`.
pub const TYPE_PREFIX: &str = "urn:eshop:problem:";

/// A step (reserve, charge, schedule) for an order that was already
/// cancelled: the undo overtook it, so it must not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
}

impl OrderCancelled {
    pub fn new(order_id: Uuid) -> Self {
        Self { order_id }
    }

    /// HTTP status, slug and title.
    pub const KIND: (u16, &'static str, &'static str) = (409, "order-cancelled", "The order was cancelled");
}

impl fmt::Display for OrderCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "order {} was cancelled before this request arrived", self.order_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_cancelled_names_the_order_in_its_detail_and_members() {
        let order_id = Uuid::from_u128(7);
        let cancelled = OrderCancelled::new(order_id);
        assert_eq!(
            cancelled.to_string(),
            format!("order {order_id} was cancelled before this request arrived")
        );
        assert_eq!(
            serde_json::to_value(cancelled).expect("json"),
            serde_json::json!({ "order_id": order_id })
        );
    }
}
