//! Per-tenant limit overrides (enterprise deals): one row per tenant, one nullable column per
//! limit, `NULL` meaning "the plan's value". The plans themselves are not stored: they are built
//! in, or read from the operator's plans file (see `tenant-service`'s `plans`).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::TenantId;

use crate::schema::tenant_limits;
use crate::{AnyConnection, StoreResult};

/// A tenant's overrides as stored: `None` for a limit the plan decides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tenant_limits, treat_none_as_null = true)]
pub struct LimitOverrides {
    /// Channels the tenant may have.
    pub max_channels: Option<i64>,
    /// Webhook endpoints the tenant may have.
    pub max_webhook_endpoints: Option<i64>,
    /// Messages per calendar month.
    pub messages_per_month: Option<i64>,
    /// API requests per minute with one API key.
    pub requests_per_minute_per_key: Option<i64>,
    /// API requests per minute with all of the tenant's credentials.
    pub requests_per_minute_per_tenant: Option<i64>,
    /// Requests accepted at once above the steady rate.
    pub request_burst: Option<i64>,
}

impl LimitOverrides {
    /// Whether no limit is overridden.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A tenant's overrides (all `None` when it has no row).
pub fn find(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<LimitOverrides> {
    Ok(tenant_limits::table
        .find(tenant_id.to_string())
        .select(LimitOverrides::as_select())
        .first(conn)
        .optional()?
        .unwrap_or_default())
}

/// The plan name and the overrides of each of these tenants that exists, in no order (two
/// statements for a whole batch, where [`find`] and a tenant read take two per tenant).
pub fn plans_and_overrides_of(
    conn: &mut AnyConnection,
    tenant_ids: &[TenantId],
) -> StoreResult<Vec<(String, String, LimitOverrides)>> {
    use crate::schema::tenants;
    let ids: Vec<String> = tenant_ids.iter().map(ToString::to_string).collect();
    let plans: Vec<(String, String)> = tenants::table
        .filter(tenants::id.eq_any(&ids))
        .select((tenants::id, tenants::plan))
        .load(conn)?;
    let mut overrides: Vec<(String, LimitOverrides)> = tenant_limits::table
        .filter(tenant_limits::tenant_id.eq_any(&ids))
        .select((tenant_limits::tenant_id, LimitOverrides::as_select()))
        .load(conn)?;
    Ok(plans
        .into_iter()
        .map(|(id, plan)| {
            let own = overrides
                .iter()
                .position(|(t, _)| *t == id)
                .map(|at| overrides.swap_remove(at).1)
                .unwrap_or_default();
            (id, plan, own)
        })
        .collect())
}

/// Replaces a tenant's overrides (all `None` removes its row).
pub fn save(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    overrides: &LimitOverrides,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let id = tenant_id.to_string();
    diesel::delete(tenant_limits::table.find(&id)).execute(conn)?;
    if overrides.is_empty() {
        return Ok(());
    }
    diesel::insert_into(tenant_limits::table)
        .values((
            tenant_limits::tenant_id.eq(&id),
            overrides,
            tenant_limits::updated_at.eq::<NaiveDateTime>(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(())
}

/// How many channels a tenant has.
pub fn count_channels(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<i64> {
    use crate::schema::channels;
    Ok(channels::table
        .filter(channels::tenant_id.eq(tenant_id.to_string()))
        .count()
        .get_result(conn)?)
}

/// How many webhook endpoints a tenant has.
pub fn count_webhook_endpoints(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<i64> {
    use crate::schema::webhook_endpoints;
    Ok(webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant_id.to_string()))
        .count()
        .get_result(conn)?)
}
