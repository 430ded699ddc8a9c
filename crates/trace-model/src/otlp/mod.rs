//! Reading OTLP: the protobuf bodies of `POST /v1/traces` and `/v1/logs`, flattened
//! from OTLP's resource/scope/item nesting into records.
//!
//! [`attributes`] and [`service_name`] are public so that decoders of the other
//! signals (the sink's metric points) read attributes and resources the same way.

mod logs;
mod spans;

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, KeyValue, any_value::Value},
    resource::v1::Resource,
};

pub use logs::decode_logs_request;
pub use spans::{decode_export_request, records};

use crate::AttributeValue;

/// The `service.name` of an OTLP resource, `unknown_service` without one.
pub fn service_name(resource: Option<&Resource>) -> String {
    resource
        .and_then(|resource| resource.attributes.iter().find(|kv| kv.key == "service.name"))
        .map(|kv| attribute_value(kv.value.as_ref()))
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown_service".to_owned())
}

/// Attributes as a map, values decoded.
pub fn attributes(attributes: &[KeyValue]) -> BTreeMap<String, AttributeValue> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), attribute_value(kv.value.as_ref())))
        .collect()
}

fn attribute_value(value: Option<&AnyValue>) -> AttributeValue {
    match value.and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(value)) => AttributeValue::String(value.clone()),
        Some(Value::IntValue(value)) => AttributeValue::Int(*value),
        Some(Value::DoubleValue(value)) => AttributeValue::Double(*value),
        Some(Value::BoolValue(value)) => AttributeValue::Bool(*value),
        Some(Value::ArrayValue(array)) => {
            AttributeValue::Array(array.values.iter().map(|value| attribute_value(Some(value))).collect())
        }
        Some(other) => AttributeValue::Other(format!("{other:?}")),
        None => AttributeValue::Other(String::new()),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}
