//! Handling one record inside its CONSUMER span: parse, ask billing whether the order stands, have notification email it.

use std::time::Duration;

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
        })
    }

    /// Handles `message` until it is done or `stop` is cancelled while waiting to retry.
    pub(crate) async fn handle(&self, message: &OwnedMessage, stop: &CancellationToken) -> Handled {
        messaging::consumer::process(message, &self.group_id, &self.broker, async {
            let order = match parse(message) {
                Ok(order) => order,
                Err(reason) => return self.dead_letter(message, "invalid_message", &reason, stop).await,
            };
            let stands = match self.order_stands(&order, stop).await {
                Answer::Final(stands) => stands,
                Answer::Interrupted => return Handled::Interrupted,
                Answer::Rejected(reason) => {
                    return self.dead_letter(message, "rejected_by_billing", &reason, stop).await;
                }
            };
            if !stands {
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

    /// Whether the order still stands: billing holds a charge for it that was
    /// not refunded. Asks until billing answers with a payment list.
    async fn order_stands(&self, order: &OrderPlaced, stop: &CancellationToken) -> Answer<bool> {
        let url = format!("{}{}?order_id={}", self.billing_url, paths::PAYMENTS, order.order_id);
        self.call_until_answered(
            "billing",
            stop,
            |client| client.get(&url),
            async |response| {
                let payments: Vec<Payment> = response
                    .json()
                    .await
                    .map_err(|err| format!("not a payment list: {err}"))?;
                // Only a refund says the order was undone. No payment at all
                // means billing's bounded ledger has let it go (a consumer
                // that lags by more than the ledger holds): eshop publishes
                // only after billing charged, so the record itself says the
                // order was charged, and it stands.
                Ok(!payments.iter().any(|payment| payment.status == PaymentStatus::Refunded))
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

fn parse(message: &OwnedMessage) -> Result<OrderPlaced, String> {
    let payload = message.payload().ok_or("the record has no payload")?;
    serde_json::from_slice(payload).map_err(|err| format!("not an OrderPlaced event: {err}"))
}

/// A wait as whole milliseconds, the unit of `eshop.retry.wait_ms`.
fn millis(wait: Duration) -> i64 {
    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)
}
