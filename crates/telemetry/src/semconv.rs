//! Every telemetry name the suite emits, in one place: the registry's, and the suite's own `eshop.*` names.
//!
//! Registry names are the `opentelemetry-semantic-conventions` crate's
//! constants ([`attribute`], [`metric`]); the suite's own are in [`eshop`].
//! In `tracing` macros a constant is a field name inside braces:
//! `tracing::info!(name: eshop::event::ORDER_PLACED, { { eshop::attribute::ORDER_ID } = %id }, "order placed")`.
//! docs/telemetry.md lists every one of them, and a test (services/eshop/tests/
//! telemetry_names.rs) fails on any name a real run exports that is not there.
//!
//! Also here: values the HTTP conventions normalise, shared by the server and client sides.

use http::Method;

pub use opentelemetry_semantic_conventions::{attribute, metric};

/// The registry attributes the suite emits, on spans, metrics or log records
/// (`http.request.header` stands for its `http.request.header.<key>` family).
pub const REGISTRY_ATTRIBUTES: &[&str] = &[
    attribute::CLIENT_ADDRESS,
    attribute::CODE_FILE_PATH,
    attribute::CODE_LINE_NUMBER,
    attribute::ERROR_TYPE,
    attribute::EXCEPTION_MESSAGE,
    attribute::HTTP_REQUEST_HEADER,
    attribute::HTTP_REQUEST_METHOD,
    attribute::HTTP_REQUEST_METHOD_ORIGINAL,
    attribute::HTTP_REQUEST_RESEND_COUNT,
    attribute::HTTP_RESPONSE_STATUS_CODE,
    attribute::HTTP_ROUTE,
    attribute::MESSAGING_CONSUMER_GROUP_NAME,
    attribute::MESSAGING_DESTINATION_NAME,
    attribute::MESSAGING_DESTINATION_PARTITION_ID,
    attribute::MESSAGING_KAFKA_MESSAGE_KEY,
    attribute::MESSAGING_KAFKA_OFFSET,
    attribute::MESSAGING_MESSAGE_BODY_SIZE,
    attribute::MESSAGING_OPERATION_NAME,
    attribute::MESSAGING_OPERATION_TYPE,
    attribute::MESSAGING_SYSTEM,
    attribute::NETWORK_PROTOCOL_VERSION,
    attribute::SERVER_ADDRESS,
    attribute::SERVER_PORT,
    attribute::URL_FULL,
    attribute::URL_PATH,
    attribute::URL_QUERY,
    attribute::URL_SCHEME,
    attribute::URL_TEMPLATE,
    attribute::USER_AGENT_ORIGINAL,
];

/// The registry metrics the suite records.
pub const REGISTRY_METRICS: &[&str] = &[
    metric::HTTP_CLIENT_REQUEST_DURATION,
    metric::HTTP_SERVER_REQUEST_DURATION,
    metric::MESSAGING_CLIENT_CONSUMED_MESSAGES,
    metric::MESSAGING_CLIENT_OPERATION_DURATION,
    metric::MESSAGING_CLIENT_SENT_MESSAGES,
    metric::MESSAGING_PROCESS_DURATION,
];

/// Whether `name` is a registry attribute the suite emits (a header attribute
/// counts through its family's prefix).
pub fn is_registry_attribute(name: &str) -> bool {
    REGISTRY_ATTRIBUTES.iter().any(|registry| {
        name == *registry
            || (*registry == attribute::HTTP_REQUEST_HEADER
                && name
                    .strip_prefix(registry)
                    .is_some_and(|key| key.len() > 1 && key.starts_with('.')))
    })
}

