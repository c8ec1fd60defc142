//! The delivery outbox: claiming due deliveries under a lease, recording attempts and outcomes,
//! and reading them back (dead letters included) for a tenant.
//!
//! A claim moves `next_attempt_at` to the lease's expiry and sets `lease_owner`; the claimer
//! clears both when it records the outcome. A claimer that dies leaves the row `pending` and due
//! again once the lease expires, so another claims it: at-least-once delivery. On PostgreSQL the
//! claim is `FOR UPDATE SKIP LOCKED`, so concurrent claimers never take the same row; SQLite
//! serialises writers, and one dispatcher per database claims.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use tenant_core::{Page, PageRequest, TenantId};
use uuid::Uuid;

use crate::events::{STATUS_FAILED, STATUS_PENDING, STATUS_SUCCEEDED};
use crate::pg_static::PgStatic;
use crate::schema::{events, webhook_attempts, webhook_deliveries, webhook_endpoints};
use crate::{AnyConnection, StoreError, StoreResult, write_transaction};

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone, Queryable)]
pub struct Claimed {
    /// The delivery's id (also the `webhook-id`).
    pub id: String,
    /// The tenant; `None` for an operator endpoint's delivery.
    pub tenant_id: Option<String>,
    /// The endpoint.
    pub endpoint_id: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// The endpoint's URL.
    pub url: String,
    /// Whether the endpoint is enabled.
    pub endpoint_enabled: bool,
    /// The event type.
    pub event_type: String,
    /// The exact body to send.
    pub payload: String,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

// The fair claim. `eps` walks the endpoints that have pending deliveries through the index on
// (status, endpoint_id, next_attempt_at), one probe per endpoint (a skip scan: the size of a
// backlog does not matter); each endpoint not excluded (at its cap in this process) and whose
// circuit is closed gives at most its quota of its oldest due deliveries — `deep` for the
// endpoints named as answering fast, `per_endpoint` for the others; those are taken round-robin
// (every endpoint's first, then every endpoint's second, …) up to `limit`. On PostgreSQL the
// per-endpoint pick is `FOR UPDATE SKIP LOCKED`, so concurrent claimers never take the same row
// (a row another claimer leased meanwhile is re-checked and no longer due). The PostgreSQL text
// numbers its placeholders in order of appearance, once each (`PgStatic`: prepared once per
// connection); its binds are owner, lease end, now, fast endpoints, deep, per endpoint,
// excluded endpoints, now, limit.
const CLAIM_PG: &str = "UPDATE webhook_deliveries SET lease_owner = $1, next_attempt_at = $2, \
    updated_at = $3 WHERE id IN ( \
    WITH RECURSIVE eps(endpoint_id) AS ( \
      (SELECT w.endpoint_id FROM webhook_deliveries w WHERE w.status = 'pending' \
       ORDER BY w.endpoint_id LIMIT 1) \
      UNION ALL \
      SELECT (SELECT w.endpoint_id FROM webhook_deliveries w WHERE w.status = 'pending' \
              AND w.endpoint_id > eps.endpoint_id ORDER BY w.endpoint_id LIMIT 1) \
      FROM eps WHERE eps.endpoint_id IS NOT NULL), \
    open_eps AS ( \
      SELECT eps.endpoint_id, \
             CASE WHEN eps.endpoint_id = ANY (string_to_array($4, ',')) THEN $5 ELSE $6 END \
               AS quota \
      FROM eps WHERE eps.endpoint_id IS NOT NULL \
      AND eps.endpoint_id <> ALL (string_to_array($7, ',')) \
      AND NOT EXISTS (SELECT 1 FROM webhook_endpoint_circuits c \
                      WHERE c.endpoint_id = eps.endpoint_id AND c.state <> 'closed')) \
    SELECT picked.id FROM ( \
      SELECT d.id, d.next_attempt_at, \
             ROW_NUMBER() OVER (PARTITION BY e.endpoint_id ORDER BY d.next_attempt_at) AS rank \
      FROM open_eps e CROSS JOIN LATERAL ( \
        SELECT w.id, w.next_attempt_at FROM webhook_deliveries w \
        WHERE w.status = 'pending' AND w.endpoint_id = e.endpoint_id AND w.next_attempt_at <= $8 \
        ORDER BY w.next_attempt_at LIMIT e.quota FOR UPDATE SKIP LOCKED) d \
    ) picked ORDER BY picked.rank, picked.next_attempt_at LIMIT $9) \
    RETURNING id";
// SQLite's `LIMIT` cannot name a column of the outer query: each endpoint's subquery takes up
// to the larger quota, and the rank is cut at the endpoint's own.
const CLAIM_SQLITE: &str = "UPDATE webhook_deliveries SET lease_owner = ?1, next_attempt_at = ?2, \
    updated_at = ?3 WHERE id IN ( \
    WITH RECURSIVE eps(endpoint_id) AS ( \
      SELECT (SELECT w.endpoint_id FROM webhook_deliveries w WHERE w.status = 'pending' \
              ORDER BY w.endpoint_id LIMIT 1) \
      UNION ALL \
      SELECT (SELECT w.endpoint_id FROM webhook_deliveries w WHERE w.status = 'pending' \
              AND w.endpoint_id > eps.endpoint_id ORDER BY w.endpoint_id LIMIT 1) \
      FROM eps WHERE eps.endpoint_id IS NOT NULL), \
    open_eps AS ( \
      SELECT eps.endpoint_id, \
             CASE WHEN instr(',' || ?7 || ',', ',' || eps.endpoint_id || ',') > 0 THEN ?8 \
                  ELSE ?5 END AS quota \
      FROM eps WHERE eps.endpoint_id IS NOT NULL \
      AND instr(',' || ?6 || ',', ',' || eps.endpoint_id || ',') = 0 \
      AND NOT EXISTS (SELECT 1 FROM webhook_endpoint_circuits c \
                      WHERE c.endpoint_id = eps.endpoint_id AND c.state <> 'closed')), \
    picked AS ( \
      SELECT d.id, d.next_attempt_at, e.quota, \
             ROW_NUMBER() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at) AS rank \
      FROM open_eps e JOIN webhook_deliveries d ON d.id IN ( \
        SELECT w.id FROM webhook_deliveries w \
        WHERE w.status = 'pending' AND w.endpoint_id = e.endpoint_id AND w.next_attempt_at <= ?3 \
        ORDER BY w.next_attempt_at LIMIT max(?5, ?8))) \
    SELECT id FROM picked WHERE rank <= quota ORDER BY rank, next_attempt_at LIMIT ?4) \
    RETURNING id";

/// The id of [`CLAIM_PG`] in Diesel's statement cache.
struct ClaimStatement;

/// What a claim takes.
#[derive(Debug, Clone, Copy)]
pub struct ClaimLimits<'a> {
    /// The most deliveries in all.
    pub limit: i64,
    /// The most deliveries of one endpoint.
    pub per_endpoint: i64,
    /// Endpoints that may give more at once (`deep` each): those that answer fast, whose
    /// claimed deliveries wait little for a slot.
    pub fast: &'a [String],
    /// The most deliveries of one of the `fast` endpoints.
    pub deep: i64,
    /// Endpoints to leave alone (already at their cap in the claiming process).
    pub exclude: &'a [String],
}

