//! Values the HTTP semantic conventions normalise, shared by the server and client sides.
//!
//! Attribute and metric *names* come from the `opentelemetry-semantic-conventions`
//! crate wherever a name is not a `tracing` macro field (those must be literals).

use http::Method;

pub use opentelemetry_semantic_conventions::{attribute, metric};

/// The value of `http.request.method`: the method when the conventions know it
/// (RFC 9110 plus PATCH), `_OTHER` otherwise, so that a client inventing
/// methods cannot blow up the cardinality of spans and metrics.
pub fn method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => OTHER_METHOD,
    }
}

/// `http.request.method` for a method the conventions do not know.
pub const OTHER_METHOD: &str = "_OTHER";

/// The `{method}` part of an HTTP span name: `HTTP` for an unknown method, as the conventions ask.
pub fn span_name_method(method: &Method) -> &'static str {
    match self::method(method) {
        OTHER_METHOD => "HTTP",
        known => known,
    }
}

/// An HTTP span name, `{method} {target}`, or `{method}` without a target.
///
/// Built by hand: `format!` costs several times as much, on every span.
pub fn span_name(method: &Method, target: &str) -> String {
    let method = span_name_method(method);
    let mut name = String::with_capacity(method.len() + 1 + target.len());
    name.push_str(method);
    if !target.is_empty() {
        name.push(' ');
        name.push_str(target);
    }
    name
}

/// `http.request.method_original`, set only when the method was normalised.
pub fn method_original(method: &Method) -> Option<&str> {
    (self::method(method) == OTHER_METHOD).then(|| method.as_str())
}

/// The HTTP conventions' bucket boundaries for duration histograms, in seconds
/// (also the messaging conventions' for their durations).
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_are_other_and_keep_their_original() {
        let custom = Method::from_bytes(b"PURGE").expect("a token");
        assert_eq!(method(&custom), "_OTHER");
        assert_eq!(span_name_method(&custom), "HTTP");
        assert_eq!(span_name(&custom, "/checkout"), "HTTP /checkout");
        assert_eq!(span_name(&Method::POST, ""), "POST");
        assert_eq!(method_original(&custom), Some("PURGE"));
        assert_eq!(method(&Method::PATCH), "PATCH");
        assert_eq!(method_original(&Method::GET), None);
    }
}
