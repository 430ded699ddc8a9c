//! `Idempotency-Key` on `POST /checkout`: the same key returns the first outcome and places no second order.
//!
//! Follows the IETF httpapi draft "The Idempotency-Key HTTP Header Field"
//! (draft-ietf-httpapi-idempotency-key-header): the key is a Structured Field
//! String (RFC 8941), a request whose key is still being processed is
//! answered 409, the same key with a different body 422. The draft leaves
//! open which outcomes are kept; here every answer but a 5xx is. A 5xx comes
//! after the checkout was undone, nothing was placed, and the client should
//! be able to try again with the same key.
//!
//! The keys live in memory, at most `IDEMPOTENCY_KEYS_MAX` of them, the oldest
//! answered one forgotten first. A key whose checkout is still running is
//! never forgotten: the client's retry would be charged a second time. When
//! every key is in flight a new one is refused (503 with `Retry-After`; nothing
//! was done, so the retry is safe). Each claim has its own number, so a
//! checkout that ends touches only its own entry. With several eshop replicas
//! a retry must reach the same one (or the table must move to shared storage).

use std::{
    hash::{DefaultHasher, Hash as _, Hasher as _},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use service_kit::{BoundedTable, Problem};
use telemetry::semconv::{attribute, eshop};

pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a response that repeats a stored outcome (the name Stripe uses; the draft names none).
pub(crate) const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// How many keys eshop remembers. A stored outcome is about 1 KiB, so the
/// default takes about 10 MiB at most.
pub const IDEMPOTENCY_KEYS_MAX: &str = "IDEMPOTENCY_KEYS_MAX";
pub const DEFAULT_IDEMPOTENCY_KEYS_MAX: usize = 10_000;
/// Longest key accepted; a UUID is 36 characters.
const MAX_KEY_LEN: usize = 255;
/// Largest answer stored; a checkout's is about 1 KiB.
const MAX_STORED_BODY: usize = 64 * 1024;

/// The key of a request, if it sent one: `Ok(None)` without the header, a 400 for a malformed one.
pub(crate) fn key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let invalid = |why: &str| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-idempotency-key",
            "The Idempotency-Key header is malformed",
            why.to_owned(),
        )
    };
    let text = value.to_str().map_err(|_| invalid("it must be ASCII"))?.trim();
    let key = parse_sf_string(text).ok_or_else(|| {
        invalid("it must be a quoted string of printable ASCII, e.g. \"8e03978e-40d5-43e8-bc93-6894a57f9324\"")
    })?;
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(invalid(&format!("it must have 1 to {MAX_KEY_LEN} characters")));
    }
    Ok(Some(key))
}

/// An RFC 8941 sf-string (`"..."` with `\"` and `\\` escapes). A bare value of
/// visible ASCII, as many clients send, is taken as it is.
fn parse_sf_string(text: &str) -> Option<String> {
    let Some(quoted) = text.strip_prefix('"') else {
        return text
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            .then(|| text.to_owned());
    };
    let mut key = String::new();
    let mut chars = quoted.chars();
    loop {
        match chars.next()? {
            '"' => return chars.next().is_none().then_some(key),
            '\\' => match chars.next()? {
                c @ ('"' | '\\') => key.push(c),
                _ => return None,
            },
            c if (' '..='~').contains(&c) => key.push(c),
            _ => return None,
        }
    }
}

/// A fingerprint of the request body, to tell a retry from a different request under the same key.
pub(crate) fn fingerprint(body: &impl serde::Serialize) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_vec(body).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

#[derive(Debug)]
enum Entry {
    /// A checkout holds the key; `claim` tells its claim from a later one.
    InFlight {
        fingerprint: u64,
        claim: u64,
    },
    Done {
        fingerprint: u64,
        answer: Stored,
    },
}

impl Entry {
    fn is_claimed_by(&self, id: u64) -> bool {
        matches!(self, Self::InFlight { claim, .. } if *claim == id)
    }
}