/// Claims due deliveries for `owner` until `lease_until`, fairly across endpoints (see
/// [`ClaimLimits`]): at most `per_endpoint` (or `deep`) of each endpoint's oldest due
/// deliveries, taken round-robin up to `limit`; endpoints whose circuit is not closed are
/// skipped (their probes are claimed by [`claim_probe`]).
pub fn claim(
    conn: &mut AnyConnection,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limits: ClaimLimits<'_>,
) -> StoreResult<Vec<Claimed>> {
    let (now, until) = (now.naive_utc(), lease_until.naive_utc());
    let exclude = limits.exclude.join(",");
    let fast = limits.fast.join(",");
    let deep = limits.deep.max(limits.per_endpoint);
    let ids: Vec<IdRow> = match conn {
        AnyConnection::Postgresql(c) => PgStatic::<ClaimStatement>::new(CLAIM_PG)
            .bind::<Text, _>(owner)
            .bind::<Timestamp, _>(until)
            .bind::<Timestamp, _>(now)
            .bind::<Text, _>(&fast)
            .bind::<BigInt, _>(deep)
            .bind::<BigInt, _>(limits.per_endpoint)
            .bind::<Text, _>(&exclude)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limits.limit)
            .load(c)?,
        AnyConnection::Sqlite(c) => diesel::sql_query(CLAIM_SQLITE)
            .bind::<Text, _>(owner)
            .bind::<Timestamp, _>(until)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limits.limit)
            .bind::<BigInt, _>(limits.per_endpoint)
            .bind::<Text, _>(&exclude)
            .bind::<Text, _>(&fast)
            .bind::<BigInt, _>(deep)
            .load(c)?,
    };
    load_claimed(conn, ids.into_iter().map(|r| r.id).collect())
}

