//! Usage and quotas: what a tenant used this month against its limits, the API requests counted
//! in memory and flushed ([`meter`]), the soft and hard message quotas judged after each ingest
//! batch, the count limits on channels and webhook endpoints, and the operator's change of a
//! tenant's plan and overrides.
//!
//! Quotas: once a tenant's messages of the month reach the soft limit (80 % by default) one
//! `usage.threshold` event goes to its webhook endpoints; once they reach the limit, one
//! `usage.exceeded` event, and the tenant is marked `quota_exceeded` for the month, which takes its
//! channel accounts out of the gateway config (the gateway stops answering for it: messages do
//! not pass through the control plane, so this is the enforcement) until the month rolls over or
//! its plan or limits change. Each event is sent once per period whichever replica sees the
//! crossing: the marks are claimed with a conditional update.

pub mod meter;

use chrono::{DateTime, Utc};
use serde_json::json;
use tenant_core::TenantId;
use tenant_store::audit::{self, AuditContext};
use tenant_store::usage::{self, MessageCounter, UsageRow};
use tenant_store::{AnyConnection, limits, tenants, write_transaction};

use crate::audit::event;
use crate::error::{ServiceError, ServiceResult};
use crate::plans::{Plans, TenantLimits, ValidLimitsChange};

/// The event a tenant's endpoints receive when its messages reach the soft limit.
pub const THRESHOLD_EVENT: &str = tenant_webhooks::ingest::USAGE_EVENT_TYPES[0];
/// The event a tenant's endpoints receive when its messages reach the limit.
pub const EXCEEDED_EVENT: &str = tenant_webhooks::ingest::USAGE_EVENT_TYPES[1];
/// How many months of history a usage report shows.
pub const HISTORY_MONTHS: i64 = 24;

/// A tenant's usage: this month against its limits, and the months before.
#[derive(Debug, Clone)]
pub struct UsageReport {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its plan, overrides and limits.
    pub limits: TenantLimits,
    /// The current period, `YYYY-MM` (UTC).
    pub period: String,
    /// Messages this period.
    pub messages: i64,
    /// API requests this period (flushed ones, plus this process's not yet flushed).
    pub api_requests: i64,
    /// The soft limit, in messages.
    pub soft_limit: i64,
    /// Whether its messages of this period are used up (channels out of the gateway config).
    pub quota_exceeded: bool,
    /// Channels it has.
    pub channels: i64,
    /// Webhook endpoints it has.
    pub webhook_endpoints: i64,
    /// Every period with usage, newest first (this one included when it has any).
    pub history: Vec<UsageRow>,
}

/// The messages at which the soft-limit event is sent.
pub fn soft_limit(limit: i64, percent: u8) -> i64 {
    // Rounded up: 80 % of 5 is 4 messages, of 6 is 5.
    (limit.saturating_mul(i64::from(percent)) + 99) / 100
}

/// A tenant's usage report (`NotFound("tenant")` for a missing one); `unflushed` API requests
/// of this process are added to the stored count.
pub fn report(
    conn: &mut AnyConnection,
    plans: &Plans,
    tenant_id: &TenantId,
    unflushed: i64,
    now: DateTime<Utc>,
) -> ServiceResult<UsageReport> {
    let tenant = tenants::find(conn, tenant_id)?;
    let overrides = limits::find(conn, tenant_id)?;
    let tl = TenantLimits::new(tenant.plan, plans.catalog.limits(tenant.plan), overrides);
    let period = usage::period_of(now);
    let history = usage::history(conn, tenant_id, HISTORY_MONTHS)?;
    let current = history.iter().find(|r| r.period == period);
    Ok(UsageReport {
        tenant_id: *tenant_id,
        soft_limit: soft_limit(tl.limits.messages_per_month, plans.soft_limit_percent),
        messages: current.map_or(0, |r| r.messages),
        api_requests: current.map_or(0, |r| r.api_requests) + unflushed,
        quota_exceeded: tenant.quota_exceeded_in(&period),
        channels: limits::count_channels(conn, tenant_id)?,
        webhook_endpoints: limits::count_webhook_endpoints(conn, tenant_id)?,
        limits: tl,
        period,
        history,
    })
}

