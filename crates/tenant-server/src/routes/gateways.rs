//! `/gateways`: the gateway fleet (operators only), and `POST /gateway/heartbeat` (a gateway,
//! with its own token, reporting the document it serves). The rules are
//! `tenant_service::fleet`'s; `docs/fleet.md` explains the fleet.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenant_core::GatewayId;
use tenant_service::control_plane::fleet::Heartbeat;
use tenant_service::fleet::gateways::{GatewayPatch, GatewayView, IssuedGateway};
use tenant_service::fleet::pending::PendingReport;
use tenant_service::fleet::placement::DrainReport;
use tenant_service::gateway_config::Variant;
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{
    Actor, ApiJson, Caller, nullable_whole_number, parse_uuid, whole_number,
};
use crate::routes::config::variant_for;
use crate::state::AppState;

/// `POST /gateways`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateGatewayRequest {
    /// Unique name: 1–63 of `a-z`, `0-9`, `-` (not `default`).
    #[schema(example = "pool-1")]
    pub name: String,
    /// `shared` (default) or `dedicated` (one tenant of its own).
    #[schema(example = "shared")]
    pub kind: Option<String>,
    /// Tenants it may hold: 0–1,000,000, required for a shared gateway; 1 for a dedicated one.
    #[schema(example = 500)]
    #[serde(default, deserialize_with = "whole_number")]
    pub capacity: Option<i64>,
}

/// `PATCH /gateways/{gid}`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateGatewayRequest {
    /// New name (not for `default`).
    pub name: Option<String>,
    /// New capacity; not below what it holds. `null` (only `default`): no limit.
    #[serde(default, deserialize_with = "nullable_whole_number")]
    #[schema(value_type = Option<i64>)]
    pub capacity: Option<Option<i64>>,
    /// `true` drains it (like `POST …/drain`); `false` opens it again.
    pub draining: Option<bool>,
}

/// A gateway, its load and health.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayResponse {
    /// Gateway id (UUID; `default` is all zeros).
    pub id: String,
    /// Name.
    pub name: String,
    /// `shared` or `dedicated`.
    pub kind: String,
    /// Tenants it may hold; `null`: no limit.
    pub capacity: Option<i64>,
    /// Tenants placed on it or moving to it.
    pub tenants: i64,
    /// Takes no new tenants.
    pub draining: bool,
    /// `up` (a heartbeat within the lease), `down` (none since), `unknown` (never one).
    pub health: String,
    /// The first characters of its token; `null` for `default` (`SAAS_GATEWAY_TOKEN`).
    pub token_prefix: Option<String>,
    /// The last heartbeat.
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// The `ETag` of the document it said it serves.
    pub served_etag: Option<String>,
    /// The config revision of the document it said it serves.
    pub served_revision: Option<i64>,
    /// Whether its last heartbeat declared fencing (it stops serving when it cannot renew its
    /// lease): only then does its expired lease complete moves away from it or fail it over.
    pub fencing: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&GatewayView> for GatewayResponse {
    fn from(v: &GatewayView) -> Self {
        let g = &v.gateway;
        Self {
            id: g.id.to_string(),
            name: g.name.clone(),
            kind: g.kind.as_str().to_owned(),
            capacity: g.capacity,
            tenants: v.held,
            draining: g.draining,
            health: v.health.as_str().to_owned(),
            token_prefix: g.token_prefix.clone(),
            last_heartbeat_at: g.last_heartbeat_at,
            served_etag: g.served_etag.clone(),
            served_revision: g.served_revision,
            fencing: g.fencing,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

/// A gateway with its token, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayWithTokenResponse {
    /// The gateway.
    #[serde(flatten)]
    pub gateway: GatewayResponse,
    /// Its bearer token for `GET /config` and `POST /gateway/heartbeat`: shown once, stored
    /// only as a keyed hash.
    pub token: String,
}

impl From<&IssuedGateway> for GatewayWithTokenResponse {
    fn from(i: &IssuedGateway) -> Self {
        Self {
            gateway: GatewayResponse::from(&i.view),
            token: i.token.expose().to_owned(),
        }
    }
}

/// Every gateway.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GatewayListResponse {
    /// The gateways, by name.
    pub gateways: Vec<GatewayResponse>,
}

/// What a drain started.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrainResponse {
    /// The gateway, now draining.
    pub gateway: GatewayResponse,
    /// Tenants now moving to other gateways.
    pub moving: usize,
    /// Tenants that stay for want of room elsewhere.
    pub remaining: usize,
}

