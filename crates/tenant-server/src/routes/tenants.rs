//! `/tenants`: create, list, read, update, delete.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use tenant_core::{NewTenant, PageRequest, TenantUpdate};
use tenant_store::tenants::{self as store, TenantFilter};

use super::{Actor, parse_tenant_id};
use crate::dto::{
    CreateTenantRequest, CreatedTenantResponse, ListTenantsQuery, TenantListResponse,
    TenantResponse, UpdateTenantRequest,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::principal::Principal;
use crate::service;
use crate::state::AppState;

/// Creates a tenant. The answer carries its first API key, which is shown only this once.
#[utoipa::path(tag = "tenants", request_body = CreateTenantRequest, security(("bearer" = [])), responses(
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
    ApiJson(body): ApiJson<CreateTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = NewTenant::parse(&body.name, body.slug.as_deref(), body.plan.as_deref())?;
    // Written with the creates of concurrent requests (group commit); answered once committed.
    let (tenant, key) = state
        .writers
        .tenant_creates
        .submit(service::CreateTenant {
            ctx: actor.0,
            new,
            at: tenant_core::now(),
        })
        .await??;
    // Debug only: the access log already has the request, and the audit log the tenant; a
    // second JSON line per create was a measurable share of its CPU.
    tracing::debug!(tenant.id = %tenant.id, "tenant created");
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/tenants/{}", tenant.id)))
        .json(CreatedTenantResponse {
            tenant: TenantResponse::from(&tenant),
            api_key: key.expose().to_owned(),
        }))
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
    let page = state
        .run(move |c| Ok(store::list(c, &filter, &page)?))
        .await?;
    Ok(HttpResponse::Ok().json(TenantListResponse {
        tenants: page.items.iter().map(TenantResponse::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// Reads one tenant.
#[utoipa::path(tag = "tenants", params(("id" = String, Path, description = "Tenant id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "The tenant", body = TenantResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
))]
#[get("/tenants/{id}")]
pub async fn get_tenant(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_tenant_id(&id)?;
    let cached = match state.tenants.get(&id) {
        Some(hit) => hit,
        None => {
            let epoch = state.tenants.epoch();
            let tenant = state.run(move |c| Ok(store::find(c, &id)?)).await?;
            state.tenants.insert(epoch, tenant)
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(cached.json.clone()))
}

/// Changes a tenant's name, slug, plan or status.
#[utoipa::path(tag = "tenants", params(("id" = String, Path, description = "Tenant id (UUID)")), request_body = UpdateTenantRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The updated tenant", body = TenantResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 403, description = "The role may not change the tenant, or a tenant credential set `status`", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "Slug taken", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[patch("/tenants/{id}")]
pub async fn update_tenant(
    state: web::Data<AppState>,
    actor: Actor,
    principal: Principal,
    id: web::Path<String>,
    ApiJson(body): ApiJson<UpdateTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_tenant_id(&id)?;
    // Suspending or reactivating a tenant is the operator's decision, not the tenant's.
    if body.status.is_some() && matches!(principal, Principal::Tenant { .. }) {
        return Err(ApiError::Forbidden);
    }
    let update = TenantUpdate::parse(
        body.name.as_deref(),
        body.slug.as_deref(),
        body.plan.as_deref(),
        body.status.as_deref(),
    )?;
    let result = state
        .run(move |c| Ok(service::update_tenant(c, &actor.0, &id, update)?))
        .await;
    state.tenants.invalidate(&id);
    Ok(HttpResponse::Ok().json(TenantResponse::from(&result?)))
}

/// Deletes a tenant with its channels, keys, users, sessions and webhooks.
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
    let result = state
        .run(move |c| Ok(service::delete_tenant(c, &actor.0, &id)?))
        .await;
    state.tenants.invalidate(&id);
    result?;
    state.api_keys.cache.invalidate_tenant(&id);
    tracing::info!(tenant.id = %id, "tenant deleted");
    Ok(HttpResponse::NoContent().finish())
}
