//! Gateways as a resource (operators only, every change audited): create (the token shown
//! once), list and read with their load and health, change (name, capacity, draining), drain,
//! rotate the token, delete an empty one, check (and repair) the stored held counts. The built-in `default` may be given a capacity and
//! drained, but not renamed, deleted or given a token here (its token is `SAAS_GATEWAY_TOKEN`).

use chrono::{DateTime, Utc};
use serde_json::json;
use tenant_core::{GatewayId, GatewayKind, GatewayName, Secret, ValidationErrors, check_capacity};
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::gateways::{self, Gateway, GatewayChanges, HeldCheck, NewGateway};
use tenant_store::{AnyConnection, write_transaction};

use super::auth::new_token;
use super::placement::{self, DrainReport};
use super::{FleetConfig, FleetConflict};
use crate::api_keys::ApiKeyHasher;
use crate::audit::changed_fields;
use crate::error::{ServiceError, ServiceResult};

/// A gateway's health, from its heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// A heartbeat within the lease.
    Up,
    /// Its last heartbeat is older than the lease.
    Down,
    /// It never sent one (a gateway polling `GET /config` without heartbeats, or not started).
    Unknown,
}

impl Health {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
            Health::Unknown => "unknown",
        }
    }
}

/// A gateway with what it holds and how it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayView {
    /// The stored gateway.
    pub gateway: Gateway,
    /// Tenants placed on it or moving to it.
    pub held: i64,
    /// Its health.
    pub health: Health,
}

impl GatewayView {
    fn of(gateway: Gateway, held: i64, cfg: &FleetConfig, now: DateTime<Utc>) -> Self {
        let health = match gateway.last_heartbeat_at {
            None => Health::Unknown,
            Some(_) if cfg.is_down(gateway.last_heartbeat_at, now) => Health::Down,
            Some(_) => Health::Up,
        };
        Self {
            gateway,
            held,
            health,
        }
    }
}

/// A gateway just created or given a new token, with the token in clear (this once).
#[derive(Debug)]
pub struct IssuedGateway {
    /// The gateway.
    pub view: GatewayView,
    /// Its token.
    pub token: Secret,
}

/// A gateway to create, as asked.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    name: GatewayName,
    kind: GatewayKind,
    capacity: i64,
}

impl GatewaySpec {
    /// Checks every field: a name of `a-z0-9-` (not `default`), a kind, and a capacity (0 to
    /// 1,000,000 for a shared gateway, where it is required; 1 for a dedicated one).
    pub fn parse(name: &str, kind: Option<&str>, capacity: Option<i64>) -> ServiceResult<Self> {
        let mut errors = ValidationErrors::default();
        let name = errors.check(GatewayName::parse(name.trim()));
        let kind = errors.check(kind.map_or(Ok(GatewayKind::Shared), str::parse));
        let capacity = kind.and_then(|k| errors.check(check_capacity(k, capacity)));
        errors.into_result()?;
        match (name, kind, capacity) {
            (Some(name), Some(kind), Some(capacity)) => Ok(Self {
                name,
                kind,
                capacity,
            }),
            _ => Err(ServiceError::Internal(
                "gateway spec checked without errors".into(),
            )),
        }
    }
}

fn gateway_event(
    action: &'static str,
    id: &GatewayId,
    details: serde_json::Value,
) -> AuditEvent<'static> {
    AuditEvent {
        tenant_id: None,
        action,
        resource_type: "gateway",
        resource_id: Some(id.to_string()),
        details: Some(details),
    }
}

/// What a gateway holds, exactly (for `default`, its tenants without a row counted too).
fn held_of(conn: &mut AnyConnection, id: &GatewayId) -> ServiceResult<i64> {
    let stored = gateways::find(conn, id)?.held_rows;
    Ok(if id.is_default() {
        stored + gateways::without_row(conn)?
    } else {
        stored
    })
}

