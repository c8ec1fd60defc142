//! `/tenants/{id}/users`: a tenant's users. Owners and operators manage them; anyone of the
//! tenant may read them; other tenants see 404.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenant_core::{PageRequest, Secret};
use tenant_service::idempotency::Answer;
use tenant_service::identity::users::NewUser;
use tenant_store::users::TenantUserRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson, ApiQuery, parse_tenant_id};
use crate::http::idempotency::{IdempotencyKeyHeader, OnceJson, respond, secret_answer};
use crate::state::AppState;

/// `POST /tenants/{id}/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateUserRequest {
    /// Email, unique within the tenant.
    #[schema(example = "alice@example.com")]
    pub email: String,
    /// `owner`, `admin` or `member`.
    #[schema(example = "admin")]
    pub role: String,
    /// Initial password (12 characters to 1024 bytes); without one an invite token is returned.
    #[schema(value_type = Option<String>)]
    pub password: Option<Secret>,
}

/// `PATCH /tenants/{id}/users/{uid}`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateUserRequest {
    /// New role.
    pub role: Option<String>,
    /// Disable (or re-enable) the user; disabling logs it out everywhere.
    pub disabled: Option<bool>,
}

/// Query of `GET /tenants/{id}/users`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A tenant user (never its password or invite).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserResponse {
    /// User id (UUID).
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// Email.
    pub email: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// Whether an invite is still waiting to be accepted.
    pub invite_pending: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<&TenantUserRow> for UserResponse {
    fn from(u: &TenantUserRow) -> Self {
        Self {
            id: u.id.clone(),
            tenant_id: u.tenant_id.clone(),
            email: u.email.clone(),
            role: u.role.clone(),
            disabled: u.disabled,
            invite_pending: u.invite_hash.is_some(),
            created_at: u.created_at.and_utc(),
            last_login_at: u.last_login_at.map(|t| t.and_utc()),
        }
    }
}

/// A created user, with its invite token when no password was given (shown only this once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUserResponse {
    /// The user.
    #[serde(flatten)]
    pub user: UserResponse,
    /// For `POST /auth/accept-invite`; valid 7 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_token: Option<String>,
}

/// A page of users, in creation order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserListResponse {
    /// The users.
    pub users: Vec<UserResponse>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

fn parse_user_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::BadRequest {
        code: "invalid_path",
        message: "uid: must be a UUID".into(),
        details: serde_json::json!({ "field": "uid" }),
    })
}

/// Creates a user with a password, or without one and an invite token to hand over.
#[utoipa::path(tag = "users", params(IdempotencyKeyHeader, ("id" = String, Path, description = "Tenant id (UUID)")), request_body = CreateUserRequest, security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = CreatedUserResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an owner or operator", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "Email taken in this tenant", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[post("/tenants/{id}/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    OnceJson(body, once): OnceJson<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let new = NewUser {
        email: body.email,
        role: body.role,
        password: body.password,
    };
    let control = &state.control;
    respond(&state, once, created_user, |once| async move {
        let created = control.create_user(actor.0, tenant_id, new, once).await?;
        tracing::info!(tenant.id = %tenant_id, user.id = %created.0.id, "user created");
        Ok(created)
    })
    .await
}

/// The answer of a created user (stored sealed: it may carry the invite token; never cached).
fn created_user((row, invite): &(TenantUserRow, Option<Secret>)) -> Answer {
    secret_answer(
        StatusCode::CREATED,
        Some(format!("/tenants/{}/users/{}", row.tenant_id, row.id)),
        &CreatedUserResponse {
            user: UserResponse::from(row),
            invite_token: invite.as_ref().map(|t| t.expose().to_owned()),
        },
    )
}

/// Lists a tenant's users, a page at a time.
#[utoipa::path(tag = "users", params(("id" = String, Path, description = "Tenant id (UUID)"), ListUsersQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of users", body = UserListResponse),
    (status = 400, description = "Bad id or query", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 422, description = "Bad cursor or limit", body = ErrorBody),
))]
#[get("/tenants/{id}/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    id: web::Path<String>,
    ApiQuery(query): ApiQuery<ListUsersQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let page = state.control.list_users(tenant_id, page).await?;
    Ok(HttpResponse::Ok().json(UserListResponse {
        users: page.items.iter().map(UserResponse::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// Reads one user.
#[utoipa::path(tag = "users", params(("id" = String, Path, description = "Tenant id (UUID)"), ("uid" = String, Path, description = "User id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "The user", body = UserResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 404, description = "No such tenant or user", body = ErrorBody),
))]
#[get("/tenants/{id}/users/{uid}")]
pub async fn get_user(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let uid = parse_user_id(&path.1)?;
    let row = state.control.user(tenant_id, uid).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(&row)))
}

/// Changes a user's role or disables it. The last enabled owner cannot be demoted or disabled.
#[utoipa::path(tag = "users", params(("id" = String, Path, description = "Tenant id (UUID)"), ("uid" = String, Path, description = "User id (UUID)")), request_body = UpdateUserRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The updated user", body = UserResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an owner or operator", body = ErrorBody),
    (status = 404, description = "No such tenant or user", body = ErrorBody),
    (status = 409, description = "It is the last owner", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[patch("/tenants/{id}/users/{uid}")]
pub async fn update_user(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let uid = parse_user_id(&path.1)?;
    let row = state
        .control
        .update_user(actor.0, tenant_id, uid, body.role.as_deref(), body.disabled)
        .await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(&row)))
}

/// Deletes a user and its sessions. The last enabled owner cannot be deleted.
#[utoipa::path(tag = "users", params(("id" = String, Path, description = "Tenant id (UUID)"), ("uid" = String, Path, description = "User id (UUID)")), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an owner or operator", body = ErrorBody),
    (status = 404, description = "No such tenant or user", body = ErrorBody),
    (status = 409, description = "It is the last owner", body = ErrorBody),
))]
#[delete("/tenants/{id}/users/{uid}")]
pub async fn delete_user(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let uid = parse_user_id(&path.1)?;
    state.control.delete_user(actor.0, tenant_id, uid).await?;
    Ok(HttpResponse::NoContent().finish())
}
