//! Tenants: insert with unique gateway ids and slug, keyset-paginated listing, update, delete.
//! Every change bumps the gateway-config revision in the same transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::{
    AccountId, AgentId, NewTenant, Page, PageRequest, Plan, Slug, Tenant, TenantId, TenantName,
    TenantStatus, TenantUpdate,
};

use crate::error::unique_violation;
use crate::schema::tenants;
use crate::{AnyConnection, StoreError, StoreResult};

/// A `tenants` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = tenants)]
pub struct TenantRow {
    /// UUID text.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unique slug.
    pub slug: String,
    /// `tenant-<8 hex>`.
    pub account_id: String,
    /// `agent-<8 hex>`.
    pub agent_id: String,
    /// Plan name.
    pub plan: String,
    /// Status name.
    pub status: String,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
    /// The month its message quota was used up in (`YYYY-MM`), if any.
    pub quota_exceeded_period: Option<String>,
}

impl From<&Tenant> for TenantRow {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.as_str().to_owned(),
            slug: t.slug.as_str().to_owned(),
            account_id: t.account_id.as_str().to_owned(),
            agent_id: t.agent_id.as_str().to_owned(),
            plan: t.plan.as_str().to_owned(),
            status: t.status.as_str().to_owned(),
            created_at: t.created_at.naive_utc(),
            updated_at: t.updated_at.naive_utc(),
            quota_exceeded_period: t.quota_exceeded_period.clone(),
        }
    }
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;

    fn try_from(r: TenantRow) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            table: "tenants",
            id: r.id.clone(),
            reason,
        };
        let parse = || -> Result<Tenant, tenant_core::ValidationError> {
            Ok(Tenant {
                id: r.id.parse()?,
                name: TenantName::parse(&r.name)?,
                slug: Slug::parse(&r.slug)?,
                account_id: AccountId::parse(&r.account_id)?,
                agent_id: AgentId::parse(&r.agent_id)?,
                plan: r.plan.parse::<Plan>()?,
                status: r.status.parse::<TenantStatus>()?,
                created_at: r.created_at.and_utc(),
                updated_at: r.updated_at.and_utc(),
                quota_exceeded_period: r.quota_exceeded_period.clone(),
            })
        };
        parse().map_err(|e| corrupt(e.to_string()))
    }
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    /// Only tenants with this status.
    pub status: Option<TenantStatus>,
    /// Only tenants on this plan.
    pub plan: Option<Plan>,
    /// Only tenants whose name contains this text (case-insensitive for ASCII).
    pub name_contains: Option<String>,
}

/// How often a colliding random id is replaced before giving up (a collision of 32 random bits
/// among a million tenants happens about once in four thousand inserts; twice in a row, almost never).
const MAX_ID_ATTEMPTS: usize = 8;

/// Inserts a new tenant. The random id is replaced when its 8-hex prefix collides with another
/// tenant's account or agent id; a derived slug that is taken gets the tenant's hex appended; a
/// slug the caller chose that is taken is a conflict.
pub fn insert(conn: &mut AnyConnection, new: NewTenant, now: DateTime<Utc>) -> StoreResult<Tenant> {
    let chosen_slug = new.slug.is_some();
    let mut tenant = new.into_tenant(TenantId::random(), now);
    for _ in 0..MAX_ID_ATTEMPTS {
        let row = TenantRow::from(&tenant);
        // A savepoint, so that a failed attempt does not abort the caller's transaction.
        let attempt = conn.transaction(|c| {
            diesel::insert_into(tenants::table)
                .values(&row)
                .execute(c)?;
            crate::config_revision::bump(c)
        });
        let Err(e) = attempt else {
            return Ok(tenant);
        };
        let Some(constraint) = unique_violation(&e) else {
            return Err(e.into());
        };
        if constraint.contains("slug") {
            if chosen_slug || tenant.slug.as_str().ends_with(&tenant.id.short_hex()) {
                return Err(slug_taken(&tenant.slug));
            }
            tenant.slug = tenant.slug.disambiguated(&tenant.id);
        } else if constraint.contains("account_id")
            || constraint.contains("agent_id")
            || constraint.contains("pkey")
            || constraint.contains("tenants.id")
        {
            let id = TenantId::random();
            let derived_slug =
                !chosen_slug && tenant.slug.as_str().ends_with(&tenant.id.short_hex());
            tenant.account_id = AccountId::for_tenant(&id);
            tenant.agent_id = AgentId::for_tenant(&id);
            if derived_slug {
                tenant.slug = Slug::derive(tenant.name.as_str(), &id).disambiguated(&id);
            }
            tenant.id = id;
        } else {
            return Err(e.into());
        }
    }
    Err(StoreError::Conflict {
        field: "id",
        message: "could not allocate a unique tenant id; try again".into(),
    })
}

