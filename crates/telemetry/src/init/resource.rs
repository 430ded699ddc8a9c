//! The resource every signal carries: which service sent it.

use opentelemetry_sdk::Resource;

/// Overrides the service name the binary passes to [`crate::init`].
const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// `key=value,...` resource attributes; may also name `service.name`.
const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";

/// The resource of this process. `Resource::builder` reads
/// `OTEL_RESOURCE_ATTRIBUTES`; the name is set last so that the precedence in
/// [`service_name`] holds.
pub(super) fn resource(service_name: &str) -> Resource {
    Resource::builder().with_service_name(service_name.to_owned()).build()
}

/// `OTEL_SERVICE_NAME`, else a `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else the binary's own.
pub(super) fn service_name(default_service_name: &str) -> String {
    if let Ok(name) = std::env::var(OTEL_SERVICE_NAME)
        && !name.trim().is_empty()
    {
        return name.trim().to_owned();
    }
    std::env::var(OTEL_RESOURCE_ATTRIBUTES)
        .ok()
        .and_then(|attributes| {
            attributes.split(',').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key.trim() == "service.name" && !value.trim().is_empty()).then(|| value.trim().to_owned())
            })
        })
        .unwrap_or_else(|| default_service_name.to_owned())
}
