//! Stripe billing: a tenant's billing (`GET /tenants/{id}/billing`), Checkout and the customer
//! portal (`POST …/billing/checkout`, `POST …/billing/portal`: operators and the tenant's owners
//! and admins), and Stripe's webhook (`POST /billing/stripe/webhook`, authenticated by its
//! signature, not a bearer token). Without a Stripe key every one answers 503
//! `billing_disabled`.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tenant_service::billing::webhook::Applied;
use tenant_service::billing::{BillingView, CheckoutInput};
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson, parse_tenant_id};
use crate::state::AppState;

/// The largest Stripe event accepted.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

fn stamp(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `GET /tenants/{id}/billing`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingResponse {
    /// Tenant id (UUID).
    pub tenant_id: String,
    /// Its plan now (a subscription sets it; `free` once canceled).
    pub plan: String,
    /// `none` (never subscribed), `incomplete`, `active`, `past_due` (in its grace period),
    /// `suspended` (grace over: out of the gateway config until paid) or `canceled`.
    pub state: String,
    /// Its Stripe customer (`cus_…`), once created.
    pub customer_id: Option<String>,
    /// The subscription deciding its plan (`sub_…`).
    pub subscription_id: Option<String>,
    /// That subscription's status at Stripe.
    pub subscription_status: Option<String>,
    /// The price subscribed to.
    pub price_id: Option<String>,
    /// The end of the period paid for (RFC 3339).
    pub current_period_end: Option<String>,
    /// Since when a payment is missing.
    pub past_due_since: Option<String>,
    /// When the grace period ends (past due) or ended (suspended).
    pub grace_ends_at: Option<String>,
    /// When billing suspended the tenant.
    pub suspended_at: Option<String>,
}

impl From<BillingView> for BillingResponse {
    fn from(v: BillingView) -> Self {
        Self {
            tenant_id: v.tenant_id.to_string(),
            plan: v.plan.as_str().to_owned(),
            state: v.state,
            customer_id: v.customer_id,
            subscription_id: v.subscription_id,
            subscription_status: v.subscription_status,
            price_id: v.price_id,
            current_period_end: stamp(v.current_period_end),
            past_due_since: stamp(v.past_due_since),
            grace_ends_at: stamp(v.grace_ends_at),
            suspended_at: stamp(v.suspended_at),
        }
    }
}

/// `POST /tenants/{id}/billing/checkout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckoutRequestBody {
    /// The plan to subscribe to (one with a price in `SAAS_STRIPE_PRICES`).
    pub plan: String,
    /// Where Stripe sends the customer after paying (absolute http(s) URL).
    pub success_url: String,
    /// Where Stripe sends the customer who gives up.
    pub cancel_url: String,
}

/// `POST /tenants/{id}/billing/portal`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalRequestBody {
    /// Where the portal's "return" link leads (absolute http(s) URL).
    pub return_url: String,
}

/// A page hosted by Stripe to send the customer to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostedSessionResponse {
    /// The session's id at Stripe (`cs_…`, `bps_…`).
    pub id: String,
    /// Where to send the customer.
    pub url: String,
}

/// What became of a Stripe event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAck {
    /// Always true: Stripe needs no more than the 2xx.
    pub received: bool,
    /// `applied`, `replayed` (seen before: nothing changed) or `ignored`.
    pub outcome: String,
    /// Why it was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A tenant's billing: plan, state, subscription, period end and grace.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "Tenant id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "The tenant's billing", body = BillingResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 503, description = "`billing_disabled`: no Stripe key configured", body = ErrorBody),
))]
#[get("/tenants/{id}/billing")]
pub async fn get_billing(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let view = state.control.tenant_billing(tenant_id).await?;
    Ok(HttpResponse::Ok().json(BillingResponse::from(view)))
}

