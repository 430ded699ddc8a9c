//! What the consumer does with billing's and notification's answers, end to
//! end on the real broker and process: a 400 or 422 dead-letters the record
//! (and only that record); a 429, a 5xx and a timeout are retried, honouring
//! `Retry-After`, until the email goes out once.

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use api::{EmailReceipt, EmailStatus};
use axum::{
    Json, Router,
    extract::Query,
    http::{StatusCode, header},
    response::{IntoResponse as _, Response},
    routing::{get, post},
};
use common::wait_for_consumed;
use rdkafka::{
    ClientConfig, Message as _,
    consumer::{Consumer as _, StreamConsumer},
};
use test_support::{SpanKind, Stack, StackOptions, TestApp, Trace, WAIT, spawn_app};

/// Which order each stand-in turns away, and the orders notification emailed.
#[derive(Default)]
struct Script {
    rejected_by_billing: String,
    rejected_by_notification: String,
    emailed: Vec<String>,
}

/// A billing for which every order was confirmed, but that answers 400 about one order.
async fn billing_stand_in(script: Arc<Mutex<Script>>) -> TestApp {
    spawn_app(Router::new().route(
        "/payments",
        get(move |Query(query): Query<HashMap<String, String>>| async move {
            let order = query.get("order_id").cloned().unwrap_or_default();
            if order == script.lock().expect("lock").rejected_by_billing {
                return (StatusCode::BAD_REQUEST, "no such order id").into_response();
            }
            let Ok(order_id) = order.parse() else {
                return (StatusCode::BAD_REQUEST, "not an order id").into_response();
            };
            Json(vec![api::Payment {
                payment_id: uuid::Uuid::new_v4(),
                order_id,
                amount_cents: 3_999,
                currency: "EUR".to_owned(),
                status: api::PaymentStatus::Confirmed,
            }])
            .into_response()
        }),
    ))
    .await
}

/// A notification that answers 422 about one order and emails the others.
async fn notification_stand_in(script: Arc<Mutex<Script>>) -> TestApp {
    spawn_app(Router::new().route(
        "/sendEmail",
        post(move |Json(request): Json<api::EmailRequest>| async move {
            let order = request.order_id.to_string();
            let mut script = script.lock().expect("lock");
            if order == script.rejected_by_notification {
                return (StatusCode::UNPROCESSABLE_ENTITY, "the address bounces").into_response();
            }
            script.emailed.push(order);
            Json(EmailReceipt {
                order_id: request.order_id,
                status: EmailStatus::Sent,
            })
            .into_response()
        }),
    ))
    .await
}

/// Every key on the dead-letter topic once `count` records arrived, read by a group of its own.
async fn dead_letter_keys(stack: &Stack, count: usize) -> Vec<String> {
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.broker.bootstrap_servers())
        .set("group.id", "test-dead-letters-from-answers")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    reader.subscribe(&["eshop-topic.dlq"]).expect("subscribe");
    let mut keys = Vec::new();
    while keys.len() < count {
        let record = tokio::time::timeout(WAIT, reader.recv())
            .await
            .expect("a dead letter within WAIT")
            .expect("a record");
        keys.push(String::from_utf8_lossy(record.key().unwrap_or_default()).into_owned());
    }
    keys
}

#[tokio::test]
async fn a_400_from_billing_or_a_422_from_notification_dead_letters_that_record_only() {
    let script = Arc::new(Mutex::new(Script::default()));
    let billing = billing_stand_in(script.clone()).await;
    let notification = notification_stand_in(script.clone()).await;
    let stack = Stack::start_with(StackOptions {
        consumer_env: vec![
            ("BILLING_URL".to_owned(), billing.url("")),
            ("NOTIFICATION_URL".to_owned(), notification.url("")),
        ],
        ..StackOptions::default()
    })
    .await;
    let [by_billing, by_notification, good] =
        ["bad.id", "bounces", "fine"].map(|name| common::order_event(&format!("{name}@example.com")));
    {
        let mut script = script.lock().expect("lock");
        script.rejected_by_billing = by_billing.order_id.to_string();
        script.rejected_by_notification = by_notification.order_id.to_string();
    }
    let producer = common::producer(&stack);
    for event in [&by_billing, &by_notification, &good] {
        common::send_event_to(&producer, 0, event).await;
    }

    for (event, error_type) in [
        (&by_billing, "rejected_by_billing"),
        (&by_notification, "rejected_by_notification"),
    ] {
        let consumer = wait_for_consumed(&stack, &event.order_id.to_string()).await;
        assert_eq!(consumer.str_attribute("error.type"), Some(error_type));
        let trace = Trace::new(stack.receiver.store().trace(&consumer.trace_id));
        let consumer = trace.one("kafka-consumer", SpanKind::Consumer, "process eshop-topic");
        trace.child(consumer, "kafka-consumer", SpanKind::Producer, "send eshop-topic.dlq");
    }
    let good_id = good.order_id.to_string();
    let consumer = wait_for_consumed(&stack, &good_id).await;
    assert!(!consumer.is_error(), "{consumer:?}");

    let mut keys = dead_letter_keys(&stack, 2).await;
    keys.sort();
    let mut expected = vec![by_billing.order_id.to_string(), by_notification.order_id.to_string()];
    expected.sort();
    assert_eq!(keys, expected, "the two rejected records, not the good one");
    assert_eq!(
        script.lock().expect("lock").emailed,
        [good_id],
        "only the good order emailed"
    );
}

