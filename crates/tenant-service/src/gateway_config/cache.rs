//! The gateway config cache: per variant, a document kept up to date incrementally.
//!
//! A request reads the config revision (one small query). When the variant's document is of that
//! revision (or newer) it is served as is, or answered 304. Otherwise one request refreshes it
//! while the others wait: it lists a stamp of every tenant and channel of its gateway (for
//! `default`, two sequential scans of three small columns; for another gateway, its tenants
//! found through their placement rows), compares them with the stamps of what the document
//! holds, loads only the tenants that changed (in batches), re-renders those and reassembles
//! the document from cached chunks (see [`tenant_configgen::IncrementalConfig`]). A deleted
//! tenant is one whose stamp is gone; a suspended one is taken out without loading it.
//!
//! The stamps are read after the revision and the rows after the stamps, so what is loaded is at
//! least as new as the stamp recorded for it: a change that lands in between shows up as a new
//! stamp (and a new revision) at the next request, which loads it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tenant_configgen::{
    ConfigError, HeapParts, IncrementalConfig, Mode, RenderOptions, TenantSource, hash_map_bytes,
};
use tenant_core::{TenantId, TenantIdMap};
use tenant_store::config_sources::{self, BATCH};
use tenant_store::crypto::KeyRing;
use tenant_store::{AnyConnection, Database, config_revision, gateways};

use super::Variant;
use super::served::{ChunkDigests, ServedConfig};
use crate::error::{ServiceError, ServiceResult};

/// What the last refresh of one variant's document did: how many tenants it rendered again
/// (changed since the refresh before) and how many it took out. A change to one tenant renders
/// that tenant again in the document of its gateway only; the other gateways' documents find
/// every stamp unchanged (`rendered == 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshStats {
    /// The config revision the document was brought to.
    pub revision: i64,
    /// Tenants the document holds (suspended ones included, as stamps).
    pub tenants: usize,
    /// Tenants loaded and rendered again.
    pub rendered: usize,
    /// Tenants taken out (deleted, suspended, or placed elsewhere).
    pub removed: usize,
}

/// One variant's document and what it was made from.
struct VariantCache {
    live: IncrementalConfig,
    /// Per tenant (suspended ones included), the stamp of what `live` holds for it.
    stamps: TenantIdMap<u64>,
    /// The listing's working memory, kept between refreshes: allocated afresh each time, these
    /// few MB made the allocator's mmap threshold creep up and the process grow with them.
    /// Per tenant: id, active, stamp, quota used up.
    listed: Vec<(TenantId, bool, u64, bool)>,
    /// The usage period (`YYYY-MM`) the document was made in: a quota-exceeded tenant's channels
    /// come back when the month rolls over, which no revision marks.
    period: String,
    /// Digests of the current chunks, by chunk id (see [`ServedConfig::assembled`]).
    digests: ChunkDigests,
    /// The last document served.
    current: Option<Arc<ServedConfig>>,
    /// The revision the tenants' data could not make a document at, and why: answered again at
    /// once until the revision moves.
    failure: Option<(i64, ConfigError)>,
    /// What the last refresh did.
    last: Option<RefreshStats>,
}

impl std::fmt::Debug for VariantCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VariantCache")
            .field("tenants", &self.live.len())
            .field("revision", &self.current.as_ref().map(|c| c.revision))
            .finish_non_exhaustive()
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<VariantCache>>>;

/// Documents by variant, each kept up to date incrementally.
#[derive(Debug, Default)]
pub struct ConfigCache {
    variants: Mutex<HashMap<Variant, Slot>>,
}

impl ConfigCache {
    fn slot(&self, variant: Variant) -> Slot {
        let mut variants = self.variants.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(variants.entry(variant).or_default())
    }

