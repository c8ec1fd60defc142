//! The fleet use cases of [`ControlPlane`]: gateways, placement, heartbeats, tenants waiting
//! for room. Rotating or deleting a gateway drops its token from this process's authentication
//! cache at once; a change that may make room (a gateway created, its capacity changed,
//! reopened, back up; a tenant moved away) wakes the automatic placing of waiting tenants.

use std::sync::Arc;

use tenant_core::{GatewayId, TenantId};
use tenant_store::audit::AuditContext;
use tenant_store::config_revision;
use tenant_store::gateways::{self as store, Placement};

use super::ControlPlane;
use crate::error::{ServiceError, ServiceResult};
use crate::fleet::gateways::{self, GatewayPatch, GatewaySpec, GatewayView, IssuedGateway};
use crate::fleet::leases::{self, SweepReport};
use crate::fleet::pending::{self, PendingReport, Trigger};
use crate::fleet::placement::{self, DrainReport};
use crate::fleet::{FleetConfig, auth, metrics};
use crate::gateway_config::Variant;
use crate::principal::Principal;

/// What a heartbeat reports: the document the gateway now serves.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// The `ETag` of the document it serves (as `GET /config` gave it).
    pub etag: String,
    /// The `X-Config-Revision` that came with it, if known.
    pub revision: Option<i64>,
    /// The variant it fetches (its dialect and mode); the gateway is the caller's.
    pub variant: Variant,
    /// Whether its config is fenced (it stops serving when it cannot renew for a lease).
    pub fencing: bool,
}

/// What a heartbeat changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatAck {
    /// Whether the document it serves is the current one of its variant.
    pub current: bool,
    /// Tenants whose move away from it completed with this heartbeat.
    pub released: usize,
}

impl ControlPlane {
    /// The fleet's settings.
    pub fn fleet_config(&self) -> &FleetConfig {
        &self.fleet
    }

    /// Creates a gateway; its token is in clear only in the answer.
    pub async fn create_gateway(
        &self,
        ctx: AuditContext,
        name: String,
        kind: Option<String>,
        capacity: Option<i64>,
    ) -> ServiceResult<IssuedGateway> {
        let spec = GatewaySpec::parse(&name, kind.as_deref(), capacity)?;
        let (hasher, cfg) = (self.api_keys.hasher.clone(), Arc::clone(&self.fleet));
        let issued = self
            .run(move |c| gateways::create(c, &ctx, &hasher, &cfg, spec))
            .await?;
        self.room_appeared(Trigger::GatewayCreated);
        Ok(issued)
    }

    /// Every gateway with its load and health, by name.
    pub async fn list_gateways(&self) -> ServiceResult<Vec<GatewayView>> {
        let cfg = Arc::clone(&self.fleet);
        self.run(move |c| gateways::list(c, &cfg)).await
    }

    /// One gateway with its load and health.
    pub async fn gateway(&self, id: GatewayId) -> ServiceResult<GatewayView> {
        let cfg = Arc::clone(&self.fleet);
        self.run(move |c| gateways::get(c, &cfg, &id)).await
    }

    /// One gateway as stored, without its load or health (one row read).
    pub async fn gateway_row(&self, id: GatewayId) -> ServiceResult<store::Gateway> {
        self.run(move |c| gateways::find(c, &id)).await
    }

    /// Changes a gateway's name, capacity or draining flag.
    pub async fn update_gateway(
        &self,
        ctx: AuditContext,
        id: GatewayId,
        patch: GatewayPatch,
    ) -> ServiceResult<(GatewayView, Option<DrainReport>)> {
        let cfg = Arc::clone(&self.fleet);
        let why = match (patch.draining, patch.capacity) {
            (Some(false), _) => Some(Trigger::GatewayReopened),
            (_, Some(_)) => Some(Trigger::CapacityChanged),
            _ => None,
        };
        let answer = self
            .run(move |c| gateways::update(c, &ctx, &cfg, &id, patch))
            .await?;
        if let Some(why) = why {
            self.room_appeared(why);
        }
        Ok(answer)
    }

    /// Drains a gateway: no new tenants; its tenants start moving where there is room.
    pub async fn drain_gateway(
        &self,
        ctx: AuditContext,
        id: GatewayId,
    ) -> ServiceResult<(GatewayView, DrainReport)> {
        let cfg = Arc::clone(&self.fleet);
        self.run(move |c| gateways::drain(c, &ctx, &cfg, &id)).await
    }

