//! Use cases of the operator's webhook endpoints (`/operator/webhooks`, operators only): a
//! tenant's endpoints' rules, secrets and audit ([`super::endpoints`], with
//! [`EndpointOwner::Operator`]'s event types: the fleet's), on endpoints owned by no tenant.
//! Each change is one transaction with its audit row (no tenant: the operator's audit log).

use tenant_core::Secret;
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::crypto::KeyRing;
use tenant_store::operator_webhooks as store;
use tenant_store::webhooks::{Endpoint, EndpointPatch, NewEndpoint};
use tenant_store::{AnyConnection, write_transaction};
use uuid::Uuid;

use super::endpoints::{EndpointOwner, created_details, updated_details, with_new_secret};
use crate::error::ServiceResult;

/// Whose endpoints these are: the event types they may subscribe to.
pub const OWNER: EndpointOwner = EndpointOwner::Operator;

fn endpoint_event(
    action: &'static str,
    id: Uuid,
    details: Option<serde_json::Value>,
) -> AuditEvent<'static> {
    AuditEvent {
        tenant_id: None,
        action,
        resource_type: "operator_webhook_endpoint",
        resource_id: Some(id.to_string()),
        details,
    }
}

/// Creates an operator endpoint (checked with [`OWNER`]) with a new secret; returns both (the
/// secret is shown once).
pub fn create(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    new: NewEndpoint,
    ring: &KeyRing,
) -> ServiceResult<(Endpoint, Secret)> {
    let (new, shown) = with_new_secret(new);
    Ok(write_transaction(conn, |c| {
        let now = tenant_core::now();
        let endpoint = store::insert(c, &new, now, ring)?;
        let details = created_details(&endpoint);
        let event = endpoint_event("operator_webhook.created", endpoint.id, Some(details));
        audit::record(c, ctx, event, now)?;
        Ok::<_, tenant_store::StoreError>((endpoint, shown))
    })?)
}

/// Every operator endpoint, oldest first.
pub fn list(conn: &mut AnyConnection) -> ServiceResult<Vec<Endpoint>> {
    Ok(store::list(conn)?)
}

/// One operator endpoint.
pub fn find(conn: &mut AnyConnection, id: Uuid) -> ServiceResult<Endpoint> {
    Ok(store::find(conn, id)?)
}

/// Changes an operator endpoint (the patch checked with [`OWNER`]).
pub fn update(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    id: Uuid,
    patch: EndpointPatch,
) -> ServiceResult<Endpoint> {
    Ok(write_transaction(conn, |c| {
        let now = tenant_core::now();
        let event = endpoint_event(
            "operator_webhook.updated",
            id,
            Some(updated_details(&patch)),
        );
        let endpoint = store::update(c, id, &patch, now)?;
        audit::record(c, ctx, event, now)?;
        Ok::<_, tenant_store::StoreError>(endpoint)
    })?)
}

/// Removes an operator endpoint and its deliveries.
pub fn delete(conn: &mut AnyConnection, ctx: &AuditContext, id: Uuid) -> ServiceResult<()> {
    Ok(write_transaction(conn, |c| {
        let now = tenant_core::now();
        store::delete(c, id)?;
        audit::record(
            c,
            ctx,
            endpoint_event("operator_webhook.deleted", id, None),
            now,
        )
    })?)
}