impl DrainResponse {
    fn of(view: &GatewayView, report: DrainReport) -> Self {
        Self {
            gateway: GatewayResponse::from(view),
            moving: report.moving,
            remaining: report.remaining,
        }
    }
}

/// What placing the tenants waiting for room did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacePendingResponse {
    /// Tenants placed by this request.
    pub placed: usize,
    /// Tenants still waiting for room (`unplaced`).
    pub unplaced: i64,
}

impl From<PendingReport> for PlacePendingResponse {
    fn from(r: PendingReport) -> Self {
        Self {
            placed: r.placed,
            unplaced: r.unplaced,
        }
    }
}

fn gateway_id(raw: &str) -> Result<GatewayId, ApiError> {
    parse_uuid("gid", raw).map(GatewayId::from)
}

/// Creates a gateway and its token (shown once). The name is unique, so a retried create
/// answers 409; `POST …/rotate-token` gives a lost token's gateway a new one.
#[utoipa::path(tag = "gateways", request_body = CreateGatewayRequest, security(("bearer" = [])), responses(
    (status = 201, description = "Created, with its token", body = GatewayWithTokenResponse),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 409, description = "Name taken", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[post("/gateways")]
pub async fn create_gateway(
    state: web::Data<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateGatewayRequest>,
) -> Result<HttpResponse, ApiError> {
    let issued = state
        .control
        .create_gateway(actor.0, body.name, body.kind, body.capacity)
        .await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(GatewayWithTokenResponse::from(&issued)))
}

/// Lists the gateways (the built-in `default` included) with their load and health.
#[utoipa::path(tag = "gateways", security(("bearer" = [])), responses(
    (status = 200, description = "The gateways", body = GatewayListResponse),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
))]
#[get("/gateways")]
pub async fn list_gateways(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let views = state.control.list_gateways().await?;
    Ok(HttpResponse::Ok().json(GatewayListResponse {
        gateways: views.iter().map(GatewayResponse::from).collect(),
    }))
}

/// One gateway.
#[utoipa::path(tag = "gateways", params(("gid" = String, Path, description = "Gateway id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "The gateway", body = GatewayResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such gateway", body = ErrorBody),
))]
#[get("/gateways/{gid}")]
pub async fn get_gateway(
    state: web::Data<AppState>,
    gid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = state.control.gateway(gateway_id(&gid)?).await?;
    Ok(HttpResponse::Ok().json(GatewayResponse::from(&view)))
}

/// Renames a gateway, changes its capacity (never below what it holds: 409 with the count), or
/// drains (`"draining": true`) or reopens it.
#[utoipa::path(tag = "gateways", params(("gid" = String, Path, description = "Gateway id (UUID)")), request_body = UpdateGatewayRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The gateway as it now is", body = GatewayResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such gateway", body = ErrorBody),
    (status = 409, description = "Capacity below what it holds (`capacity_below_held`), name taken, or `default` renamed", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[patch("/gateways/{gid}")]
pub async fn update_gateway(
    state: web::Data<AppState>,
    actor: Actor,
    gid: web::Path<String>,
    ApiJson(body): ApiJson<UpdateGatewayRequest>,
) -> Result<HttpResponse, ApiError> {
    let patch = GatewayPatch {
        name: body.name,
        capacity: body.capacity,
        draining: body.draining,
    };
    let (view, _) = state
        .control
        .update_gateway(actor.0, gateway_id(&gid)?, patch)
        .await?;
    Ok(HttpResponse::Ok().json(GatewayResponse::from(&view)))
}

/// Deletes a gateway that holds no tenant (placed on, moving from or to it).
#[utoipa::path(tag = "gateways", params(("gid" = String, Path, description = "Gateway id (UUID)")), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such gateway", body = ErrorBody),
    (status = 409, description = "It still holds tenants (`gateway_not_empty`), or it is `default`", body = ErrorBody),
))]
#[delete("/gateways/{gid}")]
pub async fn delete_gateway(
    state: web::Data<AppState>,
    actor: Actor,
    gid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .control
        .delete_gateway(actor.0, gateway_id(&gid)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Drains a gateway: it takes no new tenants, and the tenants it holds start moving to the
/// gateways placement picks (those with no room anywhere stay). `PATCH {"draining": false}`
/// opens it again.
#[utoipa::path(tag = "gateways", params(("gid" = String, Path, description = "Gateway id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "Draining", body = DrainResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such gateway", body = ErrorBody),
))]
#[post("/gateways/{gid}/drain")]
pub async fn drain_gateway(
    state: web::Data<AppState>,
    actor: Actor,
    gid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (view, report) = state
        .control
        .drain_gateway(actor.0, gateway_id(&gid)?)
        .await?;
    Ok(HttpResponse::Ok().json(DrainResponse::of(&view, report)))
}

