//! Channel writes of many requests at once (group commit): creates, updates and deletes, each
//! kind for a whole batch in one statement on PostgreSQL (one round trip where a create took
//! twelve), with the audit rows, the `Idempotency-Key` rows and one bump of the config revision
//! in the same statement; SQLite runs portable statements in one transaction, which cost no
//! round trip there.
//!
//! This is the fast path only: a write it cannot make as asked (no such tenant or channel, the
//! kind taken, no room left under the plan, the row changed since it was read) is skipped with
//! its rows and reported, and the caller makes it again through the one-request path
//! ([`crate::channels`]), which gives the precise answer. Every statement is atomic by itself;
//! an `Err` means nothing of that statement was written.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamp};
use tenant_core::TenantId;

use crate::audit::AuditRow;
use crate::channels::ChannelRow;
use crate::config_revision;
use crate::idempotency::IdempotencyRow;
use crate::pg_static::{PgStatic, bind_audit, bind_idempotency, col};
use crate::schema::{audit_log, channels, idempotency_keys, tenants};
use crate::{AnyConnection, StoreResult, write_transaction};

/// A channel to add, sealed, with the rows that belong to its creation.
#[derive(Debug, Clone)]
pub struct ChannelToCreate {
    /// The row, credentials sealed.
    pub row: ChannelRow,
    /// How many channels its tenant may have at most before this one is added (the plan's
    /// limit, less the creates for the same tenant earlier in the batch).
    pub room: i64,
    /// Its audit entry, written only if the channel is.
    pub audit: AuditRow,
    /// The `Idempotency-Key` row of the request, written only if the channel is; a key taken
    /// meanwhile fails the whole statement.
    pub idempotency: Option<IdempotencyRow>,
}

/// A change to a channel read earlier: written only if its stored credentials are still
/// `old_credentials` (each write seals them under a fresh nonce, so any change since the read,
/// a key rotation included, shows there).
#[derive(Debug, Clone)]
pub struct ChannelChange {
    /// The sealed credentials as read.
    pub old_credentials: String,
    /// The row as it is to be stored.
    pub row: ChannelRow,
    /// Its audit entry.
    pub audit: AuditRow,
}

/// A channel to remove, named by its tenant and kind.
#[derive(Debug, Clone)]
pub struct ChannelToDelete {
    /// The tenant.
    pub tenant_id: String,
    /// The kind.
    pub kind: String,
    /// Its audit entry.
    pub audit: AuditRow,
}

/// The creates of a batch: a channel is added if its tenant exists, has room and no channel of
/// its kind (the unique key, and the random id's, are left to `ON CONFLICT DO NOTHING`).
const PG_CREATE_MANY: &str = "\
WITH ins AS (
    INSERT INTO channels (id, tenant_id, kind, enabled, display_name, credentials,
                          credentials_key_id, created_at, updated_at)
    SELECT n.id, n.tenant_id, n.kind, n.enabled, n.display_name, n.credentials,
           n.credentials_key_id, n.created_at, n.updated_at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::text[],
                $7::text[], $8::timestamp[], $9::timestamp[], $10::int8[])
        WITH ORDINALITY
        AS n(id, tenant_id, kind, enabled, display_name, credentials, credentials_key_id,
             created_at, updated_at, room, ord)
    WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = n.tenant_id AND t.deleted_at IS NULL)
      AND (SELECT count(*) FROM channels c WHERE c.tenant_id = n.tenant_id) < n.room
    ORDER BY n.ord
    ON CONFLICT DO NOTHING
    RETURNING id
), audit AS (
    INSERT INTO audit_log (id, tenant_id, actor_type, actor_id, action, resource_type,
                           resource_id, request_id, client_addr, user_agent, details, created_at)
    SELECT a.id, a.tenant_id, a.actor_type, a.actor_id, a.action, a.resource_type,
           a.resource_id, a.request_id, a.client_addr, a.user_agent, a.details, a.created_at
    FROM unnest($11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
                $17::text[], $18::text[], $19::text[], $20::text[], $21::text[],
                $22::timestamp[], $23::text[])
        AS a(id, tenant_id, actor_type, actor_id, action, resource_type, resource_id,
             request_id, client_addr, user_agent, details, created_at, owner)
    WHERE a.owner IN (SELECT id FROM ins)
), bump AS (
    UPDATE config_revision SET revision = revision + (SELECT count(*) FROM ins)
    WHERE slot = $24 AND EXISTS (SELECT 1 FROM ins)
), idem AS (
    INSERT INTO idempotency_keys (caller, method, path, idem_key, fingerprint, status_code,
                                  location, body, sealed, created_at, expires_at)
    SELECT i.caller, i.method, i.path, i.idem_key, i.fingerprint, i.status_code, i.location,
           i.body, i.sealed, i.created_at, i.expires_at
    FROM unnest($25::text[], $26::text[], $27::text[], $28::text[], $29::text[], $30::int4[],
                $31::text[], $32::text[], $33::bool[], $34::timestamp[], $35::timestamp[],
                $36::text[])
        AS i(caller, method, path, idem_key, fingerprint, status_code, location, body, sealed,
             created_at, expires_at, owner)
    WHERE i.owner IN (SELECT id FROM ins)
)
SELECT id FROM ins";