/// Creates a gateway and its token.
pub fn create(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    hasher: &ApiKeyHasher,
    cfg: &FleetConfig,
    spec: GatewaySpec,
) -> ServiceResult<IssuedGateway> {
    let (token, token_hash, token_prefix) = new_token(hasher);
    let now = tenant_core::now();
    let new = NewGateway {
        id: GatewayId::random(),
        name: spec.name.as_str().to_owned(),
        kind: spec.kind,
        capacity: spec.capacity,
        token_hash,
        token_prefix,
    };
    let gateway = write_transaction(conn, |c| {
        let gateway = gateways::insert(c, &new, now)?;
        audit::record(
            c,
            ctx,
            gateway_event(
                "gateway.created",
                &gateway.id,
                json!({"name": gateway.name, "kind": gateway.kind.as_str(), "capacity": gateway.capacity}),
            ),
            now,
        )?;
        Ok::<_, ServiceError>(gateway)
    })?;
    Ok(IssuedGateway {
        view: GatewayView::of(gateway, 0, cfg, now),
        token,
    })
}

/// Every gateway, by name, with its load and health.
pub fn list(conn: &mut AnyConnection, cfg: &FleetConfig) -> ServiceResult<Vec<GatewayView>> {
    let now = tenant_core::now();
    let counts = gateways::held_counts(conn)?;
    Ok(gateways::list(conn)?
        .into_iter()
        .map(|g| {
            let held = counts
                .iter()
                .find(|(id, _)| *id == g.id)
                .map_or(0, |(_, n)| *n);
            GatewayView::of(g, held, cfg, now)
        })
        .collect())
}

/// One gateway with its load and health.
pub fn get(
    conn: &mut AnyConnection,
    cfg: &FleetConfig,
    id: &GatewayId,
) -> ServiceResult<GatewayView> {
    let gateway = gateways::find(conn, id)?;
    let held = held_of(conn, id)?;
    Ok(GatewayView::of(gateway, held, cfg, tenant_core::now()))
}

/// One gateway as stored (its name, kind, capacity…), without its load: one row, no count (a
/// page naming a tenant's gateway).
pub fn find(conn: &mut AnyConnection, id: &GatewayId) -> ServiceResult<Gateway> {
    Ok(gateways::find(conn, id)?)
}

/// A change to a gateway as asked: only the fields present change.
#[derive(Debug, Clone, Default)]
pub struct GatewayPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new capacity (`Some(None)`: no limit, only for the built-in gateway).
    pub capacity: Option<Option<i64>>,
    /// `true` drains it (as `POST …/drain`), `false` opens it again.
    pub draining: Option<bool>,
}

/// Applies a change; a capacity below what the gateway holds is refused with the count.
/// Setting `draining` to `true` drains it (its tenants are moved where there is room).
pub fn update(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    cfg: &FleetConfig,
    id: &GatewayId,
    patch: GatewayPatch,
) -> ServiceResult<(GatewayView, Option<DrainReport>)> {
    let mut errors = ValidationErrors::default();
    let name = match &patch.name {
        Some(n) => errors
            .check(GatewayName::parse(n.trim()))
            .map(|n| n.as_str().to_owned()),
        None => None,
    };
    errors.into_result()?;
    let now = tenant_core::now();
    write_transaction(conn, |c| {
        let c = &mut gateways::lock_fleet(c)?;
        let current = gateways::find(c, id)?;
        if id.is_default() && name.is_some() {
            return Err(FleetConflict::BuiltIn("be renamed").into());
        }
        let capacity = match patch.capacity {
            None => None,
            // Only the built-in gateway may be unlimited.
            Some(None) if id.is_default() => Some(None),
            Some(asked) => Some(Some(check_capacity(current.kind, asked)?)),
        };
        if let Some(Some(capacity)) = capacity {
            let held = held_of(c, id)?;
            if capacity < held {
                return Err(FleetConflict::CapacityBelowHeld { held, capacity }.into());
            }
        }
        let changes = GatewayChanges {
            name: name.clone(),
            capacity,
            draining: patch.draining,
        };
        gateways::update(c, id, &changes, now)?;
        let fields = changed_fields(&[
            ("name", patch.name.is_some()),
            ("capacity", patch.capacity.is_some()),
            ("draining", patch.draining.is_some()),
        ]);
        audit::record(
            c,
            ctx,
            gateway_event("gateway.updated", id, json!({"fields": fields})),
            now,
        )?;
        let report = if patch.draining == Some(true) && !current.draining {
            Some(placement::drain_moves(c, ctx, cfg, id, now)?)
        } else {
            None
        };
        let view = GatewayView::of(gateways::find(c, id)?, held_of(c, id)?, cfg, now);
        Ok((view, report))
    })
    .and_then(|answer| placement::stamped(conn, answer))
}