fn slug_taken(slug: &Slug) -> StoreError {
    StoreError::Conflict {
        field: "slug",
        message: format!("slug `{slug}` is already taken"),
    }
}

/// One tenant by id.
pub fn find(conn: &mut AnyConnection, id: &TenantId) -> StoreResult<Tenant> {
    tenants::table
        .find(id.to_string())
        .filter(tenants::deleted_at.is_null())
        .select(TenantRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("tenant"))?
        .try_into()
}

/// One tenant by its gateway account id.
pub fn find_by_account_id(conn: &mut AnyConnection, account_id: &AccountId) -> StoreResult<Tenant> {
    tenants::table
        .filter(tenants::account_id.eq(account_id.as_str()))
        .filter(tenants::deleted_at.is_null())
        .select(TenantRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("tenant"))?
        .try_into()
}

/// A tenant id read from the database (the `id` of `tenants`, or a `tenant_id` referring to it);
/// a value that is not one is a corrupt row of `tenants`.
pub(crate) fn stored_id(id: String) -> StoreResult<TenantId> {
    id.parse().map_err(|e| StoreError::Corrupt {
        table: "tenants",
        reason: format!("{e}"),
        id,
    })
}

/// Whether a tenant exists.
pub fn exists(conn: &mut AnyConnection, id: &TenantId) -> StoreResult<bool> {
    let n: i64 = tenants::table
        .filter(tenants::id.eq(id.to_string()))
        .filter(tenants::deleted_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

diesel::define_sql_function! {
    /// SQL `lower(text)`, on both backends.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A page of tenants in creation order.
pub fn list(
    conn: &mut AnyConnection,
    filter: &TenantFilter,
    page: &PageRequest,
) -> StoreResult<Page<Tenant>> {
    let mut query = tenants::table
        .filter(tenants::deleted_at.is_null())
        .select(TenantRow::as_select())
        .order((tenants::created_at.asc(), tenants::id.asc()))
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(tenants::status.eq(status.as_str()));
    }
    if let Some(plan) = filter.plan {
        query = query.filter(tenants::plan.eq(plan.as_str()));
    }
    if let Some(needle) = filter.name_contains.as_deref().filter(|n| !n.is_empty()) {
        query = query.filter(lower(tenants::name).like(like_pattern(needle)).escape('\\'));
    }
    if let Some(after) = page.after {
        let at = after.created_at.naive_utc();
        let id = after.id.hyphenated().to_string();
        query = query.filter(
            tenants::created_at
                .gt(at)
                .or(tenants::created_at.eq(at).and(tenants::id.gt(id))),
        );
    }
    let rows = query.load::<TenantRow>(conn)?;
    let page = Page::from_overfetch(rows, page.limit, |last| {
        crate::paging::cursor_of("tenants", last.created_at, &last.id)
    })?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(Tenant::try_from)
            .collect::<StoreResult<Vec<_>>>()?,
        next_cursor: page.next_cursor,
    })
}

/// Every active tenant, in storage order (a sequential scan: callers that need an order sort).
pub fn list_active(conn: &mut AnyConnection) -> StoreResult<Vec<Tenant>> {
    tenants::table
        .filter(tenants::status.eq(TenantStatus::Active.as_str()))
        .filter(tenants::deleted_at.is_null())
        .select(TenantRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Tenant::try_from)
        .collect()
}

