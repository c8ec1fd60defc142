//! Webhook endpoint writes of many requests at once (group commit): creates and updates, each
//! kind for a whole batch in one statement on PostgreSQL, with their audit rows and the
//! creates' `Idempotency-Key` rows; SQLite runs portable statements in one transaction
//! ([`crate::batch_sql::portable`]).
//!
//! The fast path only, as [`crate::channel_batch`]: a write it cannot make as asked (no such
//! tenant or endpoint, no room left) is skipped with its rows and reported, and the caller makes
//! it again through the one-request path, which gives the precise answer (404, 403, 409).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Nullable, Text, Timestamp};
use tenant_core::TenantId;
use uuid::Uuid;

use crate::audit::AuditRow;
use crate::batch_sql::{
    AUDIT_INSERT, AUDIT_ROWS, LimitedCreate, LimitedInsert, Owned, WithRows, limited_create_many,
    limited_insert_sql, portable,
};
use crate::idempotency::IdempotencyRow;
use crate::pg_static::{PgStatic, col};
use crate::schema::webhook_endpoints;
use crate::webhooks::{self, Endpoint, EndpointPatch, EndpointRow, NewEndpointRow};
use crate::{AnyConnection, StoreResult};

/// An endpoint to add, sealed, with the rows that belong to its creation.
#[derive(Debug, Clone)]
pub struct EndpointToCreate {
    /// The row, secret sealed.
    pub row: NewEndpointRow,
    /// How many endpoints its tenant may have at most before this one is added (its limit,
    /// less the creates for the same tenant earlier in the batch).
    pub room: i64,
    /// Its audit entry, written only if the endpoint is.
    pub audit: AuditRow,
    /// The `Idempotency-Key` row of the request, written only if the endpoint is; a key taken
    /// meanwhile fails the whole statement.
    pub idempotency: Option<IdempotencyRow>,
}

/// A change to an endpoint, applied to the row as it is when written.
#[derive(Debug, Clone)]
pub struct EndpointChange {
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The endpoint.
    pub id: Uuid,
    /// What changes.
    pub patch: EndpointPatch,
    /// When.
    pub now: DateTime<Utc>,
    /// Its audit entry.
    pub audit: AuditRow,
}

impl WithRows for EndpointToCreate {
    fn audit(&self) -> &AuditRow {
        &self.audit
    }
    fn idempotency(&self) -> Option<&IdempotencyRow> {
        self.idempotency.as_ref()
    }
}

impl WithRows for EndpointChange {
    fn audit(&self) -> &AuditRow {
        &self.audit
    }
}

/// The creates of a batch: an endpoint is added if its tenant exists and has room.
static PG_CREATE_MANY: LazyLock<String> = LazyLock::new(|| {
    limited_insert_sql(
        "webhook_endpoints",
        &[
            ("id", "text"),
            ("tenant_id", "text"),
            ("url", "text"),
            ("description", "text"),
            ("event_types", "text"),
            ("secret", "text"),
            ("secret_key_id", "text"),
            ("enabled", "bool"),
            ("created_at", "timestamp"),
            ("updated_at", "timestamp"),
        ],
        false,
    )
});

/// The updates of a batch, each applied to the row as it is (what the one-request path does
/// in its transaction): only the fields present change, and enabling a disabled endpoint
/// clears its automatic-disable state. Returns the rows as stored.
static PG_UPDATE_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {AUDIT_ROWS}, done AS (
    UPDATE webhook_endpoints e
    SET url = COALESCE(u.url, e.url),
        description = CASE WHEN u.set_description THEN u.description ELSE e.description END,
        event_types = COALESCE(u.event_types, e.event_types),
        enabled = COALESCE(u.enabled, e.enabled),
        disabled_reason = CASE WHEN u.enabled AND NOT e.enabled THEN NULL
                               ELSE e.disabled_reason END,
        failing_since = CASE WHEN u.enabled AND NOT e.enabled THEN NULL
                             ELSE e.failing_since END,
        updated_at = u.updated_at
    FROM unnest($14::text[], $15::text[], $16::text[], $17::bool[], $18::text[], $19::text[],
                $20::bool[], $21::timestamp[])
        AS u(id, tenant_id, url, set_description, description, event_types, enabled,
             updated_at)
    WHERE e.id = u.id AND e.tenant_id = u.tenant_id
    RETURNING e.id, e.tenant_id, e.url, e.description, e.event_types, e.enabled, e.created_at,
              e.updated_at, e.previous_secret_expires_at, e.failing_since, e.disabled_reason
), {AUDIT_INSERT}
SELECT * FROM done"
    )
});

/// The ids of the statements in Diesel's statement cache.
struct CreateManyStatement;
struct UpdateManyStatement;

impl LimitedCreate for EndpointToCreate {
    fn id(&self) -> &str {
        &self.row.id
    }
    fn tenant_id(&self) -> &str {
        self.row.tenant()
    }
    fn room(&self) -> i64 {
        self.room
    }
}

