//! Tenants waiting for room (`unplaced`) are placed once there is room, by the rules of a new
//! tenant: a plan in `SAAS_DEDICATED_PLANS`, or an operator's wish (at its creation or later, kept
//! on its placement row) → a dedicated gateway with room, else the freest
//! shared gateway; never past a capacity, never on a draining or down gateway.
//!
//! [`place_pending`] places them oldest first, in batches of [`BATCH`]: each batch is one
//! transaction under the fleet lock (the loads read under it, each placement written with its
//! audit entry and its `tenant.placed` event to the operator's webhooks), so a big backlog
//! never holds the lock for long and two replicas placing at once never overfill a gateway.
//!
//! It runs on an operator's request (`POST /gateways/place-pending`, `gateways place-pending`)
//! and by itself ([`place_pending_leased`], actor `system`): when a change on this replica may
//! have made room ([`RoomSignal`]: a gateway created, its capacity changed, reopened, back up
//! after being down; a tenant deleted or moved away; a waiting tenant's wish changed), and
//! periodically for changes made elsewhere. The automatic runs take the maintenance lease
//! [`LEASE`], so one replica at a time does them, and cost one index probe when no tenant waits.
//! And before new tenants are placed ([`place_waiting_first`]), so that they queue behind the
//! tenants already waiting.

use std::sync::Mutex;
use std::time::Duration;

use tenant_core::{PlacementState, Plan, TenantId, Want, any_room, place_plan};
use tenant_store::audit::AuditContext;
use tenant_store::gateways::{self, Placement};
use tenant_store::unplaced::{self, Waiting};
use tenant_store::{AnyConnection, purge, write_transaction};
use tokio::sync::Notify;

use super::FleetConfig;
use super::shared::{Changes, loads, want_of};
use super::{events, metrics};
use crate::error::ServiceResult;

/// Tenants placed per transaction (the fleet lock is released between batches).
pub const BATCH: i64 = 200;

/// The maintenance lease of the automatic runs (`maintenance_leases`).
pub const LEASE: &str = "fleet-place-pending";

/// How long an automatic run's lease lasts: a crashed holder's is taken over after this.
const LEASE_TTL: Duration = Duration::from_secs(120);

/// Why a run places tenants: the `reason` of their audit entries and `tenant.placed` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An operator asked (`POST /gateways/place-pending`, `gateways place-pending`).
    Requested,
    /// A gateway was created.
    GatewayCreated,
    /// A gateway's capacity was changed.
    CapacityChanged,
    /// A draining gateway was opened again.
    GatewayReopened,
    /// A gateway that was down sent a heartbeat.
    GatewayUp,
    /// A tenant left a gateway (deleted, or moving away).
    TenantLeft,
    /// The periodic pass (changes made by other replicas or the CLI).
    Periodic,
    /// An operator changed a waiting tenant's wish for a dedicated gateway: it may fit where
    /// there is room now.
    WishChanged,
    /// Tenants were created while others waited: the waiting ones are placed first, in the new
    /// tenants' transaction ([`place_waiting_first`]).
    TenantCreated,
}

