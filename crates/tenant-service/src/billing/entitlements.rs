//! What a tenant's subscription entitles it to: the billing state derived from the stored row,
//! the plan it grants, and the two transitions with effects beyond the row — suspension (the
//! grace period ran out: the tenant leaves the gateway config, a `billing.suspended` event goes
//! to its endpoints) and restoration (paid, or back to the free plan).
//!
//! States: `none` (never subscribed: the plan is the operator's), `incomplete` (a first payment
//! pending: nothing granted yet), `active`, `past_due` (a payment failed: the plan stays for the
//! grace period), `suspended` (the grace ran out), `canceled` (the free plan).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use tenant_core::{Plan, TenantId, TenantStatus, TenantUpdate};
use tenant_store::audit::{self, AuditContext};
use tenant_store::billing::{self, BillingRow};
use tenant_store::{AnyConnection, tenants, write_transaction};

use super::prices::PriceMap;
use crate::audit::event;
use crate::error::ServiceResult;
use crate::plans::{Plans, ValidLimitsChange};

/// The event a tenant's endpoints receive when billing suspends it.
pub const SUSPENDED_EVENT: &str = tenant_webhooks::ingest::BILLING_EVENT_TYPES[0];
/// The event a tenant's endpoints receive when billing restores it.
pub const RESTORED_EVENT: &str = tenant_webhooks::ingest::BILLING_EVENT_TYPES[1];

/// What the entitlement rules need: the price → plan map and the grace period.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Which price grants which plan.
    pub prices: PriceMap,
    /// How long a tenant past due keeps its plan before it is suspended.
    pub grace: chrono::Duration,
}

/// Whether a Stripe subscription status is final (a canceled subscription never comes back).
pub fn is_terminal(status: &str) -> bool {
    matches!(status, "canceled" | "incomplete_expired")
}

/// The billing state of a row (see the module documentation).
pub fn state_of(row: &BillingRow) -> &'static str {
    let Some(status) = row.subscription_status.as_deref() else {
        return "none";
    };
    if is_terminal(status) {
        return "canceled";
    }
    // A missing payment is dated (`past_due_since`) when Stripe says so; a later payment
    // clears it even while the subscription's own status has not caught up.
    match status {
        _ if row.past_due_since.is_some() && row.suspended_at.is_some() => "suspended",
        _ if row.past_due_since.is_some() => "past_due",
        "active" | "trialing" | "past_due" | "unpaid" | "paused" => "active",
        _ => "incomplete",
    }
}

/// The plan the row entitles the tenant to: `None` leaves the plan as it is (never
/// subscribed, a first payment pending, or a price the map does not know).
pub fn plan_of(row: &BillingRow, prices: &PriceMap) -> Option<Plan> {
    match state_of(row) {
        "canceled" => Some(Plan::Free),
        "active" | "past_due" | "suspended" => {
            row.price_id.as_deref().and_then(|p| prices.plan_of(p))
        }
        _ => None,
    }
}

/// When the grace of a tenant past due ends.
pub fn grace_ends(row: &BillingRow, grace: chrono::Duration) -> Option<DateTime<Utc>> {
    row.past_due_since.map(|since| since.and_utc() + grace)
}

/// Brings the tenant in line with its row after a change: its plan (through the operator's own
/// plan change, so limits, quota marks and caches follow, audited), and suspension or
/// restoration. Returns whether the tenant itself changed.
pub fn enforce(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    plans: &Plans,
    rules: &Rules,
    row: &mut BillingRow,
    now: DateTime<Utc>,
) -> ServiceResult<bool> {
    let tenant_id: TenantId = row
        .tenant_id
        .parse()
        .map_err(|_| crate::ServiceError::Internal("a billing row with a bad tenant id".into()))?;
    let mut changed = false;
    if let Some(plan) = plan_of(row, &rules.prices) {
        let current = tenants::find(conn, &tenant_id)?.plan;
        if current != plan {
            let change = ValidLimitsChange {
                plan: Some(plan),
                overrides: None,
            };
            crate::usage::change_limits(conn, ctx, plans, &tenant_id, change)?;
            changed = true;
        }
    }
    let state = state_of(row);
    let grace_over = grace_ends(row, rules.grace).is_some_and(|end| end <= now);
    if state == "past_due" && grace_over {
        suspend(conn, ctx, &tenant_id, row, now)?;
        changed = true;
    } else if row.suspended_at.is_some() && !matches!(state, "past_due" | "suspended") {
        restore(conn, ctx, &tenant_id, row, now)?;
        changed = true;
    }
    row.state = state_of(row).to_owned();
    row.updated_at = now.naive_utc();
    billing::save(conn, row)?;
    Ok(changed)
}