/// Adds each endpoint with its rows unless it cannot be added as asked; answers, in order,
/// whether each was.
pub fn create_many(conn: &mut AnyConnection, items: &[EndpointToCreate]) -> StoreResult<Vec<bool>> {
    limited_create_many(
        conn,
        items,
        &LimitedInsert::<_, CreateManyStatement> {
            sql: PG_CREATE_MANY.as_str(),
            bind: bind_rows,
            bump: false,
            count: webhooks::count,
            insert: |c, item| {
                diesel::insert_into(webhook_endpoints::table)
                    .values(&item.row)
                    .execute(c)?;
                Ok(true)
            },
        },
    )
}

/// Binds the columns of the endpoint rows to create, in [`PG_CREATE_MANY`]'s order.
fn bind_rows<'a, K>(q: PgStatic<'a, K>, items: &'a [EndpointToCreate]) -> PgStatic<'a, K> {
    type Texts = Array<Text>;
    type OptTexts = Array<Nullable<Text>>;
    q.bind::<Texts, _>(col(items, |i| i.row.id.as_str()))
        .bind::<Texts, _>(col(items, |i| i.row.tenant()))
        .bind::<Texts, _>(col(items, |i| i.row.url.as_str()))
        .bind::<OptTexts, _>(col(items, |i| i.row.description.as_deref()))
        .bind::<Texts, _>(col(items, |i| i.row.event_types.as_str()))
        .bind::<Texts, _>(col(items, |i| i.row.secret.as_str()))
        .bind::<OptTexts, _>(col(items, |i| i.row.secret_key_id.as_deref()))
        .bind::<Array<Bool>, _>(col(items, |i| i.row.enabled))
        .bind::<Array<Timestamp>, _>(col(items, |i| i.row.created_at))
        .bind::<Array<Timestamp>, _>(col(items, |i| i.row.updated_at))
}

/// Applies each change to its endpoint if it exists; answers, in order, the endpoint as
/// stored, or `None` for one that does not exist.
pub fn update_many(
    conn: &mut AnyConnection,
    items: &[EndpointChange],
) -> StoreResult<Vec<Option<Endpoint>>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    match conn {
        AnyConnection::Postgresql(pg) => {
            type Texts = Array<Text>;
            type OptTexts = Array<Nullable<Text>>;
            let ids: Vec<String> = items.iter().map(|i| i.id.to_string()).collect();
            let tenants: Vec<String> = items.iter().map(|i| i.tenant_id.to_string()).collect();
            let types: Vec<Option<String>> = items
                .iter()
                .map(|i| i.patch.event_types.as_deref().map(webhooks::encode_types))
                .collect();
            let owned = Owned::of(items, ids.iter().map(String::as_str));
            let q = owned
                .bind::<UpdateManyStatement>(PG_UPDATE_MANY.as_str(), false)
                .bind::<Texts, _>(col(&ids, String::as_str))
                .bind::<Texts, _>(col(&tenants, String::as_str))
                .bind::<OptTexts, _>(col(items, |i| i.patch.url.as_deref()))
                .bind::<Array<Bool>, _>(col(items, |i| i.patch.description.is_some()))
                .bind::<OptTexts, _>(col(items, |i| {
                    i.patch.description.as_ref().and_then(Option::as_deref)
                }))
                .bind::<OptTexts, _>(col(&types, Option::as_deref))
                .bind::<Array<Nullable<Bool>>, _>(col(items, |i| i.patch.enabled))
                .bind::<Array<Timestamp>, _>(col(items, |i| i.now.naive_utc()));
            let rows: Vec<EndpointRow> = q.load(pg)?;
            let mut stored = Vec::with_capacity(rows.len());
            for row in rows {
                stored.push(Endpoint::try_from(row)?);
            }
            Ok(items
                .iter()
                .map(|i| stored.iter().find(|e| e.id == i.id).cloned())
                .collect())
        }
        AnyConnection::Sqlite(_) => portable(conn, items, None, |c, item| {
            webhooks::patched(c, &item.tenant_id, item.id, &item.patch, item.now)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_sql::{IDEM_INSERT, IDEM_ROWS, admitted, folded};

    /// The shared builder makes the statement that was written out here before, placeholder
    /// for placeholder, without a config revision bump.
    #[test]
    fn create_statement_is_the_one_written_out_before() {
        let before = format!(
            "WITH {AUDIT_ROWS}, {IDEM_ROWS}, done AS (
    INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, secret,
                                   secret_key_id, enabled, created_at, updated_at)
    SELECT n.id, n.tenant_id, n.url, n.description, n.event_types, n.secret, n.secret_key_id,
           n.enabled, n.created_at, n.updated_at
    FROM unnest($26::text[], $27::text[], $28::text[], $29::text[], $30::text[], $31::text[],
                $32::text[], $33::bool[], $34::timestamp[], $35::timestamp[], $36::int8[])
        WITH ORDINALITY
        AS n(id, tenant_id, url, description, event_types, secret, secret_key_id, enabled,
             created_at, updated_at, room, ord)
    WHERE {admitted}
    ORDER BY n.ord
    ON CONFLICT DO NOTHING
    RETURNING id
), {AUDIT_INSERT}, {IDEM_INSERT}
SELECT id FROM done",
            admitted = admitted("webhook_endpoints")
        );
        assert_eq!(folded(&PG_CREATE_MANY), folded(&before));
    }
}
