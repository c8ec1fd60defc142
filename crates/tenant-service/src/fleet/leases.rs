//! Leases and failover: what the control plane does once a gateway's lease has expired.
//!
//! A gateway whose heartbeats declare fencing (`config sync` does) stops serving every tenant
//! when it cannot renew its lease for one lease period: it writes a document with no tenants.
//! So once its last heartbeat is older than the lease **plus a safety margin**
//! ([`FleetConfig::lease_expired`]), the control plane knows it serves nobody, and [`sweep`]:
//!
//! - completes every move away from it (the protocol's "or the source's lease expires": the
//!   tenant enters its target's document);
//! - with failover on (`SAAS_GATEWAY_FAILOVER=on`), re-places the tenants of an expired
//!   **shared** gateway on the healthy shared gateways placement picks (most free room first,
//!   never past a capacity); those with no room anywhere stay, reported as stranded;
//! - never moves a **dedicated** gateway's tenant: it is reported as stranded (a warning in the
//!   log and the `moltbot_saas_gateway_stranded_tenants` gauge) for an operator to decide.
//!
//! A gateway whose heartbeats do not declare fencing (a custom poller) may still be serving, so
//! its expired lease changes nothing: its moves wait for its acknowledgement.
//!
//! A lapse that leaves a gateway holding tenants (failed over or stranded) is announced to the
//! operator's webhooks as `gateway.stranded`, once per lapse ([`super::events`]).
//!
//! Every change runs in one transaction under the fleet lock and re-reads the gateways under it,
//! so several replicas sweeping at once do each change once. The re-read locks the gateways'
//! rows to the commit ([`gateways::list_locked`]), so a heartbeat is recorded either before it
//! (the lease is renewed, nothing happens) or after the commit (the gateway's sync then reads
//! the placements the sweep changed): never in between.

use chrono::{DateTime, Utc};
use tenant_core::{GatewayKind, PlacementState, drain_plan};
use tenant_store::audit::AuditContext;
use tenant_store::gateways::{self, Gateway, Placement};
use tenant_store::{AnyConnection, write_transaction};

use super::FleetConfig;
use super::events::{self, Lapse};
use super::shared::{Changes, loads};
use crate::error::{ServiceError, ServiceResult};

/// Tenants an expired gateway still holds that were not failed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stranded {
    /// The gateway.
    pub gateway: Gateway,
    /// How many tenants it holds.
    pub tenants: usize,
    /// Why they stay: `dedicated` (never failed over), `failover_off`, or `no_room`.
    pub reason: &'static str,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Every gateway, and whether its lease has expired (for the gauges).
    pub gateways: Vec<(Gateway, bool)>,
    /// Moves away from an expired gateway that completed.
    pub completed: usize,
    /// Tenants re-placed from an expired shared gateway.
    pub failed_over: usize,
    /// Expired gateways that still hold tenants.
    pub stranded: Vec<Stranded>,
}

fn expired(cfg: &FleetConfig, list: Vec<Gateway>, now: DateTime<Utc>) -> Vec<(Gateway, bool)> {
    list.into_iter()
        .map(|g| {
            let gone = cfg.lease_expired(g.last_heartbeat_at, g.fencing, now);
            (g, gone)
        })
        .collect()
}

/// Acts on every expired lease (see the module documentation). Takes no lock when no lease
/// has expired.
pub fn sweep(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    cfg: &FleetConfig,
    now: DateTime<Utc>,
) -> ServiceResult<SweepReport> {
    let first = expired(cfg, gateways::list(conn)?, now);
    if !first.iter().any(|(_, gone)| *gone) {
        return Ok(SweepReport {
            gateways: first,
            ..SweepReport::default()
        });
    }
    write_transaction(conn, |c| {
        let c = &mut gateways::lock_fleet(c)?;
        // Again under the lock: a heartbeat may have renewed a lease since. The rows stay
        // locked to the commit: a heartbeat landing after this read and before the commit
        // would renew a lease this sweep acts on as expired, and the gateway's sync, renewed,
        // would read the placements from before the commit and serve the tenants failed over.
        let all = expired(cfg, gateways::list_locked(c)?, now);
        let mut report = SweepReport::default();
        for (g, _) in all.iter().filter(|(_, gone)| *gone) {
            report.completed += complete_moves_from(c, ctx, &g.id, now)?;
            let held = gateways::held_by(c, &g.id)?;
            if held.is_empty() {
                continue;
            }
            let reason = match g.kind {
                GatewayKind::Dedicated => "dedicated",
                GatewayKind::Shared if !cfg.failover => "failover_off",
                GatewayKind::Shared => {
                    let left = fail_over(c, ctx, cfg, &g.id, &held, now)?;
                    report.failed_over += held.len() - left;
                    let lapse = Lapse {
                        gateway: g,
                        failed_over: held.len() - left,
                        stranded: left,
                        reason: (left > 0).then_some("no_room"),
                    };
                    events::gateway_stranded(c, &lapse, now)?;
                    if left == 0 {
                        continue;
                    }
                    report.stranded.push(Stranded {
                        gateway: g.clone(),
                        tenants: left,
                        reason: "no_room",
                    });
                    continue;
                }
            };
            let lapse = Lapse {
                gateway: g,
                failed_over: 0,
                stranded: held.len(),
                reason: Some(reason),
            };
            events::gateway_stranded(c, &lapse, now)?;
            report.stranded.push(Stranded {
                gateway: g.clone(),
                tenants: held.len(),
                reason,
            });
        }
        report.gateways = all;
        Ok::<_, ServiceError>(report)
    })
}

/// Completes the moves away from `source`, whose lease expired: it serves nobody.
fn complete_moves_from(
    c: &mut gateways::FleetLock<'_>,
    ctx: &AuditContext,
    source: &tenant_core::GatewayId,
    now: DateTime<Utc>,
) -> ServiceResult<usize> {
    let mut changes = Changes::default();
    for p in gateways::moving_from(c, source)? {
        let next = Placement {
            gateway_id: p.target_gateway_id,
            target_gateway_id: None,
            state: PlacementState::Placed,
            moving_since: None,
            move_revision: None,
            ..p
        };
        changes.push(ctx, next, "tenant.moved", Some("lease_expired"), now);
    }
    let done = changes.len();
    changes.write(c, now)?;
    Ok(done)
}

/// Re-places the tenants `held` by the expired shared gateway `down` (in creation order) on the
/// gateways placement picks among the others; returns how many found no room. They are placed
/// at once: the down gateway serves nobody, so there is nothing to wait for.
fn fail_over(
    c: &mut gateways::FleetLock<'_>,
    ctx: &AuditContext,
    cfg: &FleetConfig,
    down: &tenant_core::GatewayId,
    held: &[gateways::Held],
    now: DateTime<Utc>,
) -> ServiceResult<usize> {
    let fleet = loads(c, cfg, now)?;
    let (wants, asked) = super::placement::wants_of(cfg, held);
    let mut left = 0;
    let mut changes = Changes::default();
    for (tenant_id, to) in drain_plan(&fleet, *down, &wants) {
        let Some(to) = to else {
            left += 1;
            continue;
        };
        let next = Placement {
            tenant_id,
            gateway_id: Some(to),
            target_gateway_id: None,
            state: PlacementState::Placed,
            pinned: false,
            moving_since: None,
            move_revision: None,
            dedicated: asked.contains(&tenant_id),
        };
        changes.push(ctx, next, "tenant.failed_over", Some("lease_expired"), now);
    }
    changes.write(c, now)?;
    Ok(left)
}