/// Drains a gateway: it takes no new tenants, and each tenant it holds starts moving to the
/// gateway placement picks among the others (those with no room anywhere stay until there is).
pub fn drain(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    cfg: &FleetConfig,
    id: &GatewayId,
) -> ServiceResult<(GatewayView, DrainReport)> {
    let now = tenant_core::now();
    write_transaction(conn, |c| {
        let c = &mut gateways::lock_fleet(c)?;
        gateways::find(c, id)?;
        let changes = GatewayChanges {
            draining: Some(true),
            ..GatewayChanges::default()
        };
        gateways::update(c, id, &changes, now)?;
        audit::record(c, ctx, gateway_event("gateway.drained", id, json!({})), now)?;
        let report = placement::drain_moves(c, ctx, cfg, id, now)?;
        let view = GatewayView::of(gateways::find(c, id)?, held_of(c, id)?, cfg, now);
        Ok((view, report))
    })
    .and_then(|answer| placement::stamped(conn, answer))
}

/// Gives a gateway a new token; the old one stops working at once (on other replicas within the
/// authentication cache's TTL).
pub fn rotate_token(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    hasher: &ApiKeyHasher,
    cfg: &FleetConfig,
    id: &GatewayId,
) -> ServiceResult<IssuedGateway> {
    if id.is_default() {
        return Err(FleetConflict::BuiltIn("be given a token: it uses SAAS_GATEWAY_TOKEN").into());
    }
    let (token, token_hash, token_prefix) = new_token(hasher);
    let now = tenant_core::now();
    write_transaction(conn, |c| {
        gateways::set_token(c, id, &token_hash, &token_prefix, now)?;
        audit::record(
            c,
            ctx,
            gateway_event("gateway.token_rotated", id, json!({})),
            now,
        )?;
        Ok::<_, ServiceError>(())
    })?;
    Ok(IssuedGateway {
        view: get(conn, cfg, id)?,
        token,
    })
}

/// Deletes a gateway that holds nobody (placed, moving from or to it).
pub fn delete(conn: &mut AnyConnection, ctx: &AuditContext, id: &GatewayId) -> ServiceResult<()> {
    if id.is_default() {
        return Err(FleetConflict::BuiltIn("be deleted").into());
    }
    let now = tenant_core::now();
    write_transaction(conn, |c| {
        let c = &mut gateways::lock_fleet(c)?;
        gateways::find(c, id)?;
        if gateways::is_referenced(c, id)? {
            let held = held_of(c, id)?.max(1);
            return Err(FleetConflict::GatewayNotEmpty { held }.into());
        }
        gateways::delete(c, id)?;
        audit::record(c, ctx, gateway_event("gateway.deleted", id, json!({})), now)?;
        Ok(())
    })
}

/// Checks every gateway's stored count of the tenants it holds against its placement rows,
/// under the fleet lock (`moltbot-saas gateways check`); with `repair`, sets the wrong ones to
/// their rows' count and deletes placement rows of deleted tenants, each repaired gateway
/// audited as `gateway.held_repaired` with both counts. The counts are kept exact where
/// placements change; a difference means a write outside the control plane (or a bug).
pub fn check_held(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    repair: bool,
) -> ServiceResult<HeldCheck> {
    let now = tenant_core::now();
    write_transaction(conn, |c| {
        let c = &mut gateways::lock_fleet(c)?;
        let check = gateways::check_held(c, repair)?;
        if repair {
            for d in &check.drift {
                let details = json!({"stored": d.stored, "counted": d.counted});
                let event = gateway_event("gateway.held_repaired", &d.gateway, details);
                audit::record(c, ctx, event, now)?;
            }
        }
        Ok(check)
    })
}
