//! Applying a verified Stripe event: the event id is claimed and its effect written in one
//! transaction (a replay finds the id and changes nothing), the tenant found from the event
//! (the tenant id Checkout put in the metadata, else the customer), the row changed by the
//! event's own times — never by arrival order — and the tenant brought in line
//! ([`super::entitlements::enforce`]).
//!
//! Order rules, all on Stripe's clock:
//! - a subscription event older than the one applied (`status_at`) changes nothing; at the same
//!   second the further state wins (incomplete < active < past due < canceled);
//! - a canceled subscription never comes back; a subscription created before the tenant's
//!   current one does not replace it;
//! - a failed payment starts the grace period unless a later payment succeeded; a paid invoice
//!   ends it if it is not older than the failure.

use chrono::{DateTime, Utc};
use serde_json::json;
use tenant_core::TenantId;
use tenant_store::audit::{self, AuditContext};
use tenant_store::billing::{self, BillingRow};
use tenant_store::{AnyConnection, tenants, write_transaction};

use super::entitlements::{self, Rules, is_terminal};
use super::event::{self, StripeEvent};
use crate::audit::event as audit_event;
use crate::error::ServiceResult;
use crate::plans::Plans;

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied to this tenant (`changed`: its plan or status changed with it).
    Applied {
        /// The tenant.
        tenant_id: TenantId,
        /// Whether the tenant's plan or status changed.
        changed: bool,
    },
    /// Seen before: nothing changed.
    Replayed,
    /// Acknowledged without effect (a type not handled, no tenant of ours, stale); recorded.
    Ignored(&'static str),
}

/// The tenant an event is about: the tenant id Checkout put on the session or subscription
/// (if that tenant exists), else the tenant whose customer it is.
fn tenant_of(conn: &mut AnyConnection, e: &StripeEvent) -> ServiceResult<Option<TenantId>> {
    let (named, customer) = match e.event_type.as_str() {
        "checkout.session.completed" => {
            let s = event::checkout_session(&e.object);
            (s.client_reference_id, s.customer)
        }
        t if t.starts_with("customer.subscription.") => match event::subscription(&e.object) {
            Ok(s) => (s.tenant_id, s.customer),
            Err(_) => (None, None),
        },
        t if t.starts_with("invoice.") => {
            let i = event::invoice(&e.object);
            (i.tenant_id, i.customer)
        }
        _ => (None, None),
    };
    if let Some(id) = named.and_then(|n| n.parse::<TenantId>().ok())
        && tenants::exists(conn, &id)?
    {
        return Ok(Some(id));
    }
    if let Some(customer) = customer
        && let Some(row) = billing::find_by_customer(conn, &customer)?
    {
        return Ok(row.tenant_id.parse().ok());
    }
    Ok(None)
}

/// Applies a verified event once (see the module documentation).
pub fn apply(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    plans: &Plans,
    rules: &Rules,
    e: &StripeEvent,
    now: DateTime<Utc>,
) -> ServiceResult<Applied> {
    write_transaction(conn, |c| {
        let handled = event::HANDLED_TYPES.contains(&e.event_type.as_str());
        let tenant_id = if handled { tenant_of(c, e)? } else { None };
        if !billing::claim_event(c, &e.id, &e.event_type, tenant_id.as_ref(), e.created, now)? {
            return Ok(Applied::Replayed);
        }
        if !handled {
            return Ok(Applied::Ignored("type not handled"));
        }
        let Some(tenant_id) = tenant_id else {
            tracing::info!(stripe.event_id = %e.id, stripe.event_type = %e.event_type,
                "Stripe event for no tenant of ours: acknowledged");
            return Ok(Applied::Ignored("no tenant"));
        };
        let mut row = billing::lock_or_create(c, &tenant_id, now)?;
        let before = row.clone();
        let plan_before = tenants::find(c, &tenant_id)?.plan;
        let effect = match e.event_type.as_str() {
            "checkout.session.completed" => checkout_completed(&mut row, e),
            "invoice.paid" => invoice_paid(&mut row, e),
            "invoice.payment_failed" => payment_failed(&mut row, e),
            _ => subscription_changed(&mut row, e, rules),
        };
        if let Err(reason) = effect {
            return Ok(Applied::Ignored(reason));
        }
        let changed = entitlements::enforce(c, ctx, plans, rules, &mut row, now)?;
        if row != before || changed {
            let plan = tenants::find(c, &tenant_id)?.plan;
            audit::record(
                c,
                ctx,
                audit_event(
                    &tenant_id,
                    "billing.event_applied",
                    "tenant",
                    tenant_id.to_string(),
                    Some(json!({
                        "eventId": e.id,
                        "eventType": e.event_type,
                        "stateBefore": before.state,
                        "state": row.state,
                        "planBefore": plan_before.as_str(),
                        "plan": plan.as_str(),
                        "subscriptionId": row.subscription_id,
                    })),
                ),
                now,
            )?;
        }
        Ok(Applied::Applied { tenant_id, changed })
    })
}

