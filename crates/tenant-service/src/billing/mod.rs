//! Stripe billing: one Stripe customer per tenant (created on demand), Checkout and the customer
//! portal for paying, signed webhooks applied once, and the entitlements a subscription gives —
//! the tenant's plan (its limits follow, see [`crate::plans`]) and its billing state, with a
//! grace period for failed payments, then suspension (out of the gateway config) until paid.
//!
//! - [`prices`]: the price → plan map (`SAAS_STRIPE_PRICES`);
//! - [`signature`]: the `Stripe-Signature` check on the raw body;
//! - [`stripe`]: the port to Stripe's API and its HTTP adapter;
//! - [`event`]: reading Stripe events; [`webhook`]: applying one, once;
//! - [`entitlements`]: states, plans, suspension and restoration, the sweep.
//!
//! Billing is off without a secret key ([`BillingConfig`] absent): every billing use case answers
//! [`ServiceError::BillingDisabled`] and nothing else changes.

pub mod entitlements;
pub mod event;
pub mod prices;
pub mod signature;
pub mod stripe;
pub mod webhook;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use tenant_core::{Plan, Secret, TenantId, ValidationError, ValidationErrors};
use tenant_store::billing::{self, BillingRow};
use tenant_store::{AnyConnection, tenants};

pub use self::entitlements::Rules;
pub use self::prices::PriceMap;
use self::stripe::StripeApi;
use crate::error::{ServiceError, ServiceResult};

/// Stripe's API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// How long a tenant past due keeps its plan by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(7 * 86_400);
/// How long applied Stripe event ids are kept (Stripe retries an event for three days).
pub const EVENT_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// Billing's settings (the server reads them from `SAAS_STRIPE_*` and `SAAS_BILLING_*`).
#[derive(Clone)]
pub struct BillingConfig {
    /// The API secret key (`sk_…` or a restricted `rk_…`).
    pub secret_key: Secret,
    /// The webhook endpoint's signing secret (`whsec_…`).
    pub webhook_secret: Secret,
    /// Where Stripe's API is ([`DEFAULT_API_BASE`]; tests point it at a fake).
    pub api_base: String,
    /// Which price grants which plan.
    pub prices: PriceMap,
    /// How long a tenant past due keeps its plan before it is suspended.
    pub grace: Duration,
    /// How long a call to Stripe may take.
    pub timeout: Duration,
}

impl fmt::Debug for BillingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Secret`'s own Debug is redacted; listed to show they are set.
        f.debug_struct("BillingConfig")
            .field("secret_key", &self.secret_key)
            .field("webhook_secret", &self.webhook_secret)
            .field("api_base", &self.api_base)
            .field("prices", &self.prices)
            .field("grace", &self.grace)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Billing as a [`crate::ControlPlane`] holds it: the webhook secret, the rules and the port
/// to Stripe.
#[derive(Debug)]
pub struct Billing {
    /// The webhook endpoint's signing secret.
    pub webhook_secret: Secret,
    /// Prices and grace.
    pub rules: Rules,
    /// Stripe's API.
    pub api: Arc<dyn StripeApi>,
}

impl Billing {
    /// Billing over HTTP to the configured API.
    pub fn from_config(config: &BillingConfig) -> Result<Self, String> {
        let api =
            stripe::HttpStripe::new(&config.api_base, config.secret_key.clone(), config.timeout)?;
        Ok(Self::with_api(config, Arc::new(api)))
    }

    /// Billing with another implementation of the port.
    pub fn with_api(config: &BillingConfig, api: Arc<dyn StripeApi>) -> Self {
        Self {
            webhook_secret: config.webhook_secret.clone(),
            rules: Rules {
                prices: config.prices.clone(),
                grace: chrono::Duration::from_std(config.grace).unwrap_or(chrono::Duration::MAX),
            },
            api,
        }
    }
}

/// A tenant's billing as shown (`GET /tenants/{id}/billing`, `billing show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingView {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its plan now.
    pub plan: Plan,
    /// `none`, `incomplete`, `active`, `past_due`, `suspended` or `canceled`.
    pub state: String,
    /// Its Stripe customer.
    pub customer_id: Option<String>,
    /// The subscription deciding its plan.
    pub subscription_id: Option<String>,
    /// That subscription's Stripe status.
    pub subscription_status: Option<String>,
    /// The price subscribed to.
    pub price_id: Option<String>,
    /// The end of the period paid for.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Since when a payment is missing.
    pub past_due_since: Option<DateTime<Utc>>,
    /// When the grace period ends (then the tenant is suspended).
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// When billing suspended the tenant.
    pub suspended_at: Option<DateTime<Utc>>,
}

