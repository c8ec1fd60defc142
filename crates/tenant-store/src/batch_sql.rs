//! What the batch statements of the group-commit write paths share (tenant creates, channel
//! writes, webhook endpoint writes, API key issues): the SQL of their audit and
//! `Idempotency-Key` rows, the rows they return, the portable form of a batch on SQLite, and
//! the whole of a batch of creates limited per tenant ([`limited_create_many`]).
//!
//! On PostgreSQL a batch is one statement of this shape (placeholders numbered in the order
//! they appear, see [`crate::pg_static`]):
//!
//! ```sql
//! WITH a AS (…audit rows, $1–$13…), i AS (…Idempotency-Key rows, $14–$25…),
//!      done AS (…the writes, RETURNING id…),
//!      audit AS (…the audit rows of the writes made…),
//!      idem AS (…the key rows of the writes made…)
//! SELECT id FROM done
//! ```
//!
//! [`AUDIT_ROWS`] is bound by [`crate::pg_static::bind_audit`] first, [`IDEM_ROWS`] (when the
//! statement has keys) by [`crate::pg_static::bind_idempotency`] next; each row names its
//! owner, the id `done` returns for the write it belongs to, so only the rows of writes made
//! are inserted ([`AUDIT_INSERT`], [`IDEM_INSERT`]).

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};

use crate::audit::AuditRow;
use crate::idempotency::IdempotencyRow;
use crate::pg_static::{PgStatic, bind_audit, bind_idempotency, col};
use crate::schema::{audit_log, idempotency_keys, tenants};
use crate::{AnyConnection, StoreError, StoreResult, config_revision, write_transaction};

/// The audit rows of a batch, with their owner: `$1`–`$13`, the first CTE of a statement.
pub(crate) const AUDIT_ROWS: &str = "\
a AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                         $11::text[], $12::timestamp[], $13::text[])
        AS a(id, tenant_id, actor_type, actor_id, action, resource_type, resource_id,
             request_id, client_addr, user_agent, details, created_at, owner)
)";

/// The `Idempotency-Key` rows of a batch, with their owner: `$14`–`$25`, right after
/// [`AUDIT_ROWS`].
pub(crate) const IDEM_ROWS: &str = "\
i AS (
    SELECT * FROM unnest($14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
                         $19::int4[], $20::text[], $21::text[], $22::bool[],
                         $23::timestamp[], $24::timestamp[], $25::text[])
        AS i(caller, method, path, idem_key, fingerprint, status_code, location, body, sealed,
             created_at, expires_at, owner)
)";

/// Inserts the audit rows whose owner the statement's `done` CTE returned.
pub(crate) const AUDIT_INSERT: &str = "\
audit AS (
    INSERT INTO audit_log (id, tenant_id, actor_type, actor_id, action, resource_type,
                           resource_id, request_id, client_addr, user_agent, details, created_at)
    SELECT a.id, a.tenant_id, a.actor_type, a.actor_id, a.action, a.resource_type,
           a.resource_id, a.request_id, a.client_addr, a.user_agent, a.details, a.created_at
    FROM a WHERE a.owner IN (SELECT id FROM done)
)";

/// Inserts the `Idempotency-Key` rows whose owner `done` returned; a key taken meanwhile fails
/// the whole statement (the caller then writes the batch one by one).
pub(crate) const IDEM_INSERT: &str = "\
idem AS (
    INSERT INTO idempotency_keys (caller, method, path, idem_key, fingerprint, status_code,
                                  location, body, sealed, created_at, expires_at)
    SELECT i.caller, i.method, i.path, i.idem_key, i.fingerprint, i.status_code, i.location,
           i.body, i.sealed, i.created_at, i.expires_at
    FROM i WHERE i.owner IN (SELECT id FROM done)
)";

/// Raises the config revision by the number of writes `done` returned, in the slot bound at
/// placeholder `$slot` (the statement's last), and only if there are any (a raised revision
/// makes every replica render the config again).
pub(crate) fn bump_cte(slot: u32) -> String {
    format!(
        "bump AS (
    UPDATE config_revision SET revision = revision + (SELECT count(*) FROM done)
    WHERE slot = ${slot} AND EXISTS (SELECT 1 FROM done)
)"
    )
}

/// The condition under which a batch's create `n` (an `unnest` with `tenant_id` and `room`)
/// is written: its tenant exists, and has fewer rows in `table` than its room.
pub(crate) fn admitted(table: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM tenants t WHERE t.id = n.tenant_id AND t.deleted_at IS NULL)
      AND (SELECT count(*) FROM {table} c WHERE c.tenant_id = n.tenant_id) < n.room"
    )
}

/// A row of `SELECT id FROM done`.
#[derive(QueryableByName)]
pub(crate) struct IdRow {
    #[diesel(sql_type = Text)]
    pub(crate) id: String,
}