/// Runs a claim (`f`: the probes, then [`claim`]) as one transaction. On PostgreSQL its commit
/// does not wait for the WAL to reach the disk (`synchronous_commit = off` for this transaction
/// only), which is most of a claim's time: a claim lost in a crash of the database only leaves
/// its deliveries due as they were, to be claimed again (at-least-once holds), and the outcome of
/// a delivery is recorded in a transaction that does wait, which makes every earlier commit
/// durable with it.
pub fn claim_transaction<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    write_transaction(conn, |c| {
        if let AnyConnection::Postgresql(pg) = c {
            diesel::connection::SimpleConnection::batch_execute(
                pg,
                "SET LOCAL synchronous_commit = off",
            )?;
        }
        f(c)
    })
}

/// The claimed deliveries `ids` with what sending them needs, oldest due first.
pub(crate) fn load_claimed(
    conn: &mut AnyConnection,
    ids: Vec<String>,
) -> StoreResult<Vec<Claimed>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(webhook_deliveries::table
        .inner_join(webhook_endpoints::table)
        .inner_join(events::table)
        .filter(webhook_deliveries::id.eq_any(&ids))
        .select((
            webhook_deliveries::id,
            webhook_deliveries::tenant_id,
            webhook_deliveries::endpoint_id,
            webhook_deliveries::attempts,
            webhook_endpoints::url,
            webhook_endpoints::enabled,
            events::event_type,
            events::payload,
        ))
        .order(webhook_deliveries::next_attempt_at.asc())
        .load(conn)?)
}

const PROBE_PG: &str = "UPDATE webhook_deliveries SET lease_owner = $1, next_attempt_at = $2, \
    updated_at = $3 WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' \
    AND endpoint_id = $4 AND (lease_owner IS NULL OR next_attempt_at <= $3) \
    ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id";
const PROBE_SQLITE: &str = "UPDATE webhook_deliveries SET lease_owner = ?1, next_attempt_at = ?2, \
    updated_at = ?3 WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' \
    AND endpoint_id = ?4 AND (lease_owner IS NULL OR next_attempt_at <= ?3) \
    ORDER BY next_attempt_at LIMIT 1) RETURNING id";

/// Claims the probe of a circuit `owner` took (see
/// [`crate::endpoint_circuits::take_probes`]): the endpoint's pending delivery due first (due
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
    Ok(load_claimed(conn, ids.into_iter().map(|r| r.id).collect())?.pop())
}

/// An endpoint's circuit opened: its due deliveries not in flight wait until `until` (no attempt
/// is counted). Returns how many were moved.
pub fn hold_back(
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

/// The queue state of each of `endpoint_ids` at `now` (every id gets one).
pub fn queue_states(
    conn: &mut AnyConnection,
    endpoint_ids: &[String],
    now: DateTime<Utc>,
) -> StoreResult<HashMap<String, crate::endpoint_circuits::EndpointQueue>> {
    let mut out: HashMap<String, crate::endpoint_circuits::EndpointQueue> = endpoint_ids
        .iter()
        .map(|id| (id.clone(), crate::endpoint_circuits::EndpointQueue::idle()))
        .collect();
    if endpoint_ids.is_empty() {
        return Ok(out);
    }
    for row in crate::endpoint_circuits::load(conn, endpoint_ids)? {
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

/// Gives back deliveries `owner` claimed but did not send (their endpoint's circuit opened
/// meanwhile): due again at `at`, no attempt counted. Returns how many were released.
pub fn release(
    conn: &mut AnyConnection,
    owner: &str,
    ids: &[String],
    at: DateTime<Utc>,
) -> StoreResult<usize> {
    Ok(diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(ids))
            .filter(webhook_deliveries::lease_owner.eq(owner))
            .filter(webhook_deliveries::status.eq(STATUS_PENDING)),
    )
    .set((
        webhook_deliveries::lease_owner.eq(None::<String>),
        webhook_deliveries::next_attempt_at.eq(at.naive_utc()),
    ))
    .execute(conn)?)
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The endpoint accepted it.
    Succeeded,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// No more attempts: a dead letter.
    Failed,
}

/// One attempt's record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: String,
    /// The attempt's number (1 for the first).
    pub attempt: i32,
    /// `success`, `http_error`, `timeout`, `connect_error`, `refused`, `disabled`.
    pub outcome: &'static str,
    /// The response status, if one came.
    pub status_code: Option<i32>,
    /// Time to the response (or the failure), in milliseconds.
    pub latency_ms: i64,
    /// Why it failed, for the tenant (no secrets).
    pub error: Option<String>,
    /// The start of the response body, bounded.
    pub response_excerpt: Option<String>,
    /// What happens next.
    pub next: Next,
    /// When it was made.
    pub at: DateTime<Utc>,
}

