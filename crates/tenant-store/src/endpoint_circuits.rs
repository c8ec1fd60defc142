//! Webhook endpoints' circuits and queue state, shared by every dispatcher process and read by
//! the API.
//!
//! A circuit is `closed` (deliveries flow, up to the per-endpoint cap), `open` (the endpoint failed
//! to answer several times in a row: its deliveries wait until `retry_at`) or `half-open` (one
//! probe delivery is out, claimed by `probe_owner` until `retry_at`). No row means closed with no
//! failure, so a healthy endpoint costs nothing here. The transitions are decided by the
//! dispatcher (`tenant_webhooks::delivery::circuit`); this module stores them, hands the probe of
//! each circuit due for one to exactly one claimer, and reports the state.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text, Timestamp};

use crate::deliveries::Claimed;
use crate::events::STATUS_PENDING;
use crate::schema::{webhook_deliveries, webhook_endpoint_circuits as circuits};
use crate::{AnyConnection, StoreResult};

/// Deliveries flow.
pub const CLOSED: &str = "closed";
/// Deliveries wait until the circuit may be probed.
pub const OPEN: &str = "open";
/// One probe delivery is out.
pub const HALF_OPEN: &str = "half-open";

/// One endpoint's circuit.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = circuits)]
pub struct CircuitRow {
    /// The endpoint.
    pub endpoint_id: String,
    /// [`CLOSED`], [`OPEN`] or [`HALF_OPEN`].
    pub state: String,
    /// Consecutive timeouts and connection failures.
    pub failures: i32,
    /// Consecutive openings (the backoff's exponent).
    pub opens: i32,
    /// Open: when it may be probed; half-open: when the probe's claim lapses.
    pub retry_at: Option<NaiveDateTime>,
    /// The dispatcher probing a half-open circuit.
    pub probe_owner: Option<String>,
}

impl CircuitRow {
    /// The state of an endpoint without a row: closed, no failure.
    pub fn closed(endpoint_id: &str) -> Self {
        Self {
            endpoint_id: endpoint_id.to_owned(),
            state: CLOSED.to_owned(),
            failures: 0,
            opens: 0,
            retry_at: None,
            probe_owner: None,
        }
    }
}

/// The circuits of `endpoint_ids` that have a row.
pub fn load(conn: &mut AnyConnection, endpoint_ids: &[String]) -> StoreResult<Vec<CircuitRow>> {
    Ok(circuits::table
        .filter(circuits::endpoint_id.eq_any(endpoint_ids))
        .select(CircuitRow::as_select())
        .load(conn)?)
}

const SAVE_PG: &str = "INSERT INTO webhook_endpoint_circuits \
    (endpoint_id, state, failures, opens, retry_at, probe_owner, updated_at) \
    SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1) \
    ON CONFLICT (endpoint_id) DO UPDATE SET state = excluded.state, failures = excluded.failures, \
    opens = excluded.opens, retry_at = excluded.retry_at, probe_owner = excluded.probe_owner, \
    updated_at = excluded.updated_at";
const SAVE_SQLITE: &str = "INSERT INTO webhook_endpoint_circuits \
    (endpoint_id, state, failures, opens, retry_at, probe_owner, updated_at) \
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?1) \
    ON CONFLICT (endpoint_id) DO UPDATE SET state = excluded.state, failures = excluded.failures, \
    opens = excluded.opens, retry_at = excluded.retry_at, probe_owner = excluded.probe_owner, \
    updated_at = excluded.updated_at";

/// Stores a circuit (an endpoint deleted meanwhile is left alone).
pub fn save(conn: &mut AnyConnection, row: &CircuitRow, now: DateTime<Utc>) -> StoreResult<()> {
    macro_rules! run {
        ($c:expr, $sql:expr) => {
            diesel::sql_query($sql)
                .bind::<Text, _>(&row.endpoint_id)
                .bind::<Text, _>(&row.state)
                .bind::<Integer, _>(row.failures)
                .bind::<Integer, _>(row.opens)
                .bind::<Nullable<Timestamp>, _>(row.retry_at)
                .bind::<Nullable<Text>, _>(&row.probe_owner)
                .bind::<Timestamp, _>(now.naive_utc())
                .execute($c)?
        };
    }
    match conn {
        AnyConnection::Postgresql(c) => run!(c, SAVE_PG),
        AnyConnection::Sqlite(c) => run!(c, SAVE_SQLITE),
    };
    Ok(())
}