fn utc(t: Option<NaiveDateTime>) -> Option<DateTime<Utc>> {
    t.map(|t| t.and_utc())
}

/// A tenant's billing (`NotFound("tenant")` for a missing one); `grace` is the grace period.
pub fn report(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    grace: chrono::Duration,
) -> ServiceResult<BillingView> {
    let tenant = tenants::find(conn, tenant_id)?;
    let row = billing::find(conn, tenant_id)?
        .unwrap_or_else(|| BillingRow::new(tenant_id, tenant.created_at));
    Ok(BillingView {
        tenant_id: *tenant_id,
        plan: tenant.plan,
        state: entitlements::state_of(&row).to_owned(),
        grace_ends_at: match entitlements::state_of(&row) {
            "past_due" | "suspended" => entitlements::grace_ends(&row, grace),
            _ => None,
        },
        customer_id: row.customer_id,
        subscription_id: row.subscription_id,
        subscription_status: row.subscription_status,
        price_id: row.price_id,
        current_period_end: utc(row.current_period_end),
        past_due_since: utc(row.past_due_since),
        suspended_at: utc(row.suspended_at),
    })
}

/// A Checkout request as received.
#[derive(Debug, Clone)]
pub struct CheckoutInput {
    /// The plan to buy.
    pub plan: String,
    /// Where Stripe sends the customer after paying.
    pub success_url: String,
    /// Where Stripe sends the customer who gives up.
    pub cancel_url: String,
}

/// A Checkout request checked against the price map.
#[derive(Debug, Clone)]
pub struct ValidCheckout {
    /// The plan.
    pub plan: Plan,
    /// Its price.
    pub price_id: String,
    /// Success URL.
    pub success_url: String,
    /// Cancel URL.
    pub cancel_url: String,
}

/// The longest redirect URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Checks a redirect URL: absolute `http(s)`, at most [`MAX_URL_LEN`] characters.
pub fn check_url(field: &str, raw: &str) -> Result<String, ValidationError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ValidationError::new(field, "required", "must not be empty"));
    }
    if raw.len() > MAX_URL_LEN {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("must be at most {MAX_URL_LEN} characters"),
        ));
    }
    match reqwest::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(raw.to_owned()),
        _ => Err(ValidationError::new(
            field,
            "invalid_url",
            "must be an absolute http(s) URL",
        )),
    }
}

impl CheckoutInput {
    /// Checks every field: a plan with a price, two URLs.
    pub fn check(self, prices: &PriceMap) -> Result<ValidCheckout, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let plan = errors.check(self.plan.parse::<Plan>());
        let price = plan.and_then(|p| {
            let price = prices.price_for(p);
            if price.is_none() {
                let sold: Vec<&str> = prices.plans().iter().map(|p| p.as_str()).collect();
                errors.0.push(ValidationError::new(
                    "plan",
                    "not_for_sale",
                    format!(
                        "no Stripe price is configured for this plan (plans for sale: {})",
                        if sold.is_empty() {
                            "none".to_owned()
                        } else {
                            sold.join(", ")
                        }
                    ),
                ));
            }
            price.map(str::to_owned)
        });
        let success_url = errors.check(check_url("successUrl", &self.success_url));
        let cancel_url = errors.check(check_url("cancelUrl", &self.cancel_url));
        errors.into_result()?;
        match (plan, price, success_url, cancel_url) {
            (Some(plan), Some(price_id), Some(success_url), Some(cancel_url)) => {
                Ok(ValidCheckout {
                    plan,
                    price_id,
                    success_url,
                    cancel_url,
                })
            }
            _ => Err(ValidationErrors::default()),
        }
    }
}

/// Refuses a Checkout for a tenant that already pays (a second subscription would bill twice;
/// its plan is changed in the customer portal).
pub fn require_no_subscription(view: &BillingView) -> ServiceResult<()> {
    if matches!(view.state.as_str(), "active" | "past_due" | "suspended") {
        return Err(ServiceError::Store(tenant_store::StoreError::Conflict {
            field: "plan",
            message: "the tenant already has a subscription: change its plan in the customer portal (POST …/billing/portal)".into(),
        }));
    }
    Ok(())
}

/// The idempotency key of a tenant's customer creation: a retry never makes a second customer.
pub fn customer_idempotency_key(tenant_id: &TenantId) -> String {
    format!("moltbot-saas-customer-{tenant_id}")
}
