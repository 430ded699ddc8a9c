//! Handling one record inside its CONSUMER span: parse, wait for billing to confirm the order's payment, have notification email it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::{EmailRequest, OrderPlaced, Payment, PaymentStatus, paths};
use rdkafka::message::{Message as _, OwnedMessage};
use reqwest_middleware::ClientWithMiddleware;
use service_kit::Backoff;
use telemetry::client::ResendCount;
use telemetry::semconv::{attribute, eshop};
use tokio_util::sync::CancellationToken;

use crate::{
    Config, WorkerError,
    dead_letter::DeadLetters,
    retry::{self, Verdict},
};

/// Records copied to the dead-letter topic, by why (`error.type`).
static DEAD_LETTERED: std::sync::LazyLock<telemetry::metrics::Counter> = std::sync::LazyLock::new(|| {
    telemetry::metrics::counter(
        eshop::metric::RECORDS_DEAD_LETTERED,
        "{record}",
        "Records copied to the dead-letter topic because they can never be handled.",
    )
});

/// How handling one record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// Emailed, skipped (the order was undone), or dead-lettered: store its offset.
    Done,
    /// Shutdown or a revoke came first: leave it unstored, it will be delivered again.
    Interrupted,
}

/// How a call retried until answered ended.
enum Answer<T> {
    Final(T),
    /// The service will never accept this request (400 or 422).
    Rejected(String),
    Interrupted,
}

#[derive(Debug)]
pub(crate) struct Handler {
    client: ClientWithMiddleware,
    dead_letters: DeadLetters,
    notification_url: String,
    billing_url: String,
    group_id: String,
    /// The bootstrap broker, named on the CONSUMER spans and metrics.
    broker: messaging::Broker,
    max_backoff: Duration,
    /// How long after its publication an order may stay unconfirmed before its record is dead-lettered.
    confirm_wait: Duration,
    /// The longest one look at billing may be held: within billing's limit and half the client's timeout.
    look_max: Duration,
}

impl Handler {
    pub(crate) fn new(config: &Config) -> Result<Self, WorkerError> {
        Ok(Self {
            client: telemetry::client::http_client(config.http_timeout)?,
            dead_letters: DeadLetters::new(&config.kafka, config.max_backoff)?,
            notification_url: config.notification_url.clone(),
            billing_url: config.billing_url.clone(),
            group_id: config.kafka.group_id.clone(),
            broker: config.kafka.broker(),
            max_backoff: config.max_backoff,
            confirm_wait: config.confirm_wait,
            look_max: Duration::from_millis(api::MAX_SETTLE_WAIT_MS).min(config.http_timeout / 2),
        })
    }

    /// Handles `message` until it is done or `stop` is cancelled while waiting to retry.
    pub(crate) async fn handle(&self, message: &OwnedMessage, stop: &CancellationToken) -> Handled {
        messaging::consumer::process(message, &self.group_id, &self.broker, async {
            let order = match parse(message) {
                Ok(order) => order,
                Err(reason) => return self.dead_letter(message, "invalid_message", &reason, stop).await,
            };
            let standing = match self.wait_for_confirmation(message, &order, stop).await {
                Answer::Final(standing) => standing,
                Answer::Interrupted => return Handled::Interrupted,
                Answer::Rejected(reason) => {
                    return self.dead_letter(message, "rejected_by_billing", &reason, stop).await;
                }
            };
            match standing {
                Standing::Confirmed => {}
                Standing::Refunded => {
                    // eshop answered 502 and undid the order, but Kafka had kept the record.
                    telemetry::span::set_attribute(&tracing::Span::current(), eshop::attribute::ORDER_UNDONE, true);
                    tracing::warn!(
                        name: eshop::event::EMAIL_SKIPPED,
                        {
                            { eshop::attribute::ORDER_ID } = %order.order_id,
                        },
                        "the order was undone; no email"
                    );
                    return Handled::Done;
                }
                Standing::NotYetKnown => {
                    let reason = format!(
                        "billing had not confirmed the payment of order {} within {:?} of the event's publication",
                        order.order_id, self.confirm_wait
                    );
                    return self.dead_letter(message, "unconfirmed_order", &reason, stop).await;
                }
            }
            match self.notify(&order, stop).await {
                Answer::Final(()) => Handled::Done,
                Answer::Interrupted => Handled::Interrupted,
                Answer::Rejected(reason) => {
                    self.dead_letter(message, "rejected_by_notification", &reason, stop)
                        .await
                }
            }
        })
        .await
    }

