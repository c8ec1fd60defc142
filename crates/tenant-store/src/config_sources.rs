//! What the gateway-config cache reads: a cheap stamp of every tenant and channel (to find what
//! changed since it last looked), and the full rows of a batch of tenants (to re-render those).
//!
//! The stamps are streamed from one sequential scan per table (three small columns; the rows
//! are never collected), in storage order, so listing 100k tenants and 200k channels costs no
//! more memory than a row, and loading changed tenants in that order reads neighbouring pages.
//! For a gateway of a fleet (other than `default`) only the tenants placed on it are listed,
//! found through the index of their placement rows: its share of the store, not a scan of it.
//! A stamp's `version` is a hash of the row's `updated_at` as stored (read as text: parsing
//! 300k timestamps was most of the listing's time) and, for a channel, its kind: it changes
//! whenever the row is written. A tenant whose own or channels' versions changed, or whose
//! channels were added or removed, has changed; a deleted tenant is one whose stamp is missing.
//! Versions are only comparable within one process (the hash is not stable across builds).

use std::hash::{DefaultHasher, Hash, Hasher};

use diesel::connection::DefaultLoadingMode;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Text;
use tenant_core::{Channel, GatewayId, Tenant, TenantId, TenantStatus};

use crate::channels::ChannelRow;
use crate::crypto::KeyRing;
use crate::schema::{channels, tenant_placements, tenants};
use crate::tenants::TenantRow;
use crate::{AnyConnection, StoreError, StoreResult};

/// A tenant's stamp: see [`for_each_tenant_stamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantStamp {
    /// The tenant.
    pub id: TenantId,
    /// Whether it is active (only active tenants are in a combined config).
    pub active: bool,
    /// Changes whenever the row is written (see the module documentation).
    pub version: u64,
    /// Whether its message quota is used up in the period asked about: its channels are then
    /// left out of the config (the version differs too).
    pub quota_exceeded: bool,
}

/// A channel's stamp: see [`for_each_channel_stamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelStamp {
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Changes whenever the row is written (see the module documentation).
    pub version: u64,
}

/// The `updated_at` column as stored, as text (the same cast on both backends).
const UPDATED_AT_TEXT: &str = "CAST(updated_at AS TEXT)";