/// The suite's own names, where the registry has none: all under `eshop.`.
pub mod eshop {
    /// Attributes of the suite's own, on spans, metrics and log records.
    pub mod attribute {
        /// string: the order's id (a UUID), on every span and log record about one order.
        pub const ORDER_ID: &str = "eshop.order.id";
        /// boolean: the kafka-consumer found the order undone and sent no email.
        pub const ORDER_UNDONE: &str = "eshop.order.undone";
        /// string: the payment's id, on billing's `DBAccess.save2db`.
        pub const PAYMENT_ID: &str = "eshop.payment.id";
        /// int: the amount charged or refunded, in cents.
        pub const PAYMENT_AMOUNT_CENTS: &str = "eshop.payment.amount_cents";
        /// string: inventory's reservation id.
        pub const RESERVATION_ID: &str = "eshop.reservation.id";
        /// string: delivery's tracking id.
        pub const DELIVERY_TRACKING_ID: &str = "eshop.delivery.tracking_id";
        /// string: the recipient, masked (`j***@example.com`).
        pub const EMAIL_RECIPIENT: &str = "eshop.email.recipient";
        /// int: how many requests asked for this order's email.
        pub const EMAIL_REQUESTS: &str = "eshop.email.requests";
        /// string: the checkout step that failed (`inventory`, `billing`, `delivery`, `kafka`).
        pub const FAILED_STEP: &str = "eshop.failed_step";
        /// string: the downstream service a call or undo goes to.
        pub const SERVICE: &str = "eshop.service";
        /// string: the problem type (RFC 9457) a request was answered with.
        pub const PROBLEM_TYPE: &str = "eshop.problem.type";
        /// string: the problem's detail.
        pub const PROBLEM_DETAIL: &str = "eshop.problem.detail";
        /// string: the problem type prefix in force.
        pub const PROBLEM_TYPE_PREFIX: &str = "eshop.problem.type_prefix";
        /// string: a problem type prefix set too late, ignored.
        pub const PROBLEM_IGNORED_PREFIX: &str = "eshop.problem.ignored_prefix";
        /// int: which try of a retried call this is (1 is the first).
        pub const RETRY_ATTEMPT: &str = "eshop.retry.attempt";
        /// int: how long until the next try, in milliseconds.
        pub const RETRY_WAIT_MS: &str = "eshop.retry.wait_ms";
        /// string: why a record goes to the dead-letter topic.
        pub const DEAD_LETTER_REASON: &str = "eshop.dead_letter.reason";
        /// int: how many dead letters a replay request named.
        pub const DEAD_LETTERS_ASKED: &str = "eshop.dead_letter.replay.asked";
        /// int: how many of them it published again.
        pub const DEAD_LETTERS_PUBLISHED: &str = "eshop.dead_letter.replay.published";
        /// int: how many partitions a rebalance assigned or revoked.
        pub const CONSUMER_PARTITIONS: &str = "eshop.consumer.partitions";
        /// int: how many partition lanes a revoke stopped.
        pub const CONSUMER_LANES: &str = "eshop.consumer.lanes";
        /// int: how long shutdown waited, in milliseconds.
        pub const SHUTDOWN_TIMEOUT_MS: &str = "eshop.shutdown.timeout_ms";
        /// string: librdkafka's log facility (`CONFWARN`, `FAIL`, ...).
        pub const KAFKA_FACILITY: &str = "eshop.kafka.facility";
        /// string: the `log` crate target of a record bridged from a library.
        pub const LOG_TARGET: &str = "eshop.log.target";
        /// string: the Rust module of a record bridged from a library.
        pub const LOG_MODULE_PATH: &str = "eshop.log.module_path";

        /// Every attribute above.
        pub const ALL: &[&str] = &[
            ORDER_ID,
            ORDER_UNDONE,
            PAYMENT_ID,
            PAYMENT_AMOUNT_CENTS,
            RESERVATION_ID,
            DELIVERY_TRACKING_ID,
            EMAIL_RECIPIENT,
            EMAIL_REQUESTS,
            FAILED_STEP,
            SERVICE,
            PROBLEM_TYPE,
            PROBLEM_DETAIL,
            PROBLEM_TYPE_PREFIX,
            PROBLEM_IGNORED_PREFIX,
            RETRY_ATTEMPT,
            RETRY_WAIT_MS,
            DEAD_LETTER_REASON,
            DEAD_LETTERS_ASKED,
            DEAD_LETTERS_PUBLISHED,
            CONSUMER_PARTITIONS,
            CONSUMER_LANES,
            SHUTDOWN_TIMEOUT_MS,
            KAFKA_FACILITY,
            LOG_TARGET,
            LOG_MODULE_PATH,
        ];
    }

    /// Metrics of the suite's own.
    pub mod metric {
        /// counter `{order}`: orders whose event Kafka acknowledged.
        pub const ORDERS_PLACED: &str = "eshop.orders.placed";
        /// counter `{order}`: checkouts undone after a step failed.
        pub const ORDERS_UNDONE: &str = "eshop.orders.undone";
        /// counter `{email}`: emails sent.
        pub const EMAILS_SENT: &str = "eshop.emails.sent";
        /// counter `{record}`: records copied to the dead-letter topic.
        pub const RECORDS_DEAD_LETTERED: &str = "eshop.records.dead_lettered";
        /// gauge `{message}`: records behind a partition's high watermark (the
        /// messaging conventions have no consumer-lag metric yet).
        pub const KAFKA_CONSUMER_LAG: &str = "eshop.kafka.consumer.lag";
        /// counter `{undo}`: undos a service refused for good (reconcile by hand).
        pub const UNDOS_ABANDONED: &str = "eshop.undos.abandoned";
        /// observable counter `{line}`: log lines dropped because stdout did not keep up.
        pub const LOGS_DROPPED: &str = "eshop.logs.dropped";

