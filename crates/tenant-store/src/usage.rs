//! Usage counters per tenant and calendar month (UTC), and the quota state they lead to.
//!
//! Messages are added by the transaction (or, on PostgreSQL, the batch statement) that stores
//! their events, so only newly stored events count and a duplicate event id never counts twice.
//! API requests are added by each replica's periodic flush (`add_api_requests`). Every addition
//! is an upsert (`count = count + n`), so replicas add up exactly. Rows are kept after their
//! month ends: they are the usage history.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::upsert::excluded;
use tenant_core::TenantId;

use crate::pg_static::{PgStatic, SqliteStatic};
use crate::schema::{tenants, usage_counters};
use crate::{AnyConnection, StoreResult};

/// The event types that count as messages.
pub const METERED_EVENT_TYPES: &[&str] = &["message.received", "message.sent"];

/// Whether an event of this type counts as a message.
pub fn is_metered(event_type: &str) -> bool {
    METERED_EVENT_TYPES.contains(&event_type)
}

/// The calendar month (UTC) of `at`, as `YYYY-MM`: the key of its usage period.
pub fn period_of(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", at.year(), at.month())
}

/// One tenant's usage in one period.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = usage_counters)]
pub struct UsageRow {
    /// UUID text of the tenant.
    pub tenant_id: String,
    /// `YYYY-MM`.
    pub period: String,
    /// Messages received and sent.
    pub messages: i64,
    /// API requests made with the tenant's credentials.
    pub api_requests: i64,
    /// When the soft-limit event of the period was sent.
    pub threshold_notified_at: Option<NaiveDateTime>,
    /// When the hard-limit event of the period was sent.
    pub exceeded_at: Option<NaiveDateTime>,
}

impl UsageRow {
    /// What judging the quota needs of this row; `None` if its tenant id is not a UUID.
    pub fn counter(&self) -> Option<MessageCounter> {
        Some(MessageCounter {
            tenant_id: self.tenant_id.parse().ok()?,
            period: self.period.clone(),
            messages: self.messages,
            threshold_notified: self.threshold_notified_at.is_some(),
            exceeded: self.exceeded_at.is_some(),
        })
    }
}

/// A tenant's message counter of a period, as far as judging its quota needs it: the count and
/// whether each mark is set, not when (see [`UsageRow`] for the whole row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageCounter {
    /// The tenant.
    pub tenant_id: TenantId,
    /// `YYYY-MM`.
    pub period: String,
    /// Messages received and sent.
    pub messages: i64,
    /// Whether the soft-limit event of the period was sent (`threshold_notified_at` is set).
    pub threshold_notified: bool,
    /// Whether the hard-limit event of the period was sent (`exceeded_at` is set).
    pub exceeded: bool,
}

macro_rules! upsert_add {
    ($conn:expr, $rows:expr, $column:ident) => {
        diesel::insert_into(usage_counters::table)
            .values($rows)
            .on_conflict((usage_counters::tenant_id, usage_counters::period))
            .do_update()
            .set(
                usage_counters::$column
                    .eq(usage_counters::$column + excluded(usage_counters::$column)),
            )
            .execute($conn)
    };
}

/// Adds to a tenant's messages of a period. Diesel's own upsert (`do_update`) is never kept
/// prepared; this statement is, on both backends, as it runs for every ingest batch (see
/// `crate::pg_static`). No `RETURNING`: on SQLite an upsert returning its row costs ~25k
/// instructions more a call (measured, docs/benchmarks.md), more than reading a batch's
/// counters back with one statement. Placeholders: tenant, period, messages.
const ADD_MESSAGES: &str = "INSERT INTO usage_counters (tenant_id, period, messages, api_requests) \
    VALUES ($1, $2, $3, 0) ON CONFLICT (tenant_id, period) \
    DO UPDATE SET messages = usage_counters.messages + excluded.messages";

/// The id of [`ADD_MESSAGES`] in Diesel's statement cache.
struct AddMessages;

/// Adds `n` messages to a tenant's period (inside the caller's transaction).
pub fn add_messages(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    period: &str,
    n: i64,
) -> StoreResult<()> {
    let tenant = tenant_id.to_string();
    match conn {
        AnyConnection::Postgresql(pg) => PgStatic::<AddMessages>::new(ADD_MESSAGES)
            .bind::<Text, _>(&tenant)
            .bind::<Text, _>(period)
            .bind::<BigInt, _>(n)
            .execute(pg)?,
        AnyConnection::Sqlite(lite) => SqliteStatic::<AddMessages>::new(ADD_MESSAGES)
            .bind::<Text, _>(&tenant)
            .bind::<Text, _>(period)
            .bind::<BigInt, _>(n)
            .execute(lite)?,
    };
    Ok(())
}