    /// Gives a gateway a new token (in clear only in the answer); the old one stops working.
    pub async fn rotate_gateway_token(
        &self,
        ctx: AuditContext,
        id: GatewayId,
    ) -> ServiceResult<IssuedGateway> {
        let (hasher, cfg) = (self.api_keys.hasher.clone(), Arc::clone(&self.fleet));
        let issued = self
            .run(move |c| gateways::rotate_token(c, &ctx, &hasher, &cfg, &id))
            .await?;
        self.gateway_auth.invalidate(&id);
        Ok(issued)
    }

    /// Deletes a gateway that holds nobody.
    pub async fn delete_gateway(&self, ctx: AuditContext, id: GatewayId) -> ServiceResult<()> {
        self.run(move |c| gateways::delete(c, &ctx, &id)).await?;
        self.gateway_auth.invalidate(&id);
        Ok(())
    }

    /// Where a tenant is.
    pub async fn placement(&self, tenant_id: TenantId) -> ServiceResult<Placement> {
        self.run(move |c| placement::of_tenant(c, &tenant_id)).await
    }

    /// Moves or pins a tenant on a gateway (see [`placement::request`]).
    pub async fn request_placement(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        target: GatewayId,
    ) -> ServiceResult<Placement> {
        let cfg = Arc::clone(&self.fleet);
        let placed = self
            .run(move |c| placement::request(c, &ctx, &cfg, &tenant_id, &target))
            .await?;
        self.tenant_cache.invalidate(&tenant_id);
        if placed.state == tenant_core::PlacementState::Moving {
            // Counted on its target from now on: its source has room again.
            self.room_appeared(Trigger::TenantLeft);
        }
        Ok(placed)
    }

    /// Sets whether an operator wants the tenant on a dedicated gateway, moving it when its
    /// gateway no longer suits it (see [`placement::set_dedicated`]).
    pub async fn set_dedicated(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        dedicated: bool,
    ) -> ServiceResult<Placement> {
        let cfg = Arc::clone(&self.fleet);
        let (placed, changed) = self
            .run(move |c| placement::set_dedicated(c, &ctx, &cfg, &tenant_id, dedicated))
            .await?;
        if !changed {
            return Ok(placed);
        }
        self.tenant_cache.invalidate(&tenant_id);
        match placed.state {
            // Counted on its target from now on: its source has room again.
            tenant_core::PlacementState::Moving => self.room_appeared(Trigger::TenantLeft),
            // Waiting with its new wish: there may be room of the kind it wants now.
            tenant_core::PlacementState::Unplaced => self.room_appeared(Trigger::WishChanged),
            tenant_core::PlacementState::Placed => {}
        }
        Ok(placed)
    }

    /// Places the tenants waiting for room, oldest first, now (an operator's request, audited
    /// as `ctx`; it runs whether or not another replica's automatic run does).
    pub async fn place_pending(&self, ctx: AuditContext) -> ServiceResult<PendingReport> {
        let cfg = Arc::clone(&self.fleet);
        self.run(move |c| pending::place_pending(c, &ctx, &cfg, Trigger::Requested))
            .await
    }

    /// How many tenants wait for room (unplaced).
    pub async fn waiting_for_room(&self) -> ServiceResult<i64> {
        self.run(|c| Ok(tenant_store::unplaced::count(c)?)).await
    }

    /// Wakes the automatic placing of tenants waiting for room: a change here may have made
    /// some.
    pub fn room_appeared(&self, why: Trigger) {
        self.room.raise(why);
    }

    /// The automatic placing of tenants waiting for room, one run at a time: waits until a
    /// change here may have made room, or `every` (changes made elsewhere), then places them
    /// (see [`pending::place_pending_leased`]; `None` when nobody waits or another replica
    /// holds the lease).
    pub async fn place_pending_when_room(
        &self,
        every: std::time::Duration,
    ) -> ServiceResult<Option<PendingReport>> {
        let why = self.room.wait(every).await;
        let (cfg, room) = (Arc::clone(&self.fleet), Arc::clone(&self.room));
        self.run(move |c| pending::place_pending_leased(c, &cfg, room.holder(), why))
            .await
    }

