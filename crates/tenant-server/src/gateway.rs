//! The gateway configuration as the server serves it: the sources loaded from the store, the
//! rendering cached per variant and keyed by the store's config revision, and its `ETag`.
//!
//! Any change to tenants or channels bumps the revision in its own transaction (see
//! `tenant_store::config_revision`), on whichever replica made it. A request reads the revision
//! (one small query); when it matches the cached rendering, the cached bytes are served (or 304)
//! without touching the tenants at all.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::web::Bytes;
use sha2::{Digest, Sha256};
use tenant_configgen::{Dialect, RenderOptions, RenderedConfig, SecretsMode, TenantSource};
use tenant_core::{Channel, Tenant, TenantId};
use tenant_store::crypto::KeyRing;
use tenant_store::{AnyConnection, StoreResult, channels, config_revision, tenants};
use tokio::sync::Mutex;

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
            (t, chans)
        })
        .collect())
}

/// Borrowed views of loaded sources, as the renderer takes them.
pub fn as_sources(loaded: &[(Tenant, Vec<Channel>)]) -> Vec<TenantSource<'_>> {
    loaded
        .iter()
        .map(|(tenant, channels)| TenantSource { tenant, channels })
        .collect()
}

/// A rendered document ready to serve.
#[derive(Debug)]
pub struct CachedConfig {
    /// The config revision it was rendered from.
    pub revision: i64,
    /// The JSON document; `Bytes` so that serving it shares the buffer instead of copying it.
    pub body: Bytes,
    /// The env file (secrets mode `env`).
    pub env_file: Option<String>,
    /// Strong entity tag: a hash of the body, quoted.
    pub etag: String,
}

impl CachedConfig {
    /// Wraps a rendering.
    pub fn new(revision: i64, rendered: RenderedConfig) -> Self {
        let digest = Sha256::digest(rendered.json.as_bytes());
        let etag = format!("\"{}\"", hex::encode(&digest[..16]));
        Self {
            revision,
            body: Bytes::from(rendered.json),
            env_file: rendered.env_file,
            etag,
        }
    }

    /// Whether an `If-None-Match` header value matches this document (RFC 9110 weak comparison,
    /// as `If-None-Match` requires).
    pub fn matches(&self, if_none_match: &str) -> bool {
        let ours = self.etag.as_str();
        if_none_match
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
    }
}

/// Which rendering: the variants a gateway may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Config dialect.
    pub dialect: Dialect,
    /// How credentials appear.
    pub secrets: SecretsMode,
    /// One combined document, or one per tenant keyed by account id.
    pub per_tenant: bool,
}

/// Renderings by variant, each valid for one revision.
#[derive(Debug, Default)]
pub struct ConfigCache {
    entries: Mutex<HashMap<Variant, Arc<CachedConfig>>>,
}

impl ConfigCache {
    /// The cached rendering of `variant` if it is of `revision`, else the one `render` makes.
    /// Concurrent requests for a stale variant wait for one rendering instead of each making
    /// their own.
    pub async fn get_or_render<F, Fut, E>(
        &self,
        variant: Variant,
        revision: i64,
        render: F,
    ) -> Result<Arc<CachedConfig>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<CachedConfig, E>>,
    {
        let mut entries = self.entries.lock().await;
        if let Some(hit) = entries.get(&variant).filter(|c| c.revision == revision) {
            return Ok(Arc::clone(hit));
        }
        let fresh = Arc::new(render().await?);
        entries.insert(variant, Arc::clone(&fresh));
        Ok(fresh)
    }
}

/// Renders a variant from the store. Reads the revision before the data: a change committed in
/// between makes the rendering newer than its label, and the next request renders again.
pub fn render_variant(
    conn: &mut AnyConnection,
    variant: Variant,
    base: &RenderOptions,
    ring: &KeyRing,
) -> Result<CachedConfig, crate::error::ApiError> {
    let started = Instant::now();
    let revision = config_revision::current(conn)?;
    let loaded = load_sources(conn, false, ring)?;
    let load_ms = started.elapsed().as_millis() as u64;
    let tenants = loaded.len();
    let opts = RenderOptions {
        dialect: variant.dialect,
        secrets: variant.secrets,
        ..base.clone()
    };
    let rendered = {
        let sources = as_sources(&loaded);
        if variant.per_tenant {
            render_per_tenant_document(&sources, &opts)?
        } else {
            tenant_configgen::render_combined(&sources, &opts)?
        }
    };
    // Only the document outlives this call: free the rows before hashing and caching it, so the
    // loaded rows and the document are not both held longer than the render needs.
    drop(loaded);
    let doc = CachedConfig::new(revision, rendered);
    tracing::info!(
        config.revision = revision,
        config.dialect = %variant.dialect,
        config.per_tenant = variant.per_tenant,
        config.tenants = tenants,
        config.bytes = doc.body.len(),
        load_ms,
        total_ms = started.elapsed().as_millis() as u64,
        "gateway config rendered"
    );
    Ok(doc)
}

/// One JSON object mapping each active tenant's account id to its own config document (in the
/// same layout, ending with one newline); env files are concatenated.
fn render_per_tenant_document(
    sources: &[TenantSource<'_>],
    opts: &RenderOptions,
) -> Result<RenderedConfig, tenant_configgen::ConfigError> {
    let mut json = String::from("{");
    let mut env = String::new();
    let mut sorted: Vec<&TenantSource<'_>> = sources.iter().collect();
    sorted.sort_by(|a, b| a.tenant.account_id.cmp(&b.tenant.account_id));
    // One buffer for every tenant's rendering (a tenant's own document is the combined document
    // of that tenant alone).
    let mut rendered = RenderedConfig::default();
    for (i, source) in sorted.iter().enumerate() {
        tenant_configgen::render_combined_into(std::slice::from_ref(*source), opts, &mut rendered)?;
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(source.tenant.account_id.as_str());
        json.push_str("\":");
        json.push_str(rendered.json.trim_end_matches('\n'));
        if let Some(e) = &rendered.env_file {
            env.push_str(e);
        }
    }
    json.push_str("}\n");
    Ok(RenderedConfig {
        json,
        env_file: (opts.secrets != SecretsMode::Inline).then_some(env),
    })
}
