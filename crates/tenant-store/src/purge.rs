//! The data lifecycle's SQL: retention purges in small batches, the batched removal of a deleted
//! tenant's rows, the lease that lets one replica at a time purge, and SQLite's incremental vacuum.
//!
//! Every delete here is one statement on at most `limit` rows chosen by a `LIMIT`ed subquery on
//! an index (`id IN (SELECT id … LIMIT n)`), committed on its own: a purge never holds the
//! writers' lock for longer than one small batch. The rules (what is old, in which order, how
//! large a batch) are the caller's (`tenant-service`'s lifecycle module).

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use tenant_core::TenantId;

use crate::events::{STATUS_FAILED, STATUS_SUCCEEDED};
use crate::schema::tenants;
use crate::{AnyConnection, StoreResult};

/// Runs `sql` (written with `$1`, `$2`, … placeholders) with binds on either backend.
macro_rules! run_sql {
    ($conn:expr, $sql:expr $(, $ty:ty => $val:expr)* $(,)?) => {{
        let sql: &str = $sql;
        match $conn {
            AnyConnection::Postgresql(c) => diesel::sql_query(sql)
                $(.bind::<$ty, _>($val))*
                .execute(c),
            AnyConnection::Sqlite(c) => diesel::sql_query(sql.replace('$', "?"))
                $(.bind::<$ty, _>($val))*
                .execute(c),
        }
    }};
}

/// Takes or renews the lease `name` for `holder` until `until`; `false` while another holder's
/// lease has not expired at `now`. One statement, so two replicas never both succeed.
pub fn try_lease(
    conn: &mut AnyConnection,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<bool> {
    let n = run_sql!(
        conn,
        "INSERT INTO maintenance_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE maintenance_leases.holder = excluded.holder OR maintenance_leases.expires_at < $4",
        Text => name,
        Text => holder,
        Timestamp => until.naive_utc(),
        Timestamp => now.naive_utc(),
    )?;
    Ok(n == 1)
}

/// Gives the lease `name` up, if `holder` holds it, so another replica may take it at once.
pub fn release_lease(conn: &mut AnyConnection, name: &str, holder: &str) -> StoreResult<()> {
    run_sql!(
        conn,
        "DELETE FROM maintenance_leases WHERE name = $1 AND holder = $2",
        Text => name,
        Text => holder,
    )?;
    Ok(())
}

/// Which finished deliveries a purge takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Delivered (2xx).
    Delivered,
    /// Dead letters: exhausted, or their endpoint disabled.
    Dead,
}

/// Deletes at most `limit` deliveries finished (`which`) before `before`, with their attempts
/// (by cascade); how many deliveries went. A pending delivery has no completion time: never taken.
pub fn finished_deliveries(
    conn: &mut AnyConnection,
    which: Finished,
    before: DateTime<Utc>,
    limit: i64,
) -> StoreResult<usize> {
    let status = match which {
        Finished::Delivered => STATUS_SUCCEEDED,
        Finished::Dead => STATUS_FAILED,
    };
    Ok(run_sql!(
        conn,
        "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
         WHERE completed_at IS NOT NULL AND completed_at < $1 AND status = $2 LIMIT $3)",
        Timestamp => before.naive_utc(),
        Text => status,
        BigInt => limit,
    )?)
}

/// Whose events an event purge takes, by the tenant's plan (plan names are the built-in ones,
/// never user input).
#[derive(Debug, Clone, Copy)]
pub enum PlanScope<'a> {
    /// Every tenant's.
    All,
    /// Only the events of tenants on these plans.
    Only(&'a [&'static str]),
    /// The events of tenants on any plan but these, and the operator's (no tenant).
    Except(&'a [&'static str]),
}

fn plan_list(plans: &[&'static str]) -> String {
    plans
        .iter()
        .filter(|p| p.bytes().all(|b| b.is_ascii_lowercase()))
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deletes at most `limit` events created before `before` in `scope` that no delivery refers
/// to any more (a pending delivery keeps its event; a finished one goes first, by its own
/// retention); how many went.
pub fn old_events(
    conn: &mut AnyConnection,
    before: DateTime<Utc>,
    scope: PlanScope<'_>,
    limit: i64,
) -> StoreResult<usize> {
    let scope = match scope {
        PlanScope::All => String::new(),
        PlanScope::Only([]) => return Ok(0),
        PlanScope::Except([]) => String::new(),
        PlanScope::Only(plans) => format!(
            " AND e.tenant_id IN (SELECT t.id FROM tenants t WHERE t.plan IN ({}))",
            plan_list(plans)
        ),
        PlanScope::Except(plans) => format!(
            // The operator's events (no tenant) keep the default retention.
            " AND (e.tenant_id IS NULL \
             OR e.tenant_id NOT IN (SELECT t.id FROM tenants t WHERE t.plan IN ({})))",
            plan_list(plans)
        ),
    };
    let sql = format!(
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id){scope} \
         LIMIT $2)"
    );
    Ok(run_sql!(
        conn,
        &sql,
        Timestamp => before.naive_utc(),
        BigInt => limit,
    )?)
}