/// The result of an event's own rule: `Err` says why it changes nothing.
type Effect = Result<(), &'static str>;

fn checkout_completed(row: &mut BillingRow, e: &StripeEvent) -> Effect {
    let s = event::checkout_session(&e.object);
    if s.mode.as_deref().is_some_and(|m| m != "subscription") {
        return Err("not a subscription checkout");
    }
    if row.customer_id.is_none() {
        row.customer_id = s.customer;
    }
    // The subscription's own events carry its state and price; the session only links it, and
    // only if the tenant follows no subscription yet (one already seen may be newer).
    if row.subscription_id.is_none() {
        row.subscription_id = s.subscription;
    }
    Ok(())
}

/// How far along a status is, for two events of the same second.
fn rank(status: &str) -> u8 {
    match status {
        "incomplete" => 0,
        "active" | "trialing" => 1,
        "past_due" | "unpaid" | "paused" => 2,
        _ => 3,
    }
}

fn subscription_changed(row: &mut BillingRow, e: &StripeEvent, rules: &Rules) -> Effect {
    let Ok(sub) = event::subscription(&e.object) else {
        return Err("a subscription without id or status");
    };
    let at = e.created.naive_utc();
    let same = row.subscription_id.as_deref() == Some(sub.id.as_str());
    let created = sub.created.map(|t| t.naive_utc());
    if !same && row.subscription_status.is_some() {
        // Another subscription: it replaces the current one only if it is newer.
        let newer = match (created, row.subscription_created) {
            (Some(new), Some(old)) => new > old,
            _ => row.status_at.is_none_or(|s| at > s),
        };
        if !newer {
            return Err("an older subscription than the tenant's");
        }
        row.status_at = None;
    }
    if same {
        if let Some(old) = row.subscription_status.as_deref()
            && is_terminal(old)
        {
            return Err("the subscription is already canceled");
        }
        if let Some(seen) = row.status_at {
            let old_rank = row.subscription_status.as_deref().map_or(0, rank);
            if at < seen || (at == seen && rank(&sub.status) < old_rank) {
                return Err("older than the state applied");
            }
        }
    }
    row.subscription_id = Some(sub.id.clone());
    row.subscription_status = Some(sub.status.clone());
    row.status_at = Some(at);
    if created.is_some() {
        row.subscription_created = created;
    }
    if row.customer_id.is_none() {
        row.customer_id = sub.customer.clone();
    }
    // The first item whose price grants a plan; else the first price (shown, grants nothing).
    if let Some(price) = granting_price(&sub.prices, rules).or(sub.prices.first()) {
        row.price_id = Some(price.clone());
    }
    row.current_period_end = sub.current_period_end.map(|t| t.naive_utc());
    match sub.status.as_str() {
        "past_due" | "unpaid" | "paused" => {
            // The earliest missing payment starts the grace period, unless paid since.
            let paid_later = row.paid_at.is_some_and(|p| p > at);
            if !paid_later {
                row.past_due_since = Some(row.past_due_since.map_or(at, |s| s.min(at)));
            }
        }
        "active" | "trialing" => {
            if row.past_due_since.is_some_and(|since| at >= since) {
                row.past_due_since = None;
            }
        }
        // Canceled or never paid: no grace to run, nothing to suspend for.
        _ => row.past_due_since = None,
    }
    Ok(())
}

/// Keeps, among a subscription's prices, the first that grants a plan.
pub fn granting_price<'a>(prices: &'a [String], rules: &Rules) -> Option<&'a String> {
    prices.iter().find(|p| rules.prices.plan_of(p).is_some())
}

/// Whether an invoice is about the tenant's current subscription (an invoice without one, or
/// a tenant following none, counts).
fn current(row: &BillingRow, subscription: Option<&str>) -> bool {
    match (row.subscription_id.as_deref(), subscription) {
        (Some(ours), Some(theirs)) => ours == theirs,
        _ => true,
    }
}

fn invoice_paid(row: &mut BillingRow, e: &StripeEvent) -> Effect {
    let inv = event::invoice(&e.object);
    if !current(row, inv.subscription.as_deref()) {
        return Err("an invoice of another subscription");
    }
    let at = e.created.naive_utc();
    row.paid_at = Some(row.paid_at.map_or(at, |p| p.max(at)));
    if row.past_due_since.is_some_and(|since| at >= since) {
        row.past_due_since = None;
    }
    Ok(())
}

fn payment_failed(row: &mut BillingRow, e: &StripeEvent) -> Effect {
    let inv = event::invoice(&e.object);
    if !current(row, inv.subscription.as_deref()) {
        return Err("an invoice of another subscription");
    }
    if row.subscription_status.as_deref().is_some_and(is_terminal) {
        return Err("the subscription is canceled");
    }
    let at = e.created.naive_utc();
    if row.paid_at.is_some_and(|p| p > at) {
        return Err("a later payment succeeded");
    }
    row.past_due_since = Some(row.past_due_since.map_or(at, |s| s.min(at)));
    Ok(())
}