/// Records attempts and their outcomes in one transaction, releasing the leases `owner` holds.
/// An outcome whose lease was lost (another claimer took the row after it expired) is still
/// recorded as an attempt but does not change the delivery. Returns how many were applied.
pub fn complete(
    conn: &mut AnyConnection,
    owner: &str,
    records: &[AttemptRecord],
) -> StoreResult<usize> {
    write_transaction(conn, |c| {
        let mut applied = 0;
        for r in records {
            // Attempts without an HTTP exchange (endpoint already disabled) are not attempts.
            if r.outcome != "disabled" {
                diesel::insert_into(webhook_attempts::table)
                    .values((
                        webhook_attempts::id.eq(Uuid::new_v4().to_string()),
                        webhook_attempts::delivery_id.eq(&r.delivery_id),
                        webhook_attempts::attempt.eq(r.attempt),
                        webhook_attempts::outcome.eq(r.outcome),
                        webhook_attempts::status_code.eq(r.status_code),
                        webhook_attempts::latency_ms.eq(r.latency_ms),
                        webhook_attempts::error.eq(&r.error),
                        webhook_attempts::response_excerpt.eq(&r.response_excerpt),
                        webhook_attempts::created_at.eq(r.at.naive_utc()),
                    ))
                    .execute(c)?;
            }
            let (status, next_at, completed) = match r.next {
                Next::Succeeded => (STATUS_SUCCEEDED, r.at, Some(r.at.naive_utc())),
                Next::RetryAt(t) => (STATUS_PENDING, t, None),
                Next::Failed => (STATUS_FAILED, r.at, Some(r.at.naive_utc())),
            };
            applied += diesel::update(
                webhook_deliveries::table
                    .filter(webhook_deliveries::id.eq(&r.delivery_id))
                    .filter(webhook_deliveries::lease_owner.eq(owner)),
            )
            .set((
                webhook_deliveries::status.eq(status),
                webhook_deliveries::attempts.eq(r.attempt),
                webhook_deliveries::next_attempt_at.eq(next_at.naive_utc()),
                webhook_deliveries::lease_owner.eq(None::<String>),
                webhook_deliveries::last_status_code.eq(r.status_code),
                webhook_deliveries::last_error.eq(&r.error),
                webhook_deliveries::updated_at.eq(r.at.naive_utc()),
                webhook_deliveries::completed_at.eq(completed),
            ))
            .execute(c)?;
        }
        Ok(applied)
    })
}

/// A delivery as a tenant sees it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    /// UUID text.
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The event.
    pub event_id: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: NaiveDateTime,
    /// The last response status.
    pub last_status_code: Option<i32>,
    /// The last error.
    pub last_error: Option<String>,
    /// Enqueued at.
    pub created_at: NaiveDateTime,
    /// Finished at (succeeded or failed).
    pub completed_at: Option<NaiveDateTime>,
}

/// One recorded attempt.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_attempts)]
pub struct AttemptRow {
    /// The attempt's number.
    pub attempt: i32,
    /// Its outcome.
    pub outcome: String,
    /// The response status.
    pub status_code: Option<i32>,
    /// Latency in milliseconds.
    pub latency_ms: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// The start of the response body.
    pub response_excerpt: Option<String>,
    /// When it was made.
    pub created_at: NaiveDateTime,
}

/// A page of an endpoint's deliveries, oldest first, optionally of one status.
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    endpoint_id: Uuid,
    status: Option<&str>,
    page: &PageRequest,
) -> StoreResult<Page<DeliveryRow>> {
    crate::webhooks::find(conn, tenant_id, endpoint_id)?;
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::tenant_id.eq(tenant_id.to_string()))
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id.to_string()))
        .select(DeliveryRow::as_select())
        .order((
            webhook_deliveries::created_at.asc(),
            webhook_deliveries::id.asc(),
        ))
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(webhook_deliveries::status.eq(status.to_owned()));
    }
    if let Some(after) = page.after {
        let at = after.created_at.naive_utc();
        let id = after.id.hyphenated().to_string();
        query = query.filter(
            webhook_deliveries::created_at
                .gt(at)
                .or(webhook_deliveries::created_at
                    .eq(at)
                    .and(webhook_deliveries::id.gt(id))),
        );
    }
    let rows = query.load::<DeliveryRow>(conn)?;
    Page::from_overfetch(rows, page.limit, |last| {
        crate::paging::cursor_of("webhook_deliveries", last.created_at, &last.id)
    })
}

