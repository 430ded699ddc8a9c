//! Reading configuration from environment variables, with named defaults and errors that name the variable.

use std::{fmt::Display, net::IpAddr, str::FromStr, time::Duration};

/// The port to listen on (Kubernetes convention: 8080).
pub const PORT: &str = "PORT";
/// The address to listen on; `0.0.0.0` so a pod's sidecar can reach it.
pub const HOST: &str = "HOST";
/// How long a call to another service may take before it is given up.
pub const HTTP_CLIENT_TIMEOUT_MS: &str = "HTTP_CLIENT_TIMEOUT_MS";

pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_HOST: &str = "0.0.0.0";
pub const DEFAULT_HTTP_CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// The variable parsed as `T`, or `default` when it is unset or empty.
pub fn env_or<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().parse().map_err(|err: T::Err| ConfigError {
            name,
            value,
            reason: err.to_string(),
        }),
        _ => Ok(default),
    }
}

/// A count that must be at least 1 (a table's size, a pool's), or `default`.
pub fn env_count(name: &'static str, default: usize) -> Result<usize, ConfigError> {
    match env_or(name, default)? {
        0 => Err(ConfigError {
            name,
            value: "0".into(),
            reason: "must be at least 1".into(),
        }),
        count => Ok(count),
    }
}

/// The variable as a string, or `default`.
pub fn env_string(name: &'static str, default: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().to_owned(),
        _ => default.to_owned(),
    }
}

/// A duration given in milliseconds.
pub fn env_millis(name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
    let millis = env_or(name, u64::try_from(default.as_millis()).unwrap_or(u64::MAX))?;
    Ok(Duration::from_millis(millis))
}

/// A base URL such as `http://inventory:8080`, without a trailing slash.
pub fn env_url(name: &'static str, default: &str) -> Result<String, ConfigError> {
    let url = env_string(name, default);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError {
            name,
            value: url,
            reason: "must start with http:// or https://".into(),
        });
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Where a service listens: `HOST` and `PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub host: IpAddr,
    pub port: u16,
}

impl Listen {
    pub fn from_env() -> Result<Self, ConfigError> {
        let host = env_string(HOST, DEFAULT_HOST);
        Ok(Self {
            host: host.parse().map_err(|err: std::net::AddrParseError| ConfigError {
                name: HOST,
                value: host.clone(),
                reason: err.to_string(),
            })?,
            port: env_or(PORT, DEFAULT_PORT)?,
        })
    }
}