/// Adds API request counts, `(tenant, period, n)` each; tenants deleted meanwhile are skipped.
pub fn add_api_requests(
    conn: &mut AnyConnection,
    counts: &[(TenantId, String, i64)],
) -> StoreResult<()> {
    crate::write_transaction(conn, |c| {
        for (tenant, period, n) in counts {
            if !crate::tenants::exists(c, tenant)? {
                continue;
            }
            let row = (
                usage_counters::tenant_id.eq(tenant.to_string()),
                usage_counters::period.eq(period),
                usage_counters::messages.eq(0_i64),
                usage_counters::api_requests.eq(*n),
            );
            match c {
                AnyConnection::Postgresql(pg) => upsert_add!(pg, row, api_requests)?,
                AnyConnection::Sqlite(lite) => upsert_add!(lite, row, api_requests)?,
            };
        }
        Ok(())
    })
}

/// A tenant's usage rows, newest period first (at most `limit`).
pub fn history(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    limit: i64,
) -> StoreResult<Vec<UsageRow>> {
    Ok(usage_counters::table
        .filter(usage_counters::tenant_id.eq(tenant_id.to_string()))
        .order(usage_counters::period.desc())
        .limit(limit)
        .select(UsageRow::as_select())
        .load(conn)?)
}

/// The usage rows of a period of the tenants listed in a JSON array, on SQLite: one statement
/// kept prepared whatever the number of tenants (an `IN` list of binds is prepared anew for each
/// call). Placeholders: period, tenants.
const IN_PERIOD_SQLITE: &str = "SELECT tenant_id, period, messages, api_requests, \
    threshold_notified_at, exceeded_at FROM usage_counters \
    WHERE period = $1 AND tenant_id IN (SELECT value FROM json_each($2))";

/// The id of [`IN_PERIOD_SQLITE`] in Diesel's statement cache.
struct InPeriod;

/// The message counters of a period of the tenants listed in a JSON array, on SQLite, as
/// [`MessageCounter`]s: each row names its tenant by its position in the list (`k`), and
/// answers the marks as booleans, so no text or timestamp is decoded (this runs after every
/// ingest batch: ~6.7k instructions an ingest request against ~10.5k for whole rows,
/// docs/benchmarks.md). Placeholders: tenants, period.
const COUNTERS_IN_PERIOD_SQLITE: &str = "SELECT j.key AS k, u.messages AS n, \
    u.threshold_notified_at IS NOT NULL AS t, u.exceeded_at IS NOT NULL AS x \
    FROM json_each($1) j JOIN usage_counters u ON u.tenant_id = j.value AND u.period = $2";

/// The id of [`COUNTERS_IN_PERIOD_SQLITE`] in Diesel's statement cache.
struct CountersInPeriod;

/// A row of [`COUNTERS_IN_PERIOD_SQLITE`].
#[derive(QueryableByName)]
struct CounterRow {
    /// The position of the tenant in the list bound.
    #[diesel(sql_type = BigInt)]
    k: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Bool)]
    t: bool,
    #[diesel(sql_type = Bool)]
    x: bool,
}

/// The tenants as a JSON array of strings (UUIDs need no escaping in one).
fn json_ids(tenant_ids: &[TenantId]) -> String {
    use std::fmt::Write as _;
    let mut json = String::with_capacity(2 + tenant_ids.len() * 39);
    json.push('[');
    for (k, id) in tenant_ids.iter().enumerate() {
        if k > 0 {
            json.push(',');
        }
        // Writing to a String cannot fail.
        let _ = write!(json, "\"{id}\"");
    }
    json.push(']');
    json
}

/// The message counters of these tenants in `period` (tenants without one are left out), as
/// judging their quotas needs them: as [`in_period`] with [`UsageRow::counter`], reading less.
/// List each tenant once (on SQLite a tenant listed twice is answered twice).
pub fn counters_in_period(
    conn: &mut AnyConnection,
    period: &str,
    tenant_ids: &[TenantId],
) -> StoreResult<Vec<MessageCounter>> {
    match conn {
        AnyConnection::Sqlite(lite) => {
            let rows: Vec<CounterRow> =
                SqliteStatic::<CountersInPeriod>::new(COUNTERS_IN_PERIOD_SQLITE)
                    .bind::<Text, _>(json_ids(tenant_ids))
                    .bind::<Text, _>(period)
                    .load(lite)?;
            Ok(rows
                .into_iter()
                .filter_map(|r| {
                    Some(MessageCounter {
                        tenant_id: *tenant_ids.get(usize::try_from(r.k).ok()?)?,
                        period: period.to_owned(),
                        messages: r.n,
                        threshold_notified: r.t,
                        exceeded: r.x,
                    })
                })
                .collect())
        }
        AnyConnection::Postgresql(_) => Ok(in_period(conn, period, tenant_ids)?
            .iter()
            .filter_map(UsageRow::counter)
            .collect()),
    }
}