    /// Records a gateway's heartbeat (its lease is renewed) and completes the moves away from
    /// it that the document it serves proves done: a tenant moving away is released when the
    /// gateway serves the current document of its variant and that document does not hold it.
    pub async fn heartbeat(
        &self,
        caller: &Principal,
        ctx: AuditContext,
        beat: Heartbeat,
    ) -> ServiceResult<HeartbeatAck> {
        let gateway = auth::gateway_of(caller)?;
        let variant = Variant {
            gateway,
            ..beat.variant
        };
        let etag = beat.etag.clone();
        // The moves first, then the revision: the document compared below is at least as new
        // as every move read here, so none of them is in it unless it came back.
        let cfg = Arc::clone(&self.fleet);
        let (moving, revision, was_down) = self
            .run(move |c| {
                let record = store::HeartbeatRecord {
                    etag: Some(&etag),
                    revision: beat.revision,
                    fencing: beat.fencing,
                };
                let now = tenant_core::now();
                let was_down = cfg.is_down(store::find(c, &gateway)?.last_heartbeat_at, now);
                store::record_heartbeat(c, &gateway, record, now)?;
                let moving: Vec<TenantId> = store::moving_from(c, &gateway)?
                    .into_iter()
                    .map(|p| p.tenant_id)
                    .collect();
                Ok((moving, config_revision::current(c)?, was_down))
            })
            .await?;
        if was_down {
            // Placement skipped it while it was down: it may take tenants waiting for room.
            self.room_appeared(Trigger::GatewayUp);
        }
        self.config_cache
            .get(&self.db, &self.render, &self.keys, variant, revision)
            .await?;
        let absent = self
            .config_cache
            .absent_from(variant, &beat.etag, &moving)
            .await;
        let current = absent.is_some();
        // Without the revision of the document it serves, nothing proves when it was rendered.
        let released = match (absent, beat.revision) {
            (Some(ids), Some(served)) if !ids.is_empty() => {
                self.run(move |c| placement::complete_released(c, &ctx, &gateway, &ids, served))
                    .await?
            }
            _ => 0,
        };
        Ok(HeartbeatAck { current, released })
    }

    /// Acts on expired gateway leases (`fleet::leases::sweep`): completes the moves away from
    /// them and, with failover on, re-places a down shared gateway's tenants. Logs what it did,
    /// and once per down spell each expired gateway left holding tenants (a dedicated one is
    /// never failed over: an operator decides).
    pub async fn sweep_leases(&self) -> ServiceResult<SweepReport> {
        let cfg = Arc::clone(&self.fleet);
        let ctx = AuditContext {
            actor_type: "system".into(),
            ..AuditContext::default()
        };
        let report = self
            .run(move |c| leases::sweep(c, &ctx, &cfg, tenant_core::now()))
            .await?;
        if report.completed > 0 || report.failed_over > 0 {
            tracing::warn!(
                fleet.completed = report.completed,
                fleet.failed_over = report.failed_over,
                "gateway leases expired: moves away from them completed, tenants failed over"
            );
            metrics::failed_over(report.failed_over);
        }
        metrics::stranded(report.gateways.iter().map(|(g, _)| {
            let n = report
                .stranded
                .iter()
                .find(|s| s.gateway.id == g.id)
                .map_or(0, |s| s.tenants);
            (g.name.as_str(), n)
        }));
        if let Ok(mut announced) = self.fleet_announced.lock() {
            for s in &report.stranded {
                if announced.insert(s.gateway.id) {
                    tracing::error!(
                        gateway.name = %s.gateway.name,
                        gateway.kind = s.gateway.kind.as_str(),
                        fleet.tenants = s.tenants,
                        fleet.reason = s.reason,
                        "a gateway's lease expired and its tenants are served nowhere: an operator must act (move them, or bring the gateway back)"
                    );
                }
            }
            announced.retain(|id| report.stranded.iter().any(|s| s.gateway.id == *id));
        }
        Ok(report)
    }

    /// `NotFound("tenant")` unless a fleet gateway asks for one of its own tenants (the
    /// built-in gateway and operators read any tenant's document, as before the fleet).
    pub(super) async fn check_gateway_reads(
        &self,
        caller: &Principal,
        tenant_id: TenantId,
    ) -> ServiceResult<()> {
        match caller.gateway() {
            Some(gateway) if !gateway.is_default() => {
                let p = self
                    .run(move |c| Ok(store::placement(c, &tenant_id)?))
                    .await?;
                let on_it =
                    p.state == tenant_core::PlacementState::Placed && p.gateway_id == Some(gateway);
                if on_it {
                    Ok(())
                } else {
                    Err(ServiceError::NotFound("tenant"))
                }
            }
            _ => Ok(()),
        }
    }
}