/// What the notification stand-in answers to each attempt, in order.
#[derive(Clone, Copy)]
enum Attempt {
    TooManyRequests,
    Unavailable,
    TooSlow,
    Accept,
}

#[tokio::test]
async fn a_429_a_5xx_and_a_timeout_are_retried_honouring_retry_after_until_the_email_goes_out() {
    const RETRY_AFTER: Duration = Duration::from_secs(2);
    let script = [
        Attempt::TooManyRequests,
        Attempt::Unavailable,
        Attempt::TooSlow,
        Attempt::Accept,
    ];
    let calls = Arc::new(Mutex::new(0usize));
    let notification = spawn_app(Router::new().route(
        "/sendEmail",
        post({
            let calls = calls.clone();
            move |Json(request): Json<api::EmailRequest>| async move {
                let attempt = {
                    let mut calls = calls.lock().expect("lock");
                    *calls += 1;
                    script[(*calls - 1).min(script.len() - 1)]
                };
                let response: Response = match attempt {
                    Attempt::TooManyRequests => (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, RETRY_AFTER.as_secs().to_string())],
                        "slow down",
                    )
                        .into_response(),
                    Attempt::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    Attempt::TooSlow => {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        StatusCode::SERVICE_UNAVAILABLE.into_response()
                    }
                    Attempt::Accept => Json(EmailReceipt {
                        order_id: request.order_id,
                        status: EmailStatus::Sent,
                    })
                    .into_response(),
                };
                response
            }
        }),
    ))
    .await;
    let stack = Stack::start_with(StackOptions {
        consumer_env: vec![
            ("NOTIFICATION_URL".to_owned(), notification.url("")),
            // The third attempt outlasts this: a timeout.
            ("HTTP_CLIENT_TIMEOUT_MS".to_owned(), "500".to_owned()),
        ],
        ..StackOptions::default()
    })
    .await;
    let event = common::placed_event(&stack, "retried@example.com").await;
    common::send_event_to(&common::producer(&stack), 0, &event).await;

    let consumer = wait_for_consumed(&stack, &event.order_id.to_string()).await;
    assert!(!consumer.is_error(), "{consumer:?}");
    let trace = Trace::new(stack.receiver.store().trace(&consumer.trace_id));
    let consumer = trace.one("kafka-consumer", SpanKind::Consumer, "process eshop-topic");
    let mut attempts: Vec<_> = trace
        .children_of(consumer)
        .into_iter()
        .filter(|span| span.kind == SpanKind::Client && span.name == "POST /sendEmail")
        .collect();
    attempts.sort_by_key(|attempt| attempt.start_unix_nanos);
    assert_eq!(attempts.len(), 4, "429, 503, timeout, accepted:\n{}", trace.render());
    assert!(
        attempts[..3].iter().all(|attempt| attempt.is_error()),
        "{}",
        trace.render()
    );
    assert!(!attempts[3].is_error(), "{}", trace.render());
    // The wait after the 429 is the one it asked for, longer than any backoff (500 ms here).
    let waited = Duration::from_nanos(attempts[1].start_unix_nanos - attempts[0].end_unix_nanos);
    assert!(waited >= RETRY_AFTER, "Retry-After honoured: waited {waited:?}");
    assert!(
        !trace.has("kafka-consumer", SpanKind::Producer, "send eshop-topic.dlq"),
        "nothing dead-lettered:\n{}",
        trace.render()
    );
    assert_eq!(*calls.lock().expect("lock"), 4);
}
