//! Placement and the move protocol.
//!
//! - A new tenant is placed right after it is created: on a dedicated gateway with room when its
//!   plan says so or an operator asked for one (`dedicated` at its creation, kept on its
//!   placement row so that it still holds when it waits for room or moves later), else on the shared gateway with the most free room
//!   ([`tenant_core::choose`]); with no room it is `unplaced` (in no document), never on an
//!   overfilled gateway. In a single-gateway setup nothing is written (`default` holds every
//!   tenant without a row).
//! - An operator changes whether a tenant wants a dedicated gateway ([`set_dedicated`]): stored
//!   on its row, and a tenant whose gateway no longer suits it starts the move below.
//! - An operator moves or pins a tenant ([`request`]). A tenant that is unplaced, or not yet in
//!   any document, is placed at once. A tenant placed elsewhere starts **moving**: it leaves its
//!   source's document at once and enters the target's only when the source has acknowledged a
//!   document without it ([`complete_released`], from the source's heartbeat). So an account is
//!   never in two served documents (`docs/fleet.md`).
//! - Every change runs under the fleet lock ([`tenant_store::gateways::lock_fleet`]), in one
//!   transaction with its audit entry, so concurrent replicas never overfill a gateway or
//!   complete a move twice. The store's placement writes require the lock's proof
//!   ([`gateways::FleetLock`]), and keep each gateway's held count as they go: deciding reads
//!   those counts ([`loads`]), a few rows whatever the number of tenants.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tenant_core::{
    GatewayId, GatewayLoad, PlacementState, Plan, TenantId, Want, check_target, choose, drain_plan,
};
use tenant_store::audit::AuditContext;
use tenant_store::gateways::{self, Placement};
use tenant_store::{AnyConnection, StoreResult, tenants, write_transaction};

pub(super) use super::shared::record_change;
use super::shared::{Changes, details_of, loads_with, record_details};
pub use super::shared::{default_is_counted, loads, want_of};
use super::{FleetConfig, FleetConflict};
use crate::error::{ServiceError, ServiceResult};

/// Whether every new tenant can only end on `default` with no row: none wants a dedicated
/// gateway, and the built-in gateway is the only one, unlimited and open (the single-gateway
/// setup). Reads the gateways alone, not their counts.
fn trivially_default(
    gateways: &[gateways::Gateway],
    wants: impl IntoIterator<Item = Want>,
) -> bool {
    matches!(gateways, [only] if only.id.is_default() && only.capacity.is_none() && !only.draining)
        && wants.into_iter().all(|w| w == Want::Shared)
}

/// A tenant just created, to place: who created it, its id, its plan, and whether an operator
/// asked for a dedicated gateway ([`tenant_core::NewTenant::dedicated`]).
pub type Created = (AuditContext, TenantId, Plan, bool);

