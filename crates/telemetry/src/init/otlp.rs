//! Which OTLP protocol each signal's exporter speaks, and whether a signal is exported at all.

use super::TelemetryError;

/// `http/protobuf` (the default) or `grpc` (with the `grpc` feature).
const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";

/// The wire an exporter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    HttpProtobuf,
    #[cfg(feature = "grpc")]
    Grpc,
}

/// The protocol for one signal: its own variable (e.g.
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`), else the shared one, else the
/// specification's default `http/protobuf`.
pub(super) fn protocol(signal_var: &'static str) -> Result<Protocol, TelemetryError> {
    for var in [signal_var, OTEL_EXPORTER_OTLP_PROTOCOL] {
        let Ok(value) = std::env::var(var) else { continue };
        return match value.trim() {
            "" => continue,
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            #[cfg(feature = "grpc")]
            "grpc" => Ok(Protocol::Grpc),
            _ => Err(TelemetryError::UnsupportedProtocol { var, value }),
        };
    }
    Ok(Protocol::HttpProtobuf)
}

/// The exporters `var` (`OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER`) names:
/// a comma-separated list, as the SDK environment variable specification
/// allows; unset or empty means `otlp` (its default) and `none` alone means
/// none. A name outside `supported` is an error, not a silent default.
pub(super) fn exporters(
    var: &'static str,
    supported: &'static [&'static str],
) -> Result<Vec<&'static str>, TelemetryError> {
    named_exporters(var, std::env::var(var).unwrap_or_default(), supported)
}

fn named_exporters(
    var: &'static str,
    value: String,
    supported: &'static [&'static str],
) -> Result<Vec<&'static str>, TelemetryError> {
    // Case-insensitive: "Enum values SHOULD be interpreted in a
    // case-insensitive manner" (SDK environment variable specification).
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(vec!["otlp"]);
    }
    if trimmed.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|name| {
            supported
                .iter()
                .copied()
                .find(|supported| supported.eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| TelemetryError::UnsupportedExporter {
                    var,
                    value: value.clone(),
                    supported: supported.join(", ") + ", or none alone",
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAR: &str = "OTEL_METRICS_EXPORTER";
    const SUPPORTED: &[&str] = &["otlp", "prometheus"];

    fn named(value: &str) -> Result<Vec<&'static str>, TelemetryError> {
        named_exporters(VAR, value.to_owned(), SUPPORTED)
    }

    #[test]
    fn exporters_are_read_as_the_specification_lists_them() {
        assert_eq!(named("").expect("default"), ["otlp"]);
        assert_eq!(named(" none ").expect("none"), Vec::<&str>::new());
        assert_eq!(named("prometheus").expect("one"), ["prometheus"]);
        assert_eq!(named("otlp, prometheus").expect("two"), ["otlp", "prometheus"]);
        assert_eq!(named("OTLP,Prometheus").expect("any case"), ["otlp", "prometheus"]);
        for unsupported in ["console", "otlp,console", "none,otlp", "otlp,"] {
            let err = named(unsupported).expect_err(unsupported).to_string();
            assert!(
                err.starts_with(VAR) && err.contains(&format!("{unsupported:?}")) && err.contains("otlp, prometheus"),
                "{unsupported}: {err}"
            );
        }
    }
}