impl Trigger {
    /// The spelling in audit entries and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Requested => "place_pending",
            Trigger::GatewayCreated => "gateway_created",
            Trigger::CapacityChanged => "capacity_changed",
            Trigger::GatewayReopened => "gateway_reopened",
            Trigger::GatewayUp => "gateway_up",
            Trigger::TenantLeft => "tenant_left",
            Trigger::Periodic => "periodic",
            Trigger::WishChanged => "dedicated_changed",
            Trigger::TenantCreated => "tenant_created",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingReport {
    /// Tenants placed.
    pub placed: usize,
    /// Tenants still waiting for room.
    pub unplaced: i64,
}

/// One batch's outcome.
struct Step {
    placed: usize,
    /// The last tenant looked at, when the batch was full (more may wait after it).
    next: Option<Waiting>,
}

/// Places the tenants waiting for room, oldest first, audited as `ctx` with `trigger` as the
/// reason (see the module documentation). Costs one index probe when none waits.
pub fn place_pending(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    cfg: &FleetConfig,
    trigger: Trigger,
) -> ServiceResult<PendingReport> {
    if !unplaced::any(conn)? {
        metrics::pending_placed(0, 0);
        return Ok(PendingReport::default());
    }
    let mut report = PendingReport::default();
    let mut after: Option<Waiting> = None;
    loop {
        let step = write_transaction(conn, |c| {
            place_batch(
                &mut gateways::lock_fleet(c)?,
                ctx,
                cfg,
                trigger,
                after.as_ref(),
            )
        })?;
        report.placed += step.placed;
        match step.next {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    report.unplaced = unplaced::count(conn)?;
    metrics::pending_placed(report.placed, report.unplaced);
    if report.placed > 0 {
        tracing::info!(
            fleet.placed = report.placed,
            fleet.unplaced = report.unplaced,
            fleet.trigger = trigger.as_str(),
            "tenants waiting for room were placed"
        );
    }
    Ok(report)
}

/// Places the tenants waiting for room, oldest first, in the transaction (and under the fleet
/// lock) of new tenants about to be placed, so that a new tenant never takes room ahead of one
/// waiting for it: without this, room made on another replica or by the CLI would go to
/// whoever is created first until the next periodic run (up to a sweep period, 1–10 s). The
/// backlog is placed in this one transaction (as far as there is room): normally a few
/// tenants, since the automatic runs place them as soon as room appears. Audited as `system`
/// with the reason `tenant_created`. One index probe when none waits; returns how many it
/// placed.
pub fn place_waiting_first(
    c: &mut gateways::FleetLock<'_>,
    cfg: &FleetConfig,
) -> ServiceResult<usize> {
    if !unplaced::any(c)? {
        return Ok(0);
    }
    let ctx = AuditContext {
        actor_type: "system".into(),
        ..AuditContext::default()
    };
    let trigger = Trigger::TenantCreated;
    let mut placed = 0;
    let mut after: Option<Waiting> = None;
    loop {
        let step = place_batch(c, &ctx, cfg, trigger, after.as_ref())?;
        placed += step.placed;
        match step.next {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    if placed > 0 {
        let left = unplaced::count(c)?;
        metrics::pending_placed(placed, left);
        tracing::info!(
            fleet.placed = placed,
            fleet.unplaced = left,
            fleet.trigger = trigger.as_str(),
            "tenants waiting for room were placed before new tenants"
        );
    }
    Ok(placed)
}

/// One batch, in the caller's transaction under the fleet lock: the next [`BATCH`] waiting
/// tenants after `after`, each placed where a new tenant would go (counting the ones before it).
fn place_batch(
    c: &mut gateways::FleetLock<'_>,
    ctx: &AuditContext,
    cfg: &FleetConfig,
    trigger: Trigger,
    after: Option<&Waiting>,
) -> ServiceResult<Step> {
    let now = tenant_core::now();
    let mut fleet = loads(c, cfg, now)?;
    if !any_room(&fleet) {
        return Ok(Step {
            placed: 0,
            next: None,
        });
    }
    let mut batch = unplaced::batch(c, after, BATCH)?;
    let wants: Vec<(TenantId, Want)> = batch
        .iter()
        .map(|w| {
            let plan = w.plan.parse().unwrap_or(Plan::Free);
            (w.tenant_id, want_of(cfg, plan, w.dedicated))
        })
        .collect();
    let mut changes = Changes::default();
    // The plan answers in the order it was asked: each answer is its waiting tenant's.
    for (waiting, (tenant_id, to)) in batch.iter().zip(place_plan(&mut fleet, &wants)) {
        let Some(to) = to else { continue };
        debug_assert_eq!(waiting.tenant_id, tenant_id);
        let next = Placement {
            gateway_id: Some(to),
            state: PlacementState::Placed,
            // Kept: it placed the tenant here, and holds when it moves later.
            dedicated: waiting.dedicated,
            ..Placement::on_default(tenant_id)
        };
        changes.push(ctx, next, "tenant.placed", Some(trigger.as_str()), now);
        events::tenant_placed(c, &tenant_id, &to, trigger.as_str(), now)?;
    }
    let placed = changes.len();
    changes.write(c, now)?;
    let full = i64::try_from(batch.len()).unwrap_or(i64::MAX) >= BATCH;
    Ok(Step {
        placed,
        next: if full && any_room(&fleet) {
            batch.pop()
        } else {
            None
        },
    })
}

/// An automatic run (actor `system`): nothing when no tenant waits (one index probe) or when
/// another replica holds [`LEASE`]; else [`place_pending`] under the lease. `holder` names
/// this process.
pub fn place_pending_leased(
    conn: &mut AnyConnection,
    cfg: &FleetConfig,
    holder: &str,
    trigger: Trigger,
) -> ServiceResult<Option<PendingReport>> {
    if !unplaced::any(conn)? {
        metrics::pending_placed(0, 0);
        return Ok(None);
    }
    let now = tenant_core::now();
    let ttl = chrono::Duration::from_std(LEASE_TTL).unwrap_or(chrono::Duration::MAX);
    if !purge::try_lease(conn, LEASE, holder, now, now + ttl)? {
        return Ok(None);
    }
    let ctx = AuditContext {
        actor_type: "system".into(),
        ..AuditContext::default()
    };
    let report = place_pending(conn, &ctx, cfg, trigger);
    // Let another replica run at once, whatever happened (best effort: else it expires).
    if let Err(e) = purge::release_lease(conn, LEASE, holder) {
        tracing::debug!(error = %e, "the pending placement lease was not released");
    }
    report.map(Some)
}

/// Wakes the automatic runs of this process when a change may have made room, remembering the
/// first reason given since the last run.
#[derive(Debug)]
pub struct RoomSignal {
    notify: Notify,
    why: Mutex<Option<Trigger>>,
    holder: String,
}

impl Default for RoomSignal {
    fn default() -> Self {
        Self {
            notify: Notify::new(),
            why: Mutex::new(None),
            holder: format!("place-pending-{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

impl RoomSignal {
    /// Room may have appeared (a signal raised while no run waits is kept for the next wait).
    pub fn raise(&self, why: Trigger) {
        if let Ok(mut w) = self.why.lock() {
            w.get_or_insert(why);
        }
        self.notify.notify_one();
    }

    /// Waits for a signal, at most `every`; answers why a run is due ([`Trigger::Periodic`]
    /// when the time ran out).
    pub async fn wait(&self, every: Duration) -> Trigger {
        let _ = tokio::time::timeout(every, self.notify.notified()).await;
        self.why
            .lock()
            .ok()
            .and_then(|mut w| w.take())
            .unwrap_or(Trigger::Periodic)
    }

    /// The lease holder name of this process.
    pub fn holder(&self) -> &str {
        &self.holder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_is_kept_until_the_next_wait_and_its_first_reason_wins() {
        let room = RoomSignal::default();
        // Raised while no run waits: the next wait returns at once, with the first reason.
        room.raise(Trigger::GatewayCreated);
        room.raise(Trigger::TenantLeft);
        let why = room.wait(Duration::from_secs(3600)).await;
        assert_eq!(why, Trigger::GatewayCreated);
        // Nothing raised since: the time runs out, a periodic run.
        assert_eq!(
            room.wait(Duration::from_millis(20)).await,
            Trigger::Periodic
        );
        assert!(room.holder().starts_with("place-pending-"));
        assert_ne!(room.holder(), RoomSignal::default().holder());
    }
}
