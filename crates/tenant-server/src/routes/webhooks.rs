//! `/tenants/{id}/webhooks`: a tenant's webhook endpoints, their secrets and test deliveries.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenant_service::webhooks::endpoints::{NewWebhook, WebhookPatch};
use tenant_store::webhooks::Endpoint;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson, parse_tenant_id, parse_uuid};
use crate::http::idempotency::{IdempotencyKeyHeader, OnceJson, OnceKey, respond, secret_answer};
use crate::state::AppState;

/// Declares an owner's create and update bodies of webhook endpoints and their conversions to
/// the service's inputs ([`NewWebhook`], [`WebhookPatch`]). The fields are the same for every
/// owner (a tenant, the operator) and written once, here; the schema names and the words on
/// them are the owner's, since the contract lists other event types for each.
macro_rules! endpoint_requests {
    (
        $(#[doc = $create_doc:literal])*
        $create:ident {
            url_example: $example:tt,
            $(#[doc = $types_doc:literal])*
            event_types,
        }
        $(#[doc = $update_doc:literal])*
        $update:ident
    ) => {
        $(#[doc = $create_doc])*
        #[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $create {
            /// Where deliveries are POSTed (`https://…`; `http://` unless https is required).
            #[schema(example = $example)]
            pub url: String,
            $(#[doc = $types_doc])*
            pub event_types: Option<Vec<String>>,
            /// Free text, at most 500 characters.
            pub description: Option<String>,
            /// Whether deliveries are made (default true).
            pub enabled: Option<bool>,
        }

        impl From<$create> for tenant_service::webhooks::endpoints::NewWebhook {
            fn from(body: $create) -> Self {
                Self {
                    url: body.url,
                    description: body.description,
                    event_types: body.event_types,
                    enabled: body.enabled,
                }
            }
        }

        $(#[doc = $update_doc])*
        #[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $update {
            /// New URL.
            pub url: Option<String>,
            /// New filter (empty: all).
            pub event_types: Option<Vec<String>>,
            /// New description; `null` clears it.
            #[serde(default, deserialize_with = "crate::http::extract::double_option")]
            #[schema(value_type = Option<String>)]
            pub description: Option<Option<String>>,
            /// Enable (also clears an automatic disable) or disable.
            pub enabled: Option<bool>,
        }

        impl From<$update> for tenant_service::webhooks::endpoints::WebhookPatch {
            fn from(body: $update) -> Self {
                Self {
                    url: body.url,
                    description: body.description,
                    event_types: body.event_types,
                    enabled: body.enabled,
                }
            }
        }
    };
}
pub(crate) use endpoint_requests;

endpoint_requests! {
    /// `POST /tenants/{id}/webhooks`.
    CreateWebhookRequest {
        url_example: "https://example.com/hooks/moltbot",
        /// Event types to deliver; absent or empty: all.
        event_types,
    }
    /// `PATCH /tenants/{id}/webhooks/{wid}`: only the fields present change.
    UpdateWebhookRequest
}

/// A webhook endpoint (never its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResponse {
    /// Endpoint id (UUID).
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
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
    /// Until when deliveries also carry the previous secret's signature.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Its delivery queue and circuit (on reads: `GET` one endpoint or the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryStateResponse>,
}

/// An endpoint's delivery queue and circuit, now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStateResponse {
    /// `closed` (deliveries flow), `open` (the endpoint kept timing out or refusing
    /// connections: its deliveries wait until `retryAt`) or `half-open` (one probe delivery
    /// is out).
    #[schema(example = "closed")]
    pub circuit: String,
    /// Open: when one delivery probes the endpoint again.
    pub retry_at: Option<DateTime<Utc>>,
    /// Consecutive timeouts and connection failures.
    pub consecutive_failures: i32,
    /// Deliveries being sent now, by every dispatcher.
    pub in_flight: i64,
    /// Deliveries not finished (in flight included).
    pub pending: i64,
    /// When the oldest delivery that waits to be sent fell due (none waits: `null`).
    pub oldest_due_at: Option<DateTime<Utc>>,
}

impl From<&Endpoint> for WebhookResponse {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id.to_string(),
            // Only a tenant's endpoints reach this answer (the operator's have their own).
            tenant_id: e.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since,
            previous_secret_expires_at: e.previous_secret_expires_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
            delivery: e.queue.as_ref().map(|q| DeliveryStateResponse {
                circuit: q.circuit.clone(),
                retry_at: q.retry_at,
                consecutive_failures: q.failures,
                in_flight: q.in_flight,
                pending: q.pending,
                oldest_due_at: q.oldest_due_at,
            }),
        }
    }
}

/// A created endpoint (or a rotated secret) with its signing secret, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecretResponse {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: WebhookResponse,
    /// `whsec_…`: verify deliveries with it. Not shown again.
    pub secret: String,
}

/// A tenant's endpoints.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookListResponse {
    /// The endpoints, oldest first.
    pub webhooks: Vec<WebhookResponse>,
}

/// Parses `/tenants/{id}/webhooks/{wid}`.
pub fn parse_ids(path: &(String, String)) -> Result<(tenant_core::TenantId, Uuid), ApiError> {
    Ok((parse_tenant_id(&path.0)?, parse_uuid("wid", &path.1)?))
}