#[derive(Debug, Clone)]
struct Stored {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

/// The keys eshop has seen, the oldest answered one forgotten first when full.
#[derive(Debug)]
struct Table {
    entries: BoundedTable<String, Entry>,
    next_claim: u64,
}

/// How long a client refused for lack of room should wait: a checkout takes
/// well under a second unless a service is failing.
const RETRY_AFTER_SECONDS: &str = "1";

/// The keys eshop has seen, shared by every request.
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyKeys(Arc<Mutex<Table>>);

/// What to do with a request that carries a key.
#[derive(Debug)]
pub(crate) enum Claim {
    /// First time: place the order, then [`Claimed::complete`] with the answer.
    New(Claimed),
    /// Seen before: this is the answer.
    Answered(Response),
}

impl IdempotencyKeys {
    pub(crate) fn new(capacity: usize) -> Self {
        Self(Arc::new(Mutex::new(Table {
            entries: BoundedTable::with_capacity(capacity),
            next_claim: 0,
        })))
    }

    /// Every change is one map operation, so a poisoned lock's data is whole.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn claim(&self, key: String, fingerprint: u64) -> Claim {
        let mut table = self.table();
        let known = match table.entries.get(&key) {
            None => None,
            Some(Entry::InFlight { fingerprint: first, .. } | Entry::Done { fingerprint: first, .. })
                if *first != fingerprint =>
            {
                Some(
                    Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency-key-reused",
                        "The Idempotency-Key was used for a different request",
                        "send a new key for a different order",
                    )
                    .into_response(),
                )
            }
            Some(Entry::InFlight { .. }) => Some(
                Problem::new(
                    StatusCode::CONFLICT,
                    "idempotency-key-in-use",
                    "A request with this Idempotency-Key is still being processed",
                    "wait for the first request's answer, or retry later",
                )
                .into_response(),
            ),
            Some(Entry::Done { answer, .. }) => Some(replay(answer)),
        };
        if let Some(response) = known {
            return Claim::Answered(response);
        }
        let claim = table.next_claim;
        let entry = Entry::InFlight { fingerprint, claim };
        if table
            .entries
            .insert_evicting(key.clone(), entry, |entry| matches!(entry, Entry::Done { .. }))
            .is_err()
        {
            return Claim::Answered(keys_busy());
        }
        table.next_claim += 1;
        Claim::New(Claimed {
            keys: self.clone(),
            key: Some(key),
            claim,
            fingerprint,
        })
    }
}

/// Every key is held by a running checkout: no room to remember another.
fn keys_busy() -> Response {
    let mut response = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "idempotency-keys-busy",
        "Too many checkouts with an Idempotency-Key are running",
        "nothing was done; retry with the same key",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    response
}

fn replay(answer: &Stored) -> Response {
    let mut response = Response::new(Body::from(answer.body.clone()));
    *response.status_mut() = answer.status;
    if let Some(content_type) = &answer.content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

/// A key this request holds while it is processed; released if dropped without an answer.
#[derive(Debug)]
pub(crate) struct Claimed {
    keys: IdempotencyKeys,
    key: Option<String>,
    claim: u64,
    fingerprint: u64,
}

impl Claimed {
    /// Stores the answer under the key (a 5xx releases the key instead) and returns it.
    pub(crate) async fn complete(mut self, response: Response) -> Response {
        let Some(key) = self.key.take() else { return response };
        let (parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, MAX_STORED_BODY).await {
            Ok(body) => body,
            Err(err) => {
                self.keys.release(&key, self.claim);
                tracing::warn!(
                    name: eshop::event::IDEMPOTENCY_ANSWER_TOO_LARGE,
                    {
                        { attribute::EXCEPTION_MESSAGE } = %err,
                    },
                    "checkout answer too large to keep for its Idempotency-Key"
                );
                return Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Checkout failed",
                    err.to_string(),
                )
                .into_response();
            }
        };
        let mut table = self.keys.table();
        let own = table
            .entries
            .get(&key)
            .is_some_and(|entry| entry.is_claimed_by(self.claim));
        if parts.status.is_server_error() {
            if own {
                table.entries.remove(&key);
            }
        } else if own && let Some(entry) = table.entries.get_mut(&key) {
            *entry = Entry::Done {
                fingerprint: self.fingerprint,
                answer: Stored {
                    status: parts.status,
                    content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
                    body: body.clone(),
                },
            };
        }
        Response::from_parts(parts, Body::from(body))
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.keys.release(&key, self.claim);
        }
    }
}

