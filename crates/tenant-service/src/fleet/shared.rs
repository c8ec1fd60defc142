//! What placement, pending placement and failover share: what placement knows of every
//! gateway ([`loads`], from the stored held counts), what a tenant wants, and the audit entry of
//! a placement change.

use chrono::{DateTime, Utc};
use serde_json::json;
use tenant_core::{GatewayLoad, Plan, Want};
use tenant_store::audit::{self, AuditContext, AuditRow};
use tenant_store::gateways::{self, Placement};
use tenant_store::{AnyConnection, StoreResult};

use super::FleetConfig;
use crate::audit::event;

/// What placement knows of every gateway now: one read of the `gateways` table, with each
/// gateway's stored held count ([`gateways::Gateway::held_rows`]), whatever the number of
/// tenants.
///
/// `default` also holds the tenants without a placement row, which only a count of every tenant
/// finds ([`gateways::without_row`]). That count is made only when it can change a decision
/// ([`default_is_counted`]: `default` open, up, with a capacity above 0); otherwise `default`'s
/// `held` leaves them out, which no decision looks at: an unlimited gateway is the freest
/// whatever it holds, and a closed one (draining, down, capacity 0) takes nobody whatever it
/// holds (`tenant_core::choose`, `check_target`, `drain_plan`).
pub fn loads(
    conn: &mut AnyConnection,
    cfg: &FleetConfig,
    now: DateTime<Utc>,
) -> StoreResult<Vec<GatewayLoad>> {
    loads_with(conn, cfg, now, false)
}

/// [`loads`], with `default`'s count exact whatever its state when `exact_default` (an
/// operator's move to `default`: a refusal says what it holds).
pub(super) fn loads_with(
    conn: &mut AnyConnection,
    cfg: &FleetConfig,
    now: DateTime<Utc>,
    exact_default: bool,
) -> StoreResult<Vec<GatewayLoad>> {
    let mut fleet: Vec<GatewayLoad> = gateways::list(conn)?
        .into_iter()
        .map(|g| GatewayLoad {
            held: g.held_rows,
            down: cfg.is_down(g.last_heartbeat_at, now),
            id: g.id,
            name: g.name,
            kind: g.kind,
            capacity: g.capacity,
            draining: g.draining,
        })
        .collect();
    if let Some(d) = fleet
        .iter_mut()
        .find(|g| g.id.is_default() && (exact_default || default_is_counted(g)))
    {
        d.held += gateways::without_row(conn)?;
    }
    Ok(fleet)
}

/// Whether `gateway` is `default` in a state where what it holds can change a decision (so
/// [`loads`] counts its tenants without a row): open, up, and a capacity above 0. A fleet
/// setup closes `default` (capacity 0 or draining) or leaves it unlimited, and never pays
/// for that count.
pub fn default_is_counted(gateway: &GatewayLoad) -> bool {
    gateway.id.is_default()
        && gateway.capacity.is_some_and(|c| c > 0)
        && !gateway.draining
        && !gateway.down
}

/// What a tenant of `plan` wants: a dedicated gateway when its plan is in
/// `SAAS_DEDICATED_PLANS` or when an operator asked for one (at its creation or later,
/// `dedicated`, see [`Placement::dedicated`]), else a shared one.
pub fn want_of(cfg: &FleetConfig, plan: Plan, dedicated: bool) -> Want {
    if dedicated || cfg.dedicated_plans.contains(&plan) {
        Want::Dedicated
    } else {
        Want::Shared
    }
}

/// Audits a placement change (`reason`: why, when not an operator's request or a heartbeat).
pub(super) fn record_change(
    c: &mut AnyConnection,
    ctx: &AuditContext,
    p: &Placement,
    action: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    audit::insert_row(c, &change_row(ctx, p, action, reason, now))
}

/// The audit row of a placement change ([`record_change`]).
fn change_row(
    ctx: &AuditContext,
    p: &Placement,
    action: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> AuditRow {
    let mut details = details_of(p);
    if let Some(reason) = reason {
        details["reason"] = json!(reason);
    }
    details_row(ctx, p, action, details, now)
}

/// The audit details of a placement: its state, its gateway and the one it is moving to.
pub(super) fn details_of(p: &Placement) -> serde_json::Value {
    json!({
        "state": p.state.as_str(),
        "gatewayId": p.gateway_id.map(|g| g.to_string()),
        "targetGatewayId": p.target_gateway_id.map(|g| g.to_string()),
    })
}

/// Audits a change of `p` with these `details`.
pub(super) fn record_details(
    c: &mut AnyConnection,
    ctx: &AuditContext,
    p: &Placement,
    action: &str,
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    audit::insert_row(c, &details_row(ctx, p, action, details, now))
}

/// The audit row of a change of `p` with these `details`.
fn details_row(
    ctx: &AuditContext,
    p: &Placement,
    action: &str,
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> AuditRow {
    audit::row(
        ctx,
        event(
            &p.tenant_id,
            action,
            "tenant",
            p.tenant_id.to_string(),
            Some(details),
        ),
        now,
    )
}

/// Placement changes of many tenants made together (a drain, a failover, moves completed, a
/// batch of waiting tenants placed), each with its audit entry, written at once by
/// [`Changes::write`] ([`gateways::set_placements`]): a few statements whatever their number.
#[derive(Debug, Default)]
pub(super) struct Changes {
    placements: Vec<Placement>,
    audit: Vec<AuditRow>,
}

impl Changes {
    /// Adds a tenant's next placement (each tenant at most once) and its audit entry.
    pub(super) fn push(
        &mut self,
        ctx: &AuditContext,
        next: Placement,
        action: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) {
        self.audit.push(change_row(ctx, &next, action, reason, now));
        self.placements.push(next);
    }

    /// How many changes there are.
    pub(super) fn len(&self) -> usize {
        self.placements.len()
    }

    /// Stores every change and its audit entry, in the fleet lock's transaction.
    pub(super) fn write(
        self,
        c: &mut gateways::FleetLock<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        gateways::set_placements(c, &self.placements, now)?;
        audit::insert_rows(c, &self.audit)
    }
}
