//! The data lifecycle's SQL: retention purges in small batches, the batched removal of a deleted
//! tenant's rows, the lease that lets one replica at a time purge, and SQLite's incremental vacuum.
//!
//! Every delete here is one statement on at most `limit` rows chosen on an index (a `LIMIT`ed
//! subquery, or the ids a walk by age read just before), committed on its own: a purge never
//! holds the writers' lock for longer than one small batch. The rules (what is old, in which order, how
//! large a batch) are the caller's (`tenant-service`'s lifecycle module).

use chrono::{DateTime, NaiveDateTime, Utc};
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

/// How far a walk by age has come within one purge round: the next batch looks only at rows
/// from there on, so a batch never walks again over the rows the earlier ones kept (an event
/// a pending delivery or a dead letter still refers to, a dead letter met by the delivered
/// pass) nor over the index entries of the rows they removed. A new round starts again from
/// the oldest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(Position);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Position {
    /// From the oldest row.
    #[default]
    Start,
    /// From this time on (rows at it included).
    From(NaiveDateTime),
    /// Within the rows at exactly this time, by id after this one: a whole batch of them was
    /// kept, so walking by time alone would look at the same rows again.
    Tie(NaiveDateTime, String),
    /// After this time.
    After(NaiveDateTime),
}

/// What one batch of a walk by age did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Rows looked at.
    pub seen: usize,
    /// Rows deleted among them.
    pub deleted: usize,
    /// No row is left to look at after this batch.
    pub done: bool,
}

/// One bound value of a statement built at run time.
enum Value<'a> {
    Text(&'a str),
    Time(NaiveDateTime),
    Int(i64),
}

/// Binds `$binds` to `$sql` (with `$1`, `$2`, … placeholders) on the backend, then runs `$run`
/// with the query as `$q` and the connection as `$c`.
macro_rules! with_binds {
    ($conn:expr, $sql:expr, $binds:expr, |$q:ident, $c:ident| $run:expr) => {{
        let (sql, binds): (&str, &[Value<'_>]) = ($sql, $binds);
        match $conn {
            AnyConnection::Postgresql($c) => {
                let mut $q = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
                for b in binds {
                    $q = match *b {
                        Value::Text(t) => $q.bind::<Text, _>(t.to_owned()),
                        Value::Time(t) => $q.bind::<Timestamp, _>(t),
                        Value::Int(i) => $q.bind::<BigInt, _>(i),
                    };
                }
                $run
            }
            AnyConnection::Sqlite($c) => {
                let mut $q = diesel::sql_query(sql.replace('$', "?"))
                    .into_boxed::<diesel::sqlite::Sqlite>();
                for b in binds {
                    $q = match *b {
                        Value::Text(t) => $q.bind::<Text, _>(t.to_owned()),
                        Value::Time(t) => $q.bind::<Timestamp, _>(t),
                        Value::Int(i) => $q.bind::<BigInt, _>(i),
                    };
                }
                $run
            }
        }
    }};
}

/// A row a walk by age looks at: its id and its time.
#[derive(QueryableByName)]
struct Candidate {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Timestamp)]
    at: NaiveDateTime,
}

