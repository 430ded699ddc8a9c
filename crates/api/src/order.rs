//! An order's lines, parsed: catalogue SKUs, quantities in range, at least one and at most [`MAX_LINES`] lines, each SKU once.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::{
    catalog::{self, Product},
    unchecked,
    validation::{MAX_LINES, MAX_QUANTITY, Violation, Violations},
};

/// A SKU the catalogue sells.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Sku(&'static Product);

impl Sku {
    pub fn as_str(&self) -> &'static str {
        self.0.sku
    }

    pub fn product(&self) -> &'static Product {
        self.0
    }
}

/// Every catalogue product has a SKU; this is how code names one without parsing.
impl From<&'static Product> for Sku {
    fn from(product: &'static Product) -> Self {
        Self(product)
    }
}

impl TryFrom<&str> for Sku {
    type Error = Violations;

    fn try_from(sku: &str) -> Result<Self, Violations> {
        catalog::product(sku)
            .map(Self)
            .ok_or_else(|| Violations::of_value(format!("unknown SKU {sku:?}")))
    }
}

impl TryFrom<String> for Sku {
    type Error = Violations;

    fn try_from(sku: String) -> Result<Self, Violations> {
        Self::try_from(sku.as_str())
    }
}

impl Serialize for Sku {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Debug for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sku({})", self.as_str())
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many of one SKU: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub const ONE: Self = Self(1);

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = Violations;

    fn try_from(quantity: u32) -> Result<Self, Violations> {
        if (1..=MAX_QUANTITY).contains(&quantity) {
            Ok(Self(quantity))
        } else {
            Err(Violations::of_value(format!(
                "must be between 1 and {MAX_QUANTITY}, got {quantity}"
            )))
        }
    }
}

impl From<Quantity> for u32 {
    fn from(quantity: Quantity) -> Self {
        quantity.0
    }
}

impl From<Quantity> for u64 {
    fn from(quantity: Quantity) -> Self {
        u64::from(quantity.0)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One line of an order: a catalogue SKU and how many of it. Both fields are
/// valid by their types, so the fields can be public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "unchecked::OrderLine")]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: Quantity,
}

impl TryFrom<unchecked::OrderLine> for OrderLine {
    type Error = Violations;

    fn try_from(line: unchecked::OrderLine) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        let sku = violations.collect("sku", Sku::try_from(line.sku));
        let quantity = violations.collect("quantity", Quantity::try_from(line.quantity));
        violations.or_ok(|| {
            Some(Self {
                sku: sku?,
                quantity: quantity?,
            })
        })
    }
}

/// An order's lines: at least one, at most [`MAX_LINES`], no SKU twice (the
/// total goes in one line, so a reservation or a charge per SKU is one number).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<unchecked::OrderLine>")]
pub struct OrderLines(Vec<OrderLine>);

impl OrderLines {
    /// What the order costs at catalogue prices. Cannot overflow: at most
    /// [`MAX_LINES`] lines of at most [`MAX_QUANTITY`] each (a test checks the
    /// dearest such order); saturating all the same, never wrapping.
    pub fn total_cents(&self) -> u64 {
        self.0.iter().fold(0u64, |total, line| {
            total.saturating_add(
                line.sku
                    .product()
                    .unit_price_cents
                    .saturating_mul(u64::from(line.quantity)),
            )
        })
    }

    pub fn into_vec(self) -> Vec<OrderLine> {
        self.0
    }
}

/// The rules on the list as a whole, given each line's SKU as sent.
fn list_violations(skus: &[&str]) -> Violations {
    let mut violations = Violations::default();
    if skus.is_empty() {
        violations.push(Violation::new("", "an order needs at least one item"));
    }
    if skus.len() > MAX_LINES {
        // Nothing more is checked: the lines of an order this long are not
        // read one by one (nor listed back, one violation each).
        violations.push(Violation::new("", format!("at most {MAX_LINES} lines per order")));
        return violations;
    }
    for (index, sku) in skus.iter().enumerate() {
        if skus[..index].contains(sku) {
            violations.push(Violation::new(
                format!("[{index}].sku"),
                format!("{sku:?} appears twice; put the total in one line"),
            ));
        }
    }
    violations
}

impl TryFrom<Vec<unchecked::OrderLine>> for OrderLines {
    type Error = Violations;

    fn try_from(lines: Vec<unchecked::OrderLine>) -> Result<Self, Violations> {
        let skus: Vec<&str> = lines.iter().map(|line| line.sku.as_str()).collect();
        let mut violations = list_violations(&skus);
        if lines.len() > MAX_LINES {
            return Err(violations);
        }
        let parsed: Vec<Option<OrderLine>> = lines
            .iter()
            .enumerate()
            .map(|(index, line)| violations.collect(&format!("[{index}]"), OrderLine::try_from(line.clone())))
            .collect();
        violations.or_ok(|| parsed.into_iter().collect::<Option<Vec<_>>>().map(Self))
    }
}

impl TryFrom<Vec<OrderLine>> for OrderLines {
    type Error = Violations;

    fn try_from(lines: Vec<OrderLine>) -> Result<Self, Violations> {
        let skus: Vec<&str> = lines.iter().map(|line| line.sku.as_str()).collect();
        list_violations(&skus).or_ok(|| Some(Self(lines)))
    }
}

impl std::ops::Deref for OrderLines {
    type Target = [OrderLine];

