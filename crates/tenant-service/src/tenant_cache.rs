//! A read cache for `GET /tenants/{id}`: tenants as last read from the store, with their answer
//! already serialised (by the function the cache is built with, so the cache knows no response
//! type), so a hot read costs a hash lookup instead of a database round trip.
//!
//! Consistency: a change made through this process drops its entry at once (read-your-writes).
//! Changes made by another replica or the CLI are seen through the gateway-config revision, which
//! every tenant change bumps in its own transaction: a background task reads it every
//! `SAAS_TENANT_CACHE_SYNC_MS` and empties the cache when it moved. So another replica's change
//! shows here within about one sync interval. If the revision cannot be read for three intervals
//! (the database is unreachable), the cache is bypassed rather than trusted.
//!
//! A load that raced a change must not re-insert what it read before the change: every
//! invalidation moves an epoch, and a loaded tenant is only cached if the epoch is still the one
//! seen before loading.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tenant_core::{Tenant, TenantId};

/// How a tenant's answer is serialised (the server's `TenantResponse` as JSON).
pub type SerializeTenant = fn(&Tenant) -> Vec<u8>;

/// A cached tenant and its serialised answer.
#[derive(Debug)]
pub struct CachedTenant {
    /// The tenant as read.
    pub tenant: Tenant,
    /// Its JSON answer.
    pub json: Bytes,
}

impl CachedTenant {
    fn new(tenant: Tenant, serialize: SerializeTenant) -> Self {
        let json = serialize(&tenant);
        Self {
            tenant,
            json: Bytes::from(json),
        }
    }
}

#[derive(Debug)]
struct Inner {
    epoch: u64,
    revision: Option<i64>,
    synced: Option<Instant>,
    map: HashMap<TenantId, Arc<CachedTenant>>,
}

/// The cache; `capacity` 0 disables it.
#[derive(Debug)]
pub struct TenantCache {
    capacity: usize,
    max_age: Duration,
    serialize: SerializeTenant,
    inner: RwLock<Inner>,
}

impl TenantCache {
    /// A cache of at most `capacity` tenants whose revision is synced every `sync_interval`,
    /// each kept with its answer as `serialize` makes it.
    pub fn new(capacity: usize, sync_interval: Duration, serialize: SerializeTenant) -> Self {
        Self {
            capacity,
            max_age: sync_interval.saturating_mul(3),
            serialize,
            inner: RwLock::new(Inner {
                epoch: 0,
                revision: None,
                synced: None,
                map: HashMap::new(),
            }),
        }
    }

    /// Whether the cache is in use at all.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached tenant, if present and the cache is in sync.
    pub fn get(&self, id: &TenantId) -> Option<Arc<CachedTenant>> {
        if !self.enabled() {
            return None;
        }
        let inner = self.read();
        let fresh = inner.synced.is_some_and(|t| t.elapsed() <= self.max_age);
        fresh.then(|| inner.map.get(id).cloned()).flatten()
    }

    /// The epoch to pass to [`insert`](Self::insert) for a load starting now.
    pub fn epoch(&self) -> u64 {
        self.read().epoch
    }

    /// Caches a tenant loaded since `epoch` was read (unless something was invalidated since, or
    /// the cache is full or off); returns it with its JSON either way.
    pub fn insert(&self, epoch: u64, tenant: Tenant) -> Arc<CachedTenant> {
        let cached = Arc::new(CachedTenant::new(tenant, self.serialize));
        if self.enabled() {
            let mut inner = self.write();
            if inner.epoch == epoch && inner.synced.is_some() {
                if inner.map.len() >= self.capacity {
                    // A cheap, safe bound: start over rather than track recency.
                    inner.map.clear();
                }
                inner.map.insert(cached.tenant.id, Arc::clone(&cached));
            }
        }
        cached
    }

    /// Drops a tenant changed or deleted by this process.
    pub fn invalidate(&self, id: &TenantId) {
        if self.enabled() {
            let mut inner = self.write();
            inner.epoch += 1;
            inner.map.remove(id);
        }
    }

    /// Records the store's current revision: when it moved since the last one, everything is
    /// dropped (another process changed some tenant).
    pub fn observe_revision(&self, revision: i64) {
        let mut inner = self.write();
        if inner.revision != Some(revision) {
            inner.epoch += 1;
            inner.map.clear();
            inner.revision = Some(revision);
        }
        inner.synced = Some(Instant::now());
    }

    /// How many tenants are cached.
    pub fn len(&self) -> usize {
        self.read().map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenant_core::NewTenant;

    fn json(t: &Tenant) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"id": t.id.to_string(), "name": t.name.as_str()}))
            .unwrap()
    }

    fn tenant(name: &str) -> Tenant {
        NewTenant::parse(name, None, None)
            .unwrap()
            .into_tenant(TenantId::random(), tenant_core::now())
    }

    #[test]
    fn serves_only_once_synced_and_drops_on_a_new_revision() {
        let cache = TenantCache::new(10, Duration::from_secs(60), json);
        let t = tenant("Acme");
        let id = t.id;
        let epoch = cache.epoch();
        let got = cache.insert(epoch, t);
        assert!(
            std::str::from_utf8(&got.json)
                .unwrap()
                .contains("\"name\":\"Acme\"")
        );
        assert!(cache.get(&id).is_none(), "not cached before the first sync");
        cache.observe_revision(7);
        cache.insert(cache.epoch(), got.tenant.clone());
        assert!(cache.get(&id).is_some());
        cache.observe_revision(7);
        assert!(cache.get(&id).is_some(), "the same revision keeps it");
        cache.observe_revision(8);
        assert!(
            cache.get(&id).is_none(),
            "another process changed something"
        );
    }

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_cached() {
        let cache = TenantCache::new(10, Duration::from_secs(60), json);
        cache.observe_revision(1);
        let t = tenant("Racer");
        let id = t.id;
        let before = cache.epoch();
        cache.invalidate(&id);
        cache.insert(before, t.clone());
        assert!(cache.get(&id).is_none());
        cache.insert(cache.epoch(), t);
        assert!(cache.get(&id).is_some());
        cache.invalidate(&id);
        assert!(cache.get(&id).is_none());
    }

    #[test]
    fn bounded_stale_syncs_and_off() {
        let cache = TenantCache::new(2, Duration::from_millis(1), json);
        cache.observe_revision(1);
        for name in ["A", "B", "C"] {
            cache.insert(cache.epoch(), tenant(name));
        }
        assert!(cache.len() <= 2);
        std::thread::sleep(Duration::from_millis(5));
        let t = tenant("D");
        let id = t.id;
        cache.insert(cache.epoch(), t);
        assert!(
            cache.get(&id).is_none(),
            "not trusted after three missed syncs"
        );

        let off = TenantCache::new(0, Duration::from_secs(1), json);
        off.observe_revision(1);
        let t = tenant("E");
        let id = t.id;
        off.insert(off.epoch(), t);
        assert!(off.get(&id).is_none() && off.is_empty());
    }
}
