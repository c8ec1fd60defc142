//! `/tenants/{id}/webhooks/{wid}/deliveries`: an endpoint's deliveries (dead letters included),
//! their attempts, and replay.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use tenant_core::PageRequest;
use tenant_store::deliveries::{AttemptRow, DeliveryRow};
use utoipa::{IntoParams, ToSchema};

use super::webhooks::parse_ids;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiQuery, parse_tenant_id, parse_uuid};
use crate::http::idempotency::{IdempotencyKeyHeader, OnceKey, answer, respond};
use crate::state::AppState;

/// Query of the deliveries list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListDeliveriesQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only `pending`, `succeeded` or `failed` (dead letters).
    pub status: Option<String>,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// One delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryResponse {
    /// Delivery id (UUID); the `webhook-id` header is `msg_` + its hex.
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The event.
    pub event_id: String,
    /// `pending`, `succeeded` or `failed` (a dead letter).
    pub status: String,
    /// Attempts made (since the last replay).
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last response status.
    pub last_status_code: Option<i32>,
    /// The last error.
    pub last_error: Option<String>,
    /// Enqueued.
    pub created_at: DateTime<Utc>,
    /// Finished.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&DeliveryRow> for DeliveryResponse {
    fn from(d: &DeliveryRow) -> Self {
        Self {
            id: d.id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            event_id: d.event_id.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            next_attempt_at: (d.status == "pending").then(|| utc(d.next_attempt_at)),
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            created_at: utc(d.created_at),
            completed_at: d.completed_at.map(utc),
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryListResponse {
    /// Deliveries, oldest first.
    pub deliveries: Vec<DeliveryResponse>,
    /// Cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
}

/// One attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptResponse {
    /// Its number (restarting at 1 after a replay).
    pub attempt: i32,
    /// `success`, `http_error`, `timeout`, `connect_error` or `refused`.
    pub outcome: String,
    /// The response status.
    pub status_code: Option<i32>,
    /// Milliseconds to the response or failure.
    pub latency_ms: i64,
    /// What went wrong.
    pub error: Option<String>,
    /// The first KiB of the response body.
    pub response_excerpt: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<&AttemptRow> for AttemptResponse {
    fn from(a: &AttemptRow) -> Self {
        Self {
            attempt: a.attempt,
            outcome: a.outcome.clone(),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error.clone(),
            response_excerpt: a.response_excerpt.clone(),
            created_at: utc(a.created_at),
        }
    }
}

/// A delivery with its attempts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDetailResponse {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: DeliveryResponse,
    /// Its attempts, in order.
    pub attempts_log: Vec<AttemptResponse>,
}

/// Lists an endpoint's deliveries, oldest first; `status=failed` lists the dead letters.
#[utoipa::path(tag = "webhooks", params(
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("wid" = String, Path, description = "Endpoint id (UUID)"),
    ListDeliveriesQuery,
), security(("bearer" = [])), responses(
    (status = 200, description = "A page of deliveries", body = DeliveryListResponse),
    (status = 400, description = "Malformed id or query", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant or endpoint", body = ErrorBody),
    (status = 422, description = "Invalid limit, cursor or status", body = ErrorBody),
))]
#[get("/tenants/{id}/webhooks/{wid}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    ApiQuery(query): ApiQuery<ListDeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, wid) = parse_ids(&path)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let page = state
        .control
        .list_deliveries(tenant_id, wid, query.status.as_deref(), page)
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryListResponse {
        deliveries: page.items.iter().map(DeliveryResponse::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// Reads one delivery with every attempt (status, latency, response excerpt).
#[utoipa::path(tag = "webhooks", params(
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("wid" = String, Path, description = "Endpoint id (UUID)"),
    ("did" = String, Path, description = "Delivery id (UUID)"),
), security(("bearer" = [])), responses(
    (status = 200, description = "The delivery and its attempts", body = DeliveryDetailResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant, endpoint or delivery", body = ErrorBody),
))]
#[get("/tenants/{id}/webhooks/{wid}/deliveries/{did}")]
pub async fn get_delivery(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let wid = parse_uuid("wid", &path.1)?;
    let did = parse_uuid("did", &path.2)?;
    let (delivery, attempts) = state.control.delivery(tenant_id, wid, did).await?;
    Ok(HttpResponse::Ok().json(DeliveryDetailResponse {
        delivery: DeliveryResponse::from(&delivery),
        attempts_log: attempts.iter().map(AttemptResponse::from).collect(),
    }))
}

/// Sends a finished delivery (a dead letter, or a success) again, with a fresh attempt budget.
#[utoipa::path(tag = "webhooks", params(IdempotencyKeyHeader, 
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("wid" = String, Path, description = "Endpoint id (UUID)"),
    ("did" = String, Path, description = "Delivery id (UUID)"),
), security(("bearer" = [])), responses(
    (status = 202, description = "Queued again", body = DeliveryResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant, endpoint or delivery", body = ErrorBody),
    (status = 409, description = "The delivery is still pending", body = ErrorBody),
))]
#[post("/tenants/{id}/webhooks/{wid}/deliveries/{did}/replay")]
pub async fn replay_delivery(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String, String)>,
    OnceKey(once): OnceKey,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let wid = parse_uuid("wid", &path.1)?;
    let did = parse_uuid("did", &path.2)?;
    let render = |delivery: &DeliveryRow| {
        answer(
            StatusCode::ACCEPTED,
            None,
            &DeliveryResponse::from(delivery),
        )
    };
    respond(&state, once, render, |once| {
        state
            .control
            .replay_delivery(actor.0, tenant_id, wid, did, once)
    })
    .await
}
