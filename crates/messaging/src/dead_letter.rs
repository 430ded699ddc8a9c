//! What a dead letter carries and what its replay carries: the record headers that keep a replayed record in its original trace.
//!
//! A dead letter is a copy of a record that can never be handled, in the
//! dead-letter topic. Its own propagation headers are those of the PRODUCER
//! span that wrote it (a span in the original trace); the original record's
//! headers travel with it under [`ORIGINAL_PREFIX`], so that a replay can
//! restore them.
//!
//! A replayed record ([`crate::replay`]) is the original record again (key,
//! payload and headers), plus two contexts under their own prefixes: the dead
//! letter's ([`LETTER_PREFIX`]) and the replay's send ([`REPLAY_PREFIX`]).
//! Its CONSUMER span is therefore the child of the original PRODUCER span, as
//! the first delivery's was, and links to all three spans
//! ([`link_replayed`]): the trace of the original request shows the replay.

use rdkafka::message::Headers;
use telemetry::propagation::{self, Extractor, Injector};
use tracing::Span;

/// Why the record was dead-lettered.
pub const REASON: &str = "dlq.reason";
/// Where the record was read: `topic/partition/offset`.
pub const SOURCE: &str = "dlq.source";
/// The original record's headers, each under this prefix.
pub const ORIGINAL_PREFIX: &str = "dlq.original.";
/// On a replayed record: the dead letter's propagation headers, under this prefix.
pub const LETTER_PREFIX: &str = "dlq.letter.";
/// On a replayed record: the replay's PRODUCER span, under this prefix.
pub const REPLAY_PREFIX: &str = "dlq.replay.";
/// On a replayed record and on the marker that records the replay: which
/// dead letter it was, `topic/partition/offset`.
pub const REPLAYED_FROM: &str = "dlq.replayed-from";
/// On the marker: where the replayed record went, `topic/partition/offset`.
pub const REPLAYED_TO: &str = "dlq.replayed-to";

/// `topic/partition/offset`, how [`SOURCE`], [`REPLAYED_FROM`] and [`REPLAYED_TO`] name a record.
pub fn location(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}/{offset}")
}

/// The extra headers of a dead letter: why, where from, and the original
/// record's headers under [`ORIGINAL_PREFIX`] (values kept as bytes).
pub fn letter_headers<H: Headers>(reason: &str, source: &str, original: Option<&H>) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![
        (REASON.to_owned(), reason.as_bytes().to_vec()),
        (SOURCE.to_owned(), source.as_bytes().to_vec()),
    ];
    if let Some(original) = original {
        headers.extend(original.iter().map(|header| {
            (
                format!("{ORIGINAL_PREFIX}{}", header.key),
                header.value.unwrap_or_default().to_vec(),
            )
        }));
    }
    headers
}

/// The headers of the replay of `letter`'s headers: the original record's,
/// restored, then the dead letter's own propagation headers under
/// [`LETTER_PREFIX`], then [`REPLAYED_FROM`]. The caller adds the replay
/// span's context under [`REPLAY_PREFIX`] ([`Prefixed`]).
pub fn replay_headers<H: Headers>(letter: &H, replayed_from: &str) -> Vec<(String, Vec<u8>)> {
    let mut original = Vec::new();
    let mut letter_context = Vec::new();
    for header in letter.iter() {
        let value = header.value.unwrap_or_default().to_vec();
        if let Some(key) = header.key.strip_prefix(ORIGINAL_PREFIX) {
            original.push((key.to_owned(), value));
        } else if !header.key.starts_with("dlq.") {
            letter_context.push((format!("{LETTER_PREFIX}{}", header.key), value));
        }
    }
    original.extend(letter_context);
    original.push((REPLAYED_FROM.to_owned(), replayed_from.as_bytes().to_vec()));
    original
}

/// Links a received record's CONSUMER span to the dead letter and the replay
/// that brought it back, when it is a replay; nothing otherwise.
pub fn link_replayed<H: Headers>(span: &Span, headers: &H) {
    // Most records are no replay: only they pay for the look-ups below.
    if !headers.iter().any(|header| header.key == REPLAYED_FROM) {
        return;
    }
    for prefix in [LETTER_PREFIX, REPLAY_PREFIX] {
        let fields = Prefixed::read(prefix, headers);
        propagation::link_to(span, &fields);
    }
}

/// Propagation fields under a key prefix, read from record headers or written for them.
#[derive(Debug)]
pub struct Prefixed {
    prefix: &'static str,
    fields: Vec<(String, String)>,
}

impl Prefixed {
    /// An empty carrier whose fields [`Self::into_headers`] returns under `prefix`.
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            fields: Vec::new(),
        }
    }

    /// The fields of `headers` under `prefix`, the prefix taken off.
    pub fn read<H: Headers>(prefix: &'static str, headers: &H) -> Self {
        let fields = headers
            .iter()
            .filter_map(|header| {
                let key = header.key.strip_prefix(prefix)?;
                let value = std::str::from_utf8(header.value?).ok()?;
                Some((key.to_owned(), value.to_owned()))
            })
            .collect();
        Self { prefix, fields }
    }

    /// The fields written, each key with the prefix.
    pub fn into_headers(self) -> Vec<(String, Vec<u8>)> {
        self.fields
            .into_iter()
            .map(|(key, value)| (format!("{}{key}", self.prefix), value.into_bytes()))
            .collect()
    }
}

impl Extractor for Prefixed {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(field, _)| field.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.fields.iter().map(|(key, _)| key.as_str()).collect()
    }
}

impl Injector for Prefixed {
    fn set(&mut self, key: &str, value: String) {
        self.fields.push((key.to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders};

    use super::*;

    fn owned(headers: &[(String, Vec<u8>)]) -> OwnedHeaders {
        headers.iter().fold(OwnedHeaders::new(), |all, (key, value)| {
            all.insert(Header {
                key,
                value: Some(value.as_slice()),
            })
        })
    }

    #[test]
    fn a_replay_restores_the_original_headers_and_carries_the_letters_context_aside() {
        let original = owned(&[
            ("traceparent".to_owned(), b"00-aa-original-01".to_vec()),
            ("x-request-id".to_owned(), b"req-1".to_vec()),
        ]);
        let mut letter = vec![
            ("traceparent".to_owned(), b"00-aa-letter-01".to_vec()),
            ("x-request-id".to_owned(), b"req-1".to_vec()),
        ];
        letter.extend(letter_headers("rejected", "eshop-topic/0/7", Some(&original)));
        let replay = replay_headers(&owned(&letter), "eshop-topic.dlq/2/3");
        let keys: Vec<&str> = replay.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "traceparent",
                "x-request-id",
                "dlq.letter.traceparent",
                "dlq.letter.x-request-id",
                "dlq.replayed-from"
            ]
        );
        assert_eq!(replay[0].1, b"00-aa-original-01");
        assert_eq!(replay[2].1, b"00-aa-letter-01");
        assert_eq!(replay[4].1, b"eshop-topic.dlq/2/3");
        let letter_context = Prefixed::read(LETTER_PREFIX, &owned(&replay));
        assert_eq!(letter_context.get("TraceParent"), Some("00-aa-letter-01"));
        assert_eq!(letter_context.get("b3"), None);
    }
}