        /// Every metric above.
        pub const ALL: &[&str] = &[
            ORDERS_PLACED,
            ORDERS_UNDONE,
            EMAILS_SENT,
            RECORDS_DEAD_LETTERED,
            KAFKA_CONSUMER_LAG,
            UNDOS_ABANDONED,
            LOGS_DROPPED,
        ];
    }

    /// Log event names: what a log record is, as its OTLP `event_name` (the
    /// `name:` of a `tracing` event macro).
    pub mod event {
        // The HTTP services (service-kit).
        pub const SERVER_LISTENING: &str = "eshop.server.listening";
        pub const SERVER_STOPPED: &str = "eshop.server.stopped";
        pub const SERVER_SHUTDOWN_REQUESTED: &str = "eshop.server.shutdown_requested";
        pub const SERVER_SIGNAL_UNAVAILABLE: &str = "eshop.server.signal_unavailable";
        pub const REQUEST_FAILED: &str = "eshop.request.failed";
        pub const REQUEST_REFUSED: &str = "eshop.request.refused";
        pub const PROBLEM_PREFIX_IGNORED: &str = "eshop.problem.prefix_ignored";
        // eshop.
        pub const ORDER_PLACED: &str = "eshop.order.placed";
        pub const IDEMPOTENCY_ANSWER_TOO_LARGE: &str = "eshop.idempotency.answer_too_large";
        pub const UNDO_PENDING: &str = "eshop.undo.pending";
        pub const UNDO_DONE: &str = "eshop.undo.done";
        pub const UNDO_FAILED: &str = "eshop.undo.failed";
        pub const UNDO_ABANDONED: &str = "eshop.undo.abandoned";
        pub const UNDO_REFUSED: &str = "eshop.undo.refused";
        pub const PUBLISH_UNSENT_AT_SHUTDOWN: &str = "eshop.publish.unsent_at_shutdown";
        pub const CONFIRM_PENDING: &str = "eshop.confirm.pending";
        pub const CONFIRM_DONE: &str = "eshop.confirm.done";
        pub const CONFIRM_FAILED: &str = "eshop.confirm.failed";
        pub const CONFIRM_ABANDONED: &str = "eshop.confirm.abandoned";
        pub const CONFIRM_REFUSED: &str = "eshop.confirm.refused";
        // inventory, billing, delivery, notification.
        pub const STOCK_RESERVED: &str = "eshop.stock.reserved";
        pub const STOCK_RELEASED: &str = "eshop.stock.released";
        pub const PAYMENT_CHARGED: &str = "eshop.payment.charged";
        pub const PAYMENT_REFUNDED: &str = "eshop.payment.refunded";
        pub const PAYMENT_CONFIRMED: &str = "eshop.payment.confirmed";
        pub const DELIVERY_SCHEDULED: &str = "eshop.delivery.scheduled";
        pub const DELIVERY_CANCELLED: &str = "eshop.delivery.cancelled";
        pub const EMAIL_SENT: &str = "eshop.email.sent";
        pub const EMAIL_ALREADY_SENT: &str = "eshop.email.already_sent";
        // kafka-consumer.
        pub const EMAIL_SKIPPED: &str = "eshop.email.skipped";
        pub const CALL_RETRIED: &str = "eshop.call.retried";
        pub const RECORD_DEAD_LETTERED: &str = "eshop.record.dead_lettered";
        pub const DEAD_LETTER_SEND_FAILED: &str = "eshop.dead_letter.send_failed";
        pub const DEAD_LETTER_WRITTEN: &str = "eshop.dead_letter.written";
        pub const DEAD_LETTERS_REPLAYED: &str = "eshop.dead_letters.replayed";
        pub const DEAD_LETTERS_REPLAY_FAILED: &str = "eshop.dead_letters.replay_failed";
        pub const CONSUMER_STARTED: &str = "eshop.consumer.started";
        pub const CONSUMER_RECEIVE_FAILED: &str = "eshop.consumer.receive_failed";
        pub const CONSUMER_FAILED: &str = "eshop.consumer.failed";
        pub const CONSUMER_LANE_FAILED: &str = "eshop.consumer.lane_failed";
        pub const CONSUMER_STOPPED: &str = "eshop.consumer.stopped";
        pub const CONSUMER_FINAL_COMMIT_FAILED: &str = "eshop.consumer.final_commit_failed";
        pub const PARTITION_PAUSED: &str = "eshop.consumer.partition_paused";
        pub const PARTITION_RESUMED: &str = "eshop.consumer.partition_resumed";
        pub const PARTITION_RESUME_FAILED: &str = "eshop.consumer.partition_resume_failed";
        pub const OFFSET_NOT_STORED: &str = "eshop.consumer.offset_not_stored";
        pub const PARTITIONS_ASSIGNED: &str = "eshop.consumer.partitions_assigned";
        pub const PARTITIONS_REVOKED: &str = "eshop.consumer.partitions_revoked";
        pub const REVOKE_COMMITTED: &str = "eshop.consumer.revoke_committed";
        pub const REVOKE_LANE_BUSY: &str = "eshop.consumer.revoke_lane_busy";
        pub const REBALANCE_FAILED: &str = "eshop.consumer.rebalance_failed";
        // Libraries: librdkafka through the messaging crate, other `log` records through telemetry.
        pub const KAFKA_CLIENT_LOG: &str = "eshop.kafka.client.log";
        pub const KAFKA_CLIENT_ERROR: &str = "eshop.kafka.client.error";
        pub const LOG_BRIDGED: &str = "eshop.log.bridged";