/// The updates of a batch, each only if the row is as it was read.
const PG_UPDATE_MANY: &str = "\
WITH upd AS (
    UPDATE channels c
    SET enabled = u.enabled, display_name = u.display_name, credentials = u.credentials,
        credentials_key_id = u.credentials_key_id, updated_at = u.updated_at
    FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::text[],
                $7::timestamp[])
        AS u(id, old_credentials, enabled, display_name, credentials, credentials_key_id,
             updated_at)
    WHERE c.id = u.id AND c.credentials = u.old_credentials
    RETURNING c.id
), audit AS (
    INSERT INTO audit_log (id, tenant_id, actor_type, actor_id, action, resource_type,
                           resource_id, request_id, client_addr, user_agent, details, created_at)
    SELECT a.id, a.tenant_id, a.actor_type, a.actor_id, a.action, a.resource_type,
           a.resource_id, a.request_id, a.client_addr, a.user_agent, a.details, a.created_at
    FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
                $19::timestamp[], $20::text[])
        AS a(id, tenant_id, actor_type, actor_id, action, resource_type, resource_id,
             request_id, client_addr, user_agent, details, created_at, owner)
    WHERE a.owner IN (SELECT id FROM upd)
), bump AS (
    UPDATE config_revision SET revision = revision + (SELECT count(*) FROM upd)
    WHERE slot = $21 AND EXISTS (SELECT 1 FROM upd)
)
SELECT id FROM upd";

/// The deletes of a batch; a deleted channel is named `tenant_id/kind` for its audit row.
const PG_DELETE_MANY: &str = "\
WITH del AS (
    DELETE FROM channels c
    USING unnest($1::text[], $2::text[]) AS d(tenant_id, kind)
    WHERE c.tenant_id = d.tenant_id AND c.kind = d.kind
    RETURNING c.tenant_id || '/' || c.kind AS id
), audit AS (
    INSERT INTO audit_log (id, tenant_id, actor_type, actor_id, action, resource_type,
                           resource_id, request_id, client_addr, user_agent, details, created_at)
    SELECT a.id, a.tenant_id, a.actor_type, a.actor_id, a.action, a.resource_type,
           a.resource_id, a.request_id, a.client_addr, a.user_agent, a.details, a.created_at
    FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                $14::timestamp[], $15::text[])
        AS a(id, tenant_id, actor_type, actor_id, action, resource_type, resource_id,
             request_id, client_addr, user_agent, details, created_at, owner)
    WHERE a.owner IN (SELECT id FROM del)
), bump AS (
    UPDATE config_revision SET revision = revision + (SELECT count(*) FROM del)
    WHERE slot = $16 AND EXISTS (SELECT 1 FROM del)
)
SELECT id FROM del";

/// The ids of the statements in Diesel's statement cache.
struct CreateManyStatement;
struct UpdateManyStatement;
struct DeleteManyStatement;

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

/// The key of a channel to delete, as [`PG_DELETE_MANY`] returns it.
fn delete_key(tenant_id: &str, kind: &str) -> String {
    format!("{tenant_id}/{kind}")
}

/// Whether each key of `keys` is among `done`, in order.
fn flags<'a>(keys: impl Iterator<Item = &'a str>, done: &[String]) -> Vec<bool> {
    keys.map(|k| done.iter().any(|d| d == k)).collect()
}

