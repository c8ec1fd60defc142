//! `/tenants`: create, list, read, update, delete; the request and response bodies of tenants.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenant_core::{NewTenant, PageRequest, Secret, Tenant};
use tenant_service::idempotency::Answer;
use tenant_service::principal::Principal;
use tenant_service::tenants::TenantPatch;
use tenant_store::tenants::TenantFilter;
use utoipa::{IntoParams, ToSchema};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson, ApiQuery, Caller, parse_tenant_id};
use crate::http::idempotency::{IdempotencyKeyHeader, OnceJson, respond, secret_answer};
use crate::state::AppState;

/// `POST /tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTenantRequest {
    /// Display name: 1–200 characters, trimmed, no control characters.
    #[schema(example = "Acme Corp")]
    pub name: String,
    /// DNS-label handle; derived from the name when absent.
    #[schema(example = "acme")]
    pub slug: Option<String>,
    /// `free` (default), `starter`, `pro` or `enterprise`.
    #[schema(example = "pro")]
    pub plan: Option<String>,
    /// `true`: place it on a dedicated gateway with room whatever its plan, as a plan in
    /// `SAAS_DEDICATED_PLANS` would be (`unplaced` while none has room, and placed on one when
    /// one has). `false` or absent: the plan decides. Operators only, as the whole endpoint.
    #[schema(example = false)]
    pub dedicated: Option<bool>,
}

/// `PATCH /tenants/{id}`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateTenantRequest {
    /// New display name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<String>,
    /// New plan: `free`, `starter`, `pro` or `enterprise`.
    pub plan: Option<String>,
    /// New status: `active` or `suspended` (suspended tenants leave the gateway config).
    pub status: Option<String>,
}

/// A tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantResponse {
    /// Tenant id (UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unique DNS-label handle.
    pub slug: String,
    /// The tenant's account id on the gateway (`tenant-<8 hex>`).
    #[schema(example = "tenant-1a2b3c4d")]
    pub account_id: String,
    /// The tenant's agent id on the gateway (`agent-<8 hex>`).
    #[schema(example = "agent-1a2b3c4d")]
    pub agent_id: String,
    /// `free`, `starter`, `pro` or `enterprise`.
    pub plan: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Whether its messages of this month are used up: its channel accounts are out of the
    /// gateway config until the month rolls over or its plan changes.
    pub quota_exceeded: bool,
}

impl From<&Tenant> for TenantResponse {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.as_str().to_owned(),
            slug: t.slug.as_str().to_owned(),
            account_id: t.account_id.as_str().to_owned(),
            agent_id: t.agent_id.as_str().to_owned(),
            plan: t.plan.as_str().to_owned(),
            status: t.status.as_str().to_owned(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            quota_exceeded: t
                .quota_exceeded_in(&tenant_store::usage::period_of(tenant_core::now())),
        }
    }
}

/// Which gateway serves a tenant, in `GET /tenants/{id}` (operators only; the details are
/// `GET /tenants/{id}/placement`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantPlacement {
    /// The gateway it is on, or moving from; `null` when unplaced.
    pub gateway_id: Option<String>,
    /// `placed`, `moving` (in no gateway's document until its source let it go) or `unplaced`
    /// (no gateway had room: in no document).
    pub state: String,
    /// An operator asked for a dedicated gateway (`POST /tenants` with `dedicated: true`, or
    /// later `PATCH /tenants/{id}/placement`); `false`: its plan decides.
    pub dedicated: bool,
}

/// `GET /tenants/{id}` answer: the tenant and, for operators, its placement.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantDetailResponse {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: TenantResponse,
    /// Which gateway serves it (operators only; absent while the database cannot be read and
    /// the tenant comes from the cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<TenantPlacement>,
}

/// `POST /tenants` answer: the tenant and its first API key, shown this once (`Debug` hides it).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTenantResponse {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: TenantResponse,
    /// The tenant's API key. Only its hash is stored: it cannot be shown again.
    #[schema(example = "msk_live_…")]
    pub api_key: String,
}

impl std::fmt::Debug for CreatedTenantResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedTenantResponse")
            .field("tenant", &self.tenant)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// Query of `GET /tenants`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTenantsQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only tenants with this status (`active` or `suspended`).
    pub status: Option<String>,
    /// Only tenants on this plan.
    pub plan: Option<String>,
    /// Only tenants whose name contains this text (case-insensitive).
    pub q: Option<String>,
}

/// A page of tenants, in creation order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantListResponse {
    /// The tenants.
    pub tenants: Vec<TenantResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The JSON of a tenant as `GET /tenants/{id}` answers it: what the tenant read cache keeps.
pub fn tenant_json(tenant: &Tenant) -> Vec<u8> {
    serde_json::to_vec(&TenantResponse::from(tenant)).unwrap_or_default()
}