/// Judges the message quotas of these tenants, reading their counters of this period: sends
/// the soft-limit and hard-limit events and marks the tenant, each once per period. Returns the
/// tenants newly marked `quota_exceeded`. (After an ingest batch the counters its upserts
/// answered are judged instead, without this read: [`judge_counters`].)
pub fn check_quotas(
    conn: &mut AnyConnection,
    plans: &Plans,
    tenant_ids: &[TenantId],
    now: DateTime<Utc>,
) -> ServiceResult<Vec<TenantId>> {
    let period = usage::period_of(now);
    let counters = usage::counters_in_period(conn, &period, tenant_ids)?;
    judge(conn, plans, &period, &counters, now)
}

/// Judges the message quotas of the tenants with new messages in an ingest batch just stored,
/// from the counters the batch's own upserts answered
/// ([`tenant_webhooks::ingest::IngestedBatch::counters`]): as [`check_quotas`] would after
/// reading them back, without the read. Each count is the row's after this batch's addition,
/// every replica's committed additions included, so a crossing is seen by the batch that
/// makes it (or a later one); a mark another replica set meanwhile only costs a claim that
/// finds it set. Only this period's counters are judged (a batch received in the last instant
/// of a month is not judged after it, as before); of a tenant's several counters (events stored
/// again one by one after the batch) the latest, the highest count, is.
pub fn judge_counters(
    conn: &mut AnyConnection,
    plans: &Plans,
    mut counters: Vec<MessageCounter>,
    now: DateTime<Utc>,
) -> ServiceResult<Vec<TenantId>> {
    let period = usage::period_of(now);
    counters.retain(|r| r.period == period);
    if counters.len() > 1 {
        counters.sort_unstable_by(|a, b| {
            a.tenant_id
                .cmp(&b.tenant_id)
                .then(b.messages.cmp(&a.messages))
        });
        counters.dedup_by(|later, kept| later.tenant_id == kept.tenant_id);
    }
    judge(conn, plans, &period, &counters, now)
}

/// Judges the message quotas of `period` from these counters (one per tenant).
fn judge(
    conn: &mut AnyConnection,
    plans: &Plans,
    period: &str,
    rows: &[MessageCounter],
    now: DateTime<Utc>,
) -> ServiceResult<Vec<TenantId>> {
    let mut exceeded = Vec::new();
    for row in rows {
        let tenant_id = row.tenant_id;
        if row.threshold_notified && row.exceeded {
            continue;
        }
        let limit = match plans.limits_of(conn, &tenant_id) {
            Ok(l) => l.limits.messages_per_month,
            // Deleted since its events were stored: nothing to judge.
            Err(ServiceError::Store(tenant_store::StoreError::NotFound(_))) => continue,
            Err(e) => return Err(e),
        };
        let soft = soft_limit(limit, plans.soft_limit_percent);
        if row.messages >= soft && !row.threshold_notified {
            write_transaction(conn, |c| -> ServiceResult<()> {
                if usage::claim_threshold(c, &tenant_id, period, now)? {
                    emit(
                        c,
                        &tenant_id,
                        THRESHOLD_EVENT,
                        period,
                        row.messages,
                        limit,
                        plans,
                        now,
                    )?;
                }
                Ok(())
            })?;
        }
        if row.messages >= limit && !row.exceeded {
            let newly = write_transaction(conn, |c| -> ServiceResult<bool> {
                if !usage::claim_exceeded(c, &tenant_id, period, now)? {
                    return Ok(false);
                }
                emit(
                    c,
                    &tenant_id,
                    EXCEEDED_EVENT,
                    period,
                    row.messages,
                    limit,
                    plans,
                    now,
                )?;
                Ok(true)
            })?;
            if newly {
                tracing::info!(tenant.id = %tenant_id, period, limit, "message quota used up: channels left out of the gateway config");
                exceeded.push(tenant_id);
            }
        }
    }
    Ok(exceeded)
}