/// How many tenants there are of each (plan, status), as stored; for the metrics gauges.
pub fn count_by_plan_and_status(
    conn: &mut AnyConnection,
) -> StoreResult<Vec<(String, String, i64)>> {
    Ok(tenants::table
        .filter(tenants::deleted_at.is_null())
        .group_by((tenants::plan, tenants::status))
        .select((tenants::plan, tenants::status, diesel::dsl::count_star()))
        .load(conn)?)
}

/// Every tenant, suspended ones included, in storage order (a sequential scan).
pub fn list_all(conn: &mut AnyConnection) -> StoreResult<Vec<Tenant>> {
    tenants::table
        .filter(tenants::deleted_at.is_null())
        .select(TenantRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Tenant::try_from)
        .collect()
}

/// Applies an update; returns the tenant as stored.
pub fn update(
    conn: &mut AnyConnection,
    id: &TenantId,
    update: TenantUpdate,
    now: DateTime<Utc>,
) -> StoreResult<Tenant> {
    conn.transaction(|c| {
        let mut tenant = find(c, id)?;
        let new_slug = update.slug.clone();
        update.apply(&mut tenant, now);
        let row = TenantRow::from(&tenant);
        let saved = c.transaction(|c| {
            diesel::update(tenants::table.find(&row.id))
                .set(&row)
                .execute(c)
        });
        match saved {
            Ok(_) => {
                crate::config_revision::bump(c)?;
                Ok(tenant)
            }
            Err(e) if unique_violation(&e).is_some_and(|k| k.contains("slug")) => {
                Err(slug_taken(new_slug.as_ref().unwrap_or(&tenant.slug)))
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// Deletes a tenant as far as anyone can tell, at once and cheaply, whatever its size: its
/// `deleted_at` is set (every lookup then misses it, and the gateway config drops it), its slug
/// is freed, its API keys, users (with their refresh tokens), channels and slug redirects are
/// deleted, its webhook endpoints disabled (the dispatcher turns their pending deliveries into
/// dead letters instead of sending them). The bulk of its rows is left to the background purge
/// ([`crate::purge::tenant_step`]). Its placement row goes at once, and with it the room it held
/// on its gateway ([`crate::gateways`]' stored counts): hence the fleet lock it requires.
/// `NotFound` for an unknown or already deleted tenant.
pub fn delete(fleet: &mut crate::gateways::FleetLock<'_>, id: &TenantId) -> StoreResult<()> {
    use crate::schema::{
        api_keys, channels, tenant_slug_redirects, tenant_users, webhook_endpoints,
    };
    let now = tenant_core::now().naive_utc();
    let tid = id.to_string();
    // In the caller's transaction (the fleet lock is one's).
    let c: &mut AnyConnection = fleet;
    let n = diesel::update(
        tenants::table
            .filter(tenants::id.eq(&tid))
            .filter(tenants::deleted_at.is_null()),
    )
    .set((
        tenants::deleted_at.eq(now),
        tenants::slug.eq(format!("deleted-{}", id.as_uuid().simple())),
        tenants::updated_at.eq(now),
    ))
    .execute(c)?;
    if n == 0 {
        return Err(StoreError::NotFound("tenant"));
    }
    crate::gateways::remove_placement(fleet, id)?;
    let c: &mut AnyConnection = fleet;
    diesel::delete(api_keys::table.filter(api_keys::tenant_id.eq(&tid))).execute(c)?;
    diesel::delete(tenant_users::table.filter(tenant_users::tenant_id.eq(&tid))).execute(c)?;
    diesel::delete(channels::table.filter(channels::tenant_id.eq(&tid))).execute(c)?;
    diesel::delete(tenant_slug_redirects::table.filter(tenant_slug_redirects::tenant_id.eq(&tid)))
        .execute(c)?;
    diesel::update(webhook_endpoints::table.filter(webhook_endpoints::tenant_id.eq(&tid)))
        .set((
            webhook_endpoints::enabled.eq(false),
            webhook_endpoints::disabled_reason.eq("tenant_deleted"),
            webhook_endpoints::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(crate::config_revision::bump(c)?)
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Ac_me%"), "%ac\\_me\\%%");
        assert_eq!(like_pattern("a\\b"), "%a\\\\b%");
    }
}
