//! Webhook endpoints' circuits and queue state, shared by every dispatcher process and read by
//! the API.
//!
//! A circuit is `closed` (deliveries flow, up to the per-endpoint cap), `open` (the endpoint failed
//! to answer several times in a row: its deliveries wait until `retry_at`) or `half-open` (one
//! probe delivery is out, claimed by `probe_owner` until `retry_at`). No row means closed with no
//! failure, so a healthy endpoint costs nothing here. The transitions are decided by the
//! dispatcher (`tenant_webhooks::delivery::circuit`); this module stores them and hands the probe
//! of each circuit due for one to exactly one claimer. The queue state the API shows
//! ([`EndpointQueue`]) is read by [`crate::deliveries::queue_states`].

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text, Timestamp};

use crate::pg_static::PgStatic;
use crate::schema::webhook_endpoint_circuits as circuits;
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

#[derive(QueryableByName)]
struct EndpointIdRow {
    #[diesel(sql_type = Text)]
    endpoint_id: String,
}

/// Placeholders once each, in order (`PgStatic`: prepared once per connection, as it runs before
/// every claim): owner, until, now, now.
const TAKE_PG: &str = "UPDATE webhook_endpoint_circuits SET state = 'half-open', \
    probe_owner = $1, retry_at = $2, updated_at = $3 \
    WHERE state IN ('open', 'half-open') AND retry_at <= $4 RETURNING endpoint_id";

/// The id of [`TAKE_PG`] in Diesel's statement cache.
struct TakeStatement;
const TAKE_SQLITE: &str = "UPDATE webhook_endpoint_circuits SET state = 'half-open', \
    probe_owner = ?1, retry_at = ?2, updated_at = ?3 \
    WHERE state IN ('open', 'half-open') AND retry_at <= ?3 RETURNING endpoint_id";

/// Takes every circuit due for a probe (open past its `retry_at`, or half-open whose probe's
/// claim lapsed) for `owner` until `until`: each goes to exactly one claimer, which then claims
/// one delivery with [`crate::deliveries::claim_probe`]. Returns their endpoints.
pub fn take_probes(
    conn: &mut AnyConnection,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    let rows: Vec<EndpointIdRow> = match conn {
        AnyConnection::Postgresql(c) => PgStatic::<TakeStatement>::new(TAKE_PG)
            .bind::<Text, _>(owner)
            .bind::<Timestamp, _>(until.naive_utc())
            .bind::<Timestamp, _>(now.naive_utc())
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
    /// No delivery pending, circuit closed.
    pub fn idle() -> Self {
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