/// Adds each channel with its rows unless it cannot be added as asked; answers, in order,
/// whether each was.
pub fn create_many(conn: &mut AnyConnection, items: &[ChannelToCreate]) -> StoreResult<Vec<bool>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let slot = config_revision::random_slot();
    let done: Vec<String> = match conn {
        AnyConnection::Postgresql(pg) => {
            let audit: Vec<(&AuditRow, &str)> = items
                .iter()
                .map(|i| (&i.audit, i.row.id.as_str()))
                .collect();
            let idem: Vec<(&IdempotencyRow, &str)> = items
                .iter()
                .filter_map(|i| i.idempotency.as_ref().map(|k| (k, i.row.id.as_str())))
                .collect();
            let q = bind_rows(
                PgStatic::<CreateManyStatement>::new(PG_CREATE_MANY),
                items,
                |i| &i.row,
            )
            .bind::<Array<BigInt>, _>(col(items, |i| i.room));
            let q = bind_audit(q, &audit).bind::<Integer, _>(slot);
            let rows: Vec<IdRow> = bind_idempotency(q, &idem).load(pg)?;
            rows.into_iter().map(|r| r.id).collect()
        }
        AnyConnection::Sqlite(_) => write_transaction(conn, |c| create_portable(c, items, slot))?,
    };
    Ok(flags(items.iter().map(|i| i.row.id.as_str()), &done))
}

/// Binds the columns of channel rows: `id`, `tenant_id`, `kind`, `enabled`, `display_name`,
/// `credentials`, `credentials_key_id`, `created_at`, `updated_at`.
fn bind_rows<'a, K, T>(
    q: PgStatic<'a, K>,
    items: &'a [T],
    row: impl Fn(&'a T) -> &'a ChannelRow + Copy,
) -> PgStatic<'a, K> {
    type Texts = Array<Text>;
    type OptTexts = Array<Nullable<Text>>;
    q.bind::<Texts, _>(col(items, move |i| row(i).id.as_str()))
        .bind::<Texts, _>(col(items, move |i| row(i).tenant_id.as_str()))
        .bind::<Texts, _>(col(items, move |i| row(i).kind.as_str()))
        .bind::<Array<Bool>, _>(col(items, move |i| row(i).enabled))
        .bind::<OptTexts, _>(col(items, move |i| row(i).display_name.as_deref()))
        .bind::<Texts, _>(col(items, move |i| row(i).credentials.as_str()))
        .bind::<OptTexts, _>(col(items, move |i| row(i).credentials_key_id.as_deref()))
        .bind::<Array<Timestamp>, _>(col(items, move |i| row(i).created_at))
        .bind::<Array<Timestamp>, _>(col(items, move |i| row(i).updated_at))
}

/// [`create_many`] with portable statements; returns the ids added.
fn create_portable(
    conn: &mut AnyConnection,
    items: &[ChannelToCreate],
    slot: i32,
) -> QueryResult<Vec<String>> {
    let mut done = Vec::with_capacity(items.len());
    // `room` counts the batch's earlier creates already: the count must not count them again.
    let mut added: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for item in items {
        let tenant_exists: bool = diesel::select(diesel::dsl::exists(
            tenants::table
                .filter(tenants::id.eq(&item.row.tenant_id))
                .filter(tenants::deleted_at.is_null()),
        ))
        .get_result(conn)?;
        let have: i64 = channels::table
            .filter(channels::tenant_id.eq(&item.row.tenant_id))
            .count()
            .get_result(conn)?;
        let before_batch = have - added.get(item.row.tenant_id.as_str()).copied().unwrap_or(0);
        if !tenant_exists || before_batch >= item.room || insert_if_free(conn, &item.row)? == 0 {
            continue;
        }
        *added.entry(item.row.tenant_id.as_str()).or_default() += 1;
        diesel::insert_into(audit_log::table)
            .values(&item.audit)
            .execute(conn)?;
        if let Some(key) = &item.idempotency {
            diesel::insert_into(idempotency_keys::table)
                .values(key)
                .execute(conn)?;
        }
        done.push(item.row.id.clone());
    }
    config_revision::bump_by(conn, slot, done.len())?;
    Ok(done)
}

