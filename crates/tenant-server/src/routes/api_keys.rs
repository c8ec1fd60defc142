//! `/tenants/{id}/api-keys`: a tenant's API keys — issue (shown once), list (never the key or its
//! hash, only its public prefix), revoke, rotate with an overlap window.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenant_core::PageRequest;
use tenant_service::api_keys::issue::IssuedKey;
use tenant_service::idempotency::Answer;
use tenant_store::api_keys::ApiKeyRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiQuery, parse_tenant_id, whole_number};
use crate::http::idempotency::{IdempotencyKeyHeader, OnceJson, respond, secret_answer};
use crate::state::AppState;

/// `POST /tenants/{id}/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateApiKeyRequest {
    /// A label: 1–100 characters, trimmed, no control characters.
    #[schema(example = "ci-deploy")]
    pub name: String,
    /// `owner`, `admin` or `member` (default `member`).
    pub role: Option<String>,
    /// When the key stops working (RFC 3339, in the future); never when absent.
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /tenants/{id}/api-keys/{kid}/rotate`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RotateApiKeyRequest {
    /// How long the old key keeps working, 0–604800 seconds (default 86400).
    #[serde(default, deserialize_with = "whole_number")]
    pub overlap_seconds: Option<u32>,
    /// When the new key stops working (RFC 3339, in the future); never when absent.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API key as listed: never the key, never its hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyResponse {
    /// Key id (UUID).
    pub id: String,
    /// Label.
    pub name: String,
    /// The key's first characters, to recognise it.
    #[schema(example = "msk_live_AbCd")]
    pub prefix: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last use (recorded at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it stops (or stopped) working.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key that replaced it by rotation.
    pub replaced_by: Option<String>,
}

/// A key's `status`: usable, past its expiry (or its rotation overlap), or revoked.
pub const KEY_STATUSES: [&str; 3] = ["active", "expired", "revoked"];

impl From<&ApiKeyRow> for ApiKeyResponse {
    fn from(r: &ApiKeyRow) -> Self {
        let now = tenant_core::now();
        let [active, expired, revoked] = KEY_STATUSES;
        let status = if r.revoked_at.is_some() {
            revoked
        } else if r.is_usable(now) {
            active
        } else {
            expired
        };
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            prefix: r.prefix.clone(),
            role: r.role.clone(),
            status: status.into(),
            created_at: r.created_at.and_utc(),
            last_used_at: r.last_used_at.map(|t| t.and_utc()),
            expires_at: r.expires_at.map(|t| t.and_utc()),
            revoked_at: r.revoked_at.map(|t| t.and_utc()),
            replaced_by: r.replaced_by.clone(),
        }
    }
}

/// A key just issued: the only time the key itself is shown.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKeyResponse {
    /// The stored key.
    #[serde(flatten)]
    pub key: ApiKeyResponse,
    /// The key. Only its hash is stored: it cannot be shown again.
    #[schema(example = "msk_live_…")]
    pub api_key: String,
}

impl std::fmt::Debug for CreatedApiKeyResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKeyResponse")
            .field("key", &self.key)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl From<&IssuedKey> for CreatedApiKeyResponse {
    fn from(issued: &IssuedKey) -> Self {
        Self {
            key: ApiKeyResponse::from(&issued.row),
            api_key: issued.key.expose().to_owned(),
        }
    }
}

/// A page of API keys, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyListResponse {
    /// The keys.
    pub api_keys: Vec<ApiKeyResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query of `GET /tenants/{id}/api-keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListApiKeysQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

fn parse_key_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::BadRequest {
        code: "invalid_path",
        message: "kid: must be a UUID".into(),
        details: json!({ "field": "kid" }),
    })
}

