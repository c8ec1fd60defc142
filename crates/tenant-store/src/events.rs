//! Events from the gateway, and the outbox: storing an event and enqueuing one delivery per
//! subscribed endpoint happen in one transaction, so an accepted event is never lost and never
//! delivered without being stored.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use tenant_core::TenantId;
use uuid::Uuid;

use crate::schema::{events, tenants, webhook_deliveries};
use crate::sessions::SessionSeen;
use crate::{AnyConnection, StoreError, StoreResult, write_transaction};

/// A delivery's status while it still has attempts to make.
pub const STATUS_PENDING: &str = "pending";
/// A delivery's status once an endpoint answered 2xx.
pub const STATUS_SUCCEEDED: &str = "succeeded";
/// A delivery's status once it is exhausted or its endpoint disabled: a dead letter.
pub const STATUS_FAILED: &str = "failed";

/// An event to store, with its exact delivery body.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Our id of the event.
    pub id: Uuid,
    /// The producer (`gateway`, `test`, …).
    pub source: String,
    /// The producer's id of the event: a repeated one is accepted once.
    pub source_id: String,
    /// The event type, e.g. `message.received`.
    pub event_type: String,
    /// The JSON body delivered to endpoints, exactly as sent.
    pub payload: String,
}

/// What storing an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored, with this many deliveries enqueued.
    Accepted {
        /// Our id of the event.
        event_id: Uuid,
        /// Deliveries enqueued.
        deliveries: usize,
    },
    /// The source id was seen before: nothing was stored.
    Duplicate {
        /// Our id of the earlier event.
        event_id: Uuid,
    },
}

/// The tenant whose gateway account id is `account_id`, if any.
pub fn tenant_by_account(
    conn: &mut AnyConnection,
    account_id: &str,
) -> StoreResult<Option<TenantId>> {
    let id: Option<String> = tenants::table
        .filter(tenants::account_id.eq(account_id))
        .filter(tenants::deleted_at.is_null())
        .select(tenants::id)
        .first(conn)
        .optional()?;
    parse_tenant(id)
}

/// The tenant whose gateway agent id is `agent_id`, if any.
pub fn tenant_by_agent(conn: &mut AnyConnection, agent_id: &str) -> StoreResult<Option<TenantId>> {
    let id: Option<String> = tenants::table
        .filter(tenants::agent_id.eq(agent_id))
        .filter(tenants::deleted_at.is_null())
        .select(tenants::id)
        .first(conn)
        .optional()?;
    parse_tenant(id)
}

fn parse_tenant(id: Option<String>) -> StoreResult<Option<TenantId>> {
    id.map(crate::tenants::stored_id).transpose()
}

/// Stores an event for a tenant, records the session it names, and enqueues one delivery per
/// enabled endpoint that wants its type, all in one transaction. A source id seen before stores
/// nothing and answers [`Ingested::Duplicate`].
pub fn ingest(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    event: &NewEvent,
    session: Option<&SessionSeen>,
    now: DateTime<Utc>,
) -> StoreResult<Ingested> {
    ingest_metered(conn, tenant_id, event, session, now, true)
}

/// [`ingest`], adding a newly stored message to the tenant's usage only if `meter` (a batch
/// that sums its messages per tenant and period passes `false`, and adds them itself in the
/// same transaction: see [`crate::event_batch::store_many`]).
pub(crate) fn ingest_metered(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    event: &NewEvent,
    session: Option<&SessionSeen>,
    now: DateTime<Utc>,
    meter: bool,
) -> StoreResult<Ingested> {
    write_transaction(conn, |c| {
        if let Some(earlier) = insert_once(c, Some(tenant_id.to_string()), event, now)? {
            return Ok(earlier);
        }
        if let Some(s) = session {
            crate::sessions::upsert(c, tenant_id, s, now)?;
        }
        // Metered in the transaction that stores the event: only a new event counts.
        if meter && crate::usage::is_metered(&event.event_type) {
            crate::usage::add_messages(c, tenant_id, &crate::usage::period_of(now), 1)?;
        }
        let endpoints = crate::webhooks::subscribed(c, tenant_id, &event.event_type)?;
        for endpoint in &endpoints {
            enqueue(c, tenant_id, event.id, endpoint.id, now)?;
        }
        Ok(Ingested::Accepted {
            event_id: event.id,
            deliveries: endpoints.len(),
        })
    })
}

