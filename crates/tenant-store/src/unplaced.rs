//! Tenants waiting for room: live tenants whose placement is `unplaced` (no gateway had room
//! when they were placed), read oldest first in bounded batches so that placing a big backlog
//! never holds the fleet lock for long. The partial index `tenant_placements_unplaced` keeps
//! every read here to the waiting rows, so asking "is anyone waiting?" costs one index probe
//! when nobody is. The rules are the service's (`tenant_service::fleet::pending`).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::TenantId;

use crate::schema::{tenant_placements, tenants};
use crate::{AnyConnection, StoreError, StoreResult};

/// A tenant waiting for room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its plan, as stored.
    pub plan: String,
    /// An operator asked for a dedicated gateway when creating it.
    pub dedicated: bool,
    /// When it was created (the order it waits in).
    pub created_at: DateTime<Utc>,
}

/// The placements of live tenants waiting for room, joined with their tenants. The state is
/// written as a literal, not a bound parameter: SQLite uses a partial index only for a query
/// whose own terms imply the index's `WHERE` when it is prepared, and `state = ?` does not (with
/// it SQLite read every placement row: 8.7 ms at 100,000 tenants, against microseconds).
macro_rules! live_unplaced {
    () => {
        tenant_placements::table
            .inner_join(tenants::table)
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "tenant_placements.state = 'unplaced'",
            ))
            .filter(tenants::deleted_at.is_null())
    };
}

/// Whether any live tenant waits for room.
pub fn any(conn: &mut AnyConnection) -> StoreResult<bool> {
    let first: Option<String> = live_unplaced!()
        .select(tenant_placements::tenant_id)
        .first(conn)
        .optional()?;
    Ok(first.is_some())
}

/// How many live tenants wait for room.
pub fn count(conn: &mut AnyConnection) -> StoreResult<i64> {
    Ok(live_unplaced!().count().get_result(conn)?)
}

/// Up to `limit` waiting tenants, oldest first (creation time, then id), after `after` (the
/// last one of the previous batch).
pub fn batch(
    conn: &mut AnyConnection,
    after: Option<&Waiting>,
    limit: i64,
) -> StoreResult<Vec<Waiting>> {
    let mut query = live_unplaced!()
        .order((tenants::created_at.asc(), tenants::id.asc()))
        .limit(limit)
        .select((
            tenants::id,
            tenants::plan,
            tenants::created_at,
            tenant_placements::dedicated,
        ))
        .into_boxed();
    if let Some(after) = after {
        let at = after.created_at.naive_utc();
        let id = after.tenant_id.to_string();
        query = query.filter(
            tenants::created_at
                .gt(at)
                .or(tenants::created_at.eq(at).and(tenants::id.gt(id))),
        );
    }
    let rows: Vec<(String, String, NaiveDateTime, bool)> = query.load(conn)?;
    rows.into_iter()
        .map(|(id, plan, created_at, dedicated)| {
            Ok(Waiting {
                tenant_id: id.parse().map_err(|_| StoreError::Corrupt {
                    table: "tenants",
                    id: id.clone(),
                    reason: "not a UUID".to_owned(),
                })?,
                plan,
                dedicated,
                created_at: created_at.and_utc(),
            })
        })
        .collect()
}
