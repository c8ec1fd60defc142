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

use std::sync::LazyLock;

use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Integer, Nullable, Text, Timestamp};
use tenant_core::TenantId;

use crate::audit::AuditRow;
use crate::batch_sql::{
    AUDIT_INSERT, AUDIT_ROWS, LimitedCreate, LimitedInsert, Owned, WithRows, bump_cte, flags,
    limited_create_many, limited_insert_sql, load_ids, portable,
};
use crate::channels::ChannelRow;
use crate::config_revision;
use crate::idempotency::IdempotencyRow;
use crate::pg_static::{PgStatic, col};
use crate::schema::channels;
use crate::{AnyConnection, StoreResult};

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
static PG_CREATE_MANY: LazyLock<String> = LazyLock::new(|| {
    limited_insert_sql(
        "channels",
        &[
            ("id", "text"),
            ("tenant_id", "text"),
            ("kind", "text"),
            ("enabled", "bool"),
            ("display_name", "text"),
            ("credentials", "text"),
            ("credentials_key_id", "text"),
            ("created_at", "timestamp"),
            ("updated_at", "timestamp"),
        ],
        true,
    )
});

/// The updates of a batch, each only if the row is as it was read.
static PG_UPDATE_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {AUDIT_ROWS}, done AS (
    UPDATE channels c
    SET enabled = u.enabled, display_name = u.display_name, credentials = u.credentials,
        credentials_key_id = u.credentials_key_id, updated_at = u.updated_at
    FROM unnest($14::text[], $15::text[], $16::bool[], $17::text[], $18::text[], $19::text[],
                $20::timestamp[])
        AS u(id, old_credentials, enabled, display_name, credentials, credentials_key_id,
             updated_at)
    WHERE c.id = u.id AND c.credentials = u.old_credentials
    RETURNING c.id
), {AUDIT_INSERT}, {bump}
SELECT id FROM done",
        bump = bump_cte(21)
    )
});

/// The deletes of a batch; a deleted channel is named `tenant_id/kind` for its audit row.
static PG_DELETE_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {AUDIT_ROWS}, done AS (
    DELETE FROM channels c
    USING unnest($14::text[], $15::text[]) AS d(tenant_id, kind)
    WHERE c.tenant_id = d.tenant_id AND c.kind = d.kind
    RETURNING c.tenant_id || '/' || c.kind AS id
), {AUDIT_INSERT}, {bump}
SELECT id FROM done",
        bump = bump_cte(16)
    )
});

/// The ids of the statements in Diesel's statement cache.
struct CreateManyStatement;
struct UpdateManyStatement;
struct DeleteManyStatement;

/// The key of a channel to delete, as [`PG_DELETE_MANY`] returns it.
fn delete_key(tenant_id: &str, kind: &str) -> String {
    format!("{tenant_id}/{kind}")
}

impl WithRows for ChannelToCreate {
    fn audit(&self) -> &AuditRow {
        &self.audit
    }
    fn idempotency(&self) -> Option<&IdempotencyRow> {
        self.idempotency.as_ref()
    }
}

impl WithRows for ChannelChange {
    fn audit(&self) -> &AuditRow {
        &self.audit
    }
}

impl WithRows for ChannelToDelete {
    fn audit(&self) -> &AuditRow {
        &self.audit
    }
}

impl LimitedCreate for ChannelToCreate {
    fn id(&self) -> &str {
        &self.row.id
    }
    fn tenant_id(&self) -> &str {
        &self.row.tenant_id
    }
    fn room(&self) -> i64 {
        self.room
    }
}

/// Adds each channel with its rows unless it cannot be added as asked; answers, in order,
/// whether each was.
pub fn create_many(conn: &mut AnyConnection, items: &[ChannelToCreate]) -> StoreResult<Vec<bool>> {
    limited_create_many(
        conn,
        items,
        &LimitedInsert::<_, CreateManyStatement> {
            sql: PG_CREATE_MANY.as_str(),
            bind: |q, items| bind_rows(q, items, |i| &i.row),
            bump: true,
            count: count_channels,
            insert: |c, item| Ok(insert_if_free(c, &item.row)? == 1),
        },
    )
}

/// Whether each write of a portable batch was made.
fn made(written: Vec<Option<()>>) -> Vec<bool> {
    written.iter().map(Option::is_some).collect()
}