    async fn dead_letter(
        &self,
        message: &OwnedMessage,
        error_type: &str,
        reason: &str,
        stop: &CancellationToken,
    ) -> Handled {
        messaging::record_error(&tracing::Span::current(), error_type, &reason);
        tracing::error!(
            name: eshop::event::RECORD_DEAD_LETTERED,
            {
                { attribute::ERROR_TYPE } = error_type,
                { eshop::attribute::DEAD_LETTER_REASON } = reason,
            },
            "this record can never be handled; dead-lettering it"
        );
        if self.dead_letters.send(message, reason, stop).await {
            DEAD_LETTERED.add(
                1,
                &[telemetry::metrics::KeyValue::new(
                    attribute::ERROR_TYPE,
                    error_type.to_owned(),
                )],
            );
            Handled::Done
        } else {
            Handled::Interrupted
        }
    }

    /// Asks billing where the order's payment stands until it is confirmed
    /// or refunded, or until `confirm_wait` after the record's timestamp
    /// (when eshop published it) has passed. A charge not yet confirmed, or
    /// no payment at all, is not yet known: eshop may still refund it.
    async fn wait_for_confirmation(
        &self,
        message: &OwnedMessage,
        order: &OrderPlaced,
        stop: &CancellationToken,
    ) -> Answer<Standing> {
        let deadline = confirmation_deadline(published_at(message), SystemTime::now(), self.confirm_wait);
        let mut backoff = Backoff::new(self.max_backoff);
        loop {
            let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
            let standing = match self.standing(order, left, stop).await {
                Answer::Final(standing) => standing,
                Answer::Rejected(reason) => return Answer::Rejected(reason),
                Answer::Interrupted => return Answer::Interrupted,
            };
            let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
            if standing != Standing::NotYetKnown || left.is_zero() {
                return Answer::Final(standing);
            }
            tokio::select! {
                () = stop.cancelled() => return Answer::Interrupted,
                () = tokio::time::sleep(backoff.next_wait().min(left)) => {}
            }
        }
    }

    /// Where billing says the order's payment stands, once it is confirmed
    /// or refunded or after at most `wait` (billing holds the answer that
    /// long); asks until billing answers with a payment list.
    async fn standing(&self, order: &OrderPlaced, wait: Duration, stop: &CancellationToken) -> Answer<Standing> {
        let wait_ms = u64::try_from(wait.min(self.look_max).as_millis()).unwrap_or(u64::MAX);
        let url = format!(
            "{}{}?order_id={}&wait_ms={wait_ms}",
            self.billing_url,
            paths::PAYMENTS,
            order.order_id
        );
        self.call_until_answered(
            "billing",
            stop,
            |client| client.get(&url),
            async |response| {
                let payments: Vec<Payment> = response
                    .json()
                    .await
                    .map_err(|err| format!("not a payment list: {err}"))?;
                Ok(Standing::of(&payments))
            },
        )
        .await
    }

    /// Calls notification until it accepts.
    async fn notify(&self, order: &OrderPlaced, stop: &CancellationToken) -> Answer<()> {
        let request = EmailRequest {
            order_id: order.order_id,
            to: order.email.clone(),
            subject: format!("Your order {} is confirmed", order.order_id),
            body: format!(
                "Thank you for your order of {} item(s), {:.2} {}. Tracking id {}, expected on {}.",
                order.items.iter().map(|line| u64::from(line.quantity)).sum::<u64>(),
                order.amount_cents as f64 / 100.0,
                order.currency,
                order.tracking_id,
                order.estimated_delivery
            ),
        };
        let url = format!("{}{}", self.notification_url, paths::SEND_EMAIL);
        self.call_until_answered(
            "notification",
            stop,
            |client| client.post(&url).json(&request),
            async |_| Ok(()),
        )
        .await
    }