/// Places tenants just created (the creates of one committed batch), in one transaction under
/// the fleet lock, each with its audit entry. In a single-gateway setup it writes nothing and
/// takes no lock: one read of the gateways (a table of a few rows) per batch.
pub fn place_new(
    conn: &mut AnyConnection,
    cfg: &FleetConfig,
    created: &[Created],
) -> ServiceResult<Vec<Placement>> {
    let now = tenant_core::now();
    let on_default = || created.iter().map(|(_, id, ..)| Placement::on_default(*id));
    if created.is_empty()
        || trivially_default(
            &gateways::list(conn)?,
            created
                .iter()
                .map(|(_, _, plan, dedicated)| want_of(cfg, *plan, *dedicated)),
        )
    {
        return Ok(on_default().collect());
    }
    write_transaction(conn, |c| {
        let c = &mut gateways::lock_fleet(c)?;
        // Tenants waiting for room go first: a new tenant queues behind them.
        super::pending::place_waiting_first(c, cfg)?;
        let mut fleet = loads(c, cfg, now)?;
        // The new tenants (no row yet) are in `default`'s count when it was made.
        let counted = fleet.iter().any(default_is_counted);
        let mut placed = Vec::with_capacity(created.len());
        for (ctx, tenant_id, plan, dedicated) in created {
            let current = gateways::placement(c, tenant_id)?;
            if current != Placement::on_default(*tenant_id) {
                placed.push(current);
                continue;
            }
            if !tenants::exists(c, tenant_id)? {
                // Deleted since its create committed: nothing to place.
                placed.push(current);
                continue;
            }
            let want = want_of(cfg, *plan, *dedicated);
            // The wish is kept on the row, for when it waits for room or moves later.
            let base = Placement {
                dedicated: *dedicated,
                ..Placement::on_default(*tenant_id)
            };
            if counted {
                // Counted on `default` (no row yet): count it nowhere while choosing.
                adjust_held(&mut fleet, GatewayId::DEFAULT, -1);
            }
            let placement = match choose(&fleet, want) {
                Ok(to) => Placement {
                    gateway_id: Some(to),
                    ..base
                },
                Err(no_room) => {
                    tracing::warn!(
                        tenant.id = %tenant_id,
                        fleet.want = want.kind().as_str(),
                        fleet.gateways = no_room.gateways,
                        fleet.full = no_room.full,
                        "no gateway has room: the tenant is unplaced"
                    );
                    super::metrics::tenant_unplaced();
                    super::events::tenant_unplaced(c, tenant_id, &no_room, now)?;
                    Placement {
                        gateway_id: None,
                        state: PlacementState::Unplaced,
                        ..base
                    }
                }
            };
            // The next of the batch sees it where it went.
            if let Some(to) = placement.gateway_id {
                adjust_held(&mut fleet, to, 1);
            }
            if placement != Placement::on_default(*tenant_id) {
                gateways::set_placement(c, &placement, now)?;
                record(c, ctx, &placement, "tenant.placed", now)?;
            }
            placed.push(placement);
        }
        Ok(placed)
    })
}

/// Adds `by` to what `gateway` holds in `fleet`.
fn adjust_held(fleet: &mut [GatewayLoad], gateway: GatewayId, by: i64) {
    if let Some(g) = fleet.iter_mut().find(|g| g.id == gateway) {
        g.held += by;
    }
}

fn record(
    c: &mut AnyConnection,
    ctx: &AuditContext,
    p: &Placement,
    action: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    record_change(c, ctx, p, action, None, now)
}

/// Moves or pins a tenant on `target` (an operator's request). Refused with 409 when the
/// target is full (with the counts), draining or down; 404 when it or the tenant is unknown.
/// See the module documentation for when the tenant enters the target's document.
pub fn request(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    cfg: &FleetConfig,
    tenant_id: &TenantId,
    target: &GatewayId,
) -> ServiceResult<Placement> {
    let now = tenant_core::now();
    write_transaction(conn, |c| {
        let c = &mut gateways::lock_fleet(c)?;
        tenants::find(c, tenant_id)?;
        let fleet = loads_with(c, cfg, now, target.is_default())?;
        let Some(to) = fleet.iter().find(|g| g.id == *target) else {
            return Err(ServiceError::NotFound("gateway"));
        };
        let current = gateways::placement(c, tenant_id)?;
        let here = current.state == PlacementState::Placed && current.gateway_id == Some(*target);
        let arriving =
            current.state == PlacementState::Moving && current.target_gateway_id == Some(*target);
        if here || arriving {
            // Already counted on the target: only pin it.
            let pinned = Placement {
                pinned: true,
                ..current
            };
            if pinned != current {
                gateways::set_placement(c, &pinned, now)?;
                record(c, ctx, &pinned, "tenant.pinned", now)?;
            }
            return Ok(pinned);
        }
        check_target(to).map_err(FleetConflict::from)?;
        let next = match current.state {
            // In no document: nothing to wait for.
            PlacementState::Unplaced => Placement {
                gateway_id: Some(*target),
                target_gateway_id: None,
                state: PlacementState::Placed,
                pinned: true,
                moving_since: None,
                move_revision: None,
                tenant_id: *tenant_id,
                dedicated: current.dedicated,
            },
            PlacementState::Placed | PlacementState::Moving => sent_to(current, *target, true, now),
        };
        gateways::set_placement(c, &next, now)?;
        record(c, ctx, &next, "tenant.placement_requested", now)?;
        if current.state == PlacementState::Unplaced {
            super::events::tenant_placed(c, tenant_id, target, "placement_requested", now)?;
        }
        Ok(next)
    })
    .and_then(|next| stamped(conn, next))
}

