//! Which answers are retried and how long an answer asks to wait: only 400 and 422 mean a record can never succeed.
//!
//! Everything else is waited out: a 403 or 404 is as likely a mesh policy or
//! routing mistake (an Istio AuthorizationPolicy denies with 403) that an
//! operator will fix, and dead-lettering every order meanwhile would lose
//! them to a side topic; 408, 409, 429 and 5xx are transient by definition.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, StatusCode, header};

/// The longest `Retry-After` honoured, so that one answer cannot stall a partition for hours.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The shortest wait between two attempts whatever `Retry-After` says: `0`
/// or a date in the past would otherwise make a tight loop of requests, each
/// one more CLIENT span in the trace.
pub(crate) const MIN_RETRY_AFTER: Duration = service_kit::Backoff::FIRST;
/// How much of an error body is kept for a log line or a dead-letter header.
pub(crate) const MAX_ERROR_BODY: usize = 512;

/// What an HTTP answer means for the record being handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    /// The request itself is wrong: sending it again can never succeed.
    Rejected,
    Retry,
}

pub(crate) fn verdict(status: StatusCode) -> Verdict {
    match status {
        status if status.is_success() => Verdict::Accepted,
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Verdict::Rejected,
        _ => Verdict::Retry,
    }
}

/// The wait a `Retry-After` header asks for (RFC 9110, section 10.2.3: delay
/// seconds or an HTTP-date), kept between [`MIN_RETRY_AFTER`] and [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER))
}

/// An error body cut to [`MAX_ERROR_BODY`] bytes: it comes from another
/// service and ends up in logs and Kafka headers.
pub(crate) fn capped(body: &str) -> &str {
    telemetry::untrusted::capped(body, MAX_ERROR_BODY)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn only_400_and_422_are_final() {
        for status in [400, 422] {
            assert_eq!(
                verdict(StatusCode::from_u16(status).expect("status")),
                Verdict::Rejected
            );
        }
        for status in [403, 404, 408, 409, 429, 500, 502, 503, 504] {
            assert_eq!(
                verdict(StatusCode::from_u16(status).expect("status")),
                Verdict::Retry,
                "{status}"
            );
        }
        assert_eq!(verdict(StatusCode::CREATED), Verdict::Accepted);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_within_a_floor_and_a_cap() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("86400"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_str(&soon).expect("date"));
        let wait = retry_after(&headers).expect("a date");
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&headers),
            Some(MIN_RETRY_AFTER),
            "a date in the past: the floor"
        );
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
        assert_eq!(retry_after(&headers), Some(MIN_RETRY_AFTER), "no tight loop on 0");
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn error_bodies_are_capped_at_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_BODY);
        let cut = capped(&long);
        assert!(cut.len() <= MAX_ERROR_BODY && cut.chars().all(|c| c == 'é'));
        assert_eq!(capped("short"), "short");
    }
}
