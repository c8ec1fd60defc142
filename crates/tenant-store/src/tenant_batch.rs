//! Creating many tenants at once (group commit): each new tenant with the rows created with it
//! (its first API key, its audit entries), inserted for a whole batch of concurrent creates in
//! one transaction, with one bump of the config revision.
//!
//! This is the fast path only: a tenant whose id, slug, account or agent id is taken (by an
//! existing tenant or an earlier one of the batch) is skipped with its rows, and reported, so
//! that the caller creates it again through [`crate::tenants::insert`], which resolves
//! collisions. On PostgreSQL the batch is one statement ([`PG_INSERT_MANY`]), one round trip
//! where a create took nine; SQLite runs portable statements, which cost no round trip there.

use std::sync::LazyLock;

use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Text, Timestamp};
use tenant_core::Tenant;

use crate::api_keys::ApiKeyRow;
use crate::audit::AuditRow;
use crate::batch_sql::{AUDIT_INSERT, AUDIT_ROWS, IDEM_INSERT, IDEM_ROWS, IdRow, bump_cte};
use crate::idempotency::IdempotencyRow;
use crate::pg_static::{PgStatic, bind_audit, bind_idempotency, bind_key_rows, col};
use crate::schema::{api_keys, audit_log, idempotency_keys, tenants};
use crate::tenants::TenantRow;
use crate::{AnyConnection, StoreResult, write_transaction};

/// A tenant to create, with the rows that belong to its creation.
#[derive(Debug, Clone)]
pub struct TenantToCreate {
    /// The tenant, id and slug already chosen.
    pub tenant: Tenant,
    /// Its API keys (their `tenant_id` is the tenant's).
    pub keys: Vec<ApiKeyRow>,
    /// Its audit entries, written only if the tenant is.
    pub audit: Vec<AuditRow>,
    /// The `Idempotency-Key` row of the request that asked for it, written only if the tenant
    /// is; a key taken meanwhile fails the whole batch (then created one by one).
    pub idempotency: Option<IdempotencyRow>,
}

/// The batch in one statement: the tenants that conflict with nothing are inserted (`ON
/// CONFLICT DO NOTHING` covers the primary key and the slug, account and agent unique keys),
/// then only their keys, audit rows and `Idempotency-Key` rows (a key already taken fails the
/// statement, and so the batch, as a whole), and the revision is raised by their number in one
/// slot, and only if there are any (a raised revision makes every replica render the config
/// again). Placeholders are numbered in the order they appear (`PgStatic`); the audit and key
/// rows come first ([`crate::batch_sql`]).
static PG_INSERT_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {AUDIT_ROWS}, {IDEM_ROWS}, done AS (
    INSERT INTO tenants (id, name, slug, account_id, agent_id, plan, status, created_at,
                         updated_at)
    SELECT id, name, slug, account_id, agent_id, plan, status, created_at, updated_at
    FROM unnest($26::text[], $27::text[], $28::text[], $29::text[], $30::text[], $31::text[],
                $32::text[], $33::timestamp[], $34::timestamp[])
        WITH ORDINALITY
        AS t(id, name, slug, account_id, agent_id, plan, status, created_at, updated_at, ord)
    -- In input order, so that of two tenants wanting one slug the first gets it.
    ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING id
), keys AS (
    INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_at, last_used_at,
                          expires_at, revoked_at, role, replaced_by)
    SELECT * FROM unnest($35::text[], $36::text[], $37::text[], $38::text[], $39::text[],
                         $40::timestamp[], $41::timestamp[], $42::timestamp[], $43::timestamp[],
                         $44::text[], $45::text[])
        AS k(id, tenant_id, name, prefix, key_hash, created_at, last_used_at, expires_at,
             revoked_at, role, replaced_by)
    WHERE k.tenant_id IN (SELECT id FROM done)
), {AUDIT_INSERT}, {IDEM_INSERT}, {bump}
SELECT id FROM done",
        bump = bump_cte(46)
    )
});

/// The id of the batch statement in Diesel's statement cache.
struct InsertManyStatement;

