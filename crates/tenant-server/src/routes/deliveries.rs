//! `/tenants/{id}/webhooks/{wid}/deliveries`: an endpoint's deliveries (dead letters included),
//! their attempts, and replay.

use actix_web::{HttpResponse, get, post, web};
use serde_json::json;
use tenant_core::PageRequest;
use tenant_store::deliveries as store;

use super::parse_tenant_id;
use super::webhooks::{parse_ids, parse_uuid};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::AppState;
use crate::webhook_dto::{
    AttemptResponse, DeliveryDetailResponse, DeliveryListResponse, DeliveryResponse,
    ListDeliveriesQuery,
};

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
    let status = match query.status.as_deref() {
        None => None,
        Some(s @ ("pending" | "succeeded" | "failed")) => Some(s.to_owned()),
        Some(_) => {
            return Err(ApiError::invalid(tenant_core::ValidationError::new(
                "status",
                "invalid_status",
                "must be pending, succeeded or failed",
            )));
        }
    };
    let page = state
        .run(move |c| Ok(store::list(c, &tenant_id, wid, status.as_deref(), &page)?))
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
    let (delivery, attempts) = state
        .run(move |c| Ok(store::find_with_attempts(c, &tenant_id, wid, did)?))
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryDetailResponse {
        delivery: DeliveryResponse::from(&delivery),
        attempts_log: attempts.iter().map(AttemptResponse::from).collect(),
    }))
}

/// Sends a finished delivery (a dead letter, or a success) again, with a fresh attempt budget.
#[utoipa::path(tag = "webhooks", params(
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
    actor: super::Actor,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let wid = parse_uuid("wid", &path.1)?;
    let did = parse_uuid("did", &path.2)?;
    let delivery = state
        .run(move |c| {
            let now = tenant_core::now();
            Ok(tenant_store::write_transaction(c, |c| {
                let d = store::replay(c, &tenant_id, wid, did, now)?;
                tenant_store::audit::record(
                    c,
                    &actor.0,
                    tenant_store::audit::AuditEvent {
                        tenant_id: Some(&tenant_id),
                        action: "webhook.delivery_replayed",
                        resource_type: "webhook_delivery",
                        resource_id: Some(did.to_string()),
                        details: Some(json!({ "endpointId": wid.to_string() })),
                    },
                    now,
                )?;
                Ok::<_, tenant_store::StoreError>(d)
            })?)
        })
        .await?;
    state.webhooks.wake.notify_one();
    Ok(HttpResponse::Accepted().json(DeliveryResponse::from(&delivery)))
}
