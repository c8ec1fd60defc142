//! `GET /tenants/{id}/sessions`: the gateway sessions seen in a tenant's events.

use actix_web::{HttpResponse, get, web};
use tenant_core::PageRequest;
use tenant_store::sessions as store;

use super::parse_tenant_id;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::AppState;
use crate::webhook_dto::{ListSessionsQuery, SessionListResponse, SessionResponse};

/// Lists a tenant's sessions, oldest first (inactive ones are purged after the session TTL).
#[utoipa::path(tag = "events", params(("id" = String, Path, description = "Tenant id (UUID)"), ListSessionsQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of sessions", body = SessionListResponse),
    (status = 400, description = "Malformed id or query", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 422, description = "Invalid limit or cursor", body = ErrorBody),
))]
#[get("/tenants/{id}/sessions")]
pub async fn list_sessions(
    state: web::Data<AppState>,
    id: web::Path<String>,
    ApiQuery(query): ApiQuery<ListSessionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let page = state
        .run(move |c| {
            if !tenant_store::tenants::exists(c, &tenant_id)? {
                return Err(ApiError::NotFound("tenant"));
            }
            Ok(store::list(c, &tenant_id, &page)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(SessionListResponse {
        sessions: page.items.iter().map(SessionResponse::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}