/// Deletes at most `limit` audit entries recorded before `before`; how many went.
pub fn old_audit(
    conn: &mut AnyConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> StoreResult<usize> {
    Ok(run_sql!(
        conn,
        "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE created_at < $1 \
         LIMIT $2)",
        Timestamp => before.naive_utc(),
        BigInt => limit,
    )?)
}

/// The deleted tenants whose rows are still to be purged, the longest-waiting first (at most
/// `limit`).
pub fn deleted_tenants(conn: &mut AnyConnection, limit: i64) -> StoreResult<Vec<TenantId>> {
    let ids: Vec<String> = tenants::table
        .filter(tenants::deleted_at.is_not_null())
        .order(tenants::deleted_at.asc())
        .select(tenants::id)
        .limit(limit)
        .load(conn)?;
    ids.into_iter().map(crate::tenants::stored_id).collect()
}

/// The tables a deleted tenant's rows are purged from, in order (each before the ones its rows
/// cascade from, so no statement cascades into more than its own batch): deliveries take their
/// attempts, endpoints their circuits; the tenant's own row goes last, with the few rows left
/// (channels, keys, users, limits, usage, slug redirects) by cascade.
pub const TENANT_TABLES: [&str; 4] = [
    "webhook_deliveries",
    "events",
    "sessions",
    "webhook_endpoints",
];

/// What one step of a deleted tenant's purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStep {
    /// Deleted this many rows of this table; there may be more.
    Rows(&'static str, usize),
    /// The tenant's row is gone, and with it the last of its rows.
    Done,
}

/// One batch of a deleted tenant's purge: at most `limit` rows of the first of
/// [`TENANT_TABLES`] that still has some, else the tenant's row itself. Only ever touches a
/// tenant marked deleted ([`crate::tenants::delete`]).
pub fn tenant_step(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    limit: i64,
) -> StoreResult<TenantStep> {
    let id = tenant.to_string();
    let deleted: i64 = tenants::table
        .filter(tenants::id.eq(&id))
        .filter(tenants::deleted_at.is_not_null())
        .count()
        .get_result(conn)?;
    if deleted == 0 {
        return Ok(TenantStep::Done);
    }
    for table in TENANT_TABLES {
        let sql = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE tenant_id = $1 \
             LIMIT $2)"
        );
        let n = run_sql!(conn, &sql, Text => &id, BigInt => limit)?;
        if n > 0 {
            return Ok(TenantStep::Rows(table, n));
        }
    }
    run_sql!(
        conn,
        "DELETE FROM tenants WHERE id = $1 AND deleted_at IS NOT NULL",
        Text => &id,
    )?;
    Ok(TenantStep::Done)
}

/// Every table holding rows of a tenant, with how many it holds (the audit log is left out:
/// it outlives the tenant by design); for the operator's CLI and the tests.
pub fn tenant_rows(
    conn: &mut AnyConnection,
    tenant: &TenantId,
) -> StoreResult<Vec<(&'static str, i64)>> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let id = tenant.to_string();
    let mut out = Vec::new();
    for (table, column) in [
        ("tenants", "id"),
        ("channels", "tenant_id"),
        ("api_keys", "tenant_id"),
        ("tenant_users", "tenant_id"),
        ("sessions", "tenant_id"),
        ("webhook_endpoints", "tenant_id"),
        ("events", "tenant_id"),
        ("webhook_deliveries", "tenant_id"),
        ("tenant_limits", "tenant_id"),
        ("usage_counters", "tenant_id"),
        ("tenant_slug_redirects", "tenant_id"),
    ] {
        let sql = format!("SELECT count(*) AS n FROM {table} WHERE {column} = $1");
        let count: Count = match conn {
            AnyConnection::Postgresql(c) => {
                diesel::sql_query(sql).bind::<Text, _>(&id).get_result(c)?
            }
            AnyConnection::Sqlite(c) => diesel::sql_query(sql.replace('$', "?"))
                .bind::<Text, _>(&id)
                .get_result(c)?,
        };
        out.push((table, count.n));
    }
    Ok(out)
}

/// On SQLite, returns at most `pages` free pages to the file system, and how many free pages are
/// left (0 unless the database uses `auto_vacuum = INCREMENTAL`, as new ones do); nothing on
/// PostgreSQL, whose autovacuum reuses the space.
pub fn incremental_vacuum(conn: &mut AnyConnection, pages: u32) -> StoreResult<i64> {
    let AnyConnection::Sqlite(c) = conn else {
        return Ok(0);
    };
    let mode: Pragma =
        diesel::sql_query("SELECT auto_vacuum AS n FROM pragma_auto_vacuum").get_result(c)?;
    if mode.n != 2 {
        return Ok(0);
    }
    c.batch_execute(&format!("PRAGMA incremental_vacuum({pages})"))?;
    let left: Pragma =
        diesel::sql_query("SELECT freelist_count AS n FROM pragma_freelist_count").get_result(c)?;
    Ok(left.n)
}

#[derive(QueryableByName)]
struct Pragma {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Rewrites the whole database once, switching an existing SQLite database to incremental
/// auto-vacuum (a database created before this release has none); `VACUUM` on PostgreSQL. Holds
/// the database for as long as it takes: an operator's command for a quiet moment.
pub fn vacuum_full(conn: &mut AnyConnection) -> StoreResult<()> {
    match conn {
        AnyConnection::Sqlite(c) => c.batch_execute("PRAGMA auto_vacuum = INCREMENTAL; VACUUM")?,
        AnyConnection::Postgresql(c) => c.batch_execute("VACUUM")?,
    }
    Ok(())
}