/// The ids a batch statement returned (`SELECT id FROM done`).
pub(crate) fn load_ids<K: 'static>(
    q: PgStatic<'_, K>,
    conn: &mut PgConnection,
) -> QueryResult<Vec<String>> {
    let rows: Vec<IdRow> = q.load(conn)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// The audit and `Idempotency-Key` rows of a batch's items, each with its owner (the id the
/// statement's `done` returns for its item), to bind first ([`Owned::bind`]).
pub(crate) struct Owned<'a> {
    audit: Vec<(&'a AuditRow, &'a str)>,
    idem: Vec<(&'a IdempotencyRow, &'a str)>,
}

impl<'a> Owned<'a> {
    /// The rows of `items`, each owned by the id of `owners` at its place.
    pub(crate) fn of<T: WithRows>(
        items: &'a [T],
        owners: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut audit = Vec::with_capacity(items.len());
        let mut idem = Vec::new();
        for (item, id) in items.iter().zip(owners) {
            audit.push((item.audit(), id));
            if let Some(key) = item.idempotency() {
                idem.push((key, id));
            }
        }
        Self { audit, idem }
    }

    /// A statement `sql` with the audit rows bound (`$1`–`$13`, [`AUDIT_ROWS`]) and, `with_keys`,
    /// the key rows (`$14`–`$25`, [`IDEM_ROWS`]).
    pub(crate) fn bind<K>(&'a self, sql: &'static str, with_keys: bool) -> PgStatic<'a, K> {
        let q = bind_audit(PgStatic::new(sql), &self.audit);
        if with_keys {
            bind_idempotency(q, &self.idem)
        } else {
            q
        }
    }
}

/// Whether each key of `keys` is among `done`, in order.
pub(crate) fn flags<'a>(keys: impl Iterator<Item = &'a str>, done: &[String]) -> Vec<bool> {
    keys.map(|k| done.iter().any(|d| d == k)).collect()
}

/// The rows that go with a write of a batch: its audit entry, and its `Idempotency-Key` row.
pub(crate) trait WithRows {
    /// The audit entry, written only if the write is made.
    fn audit(&self) -> &AuditRow;
    /// The request's key row, written only if the write is made.
    fn idempotency(&self) -> Option<&IdempotencyRow> {
        None
    }
}

/// A batch with portable statements, in one write transaction (SQLite; one commit, one lock):
/// `write` makes each item's write, or answers `None` when it cannot be made as asked; the
/// rows of the writes made go in with them, and with `bump`, the config revision is raised by
/// their number in that slot. Answers, in order, what each write gave.
pub(crate) fn portable<T: WithRows, O>(
    conn: &mut AnyConnection,
    items: &[T],
    bump: Option<i32>,
    mut write: impl FnMut(&mut AnyConnection, &T) -> StoreResult<Option<O>>,
) -> StoreResult<Vec<Option<O>>> {
    write_transaction(conn, |c| {
        let mut out = Vec::with_capacity(items.len());
        let mut made = 0;
        for item in items {
            let answer = write(c, item)?;
            if answer.is_some() {
                made += 1;
                diesel::insert_into(audit_log::table)
                    .values(item.audit())
                    .execute(c)?;
                if let Some(key) = item.idempotency() {
                    diesel::insert_into(idempotency_keys::table)
                        .values(key)
                        .execute(c)?;
                }
            }
            out.push(answer);
        }
        if let Some(slot) = bump {
            config_revision::bump_by(c, slot, made)?;
        }
        Ok::<_, StoreError>(out)
    })
}

/// Room counted across a batch: the creates of one tenant earlier in the batch already took
/// some of the room its items carry, so the count read in the batch's transaction (which sees
/// them) is compared with what the tenant had before the batch.
#[derive(Debug, Default)]
pub(crate) struct Room {
    added: std::collections::HashMap<String, i64>,
}

impl Room {
    /// Whether `tenant_id`, which has `have` now (the batch's own adds included), has room for
    /// one more of `room` (the room before the batch, less the batch's earlier items).
    pub(crate) fn admits(&self, tenant_id: &str, have: i64, room: i64) -> bool {
        have - self.added.get(tenant_id).copied().unwrap_or(0) < room
    }

    /// Counts one add for `tenant_id`.
    pub(crate) fn add(&mut self, tenant_id: &str) {
        *self.added.entry(tenant_id.to_owned()).or_default() += 1;
    }
}