    /// Sends the request `build` makes and reads the answer with `read` until
    /// both succeed, or the service rejects the request (400, 422: `Rejected`).
    /// Anything else (no answer, 403, 404, 408, 409, 429, 5xx, an unreadable
    /// body) is retried with backoff, or after the answer's `Retry-After`. Each
    /// attempt is a CLIENT span of the current trace, marked with
    /// `http.request.resend_count` from the second on.
    async fn call_until_answered<T>(
        &self,
        service: &str,
        stop: &CancellationToken,
        build: impl Fn(&ClientWithMiddleware) -> reqwest_middleware::RequestBuilder,
        read: impl AsyncFn(reqwest::Response) -> Result<T, String>,
    ) -> Answer<T> {
        let mut backoff = Backoff::new(self.max_backoff);
        let mut resend_count = 0;
        loop {
            let attempt = resend_count + 1;
            let outcome = build(&self.client)
                .with_extension(ResendCount(resend_count))
                .send()
                .await;
            // Taken on every attempt, so the pause doubles even while Retry-After sets the wait.
            let pause = backoff.next_wait();
            let wait = match outcome {
                Ok(response) => {
                    let status = response.status();
                    match retry::verdict(status) {
                        Verdict::Accepted => match read(response).await {
                            Ok(value) => return Answer::Final(value),
                            Err(err) => {
                                tracing::warn!(
                                    name: eshop::event::CALL_RETRIED,
                                    {
                                        { eshop::attribute::SERVICE } = service,
                                        { eshop::attribute::RETRY_ATTEMPT } = attempt,
                                        { eshop::attribute::RETRY_WAIT_MS } = millis(pause),
                                        { attribute::EXCEPTION_MESSAGE } = retry::capped(&err),
                                    },
                                    "unreadable answer; retrying"
                                );
                                pause
                            }
                        },
                        Verdict::Rejected => {
                            let body = response.text().await.unwrap_or_default();
                            return Answer::Rejected(format!("{service} answered {status}: {}", retry::capped(&body)));
                        }
                        Verdict::Retry => {
                            let wait = retry::retry_after(response.headers()).unwrap_or(pause);
                            tracing::warn!(
                                name: eshop::event::CALL_RETRIED,
                                {
                                    { eshop::attribute::SERVICE } = service,
                                    { eshop::attribute::RETRY_ATTEMPT } = attempt,
                                    { eshop::attribute::RETRY_WAIT_MS } = millis(wait),
                                    { attribute::HTTP_RESPONSE_STATUS_CODE } = i64::from(status.as_u16()),
                                },
                                "call failed; retrying"
                            );
                            wait
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(
                        name: eshop::event::CALL_RETRIED,
                        {
                            { eshop::attribute::SERVICE } = service,
                            { eshop::attribute::RETRY_ATTEMPT } = attempt,
                            { eshop::attribute::RETRY_WAIT_MS } = millis(pause),
                            { attribute::EXCEPTION_MESSAGE } = %err,
                        },
                        "service unreachable; retrying"
                    );
                    pause
                }
            };
            tokio::select! {
                () = stop.cancelled() => return Answer::Interrupted,
                () = tokio::time::sleep(wait) => {}
            }
            resend_count += 1;
        }
    }
}

/// Where an order stands for its email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// eshop confirmed the payment after Kafka acknowledged the event: email it.
    Confirmed,
    /// The checkout failed and was undone: no email.
    Refunded,
    /// Charged and not yet confirmed, or no payment found: eshop may still
    /// confirm or refund it (and billing's bounded table may have let an old
    /// order go).
    NotYetKnown,
}

impl Standing {
    fn of(payments: &[Payment]) -> Self {
        if payments.iter().any(|payment| payment.status == PaymentStatus::Refunded) {
            Self::Refunded
        } else if payments
            .iter()
            .any(|payment| payment.status == PaymentStatus::Confirmed)
        {
            Self::Confirmed
        } else {
            Self::NotYetKnown
        }
    }
}

/// Until when an order may stay unconfirmed: `wait` after its publication,
/// and never later than `wait` from now, so a record stamped in the future
/// (a skewed clock, or a forged record) cannot hold its partition longer.
fn confirmation_deadline(published: Option<SystemTime>, now: SystemTime, wait: Duration) -> SystemTime {
    let latest = now + wait;
    published.map_or(latest, |at| (at + wait).min(latest))
}

/// When the producer stamped the record (or the broker, with `LogAppendTime`).
fn published_at(message: &OwnedMessage) -> Option<SystemTime> {
    let millis = u64::try_from(message.timestamp().to_millis()?).ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(millis))
}

fn parse(message: &OwnedMessage) -> Result<OrderPlaced, String> {
    let payload = message.payload().ok_or("the record has no payload")?;
    serde_json::from_slice(payload).map_err(|err| format!("not an OrderPlaced event: {err}"))
}

/// A wait as whole milliseconds, the unit of `eshop.retry.wait_ms`.
fn millis(wait: Duration) -> i64 {
    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_runs_from_the_publication_and_never_past_now_plus_the_wait() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let wait = Duration::from_secs(60);
        let deadline = |published| confirmation_deadline(published, now, wait);
        assert_eq!(
            deadline(Some(now - Duration::from_secs(10))),
            now + Duration::from_secs(50)
        );
        assert!(
            deadline(Some(now - Duration::from_secs(3600))) < now,
            "an old record is past its wait"
        );
        assert_eq!(
            deadline(Some(now + Duration::from_secs(86_400))),
            now + wait,
            "a future stamp is capped"
        );
        assert_eq!(deadline(None), now + wait);
    }

    #[test]
    fn only_a_confirmation_or_a_refund_settles_an_order() {
        let payment = |status| Payment {
            payment_id: uuid::Uuid::nil(),
            order_id: uuid::Uuid::nil(),
            amount_cents: 1,
            currency: "EUR".to_owned(),
            status,
        };
        assert_eq!(Standing::of(&[]), Standing::NotYetKnown);
        assert_eq!(Standing::of(&[payment(PaymentStatus::Charged)]), Standing::NotYetKnown);
        assert_eq!(Standing::of(&[payment(PaymentStatus::Confirmed)]), Standing::Confirmed);
        assert_eq!(Standing::of(&[payment(PaymentStatus::Refunded)]), Standing::Refunded);
    }
}