/// An endpoint's circuit opened: its due deliveries not in flight wait until `until` (no attempt
/// is counted). Returns how many were moved.
pub fn reschedule_due(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    Ok(diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::status.eq(STATUS_PENDING))
            .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
            .filter(webhook_deliveries::lease_owner.is_null())
            .filter(webhook_deliveries::next_attempt_at.lt(until.naive_utc())),
    )
    .set((
        webhook_deliveries::next_attempt_at.eq(until.naive_utc()),
        webhook_deliveries::updated_at.eq(now.naive_utc()),
    ))
    .execute(conn)?)
}

#[derive(QueryableByName)]
struct EndpointIdRow {
    #[diesel(sql_type = Text)]
    endpoint_id: String,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

const TAKE_PG: &str = "UPDATE webhook_endpoint_circuits SET state = 'half-open', \
    probe_owner = $1, retry_at = $2, updated_at = $3 \
    WHERE state IN ('open', 'half-open') AND retry_at <= $3 RETURNING endpoint_id";
const TAKE_SQLITE: &str = "UPDATE webhook_endpoint_circuits SET state = 'half-open', \
    probe_owner = ?1, retry_at = ?2, updated_at = ?3 \
    WHERE state IN ('open', 'half-open') AND retry_at <= ?3 RETURNING endpoint_id";

/// Takes every circuit due for a probe (open past its `retry_at`, or half-open whose probe's
/// claim lapsed) for `owner` until `until`: each goes to exactly one claimer, which then claims
/// one delivery with [`claim_probe`]. Returns their endpoints.
pub fn take_probes(
    conn: &mut AnyConnection,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    let rows: Vec<EndpointIdRow> = match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(TAKE_PG)
            .bind::<Text, _>(owner)
            .bind::<Timestamp, _>(until.naive_utc())
            .bind::<Timestamp, _>(now.naive_utc())
            .load(c)?,
        AnyConnection::Sqlite(c) => diesel::sql_query(TAKE_SQLITE)
            .bind::<Text, _>(owner)
            .bind::<Timestamp, _>(until.naive_utc())
            .bind::<Timestamp, _>(now.naive_utc())
            .load(c)?,
    };
    Ok(rows.into_iter().map(|r| r.endpoint_id).collect())
}

const PROBE_PG: &str = "UPDATE webhook_deliveries SET lease_owner = $1, next_attempt_at = $2, \
    updated_at = $3 WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' \
    AND endpoint_id = $4 AND (lease_owner IS NULL OR next_attempt_at <= $3) \
    ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id";
const PROBE_SQLITE: &str = "UPDATE webhook_deliveries SET lease_owner = ?1, next_attempt_at = ?2, \
    updated_at = ?3 WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' \
    AND endpoint_id = ?4 AND (lease_owner IS NULL OR next_attempt_at <= ?3) \
    ORDER BY next_attempt_at LIMIT 1) RETURNING id";