/// The usage rows of these tenants in `period` (tenants without one are left out).
pub fn in_period(
    conn: &mut AnyConnection,
    period: &str,
    tenant_ids: &[TenantId],
) -> StoreResult<Vec<UsageRow>> {
    match conn {
        AnyConnection::Sqlite(lite) => Ok(SqliteStatic::<InPeriod>::new(IN_PERIOD_SQLITE)
            .bind::<Text, _>(period)
            .bind::<Text, _>(json_ids(tenant_ids))
            .load(lite)?),
        AnyConnection::Postgresql(_) => {
            let ids: Vec<String> = tenant_ids.iter().map(ToString::to_string).collect();
            Ok(usage_counters::table
                .filter(usage_counters::period.eq(period))
                .filter(usage_counters::tenant_id.eq_any(&ids))
                .select(UsageRow::as_select())
                .load(conn)?)
        }
    }
}

/// Records that the soft-limit event of the period is being sent: `true` for the one caller
/// (of any replica) that recorded it, `false` if it was already.
pub fn claim_threshold(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    period: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let n = diesel::update(
        usage_counters::table
            .filter(usage_counters::tenant_id.eq(tenant_id.to_string()))
            .filter(usage_counters::period.eq(period))
            .filter(usage_counters::threshold_notified_at.is_null()),
    )
    .set(usage_counters::threshold_notified_at.eq(now.naive_utc()))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records that the tenant used up its messages in `period`: the hard-limit event's mark on the
/// counter and the tenant's `quota_exceeded_period` (which takes its channel accounts out of the
/// gateway config; the config revision is bumped). `true` for the one caller that recorded it.
pub fn claim_exceeded(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    period: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    crate::write_transaction(conn, |c| {
        let n = diesel::update(
            usage_counters::table
                .filter(usage_counters::tenant_id.eq(tenant_id.to_string()))
                .filter(usage_counters::period.eq(period))
                .filter(usage_counters::exceeded_at.is_null()),
        )
        .set(usage_counters::exceeded_at.eq(now.naive_utc()))
        .execute(c)?;
        if n == 0 {
            return Ok(false);
        }
        diesel::update(tenants::table.find(tenant_id.to_string()))
            .set(tenants::quota_exceeded_period.eq(period))
            .execute(c)?;
        crate::config_revision::bump(c)?;
        Ok(true)
    })
}

/// Forgets the hard-limit mark of a tenant's period (its plan or limits changed: the quota is
/// judged again), and lets its channels back into the gateway config.
pub fn clear_exceeded(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    period: &str,
) -> StoreResult<()> {
    diesel::update(
        usage_counters::table
            .filter(usage_counters::tenant_id.eq(tenant_id.to_string()))
            .filter(usage_counters::period.eq(period)),
    )
    .set(usage_counters::exceeded_at.eq(None::<NaiveDateTime>))
    .execute(conn)?;
    let n = diesel::update(
        tenants::table
            .find(tenant_id.to_string())
            .filter(tenants::quota_exceeded_period.is_not_null()),
    )
    .set(tenants::quota_exceeded_period.eq(None::<String>))
    .execute(conn)?;
    if n > 0 {
        crate::config_revision::bump(conn)?;
    }
    Ok(())
}

/// The tenants whose message quota is used up in `period`.
pub fn exceeded_tenants(conn: &mut AnyConnection, period: &str) -> StoreResult<Vec<TenantId>> {
    let ids: Vec<String> = tenants::table
        .filter(tenants::quota_exceeded_period.eq(period))
        .select(tenants::id)
        .load(conn)?;
    ids.into_iter().map(crate::tenants::stored_id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn periods_are_utc_months() {
        let at = Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 59).unwrap();
        assert_eq!(period_of(at), "2026-01");
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(period_of(at), "2026-12");
        assert!(is_metered("message.sent") && !is_metered("session.started"));
    }
}
