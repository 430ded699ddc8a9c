//! TLS for the OTLP exporters, from the SDK's own variables.
//!
//! An `https://` endpoint is verified against the system's roots (and
//! `SSL_CERT_FILE`, which rustls-native-certs honours); the specification's
//! `OTEL_EXPORTER_OTLP_CERTIFICATE` (or its per-signal forms) adds a CA, e.g. a
//! private collector's (https://opentelemetry.io/docs/specs/otel/protocol/exporter/).
//! opentelemetry-otlp 0.32 reads neither, so the exporters get a client, or a
//! gRPC TLS configuration, built here.

use std::{path::PathBuf, time::Duration};

#[cfg(feature = "grpc")]
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};

/// PEM file of a CA the OTLP exporters trust besides the system's roots; the
/// `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_CERTIFICATE` forms override it per signal.
pub const OTEL_EXPORTER_OTLP_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
#[cfg(feature = "grpc")]
const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// The specification's default export timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which exporter: each reads its signal's variables before the general ones.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    /// The signal's (certificate, endpoint, timeout) variables.
    fn vars(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Traces => (
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            ),
            Self::Metrics => (
                "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            ),
            Self::Logs => (
                "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
            ),
        }
    }
}

/// Why the exporter's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}={path}: {reason}")]
pub struct TlsConfigError {
    var: &'static str,
    path: String,
    reason: String,
}

/// The first of the variables that is set and not empty.
fn first_set(vars: [&'static str; 2]) -> Option<(&'static str, String)> {
    vars.into_iter().find_map(|var| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (var, v))
    })
}

/// The trusted CA's PEM, when one is configured.
fn ca_pem(signal: Signal) -> Result<Option<Vec<u8>>, TlsConfigError> {
    let Some((var, path)) = first_set([signal.vars().0, OTEL_EXPORTER_OTLP_CERTIFICATE]) else {
        return Ok(None);
    };
    let pem = std::fs::read(PathBuf::from(&path)).map_err(|err| TlsConfigError {
        var,
        path: path.clone(),
        reason: err.to_string(),
    })?;
    Ok(Some(pem))
}

fn timeout(signal: Signal) -> Duration {
    first_set([signal.vars().2, OTEL_EXPORTER_OTLP_TIMEOUT])
        .and_then(|(_, millis)| millis.trim().parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
}

/// The blocking client for the OTLP/HTTP exporter when a CA is configured
/// (`None`: the exporter's own client, which already verifies against the system's roots).
pub(crate) fn http_client(signal: Signal) -> Result<Option<reqwest::blocking::Client>, TlsConfigError> {
    let Some(pem) = ca_pem(signal)? else { return Ok(None) };
    let invalid = |reason: String| TlsConfigError {
        var: OTEL_EXPORTER_OTLP_CERTIFICATE,
        path: "(the configured CA)".to_owned(),
        reason,
    };
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| invalid(err.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("no PEM certificate in the file".to_owned()));
    }
    let timeout = timeout(signal);
    // reqwest's blocking client runs its own runtime: build it off the caller's
    // (init runs inside Tokio), as opentelemetry-otlp does for its default client.
    std::thread::spawn(move || {
        certificates
            .into_iter()
            .fold(reqwest::blocking::Client::builder().timeout(timeout), |builder, ca| {
                builder.add_root_certificate(ca)
            })
            .build()
    })
    .join()
    .map_err(|_| invalid("the client builder panicked".to_owned()))?
    .map(Some)
    .map_err(|err| invalid(err.to_string()))
}

#[cfg(feature = "grpc")]
/// The gRPC exporter's TLS settings for an `https://` endpoint: the system's
/// roots plus the configured CA (`None` for plain `http://`).
pub(crate) fn grpc_tls_config(signal: Signal) -> Result<Option<ClientTlsConfig>, TlsConfigError> {
    let https = first_set([signal.vars().1, OTEL_EXPORTER_OTLP_ENDPOINT])
        .is_some_and(|(_, endpoint)| endpoint.trim().starts_with("https://"));
    if !https {
        return Ok(None);
    }
    // tonic adds no roots by itself: without these, every server is untrusted.
    let config = ClientTlsConfig::new().with_native_roots();
    Ok(Some(match ca_pem(signal)? {
        Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
        None => config,
    }))
}
