//! The rules an order must meet, checked by eshop before it calls anyone and again by each callee.

use std::fmt;

use serde::Serialize;

use crate::{OrderLine, catalog};

/// At most this many of one SKU in an order.
pub const MAX_QUANTITY: u32 = 1_000;
/// At most this many lines in an order.
pub const MAX_LINES: usize = 50;
/// RFC 5321's limit on an address's length.
pub const MAX_EMAIL_LEN: usize = 254;

/// One broken rule: which field, and what is wrong with it. It serializes as
/// `{"field": .., "reason": ..}` and displays as `field: reason`, as problem
/// details list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// A JSON pointer-like path, e.g. `items[1].quantity`.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl Violation {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Every problem with these order lines, empty when they are acceptable.
pub fn check_lines(items: &[OrderLine]) -> Vec<Violation> {
    let mut violations = Vec::new();
    if items.is_empty() {
        violations.push(Violation::new("items", "an order needs at least one item"));
    }
    if items.len() > MAX_LINES {
        violations.push(Violation::new("items", format!("at most {MAX_LINES} lines per order")));
    }
    for (index, line) in items.iter().enumerate() {
        if catalog::product(&line.sku).is_none() {
            violations.push(Violation::new(
                format!("items[{index}].sku"),
                format!("unknown SKU {:?}", line.sku),
            ));
        }
        if line.quantity == 0 || line.quantity > MAX_QUANTITY {
            violations.push(Violation::new(
                format!("items[{index}].quantity"),
                format!("must be between 1 and {MAX_QUANTITY}, got {}", line.quantity),
            ));
        }
        if items[..index].iter().any(|earlier| earlier.sku == line.sku) {
            violations.push(Violation::new(
                format!("items[{index}].sku"),
                format!("{:?} appears twice; put the total in one line", line.sku),
            ));
        }
    }
    violations
}

/// Every problem with this email address (a plausibility check, not RFC 5322).
pub fn check_email(email: &str) -> Vec<Violation> {
    let plausible = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if plausible {
        Vec::new()
    } else {
        vec![Violation::new(
            "email",
            format!("not an email address: {}", mask_email(email)),
        )]
    }
}

/// An address as spans, logs and problem details may show it: its first
/// character and its domain, `j***@example.com`. An address is personal data;
/// the rest of it stays in the order's body and in notification's records.
pub fn mask_email(email: &str) -> String {
    /// Long enough for any real domain, short enough for a log line.
    const MAX_SHOWN: usize = 64;
    let first = |text: &str| text.chars().next().map(String::from).unwrap_or_default();
    match email.rsplit_once('@') {
        Some((local, domain)) => format!(
            "{}***@{}",
            first(local),
            domain.chars().take(MAX_SHOWN).collect::<String>()
        ),
        None => format!("{}*** ({} characters)", first(email), email.chars().count()),
    }
}

/// The amount an order costs, from catalogue prices; `None` for an unknown SKU or an overflow.
pub fn order_total_cents(items: &[OrderLine]) -> Option<u64> {
    items.iter().try_fold(0u64, |total, line| {
        let product = catalog::product(&line.sku)?;
        total.checked_add(product.unit_price_cents.checked_mul(u64::from(line.quantity))?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: u32) -> OrderLine {
        OrderLine {
            sku: sku.to_owned(),
            quantity,
        }
    }

    #[test]
    fn acceptable_lines_have_no_violations() {
        assert!(check_lines(&[line("BOOK-RUST", 1), line("MUG-FERRIS", MAX_QUANTITY)]).is_empty());
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let fields: Vec<String> = check_lines(&[
            line("NOPE", 0),
            line("BOOK-RUST", MAX_QUANTITY + 1),
            line("BOOK-RUST", 1),
        ])
        .into_iter()
        .map(|violation| violation.field)
        .collect();
        assert_eq!(
            fields,
            ["items[0].sku", "items[0].quantity", "items[1].quantity", "items[2].sku"]
        );
        assert_eq!(check_lines(&[])[0].field, "items");
    }

    #[test]
    fn a_violation_shows_as_problem_details_list_it() {
        let violation = Violation::new("items[0].sku", "unknown SKU");
        assert_eq!(violation.to_string(), "items[0].sku: unknown SKU");
        assert_eq!(
            serde_json::to_value(&violation).expect("json"),
            serde_json::json!({ "field": "items[0].sku", "reason": "unknown SKU" })
        );
    }

    #[test]
    fn emails_are_checked_for_plausibility() {
        assert!(check_email("jane.doe@example.com").is_empty());
        for bad in [
            "",
            "jane",
            "@example.com",
            "jane@localhost",
            "ja ne@example.com",
            "a@b@c.com",
        ] {
            assert_eq!(check_email(bad).len(), 1, "{bad:?} should be refused");
        }
    }

    #[test]
    fn emails_are_masked_in_what_is_shown() {
        assert_eq!(mask_email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask_email("jane"), "j*** (4 characters)");
        assert_eq!(mask_email(""), "*** (0 characters)");
        let refused = check_email("jane doe@example.com");
        assert!(!refused[0].reason.contains("jane doe"), "{:?}", refused[0].reason);
    }

    #[test]
    fn totals_use_catalogue_prices() {
        assert_eq!(
            order_total_cents(&[line("BOOK-RUST", 1), line("MUG-FERRIS", 2)]),
            Some(3_999 + 2 * 1_299)
        );
        assert_eq!(order_total_cents(&[line("NOPE", 1)]), None);
    }
}
