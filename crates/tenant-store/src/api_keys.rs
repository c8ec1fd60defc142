//! Tenant API keys, stored only as hashes and found by hash through a unique index.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::TenantId;
use uuid::Uuid;

use crate::schema::api_keys;
use crate::{AnyConnection, StoreResult};

/// A stored API key (its hash, never the key).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    /// UUID text.
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// A label chosen by the owner.
    pub name: String,
    /// The key's public prefix, shown to help recognise it.
    pub prefix: String,
    /// Hex hash of the whole key.
    pub key_hash: String,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last successful use.
    pub last_used_at: Option<NaiveDateTime>,
    /// After this the key no longer works.
    pub expires_at: Option<NaiveDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<NaiveDateTime>,
}

/// Stores the hash of a new key for a tenant; returns the key's id.
pub fn insert(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    name: &str,
    prefix: &str,
    key_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<Uuid> {
    let id = Uuid::new_v4();
    let row = ApiKeyRow {
        id: id.to_string(),
        tenant_id: tenant_id.to_string(),
        name: name.to_owned(),
        prefix: prefix.to_owned(),
        key_hash: key_hash.to_owned(),
        created_at: now.naive_utc(),
        last_used_at: None,
        expires_at: None,
        revoked_at: None,
    };
    diesel::insert_into(api_keys::table)
        .values(&row)
        .execute(conn)?;
    Ok(id)
}

/// The keys of one tenant, oldest first.
pub fn list(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<Vec<ApiKeyRow>> {
    Ok(api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id.to_string()))
        .order(api_keys::created_at.asc())
        .select(ApiKeyRow::as_select())
        .load(conn)?)
}

/// The key with this hash, if any.
pub fn find_by_hash(conn: &mut AnyConnection, key_hash: &str) -> StoreResult<Option<ApiKeyRow>> {
    Ok(api_keys::table
        .filter(api_keys::key_hash.eq(key_hash))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}
