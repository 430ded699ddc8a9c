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

/// The longest text a log record quotes from a request or an answer.
pub const MAX_LOGGED_TEXT: usize = 512;

/// `value` as one line of at most `max` bytes, for a log record: control
/// characters (a `%0A` decoded into a problem's detail, say) are written as
/// escapes, so that a caller cannot forge a log line of its own.
pub fn one_line(value: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let value = capped(value, max);
    if !value.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(value);
    }
    std::borrow::Cow::Owned(
        value
            .chars()
            .flat_map(|c| -> Box<dyn Iterator<Item = char>> {
                if c.is_control() {
                    Box::new(c.escape_default())
                } else {
                    Box::new(std::iter::once(c))
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_text_is_one_line_and_capped() {
        assert_eq!(one_line("plain", 100), "plain");
        assert_eq!(
            one_line("bad input\nlevel=ERROR forged\r\u{1b}[31m", 100),
            "bad input\\nlevel=ERROR forged\\r\\u{1b}[31m"
        );
        assert_eq!(one_line(&"x".repeat(1_000), 10).len(), 10);
    }

    #[test]
    fn values_are_cut_at_a_character_boundary() {
        assert_eq!(capped("short", 10), "short");
        assert_eq!(capped("abcdef", 3), "abc");
        assert_eq!(capped("ééé", 3), "é", "a 2-byte character is not split");
    }
}