/// One batch of a walk by age over `table`'s `column` (an indexed time), from the cursor on:
/// 1. the at most `limit` oldest rows before `before` that pass `filter` (more conditions on
///    `table`'s columns, e.g. whose tenant), read in the order of the column's index;
/// 2. those of them that `condition` allows (e.g. no delivery refers to the event) are deleted
///    by primary key in one statement that checks the age and `condition` again (a row that
///    changed in between stays).
///
/// The planner never has to guess how many old rows pass `condition`: it is checked by one
/// index probe per candidate, whatever the size of the tables it looks into. Before, one
/// statement asked for "the first `limit` old events no delivery refers to", and PostgreSQL
/// answered it with a hash anti-join that read the whole deliveries table at every batch
/// (docs/benchmarks.md#purge). Advances the cursor past what it looked at.
#[allow(clippy::too_many_arguments)]
fn walk_batch(
    conn: &mut AnyConnection,
    table: &str,
    column: &str,
    filter: &str,
    condition: &str,
    before: NaiveDateTime,
    cursor: &mut Cursor,
    limit: i64,
) -> StoreResult<Batch> {
    let limit = limit.max(1);
    let mut binds = vec![Value::Time(before), Value::Int(limit)];
    let (bound, order) = match &cursor.0 {
        Position::Start => (String::new(), column),
        Position::From(t) => {
            binds.push(Value::Time(*t));
            (format!(" AND {table}.{column} >= $3"), column)
        }
        Position::After(t) => {
            binds.push(Value::Time(*t));
            (format!(" AND {table}.{column} > $3"), column)
        }
        Position::Tie(t, id) => {
            binds.push(Value::Time(*t));
            binds.push(Value::Text(id));
            (
                format!(" AND {table}.{column} = $3 AND {table}.id > $4"),
                "id",
            )
        }
    };
    let sql = format!(
        "SELECT {table}.id AS id, {table}.{column} AS at FROM {table} \
         WHERE {table}.{column} IS NOT NULL AND {table}.{column} < $1{bound}{filter} \
         ORDER BY {table}.{order} LIMIT $2"
    );
    let rows: Vec<Candidate> = with_binds!(conn, &sql, &binds, |q, c| q.load(c))?;
    let full = rows.len() as i64 == limit;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(match cursor.0 {
            // The rows at that time are done; those after it are next.
            Position::Tie(t, _) => {
                cursor.0 = Position::After(t);
                Batch::default()
            }
            _ => Batch {
                done: true,
                ..Batch::default()
            },
        });
    };
    let (first_at, last_at, last_id) = (first.at, last.at, last.id.clone());
    let ids = (2..rows.len() + 2)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut binds = vec![Value::Time(before)];
    binds.extend(rows.iter().map(|c| Value::Text(&c.id)));
    let sql = format!(
        "DELETE FROM {table} WHERE {table}.id IN ({ids}) AND {table}.{column} < $1{condition}"
    );
    let deleted = with_binds!(conn, &sql, &binds, |q, c| q.execute(c))?;
    let mut done = !full;
    cursor.0 = match &cursor.0 {
        // Within a time's rows: on by id until they run out, then after that time.
        Position::Tie(t, _) if full => Position::Tie(*t, last_id),
        Position::Tie(t, _) => {
            done = false;
            Position::After(*t)
        }
        // A whole batch of rows at one time, all kept: walk that time's rows by id.
        _ if full && deleted == 0 && first_at == last_at => Position::Tie(last_at, String::new()),
        _ => Position::From(last_at),
    };
    Ok(Batch {
        seen: rows.len(),
        deleted,
        done,
    })
}

/// Deletes, of the at most `limit` oldest deliveries finished before `before` from the cursor
/// on, those finished as `which`, with their attempts (by cascade). A pending delivery has no
/// completion time: never taken.
pub fn finished_deliveries(
    conn: &mut AnyConnection,
    which: Finished,
    before: DateTime<Utc>,
    cursor: &mut Cursor,
    limit: i64,
) -> StoreResult<Batch> {
    let status = match which {
        Finished::Delivered => STATUS_SUCCEEDED,
        Finished::Dead => STATUS_FAILED,
    };
    // On SQLite a unary `+` keeps the status out of index selection. Without statistics its
    // planner prefers the status index to the primary key for the batch's delete, and so reads
    // every delivery of that status per batch: 49 ms for 50 rows among 190,000 deliveries,
    // against 10 ms for 500 by key (docs/benchmarks.md#purge). PostgreSQL has no unary `+` on
    // text, and its planner takes the key.
    let status_column = match conn {
        AnyConnection::Sqlite(_) => "+webhook_deliveries.status",
        AnyConnection::Postgresql(_) => "webhook_deliveries.status",
    };
    // The statuses are the store's own constants, never user input.
    walk_batch(
        conn,
        "webhook_deliveries",
        "completed_at",
        "",
        &format!(" AND {status_column} = '{status}'"),
        before.naive_utc(),
        cursor,
        limit,
    )
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

/// Deletes, of the at most `limit` oldest events created before `before` in `scope` from the
/// cursor on, those no delivery refers to any more (a pending delivery keeps its event; a
/// finished one goes first, by its own retention).
pub fn old_events(
    conn: &mut AnyConnection,
    before: DateTime<Utc>,
    scope: PlanScope<'_>,
    cursor: &mut Cursor,
    limit: i64,
) -> StoreResult<Batch> {
    let scope = match scope {
        PlanScope::All => String::new(),
        PlanScope::Only([]) => return Ok(Batch::default()),
        PlanScope::Except([]) => String::new(),
        PlanScope::Only(plans) => format!(
            " AND events.tenant_id IN (SELECT t.id FROM tenants t WHERE t.plan IN ({}))",
            plan_list(plans)
        ),
        PlanScope::Except(plans) => format!(
            // The operator's events (no tenant) keep the default retention.
            " AND (events.tenant_id IS NULL \
             OR events.tenant_id NOT IN (SELECT t.id FROM tenants t WHERE t.plan IN ({})))",
            plan_list(plans)
        ),
    };
    walk_batch(
        conn,
        "events",
        "created_at",
        &scope,
        " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = events.id)",
        before.naive_utc(),
        cursor,
        limit,
    )
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