/// The statement of a batch of creates that are limited per tenant (channels, webhook
/// endpoints): each row of `table`, its `columns` (name and PostgreSQL type) bound as arrays
/// from `$26` on and each row's room right after them, is inserted only if its tenant exists
/// and has fewer rows than its room ([`admitted`]; a unique key or id taken is left to
/// `ON CONFLICT DO NOTHING`), with the audit and `Idempotency-Key` rows of those inserted;
/// with `bump`, the config revision is raised by their number in the slot bound last.
pub(crate) fn limited_insert_sql(table: &str, columns: &[(&str, &str)], bump: bool) -> String {
    let first = 26;
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let selected: Vec<String> = names.iter().map(|name| format!("n.{name}")).collect();
    let mut arrays: Vec<String> = columns
        .iter()
        .zip(first..)
        .map(|((_, ty), n)| format!("${n}::{ty}[]"))
        .collect();
    let room = first + columns.len();
    arrays.push(format!("${room}::int8[]"));
    let bump = if bump {
        format!(
            ", {}",
            bump_cte(u32::try_from(room + 1).unwrap_or(u32::MAX))
        )
    } else {
        String::new()
    };
    format!(
        "WITH {AUDIT_ROWS}, {IDEM_ROWS}, done AS (
    INSERT INTO {table} ({names})
    SELECT {selected}
    FROM unnest({arrays})
        WITH ORDINALITY
        AS n({names}, room, ord)
    WHERE {admitted}
    ORDER BY n.ord
    ON CONFLICT DO NOTHING
    RETURNING id
), {AUDIT_INSERT}, {IDEM_INSERT}{bump}
SELECT id FROM done",
        names = names.join(", "),
        selected = selected.join(", "),
        arrays = arrays.join(", "),
        admitted = admitted(table),
    )
}

/// A create of a batch of [`limited_create_many`]: its row's id and tenant, and its room (how
/// many rows its tenant may have at most before it is added: the limit, less the creates for
/// the same tenant earlier in the batch).
pub(crate) trait LimitedCreate: WithRows {
    /// The new row's id (what the statement's `done` returns).
    fn id(&self) -> &str;
    /// Its tenant.
    fn tenant_id(&self) -> &str;
    /// The room.
    fn room(&self) -> i64;
}

/// How [`limited_create_many`] writes one kind of row.
pub(crate) struct LimitedInsert<T, K> {
    /// The statement ([`limited_insert_sql`]) for PostgreSQL.
    pub(crate) sql: &'static str,
    /// Binds the statement's columns, in its order, for `items` (the room is bound after them).
    pub(crate) bind: for<'a> fn(PgStatic<'a, K>, &'a [T]) -> PgStatic<'a, K>,
    /// Whether the config revision is raised by the rows added.
    pub(crate) bump: bool,
    /// A tenant's rows now (SQLite).
    pub(crate) count: fn(&mut AnyConnection, &str) -> QueryResult<i64>,
    /// Inserts an item's row, answering whether it was (SQLite).
    pub(crate) insert: fn(&mut AnyConnection, &T) -> QueryResult<bool>,
}

/// Adds each item of a batch of creates limited per tenant, with its rows, unless it cannot be
/// added as asked (no tenant, no room, a key taken); answers, in order, whether each was. One
/// statement on PostgreSQL; on SQLite, portable ones in one transaction ([`portable`]), the
/// room counted across the batch ([`Room`]).
pub(crate) fn limited_create_many<T: LimitedCreate, K: 'static>(
    conn: &mut AnyConnection,
    items: &[T],
    how: &LimitedInsert<T, K>,
) -> StoreResult<Vec<bool>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let slot = how.bump.then(config_revision::random_slot);
    Ok(match conn {
        AnyConnection::Postgresql(pg) => {
            let owned = Owned::of(items, items.iter().map(T::id));
            let mut q = (how.bind)(owned.bind::<K>(how.sql, true), items)
                .bind::<Array<BigInt>, _>(col(items, T::room));
            if let Some(slot) = slot {
                q = q.bind::<Integer, _>(slot);
            }
            flags(items.iter().map(T::id), &load_ids(q, pg)?)
        }
        AnyConnection::Sqlite(_) => {
            let mut room = Room::default();
            portable(conn, items, slot, |c, item| {
                let tenant = item.tenant_id();
                let admitted = tenant_alive(c, tenant)?
                    && room.admits(tenant, (how.count)(c, tenant)?, item.room())
                    && (how.insert)(c, item)?;
                if admitted {
                    room.add(tenant);
                }
                Ok(admitted.then_some(()))
            })?
            .iter()
            .map(Option::is_some)
            .collect()
        }
    })
}

/// Whether a tenant exists and is not deleted.
pub(crate) fn tenant_alive(conn: &mut AnyConnection, tenant_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        tenants::table
            .filter(tenants::id.eq(tenant_id))
            .filter(tenants::deleted_at.is_null()),
    ))
    .get_result(conn)
}

/// `sql` with its runs of white space folded to one space (for comparing statements).
#[cfg(test)]
pub(crate) fn folded(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