        /// Every event name above.
        pub const ALL: &[&str] = &[
            SERVER_LISTENING,
            SERVER_STOPPED,
            SERVER_SHUTDOWN_REQUESTED,
            SERVER_SIGNAL_UNAVAILABLE,
            REQUEST_FAILED,
            REQUEST_REFUSED,
            PROBLEM_PREFIX_IGNORED,
            ORDER_PLACED,
            IDEMPOTENCY_ANSWER_TOO_LARGE,
            UNDO_PENDING,
            UNDO_DONE,
            UNDO_FAILED,
            UNDO_ABANDONED,
            UNDO_REFUSED,
            PUBLISH_UNSENT_AT_SHUTDOWN,
            CONFIRM_PENDING,
            CONFIRM_DONE,
            CONFIRM_FAILED,
            CONFIRM_ABANDONED,
            CONFIRM_REFUSED,
            STOCK_RESERVED,
            STOCK_RELEASED,
            PAYMENT_CHARGED,
            PAYMENT_REFUNDED,
            PAYMENT_CONFIRMED,
            DELIVERY_SCHEDULED,
            DELIVERY_CANCELLED,
            EMAIL_SENT,
            EMAIL_ALREADY_SENT,
            EMAIL_SKIPPED,
            CALL_RETRIED,
            RECORD_DEAD_LETTERED,
            DEAD_LETTER_SEND_FAILED,
            DEAD_LETTER_WRITTEN,
            DEAD_LETTERS_REPLAYED,
            DEAD_LETTERS_REPLAY_FAILED,
            CONSUMER_STARTED,
            CONSUMER_RECEIVE_FAILED,
            CONSUMER_FAILED,
            CONSUMER_LANE_FAILED,
            CONSUMER_STOPPED,
            CONSUMER_FINAL_COMMIT_FAILED,
            PARTITION_PAUSED,
            PARTITION_RESUMED,
            PARTITION_RESUME_FAILED,
            OFFSET_NOT_STORED,
            PARTITIONS_ASSIGNED,
            PARTITIONS_REVOKED,
            REVOKE_COMMITTED,
            REVOKE_LANE_BUSY,
            REBALANCE_FAILED,
            KAFKA_CLIENT_LOG,
            KAFKA_CLIENT_ERROR,
            LOG_BRIDGED,
        ];
    }
}

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

/// `network.protocol.version` of an HTTP exchange (`1.1`, `2`), or `None` for a
/// version the conventions' examples do not cover.
pub fn protocol_version(version: http::Version) -> Option<&'static str> {
    match version {
        http::Version::HTTP_09 => Some("0.9"),
        http::Version::HTTP_10 => Some("1.0"),
        http::Version::HTTP_11 => Some("1.1"),
        http::Version::HTTP_2 => Some("2"),
        http::Version::HTTP_3 => Some("3"),
        _ => None,
    }
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

    #[test]
    fn the_suites_names_are_all_eshop_and_each_defined_once() {
        let mut seen = std::collections::BTreeSet::new();
        for name in eshop::attribute::ALL
            .iter()
            .chain(eshop::metric::ALL)
            .chain(eshop::event::ALL)
        {
            assert!(name.starts_with("eshop."), "{name}");
            assert!(seen.insert(*name), "{name} twice");
        }
        for name in REGISTRY_ATTRIBUTES.iter().chain(REGISTRY_METRICS) {
            assert!(!name.starts_with("eshop."), "{name}");
        }
    }

    #[test]
    fn header_attributes_count_through_their_family() {
        assert!(is_registry_attribute("http.request.header.x-request-id"));
        assert!(is_registry_attribute("http.route"));
        assert!(!is_registry_attribute("http.request.headerx"));
        assert!(!is_registry_attribute("order.id"));
    }
}