/// Inserts each tenant with its rows unless it conflicts; answers, in order, whether each was
/// inserted. Atomic by itself (on PostgreSQL one statement, which needs no `BEGIN`/`COMMIT`
/// round trips; on SQLite one write transaction, or a savepoint in the caller's). An `Err`
/// means nothing of the batch was written; the caller may then create the tenants one by one.
pub fn insert_many(conn: &mut AnyConnection, items: &[TenantToCreate]) -> StoreResult<Vec<bool>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let slot = crate::config_revision::random_slot();
    let inserted: Vec<String> = match conn {
        AnyConnection::Postgresql(pg) => pg_insert_many(pg, items, slot)?
            .into_iter()
            .map(|r| r.id)
            .collect(),
        AnyConnection::Sqlite(_) => {
            write_transaction(conn, |c| insert_many_portable(c, items, slot))?
        }
    };
    Ok(items
        .iter()
        .map(|i| inserted.contains(&i.tenant.id.to_string()))
        .collect())
}

/// Runs [`PG_INSERT_MANY`].
fn pg_insert_many(
    conn: &mut PgConnection,
    items: &[TenantToCreate],
    slot: i32,
) -> QueryResult<Vec<IdRow>> {
    let rows: Vec<TenantRow> = items.iter().map(|i| TenantRow::from(&i.tenant)).collect();
    let keys: Vec<&ApiKeyRow> = items.iter().flat_map(|i| &i.keys).collect();
    let audit: Vec<(&AuditRow, &str)> = items
        .iter()
        .zip(&rows)
        .flat_map(|(i, r)| i.audit.iter().map(|a| (a, r.id.as_str())))
        .collect();
    let idem: Vec<(&IdempotencyRow, &str)> = items
        .iter()
        .zip(&rows)
        .filter_map(|(i, r)| i.idempotency.as_ref().map(|k| (k, r.id.as_str())))
        .collect();
    type Ts = Array<Timestamp>;
    type Texts = Array<Text>;
    let q = bind_idempotency(
        bind_audit(
            PgStatic::<InsertManyStatement>::new(PG_INSERT_MANY.as_str()),
            &audit,
        ),
        &idem,
    )
    .bind::<Texts, _>(col(&rows, |r| r.id.as_str()))
    .bind::<Texts, _>(col(&rows, |r| r.name.as_str()))
    .bind::<Texts, _>(col(&rows, |r| r.slug.as_str()))
    .bind::<Texts, _>(col(&rows, |r| r.account_id.as_str()))
    .bind::<Texts, _>(col(&rows, |r| r.agent_id.as_str()))
    .bind::<Texts, _>(col(&rows, |r| r.plan.as_str()))
    .bind::<Texts, _>(col(&rows, |r| r.status.as_str()))
    .bind::<Ts, _>(col(&rows, |r| r.created_at))
    .bind::<Ts, _>(col(&rows, |r| r.updated_at));
    bind_key_rows(q, &keys).bind::<Integer, _>(slot).load(conn)
}

/// The same with portable statements, one tenant after another; returns the ids inserted.
fn insert_many_portable(
    conn: &mut AnyConnection,
    items: &[TenantToCreate],
    slot: i32,
) -> QueryResult<Vec<String>> {
    let mut inserted = Vec::with_capacity(items.len());
    for item in items {
        let row = TenantRow::from(&item.tenant);
        if insert_if_free(conn, &row)? == 0 {
            continue;
        }
        for key in &item.keys {
            diesel::insert_into(api_keys::table)
                .values(key)
                .execute(conn)?;
        }
        for entry in &item.audit {
            diesel::insert_into(audit_log::table)
                .values(entry)
                .execute(conn)?;
        }
        if let Some(key) = &item.idempotency {
            diesel::insert_into(idempotency_keys::table)
                .values(key)
                .execute(conn)?;
        }
        inserted.push(row.id);
    }
    crate::config_revision::bump_by(conn, slot, inserted.len())?;
    Ok(inserted)
}

/// Inserts a tenant unless one of its unique keys is taken; returns the rows inserted (0 or 1).
/// `ON CONFLICT` is not in Diesel's common dialect, so each backend runs it itself.
fn insert_if_free(conn: &mut AnyConnection, row: &TenantRow) -> QueryResult<usize> {
    match conn {
        AnyConnection::Postgresql(pg) => diesel::insert_into(tenants::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(pg),
        AnyConnection::Sqlite(lite) => diesel::insert_into(tenants::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(lite),
    }
}
