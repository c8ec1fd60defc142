//! The operator's webhook endpoints and events: rows of `webhook_endpoints`, `events` and
//! `webhook_deliveries` with no tenant (`tenant_id` NULL). The dispatcher delivers them like a
//! tenant's (signed, retried, with circuits; the outbox is the same table). Every tenant-scoped
//! query filters on `tenant_id = ?`, which a NULL never matches, and every function here filters
//! on `tenant_id IS NULL`: a tenant never sees an operator endpoint or event, and the operator's
//! functions never touch a tenant's.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::crypto::KeyRing;
use crate::events::{Ingested, NewEvent, STATUS_PENDING};
use crate::schema::{events, webhook_deliveries, webhook_endpoints};
use crate::webhook_secrets::{self, OPERATOR_OWNER};
use crate::webhooks::{EndpointPatch, EndpointRow, NewEndpoint, encode_types};
use crate::{AnyConnection, StoreError, StoreResult, write_transaction};

/// The most endpoints the operator may have.
pub const MAX_OPERATOR_ENDPOINTS: i64 = 50;

/// An operator webhook endpoint, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorEndpoint {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// The event types delivered; empty means all.
    pub event_types: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it was disabled automatically (`gone`, `failing`), if it was.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed, while it does.
    pub failing_since: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl OperatorEndpoint {
    /// Whether events of this type go to this endpoint.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

impl TryFrom<EndpointRow> for OperatorEndpoint {
    type Error = StoreError;

    fn try_from(r: EndpointRow) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            table: "webhook_endpoints",
            id: r.id.clone(),
            reason,
        };
        if r.tenant_id.is_some() {
            return Err(corrupt("a tenant's endpoint read as the operator's".into()));
        }
        Ok(Self {
            id: Uuid::parse_str(&r.id).map_err(|e| corrupt(e.to_string()))?,
            event_types: serde_json::from_str(&r.event_types)
                .map_err(|e| corrupt(e.to_string()))?,
            url: r.url,
            description: r.description,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            failing_since: r.failing_since.map(|t| t.and_utc()),
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        })
    }
}

/// Adds an operator endpoint (at most [`MAX_OPERATOR_ENDPOINTS`]), its secret sealed under the
/// ring's active key.
pub fn insert(
    conn: &mut AnyConnection,
    new: &NewEndpoint,
    now: DateTime<Utc>,
    ring: &KeyRing,
) -> StoreResult<OperatorEndpoint> {
    let id = Uuid::new_v4();
    let key = id.to_string();
    let sealed = webhook_secrets::seal(ring, OPERATOR_OWNER, &key, new.secret.expose())?;
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
            .values((
                webhook_endpoints::id.eq(&key),
                webhook_endpoints::tenant_id.eq(None::<String>),
                webhook_endpoints::url.eq(&new.url),
                webhook_endpoints::description.eq(&new.description),
                webhook_endpoints::event_types.eq(encode_types(&new.event_types)),
                webhook_endpoints::secret.eq(&sealed.value),
                webhook_endpoints::secret_key_id.eq(&sealed.key_id),
                webhook_endpoints::enabled.eq(new.enabled),
                webhook_endpoints::created_at.eq(now.naive_utc()),
                webhook_endpoints::updated_at.eq(now.naive_utc()),
            ))
            .execute(c)?;
        find(c, id)
    })
}

/// One operator endpoint.
pub fn find(conn: &mut AnyConnection, id: Uuid) -> StoreResult<OperatorEndpoint> {
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
pub fn list(conn: &mut AnyConnection) -> StoreResult<Vec<OperatorEndpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.is_null())
        .order((
            webhook_endpoints::created_at.asc(),
            webhook_endpoints::id.asc(),
        ))
        .select(EndpointRow::as_select())
        .load(conn)?
        .into_iter()
        .map(OperatorEndpoint::try_from)
        .collect()
}

/// Applies a patch (enabling clears an automatic disable); returns the endpoint as stored.
pub fn update(
    conn: &mut AnyConnection,
    id: Uuid,
    patch: &EndpointPatch,
    now: DateTime<Utc>,
) -> StoreResult<OperatorEndpoint> {
    write_transaction(conn, |c| {
        let mut e = find(c, id)?;
        if let Some(url) = &patch.url {
            e.url.clone_from(url);
        }
        if let Some(d) = &patch.description {
            e.description.clone_from(d);
        }
        if let Some(t) = &patch.event_types {
            e.event_types.clone_from(t);
        }
        if let Some(enabled) = patch.enabled {
            if enabled && !e.enabled {
                e.disabled_reason = None;
                e.failing_since = None;
            }
            e.enabled = enabled;
        }
        diesel::update(
            webhook_endpoints::table
                .filter(webhook_endpoints::tenant_id.is_null())
                .filter(webhook_endpoints::id.eq(id.to_string())),
        )
        .set((
            webhook_endpoints::url.eq(&e.url),
            webhook_endpoints::description.eq(&e.description),
            webhook_endpoints::event_types.eq(encode_types(&e.event_types)),
            webhook_endpoints::enabled.eq(e.enabled),
            webhook_endpoints::disabled_reason.eq(&e.disabled_reason),
            webhook_endpoints::failing_since.eq(e.failing_since.map(|t| t.naive_utc())),
            webhook_endpoints::updated_at.eq(now.naive_utc()),
        ))
        .execute(c)?;
        find(c, id)
    })
}

/// Removes an operator endpoint and its deliveries.
pub fn delete(conn: &mut AnyConnection, id: Uuid) -> StoreResult<()> {
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
pub fn subscribed(
    conn: &mut AnyConnection,
    event_type: &str,
) -> StoreResult<Vec<OperatorEndpoint>> {
    let rows = webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.is_null())
        .filter(webhook_endpoints::enabled.eq(true))
        .select(EndpointRow::as_select())
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let e = OperatorEndpoint::try_from(row)?;
        if e.wants(event_type) {
            out.push(e);
        }
    }
    Ok(out)
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
        macro_rules! insert_new {
            ($conn:expr) => {
                diesel::insert_into(events::table)
                    .values((
                        events::id.eq(event.id.to_string()),
                        events::tenant_id.eq(None::<String>),
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
        if inserted == 0 {
            let id: String = events::table
                .filter(events::source.eq(&event.source))
                .filter(events::source_id.eq(&event.source_id))
                .select(events::id)
                .first(c)?;
            let event_id = Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt {
                table: "events",
                id: id.clone(),
                reason: e.to_string(),
            })?;
            return Ok(Ingested::Duplicate { event_id });
        }
        let endpoints = subscribed(c, &event.event_type)?;
        let at: NaiveDateTime = now.naive_utc();
        for endpoint in &endpoints {
            diesel::insert_into(webhook_deliveries::table)
                .values((
                    webhook_deliveries::id.eq(Uuid::new_v4().to_string()),
                    webhook_deliveries::tenant_id.eq(None::<String>),
                    webhook_deliveries::endpoint_id.eq(endpoint.id.to_string()),
                    webhook_deliveries::event_id.eq(event.id.to_string()),
                    webhook_deliveries::status.eq(STATUS_PENDING),
                    webhook_deliveries::attempts.eq(0),
                    webhook_deliveries::next_attempt_at.eq(at),
                    webhook_deliveries::created_at.eq(at),
                    webhook_deliveries::updated_at.eq(at),
                ))
                .execute(c)?;
        }
        Ok(Ingested::Accepted {
            event_id: event.id,
            deliveries: endpoints.len(),
        })
    })
}
