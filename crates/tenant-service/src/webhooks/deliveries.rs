//! An endpoint's deliveries: listing them (dead letters included) and their attempts, sending a
//! finished one again (replay, with its audit entry), and a test delivery.

use chrono::{DateTime, Utc};
use serde_json::json;
use tenant_core::{Page, PageRequest, TenantId, ValidationError};
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::deliveries::{self, AttemptRow, DeliveryRow};
use tenant_store::{AnyConnection, StoreError, StoreResult, write_transaction};
use uuid::Uuid;

use crate::error::ServiceResult;

/// The statuses a delivery can have: `failed` are the dead letters.
pub const STATUSES: [&str; 3] = ["pending", "succeeded", "failed"];

/// A status filter as asked for: one of [`STATUSES`].
pub fn parse_status(raw: Option<&str>) -> Result<Option<String>, ValidationError> {
    match raw {
        None => Ok(None),
        Some(s) if STATUSES.contains(&s) => Ok(Some(s.to_owned())),
        Some(_) => Err(ValidationError::new(
            "status",
            "invalid_status",
            "must be pending, succeeded or failed",
        )),
    }
}

/// An endpoint's deliveries, oldest first, optionally of one status (already checked by
/// [`parse_status`]).
pub fn list_deliveries(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    endpoint_id: Uuid,
    status: Option<&str>,
    page: &PageRequest,
) -> ServiceResult<Page<DeliveryRow>> {
    Ok(deliveries::list(
        conn,
        tenant_id,
        endpoint_id,
        status,
        page,
    )?)
}

/// One delivery with every attempt, in order.
pub fn find_delivery(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    endpoint_id: Uuid,
    delivery_id: Uuid,
) -> StoreResult<(DeliveryRow, Vec<AttemptRow>)> {
    deliveries::find_with_attempts(conn, tenant_id, endpoint_id, delivery_id)
}

/// Queues a finished delivery (a dead letter, or a success) again with a fresh attempt budget;
/// `webhook.delivery_replayed` is recorded in the same transaction. A pending one is a conflict.
pub fn replay_delivery(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    endpoint_id: Uuid,
    delivery_id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<DeliveryRow> {
    write_transaction(conn, |c| {
        let d = deliveries::replay(c, tenant_id, endpoint_id, delivery_id, now)?;
        audit::record(
            c,
            ctx,
            AuditEvent {
                tenant_id: Some(tenant_id),
                action: "webhook.delivery_replayed",
                resource_type: "webhook_delivery",
                resource_id: Some(delivery_id.to_string()),
                details: Some(json!({ "endpointId": endpoint_id.to_string() })),
            },
            now,
        )?;
        Ok::<_, StoreError>(d)
    })
}

/// Enqueues a `webhook.test` event for one endpoint (delivered like any other); returns the
/// delivery's id.
pub fn send_test(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    endpoint_id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<Uuid> {
    tenant_webhooks::ingest::enqueue_test(conn, tenant_id, endpoint_id, now)
}
