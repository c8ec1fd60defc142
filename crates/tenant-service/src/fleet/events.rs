//! The fleet's events to the operator's webhook endpoints (`/operator/webhooks`), each stored
//! in the transaction of the state change it announces (so it is sent if and only if the change
//! commits) and delivered by the webhook dispatcher like a tenant's events (signed, retried):
//!
//! - `tenant.unplaced`: a tenant found no room on any gateway;
//! - `tenant.placed`: a tenant that was unplaced is on a gateway again;
//! - `gateway.stranded`: a gateway's lease lapsed while it held tenants (its `failedOver`
//!   tenants were re-placed, its `stranded` ones were not). Once per lapse: its id names the
//!   gateway and its last heartbeat, so the sweeps of every replica store it once.
//!
//! The body is `{"type", "id", "timestamp", "data"}`, as for a tenant's events.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tenant_core::{GatewayId, NoRoom, TenantId};
use tenant_store::AnyConnection;
use tenant_store::events::NewEvent;
use tenant_store::gateways::Gateway;
use tenant_store::operator_webhooks;

use crate::error::ServiceResult;

/// `tenant.unplaced`.
pub const TENANT_UNPLACED: &str = tenant_webhooks::ingest::OPERATOR_EVENT_TYPES[0];
/// `tenant.placed`.
pub const TENANT_PLACED: &str = tenant_webhooks::ingest::OPERATOR_EVENT_TYPES[1];
/// `gateway.stranded`.
pub const GATEWAY_STRANDED: &str = tenant_webhooks::ingest::OPERATOR_EVENT_TYPES[2];

/// The `source` of the fleet's events.
const SOURCE: &str = "fleet";

/// Stores an operator event with its deliveries, in the caller's transaction; `source_id`
/// makes it once. Returns whether it was new.
fn announce(
    c: &mut AnyConnection,
    event_type: &str,
    source_id: String,
    data: Value,
    now: DateTime<Utc>,
) -> ServiceResult<bool> {
    let id = uuid::Uuid::new_v4();
    let payload = json!({
        "type": event_type,
        "id": format!("evt_{}", id.simple()),
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    });
    let stored = operator_webhooks::ingest(
        c,
        &NewEvent {
            id,
            source: SOURCE.into(),
            source_id,
            event_type: event_type.into(),
            payload: payload.to_string(),
        },
        now,
    )?;
    Ok(matches!(
        stored,
        tenant_store::events::Ingested::Accepted { .. }
    ))
}

/// A tenant found no room: `tenant.unplaced`.
pub fn tenant_unplaced(
    c: &mut AnyConnection,
    tenant_id: &TenantId,
    no_room: &NoRoom,
    now: DateTime<Utc>,
) -> ServiceResult<bool> {
    announce(
        c,
        TENANT_UNPLACED,
        format!("{TENANT_UNPLACED}:{tenant_id}:{}", now.timestamp_micros()),
        json!({
            "tenantId": tenant_id.to_string(),
            "want": no_room.want.kind().as_str(),
            "gateways": no_room.gateways,
            "full": no_room.full,
            "unavailable": no_room.unavailable,
        }),
        now,
    )
}

/// A tenant that was unplaced is on `gateway` now (`reason`: `placement_requested`, …):
/// `tenant.placed`.
pub fn tenant_placed(
    c: &mut AnyConnection,
    tenant_id: &TenantId,
    gateway: &GatewayId,
    reason: &str,
    now: DateTime<Utc>,
) -> ServiceResult<bool> {
    announce(
        c,
        TENANT_PLACED,
        format!("{TENANT_PLACED}:{tenant_id}:{}", now.timestamp_micros()),
        json!({
            "tenantId": tenant_id.to_string(),
            "gatewayId": gateway.to_string(),
            "reason": reason,
        }),
        now,
    )
}

/// What a lapsed lease left behind.
#[derive(Debug, Clone, Copy)]
pub struct Lapse<'a> {
    /// The gateway.
    pub gateway: &'a Gateway,
    /// Tenants re-placed on other gateways.
    pub failed_over: usize,
    /// Tenants it still holds.
    pub stranded: usize,
    /// Why those stay: `dedicated`, `failover_off`, `no_room`; `None` when none stays.
    pub reason: Option<&'static str>,
}

/// A gateway's lease lapsed while it held tenants: `gateway.stranded`, once per lapse.
pub fn gateway_stranded(
    c: &mut AnyConnection,
    lapse: &Lapse<'_>,
    now: DateTime<Utc>,
) -> ServiceResult<bool> {
    let g = lapse.gateway;
    let since = g.last_heartbeat_at.map_or(0, |t| t.timestamp_micros());
    announce(
        c,
        GATEWAY_STRANDED,
        format!("{GATEWAY_STRANDED}:{}:{since}", g.id),
        json!({
            "gatewayId": g.id.to_string(),
            "name": g.name,
            "kind": g.kind.as_str(),
            "lastHeartbeatAt": g.last_heartbeat_at
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            "failedOver": lapse.failed_over,
            "stranded": lapse.stranded,
            "reason": lapse.reason,
        }),
        now,
    )
}
