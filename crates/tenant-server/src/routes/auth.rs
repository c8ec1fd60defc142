//! `/auth`: log in, refresh, log out, change one's password, accept an invite.
//!
//! `login`, `refresh` and `accept-invite` are public (they authenticate by their body); `logout`
//! and `password` need a user's access token.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use tenant_core::Secret;
use tenant_service::identity::login::LoginAttempt;
use tenant_service::identity::sessions::TokenPair;
use tenant_store::audit::AuditContext;
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson, Caller};
use crate::http::request_log::audit_context;
use crate::state::AppState;

/// The audit context of an unauthenticated request.
fn anonymous(req: &HttpRequest) -> AuditContext {
    audit_context(req, "anonymous", None)
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginRequest {
    /// The tenant's id or slug; absent for an operator login.
    #[schema(example = "acme")]
    pub tenant: Option<String>,
    /// Email.
    #[schema(example = "alice@example.com")]
    pub email: String,
    /// Password.
    #[schema(value_type = String)]
    pub password: Secret,
}

/// `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The refresh token.
    #[schema(value_type = String)]
    pub refresh_token: Secret,
}

/// `POST /auth/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    /// The current password.
    #[schema(value_type = String)]
    pub current_password: Secret,
    /// The new password: 12 characters to 1024 bytes.
    #[schema(value_type = String)]
    pub new_password: Secret,
}

/// `POST /auth/accept-invite`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AcceptInviteRequest {
    /// The invite token given when the user was created.
    #[schema(value_type = String)]
    pub token: Secret,
    /// The password to set: 12 characters to 1024 bytes.
    #[schema(value_type = String)]
    pub password: Secret,
}

/// An access token and a refresh token.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    /// Opaque token for `POST /auth/refresh`; each one works once.
    pub refresh_token: String,
    /// Seconds the refresh token is valid.
    pub refresh_expires_in: u64,
}

impl From<TokenPair> for TokenResponse {
    fn from(p: TokenPair) -> Self {
        Self {
            access_token: p.access_token.expose().to_owned(),
            token_type: "Bearer".into(),
            expires_in: p.expires_in,
            refresh_token: p.refresh_token.expose().to_owned(),
            refresh_expires_in: p.refresh_expires_in,
        }
    }
}

fn tokens(pair: TokenPair) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(TokenResponse::from(pair))
}

/// Logs in with a password: a tenant user (with `tenant`) or an operator (without). Wrong
/// passwords and unknown emails get the same answer; repeated failures are throttled (429).
#[utoipa::path(tag = "auth", request_body = LoginRequest, responses(
    (status = 200, description = "Logged in", body = TokenResponse),
    (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
    (status = 401, description = "Invalid email or password", body = ErrorBody),
    (status = 422, description = "Invalid email", body = ErrorBody),
    (status = 429, description = "Too many failures; see Retry-After", body = ErrorBody),
))]
#[post("/auth/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let attempt = LoginAttempt::parse(body.tenant, &body.email, body.password)?;
    let pair = state.control.login(anonymous(&req), attempt).await?;
    Ok(tokens(pair))
}

/// Exchanges a refresh token for a new pair. Each refresh token works once: presenting a used
/// one again revokes every token descended from the same login.
#[utoipa::path(tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, description = "New tokens", body = TokenResponse),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "Unknown, used, revoked or expired token", body = ErrorBody),
))]
#[post("/auth/refresh")]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let pair = state
        .control
        .refresh(anonymous(&req), body.refresh_token)
        .await?;
    Ok(tokens(pair))
}

/// Logs out: revokes the given refresh token and every token of its login.
#[utoipa::path(tag = "auth", request_body = RefreshRequest, security(("bearer" = [])), responses(
    (status = 204, description = "Logged out"),
    (status = 401, description = "No valid access token", body = ErrorBody),
    (status = 403, description = "Not a user's token", body = ErrorBody),
))]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    actor: Actor,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .control
        .logout(actor.0, &caller, body.refresh_token)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the caller's own password; every other session is logged out and a new pair is
/// returned.
#[utoipa::path(tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = [])), responses(
    (status = 200, description = "Password changed; new tokens", body = TokenResponse),
    (status = 401, description = "No valid access token, or wrong current password", body = ErrorBody),
    (status = 403, description = "Not a user's token", body = ErrorBody),
    (status = 422, description = "New password breaks the rules", body = ErrorBody),
    (status = 429, description = "Too many wrong current passwords", body = ErrorBody),
))]
#[post("/auth/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    actor: Actor,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let pair = state
        .control
        .change_password(actor.0, &caller, body.current_password, body.new_password)
        .await?;
    Ok(tokens(pair))
}

/// Sets the password of an invited user and logs them in.
#[utoipa::path(tag = "auth", request_body = AcceptInviteRequest, responses(
    (status = 200, description = "Password set; logged in", body = TokenResponse),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "Unknown, used or expired invite", body = ErrorBody),
    (status = 422, description = "Password breaks the rules", body = ErrorBody),
))]
#[post("/auth/accept-invite")]
pub async fn accept_invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    ApiJson(body): ApiJson<AcceptInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let pair = state
        .control
        .accept_invite(anonymous(&req), body.token, body.password)
        .await?;
    Ok(tokens(pair))
}
