//! The limits an order must keep, and the violations the parsing types report when a body breaks them.

use std::fmt;

use serde::Serialize;

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
    /// A JSON pointer-like path, e.g. `items[1].quantity`; empty when the
    /// value itself is meant (a bare email address, before it has a field).
    pub field: String,
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl Violation {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Every rule a value broke. A type checks its own rules and knows nothing of
/// where it sits in a body, so the containing type places its violations
/// under its field with [`Violations::at`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// One violation of the value itself.
    pub fn of_value(reason: impl Into<String>) -> Self {
        Self(vec![Violation::new("", reason)])
    }

    pub fn push(&mut self, violation: Violation) {
        self.0.push(violation);
    }

    /// The same violations, each under `field` (`email`, `items`, `[2]`).
    pub fn at(self, field: &str) -> Self {
        let placed = self
            .0
            .into_iter()
            .map(|violation| Violation {
                field: join(field, &violation.field),
                reason: violation.reason,
            })
            .collect();
        Self(placed)
    }

    /// Adds `result`'s violations under `field`, and gives back its value if it had one.
    pub fn collect<T>(&mut self, field: &str, result: Result<T, Violations>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violations) => {
                self.0.extend(violations.at(field).0);
                None
            }
        }
    }

    /// `Ok(value)` when no rule was broken.
    pub fn or_ok<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Violations> {
        match (self.0.is_empty(), value()) {
            (true, Some(value)) => Ok(value),
            _ => Err(self),
        }
    }
}

fn join(outer: &str, inner: &str) -> String {
    match (outer, inner) {
        (outer, "") => outer.to_owned(),
        ("", inner) => inner.to_owned(),
        (outer, inner) if inner.starts_with('[') => format!("{outer}{inner}"),
        (outer, inner) => format!("{outer}.{inner}"),
    }
}

impl std::ops::Deref for Violations {
    type Target = [Violation];

    fn deref(&self) -> &[Violation] {
        &self.0
    }
}

impl From<Violations> for Vec<Violation> {
    fn from(violations: Violations) -> Self {
        violations.0
    }
}

/// `items[0].quantity: must be between 1 and 1000, got 0; email: ...`, what
/// serde reports when a body is deserialized straight into a checked type.
impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, violation) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            if violation.field.is_empty() {
                f.write_str(&violation.reason)?;
            } else {
                write!(f, "{}: {}", violation.field, violation.reason)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_placed_under_their_field() {
        let mut line = Violations::of_value("bad");
        line.push(Violation::new("quantity", "too many"));
        let placed = line.at("[2]").at("items");
        let fields: Vec<&str> = placed.iter().map(|violation| violation.field.as_str()).collect();
        assert_eq!(fields, ["items[2]", "items[2].quantity"]);
        assert_eq!(placed.to_string(), "items[2]: bad; items[2].quantity: too many");
        assert_eq!(Violations::of_value("bare").to_string(), "bare");
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
    fn emails_are_masked_in_what_is_shown() {
        assert_eq!(mask_email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask_email("jane"), "j*** (4 characters)");
        assert_eq!(mask_email(""), "*** (0 characters)");
    }
}