/// Sets whether an operator wants `tenant_id` on a dedicated gateway (the wish kept on its
/// placement row, [`Placement::dedicated`]), and moves it when its gateway no longer suits what
/// it wants ([`want_of`]: the wish, or its plan):
///
/// - the gateway it is on (or moving to) is of the wanted kind: only the wish is stored;
/// - it is not: the gateway [`choose`] picks among those with room of the wanted kind, and the
///   tenant starts the move a [`request`] starts (it leaves its source's document now, enters the
///   target's once the source acknowledged; back to a source it has not left yet, it is placed
///   there at once). Chosen by the placement rule, not by the operator: the placement is no
///   longer pinned. No gateway of that kind with room: [`FleetConflict::NoRoom`], and nothing
///   is stored;
/// - it is unplaced: the wish is stored and it waits for room with it (pending placement picks
///   it up, oldest first).
///
/// The same wish again changes nothing and audits nothing (a single-gateway setup asked for no
/// dedicated gateway writes nothing). Else audited as `tenant.dedicated_changed` (with the wish
/// and the placement it left), in the transaction, under the fleet lock. Answers the placement
/// and whether anything changed.
pub fn set_dedicated(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    cfg: &FleetConfig,
    tenant_id: &TenantId,
    dedicated: bool,
) -> ServiceResult<(Placement, bool)> {
    let now = tenant_core::now();
    write_transaction(conn, |c| {
        let c = &mut gateways::lock_fleet(c)?;
        let tenant = tenants::find(c, tenant_id)?;
        let current = gateways::placement(c, tenant_id)?;
        if current.dedicated == dedicated {
            return Ok((current, false));
        }
        let want = want_of(cfg, tenant.plan, dedicated);
        let fleet = loads(c, cfg, now)?;
        let suits = |g: Option<GatewayId>| {
            g.and_then(|g| fleet.iter().find(|l| l.id == g))
                .is_some_and(|l| l.kind == want.kind())
        };
        let kept = Placement {
            dedicated,
            ..current
        };
        let next = if current.state == PlacementState::Unplaced || suits(current.holder()) {
            kept
        } else {
            let to = choose(&fleet, want).map_err(|no_room| FleetConflict::NoRoom {
                kind: want.kind().as_str(),
                gateways: no_room.gateways,
                full: no_room.full,
                unavailable: no_room.unavailable,
            })?;
            // Not the gateway it is on: that one does not suit it.
            sent_to(kept, to, false, now)
        };
        gateways::set_placement(c, &next, now)?;
        let mut details = details_of(&next);
        details["dedicated"] = dedicated.into();
        details["from"] = details_of(&current);
        record_details(c, ctx, &next, "tenant.dedicated_changed", details, now)?;
        Ok((next, true))
    })
    .and_then(|(next, changed)| {
        if changed {
            stamped(conn, (next, changed))
        } else {
            Ok((next, changed))
        }
    })
}

/// Where a placed or moving tenant goes when sent to `to` (another gateway than the one it is
/// placed on): back to the source it has not left yet, where it is placed at once (it is in
/// neither document meanwhile); else moving, leaving its source's document first.
fn sent_to(current: Placement, to: GatewayId, pinned: bool, now: DateTime<Utc>) -> Placement {
    if current.state == PlacementState::Moving && current.gateway_id == Some(to) {
        Placement {
            target_gateway_id: None,
            state: PlacementState::Placed,
            pinned,
            moving_since: None,
            move_revision: None,
            ..current
        }
    } else {
        Placement {
            target_gateway_id: Some(to),
            state: PlacementState::Moving,
            pinned,
            moving_since: current.moving_since.or(Some(now)),
            // A new target is a new move: stamped afresh once this commits.
            move_revision: None,
            ..current
        }
    }
}

/// After a transaction that started moves committed: stamps their revision (see
/// [`gateways::stamp_move_revisions`]). Returns `value` as it was.
pub fn stamped<T>(conn: &mut AnyConnection, value: T) -> ServiceResult<T> {
    write_transaction(conn, gateways::stamp_move_revisions)?;
    Ok(value)
}

