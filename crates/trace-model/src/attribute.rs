//! An attribute's value, as spans, log records and metric points carry it.

/// An attribute's value; maps and bytes are kept as their debug text.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Array(Vec<AttributeValue>),
    Other(String),
}

impl AttributeValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(value) => Some(value),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(value) => Some(*value),
            _ => None,
        }
    }

    /// The elements of a string array, or `None` for any other value.
    pub fn as_str_array(&self) -> Option<Vec<&str>> {
        match self {
            Self::Array(values) => values.iter().map(Self::as_str).collect(),
            _ => None,
        }
    }
}

/// An attribute value as log-line text.
pub(crate) fn display(value: &AttributeValue) -> String {
    match value {
        AttributeValue::String(text) | AttributeValue::Other(text) => text.clone(),
        AttributeValue::Int(value) => value.to_string(),
        AttributeValue::Double(value) => value.to_string(),
        AttributeValue::Bool(value) => value.to_string(),
        AttributeValue::Array(values) => format!("[{}]", values.iter().map(display).collect::<Vec<_>>().join(",")),
    }
}
