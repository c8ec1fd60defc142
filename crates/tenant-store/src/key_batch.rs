//! API keys issued by many requests at once (group commit): one statement a batch on
//! PostgreSQL, with the keys' audit rows and `Idempotency-Key` rows; SQLite runs portable
//! statements in one transaction ([`crate::batch_sql::portable`]).
//!
//! The fast path only, as [`crate::channel_batch`]: a key whose tenant does not exist is
//! skipped with its rows and reported, and the caller issues it again through the one-request
//! path, which answers it precisely.

use std::sync::LazyLock;

use diesel::prelude::*;

use crate::api_keys::ApiKeyRow;
use crate::audit::AuditRow;
use crate::batch_sql::{
    AUDIT_INSERT, AUDIT_ROWS, IDEM_INSERT, IDEM_ROWS, Owned, WithRows, flags, load_ids, portable,
    tenant_alive,
};
use crate::idempotency::IdempotencyRow;
use crate::pg_static::bind_key_rows;
use crate::schema::api_keys;
use crate::{AnyConnection, StoreResult};

/// A key to store (its hash), with the rows that belong to its issue.
#[derive(Debug, Clone)]
pub struct KeyToIssue {
    /// The key's row.
    pub row: ApiKeyRow,
    /// Its `key.created` audit entry.
    pub audit: AuditRow,
    /// The `Idempotency-Key` row of the request, written only if the key is.
    pub idempotency: Option<IdempotencyRow>,
}

impl WithRows for KeyToIssue {
    fn audit(&self) -> &AuditRow {
        &self.audit
    }
    fn idempotency(&self) -> Option<&IdempotencyRow> {
        self.idempotency.as_ref()
    }
}

/// The keys of a batch: each is stored if its tenant exists.
static PG_ISSUE_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {AUDIT_ROWS}, {IDEM_ROWS}, done AS (
    INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_at, last_used_at,
                          expires_at, revoked_at, role, replaced_by)
    SELECT k.id, k.tenant_id, k.name, k.prefix, k.key_hash, k.created_at, k.last_used_at,
           k.expires_at, k.revoked_at, k.role, k.replaced_by
    FROM unnest($26::text[], $27::text[], $28::text[], $29::text[], $30::text[],
                $31::timestamp[], $32::timestamp[], $33::timestamp[], $34::timestamp[],
                $35::text[], $36::text[])
        AS k(id, tenant_id, name, prefix, key_hash, created_at, last_used_at, expires_at,
             revoked_at, role, replaced_by)
    WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = k.tenant_id AND t.deleted_at IS NULL)
    ON CONFLICT DO NOTHING
    RETURNING id
), {AUDIT_INSERT}, {IDEM_INSERT}
SELECT id FROM done"
    )
});

/// The id of the statement in Diesel's statement cache.
struct IssueManyStatement;

/// Stores each key with its rows if its tenant exists; answers, in order, whether each was.
pub fn issue_many(conn: &mut AnyConnection, items: &[KeyToIssue]) -> StoreResult<Vec<bool>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match conn {
        AnyConnection::Postgresql(pg) => {
            let rows: Vec<&ApiKeyRow> = items.iter().map(|i| &i.row).collect();
            let owned = Owned::of(items, items.iter().map(|i| i.row.id.as_str()));
            let q = bind_key_rows(
                owned.bind::<IssueManyStatement>(PG_ISSUE_MANY.as_str(), true),
                &rows,
            );
            flags(items.iter().map(|i| i.row.id.as_str()), &load_ids(q, pg)?)
        }
        AnyConnection::Sqlite(_) => portable(conn, items, None, |c, item| {
            if !tenant_alive(c, &item.row.tenant_id)? {
                return Ok(None);
            }
            diesel::insert_into(api_keys::table)
                .values(&item.row)
                .execute(c)?;
            Ok(Some(()))
        })?
        .iter()
        .map(Option::is_some)
        .collect(),
    })
}