/// Adds an endpoint; the answer carries its signing secret, shown only this once.
#[utoipa::path(tag = "webhooks", params(IdempotencyKeyHeader, ("id" = String, Path, description = "Tenant id (UUID)")), request_body = CreateWebhookRequest, security(("bearer" = [])), responses(
    (status = 201, description = "Created, with the secret", body = WebhookWithSecretResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "Too many endpoints", body = ErrorBody),
    (status = 422, description = "Invalid URL (or a forbidden destination), event type or description", body = ErrorBody),
))]
#[post("/tenants/{id}/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    OnceJson(body, once): OnceJson<CreateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let new = NewWebhook::from(body);
    let render = move |(endpoint, secret): &(Endpoint, tenant_core::Secret)| {
        secret_answer(
            StatusCode::CREATED,
            Some(format!("/tenants/{tenant_id}/webhooks/{}", endpoint.id)),
            &WebhookWithSecretResponse {
                endpoint: WebhookResponse::from(endpoint),
                secret: secret.expose().to_owned(),
            },
        )
    };
    let control = &state.control;
    respond(&state, once, render, |once| async move {
        let created = control.create_webhook(actor.0, tenant_id, new, once)
            .await?;
        tracing::info!(tenant.id = %tenant_id, webhook.id = %created.0.id, "webhook endpoint created");
        Ok(created)
    })
    .await
}

/// Lists a tenant's endpoints (at most 50).
#[utoipa::path(tag = "webhooks", params(("id" = String, Path, description = "Tenant id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "The endpoints", body = WebhookListResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
))]
#[get("/tenants/{id}/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let endpoints = state.control.list_webhooks(tenant_id).await?;
    Ok(HttpResponse::Ok().json(WebhookListResponse {
        webhooks: endpoints.iter().map(WebhookResponse::from).collect(),
    }))
}

/// Reads one endpoint.
#[utoipa::path(tag = "webhooks", params(
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("wid" = String, Path, description = "Endpoint id (UUID)"),
), security(("bearer" = [])), responses(
    (status = 200, description = "The endpoint", body = WebhookResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant or endpoint", body = ErrorBody),
))]
#[get("/tenants/{id}/webhooks/{wid}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, wid) = parse_ids(&path)?;
    let endpoint = state.control.webhook(tenant_id, wid).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(&endpoint)))
}

/// Changes an endpoint: URL, filter, description, enabled (enabling clears an automatic disable).
#[utoipa::path(tag = "webhooks", params(
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("wid" = String, Path, description = "Endpoint id (UUID)"),
), request_body = UpdateWebhookRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The updated endpoint", body = WebhookResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant or endpoint", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[patch("/tenants/{id}/webhooks/{wid}")]
pub async fn update_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, wid) = parse_ids(&path)?;
    let patch = WebhookPatch::from(body);
    let endpoint = state
        .control
        .update_webhook(actor.0, tenant_id, wid, patch)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(&endpoint)))
}

/// Removes an endpoint and its delivery history.
#[utoipa::path(tag = "webhooks", params(
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("wid" = String, Path, description = "Endpoint id (UUID)"),
), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant or endpoint", body = ErrorBody),
))]
#[delete("/tenants/{id}/webhooks/{wid}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, wid) = parse_ids(&path)?;
    state
        .control
        .delete_webhook(actor.0, tenant_id, wid)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotates the signing secret: the new one (shown once) signs from now on, and the old one also
/// signs until the overlap window (`SAAS_WEBHOOK_SECRET_OVERLAP_SECS`) ends.
#[utoipa::path(tag = "webhooks", params(
    IdempotencyKeyHeader,
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("wid" = String, Path, description = "Endpoint id (UUID)"),
), security(("bearer" = [])), responses(
    (status = 200, description = "The endpoint with its new secret", body = WebhookWithSecretResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant or endpoint", body = ErrorBody),
))]
#[post("/tenants/{id}/webhooks/{wid}/rotate-secret")]
pub async fn rotate_webhook_secret(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
    OnceKey(once): OnceKey,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, wid) = parse_ids(&path)?;
    let render = |(endpoint, secret): &(Endpoint, tenant_core::Secret)| {
        secret_answer(
            StatusCode::OK,
            None,
            &WebhookWithSecretResponse {
                endpoint: WebhookResponse::from(endpoint),
                secret: secret.expose().to_owned(),
            },
        )
    };
    respond(&state, once, render, |once| {
        state
            .control
            .rotate_webhook_secret(actor.0, tenant_id, wid, once)
    })
    .await
}

/// Sends a `webhook.test` event to this endpoint (through the queue, like any delivery).
#[utoipa::path(tag = "webhooks", params(
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("wid" = String, Path, description = "Endpoint id (UUID)"),
), security(("bearer" = [])), responses(
    (status = 202, description = "Enqueued; `deliveryId` names the delivery"),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant or endpoint", body = ErrorBody),
))]
#[post("/tenants/{id}/webhooks/{wid}/test")]
pub async fn test_webhook(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, wid) = parse_ids(&path)?;
    let delivery = state.control.test_webhook(tenant_id, wid).await?;
    Ok(HttpResponse::Accepted().json(json!({ "deliveryId": delivery.to_string() })))
}
