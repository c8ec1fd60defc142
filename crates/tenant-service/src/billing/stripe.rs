//! The port to Stripe's API ([`StripeApi`]: create a customer, a Checkout Session, a customer
//! portal session) and its adapter over HTTP ([`HttpStripe`], reqwest, form-encoded as Stripe
//! wants). The use cases know only the port, so an embedder or a test can put anything behind it.
//!
//! Failures are sorted for the caller: Stripe unreachable, slow (the client's timeout), rate
//! limiting (429) or failing (5xx) is [`StripeError::Unavailable`], retried later by the client
//! (503 + `Retry-After`); a request Stripe refuses (4xx: an unknown price, a deleted customer) is
//! [`StripeError::Refused`], a configuration to fix. The secret key is never part of an error.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;
use tenant_core::Secret;

use crate::error::ServiceError;

/// A boxed future of the port's methods (object-safe, `Send`).
pub type StripeFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StripeError>> + Send + 'a>>;

/// Why a call to Stripe did not give an answer to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// Stripe could not be reached, timed out, limited us or failed: retry later.
    #[error("Stripe is unavailable: {cause}")]
    Unavailable {
        /// Seconds to wait (Stripe's `Retry-After`, else a default).
        retry_after_secs: u64,
        /// What happened (no secret in it).
        cause: String,
    },
    /// Stripe refused the request (4xx): its error code and message.
    #[error("Stripe refused the request ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Stripe's `error.code` or `error.type`.
        code: String,
        /// Stripe's `error.message`.
        message: String,
    },
}

/// A hosted page Stripe made: a Checkout Session or a customer portal session.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HostedSession {
    /// Its id (`cs_…`, `bps_…`).
    pub id: String,
    /// Where to send the customer.
    pub url: String,
}

/// A Checkout Session to create (mode `subscription`).
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// The tenant's Stripe customer.
    pub customer_id: String,
    /// The tenant id: the session's `client_reference_id`, and in the metadata of the session
    /// and of the subscription it creates.
    pub tenant_id: String,
    /// The price sold.
    pub price_id: String,
    /// The plan it grants (in the metadata, for the record).
    pub plan: String,
    /// Where Stripe sends the customer after paying.
    pub success_url: String,
    /// Where Stripe sends the customer who gives up.
    pub cancel_url: String,
}

/// What the control plane asks of Stripe.
pub trait StripeApi: Send + Sync + fmt::Debug {
    /// Creates a customer for a tenant; `idempotency_key` makes a retry return the same one.
    fn create_customer<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        idempotency_key: &'a str,
    ) -> StripeFuture<'a, String>;

    /// Creates a Checkout Session.
    fn create_checkout_session<'a>(
        &'a self,
        request: &'a CheckoutRequest,
    ) -> StripeFuture<'a, HostedSession>;

    /// Creates a customer portal session for a customer.
    fn create_portal_session<'a>(
        &'a self,
        customer_id: &'a str,
        return_url: &'a str,
    ) -> StripeFuture<'a, HostedSession>;
}

/// Stripe's API over HTTP.
pub struct HttpStripe {
    client: reqwest::Client,
    base: String,
    secret_key: Secret,
}

impl fmt::Debug for HttpStripe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpStripe")
            .field("base", &self.base)
            .field("secret_key", &self.secret_key)
            .finish_non_exhaustive()
    }
}

/// How long to wait before retrying when Stripe gives no `Retry-After`.
const DEFAULT_RETRY_AFTER_SECS: u64 = 5;

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize, Default)]
struct ErrorEnvelope {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl HttpStripe {
    /// A client of the API at `base` (`https://api.stripe.com`, or a fake's address) with the
    /// secret key, giving up on a call after `timeout`.
    pub fn new(base: &str, secret_key: Secret, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| format!("cannot build the Stripe client: {e}"))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            secret_key,
        })
    }

    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.secret_key.expose())
            .form(form);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let unavailable = |cause: String, retry_after_secs| StripeError::Unavailable {
            retry_after_secs,
            cause,
        };
        // reqwest's errors name the URL, never the headers: no key in them.
        let resp = req.send().await.map_err(|e| {
            unavailable(
                format!("POST {path}: {}", e.without_url()),
                DEFAULT_RETRY_AFTER_SECS,
            )
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_RETRY_AFTER_SECS, |s| s.clamp(1, 300));
        let bytes = resp.bytes().await.map_err(|e| {
            unavailable(
                format!("POST {path}: reading the answer: {}", e.without_url()),
                DEFAULT_RETRY_AFTER_SECS,
            )
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                unavailable(
                    format!("POST {path}: an answer we cannot read: {e}"),
                    DEFAULT_RETRY_AFTER_SECS,
                )
            });
        }
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 409 {
            // 409: the same idempotency key is still being processed by Stripe.
            return Err(unavailable(
                format!("POST {path}: HTTP {status}"),
                retry_after,
            ));
        }
        let detail = serde_json::from_slice::<ErrorEnvelope>(&bytes)
            .unwrap_or_default()
            .error;
        Err(StripeError::Refused {
            status: status.as_u16(),
            code: detail
                .code
                .or(detail.kind)
                .unwrap_or_else(|| "unknown".to_owned()),
            message: detail
                .message
                .unwrap_or_else(|| format!("HTTP {status}"))
                .chars()
                .take(500)
                .collect(),
        })
    }
}

impl StripeApi for HttpStripe {
    fn create_customer<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        idempotency_key: &'a str,
    ) -> StripeFuture<'a, String> {
        Box::pin(async move {
            let created: Created = self
                .post(
                    "/v1/customers",
                    &[("name", name), ("metadata[tenant_id]", tenant_id)],
                    Some(idempotency_key),
                )
                .await?;
            Ok(created.id)
        })
    }

    fn create_checkout_session<'a>(
        &'a self,
        r: &'a CheckoutRequest,
    ) -> StripeFuture<'a, HostedSession> {
        Box::pin(async move {
            self.post(
                "/v1/checkout/sessions",
                &[
                    ("mode", "subscription"),
                    ("customer", &r.customer_id),
                    ("client_reference_id", &r.tenant_id),
                    ("line_items[0][price]", &r.price_id),
                    ("line_items[0][quantity]", "1"),
                    ("success_url", &r.success_url),
                    ("cancel_url", &r.cancel_url),
                    ("metadata[tenant_id]", &r.tenant_id),
                    ("metadata[plan]", &r.plan),
                    ("subscription_data[metadata][tenant_id]", &r.tenant_id),
                ],
                None,
            )
            .await
        })
    }

    fn create_portal_session<'a>(
        &'a self,
        customer_id: &'a str,
        return_url: &'a str,
    ) -> StripeFuture<'a, HostedSession> {
        Box::pin(async move {
            self.post(
                "/v1/billing_portal/sessions",
                &[("customer", customer_id), ("return_url", return_url)],
                None,
            )
            .await
        })
    }
}

impl From<StripeError> for ServiceError {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Unavailable {
                retry_after_secs,
                cause,
            } => ServiceError::BillingUnavailable {
                retry_after_secs,
                cause,
            },
            StripeError::Refused { .. } => ServiceError::BillingRefused(e.to_string()),
        }
    }
}
