//! The operator's webhook endpoints and events: rows of `webhook_endpoints`, `events` and
//! `webhook_deliveries` with no tenant (`tenant_id` NULL), read as the one [`Endpoint`] model
//! (`tenant_id: None`) and written through [`crate::webhooks`]' and [`crate::events`]' shared
//! row building, patching and inserts. The dispatcher delivers them like a tenant's (signed,
//! retried, with circuits; the outbox is the same table). Every tenant-scoped query filters on
//! `tenant_id = ?`, which a NULL never matches, and every finder here filters on
//! `tenant_id IS NULL`: a tenant never sees an operator endpoint or event, and the operator's
//! functions never touch a tenant's.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::crypto::KeyRing;
use crate::events::{self, Ingested, NewEvent};
use crate::schema::webhook_endpoints;
use crate::webhooks::{self, Endpoint, EndpointPatch, EndpointRow, NewEndpoint, NewEndpointRow};
use crate::{AnyConnection, StoreError, StoreResult, write_transaction};

/// The most endpoints the operator may have.
pub const MAX_OPERATOR_ENDPOINTS: i64 = 50;

/// Adds an operator endpoint (at most [`MAX_OPERATOR_ENDPOINTS`]), its secret sealed under the
/// ring's active key.
pub fn insert(
    conn: &mut AnyConnection,
    new: &NewEndpoint,
    now: DateTime<Utc>,
    ring: &KeyRing,
) -> StoreResult<Endpoint> {
    let (row, endpoint) = NewEndpointRow::seal_for(None, new, now, ring)?;
    write_transaction(conn, |c| {
        let count: i64 = webhook_endpoints::table
            .filter(webhook_endpoints::tenant_id.is_null())
            .count()
            .get_result(c)?;
        if count >= MAX_OPERATOR_ENDPOINTS {
            return Err(StoreError::Conflict {
                field: "url",
                message: format!(
                    "the operator may have at most {MAX_OPERATOR_ENDPOINTS} webhook endpoints"
                ),
            });
        }
        diesel::insert_into(webhook_endpoints::table)
            .values(&row)
            .execute(c)?;
        find(c, endpoint.id)
    })
}

/// One operator endpoint.
pub fn find(conn: &mut AnyConnection, id: Uuid) -> StoreResult<Endpoint> {
    webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.is_null())
        .filter(webhook_endpoints::id.eq(id.to_string()))
        .select(EndpointRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("webhook endpoint"))?
        .try_into()
}

/// Every operator endpoint, oldest first.
pub fn list(conn: &mut AnyConnection) -> StoreResult<Vec<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.is_null())
        .order((
            webhook_endpoints::created_at.asc(),
            webhook_endpoints::id.asc(),
        ))
        .select(EndpointRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Endpoint::try_from)
        .collect()
}

/// Applies a patch (enabling clears an automatic disable); returns the endpoint as stored.
pub fn update(
    conn: &mut AnyConnection,
    id: Uuid,
    patch: &EndpointPatch,
    now: DateTime<Utc>,
) -> StoreResult<Endpoint> {
    write_transaction(conn, |c| {
        let e = find(c, id)?;
        webhooks::apply(c, e, patch, now)?;
        find(c, id)
    })
}

/// Removes an operator endpoint and its deliveries.
pub fn delete(conn: &mut AnyConnection, id: Uuid) -> StoreResult<()> {
    webhooks::lock_for_delete(conn, &id.to_string())?;
    let n = diesel::delete(
        webhook_endpoints::table
            .filter(webhook_endpoints::tenant_id.is_null())
            .filter(webhook_endpoints::id.eq(id.to_string())),
    )
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("webhook endpoint"));
    }
    Ok(())
}

/// The enabled operator endpoints that want events of `event_type`.
pub fn subscribed(conn: &mut AnyConnection, event_type: &str) -> StoreResult<Vec<Endpoint>> {
    let rows = webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.is_null())
        .filter(webhook_endpoints::enabled.eq(true))
        .select(EndpointRow::as_select())
        .load(conn)?;
    webhooks::wanting(rows, event_type)
}

/// Stores an operator event and enqueues one delivery per enabled operator endpoint that wants
/// its type, in one transaction (the caller's, when it holds one: the event commits with the
/// state change it announces). A source id seen before stores nothing and answers
/// [`Ingested::Duplicate`].
pub fn ingest(
    conn: &mut AnyConnection,
    event: &NewEvent,
    now: DateTime<Utc>,
) -> StoreResult<Ingested> {
    write_transaction(conn, |c| {
        if let Some(earlier) = events::insert_once(c, None, event, now)? {
            return Ok(earlier);
        }
        let endpoints = subscribed(c, &event.event_type)?;
        for endpoint in &endpoints {
            events::enqueue_to(c, None, event.id, endpoint.id, now)?;
        }
        Ok(Ingested::Accepted {
            event_id: event.id,
            deliveries: endpoints.len(),
        })
    })
}