/// Places the tenants waiting for room (`unplaced`) now, oldest first, by the rules of a new
/// tenant (a dedicated plan → a dedicated gateway with room, else the freest shared gateway;
/// never past a capacity), each audited as `tenant.placed` and announced to the operator's
/// webhooks. The control plane also does this by itself whenever room appears.
#[utoipa::path(tag = "gateways", security(("bearer" = [])), responses(
    (status = 200, description = "How many were placed, and how many still wait", body = PlacePendingResponse),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
))]
#[post("/gateways/place-pending")]
pub async fn place_pending(
    state: web::Data<AppState>,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    let report = state.control.place_pending(actor.0).await?;
    Ok(HttpResponse::Ok().json(PlacePendingResponse::from(report)))
}

/// Gives a gateway a new token (shown once); the old one stops working (on other replicas
/// within 30 s).
#[utoipa::path(tag = "gateways", params(("gid" = String, Path, description = "Gateway id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "The gateway with its new token", body = GatewayWithTokenResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such gateway", body = ErrorBody),
    (status = 409, description = "`default`, whose token is `SAAS_GATEWAY_TOKEN`", body = ErrorBody),
))]
#[post("/gateways/{gid}/rotate-token")]
pub async fn rotate_gateway_token(
    state: web::Data<AppState>,
    actor: Actor,
    gid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let issued = state
        .control
        .rotate_gateway_token(actor.0, gateway_id(&gid)?)
        .await?;
    Ok(HttpResponse::Ok().json(GatewayWithTokenResponse::from(&issued)))
}

/// `POST /gateway/heartbeat`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeartbeatRequest {
    /// The `ETag` of the document the gateway now serves, as `GET /config` gave it (quoted).
    pub etag: String,
    /// The `X-Config-Revision` that came with it.
    #[serde(default, deserialize_with = "whole_number")]
    pub revision: Option<i64>,
    /// The dialect it fetches (`current` or `legacy`; default `SAAS_CONFIG_DIALECT`).
    pub dialect: Option<String>,
    /// The mode it fetches (`combined`, the default, or `per-tenant`).
    pub mode: Option<String>,
    /// `true` when what keeps the gateway's config fences it: writes a document with no tenants
    /// once it could not renew its lease for `leaseSecs` (`config sync` does). Only a fenced
    /// gateway's expired lease completes moves away from it or fails it over. Default `false`.
    pub fencing: Option<bool>,
}

/// What the heartbeat did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    /// Whether the document it serves is the current one.
    pub current: bool,
    /// Tenants whose move away from this gateway completed.
    pub released: usize,
    /// Seconds a gateway may go without a heartbeat before it is `down` (a fenced gateway
    /// stops serving once it could not renew for this long).
    pub lease_secs: u64,
}

/// A gateway reports the document it serves (after each file swap, or each poll): this renews
/// its lease, and completes the moves of tenants away from it that the document proves done.
#[utoipa::path(tag = "gateways", request_body = HeartbeatRequest, security(("bearer" = [])), responses(
    (status = 200, description = "Recorded", body = HeartbeatResponse),
    (status = 400, description = "Malformed JSON or dialect", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not a gateway token", body = ErrorBody),
))]
#[post("/gateway/heartbeat")]
pub async fn heartbeat(
    state: web::Data<AppState>,
    actor: Actor,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<HeartbeatRequest>,
) -> Result<HttpResponse, ApiError> {
    let variant: Variant = variant_for(
        state.control.render_options(),
        body.dialect.as_deref(),
        body.mode.as_deref(),
        GatewayId::DEFAULT,
    )?;
    let beat = Heartbeat {
        etag: body.etag,
        revision: body.revision,
        variant,
        fencing: body.fencing.unwrap_or(false),
    };
    let ack = state.control.heartbeat(&principal, actor.0, beat).await?;
    Ok(HttpResponse::Ok().json(HeartbeatResponse {
        current: ack.current,
        released: ack.released,
        lease_secs: state.control.fleet_config().lease.as_secs(),
    }))
}