/// Where a tenant is.
pub fn of_tenant(conn: &mut AnyConnection, tenant_id: &TenantId) -> ServiceResult<Placement> {
    tenants::find(conn, tenant_id)?;
    Ok(gateways::placement(conn, tenant_id)?)
}

/// What a drain started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Tenants now moving to another gateway.
    pub moving: usize,
    /// Tenants that stay for want of room elsewhere.
    pub remaining: usize,
}

/// Starts moving every tenant `drained` holds to the gateway placement picks among the others
/// (in creation order); those with no room anywhere stay.
pub fn drain_moves(
    c: &mut gateways::FleetLock<'_>,
    ctx: &AuditContext,
    cfg: &FleetConfig,
    drained: &GatewayId,
    now: DateTime<Utc>,
) -> ServiceResult<DrainReport> {
    let fleet = loads(c, cfg, now)?;
    let (wants, asked) = wants_of(cfg, &gateways::held_by(c, drained)?);
    let mut report = DrainReport::default();
    let mut changes = Changes::default();
    for (tenant_id, to) in drain_plan(&fleet, *drained, &wants) {
        let Some(to) = to else {
            report.remaining += 1;
            continue;
        };
        let next = Placement {
            tenant_id,
            gateway_id: Some(*drained),
            target_gateway_id: Some(to),
            state: PlacementState::Moving,
            pinned: false,
            moving_since: Some(now),
            move_revision: None,
            dedicated: asked.contains(&tenant_id),
        };
        changes.push(ctx, next, "tenant.placement_requested", None, now);
    }
    report.moving = changes.len();
    changes.write(c, now)?;
    Ok(report)
}

/// What each of the `held` tenants wants (by its plan, or its own wish), and which of them asked
/// for a dedicated gateway (a wish their next placement row keeps).
pub(super) fn wants_of(
    cfg: &FleetConfig,
    held: &[gateways::Held],
) -> (Vec<(TenantId, Want)>, HashSet<TenantId>) {
    let wants = held
        .iter()
        .map(|(id, plan, dedicated)| {
            let plan = plan.parse().unwrap_or(Plan::Free);
            (*id, want_of(cfg, plan, *dedicated))
        })
        .collect();
    let asked = held
        .iter()
        .filter(|(_, _, dedicated)| *dedicated)
        .map(|(id, ..)| *id)
        .collect();
    (wants, asked)
}

/// Completes the moves of `released` away from `source`: tenants absent from a document
/// labelled `served_revision` that the source serves. A move completes only if that document
/// was rendered after the move began (`served_revision` at least its stamped revision): an
/// older document without the tenant proves nothing about a later move (a gateway may hold one
/// from before the tenant came back, and fetch the tenant again). A tenant no longer moving from
/// `source`, or moving since a later revision, is left alone. Returns how many completed.
pub fn complete_released(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    source: &GatewayId,
    released: &[TenantId],
    served_revision: i64,
) -> ServiceResult<usize> {
    if released.is_empty() {
        return Ok(0);
    }
    let now = tenant_core::now();
    let done = write_transaction(conn, |c| {
        let c = &mut gateways::lock_fleet(c)?;
        let mut changes = Changes::default();
        let mut seen = HashSet::with_capacity(released.len());
        for p in gateways::placements(c, released)? {
            let proven = p.move_revision.is_some_and(|v| v <= served_revision);
            if p.state != PlacementState::Moving
                || p.gateway_id != Some(*source)
                || !proven
                || !seen.insert(p.tenant_id)
            {
                continue;
            }
            let next = Placement {
                gateway_id: p.target_gateway_id,
                target_gateway_id: None,
                state: PlacementState::Placed,
                moving_since: None,
                move_revision: None,
                ..p
            };
            changes.push(ctx, next, "tenant.moved", None, now);
        }
        let done = changes.len();
        changes.write(c, now)?;
        Ok::<_, ServiceError>(done)
    })?;
    // Moves left unstamped by a crash after their commit get their (later, so safe) revision.
    stamped(conn, done)
}
