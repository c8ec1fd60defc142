//! `/operators`: operator users (people who see every tenant). Operators only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenant_core::Secret;
use tenant_service::identity::users::NewOperator;
use tenant_store::operator_users::OperatorUserRow;
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Actor;
use crate::http::idempotency::{IdempotencyKeyHeader, OnceJson, answer, respond};
use crate::state::AppState;

/// `POST /operators`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateOperatorRequest {
    /// Email, unique among operators.
    #[schema(example = "ops@example.com")]
    pub email: String,
    /// Password: 12 characters to 1024 bytes.
    #[schema(value_type = String)]
    pub password: Secret,
}

/// An operator user (never its password).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorResponse {
    /// Operator id (UUID).
    pub id: String,
    /// Email.
    pub email: String,
    /// Disabled operators cannot log in.
    pub disabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<&OperatorUserRow> for OperatorResponse {
    fn from(o: &OperatorUserRow) -> Self {
        Self {
            id: o.id.clone(),
            email: o.email.clone(),
            disabled: o.disabled,
            created_at: o.created_at.and_utc(),
            last_login_at: o.last_login_at.map(|t| t.and_utc()),
        }
    }
}

/// Every operator user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperatorListResponse {
    /// The operators, oldest first.
    pub operators: Vec<OperatorResponse>,
}

/// Creates an operator user, who then logs in at `POST /auth/login` without a tenant.
#[utoipa::path(tag = "operators", params(IdempotencyKeyHeader), request_body = CreateOperatorRequest, security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = OperatorResponse),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 409, description = "Email taken", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[post("/operators")]
pub async fn create_operator(
    state: web::Data<AppState>,
    actor: Actor,
    OnceJson(body, once): OnceJson<CreateOperatorRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = NewOperator {
        email: body.email,
        password: body.password,
    };
    let render =
        |row: &OperatorUserRow| answer(StatusCode::CREATED, None, &OperatorResponse::from(row));
    respond(&state, once, render, |once| {
        state.control.create_operator(actor.0, new, once)
    })
    .await
}

/// Lists the operator users.
#[utoipa::path(tag = "operators", security(("bearer" = [])), responses(
    (status = 200, description = "The operators", body = OperatorListResponse),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
))]
#[get("/operators")]
pub async fn list_operators(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rows = state.control.list_operators().await?;
    Ok(HttpResponse::Ok().json(OperatorListResponse {
        operators: rows.iter().map(OperatorResponse::from).collect(),
    }))
}