fn version(parts: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

fn corrupt(table: &'static str, id: &str, reason: String) -> StoreError {
    StoreError::Corrupt {
        table,
        id: id.to_owned(),
        reason,
    }
}

/// The subquery of [`placed_on`].
type PlacedOn = diesel::dsl::Select<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            tenant_placements::table,
            diesel::dsl::Eq<tenant_placements::state, &'static str>,
        >,
        diesel::dsl::Eq<tenant_placements::gateway_id, String>,
    >,
    tenant_placements::tenant_id,
>;

/// The ids of the tenants placed on `gateway` (a subquery: the tenants and channels listed for
/// a gateway other than `default` are found through its placement rows' index).
fn placed_on(gateway: &GatewayId) -> PlacedOn {
    tenant_placements::table
        .filter(tenant_placements::state.eq("placed"))
        .filter(tenant_placements::gateway_id.eq(gateway.to_string()))
        .select(tenant_placements::tenant_id)
}

/// Calls `f` with the stamp of every tenant, or with `only_on`, of every tenant placed on that
/// gateway (its placement rows' index, then each tenant by its key: a gateway's share of the
/// store, not a scan of it); in storage order. `period` (`YYYY-MM`, the current month) decides
/// which tenants have used up their message quota.
pub fn for_each_tenant_stamp(
    conn: &mut AnyConnection,
    only_on: Option<&GatewayId>,
    period: &str,
    mut f: impl FnMut(TenantStamp),
) -> StoreResult<()> {
    let live = tenants::table.filter(tenants::deleted_at.is_null());
    let columns = (
        tenants::id,
        tenants::status,
        sql::<Text>(UPDATED_AT_TEXT),
        tenants::quota_exceeded_period,
    );
    type Row = (String, String, String, Option<String>);
    let mut each = |row: QueryResult<Row>| -> StoreResult<()> {
        let (id, status, updated_at, exceeded) = row?;
        let tenant: TenantId = id
            .parse()
            .map_err(|e| corrupt("tenants", &id, format!("{e}")))?;
        let quota_exceeded = exceeded.as_deref() == Some(period);
        let over = if quota_exceeded { "over" } else { "" };
        f(TenantStamp {
            id: tenant,
            active: status == TenantStatus::Active.as_str(),
            version: version(&[&status, &updated_at, over]),
            quota_exceeded,
        });
        Ok(())
    };
    match only_on {
        None => {
            for row in live
                .select(columns)
                .load_iter::<Row, DefaultLoadingMode>(conn)?
            {
                each(row)?;
            }
        }
        Some(gateway) => {
            for row in live
                .filter(tenants::id.eq_any(placed_on(gateway)))
                .select(columns)
                .load_iter::<Row, DefaultLoadingMode>(conn)?
            {
                each(row)?;
            }
        }
    }
    Ok(())
}

/// Calls `f` with the stamp of every channel, or with `only_on`, of every channel of the
/// tenants placed on that gateway (as [`for_each_tenant_stamp`]); in storage order.
pub fn for_each_channel_stamp(
    conn: &mut AnyConnection,
    only_on: Option<&GatewayId>,
    mut f: impl FnMut(ChannelStamp),
) -> StoreResult<()> {
    let columns = (
        channels::tenant_id,
        channels::kind,
        sql::<Text>(UPDATED_AT_TEXT),
    );
    type Row = (String, String, String);
    let mut each = |row: QueryResult<Row>| -> StoreResult<()> {
        let (tenant_id, kind, updated_at) = row?;
        let parsed: TenantId = tenant_id
            .parse()
            .map_err(|e| corrupt("channels", &tenant_id, format!("{e}")))?;
        f(ChannelStamp {
            tenant_id: parsed,
            version: version(&[&kind, &updated_at]),
        });
        Ok(())
    };
    match only_on {
        None => {
            for row in channels::table
                .select(columns)
                .load_iter::<Row, DefaultLoadingMode>(conn)?
            {
                each(row)?;
            }
        }
        Some(gateway) => {
            for row in channels::table
                .filter(channels::tenant_id.eq_any(placed_on(gateway)))
                .select(columns)
                .load_iter::<Row, DefaultLoadingMode>(conn)?
            {
                each(row)?;
            }
        }
    }
    Ok(())
}

/// The most ids one batch query takes (well under SQLite's bound-parameter limit).
pub const BATCH: usize = 500;

/// The tenants with the given ids (at most [`BATCH`]; missing ones are left out), each with all of
/// its channels, credentials opened with `ring`, sorted by tenant id. Two queries, whatever the
/// batch size.
pub fn load_batch(
    conn: &mut AnyConnection,
    tenant_ids: &[TenantId],
    ring: &KeyRing,
) -> StoreResult<Vec<(Tenant, Vec<Channel>)>> {
    let ids: Vec<String> = tenant_ids.iter().map(TenantId::to_string).collect();
    let mut loaded: Vec<(Tenant, Vec<Channel>)> = tenants::table
        .filter(tenants::id.eq_any(&ids))
        .filter(tenants::deleted_at.is_null())
        .select(TenantRow::as_select())
        .load::<TenantRow>(conn)?
        .into_iter()
        .map(|row| Tenant::try_from(row).map(|t| (t, Vec::new())))
        .collect::<StoreResult<_>>()?;
    // Few enough to find each channel's tenant by sorting and searching.
    loaded.sort_unstable_by_key(|(t, _)| t.id);
    let rows = channels::table
        .filter(channels::tenant_id.eq_any(&ids))
        .select(ChannelRow::as_select())
        .load::<ChannelRow>(conn)?;
    for row in rows {
        let channel = row.open(ring)?;
        let found = loaded.binary_search_by_key(&channel.tenant_id, |(t, _)| t.id);
        if let Some((_, list)) = found.ok().and_then(|i| loaded.get_mut(i)) {
            list.push(channel);
        }
    }
    Ok(loaded)
}
