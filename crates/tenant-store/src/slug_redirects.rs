//! A tenant's former slugs (`tenant_slug_redirects`): kept when its slug changes, so that the old
//! host redirects to the current one until the row expires (the rules are the service's:
//! `tenant_service::tenants`). Rows go with their tenant (`ON DELETE CASCADE`).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::schema::{tenant_slug_redirects, tenants};
use crate::{AnyConnection, StoreError, StoreResult};
use tenant_core::TenantId;

/// A former slug of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlugRedirect {
    /// The slug the tenant had.
    pub old_slug: String,
    /// The tenant.
    pub tenant_id: TenantId,
    /// When the slug was left.
    pub created_at: DateTime<Utc>,
    /// When the redirect ends.
    pub expires_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = tenant_slug_redirects)]
struct RedirectRow {
    old_slug: String,
    tenant_id: String,
    created_at: NaiveDateTime,
    expires_at: NaiveDateTime,
}

fn tenant_id(id: String) -> StoreResult<TenantId> {
    id.parse().map_err(|_| StoreError::Corrupt {
        table: "tenant_slug_redirects",
        id,
        reason: "tenant_id is not a UUID".into(),
    })
}

/// Keeps `old_slug` as a former slug of `tenant` until `expires_at`, replacing any earlier row
/// for that slug (whoever it pointed to).
pub fn record(
    conn: &mut AnyConnection,
    old_slug: &str,
    tenant: &TenantId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    conn.transaction(|c| {
        forget(c, old_slug)?;
        diesel::insert_into(tenant_slug_redirects::table)
            .values(RedirectRow {
                old_slug: old_slug.to_owned(),
                tenant_id: tenant.to_string(),
                created_at: now.naive_utc(),
                expires_at: expires_at.naive_utc(),
            })
            .execute(c)?;
        Ok(())
    })
}

/// Removes the row of `slug`, if any (a tenant takes the slug); how many went (0 or 1).
pub fn forget(conn: &mut AnyConnection, slug: &str) -> StoreResult<usize> {
    Ok(diesel::delete(tenant_slug_redirects::table.find(slug)).execute(conn)?)
}

/// The tenant a former slug leads to and that tenant's current slug, if the row is live at `now`.
pub fn resolve(
    conn: &mut AnyConnection,
    slug: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<(TenantId, String)>> {
    let row: Option<(String, String)> = tenant_slug_redirects::table
        .inner_join(tenants::table)
        .filter(tenant_slug_redirects::old_slug.eq(slug))
        .filter(tenants::deleted_at.is_null())
        .filter(tenant_slug_redirects::expires_at.gt(now.naive_utc()))
        .select((tenants::id, tenants::slug))
        .first(conn)
        .optional()?;
    row.map(|(id, slug)| Ok((tenant_id(id)?, slug))).transpose()
}

/// A tenant's former slugs, expired or not, oldest first.
pub fn for_tenant(conn: &mut AnyConnection, tenant: &TenantId) -> StoreResult<Vec<SlugRedirect>> {
    tenant_slug_redirects::table
        .filter(tenant_slug_redirects::tenant_id.eq(tenant.to_string()))
        .order((
            tenant_slug_redirects::created_at.asc(),
            tenant_slug_redirects::old_slug.asc(),
        ))
        .select(RedirectRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|r| {
            Ok(SlugRedirect {
                tenant_id: tenant_id(r.tenant_id)?,
                old_slug: r.old_slug,
                created_at: r.created_at.and_utc(),
                expires_at: r.expires_at.and_utc(),
            })
        })
        .collect()
}

/// Deletes the rows expired at `now` and those of a slug a tenant holds (a tenant created with
/// it ends the redirect); how many.
pub fn delete_expired(conn: &mut AnyConnection, now: DateTime<Utc>) -> StoreResult<usize> {
    let held = tenants::table.select(tenants::slug);
    Ok(diesel::delete(
        tenant_slug_redirects::table.filter(
            tenant_slug_redirects::expires_at
                .le(now.naive_utc())
                .or(tenant_slug_redirects::old_slug.eq_any(held)),
        ),
    )
    .execute(conn)?)
}
