//! How each request body becomes its checked type: every broken rule listed under its field, or the request.

use crate::{
    CheckoutRequest, DeliveryRequest, Email, EmailRequest, OrderLines, PaymentRequest, ReserveRequest, unchecked,
    validation::{Violation, Violations},
};

impl TryFrom<unchecked::CheckoutRequest> for CheckoutRequest {
    type Error = Violations;

    fn try_from(body: unchecked::CheckoutRequest) -> Result<Self, Violations> {
        let (email, items) = customer_and_lines(body.email, body.items)?;
        Ok(Self { email, items })
    }
}

impl TryFrom<unchecked::ReserveRequest> for ReserveRequest {
    type Error = Violations;

    fn try_from(body: unchecked::ReserveRequest) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        let items = violations.collect("items", OrderLines::try_from(body.items));
        violations.or_ok(|| {
            Some(Self {
                order_id: body.order_id,
                items: items?,
            })
        })
    }
}

impl TryFrom<unchecked::PaymentRequest> for PaymentRequest {
    type Error = Violations;

    fn try_from(body: unchecked::PaymentRequest) -> Result<Self, Violations> {
        let (email, items) = customer_and_lines(body.email, body.items)?;
        Ok(Self {
            order_id: body.order_id,
            email,
            items,
        })
    }
}

impl TryFrom<unchecked::DeliveryRequest> for DeliveryRequest {
    type Error = Violations;

    fn try_from(body: unchecked::DeliveryRequest) -> Result<Self, Violations> {
        let (email, items) = customer_and_lines(body.email, body.items)?;
        Ok(Self {
            order_id: body.order_id,
            email,
            items,
        })
    }
}

/// An order's customer and lines, checked together: the violations of both
/// fields are listed at once, not only the first field's.
fn customer_and_lines(email: String, items: Vec<unchecked::OrderLine>) -> Result<(Email, OrderLines), Violations> {
    let mut violations = Violations::default();
    let email = violations.collect("email", Email::try_from(email));
    let items = violations.collect("items", OrderLines::try_from(items));
    violations.or_ok(|| Some((email?, items?)))
}

impl TryFrom<unchecked::EmailRequest> for EmailRequest {
    type Error = Violations;

    fn try_from(body: unchecked::EmailRequest) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        let to = violations.collect("to", Email::try_from(body.to));
        if body.subject.trim().is_empty() {
            violations.push(Violation::new("subject", "must not be empty"));
        }
        violations.or_ok(|| {
            Some(Self {
                order_id: body.order_id,
                to: to?,
                subject: body.subject,
                body: body.body,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn line(sku: &str, quantity: u32) -> Value {
        json!({ "sku": sku, "quantity": quantity })
    }

    fn fields(violations: &Violations) -> Vec<&str> {
        violations.iter().map(|violation| violation.field.as_str()).collect()
    }

    /// Parses like a service does: the shape first, then the rules.
    fn parse<Body, Checked>(body: Value) -> Result<Checked, Violations>
    where
        Body: serde::de::DeserializeOwned,
        Checked: TryFrom<Body, Error = Violations>,
    {
        Checked::try_from(serde_json::from_value::<Body>(body).expect("the right shape"))
    }

    #[test]
    fn a_checkout_lists_every_broken_rule_under_its_field() {
        let valid = json!({ "email": "jane@example.com", "items": [line("BOOK-RUST", 1)] });
        let order: CheckoutRequest = parse::<unchecked::CheckoutRequest, _>(valid).expect("valid");
        assert_eq!(order.email.as_str(), "jane@example.com");
        let broken = json!({ "email": "jane", "items": [line("NOPE", 0)] });
        let refused = parse::<unchecked::CheckoutRequest, CheckoutRequest>(broken).expect_err("broken");
        assert_eq!(fields(&refused), ["email", "items[0].sku", "items[0].quantity"]);
        let empty = json!({ "email": "jane@example.com", "items": [] });
        let refused = parse::<unchecked::CheckoutRequest, CheckoutRequest>(empty).expect_err("empty");
        assert_eq!(fields(&refused), ["items"]);
    }

    #[test]
    fn a_reservation_request_checks_its_lines() {
        let id = uuid::Uuid::new_v4();
        let valid = json!({ "order_id": id, "items": [line("BOOK-RUST", 1)] });
        assert_eq!(
            parse::<unchecked::ReserveRequest, ReserveRequest>(valid).map(|request| request.order_id),
            Ok(id)
        );
        let twice = json!({ "order_id": id, "items": [line("BOOK-RUST", 1), line("BOOK-RUST", 1)] });
        let refused = parse::<unchecked::ReserveRequest, ReserveRequest>(twice).expect_err("twice");
        assert_eq!(fields(&refused), ["items[1].sku"]);
    }

    #[test]
    fn payment_and_delivery_requests_check_email_and_lines() {
        let id = uuid::Uuid::new_v4();
        let valid = json!({ "order_id": id, "email": "jane@example.com", "items": [line("BOOK-RUST", 1)] });
        assert!(parse::<unchecked::PaymentRequest, PaymentRequest>(valid.clone()).is_ok());
        assert!(parse::<unchecked::DeliveryRequest, DeliveryRequest>(valid).is_ok());
        let broken = json!({ "order_id": id, "email": "jane@", "items": [line("BOOK-RUST", 1_001)] });
        let refused = parse::<unchecked::PaymentRequest, PaymentRequest>(broken.clone()).expect_err("broken");
        assert_eq!(fields(&refused), ["email", "items[0].quantity"]);
        let refused = parse::<unchecked::DeliveryRequest, DeliveryRequest>(broken).expect_err("broken");
        assert_eq!(fields(&refused), ["email", "items[0].quantity"]);
    }

    #[test]
    fn an_email_request_needs_an_address_and_a_subject() {
        let id = uuid::Uuid::new_v4();
        let valid = json!({ "order_id": id, "to": "jane@example.com", "subject": "Hi", "body": "" });
        assert!(parse::<unchecked::EmailRequest, EmailRequest>(valid).is_ok());
        let broken = json!({ "order_id": id, "to": "jane doe@example.com", "subject": " \n", "body": "" });
        let refused = parse::<unchecked::EmailRequest, EmailRequest>(broken).expect_err("broken");
        assert_eq!(fields(&refused), ["to", "subject"]);
        assert!(!refused.to_string().contains("jane doe"), "masked: {refused}");
    }

    #[test]
    fn checked_types_deserialize_only_when_valid_with_the_violations_as_the_message() {
        let valid = r#"{"email":"jane@example.com","items":[{"sku":"BOOK-RUST","quantity":1}]}"#;
        let order: CheckoutRequest = serde_json::from_str(valid).expect("valid");
        assert_eq!(
            serde_json::to_string(&order).expect("json"),
            valid,
            "serializes as it was sent"
        );
        let broken = r#"{"email":"jane@example.com","items":[{"sku":"BOOK-RUST","quantity":0}]}"#;
        let refused = serde_json::from_str::<CheckoutRequest>(broken).expect_err("broken");
        assert!(
            refused
                .to_string()
                .starts_with("items[0].quantity: must be between 1 and 1000, got 0"),
            "{refused}"
        );
        let extra = r#"{"email":"jane@example.com","items":[],"coupon":"X"}"#;
        assert!(
            serde_json::from_str::<CheckoutRequest>(extra).is_err(),
            "unknown fields are refused"
        );
    }
}
