//! The billing use cases of [`ControlPlane`]: a tenant's billing, Checkout and the customer
//! portal (calls to Stripe, each around the database work it needs, never inside a
//! transaction), a Stripe webhook, and the sweep suspending tenants whose grace ran out. Each
//! keeps the caches coherent with what it changed (the tenant's cached answer, its limits, the
//! dispatcher's wake-up for the events it stored).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::json;
use tenant_core::TenantId;
use tenant_store::audit::{self, AuditContext};
use tenant_store::billing as store;

use super::ControlPlane;
use crate::audit::event;
use crate::billing::signature::{self, TOLERANCE_SECS};
use crate::billing::stripe::{CheckoutRequest, HostedSession};
use crate::billing::webhook::{self, Applied};
use crate::billing::{
    self, Billing, BillingView, CheckoutInput, customer_idempotency_key, entitlements,
};
use crate::error::{ServiceError, ServiceResult};

/// The audit context of what Stripe's events and the sweep change.
pub fn stripe_actor() -> AuditContext {
    AuditContext {
        actor_type: "system".into(),
        actor_id: Some("stripe".into()),
        ..AuditContext::default()
    }
}

impl ControlPlane {
    /// Billing, or `BillingDisabled` when it is off.
    fn billing_on(&self) -> ServiceResult<Arc<Billing>> {
        self.billing.clone().ok_or(ServiceError::BillingDisabled)
    }

    /// Whether billing is on (a Stripe secret key is configured).
    pub fn billing_enabled(&self) -> bool {
        self.billing.is_some()
    }

    /// A tenant's billing: plan, state, subscription, period end, grace.
    pub async fn tenant_billing(&self, tenant_id: TenantId) -> ServiceResult<BillingView> {
        let b = self.billing_on()?;
        let grace = b.rules.grace;
        self.run(move |c| billing::report(c, &tenant_id, grace))
            .await
    }

    /// The tenant's Stripe customer, created on the first call (with an idempotency key derived
    /// from the tenant id, so a retry after a lost answer gets the same customer) and stored.
    async fn customer_of(
        &self,
        b: &Billing,
        ctx: &AuditContext,
        tenant_id: TenantId,
    ) -> ServiceResult<(BillingView, String)> {
        let grace = b.rules.grace;
        let (view, name) = self
            .run(move |c| {
                let name = tenant_store::tenants::find(c, &tenant_id)?.name;
                Ok((billing::report(c, &tenant_id, grace)?, name))
            })
            .await?;
        if let Some(customer) = view.customer_id.clone() {
            return Ok((view, customer));
        }
        let key = customer_idempotency_key(&tenant_id);
        let created = b
            .api
            .create_customer(&tenant_id.to_string(), name.as_str(), &key)
            .await?;
        let ctx = ctx.clone();
        let customer = self
            .run(move |c| {
                tenant_store::write_transaction(c, |c| -> ServiceResult<String> {
                    let now = tenant_core::now();
                    let stored = store::set_customer(c, &tenant_id, &created, now)?;
                    if stored == created {
                        audit::record(
                            c,
                            &ctx,
                            event(
                                &tenant_id,
                                "billing.customer_created",
                                "tenant",
                                tenant_id.to_string(),
                                Some(json!({ "customerId": created })),
                            ),
                            now,
                        )?;
                    }
                    Ok(stored)
                })
            })
            .await?;
        Ok((view, customer))
    }

    /// A Checkout Session for the tenant to subscribe to a plan; audited. A tenant that already
    /// pays is refused (409): it changes plans in the customer portal.
    pub async fn billing_checkout(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        input: CheckoutInput,
    ) -> ServiceResult<HostedSession> {
        let b = self.billing_on()?;
        let valid = input.check(&b.rules.prices)?;
        let (view, customer_id) = self.customer_of(&b, &ctx, tenant_id).await?;
        billing::require_no_subscription(&view)?;
        let request = CheckoutRequest {
            customer_id,
            tenant_id: tenant_id.to_string(),
            price_id: valid.price_id.clone(),
            plan: valid.plan.as_str().to_owned(),
            success_url: valid.success_url,
            cancel_url: valid.cancel_url,
        };
        let session = b.api.create_checkout_session(&request).await?;
        let details = json!({
            "sessionId": session.id,
            "plan": valid.plan.as_str(),
            "priceId": valid.price_id,
        });
        self.audit_billing(ctx, tenant_id, "billing.checkout_created", details)
            .await?;
        Ok(session)
    }

