//! Values copied from requests into spans, logs and forwarded headers, cut to a bounded length.
//!
//! A caller controls `x-request-id`, `user-agent`, `host` and the like; a span
//! attribute or a Kafka header copied from them must not grow with whatever
//! the caller sends. The OpenTelemetry SDK's own attribute length limit is
//! unset by default (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`), so the suite caps
//! what it copies itself.

/// The longest header value copied into a span attribute (a user agent is
/// rarely above 200 characters).
pub const MAX_COPIED_HEADER: usize = 256;
/// The longest URL path or query copied into a span attribute: a route's
/// path is far shorter, and a 60 KB query must not become a 60 KB attribute.
pub const MAX_COPIED_URL_PART: usize = 512;
/// The longest `x-request-id` accepted and forwarded (Envoy's are 36-character UUIDs).
pub const MAX_REQUEST_ID: usize = 128;

/// `value` cut to at most `max` bytes, at a character boundary.
pub fn capped(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_at_a_character_boundary() {
        assert_eq!(capped("short", 10), "short");
        assert_eq!(capped("abcdef", 3), "abc");
        assert_eq!(capped("ééé", 3), "é", "a 2-byte character is not split");
    }
}
