//! eshop's calls to inventory, billing and delivery, and the undo calls that reverse them.

use std::{fmt, time::Duration};

use api::{
    Delivery, DeliveryRequest, Email, OrderLines, OrderRef, Payment, PaymentRequest, Reservation, ReserveRequest, paths,
};
use axum::http::StatusCode;
use reqwest_middleware::ClientWithMiddleware;
use serde::{Serialize, de::DeserializeOwned};
use service_kit::Problem;
use uuid::Uuid;

use crate::{Config, StartError};

/// A service eshop calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Inventory = 0,
    Billing = 1,
    Delivery = 2,
}

impl Service {
    const ALL: [Self; 3] = [Self::Inventory, Self::Billing, Self::Delivery];

    pub fn name(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Billing => "billing",
            Self::Delivery => "delivery",
        }
    }

    /// The call that reverses what this service did for an order.
    fn undo_path(self) -> &'static str {
        match self {
            Self::Inventory => paths::CANCEL_ORDER,
            Self::Billing => paths::REFUND,
            Self::Delivery => paths::CANCEL_DELIVERY,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A call that settles an order once its checkout's outcome is known:
/// idempotent, so it is safe to send after an unclear answer and to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Reverse what the service did for a failed checkout.
    Undo(Service),
    /// Tell billing the checkout went through, after Kafka acknowledged its event.
    Confirm,
}

impl Settle {
    pub(crate) fn service(self) -> Service {
        match self {
            Self::Undo(service) => service,
            Self::Confirm => Service::Billing,
        }
    }
}

/// How a call to another service went wrong.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{service} is unreachable: {source}")]
    Unreachable {
        service: Service,
        source: reqwest_middleware::Error,
    },
    #[error("{service} did not answer within {timeout:?}")]
    TimedOut { service: Service, timeout: Duration },
    #[error("{service} refused the request with {status}{}", detail(.problem))]
    Refused {
        service: Service,
        status: StatusCode,
        problem: Option<Problem>,
    },
    #[error("{service} failed with {status}{}", detail(.problem))]
    Failed {
        service: Service,
        status: StatusCode,
        problem: Option<Problem>,
    },
    #[error("{service} answered with a body eshop cannot read: {source}")]
    BadResponse { service: Service, source: reqwest::Error },
}

impl CallError {
    /// Whether the called service may have done the step. Only a 4xx answer
    /// says for sure that it did not; after a timeout, a reset connection, a
    /// 5xx or an unreadable answer the step may well have happened.
    pub(crate) fn step_may_have_happened(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }
}

/// The called service's own explanation, capped: it ends up in eshop's answer and logs.
fn detail(problem: &Option<Problem>) -> String {
    /// Enough for any of the suite's own problem details.
    const MAX_DETAIL: usize = 512;
    problem
        .as_ref()
        .map(|problem| format!(": {}", telemetry::untrusted::capped(&problem.detail, MAX_DETAIL)))
        .unwrap_or_default()
}

#[derive(Debug)]
pub(crate) struct Downstream {
    client: ClientWithMiddleware,
    timeout: Duration,
    endpoints: Endpoints,
}

impl Downstream {
    pub(crate) fn new(config: &Config) -> Result<Self, StartError> {
        Ok(Self {
            client: telemetry::client::http_client(config.http_timeout)?,
            timeout: config.http_timeout,
            endpoints: Endpoints::new(config)?,
        })
    }

    pub(crate) async fn reserve(&self, order_id: Uuid, items: &OrderLines) -> Result<Reservation, CallError> {
        let body = ReserveRequest {
            order_id,
            items: items.clone(),
        };
        self.post(Service::Inventory, &self.endpoints.reserve, &body).await
    }

    pub(crate) async fn charge(&self, order_id: Uuid, email: &Email, items: &OrderLines) -> Result<Payment, CallError> {
        let body = PaymentRequest {
            order_id,
            email: email.clone(),
            items: items.clone(),
        };
        self.post(Service::Billing, &self.endpoints.charge, &body).await
    }

    pub(crate) async fn arrange_delivery(
        &self,
        order_id: Uuid,
        email: &Email,
        items: &OrderLines,
    ) -> Result<Delivery, CallError> {
        let body = DeliveryRequest {
            order_id,
            email: email.clone(),
            items: items.clone(),
        };
        self.post(Service::Delivery, &self.endpoints.arrange_delivery, &body)
            .await
    }

    /// Settles the order (one attempt). The undo calls accept orders the
    /// service never saw; the confirmation refuses an order billing never
    /// charged (404) or refunded (409).
    pub(crate) async fn settle(&self, action: Settle, order_id: Uuid) -> Result<(), CallError> {
        self.send(action.service(), self.endpoints.settle(action), &OrderRef { order_id })
            .await
            .map(drop)
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        service: Service,
        url: &reqwest::Url,
        body: &B,
    ) -> Result<R, CallError> {
        let response = self.send(service, url, body).await?;
        response
            .json()
            .await
            .map_err(|source| CallError::BadResponse { service, source })
    }

    async fn send<B: Serialize>(
        &self,
        service: Service,
        url: &reqwest::Url,
        body: &B,
    ) -> Result<reqwest::Response, CallError> {
        let result = self.client.post(url.clone()).json(body).send().await;
        let response = match result {
            Ok(response) => response,
            Err(err) if is_timeout(&err) => {
                return Err(CallError::TimedOut {
                    service,
                    timeout: self.timeout,
                });
            }
            Err(source) => return Err(CallError::Unreachable { service, source }),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let problem = response.json::<Problem>().await.ok();
        Err(if status.is_client_error() {
            CallError::Refused {
                service,
                status,
                problem,
            }
        } else {
            CallError::Failed {
                service,
                status,
                problem,
            }
        })
    }
}

fn is_timeout(err: &reqwest_middleware::Error) -> bool {
    match err {
        reqwest_middleware::Error::Reqwest(err) => err.is_timeout(),
        reqwest_middleware::Error::Middleware(_) => false,
    }
}

/// Every URL eshop calls, parsed once at start: a string handed to reqwest is
/// parsed again on every call (several allocations each), a parsed URL is cloned.
#[derive(Debug)]
struct Endpoints {
    reserve: reqwest::Url,
    charge: reqwest::Url,
    arrange_delivery: reqwest::Url,
    confirm: reqwest::Url,
    /// The undo calls, in the order of [`Service::ALL`].
    undo: [reqwest::Url; 3],
}

impl Endpoints {
    fn new(config: &Config) -> Result<Self, StartError> {
        let base = |service| match service {
            Service::Inventory => &config.inventory_url,
            Service::Billing => &config.billing_url,
            Service::Delivery => &config.delivery_url,
        };
        let url = |service, path: &str| {
            let url = format!("{}{path}", base(service));
            reqwest::Url::parse(&url).map_err(|err| StartError::BadUrl {
                url,
                reason: err.to_string(),
            })
        };
        let [inventory, billing, delivery] = Service::ALL.map(|service| url(service, service.undo_path()));
        Ok(Self {
            reserve: url(Service::Inventory, paths::CREATE_ORDER)?,
            charge: url(Service::Billing, paths::PAYMENT)?,
            arrange_delivery: url(Service::Delivery, paths::ARRANGE_DELIVERY)?,
            confirm: url(Service::Billing, paths::CONFIRM_PAYMENT)?,
            undo: [inventory?, billing?, delivery?],
        })
    }

    fn settle(&self, action: Settle) -> &reqwest::Url {
        match action {
            Settle::Confirm => &self.confirm,
            Settle::Undo(service) => &self.undo[service as usize],
        }
    }
}
