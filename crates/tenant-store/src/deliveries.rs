//! The delivery outbox: claiming due deliveries under a lease, recording attempts and outcomes,
//! and reading them back (dead letters included) for a tenant.
//!
//! A claim moves `next_attempt_at` to the lease's expiry and sets `lease_owner`; the claimer
//! clears both when it records the outcome. A claimer that dies leaves the row `pending` and due
//! again once the lease expires, so another claims it: at-least-once delivery. On PostgreSQL the
//! claim is `FOR UPDATE SKIP LOCKED`, so concurrent claimers never take the same row; SQLite
//! serialises writers, and one dispatcher per database claims.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use tenant_core::{Page, PageRequest, TenantId};
use uuid::Uuid;

use crate::events::{STATUS_FAILED, STATUS_PENDING, STATUS_SUCCEEDED};
use crate::schema::{events, webhook_attempts, webhook_deliveries, webhook_endpoints};
use crate::{AnyConnection, StoreError, StoreResult, write_transaction};

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone, Queryable)]
pub struct Claimed {
    /// The delivery's id (also the `webhook-id`).
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
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

const CLAIM_PG: &str = "UPDATE webhook_deliveries SET lease_owner = $1, next_attempt_at = $2, \
    updated_at = $3 WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' \
    AND next_attempt_at <= $3 ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
    RETURNING id";
const CLAIM_SQLITE: &str = "UPDATE webhook_deliveries SET lease_owner = ?1, next_attempt_at = ?2, \
    updated_at = ?3 WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' \
    AND next_attempt_at <= ?3 ORDER BY next_attempt_at LIMIT ?4) RETURNING id";

/// Claims up to `limit` due deliveries for `owner` until `lease_until`.
pub fn claim(
    conn: &mut AnyConnection,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<Claimed>> {
    let (now, until) = (now.naive_utc(), lease_until.naive_utc());
    let ids: Vec<IdRow> = match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(CLAIM_PG)
            .bind::<Text, _>(owner)
            .bind::<Timestamp, _>(until)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit)
            .load(c)?,
        AnyConnection::Sqlite(c) => diesel::sql_query(CLAIM_SQLITE)
            .bind::<Text, _>(owner)
            .bind::<Timestamp, _>(until)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit)
            .load(c)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.into_iter().map(|r| r.id).collect();
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

/// Queue figures for metrics.
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
}

/// Counts pending, due and dead deliveries.
pub fn queue_depth(conn: &mut AnyConnection, now: DateTime<Utc>) -> StoreResult<QueueDepth> {
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
    Ok(QueueDepth {
        pending: count(conn, STATUS_PENDING)?,
        due,
        failed: count(conn, STATUS_FAILED)?,
        oldest_due: oldest_due.map(|t| t.and_utc()),
    })
}