impl IdempotencyKeys {
    /// Frees `key` if `claim` still holds it.
    fn release(&self, key: &String, claim: u64) {
        let mut table = self.table();
        if table.entries.get(key).is_some_and(|entry| entry.is_claimed_by(claim)) {
            table.entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn keys_are_structured_field_strings() {
        assert_eq!(key(&HeaderMap::new()).expect("no key"), None);
        assert_eq!(key(&headers("\"abc-123\"")).expect("sf-string"), Some("abc-123".into()));
        assert_eq!(key(&headers(r#""a\"b\\c""#)).expect("escapes"), Some(r#"a"b\c"#.into()));
        assert_eq!(key(&headers("abc-123")).expect("bare"), Some("abc-123".into()));
        for bad in ["\"open", "\"a\" trailing", r#""bad \n escape""#, "\"\"", "two words"] {
            assert!(key(&headers(bad)).is_err(), "{bad:?} must be refused");
        }
        assert!(key(&headers(&"k".repeat(MAX_KEY_LEN + 1))).is_err());
    }

    #[tokio::test]
    async fn the_oldest_answered_keys_are_forgotten_first() {
        let keys = IdempotencyKeys::new(2);
        for key in ["a", "b", "c"] {
            new_claim(&keys, key).complete(StatusCode::OK.into_response()).await;
        }
        let table = keys.table();
        assert!(!table.entries.contains(&"a".to_owned()));
        assert!(table.entries.contains(&"b".to_owned()) && table.entries.contains(&"c".to_owned()));
    }

    fn new_claim(keys: &IdempotencyKeys, key: &str) -> Claimed {
        match keys.claim(key.into(), 1) {
            Claim::New(claimed) => claimed,
            Claim::Answered(response) => panic!("{key}: answered {}", response.status()),
        }
    }

    fn answered(keys: &IdempotencyKeys, key: &str) -> Response {
        match keys.claim(key.into(), 1) {
            Claim::New(_) => panic!("{key}: claimed again"),
            Claim::Answered(response) => response,
        }
    }

    #[tokio::test]
    async fn a_key_in_flight_is_never_forgotten() {
        let keys = IdempotencyKeys::new(2);
        let first = new_claim(&keys, "first");
        let second = new_claim(&keys, "second");
        // Full of running checkouts: a third is refused, nothing forgotten.
        let busy = answered(&keys, "third");
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        // The first checkout's retry still finds it running: no second charge.
        assert_eq!(answered(&keys, "first").status(), StatusCode::CONFLICT);
        // Once one is answered, its key is the one that makes room.
        second.complete(StatusCode::OK.into_response()).await;
        let _third = new_claim(&keys, "third");
        assert_eq!(answered(&keys, "first").status(), StatusCode::CONFLICT);
        assert!(!keys.table().entries.contains(&"second".to_owned()));
        drop(first);
    }

    #[tokio::test]
    async fn a_claim_that_ends_touches_only_its_own_entry() {
        let keys = IdempotencyKeys::new(4);
        let stale = new_claim(&keys, "k");
        // The key went away (a 5xx of an earlier attempt, say) and a retry took it.
        keys.table().entries.remove(&"k".to_owned());
        let retry = new_claim(&keys, "k");
        stale.complete(StatusCode::SERVICE_UNAVAILABLE.into_response()).await;
        assert_eq!(
            answered(&keys, "k").status(),
            StatusCode::CONFLICT,
            "the retry still holds it"
        );
        retry.complete(StatusCode::OK.into_response()).await;
        let replayed = answered(&keys, "k");
        assert_eq!(replayed.status(), StatusCode::OK);
        assert_eq!(replayed.headers()[IDEMPOTENT_REPLAYED], "true");
    }
}