    /// The document of `variant` at `revision` (or newer): cached, or refreshed from the store
    /// (rendered with `render`, its dialect and secrets mode the variant's; credentials opened
    /// with `keys`). Concurrent requests for a stale variant wait for one refresh.
    pub async fn get(
        &self,
        db: &Database,
        render: &RenderOptions,
        keys: &Arc<KeyRing>,
        variant: Variant,
        revision: i64,
    ) -> ServiceResult<Arc<ServedConfig>> {
        let slot = self.slot(variant);
        let mut guard = slot.lock_owned().await;
        let period = tenant_store::usage::period_of(tenant_core::now());
        if let Some(cache) = guard.as_ref().filter(|c| c.period == period) {
            if let Some(doc) = cache.current.as_ref().filter(|d| d.revision >= revision) {
                return Ok(Arc::clone(doc));
            }
            if let Some((at, e)) = &cache.failure
                && *at >= revision
            {
                return Err(e.clone().into());
            }
        }
        let opts = RenderOptions {
            dialect: variant.dialect,
            secrets: variant.secrets,
            ..render.clone()
        };
        let keys = Arc::clone(keys);
        crate::db::run(db, move |conn| {
            if guard.is_none() {
                let mode = if variant.per_tenant {
                    Mode::PerTenant
                } else {
                    Mode::Combined
                };
                *guard = Some(VariantCache {
                    live: IncrementalConfig::new(opts, mode)?,
                    stamps: TenantIdMap::default(),
                    listed: Vec::new(),
                    period: String::new(),
                    digests: ChunkDigests::default(),
                    current: None,
                    failure: None,
                    last: None,
                });
            }
            match guard.as_mut() {
                Some(cache) => cache.refresh(conn, variant, &keys, period),
                None => Err(ServiceError::Internal("config cache not set up".to_owned())),
            }
        })
        .await
    }
}

impl ConfigCache {
    /// What the last refresh of `variant`'s document did (`None` before its first).
    pub async fn last_refresh(&self, variant: Variant) -> Option<RefreshStats> {
        let slot = self.slot(variant);
        let guard = slot.lock().await;
        guard.as_ref().and_then(|c| c.last)
    }

    /// What every variant's document and its bookkeeping hold on the heap, by part (for memory
    /// figures: the `fleet_scale` example), and how many documents there are.
    pub async fn heap(&self) -> (HeapParts, usize) {
        let slots: Vec<Slot> = self
            .variants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut parts = HeapParts::default();
        let mut documents = 0;
        for slot in slots {
            let guard = slot.lock().await;
            let Some(cache) = guard.as_ref() else {
                continue;
            };
            documents += 1;
            parts.merge(&cache.live.heap());
            parts.add("stamps", hash_map_bytes(&cache.stamps));
            parts.add(
                "stamp listing",
                cache.listed.capacity() * size_of::<(TenantId, bool, u64, bool)>(),
            );
            parts.add("chunk digests", cache.digests.heap());
            parts.add(
                "served chunk handles",
                cache.current.as_ref().map_or(0, |c| c.heap()),
            );
        }
        (parts, documents)
    }

    /// Of `candidates`, those absent from the cached document of `variant` if its tag is
    /// `etag`; `None` when it is not (the gateway serves another document, older or newer).
    /// A gateway serving that document serves none of the tenants returned. Call after
    /// [`ConfigCache::get`] brought the variant to the revision that matters.
    pub async fn absent_from(
        &self,
        variant: Variant,
        etag: &str,
        candidates: &[TenantId],
    ) -> Option<Vec<TenantId>> {
        let slot = self.slot(variant);
        let guard = slot.lock().await;
        let cache = guard.as_ref().filter(|c| c.failure.is_none())?;
        // The exact tag: `*` or a list would acknowledge a document the gateway may not hold.
        if cache.current.as_ref().is_none_or(|d| d.etag != etag) {
            return None;
        }
        Some(
            candidates
                .iter()
                .filter(|id| !cache.live.contains(id))
                .copied()
                .collect(),
        )
    }
}