/// Creates a tenant. The answer carries its first API key, which is shown only this once.
#[utoipa::path(tag = "tenants", params(IdempotencyKeyHeader), request_body = CreateTenantRequest, security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = CreatedTenantResponse),
    (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 409, description = "Slug taken", body = ErrorBody),
    (status = 413, description = "Body too large", body = ErrorBody),
    (status = 415, description = "Not JSON", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[post("/tenants")]
pub async fn create_tenant(
    state: web::Data<AppState>,
    actor: Actor,
    OnceJson(body, once): OnceJson<CreateTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut new = NewTenant::parse(&body.name, body.slug.as_deref(), body.plan.as_deref())?;
    new.dedicated = body.dedicated.unwrap_or(false);
    // Written with the creates of concurrent requests (group commit), the key's row in the
    // batch's statement; answered once committed. No log line: the access log has the request,
    // and the audit log the tenant; a JSON line per create was a measurable share of its CPU.
    respond(&state, once, created_tenant, |once| {
        state.control.create_tenant(actor.0, new, once)
    })
    .await
}

/// The answer of a create: the tenant and its first API key (stored sealed with its key).
fn created_tenant((tenant, key): &(Tenant, Secret)) -> Answer {
    secret_answer(
        StatusCode::CREATED,
        Some(format!("/tenants/{}", tenant.id)),
        &CreatedTenantResponse {
            tenant: TenantResponse::from(tenant),
            api_key: key.expose().to_owned(),
        },
    )
}

/// Lists tenants in creation order, a page at a time.
#[utoipa::path(tag = "tenants", params(ListTenantsQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of tenants", body = TenantListResponse),
    (status = 400, description = "Bad query parameter", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 422, description = "Invalid filter value", body = ErrorBody),
))]
#[get("/tenants")]
pub async fn list_tenants(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<ListTenantsQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = TenantFilter {
        status: query.status.as_deref().map(str::parse).transpose()?,
        plan: query.plan.as_deref().map(str::parse).transpose()?,
        name_contains: query.q.map(|q| q.trim().to_owned()),
    };
    let page = state.control.list_tenants(filter, page).await?;
    Ok(HttpResponse::Ok().json(TenantListResponse {
        tenants: page.items.iter().map(TenantResponse::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// Reads one tenant; an operator also sees which gateway serves it (`placement`).
#[utoipa::path(tag = "tenants", params(("id" = String, Path, description = "Tenant id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "The tenant (with `placement` for operators)", body = TenantDetailResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
))]
#[get("/tenants/{id}")]
pub async fn get_tenant(
    state: web::Data<AppState>,
    Caller(principal): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_tenant_id(&id)?;
    let cached = state.control.cached_tenant(id).await?;
    if !matches!(principal, Principal::Operator { .. }) {
        // The hot read: the cached bytes as they are.
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(cached.json.clone()));
    }
    // Placements change with moves and failovers on any replica: read, never cached. The
    // tenant itself may come from the cache while the database is away: then without it.
    let placement = state
        .control
        .placement(id)
        .await
        .ok()
        .map(|p| TenantPlacement {
            gateway_id: p.gateway_id.map(|g| g.to_string()),
            state: p.state.as_str().to_owned(),
            dedicated: p.dedicated,
        });
    Ok(HttpResponse::Ok().json(TenantDetailResponse {
        tenant: TenantResponse::from(&cached.tenant),
        placement,
    }))
}

/// Changes a tenant's name, slug, plan or status (the plan and status are the operator's to
/// change).
#[utoipa::path(tag = "tenants", params(("id" = String, Path, description = "Tenant id (UUID)")), request_body = UpdateTenantRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The updated tenant", body = TenantResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 403, description = "The role may not change the tenant, or a tenant credential set `status` or `plan`", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "Slug taken", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[patch("/tenants/{id}")]
pub async fn update_tenant(
    state: web::Data<AppState>,
    actor: Actor,
    Caller(principal): Caller,
    id: web::Path<String>,
    ApiJson(body): ApiJson<UpdateTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_tenant_id(&id)?;
    let patch = TenantPatch {
        name: body.name,
        slug: body.slug,
        plan: body.plan,
        status: body.status,
    };
    let tenant = state
        .control
        .update_tenant(actor.0, &principal, id, patch)
        .await?;
    Ok(HttpResponse::Ok().json(TenantResponse::from(&tenant)))
}

/// Deletes a tenant with its channels, keys, users, sessions and webhooks: it is gone at once
/// (404, out of the gateway config, its keys and users refused); its events and deliveries are
/// purged in the background.
#[utoipa::path(tag = "tenants", params(("id" = String, Path, description = "Tenant id (UUID)")), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
))]
#[delete("/tenants/{id}")]
pub async fn delete_tenant(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_tenant_id(&id)?;
    state.control.delete_tenant(actor.0, id).await?;
    tracing::info!(tenant.id = %id, "tenant deleted");
    Ok(HttpResponse::NoContent().finish())
}
