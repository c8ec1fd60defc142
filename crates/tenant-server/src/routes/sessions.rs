//! `GET /tenants/{id}/sessions`: the gateway sessions seen in a tenant's events.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use tenant_core::PageRequest;
use tenant_store::sessions::SessionRow;
use utoipa::{IntoParams, ToSchema};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiQuery, parse_tenant_id};
use crate::state::AppState;

/// Query of the sessions list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListSessionsQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A gateway session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse {
    /// The gateway's session key.
    pub session_key: String,
    /// Channel kind.
    pub channel: String,
    /// Peer, group or room id.
    pub peer_id: Option<String>,
    /// `direct`, `group` or `channel`.
    pub chat_type: String,
    /// First seen.
    pub created_at: DateTime<Utc>,
    /// Last event.
    pub last_activity_at: DateTime<Utc>,
}

impl From<&SessionRow> for SessionResponse {
    fn from(s: &SessionRow) -> Self {
        Self {
            session_key: s.session_key.clone(),
            channel: s.channel.clone(),
            peer_id: s.peer_id.clone(),
            chat_type: s.chat_type.clone(),
            created_at: utc(s.created_at),
            last_activity_at: utc(s.last_activity_at),
        }
    }
}

/// A page of sessions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionListResponse {
    /// Sessions, oldest first.
    pub sessions: Vec<SessionResponse>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

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
    let page = state.control.list_sessions(tenant_id, page).await?;
    Ok(HttpResponse::Ok().json(SessionListResponse {
        sessions: page.items.iter().map(SessionResponse::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}