/// Stores a usage event for the tenant and enqueues its deliveries (one event per tenant, type
/// and period: its source id says so, so even a second claim could not send it twice).
#[allow(clippy::too_many_arguments)]
fn emit(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    event_type: &str,
    period: &str,
    messages: i64,
    limit: i64,
    plans: &Plans,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    // A plan change clears the hard-limit mark, so a later crossing of the same month is a new
    // event: the id of the mark's time keeps those apart.
    let source_id = format!(
        "{event_type}:{tenant_id}:{period}:{}",
        now.timestamp_micros()
    );
    let data = json!({
        "tenantId": tenant_id.to_string(),
        "period": period,
        "messages": messages,
        "limit": limit,
        "softLimitPercent": plans.soft_limit_percent,
    });
    crate::events::emit(conn, tenant_id, "usage", event_type, source_id, data, now)
}

/// What a plan may limit by count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Channels.
    Channels,
    /// Webhook endpoints.
    WebhookEndpoints,
}

/// Refuses one more channel or endpoint beyond the tenant's plan (`PlanLimit`); call inside the
/// transaction that creates it.
pub fn require_room(
    conn: &mut AnyConnection,
    plans: &Plans,
    tenant_id: &TenantId,
    what: Counted,
) -> ServiceResult<()> {
    let tl = plans.limits_of(conn, tenant_id)?;
    let (have, limit, resource) = match what {
        Counted::Channels => (
            limits::count_channels(conn, tenant_id)?,
            tl.limits.max_channels,
            "channels",
        ),
        Counted::WebhookEndpoints => (
            limits::count_webhook_endpoints(conn, tenant_id)?,
            tl.limits.max_webhook_endpoints,
            "webhookEndpoints",
        ),
    };
    if have >= limit {
        return Err(ServiceError::PlanLimit { resource, limit });
    }
    Ok(())
}

/// Changes a tenant's plan and overrides (the operator's decision), with its audit entry, in one
/// transaction; a quota mark of this month is cleared and judged again under the new limits.
pub fn change_limits(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    plans: &Plans,
    tenant_id: &TenantId,
    change: ValidLimitsChange,
) -> ServiceResult<TenantLimits> {
    let now = tenant_core::now();
    let period = usage::period_of(now);
    let changed = write_transaction(conn, |c| -> ServiceResult<TenantLimits> {
        let before = tenants::find(c, tenant_id)?;
        if let Some(plan) = change.plan {
            let update = tenant_core::TenantUpdate {
                plan: Some(plan),
                ..Default::default()
            };
            tenants::update(c, tenant_id, update, now)?;
        }
        if let Some(o) = &change.overrides {
            limits::save(c, tenant_id, o, now)?;
        }
        usage::clear_exceeded(c, tenant_id, &period)?;
        let mut fields = Vec::new();
        if change.plan.is_some() {
            fields.push("plan");
        }
        if change.overrides.is_some() {
            fields.push("overrides");
        }
        let after = tenants::find(c, tenant_id)?;
        let overrides = limits::find(c, tenant_id)?;
        audit::record(
            c,
            ctx,
            event(
                tenant_id,
                "tenant.limits_changed",
                "tenant",
                tenant_id.to_string(),
                Some(json!({
                    "fields": fields,
                    "planBefore": before.plan.as_str(),
                    "plan": after.plan.as_str(),
                })),
            ),
            now,
        )?;
        Ok(TenantLimits::new(
            after.plan,
            plans.catalog.limits(after.plan),
            overrides,
        ))
    })?;
    plans.cache.forget(tenant_id);
    check_quotas(conn, plans, &[*tenant_id], now)?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_rounds_up() {
        assert_eq!(soft_limit(5, 80), 4);
        assert_eq!(soft_limit(6, 80), 5);
        assert_eq!(soft_limit(1000, 80), 800);
        assert_eq!(soft_limit(0, 80), 0);
        assert_eq!(soft_limit(10, 100), 10);
    }
}