/// Stores an event of a tenant or (`None`) of the operator unless its source id was seen before:
/// then nothing is stored and the answer is [`Ingested::Duplicate`]. The caller holds the
/// transaction.
pub(crate) fn insert_once(
    c: &mut AnyConnection,
    tenant_id: Option<String>,
    event: &NewEvent,
    now: DateTime<Utc>,
) -> StoreResult<Option<Ingested>> {
    // One statement decides idempotency: a repeated source id inserts nothing.
    // `ON CONFLICT` is not in Diesel's common dialect, so each backend runs it itself.
    macro_rules! insert_new {
        ($conn:expr) => {
            diesel::insert_into(events::table)
                .values((
                    events::id.eq(event.id.to_string()),
                    events::tenant_id.eq(tenant_id),
                    events::source.eq(&event.source),
                    events::source_id.eq(&event.source_id),
                    events::event_type.eq(&event.event_type),
                    events::payload.eq(&event.payload),
                    events::created_at.eq(now.naive_utc()),
                ))
                .on_conflict((events::source, events::source_id))
                .do_nothing()
                .execute($conn)?
        };
    }
    let inserted = match c {
        AnyConnection::Postgresql(pg) => insert_new!(pg),
        AnyConnection::Sqlite(lite) => insert_new!(lite),
    };
    if inserted > 0 {
        return Ok(None);
    }
    let id =
        find_by_source(c, &event.source, &event.source_id)?.ok_or(StoreError::NotFound("event"))?;
    Ok(Some(Ingested::Duplicate { event_id: id }))
}

/// Stores an event without enqueuing anything (the caller enqueues deliveries itself).
pub fn insert_only(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    event: &NewEvent,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    diesel::insert_into(events::table)
        .values((
            events::id.eq(event.id.to_string()),
            events::tenant_id.eq(tenant_id.to_string()),
            events::source.eq(&event.source),
            events::source_id.eq(&event.source_id),
            events::event_type.eq(&event.event_type),
            events::payload.eq(&event.payload),
            events::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Enqueues one delivery of an event to an endpoint, due at `now`; returns its id.
pub fn enqueue(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    event_id: Uuid,
    endpoint_id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<Uuid> {
    enqueue_to(
        conn,
        Some(tenant_id.to_string()),
        event_id,
        endpoint_id,
        now,
    )
}

/// [`enqueue`] for a tenant's endpoint or (`None`) the operator's.
pub(crate) fn enqueue_to(
    conn: &mut AnyConnection,
    tenant_id: Option<String>,
    event_id: Uuid,
    endpoint_id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<Uuid> {
    let id = Uuid::new_v4();
    diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::id.eq(id.to_string()),
            webhook_deliveries::tenant_id.eq(tenant_id),
            webhook_deliveries::endpoint_id.eq(endpoint_id.to_string()),
            webhook_deliveries::event_id.eq(event_id.to_string()),
            webhook_deliveries::status.eq(STATUS_PENDING),
            webhook_deliveries::attempts.eq(0),
            webhook_deliveries::next_attempt_at.eq(now.naive_utc()),
            webhook_deliveries::created_at.eq(now.naive_utc()),
            webhook_deliveries::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(id)
}

fn find_by_source(
    conn: &mut AnyConnection,
    source: &str,
    source_id: &str,
) -> StoreResult<Option<Uuid>> {
    let id: Option<String> = events::table
        .filter(events::source.eq(source))
        .filter(events::source_id.eq(source_id))
        .select(events::id)
        .first(conn)
        .optional()?;
    id.map(|id| {
        Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt {
            table: "events",
            id: id.clone(),
            reason: e.to_string(),
        })
    })
    .transpose()
}