    fn deref(&self) -> &[OrderLine] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a OrderLines {
    type Item = &'a OrderLine;
    type IntoIter = std::slice::Iter<'a, OrderLine>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for OrderLines {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::PRODUCTS;

    fn raw(sku: &str, quantity: u32) -> unchecked::OrderLine {
        unchecked::OrderLine {
            sku: sku.to_owned(),
            quantity,
        }
    }

    fn fields(violations: &Violations) -> Vec<&str> {
        violations.iter().map(|violation| violation.field.as_str()).collect()
    }

    #[test]
    fn skus_are_the_catalogues() {
        assert_eq!(
            Sku::try_from("BOOK-RUST").expect("sold").product().unit_price_cents,
            3_999
        );
        let unknown = Sku::try_from("NO-SUCH-SKU").expect_err("not sold");
        assert_eq!(unknown.to_string(), "unknown SKU \"NO-SUCH-SKU\"");
        assert!(Sku::try_from("book-rust").is_err(), "SKUs are case-sensitive");
    }

    #[test]
    fn quantities_are_one_to_the_cap() {
        assert_eq!(Quantity::try_from(1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::try_from(MAX_QUANTITY).map(Quantity::get), Ok(MAX_QUANTITY));
        for bad in [0, MAX_QUANTITY + 1, u32::MAX] {
            let refused = Quantity::try_from(bad).expect_err("out of range");
            assert_eq!(refused.to_string(), format!("must be between 1 and 1000, got {bad}"));
        }
    }

    #[test]
    fn a_line_lists_both_of_its_broken_rules() {
        let line = OrderLine::try_from(raw("MUG-FERRIS", 2)).expect("valid");
        assert_eq!((line.sku.as_str(), line.quantity.get()), ("MUG-FERRIS", 2));
        let refused = OrderLine::try_from(raw("NOPE", 0)).expect_err("both broken");
        assert_eq!(fields(&refused), ["sku", "quantity"]);
    }

    #[test]
    fn acceptable_lines_parse() {
        let lines = OrderLines::try_from(vec![raw("BOOK-RUST", 1), raw("MUG-FERRIS", MAX_QUANTITY)]).expect("valid");
        assert_eq!(lines.len(), 2);
        let most: Vec<_> = (0..MAX_LINES).map(|_| raw("BOOK-RUST", 1)).collect();
        assert_eq!(
            fields(&OrderLines::try_from(most).expect_err("duplicates"))[0],
            "[1].sku",
            "{MAX_LINES} lines are not refused for their number"
        );
    }

    #[test]
    fn no_lines_are_refused() {
        let refused = OrderLines::try_from(Vec::<unchecked::OrderLine>::new()).expect_err("empty");
        assert_eq!(refused.to_string(), "an order needs at least one item");
        assert!(OrderLines::try_from(Vec::<OrderLine>::new()).is_err());
    }

    #[test]
    fn too_many_lines_are_refused() {
        let lines: Vec<_> = (0..=MAX_LINES).map(|_| raw("BOOK-RUST", 1)).collect();
        let refused = OrderLines::try_from(lines).expect_err("too many");
        assert_eq!(refused[0].reason, format!("at most {MAX_LINES} lines per order"));
        assert_eq!(refused[0].field, "");
        // Past the limit the lines are not read: 2,000 bad lines, one violation.
        let bad: Vec<_> = (0..2_000).map(|_| raw("NOPE", 0)).collect();
        let refused = OrderLines::try_from(bad).expect_err("too many");
        assert_eq!(refused.len(), 1, "{refused}");
    }

    #[test]
    fn a_sku_twice_is_refused() {
        let refused = OrderLines::try_from(vec![raw("BOOK-RUST", 1), raw("MUG-FERRIS", 1), raw("BOOK-RUST", 2)])
            .expect_err("twice");
        assert_eq!(fields(&refused), ["[2].sku"]);
        assert!(refused[0].reason.contains("appears twice"), "{refused}");
        let book = OrderLine {
            sku: Sku::from(&PRODUCTS[0]),
            quantity: Quantity::ONE,
        };
        assert!(
            OrderLines::try_from(vec![book, book]).is_err(),
            "checked lines keep the rule too"
        );
    }

    #[test]
    fn each_broken_line_is_named() {
        let refused = OrderLines::try_from(vec![
            raw("NOPE", 0),
            raw("BOOK-RUST", MAX_QUANTITY + 1),
            raw("BOOK-RUST", 1),
        ])
        .expect_err("broken");
        assert_eq!(fields(&refused), ["[2].sku", "[0].sku", "[0].quantity", "[1].quantity"]);
    }

    #[test]
    fn lines_deserialize_only_when_valid() {
        let lines: OrderLines = serde_json::from_str(r#"[{"sku":"BOOK-RUST","quantity":3}]"#).expect("valid");
        assert_eq!(
            serde_json::to_string(&lines).expect("json"),
            r#"[{"sku":"BOOK-RUST","quantity":3}]"#
        );
        let refused = serde_json::from_str::<OrderLines>(r#"[{"sku":"NOPE","quantity":3}]"#).expect_err("unknown");
        assert!(
            refused.to_string().starts_with("[0].sku: unknown SKU \"NOPE\""),
            "{refused}"
        );
        assert!(serde_json::from_str::<OrderLine>(r#"{"sku":"BOOK-RUST","quantity":1,"x":1}"#).is_err());
        assert!(serde_json::from_str::<Quantity>("0").is_err());
    }

    #[test]
    fn the_dearest_possible_order_does_not_saturate() {
        let dearest = PRODUCTS
            .iter()
            .map(|product| product.unit_price_cents)
            .max()
            .unwrap_or_default();
        let exact = u128::from(dearest) * u128::from(MAX_QUANTITY) * MAX_LINES as u128;
        assert!(exact < u128::from(u64::MAX), "{exact} fits");
        let lines = OrderLines::try_from(vec![raw("BOOK-RUST", 2), raw("MUG-FERRIS", 3)]).expect("valid");
        assert_eq!(lines.total_cents(), 2 * 3_999 + 3 * 1_299);
    }
}