/// A tenant's channels.
fn count_channels(conn: &mut AnyConnection, tenant_id: &str) -> QueryResult<i64> {
    channels::table
        .filter(channels::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)
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
    Ok(match conn {
        AnyConnection::Postgresql(pg) => {
            type Texts = Array<Text>;
            type OptTexts = Array<Nullable<Text>>;
            let owned = Owned::of(items, items.iter().map(|i| i.row.id.as_str()));
            let q = owned
                .bind::<UpdateManyStatement>(PG_UPDATE_MANY.as_str(), false)
                .bind::<Texts, _>(col(items, |i| i.row.id.as_str()))
                .bind::<Texts, _>(col(items, |i| i.old_credentials.as_str()))
                .bind::<Array<Bool>, _>(col(items, |i| i.row.enabled))
                .bind::<OptTexts, _>(col(items, |i| i.row.display_name.as_deref()))
                .bind::<Texts, _>(col(items, |i| i.row.credentials.as_str()))
                .bind::<OptTexts, _>(col(items, |i| i.row.credentials_key_id.as_deref()))
                .bind::<Array<Timestamp>, _>(col(items, |i| i.row.updated_at))
                .bind::<Integer, _>(slot);
            flags(items.iter().map(|i| i.row.id.as_str()), &load_ids(q, pg)?)
        }
        AnyConnection::Sqlite(_) => made(portable(conn, items, Some(slot), |c, item| {
            let n = diesel::update(
                channels::table
                    .filter(channels::id.eq(&item.row.id))
                    .filter(channels::credentials.eq(&item.old_credentials)),
            )
            .set(&item.row)
            .execute(c)?;
            Ok((n == 1).then_some(()))
        })?),
    })
}

/// Removes each channel that exists; answers, in order, whether each was.
pub fn delete_many(conn: &mut AnyConnection, items: &[ChannelToDelete]) -> StoreResult<Vec<bool>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let slot = config_revision::random_slot();
    Ok(match conn {
        AnyConnection::Postgresql(pg) => {
            let keys: Vec<String> = items
                .iter()
                .map(|i| delete_key(&i.tenant_id, &i.kind))
                .collect();
            let owned = Owned::of(items, keys.iter().map(String::as_str));
            let q = owned
                .bind::<DeleteManyStatement>(PG_DELETE_MANY.as_str(), false)
                .bind::<Array<Text>, _>(col(items, |i| i.tenant_id.as_str()))
                .bind::<Array<Text>, _>(col(items, |i| i.kind.as_str()))
                .bind::<Integer, _>(slot);
            flags(keys.iter().map(String::as_str), &load_ids(q, pg)?)
        }
        AnyConnection::Sqlite(_) => made(portable(conn, items, Some(slot), |c, item| {
            let n = diesel::delete(
                channels::table
                    .filter(channels::tenant_id.eq(&item.tenant_id))
                    .filter(channels::kind.eq(&item.kind)),
            )
            .execute(c)?;
            Ok((n == 1).then_some(()))
        })?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_sql::{IDEM_INSERT, IDEM_ROWS, admitted, folded};

    /// The shared builder makes the statement that was written out here before, placeholder
    /// for placeholder (its plan and cost are those measured in docs/benchmarks.md).
    #[test]
    fn create_statement_is_the_one_written_out_before() {
        let before = format!(
            "WITH {AUDIT_ROWS}, {IDEM_ROWS}, done AS (
    INSERT INTO channels (id, tenant_id, kind, enabled, display_name, credentials,
                          credentials_key_id, created_at, updated_at)
    SELECT n.id, n.tenant_id, n.kind, n.enabled, n.display_name, n.credentials,
           n.credentials_key_id, n.created_at, n.updated_at
    FROM unnest($26::text[], $27::text[], $28::text[], $29::bool[], $30::text[], $31::text[],
                $32::text[], $33::timestamp[], $34::timestamp[], $35::int8[])
        WITH ORDINALITY
        AS n(id, tenant_id, kind, enabled, display_name, credentials, credentials_key_id,
             created_at, updated_at, room, ord)
    WHERE {admitted}
    ORDER BY n.ord
    ON CONFLICT DO NOTHING
    RETURNING id
), {AUDIT_INSERT}, {IDEM_INSERT}, {bump}
SELECT id FROM done",
            admitted = admitted("channels"),
            bump = bump_cte(36)
        );
        assert_eq!(folded(&PG_CREATE_MANY), folded(&before));
    }
}
