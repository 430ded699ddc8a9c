//! `POST /dead-letters/replay`: an operator publishes chosen dead letters to `eshop-topic` again, each at most once.
//!
//! The body names the dead letters by partition and offset in
//! `eshop-topic.dlq`, as the `eshop.dead_letter.written` log event and the
//! dead letter's PRODUCER span give them:
//!
//! ```json
//! {"dead_letters": [{"partition": 0, "offset": 12}]}
//! ```
//!
//! The answer lists each one's outcome: `replayed` (with where it went),
//! `already_replayed` or `not_found`. The replay is all or nothing
//! (`messaging::replay`); a broker that cannot be reached is a 503 with
//! `Retry-After`, after which asking again is safe.

use std::{collections::BTreeSet, sync::Arc};

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use messaging::replay::{LetterAt, Outcome, Replayer};
use serde::{Deserialize, Serialize};
use service_kit::{Json, Problem};
use telemetry::semconv::{attribute, eshop};

/// The most dead letters one request may name: one transaction, one answer of bounded size.
pub(crate) const MAX_LETTERS_PER_REPLAY: usize = 100;
/// How long a client waits before asking again after a 503.
const RETRY_AFTER_SECONDS: &str = "5";

/// The body as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UncheckedReplay {
    dead_letters: Vec<UncheckedLetter>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UncheckedLetter {
    partition: i64,
    offset: i64,
}

/// A request that names 1 to [`MAX_LETTERS_PER_REPLAY`] distinct dead letters, each at a real place.
#[derive(Debug, Deserialize)]
#[serde(try_from = "UncheckedReplay")]
pub(crate) struct ReplayRequest {
    letters: BTreeSet<LetterAt>,
}

impl TryFrom<UncheckedReplay> for ReplayRequest {
    type Error = String;

    fn try_from(body: UncheckedReplay) -> Result<Self, Self::Error> {
        if body.dead_letters.is_empty() || body.dead_letters.len() > MAX_LETTERS_PER_REPLAY {
            return Err(format!(
                "dead_letters: name 1 to {MAX_LETTERS_PER_REPLAY} dead letters, not {}",
                body.dead_letters.len()
            ));
        }
        let letters = body
            .dead_letters
            .iter()
            .map(|letter| match (i32::try_from(letter.partition), letter.offset) {
                (Ok(partition), offset) if partition >= 0 && offset >= 0 => Ok(LetterAt { partition, offset }),
                _ => Err(format!(
                    "dead_letters: partition {} offset {} is no place in a topic (both are counted from 0)",
                    letter.partition, letter.offset
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { letters })
    }
}

/// What became of each named dead letter.
#[derive(Debug, Serialize)]
pub(crate) struct ReplayAnswer {
    dead_letters: Vec<LetterOutcome>,
}

#[derive(Debug, Serialize)]
struct LetterOutcome {
    partition: i32,
    offset: i64,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replayed_to: Option<ReplayedTo>,
}

#[derive(Debug, Serialize)]
struct ReplayedTo {
    partition: i32,
    offset: i64,
}

pub(crate) async fn replay(
    State(replayer): State<Arc<Replayer>>,
    Json(request): Json<ReplayRequest>,
) -> Result<Json<ReplayAnswer>, Response> {
    let letters: Vec<LetterAt> = request.letters.into_iter().collect();
    let outcomes = replayer.replay(&letters).await.map_err(|err| {
        tracing::error!(
            name: eshop::event::DEAD_LETTERS_REPLAY_FAILED,
            {
                { attribute::EXCEPTION_MESSAGE } = %err,
            },
            "dead-letter replay failed; nothing was replayed"
        );
        let mut response = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "replay-failed",
            "The dead letters could not be replayed",
            format!("{err}; nothing was replayed, asking again is safe"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        response
    })?;
    let dead_letters: Vec<LetterOutcome> = outcomes
        .into_iter()
        .map(|(at, outcome)| {
            let (outcome, replayed_to) = match outcome {
                Outcome::Replayed { partition, offset } => ("replayed", Some(ReplayedTo { partition, offset })),
                Outcome::AlreadyReplayed => ("already_replayed", None),
                Outcome::NotFound => ("not_found", None),
            };
            LetterOutcome {
                partition: at.partition,
                offset: at.offset,
                outcome,
                replayed_to,
            }
        })
        .collect();
    let replayed = dead_letters
        .iter()
        .filter(|letter| letter.replayed_to.is_some())
        .count();
    tracing::info!(
        name: eshop::event::DEAD_LETTERS_REPLAYED,
        {
            { eshop::attribute::DEAD_LETTERS_ASKED } = dead_letters.len(),
            { eshop::attribute::DEAD_LETTERS_PUBLISHED } = replayed,
        },
        "dead letters replayed"
    );
    Ok(Json(ReplayAnswer { dead_letters }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ReplayRequest, String> {
        serde_json::from_str(body).map_err(|err| err.to_string())
    }

    #[test]
    fn a_request_names_one_to_a_hundred_real_places() {
        let request =
            parse(r#"{"dead_letters":[{"partition":1,"offset":5},{"partition":1,"offset":5}]}"#).expect("valid");
        assert_eq!(request.letters.len(), 1, "named twice, replayed once");
        for broken in [
            r#"{"dead_letters":[]}"#,
            r#"{"dead_letters":[{"partition":-1,"offset":5}]}"#,
            r#"{"dead_letters":[{"partition":0,"offset":-2}]}"#,
            r#"{"dead_letters":[{"partition":4294967296,"offset":0}]}"#,
            r#"{"dead_letters":[{"partition":0}]}"#,
        ] {
            assert!(parse(broken).is_err(), "{broken}");
        }
        let too_many = format!(
            r#"{{"dead_letters":[{}]}}"#,
            vec![r#"{"partition":0,"offset":1}"#; MAX_LETTERS_PER_REPLAY + 1].join(",")
        );
        assert!(parse(&too_many).expect_err("too many").contains("1 to 100"));
    }
}