/// Suspends a tenant whose grace ran out: out of the gateway config (its status), the
/// `billing.suspended` event, the audit entry.
fn suspend(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    row: &mut BillingRow,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    row.suspended_at = Some(now.naive_utc());
    set_status(
        conn,
        tenant_id,
        TenantStatus::Active,
        TenantStatus::Suspended,
        now,
    )?;
    let details = json!({
        "tenantId": tenant_id.to_string(),
        "state": "suspended",
        "subscriptionId": row.subscription_id,
        "pastDueSince": row.past_due_since.map(|t| stamp(t.and_utc())),
        "suspendedAt": stamp(now),
    });
    announce(conn, ctx, tenant_id, SUSPENDED_EVENT, details, now)?;
    tracing::info!(tenant.id = %tenant_id, "billing: grace period over, tenant suspended");
    Ok(())
}

/// Restores a tenant billing suspended: back in the gateway config, `billing.restored`, audited.
fn restore(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    row: &mut BillingRow,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    row.suspended_at = None;
    set_status(
        conn,
        tenant_id,
        TenantStatus::Suspended,
        TenantStatus::Active,
        now,
    )?;
    let details = json!({
        "tenantId": tenant_id.to_string(),
        "state": state_of(row),
        "subscriptionId": row.subscription_id,
        "restoredAt": stamp(now),
    });
    announce(conn, ctx, tenant_id, RESTORED_EVENT, details, now)?;
    tracing::info!(tenant.id = %tenant_id, "billing: paid, tenant restored");
    Ok(())
}

fn set_status(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    from: TenantStatus,
    to: TenantStatus,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    if tenants::find(conn, tenant_id)?.status == from {
        let update = TenantUpdate {
            status: Some(to),
            ..Default::default()
        };
        tenants::update(conn, tenant_id, update, now)?;
    }
    Ok(())
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Stores a billing event for the tenant with its deliveries and records the transition in the
/// audit log (one event per transition: its source id is the transition's time).
fn announce(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    event_type: &str,
    data: serde_json::Value,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    let source_id = format!("{event_type}:{tenant_id}:{}", now.timestamp_micros());
    crate::events::emit(
        conn,
        tenant_id,
        "billing",
        event_type,
        source_id,
        data.clone(),
        now,
    )?;
    audit::record(
        conn,
        ctx,
        event(
            tenant_id,
            event_type,
            "tenant",
            tenant_id.to_string(),
            Some(data),
        ),
        now,
    )?;
    Ok(())
}

/// Suspends every tenant whose grace period ended by `now` (the periodic sweep; an event for
/// the tenant does it too). Each in its own transaction, re-checked there, so two replicas
/// sweeping at once suspend a tenant once. Returns the tenants suspended.
pub fn suspend_overdue(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    plans: &Plans,
    rules: &Rules,
    now: DateTime<Utc>,
) -> ServiceResult<Vec<TenantId>> {
    let mut suspended = Vec::new();
    for candidate in billing::overdue(conn, now - rules.grace)? {
        let Ok(tenant_id) = candidate.tenant_id.parse::<TenantId>() else {
            continue;
        };
        let done = write_transaction(conn, |c| -> ServiceResult<bool> {
            // Locks the row: a concurrent sweep or event waits, then sees it suspended.
            let mut row = billing::lock_or_create(c, &tenant_id, now)?;
            if row.suspended_at.is_some() {
                return Ok(false);
            }
            enforce(c, ctx, plans, rules, &mut row, now)?;
            Ok(row.suspended_at.is_some())
        })?;
        if done {
            suspended.push(tenant_id);
        }
    }
    Ok(suspended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: Option<&str>) -> BillingRow {
        let mut r = BillingRow::new(&TenantId::random(), tenant_core::now());
        r.subscription_status = status.map(str::to_owned);
        r.price_id = Some("price_pro".into());
        r
    }

    #[test]
    fn states_follow_the_subscription_and_the_payments() {
        let prices = PriceMap::parse("price_pro=pro").unwrap();
        assert_eq!(state_of(&row(None)), "none");
        assert_eq!(plan_of(&row(None), &prices), None);
        assert_eq!(state_of(&row(Some("incomplete"))), "incomplete");
        assert_eq!(plan_of(&row(Some("incomplete")), &prices), None);
        assert_eq!(state_of(&row(Some("trialing"))), "active");
        assert_eq!(plan_of(&row(Some("active")), &prices), Some(Plan::Pro));
        let mut failed = row(Some("active"));
        failed.past_due_since = Some(tenant_core::now().naive_utc());
        assert_eq!(state_of(&failed), "past_due");
        assert_eq!(plan_of(&failed, &prices), Some(Plan::Pro));
        failed.suspended_at = failed.past_due_since;
        assert_eq!(state_of(&failed), "suspended");
        // Past due by its status, but paid since (no missing payment dated): active.
        assert_eq!(state_of(&row(Some("unpaid"))), "active");
        assert_eq!(state_of(&row(Some("canceled"))), "canceled");
        assert_eq!(plan_of(&row(Some("canceled")), &prices), Some(Plan::Free));
        let mut unknown = row(Some("active"));
        unknown.price_id = Some("price_other".into());
        assert_eq!(plan_of(&unknown, &prices), None);
    }
}
