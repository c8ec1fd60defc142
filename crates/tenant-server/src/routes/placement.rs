//! `/tenants/{id}/placement`: which gateway serves a tenant, moving or pinning it there, and
//! whether it wants a dedicated gateway (operators only). The move protocol is
//! `tenant_service::fleet::placement`'s.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenant_core::GatewayId;
use tenant_store::gateways::Placement;
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson, parse_tenant_id, parse_uuid};
use crate::state::AppState;

/// `POST /tenants/{id}/placement`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlacementRequest {
    /// The gateway to move the tenant to (or pin it on).
    pub gateway_id: String,
}

/// `PATCH /tenants/{id}/placement`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlacementPatch {
    /// Whether the tenant wants a dedicated gateway whatever its plan (`false`: its plan
    /// decides).
    pub dedicated: bool,
}

/// Where a tenant is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementResponse {
    /// The gateway it is on, or moving from; `null` when unplaced.
    pub gateway_id: Option<String>,
    /// `placed`, `moving` (in no document until its source acknowledged it left) or
    /// `unplaced` (no gateway had room).
    pub state: String,
    /// The gateway it is moving to.
    pub target_gateway_id: Option<String>,
    /// Put there by an operator rather than by the placement rule.
    pub pinned: bool,
    /// When its move began.
    pub moving_since: Option<DateTime<Utc>>,
    /// An operator asked for a dedicated gateway (`POST /tenants` with `dedicated: true`, or
    /// `PATCH /tenants/{id}/placement`): placed, and placed again when it waits for room or
    /// moves, as a plan in `SAAS_DEDICATED_PLANS` would be. `false`: its plan decides.
    pub dedicated: bool,
}

impl From<&Placement> for PlacementResponse {
    fn from(p: &Placement) -> Self {
        Self {
            gateway_id: p.gateway_id.map(|g| g.to_string()),
            state: p.state.as_str().to_owned(),
            target_gateway_id: p.target_gateway_id.map(|g| g.to_string()),
            pinned: p.pinned,
            moving_since: p.moving_since,
            dedicated: p.dedicated,
        }
    }
}

/// Where a tenant is.
#[utoipa::path(tag = "gateways", params(("id" = String, Path, description = "Tenant id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "Its placement", body = PlacementResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
))]
#[get("/tenants/{id}/placement")]
pub async fn get_placement(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = state.control.placement(parse_tenant_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(PlacementResponse::from(&p)))
}

/// Moves a tenant to a gateway, or pins it there. An unplaced tenant is placed at once; one
/// on another gateway starts `moving`: it leaves that gateway's document now and enters the
/// target's once the source has acknowledged a document without it (its heartbeat), so no
/// account is ever served by two gateways.
#[utoipa::path(tag = "gateways", params(("id" = String, Path, description = "Tenant id (UUID)")), request_body = PlacementRequest, security(("bearer" = [])), responses(
    (status = 200, description = "Its placement now", body = PlacementResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such tenant or gateway", body = ErrorBody),
    (status = 409, description = "The gateway is full (`gateway_full`, with the counts), draining or down", body = ErrorBody),
))]
#[post("/tenants/{id}/placement")]
pub async fn request_placement(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    ApiJson(body): ApiJson<PlacementRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant_id(&id)?;
    let target = GatewayId::from(parse_uuid("gatewayId", &body.gateway_id)?);
    let p = state
        .control
        .request_placement(actor.0, tenant, target)
        .await?;
    Ok(HttpResponse::Ok().json(PlacementResponse::from(&p)))
}

/// Sets whether the tenant wants a dedicated gateway (whatever its plan). On a gateway of the
/// kind it now wants, it stays; else it starts `moving` to the gateway placement picks among
/// those with room (and is no longer pinned), as `POST` moves it; unplaced, it waits for room
/// with its new wish. The same value again changes nothing. No gateway of the wanted kind with
/// room: `409 no_room` (with the counts), and nothing is stored.
#[utoipa::path(tag = "gateways", params(("id" = String, Path, description = "Tenant id (UUID)")), request_body = PlacementPatch, security(("bearer" = [])), responses(
    (status = 200, description = "Its placement now", body = PlacementResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "No gateway of the wanted kind has room (`no_room`, with the counts); nothing changed", body = ErrorBody),
))]
#[patch("/tenants/{id}/placement")]
pub async fn update_placement(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    ApiJson(body): ApiJson<PlacementPatch>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant_id(&id)?;
    let p = state
        .control
        .set_dedicated(actor.0, tenant, body.dedicated)
        .await?;
    Ok(HttpResponse::Ok().json(PlacementResponse::from(&p)))
}
