//! The product catalogue every service agrees on: what can be ordered and at what price.

/// One product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    pub sku: &'static str,
    pub name: &'static str,
    pub unit_price_cents: u64,
}

/// Prices are in this currency.
pub const CURRENCY: &str = "EUR";

/// Everything the shop sells. The laptop costs more than billing's default
/// credit limit, so ordering it shows a declined payment.
pub const PRODUCTS: &[Product] = &[
    Product {
        sku: "BOOK-RUST",
        name: "The Rust Programming Language",
        unit_price_cents: 3_999,
    },
    Product {
        sku: "MUG-FERRIS",
        name: "Ferris mug",
        unit_price_cents: 1_299,
    },
    Product {
        sku: "TSHIRT-OTEL",
        name: "OpenTelemetry T-shirt",
        unit_price_cents: 2_499,
    },
    Product {
        sku: "STICKERS-ISTIO",
        name: "Istio sticker pack",
        unit_price_cents: 499,
    },
    Product {
        sku: "LAPTOP-PRO",
        name: "Laptop",
        unit_price_cents: 189_900,
    },
];

/// The product with this SKU.
pub fn product(sku: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|product| product.sku == sku)
}

/// The order `GET /checkout` places, so a bare `curl /checkout` shows the whole flow.
pub fn sample_order() -> crate::CheckoutRequest {
    let body = crate::unchecked::CheckoutRequest {
        email: "jane.doe@example.com".to_owned(),
        items: vec![
            crate::unchecked::OrderLine {
                sku: "BOOK-RUST".to_owned(),
                quantity: 1,
            },
            crate::unchecked::OrderLine {
                sku: "MUG-FERRIS".to_owned(),
                quantity: 2,
            },
        ],
    };
    // A unit test parses it too, so this cannot fire in a build that passed its tests.
    crate::CheckoutRequest::try_from(body).expect("the sample order keeps the rules")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sample_order_keeps_the_rules() {
        assert_eq!(super::sample_order().items.len(), 2);
    }
}
