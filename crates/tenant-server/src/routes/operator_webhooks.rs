//! `/operator/webhooks`: the operator's webhook endpoints (operators only), which receive the
//! fleet's events (`tenant.unplaced`, `tenant.placed`, `gateway.stranded`) signed and retried
//! like a tenant's. They belong to no tenant: no tenant route lists or reaches them. The rules
//! are a tenant's endpoints' (`tenant_service::webhooks::operator`, on the same endpoint model
//! and service inputs as [`super::webhooks`]); `docs/webhooks.md` describes the events.
//!
//! The bodies keep schema names of their own because the contract differs: the requests list
//! the fleet's event types (not a tenant's), and the answer has no `tenantId`,
//! `previousSecretExpiresAt` or `delivery`.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenant_service::webhooks::endpoints::{NewWebhook, WebhookPatch};
use tenant_store::webhooks::Endpoint;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson, parse_uuid};
use crate::state::AppState;

super::webhooks::endpoint_requests! {
    /// `POST /operator/webhooks`.
    CreateOperatorWebhookRequest {
        url_example: "https://ops.example.com/hooks/fleet",
        /// Event types to deliver (`tenant.unplaced`, `tenant.placed`, `gateway.stranded`);
        /// absent or empty: all.
        event_types,
    }
    /// `PATCH /operator/webhooks/{oid}`: only the fields present change.
    UpdateOperatorWebhookRequest
}

/// An operator webhook endpoint (never its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorWebhookResponse {
    /// Endpoint id (UUID).
    pub id: String,
    /// Destination.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Event types delivered; empty: all.
    pub event_types: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// `gone` (answered 410) or `failing` (failed past the grace period) when disabled
    /// automatically.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&Endpoint> for OperatorWebhookResponse {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id.to_string(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A created operator endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorWebhookWithSecretResponse {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: OperatorWebhookResponse,
    /// `whsec_…`: verify deliveries with it. Not shown again.
    pub secret: String,
}

/// The operator's endpoints.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperatorWebhookListResponse {
    /// The endpoints, oldest first.
    pub webhooks: Vec<OperatorWebhookResponse>,
}

fn endpoint_id(raw: &str) -> Result<Uuid, ApiError> {
    parse_uuid("oid", raw)
}

/// Adds an operator endpoint; the answer carries its signing secret, shown only this once.
#[utoipa::path(tag = "webhooks", request_body = CreateOperatorWebhookRequest, security(("bearer" = [])), responses(
    (status = 201, description = "Created, with the secret", body = OperatorWebhookWithSecretResponse),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 409, description = "Too many endpoints (50)", body = ErrorBody),
    (status = 422, description = "Invalid URL (or a forbidden destination), event type or description", body = ErrorBody),
))]
#[post("/operator/webhooks")]
pub async fn create_operator_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateOperatorWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = NewWebhook::from(body);
    let (endpoint, secret) = state.control.create_operator_webhook(actor.0, new).await?;
    tracing::info!(webhook.id = %endpoint.id, "operator webhook endpoint created");
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((LOCATION, format!("/operator/webhooks/{}", endpoint.id)))
        // A secret shown once is not for caches.
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(OperatorWebhookWithSecretResponse {
            endpoint: OperatorWebhookResponse::from(&endpoint),
            secret: secret.expose().to_owned(),
        }))
}

/// Lists the operator's endpoints (at most 50).
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), responses(
    (status = 200, description = "The endpoints", body = OperatorWebhookListResponse),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
))]
#[get("/operator/webhooks")]
pub async fn list_operator_webhooks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = state.control.list_operator_webhooks().await?;
    Ok(HttpResponse::Ok().json(OperatorWebhookListResponse {
        webhooks: all.iter().map(OperatorWebhookResponse::from).collect(),
    }))
}

/// One operator endpoint.
#[utoipa::path(tag = "webhooks", params(("oid" = String, Path, description = "The operator endpoint's id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "The endpoint", body = OperatorWebhookResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such operator endpoint", body = ErrorBody),
))]
#[get("/operator/webhooks/{oid}")]
pub async fn get_operator_webhook(
    state: web::Data<AppState>,
    oid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = state.control.operator_webhook(endpoint_id(&oid)?).await?;
    Ok(HttpResponse::Ok().json(OperatorWebhookResponse::from(&endpoint)))
}

/// Changes an operator endpoint.
#[utoipa::path(tag = "webhooks", params(("oid" = String, Path, description = "The operator endpoint's id (UUID)")), request_body = UpdateOperatorWebhookRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The endpoint as it now is", body = OperatorWebhookResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such operator endpoint", body = ErrorBody),
    (status = 422, description = "Invalid URL, event type or description", body = ErrorBody),
))]
#[patch("/operator/webhooks/{oid}")]
pub async fn update_operator_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    oid: web::Path<String>,
    ApiJson(body): ApiJson<UpdateOperatorWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let patch = WebhookPatch::from(body);
    let endpoint = state
        .control
        .update_operator_webhook(actor.0, endpoint_id(&oid)?, patch)
        .await?;
    Ok(HttpResponse::Ok().json(OperatorWebhookResponse::from(&endpoint)))
}

/// Removes an operator endpoint and its deliveries.
#[utoipa::path(tag = "webhooks", params(("oid" = String, Path, description = "The operator endpoint's id (UUID)")), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such operator endpoint", body = ErrorBody),
))]
#[delete("/operator/webhooks/{oid}")]
pub async fn delete_operator_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    oid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .control
        .delete_operator_webhook(actor.0, endpoint_id(&oid)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