/// Issues a new API key; the answer carries the key, shown only this once.
#[utoipa::path(tag = "api-keys", params(IdempotencyKeyHeader, ("id" = String, Path, description = "Tenant id (UUID)")), request_body = CreateApiKeyRequest, security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = CreatedApiKeyResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid credential", body = ErrorBody),
    (status = 403, description = "The role may not manage keys", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[post("/tenants/{id}/api-keys")]
pub async fn create_api_key(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    OnceJson(body, once): OnceJson<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let control = &state.control;
    respond(&state, once, created_key, |once| async move {
        let issued = control
            .issue_api_key(
                actor.0,
                tenant_id,
                &body.name,
                body.role.as_deref(),
                body.expires_at,
                once,
            )
            .await?;
        tracing::info!(tenant.id = %tenant_id, api_key.id = %issued.row.id, "api key created");
        Ok(issued)
    })
    .await
}

/// The answer of an issued key (stored sealed: it carries the key).
fn created_key(issued: &IssuedKey) -> Answer {
    secret_answer(
        StatusCode::CREATED,
        Some(format!(
            "/tenants/{}/api-keys/{}",
            issued.row.tenant_id, issued.row.id
        )),
        &CreatedApiKeyResponse::from(issued),
    )
}

/// Lists a tenant's API keys (revoked and expired ones included), oldest first.
#[utoipa::path(tag = "api-keys", params(("id" = String, Path, description = "Tenant id (UUID)"), ListApiKeysQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of keys", body = ApiKeyListResponse),
    (status = 400, description = "Malformed id or query", body = ErrorBody),
    (status = 401, description = "No valid credential", body = ErrorBody),
    (status = 403, description = "The role may not read keys", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 422, description = "Invalid cursor or limit", body = ErrorBody),
))]
#[get("/tenants/{id}/api-keys")]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    id: web::Path<String>,
    ApiQuery(query): ApiQuery<ListApiKeysQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let page = state.control.list_api_keys(tenant_id, page).await?;
    Ok(HttpResponse::Ok().json(ApiKeyListResponse {
        api_keys: page.items.iter().map(ApiKeyResponse::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// Revokes an API key at once (idempotent). Other replicas stop accepting it within
/// `SAAS_API_KEY_CACHE_TTL_SECS`.
#[utoipa::path(tag = "api-keys", params(
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("kid" = String, Path, description = "Key id (UUID)"),
), security(("bearer" = [])), responses(
    (status = 204, description = "Revoked"),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid credential", body = ErrorBody),
    (status = 403, description = "The role may not manage keys", body = ErrorBody),
    (status = 404, description = "No such tenant or key", body = ErrorBody),
))]
#[delete("/tenants/{id}/api-keys/{kid}")]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let key_id = parse_key_id(&path.1)?;
    state
        .control
        .revoke_api_key(actor.0, tenant_id, key_id)
        .await?;
    tracing::info!(tenant.id = %tenant_id, api_key.id = %key_id, "api key revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// Rotates an API key: issues a successor with the same name and role (shown once); the old key
/// keeps working for the overlap (default 24 h), then expires.
#[utoipa::path(tag = "api-keys", params(IdempotencyKeyHeader, 
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("kid" = String, Path, description = "Key id (UUID)"),
), request_body = RotateApiKeyRequest, security(("bearer" = [])), responses(
    (status = 201, description = "The new key", body = CreatedApiKeyResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid credential", body = ErrorBody),
    (status = 403, description = "The role may not manage keys", body = ErrorBody),
    (status = 404, description = "No such tenant or key", body = ErrorBody),
    (status = 409, description = "The key is revoked, expired or already rotated", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[post("/tenants/{id}/api-keys/{kid}/rotate")]
pub async fn rotate_api_key(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
    OnceJson(body, once): OnceJson<RotateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let key_id = parse_key_id(&path.1)?;
    let control = &state.control;
    respond(&state, once, created_key, |once| async move {
        let issued = control
            .rotate_api_key(
                actor.0,
                tenant_id,
                key_id,
                body.overlap_seconds,
                body.expires_at,
                once,
            )
            .await?;
        tracing::info!(tenant.id = %tenant_id, api_key.id = %key_id, "api key rotated");
        Ok(issued)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenant_core::Secret;

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = "msk_live_ThisMustNeverBeShownInDebugOutput000000000";
        let row = ApiKeyRow {
            id: Uuid::new_v4().to_string(),
            tenant_id: Uuid::new_v4().to_string(),
            name: "ci".into(),
            prefix: "msk_live_This".into(),
            key_hash: "00".repeat(32),
            created_at: tenant_core::now().naive_utc(),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
            role: "member".into(),
            replaced_by: None,
        };
        let issued = IssuedKey {
            row,
            key: Secret::new(key.to_owned()),
        };
        assert!(!format!("{issued:?}").contains(key));
        let resp = CreatedApiKeyResponse::from(&issued);
        assert_eq!(resp.api_key, key);
        assert!(!format!("{resp:?}").contains(key));
    }
}