/// Creates a Stripe Checkout Session (mode `subscription`) for the tenant to subscribe to a
/// plan; the tenant's Stripe customer is created first if it has none. Audited as
/// `billing.checkout_created`.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "Tenant id (UUID)")), request_body = CheckoutRequestBody, security(("bearer" = [])), responses(
    (status = 200, description = "The Checkout page to send the customer to", body = HostedSessionResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator, owner or admin of the tenant", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "The tenant already has a subscription (use the portal)", body = ErrorBody),
    (status = 422, description = "A plan without a price, or a bad URL (each field named)", body = ErrorBody),
    (status = 502, description = "`billing_refused`: Stripe refused the request", body = ErrorBody),
    (status = 503, description = "`billing_disabled`, or `billing_unavailable` (Stripe unreachable; `Retry-After`)", body = ErrorBody),
))]
#[post("/tenants/{id}/billing/checkout")]
pub async fn create_checkout(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    ApiJson(body): ApiJson<CheckoutRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let input = CheckoutInput {
        plan: body.plan,
        success_url: body.success_url,
        cancel_url: body.cancel_url,
    };
    let session = state
        .control
        .billing_checkout(actor.0, tenant_id, input)
        .await?;
    Ok(HttpResponse::Ok().json(HostedSessionResponse {
        id: session.id,
        url: session.url,
    }))
}

/// Creates a Stripe customer portal session (change plan, payment method, invoices, cancel).
/// Audited as `billing.portal_created`.
#[utoipa::path(tag = "billing", params(("id" = String, Path, description = "Tenant id (UUID)")), request_body = PortalRequestBody, security(("bearer" = [])), responses(
    (status = 200, description = "The portal page to send the customer to", body = HostedSessionResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator, owner or admin of the tenant", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 422, description = "A bad URL", body = ErrorBody),
    (status = 502, description = "`billing_refused`: Stripe refused the request", body = ErrorBody),
    (status = 503, description = "`billing_disabled`, or `billing_unavailable` (`Retry-After`)", body = ErrorBody),
))]
#[post("/tenants/{id}/billing/portal")]
pub async fn create_portal(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    ApiJson(body): ApiJson<PortalRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let session = state
        .control
        .billing_portal(actor.0, tenant_id, body.return_url)
        .await?;
    Ok(HttpResponse::Ok().json(HostedSessionResponse {
        id: session.id,
        url: session.url,
    }))
}

/// Stripe's webhook. Authenticated by its `Stripe-Signature` on the raw body (HMAC-SHA256 with
/// the endpoint's signing secret, 300 s tolerance), not by a bearer token; anything else is 400
/// and stores nothing. Each event id is applied once: a replay answers 200 and changes nothing.
#[utoipa::path(tag = "billing", request_body(content = String, content_type = "application/json", description = "A Stripe event, exactly as Stripe signed it"), params(("Stripe-Signature" = String, Header, description = "t=…,v1=…")), responses(
    (status = 200, description = "Received (applied, replayed or ignored)", body = WebhookAck),
    (status = 400, description = "`invalid_signature` or `invalid_event`: nothing stored", body = ErrorBody),
    (status = 503, description = "`billing_disabled`, or the database is away (Stripe retries)", body = ErrorBody),
))]
#[post("/billing/stripe/webhook")]
pub async fn stripe_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Stripe's events (an invoice with many lines) may be larger than the API's bodies.
    let body = match payload.to_bytes_limited(MAX_EVENT_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            return Err(ApiError::BadRequest {
                code: "invalid_body",
                message: format!("the body could not be read: {e}"),
                details: serde_json::json!({}),
            });
        }
        Err(_) => {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_EVENT_BYTES,
            });
        }
    };
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let applied = state.control.stripe_webhook(signature, body).await?;
    let (outcome, reason) = match applied {
        Applied::Applied { .. } => ("applied", None),
        Applied::Replayed => ("replayed", None),
        Applied::Ignored(why) => ("ignored", Some(why.to_owned())),
    };
    Ok(HttpResponse::Ok().json(WebhookAck {
        received: true,
        outcome: outcome.to_owned(),
        reason,
    }))
}
