//! `GET /tenants/{id}/audit` (a tenant's own audit log) and `GET /audit` (every tenant's, for
//! operators): newest first, cursor-paginated, filterable.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenant_core::{PageRequest, TenantId};
use tenant_store::audit::{AuditFilter, AuditRow};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiQuery, parse_tenant_id};
use crate::state::AppState;

/// Query of the audit listings; every filter given must match exactly.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Action, e.g. `key.rotated`.
    pub action: Option<String>,
    /// Actor kind: `service_token`, `api_key`, `user`, `cli`, …
    pub actor_type: Option<String>,
    /// Actor id, e.g. an API key id.
    pub actor_id: Option<String>,
    /// Resource kind: `tenant`, `channel`, `api_key`, …
    pub resource_type: Option<String>,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// `GET /audit` only: one tenant's events.
    pub tenant_id: Option<String>,
}

/// Who did it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditActor {
    /// Actor kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Actor id, when it has one.
    pub id: Option<String>,
}

/// One audit event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryResponse {
    /// Event id.
    pub id: String,
    /// The tenant concerned.
    pub tenant_id: Option<String>,
    /// Who.
    pub actor: AuditActor,
    /// What, e.g. `channel.updated`.
    pub action: String,
    /// Resource kind.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: Option<String>,
    /// The request that made the change.
    pub request_id: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Non-secret details (e.g. which fields changed).
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<AuditRow> for AuditEntryResponse {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            actor: AuditActor {
                kind: r.actor_type,
                id: r.actor_id,
            },
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            request_id: r.request_id,
            client_addr: r.client_addr,
            user_agent: r.user_agent,
            details: r.details.and_then(|d| serde_json::from_str(&d).ok()),
            created_at: r.created_at.and_utc(),
        }
    }
}

/// A page of audit events, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditListResponse {
    /// The events.
    pub events: Vec<AuditEntryResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn filter_of(q: &AuditQuery) -> AuditFilter {
    let text = |v: &Option<String>| v.as_deref().map(str::trim).map(str::to_owned);
    AuditFilter {
        action: text(&q.action),
        actor_type: text(&q.actor_type),
        actor_id: text(&q.actor_id),
        resource_type: text(&q.resource_type),
        resource_id: text(&q.resource_id),
        since: q.since,
        until: q.until,
    }
}

fn respond(page: tenant_core::Page<AuditRow>) -> HttpResponse {
    HttpResponse::Ok().json(AuditListResponse {
        next_cursor: page.next_cursor.map(|c| c.encode()),
        events: page
            .items
            .into_iter()
            .map(AuditEntryResponse::from)
            .collect(),
    })
}

fn no_tenant_filter(q: &AuditQuery) -> Result<(), ApiError> {
    match q.tenant_id {
        Some(_) => Err(ApiError::BadRequest {
            code: "invalid_query",
            message: "tenantId: the tenant is given by the path".into(),
            details: serde_json::json!({"field": "tenantId"}),
        }),
        None => Ok(()),
    }
}

/// A tenant's audit log. The log outlives the tenant, so an operator can read a deleted tenant's.
#[utoipa::path(tag = "audit", params(("id" = String, Path, description = "Tenant id (UUID)"), AuditQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of events", body = AuditListResponse),
    (status = 400, description = "Malformed id or query", body = ErrorBody),
    (status = 401, description = "No valid credential", body = ErrorBody),
    (status = 403, description = "The role may not read the audit log", body = ErrorBody),
    (status = 404, description = "Another tenant", body = ErrorBody),
    (status = 422, description = "Invalid cursor or limit", body = ErrorBody),
))]
#[get("/tenants/{id}/audit")]
pub async fn list_tenant_audit(
    state: web::Data<AppState>,
    id: web::Path<String>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    no_tenant_filter(&query)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = filter_of(&query);
    let page = state
        .control
        .audit_log(Some(tenant_id), filter, page)
        .await?;
    Ok(respond(page))
}

/// Every tenant's audit log (and events of no tenant): operators only.
#[utoipa::path(tag = "audit", params(AuditQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of events", body = AuditListResponse),
    (status = 400, description = "Bad query parameter", body = ErrorBody),
    (status = 401, description = "No valid credential", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 422, description = "Invalid cursor, limit or tenant id", body = ErrorBody),
))]
#[get("/audit")]
pub async fn list_audit(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let tenant: Option<TenantId> = query.tenant_id.as_deref().map(str::parse).transpose()?;
    let filter = filter_of(&query);
    let page = state.control.audit_log(tenant, filter, page).await?;
    Ok(respond(page))
}