    /// A customer portal session for the tenant (its customer is created if it has none yet);
    /// audited.
    pub async fn billing_portal(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        return_url: String,
    ) -> ServiceResult<HostedSession> {
        let b = self.billing_on()?;
        let return_url = billing::check_url("returnUrl", &return_url)?;
        let (_, customer_id) = self.customer_of(&b, &ctx, tenant_id).await?;
        let session = b
            .api
            .create_portal_session(&customer_id, &return_url)
            .await?;
        let details = json!({ "sessionId": session.id });
        self.audit_billing(ctx, tenant_id, "billing.portal_created", details)
            .await?;
        Ok(session)
    }

    async fn audit_billing(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        action: &'static str,
        details: serde_json::Value,
    ) -> ServiceResult<()> {
        self.run(move |c| {
            audit::record(
                c,
                &ctx,
                event(
                    &tenant_id,
                    action,
                    "tenant",
                    tenant_id.to_string(),
                    Some(details),
                ),
                tenant_core::now(),
            )?;
            Ok(())
        })
        .await
    }

    /// A Stripe webhook: the signature checked on the raw `body` (refused with
    /// `InvalidWebhook`, nothing stored), then the event applied once.
    pub async fn stripe_webhook(
        &self,
        signature_header: Option<String>,
        body: Bytes,
    ) -> ServiceResult<Applied> {
        let b = self.billing_on()?;
        let now = tenant_core::now();
        signature::verify(
            signature_header.as_deref(),
            &body,
            b.webhook_secret.expose().as_bytes(),
            now.timestamp(),
            TOLERANCE_SECS,
        )
        .map_err(|e| ServiceError::InvalidWebhook {
            code: "invalid_signature",
            message: e.to_string(),
        })?;
        let event =
            billing::event::parse(&body).map_err(|message| ServiceError::InvalidWebhook {
                code: "invalid_event",
                message,
            })?;
        let plans = Arc::clone(&self.limits.plans);
        let applied = self
            .run(move |c| webhook::apply(c, &stripe_actor(), &plans, &b.rules, &event, now))
            .await?;
        if let Applied::Applied { tenant_id, .. } = &applied {
            self.after_billing_change(tenant_id);
        }
        Ok(applied)
    }

    /// Suspends the tenants whose grace period ended by `now` (the background sweep calls it
    /// every minute, `billing sweep` on demand). Returns them.
    pub async fn suspend_overdue(&self, now: DateTime<Utc>) -> ServiceResult<Vec<TenantId>> {
        let b = self.billing_on()?;
        let plans = Arc::clone(&self.limits.plans);
        let suspended = self
            .run(move |c| {
                let done =
                    entitlements::suspend_overdue(c, &stripe_actor(), &plans, &b.rules, now)?;
                store::purge_events(
                    c,
                    now - chrono::Duration::from_std(billing::EVENT_RETENTION)
                        .unwrap_or(chrono::Duration::MAX),
                )?;
                Ok(done)
            })
            .await?;
        for id in &suspended {
            self.after_billing_change(id);
        }
        Ok(suspended)
    }

    /// Drops what this process caches about the tenant and wakes the dispatcher (a billing
    /// event may have been stored).
    fn after_billing_change(&self, tenant_id: &TenantId) {
        self.tenant_cache.invalidate(tenant_id);
        self.limits.plans.cache.forget(tenant_id);
        self.webhooks.wake.notify_one();
    }
}