/// One delivery of a tenant's endpoint, with its attempts in order.
pub fn find_with_attempts(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    endpoint_id: Uuid,
    delivery_id: Uuid,
) -> StoreResult<(DeliveryRow, Vec<AttemptRow>)> {
    let delivery = webhook_deliveries::table
        .filter(webhook_deliveries::tenant_id.eq(tenant_id.to_string()))
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id.to_string()))
        .filter(webhook_deliveries::id.eq(delivery_id.to_string()))
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("delivery"))?;
    let attempts = webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq(delivery_id.to_string()))
        .order((
            webhook_attempts::created_at.asc(),
            webhook_attempts::attempt.asc(),
        ))
        .select(AttemptRow::as_select())
        .load(conn)?;
    Ok((delivery, attempts))
}

/// Puts a finished delivery (a dead letter, or a success to send again) back in the queue, due
/// at `now`, with a fresh attempt budget. A pending delivery is a conflict.
pub fn replay(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    endpoint_id: Uuid,
    delivery_id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<DeliveryRow> {
    write_transaction(conn, |c| {
        let (d, _) = find_with_attempts(c, tenant_id, endpoint_id, delivery_id)?;
        if d.status == STATUS_PENDING {
            return Err(StoreError::Conflict {
                field: "status",
                message: "the delivery is still pending; only finished deliveries are replayed"
                    .into(),
            });
        }
        diesel::update(webhook_deliveries::table.find(&d.id))
            .set((
                webhook_deliveries::status.eq(STATUS_PENDING),
                webhook_deliveries::attempts.eq(0),
                webhook_deliveries::next_attempt_at.eq(now.naive_utc()),
                webhook_deliveries::lease_owner.eq(None::<String>),
                webhook_deliveries::updated_at.eq(now.naive_utc()),
                webhook_deliveries::completed_at.eq(None::<NaiveDateTime>),
            ))
            .execute(c)?;
        Ok(find_with_attempts(c, tenant_id, endpoint_id, delivery_id)?.0)
    })
}

/// Queue figures for metrics (no tenant in them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Pending deliveries (due or not, leased or not).
    pub pending: i64,
    /// Pending deliveries due at `now`.
    pub due: i64,
    /// Dead letters.
    pub failed: i64,
    /// When the longest-waiting due delivery became due (`None`: none is due).
    pub oldest_due: Option<DateTime<Utc>>,
    /// How long the oldest due delivery not in flight has waited, in seconds (0: none waits).
    pub oldest_due_age_secs: i64,
    /// Endpoints whose circuit is open or half-open.
    pub circuits_open: i64,
}

/// Counts pending, due and dead deliveries, the age of the oldest due one and open circuits.
pub fn queue_depth(conn: &mut AnyConnection, now: DateTime<Utc>) -> StoreResult<QueueDepth> {
    use crate::schema::webhook_endpoint_circuits as circuits;
    let count = |c: &mut AnyConnection, status: &str| -> StoreResult<i64> {
        Ok(webhook_deliveries::table
            .filter(webhook_deliveries::status.eq(status.to_owned()))
            .count()
            .get_result(c)?)
    };
    let due = webhook_deliveries::table
        .filter(webhook_deliveries::status.eq(STATUS_PENDING))
        .filter(webhook_deliveries::next_attempt_at.le(now.naive_utc()))
        .count()
        .get_result(conn)?;
    let oldest_due: Option<NaiveDateTime> = if due > 0 {
        webhook_deliveries::table
            .filter(webhook_deliveries::status.eq(STATUS_PENDING))
            .filter(webhook_deliveries::next_attempt_at.le(now.naive_utc()))
            .select(diesel::dsl::min(webhook_deliveries::next_attempt_at))
            .first(conn)?
    } else {
        None
    };
    let circuits_open = circuits::table
        .filter(circuits::state.ne(crate::endpoint_circuits::CLOSED))
        .count()
        .get_result(conn)?;
    Ok(QueueDepth {
        pending: count(conn, STATUS_PENDING)?,
        due,
        failed: count(conn, STATUS_FAILED)?,
        oldest_due: oldest_due.map(|t| t.and_utc()),
        oldest_due_age_secs: oldest_due.map_or(0, |t| (now - t.and_utc()).num_seconds().max(0)),
        circuits_open,
    })
}