impl VariantCache {
    /// Brings the document up to the store's current state and serves it.
    fn refresh(
        &mut self,
        conn: &mut AnyConnection,
        variant: Variant,
        keys: &KeyRing,
        period: String,
    ) -> ServiceResult<Arc<ServedConfig>> {
        let started = Instant::now();
        let revision = config_revision::current(conn)?;
        // Only the gateway's own tenants (read after the revision, like everything else): the
        // others are "gone" from its document. A gateway other than `default` lists only the
        // tenants placed on it (through its placement rows), so a change anywhere costs each
        // polling gateway its share of the store, not a scan of it; `default` holds every tenant
        // but those placed elsewhere, so it lists every tenant and leaves those out.
        let only_on = (!variant.gateway.is_default()).then_some(&variant.gateway);
        let members = match only_on {
            Some(_) => None,
            None => Some(gateways::members(conn, &variant.gateway)?),
        };
        // Every tenant of the gateway, in storage order: (id, active, stamp of it and its
        // channels, quota used up this month). Filtered while listing, so that the kept buffer
        // is the size of this gateway's share, not of the whole store: 50 gateways' buffers of
        // 100k entries each were 200 MB.
        let listed = &mut self.listed;
        listed.clear();
        config_sources::for_each_tenant_stamp(conn, only_on, &period, |s| {
            if members.as_ref().is_none_or(|m| m.contains(&s.id)) {
                listed.push((s.id, s.active, s.version, s.quota_exceeded));
            }
        })?;
        drop(members);
        self.period = period;
        // Where each listed tenant is, for its channels' stamps: made for this refresh only (kept,
        // a 2,000-tenant gateway's index held 4,096 slots, 100 KB, between refreshes).
        let mut index: TenantIdMap<usize> =
            TenantIdMap::with_capacity_and_hasher(listed.len(), Default::default());
        index.extend(listed.iter().enumerate().map(|(i, (id, ..))| (*id, i)));
        config_sources::for_each_channel_stamp(conn, only_on, |s| {
            if let Some((_, _, stamp, _)) = index.get(&s.tenant_id).and_then(|&i| listed.get_mut(i))
            {
                // Summed, so the order channels are read in does not matter.
                *stamp = stamp.wrapping_add(s.version);
            }
        })?;
        let list_ms = started.elapsed().as_millis() as u64;

        let gone: Vec<TenantId> = self
            .stamps
            .keys()
            .filter(|id| !index.contains_key(id))
            .copied()
            .collect();
        drop(index);
        for id in &gone {
            self.live.remove(id);
            self.stamps.remove(id);
        }
        let mut removed = gone.len();
        // In storage order, so that each batch reads neighbouring rows.
        let mut to_load: Vec<(TenantId, u64)> = Vec::new();
        let mut over_quota: Vec<TenantId> = Vec::new();
        for &(id, active, stamp, exceeded) in listed.iter() {
            if self.stamps.get(&id) == Some(&stamp) {
                continue;
            }
            if active {
                to_load.push((id, stamp));
                if exceeded {
                    over_quota.push(id);
                }
            } else {
                // Suspended: nothing of it is rendered, so nothing needs loading.
                if self.live.contains(&id) {
                    self.live.remove(&id);
                    removed += 1;
                }
                self.stamps.insert(id, stamp);
            }
        }
        self.live.reserve(to_load.len());
        let changed = gone.len() + to_load.len();
        for batch in to_load.chunks(BATCH) {
            let ids: Vec<TenantId> = batch.iter().map(|(id, _)| *id).collect();
            let mut loaded = config_sources::load_batch(conn, &ids, keys)?;
            for (tenant, channels) in &mut loaded {
                if over_quota.contains(&tenant.id) {
                    // Its messages are used up: its agent stays, its channel accounts go.
                    channels.clear();
                }
                self.live.upsert(&TenantSource { tenant, channels });
            }
            for (id, stamp) in batch {
                if loaded.binary_search_by_key(id, |(t, _)| t.id).is_ok() {
                    self.stamps.insert(*id, *stamp);
                } else {
                    // Deleted since the listing.
                    self.live.remove(id);
                    self.stamps.remove(id);
                }
            }
        }
        let load_ms = started.elapsed().as_millis() as u64 - list_ms;

        self.last = Some(RefreshStats {
            revision,
            tenants: self.stamps.len(),
            rendered: to_load.len(),
            removed,
        });
        let doc = match self.live.render() {
            Ok(doc) => doc,
            Err(e) => {
                self.failure = Some((revision, e.clone()));
                return Err(e.into());
            }
        };
        let served = Arc::new(ServedConfig::assembled(revision, &doc, &mut self.digests));
        crate::monitoring::config_rendered(
            self.current.is_none(),
            variant.per_tenant,
            served.len(),
            started.elapsed(),
        );
        self.failure = None;
        self.current = Some(Arc::clone(&served));
        tracing::info!(
            config.revision = revision,
            config.dialect = %variant.dialect,
            config.per_tenant = variant.per_tenant,
            config.tenants = self.live.len(),
            config.changed = changed,
            config.bytes = served.len(),
            config.chunks = served.chunk_count(),
            list_ms,
            load_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "gateway config refreshed"
        );
        Ok(served)
    }
}