/// Claims the probe of a circuit `owner` took: the endpoint's pending delivery due first (due
/// now or not: the circuit held it back), none if it has none.
pub fn claim_probe(
    conn: &mut AnyConnection,
    owner: &str,
    endpoint_id: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Option<Claimed>> {
    macro_rules! run {
        ($c:expr, $sql:expr) => {
            diesel::sql_query($sql)
                .bind::<Text, _>(owner)
                .bind::<Timestamp, _>(lease_until.naive_utc())
                .bind::<Timestamp, _>(now.naive_utc())
                .bind::<Text, _>(endpoint_id)
                .load::<IdRow>($c)?
        };
    }
    let ids = match conn {
        AnyConnection::Postgresql(c) => run!(c, PROBE_PG),
        AnyConnection::Sqlite(c) => run!(c, PROBE_SQLITE),
    };
    Ok(crate::deliveries::load_claimed(conn, ids.into_iter().map(|r| r.id).collect())?.pop())
}

/// A probe was taken but the endpoint has nothing to send: the circuit closes, one failure short
/// of opening again, so the next delivery that fails to connect reopens it at once.
pub fn close_without_probe(
    conn: &mut AnyConnection,
    owner: &str,
    endpoint_id: &str,
    failures: i32,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    diesel::update(
        circuits::table
            .filter(circuits::endpoint_id.eq(endpoint_id))
            .filter(circuits::probe_owner.eq(owner)),
    )
    .set((
        circuits::state.eq(CLOSED),
        circuits::failures.eq(failures),
        circuits::retry_at.eq(None::<NaiveDateTime>),
        circuits::probe_owner.eq(None::<String>),
        circuits::updated_at.eq(now.naive_utc()),
    ))
    .execute(conn)?;
    Ok(())
}

/// What an endpoint's queue looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointQueue {
    /// [`CLOSED`], [`OPEN`] or [`HALF_OPEN`].
    pub circuit: String,
    /// Open: when it is probed next.
    pub retry_at: Option<DateTime<Utc>>,
    /// Consecutive timeouts and connection failures.
    pub failures: i32,
    /// Deliveries being sent (claimed, lease running), by any dispatcher.
    pub in_flight: i64,
    /// Pending deliveries (in flight included).
    pub pending: i64,
    /// When the oldest due delivery not in flight fell due, if one waits.
    pub oldest_due_at: Option<DateTime<Utc>>,
}

impl EndpointQueue {
    fn idle() -> Self {
        Self {
            circuit: CLOSED.to_owned(),
            retry_at: None,
            failures: 0,
            in_flight: 0,
            pending: 0,
            oldest_due_at: None,
        }
    }
}

/// The queue state of each of `endpoint_ids` at `now` (every id gets one).
pub fn queue_states(
    conn: &mut AnyConnection,
    endpoint_ids: &[String],
    now: DateTime<Utc>,
) -> StoreResult<HashMap<String, EndpointQueue>> {
    let mut out: HashMap<String, EndpointQueue> = endpoint_ids
        .iter()
        .map(|id| (id.clone(), EndpointQueue::idle()))
        .collect();
    if endpoint_ids.is_empty() {
        return Ok(out);
    }
    for row in load(conn, endpoint_ids)? {
        if let Some(q) = out.get_mut(&row.endpoint_id) {
            q.circuit = row.state;
            q.failures = row.failures;
            q.retry_at = row.retry_at.map(|t| t.and_utc());
        }
    }
    let pending = || {
        webhook_deliveries::table
            .filter(webhook_deliveries::status.eq(STATUS_PENDING))
            .filter(webhook_deliveries::endpoint_id.eq_any(endpoint_ids))
    };
    let now_n = now.naive_utc();
    let counts: Vec<(String, i64)> = pending()
        .group_by(webhook_deliveries::endpoint_id)
        .select((webhook_deliveries::endpoint_id, diesel::dsl::count_star()))
        .load(conn)?;
    for (id, n) in counts {
        if let Some(q) = out.get_mut(&id) {
            q.pending = n;
        }
    }
    let in_flight: Vec<(String, i64)> = pending()
        .filter(webhook_deliveries::lease_owner.is_not_null())
        .filter(webhook_deliveries::next_attempt_at.gt(now_n))
        .group_by(webhook_deliveries::endpoint_id)
        .select((webhook_deliveries::endpoint_id, diesel::dsl::count_star()))
        .load(conn)?;
    for (id, n) in in_flight {
        if let Some(q) = out.get_mut(&id) {
            q.in_flight = n;
        }
    }
    let oldest: Vec<(String, Option<NaiveDateTime>)> = pending()
        .filter(webhook_deliveries::next_attempt_at.le(now_n))
        .group_by(webhook_deliveries::endpoint_id)
        .select((
            webhook_deliveries::endpoint_id,
            diesel::dsl::min(webhook_deliveries::next_attempt_at),
        ))
        .load(conn)?;
    for (id, at) in oldest {
        if let Some(q) = out.get_mut(&id) {
            q.oldest_due_at = at.map(|t| t.and_utc());
        }
    }
    Ok(out)
}