/// Inserts a channel unless one of its unique keys is taken; returns the rows inserted (0 or 1).
fn insert_if_free(conn: &mut AnyConnection, row: &ChannelRow) -> QueryResult<usize> {
    match conn {
        AnyConnection::Postgresql(pg) => diesel::insert_into(channels::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(pg),
        AnyConnection::Sqlite(lite) => diesel::insert_into(channels::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(lite),
    }
}

/// Every channel of these tenants (one statement for a batch's updates to read their rows).
pub fn rows_of_tenants(
    conn: &mut AnyConnection,
    tenant_ids: &[TenantId],
) -> StoreResult<Vec<ChannelRow>> {
    let ids: Vec<String> = tenant_ids.iter().map(ToString::to_string).collect();
    Ok(channels::table
        .filter(channels::tenant_id.eq_any(ids))
        .select(ChannelRow::as_select())
        .load(conn)?)
}

/// Writes each change whose row is still as it was read; answers, in order, whether each was.
pub fn update_many(conn: &mut AnyConnection, items: &[ChannelChange]) -> StoreResult<Vec<bool>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let slot = config_revision::random_slot();
    let done: Vec<String> = match conn {
        AnyConnection::Postgresql(pg) => {
            let audit: Vec<(&AuditRow, &str)> = items
                .iter()
                .map(|i| (&i.audit, i.row.id.as_str()))
                .collect();
            type Texts = Array<Text>;
            type OptTexts = Array<Nullable<Text>>;
            let q = PgStatic::<UpdateManyStatement>::new(PG_UPDATE_MANY)
                .bind::<Texts, _>(col(items, |i| i.row.id.as_str()))
                .bind::<Texts, _>(col(items, |i| i.old_credentials.as_str()))
                .bind::<Array<Bool>, _>(col(items, |i| i.row.enabled))
                .bind::<OptTexts, _>(col(items, |i| i.row.display_name.as_deref()))
                .bind::<Texts, _>(col(items, |i| i.row.credentials.as_str()))
                .bind::<OptTexts, _>(col(items, |i| i.row.credentials_key_id.as_deref()))
                .bind::<Array<Timestamp>, _>(col(items, |i| i.row.updated_at));
            let rows: Vec<IdRow> = bind_audit(q, &audit).bind::<Integer, _>(slot).load(pg)?;
            rows.into_iter().map(|r| r.id).collect()
        }
        AnyConnection::Sqlite(_) => write_transaction(conn, |c| {
            let mut done = Vec::with_capacity(items.len());
            for item in items {
                let n = diesel::update(
                    channels::table
                        .filter(channels::id.eq(&item.row.id))
                        .filter(channels::credentials.eq(&item.old_credentials)),
                )
                .set(&item.row)
                .execute(c)?;
                if n == 1 {
                    diesel::insert_into(audit_log::table)
                        .values(&item.audit)
                        .execute(c)?;
                    done.push(item.row.id.clone());
                }
            }
            config_revision::bump_by(c, slot, done.len())?;
            QueryResult::Ok(done)
        })?,
    };
    Ok(flags(items.iter().map(|i| i.row.id.as_str()), &done))
}

/// Removes each channel that exists; answers, in order, whether each was.
pub fn delete_many(conn: &mut AnyConnection, items: &[ChannelToDelete]) -> StoreResult<Vec<bool>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let slot = config_revision::random_slot();
    let keys: Vec<String> = items
        .iter()
        .map(|i| delete_key(&i.tenant_id, &i.kind))
        .collect();
    let done: Vec<String> = match conn {
        AnyConnection::Postgresql(pg) => {
            let audit: Vec<(&AuditRow, &str)> = items
                .iter()
                .zip(&keys)
                .map(|(i, k)| (&i.audit, k.as_str()))
                .collect();
            let q = PgStatic::<DeleteManyStatement>::new(PG_DELETE_MANY)
                .bind::<Array<Text>, _>(col(items, |i| i.tenant_id.as_str()))
                .bind::<Array<Text>, _>(col(items, |i| i.kind.as_str()));
            let rows: Vec<IdRow> = bind_audit(q, &audit).bind::<Integer, _>(slot).load(pg)?;
            rows.into_iter().map(|r| r.id).collect()
        }
        AnyConnection::Sqlite(_) => write_transaction(conn, |c| {
            let mut done = Vec::with_capacity(items.len());
            for (item, key) in items.iter().zip(&keys) {
                let n = diesel::delete(
                    channels::table
                        .filter(channels::tenant_id.eq(&item.tenant_id))
                        .filter(channels::kind.eq(&item.kind)),
                )
                .execute(c)?;
                if n == 1 {
                    diesel::insert_into(audit_log::table)
                        .values(&item.audit)
                        .execute(c)?;
                    done.push(key.clone());
                }
            }
            config_revision::bump_by(c, slot, done.len())?;
            QueryResult::Ok(done)
        })?,
    };
    Ok(flags(keys.iter().map(String::as_str), &done))
}
