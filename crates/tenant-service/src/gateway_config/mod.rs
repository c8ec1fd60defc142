//! The gateway configuration: per variant a document kept up to date incrementally and keyed by
//! the store's config revision ([`cache`]), served as shared chunks with a strong `ETag`
//! ([`served`]); the whole store loaded at once for one-shot renders; and the config written to
//! files for a gateway on the same host ([`file_sync`], through [`atomic_file`], fenced by
//! [`fence`] when its lease cannot be renewed).
//!
//! Any change to tenants or channels bumps the revision in its own transaction (see
//! `tenant_store::config_revision`), on whichever replica made it. A request reads the revision
//! (one small query); when the cached document is of that revision, it is served (or 304)
//! without touching the tenants at all.

pub mod atomic_file;
mod cache;
pub mod fence;
pub mod file_sync;
mod served;

use std::collections::HashMap;

pub use cache::{ConfigCache, RefreshStats};
pub use served::{ChunkDigests, ServedConfig};
use tenant_configgen::{
    ConfigError, Dialect, IncrementalConfig, Mode, RenderOptions, RenderedConfig, SecretsMode,
    TenantSource,
};
use tenant_core::{Channel, GatewayId, Tenant, TenantId};
use tenant_store::crypto::KeyRing;
use tenant_store::{AnyConnection, StoreResult, channels, tenants};

use crate::error::ServiceResult;

/// Every active tenant with its channels (the renderer keeps only the served ones); with
/// `include_suspended`, every tenant. Both tables are read by sequential scans and joined here:
/// the renderer orders its output itself, and at 100k tenants a join or an `ORDER BY` through an
/// index costs a random page read per row.
/// Credentials are opened with `ring`; one that does not open fails the whole load with an
/// error naming its tenant and channel kind (a config silently missing a channel would be worse).
pub fn load_sources(
    conn: &mut AnyConnection,
    include_suspended: bool,
    ring: &KeyRing,
) -> StoreResult<Vec<(Tenant, Vec<Channel>)>> {
    let tenants = if include_suspended {
        tenants::list_all(conn)?
    } else {
        tenants::list_active(conn)?
    };
    let period = tenant_store::usage::period_of(tenant_core::now());
    let mut by_tenant: HashMap<TenantId, Vec<Channel>> =
        tenants.iter().map(|t| (t.id, Vec::new())).collect();
    for channel in channels::list_all(conn, ring)? {
        // Channels of tenants not loaded (suspended ones, or created since) are skipped.
        if let Some(list) = by_tenant.get_mut(&channel.tenant_id) {
            list.push(channel);
        }
    }
    Ok(tenants
        .into_iter()
        .map(|t| {
            let chans = by_tenant.remove(&t.id).unwrap_or_default();
            {
                let chans = served_channels(&t, &period, chans);
                (t, chans)
            }
        })
        .collect())
}

/// A tenant's channels as rendered: none while its message quota of `period` is used up (its
/// agent stays; the gateway stops answering on its accounts until the month rolls over or its
/// plan changes).
pub fn served_channels(tenant: &Tenant, period: &str, channels: Vec<Channel>) -> Vec<Channel> {
    if tenant.quota_exceeded_in(period) {
        Vec::new()
    } else {
        channels
    }
}

/// Borrowed views of loaded sources, as the renderer takes them.
pub fn as_sources(loaded: &[(Tenant, Vec<Channel>)]) -> Vec<TenantSource<'_>> {
    loaded
        .iter()
        .map(|(tenant, channels)| TenantSource { tenant, channels })
        .collect()
}

/// The active tenants placed on `gateway`, with their channels (see [`load_sources`]): the
/// tenants of its document. For `default` in a single-gateway setup, every active tenant.
pub fn load_gateway_sources(
    conn: &mut AnyConnection,
    gateway: &GatewayId,
    ring: &KeyRing,
) -> StoreResult<Vec<(Tenant, Vec<Channel>)>> {
    let members = tenant_store::gateways::members(conn, gateway)?;
    let mut loaded = load_sources(conn, false, ring)?;
    loaded.retain(|(t, _)| members.contains(&t.id));
    Ok(loaded)
}

/// The combined document of `gateway`'s active tenants, rendered at once from the store (the
/// CLI's `config render`; the server keeps it incrementally instead, see [`ConfigCache`]).
pub fn render_combined(
    conn: &mut AnyConnection,
    gateway: &GatewayId,
    opts: &RenderOptions,
    ring: &KeyRing,
) -> ServiceResult<RenderedConfig> {
    let loaded = load_gateway_sources(conn, gateway, ring)?;
    Ok(tenant_configgen::render_combined(
        &as_sources(&loaded),
        opts,
    )?)
}

/// One tenant's own document, rendered from the store (a suspended tenant's has no agent).
pub fn render_tenant(
    conn: &mut AnyConnection,
    id: &TenantId,
    opts: &RenderOptions,
    ring: &KeyRing,
) -> ServiceResult<RenderedConfig> {
    let tenant = tenants::find(conn, id)?;
    let chans = channels::list(conn, id, ring)?;
    let chans = served_channels(
        &tenant,
        &tenant_store::usage::period_of(tenant_core::now()),
        chans,
    );
    let loaded = [(tenant, chans)];
    Ok(tenant_configgen::render_tenant(
        &as_sources(&loaded)[0],
        opts,
    )?)
}

/// One tenant's own document (`GET /tenants/{id}/config`), assembled like the combined one, so
/// that equal documents carry equal tags whichever route served them.
pub fn tenant_document(
    revision: i64,
    source: &TenantSource<'_>,
    opts: &RenderOptions,
) -> Result<ServedConfig, ConfigError> {
    let mut live = IncrementalConfig::new(opts.clone(), Mode::Combined)?;
    live.upsert(source);
    let doc = live.render()?;
    Ok(ServedConfig::assembled(
        revision,
        &doc,
        &mut ChunkDigests::default(),
    ))
}

/// Which rendering: the gateway whose tenants it holds, and the variants a gateway may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variant {
    /// The gateway whose tenants the document holds (`GatewayId::DEFAULT`: the built-in
    /// gateway, every tenant in a single-gateway setup).
    pub gateway: GatewayId,
    /// Config dialect.
    pub dialect: Dialect,
    /// How credentials appear.
    pub secrets: SecretsMode,
    /// One combined document, or one per tenant keyed by account id.
    pub per_tenant: bool,
}
