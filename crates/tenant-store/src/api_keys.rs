//! Tenant API keys, stored only as keyed hashes and found by hash through a unique index.
//!
//! The store never sees a key: callers pass the hash (the server computes HMAC-SHA256 with its
//! secret). Every function on a tenant's keys takes the tenant id first, so a key of another
//! tenant is simply not found.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::{Page, PageRequest, Role, TenantId};
use uuid::Uuid;

use crate::schema::api_keys;
use crate::{AnyConnection, StoreError, StoreResult};

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
    /// Hex keyed hash of the whole key.
    pub key_hash: String,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last successful use (updated at most once a minute).
    pub last_used_at: Option<NaiveDateTime>,
    /// After this the key no longer works.
    pub expires_at: Option<NaiveDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<NaiveDateTime>,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// The key that replaced this one by rotation.
    pub replaced_by: Option<String>,
}

impl ApiKeyRow {
    /// The key's role; an unreadable value (never written by this code) grants the least.
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Member)
    }

    /// Whether the key authenticates at `now`: not revoked, not expired.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now.naive_utc())
    }
}

/// What a new key is stored with.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    /// Label.
    pub name: &'a str,
    /// Public prefix.
    pub prefix: &'a str,
    /// Hex keyed hash.
    pub key_hash: &'a str,
    /// Role.
    pub role: Role,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Stores the hash of a new key for a tenant; returns the stored row.
pub fn insert(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    new: &NewApiKey<'_>,
    now: DateTime<Utc>,
) -> StoreResult<ApiKeyRow> {
    let row = new_row(tenant_id, new, now);
    insert_row(conn, &row)?;
    Ok(row)
}

/// Stores a row made by [`new_row`].
pub fn insert_row(conn: &mut AnyConnection, row: &ApiKeyRow) -> StoreResult<()> {
    diesel::insert_into(api_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The row [`insert`] writes, for callers that insert it with others (batched creates).
pub fn new_row(tenant_id: &TenantId, new: &NewApiKey<'_>, now: DateTime<Utc>) -> ApiKeyRow {
    ApiKeyRow {
        id: Uuid::new_v4().to_string(),
        tenant_id: tenant_id.to_string(),
        name: new.name.to_owned(),
        prefix: new.prefix.to_owned(),
        key_hash: new.key_hash.to_owned(),
        created_at: now.naive_utc(),
        last_used_at: None,
        expires_at: new.expires_at.map(|e| e.naive_utc()),
        revoked_at: None,
        role: new.role.as_str().to_owned(),
        replaced_by: None,
    }
}

/// Every key of one tenant, oldest first.
pub fn list(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<Vec<ApiKeyRow>> {
    Ok(api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id.to_string()))
        .order((api_keys::created_at.asc(), api_keys::id.asc()))
        .select(ApiKeyRow::as_select())
        .load(conn)?)
}

/// A page of one tenant's keys, oldest first.
pub fn page(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    page: &PageRequest,
) -> StoreResult<Page<ApiKeyRow>> {
    let mut query = api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id.to_string()))
        .order((api_keys::created_at.asc(), api_keys::id.asc()))
        .limit(i64::from(page.limit) + 1)
        .select(ApiKeyRow::as_select())
        .into_boxed();
    if let Some(after) = page.after {
        let at = after.created_at.naive_utc();
        let id = after.id.hyphenated().to_string();
        query = query.filter(
            api_keys::created_at
                .gt(at)
                .or(api_keys::created_at.eq(at).and(api_keys::id.gt(id))),
        );
    }
    let rows: Vec<_> = query.load(conn)?;
    Page::from_overfetch(rows, page.limit, |last| {
        crate::paging::cursor_of("api_keys", last.created_at, &last.id)
    })
}

/// One key of a tenant.
pub fn find(conn: &mut AnyConnection, tenant_id: &TenantId, id: &Uuid) -> StoreResult<ApiKeyRow> {
    api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id.to_string()))
        .filter(api_keys::id.eq(id.to_string()))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("api key"))
}

/// The key with this hash, if any: the O(1) lookup behind authentication (unique index).
pub fn find_by_hash(conn: &mut AnyConnection, key_hash: &str) -> StoreResult<Option<ApiKeyRow>> {
    Ok(api_keys::table
        .filter(api_keys::key_hash.eq(key_hash))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Revokes a tenant's key (idempotent: the first revocation time is kept).
pub fn revoke(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: &Uuid,
    now: DateTime<Utc>,
) -> StoreResult<ApiKeyRow> {
    let key = find(conn, tenant_id, id)?;
    if key.revoked_at.is_none() {
        diesel::update(api_keys::table.filter(api_keys::id.eq(&key.id)))
            .set(api_keys::revoked_at.eq(now.naive_utc()))
            .execute(conn)?;
    }
    find(conn, tenant_id, id)
}

/// Marks a tenant's key as replaced by `successor`, working until `until`.
pub fn mark_replaced(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: &Uuid,
    successor: &str,
    until: DateTime<Utc>,
) -> StoreResult<()> {
    let n = diesel::update(
        api_keys::table
            .filter(api_keys::tenant_id.eq(tenant_id.to_string()))
            .filter(api_keys::id.eq(id.to_string())),
    )
    .set((
        api_keys::replaced_by.eq(successor),
        api_keys::expires_at.eq(until.naive_utc()),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("api key"));
    }
    Ok(())
}

/// Records a use of the key unless one was recorded in the last `min_interval_secs` seconds, so a
/// busy key costs at most one write per interval.
pub fn touch(
    conn: &mut AnyConnection,
    id: &str,
    now: DateTime<Utc>,
    min_interval_secs: i64,
) -> StoreResult<()> {
    let stale = (now - chrono::Duration::seconds(min_interval_secs)).naive_utc();
    diesel::update(
        api_keys::table.filter(api_keys::id.eq(id)).filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.lt(stale)),
        ),
    )
    .set(api_keys::last_used_at.eq(now.naive_utc()))
    .execute(conn)?;
    Ok(())
}
