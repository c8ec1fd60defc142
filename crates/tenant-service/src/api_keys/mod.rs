//! Tenant API key authentication: a keyed hash and a short-lived in-process cache.
//!
//! A key is stored only as HMAC-SHA256 under a server secret (`SAAS_API_KEY_SECRET`): a stolen
//! database alone cannot check guesses, and keys are 256-bit random values, so a slow password hash
//! would buy nothing and cost every request. Authentication hashes the presented key and looks the
//! hash up through a unique index — O(1) — or, within `SAAS_API_KEY_CACHE_TTL_SECS`, in a small
//! map keyed by the hash, so a busy key costs one HMAC and one map lookup per request.
//!
//! Revocation latency: revoking or rotating a key invalidates it at once on the replica that did
//! it; other replicas may accept it until their cached entry is older than the TTL (default 30 s).
//! Expiry is checked on every request against the cached expiry, so it is exact everywhere.
//! `last_used_at` is written only on a cache miss, and at most once a minute per key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tenant_core::{Role, Secret, TenantId};
use tenant_store::{Database, api_keys};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::deployment::Deployment;
use crate::error::{ServiceError, ServiceResult};
use crate::principal::{ActorRef, Principal};
use crate::tokens::API_KEY_PREFIX;

pub mod batch;
pub mod issue;

/// How long at least between two `last_used_at` writes of one key, in seconds.
pub const LAST_USED_INTERVAL_SECS: i64 = 60;
/// The most keys the cache holds; past it, it is emptied (a cheap, safe bound).
const CACHE_CAPACITY: usize = 10_000;
/// How many leading characters of an API key are kept in clear, to recognise it in listings.
pub const VISIBLE_PREFIX_LEN: usize = API_KEY_PREFIX.len() + 4;

/// Computes the stored hash of an API key: HMAC-SHA256 under the server secret.
#[derive(Clone)]
pub struct ApiKeyHasher {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for ApiKeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyHasher(..)")
    }
}

impl ApiKeyHasher {
    /// A hasher keyed with `secret` (at least 32 bytes is expected; any length works).
    pub fn new(secret: &[u8]) -> Self {
        match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(mac) => Self { mac },
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        }
    }

    /// The keyed hash of `key`.
    pub fn hash(&self, key: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The keyed hash of `key` as stored (lowercase hex).
    pub fn hash_hex(&self, key: &str) -> String {
        hex::encode(self.hash(key))
    }
}

/// The public prefix of a key kept in clear (`msk_live_` and four characters).
pub fn visible_prefix(key: &Secret) -> String {
    key.expose().chars().take(VISIBLE_PREFIX_LEN).collect()
}

/// What an authenticated key grants, as cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedKey {
    /// The key's id.
    pub id: Uuid,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its role.
    pub role: Role,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

impl AuthenticatedKey {
    /// The principal the key acts as.
    pub fn principal(&self) -> Principal {
        Principal::Tenant {
            tenant_id: self.tenant_id,
            role: self.role,
            actor: ActorRef::ApiKey(self.id),
        }
    }

    fn usable_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }
}

/// Recently authenticated keys, by keyed hash, each trusted for a TTL.
#[derive(Debug)]
pub struct ApiKeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (AuthenticatedKey, Instant)>>,
}

impl ApiKeyCache {
    /// An empty cache whose entries live `ttl` (zero disables caching).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached key with this hash, if fresh.
    pub fn get(&self, hash: &[u8; 32]) -> Option<AuthenticatedKey> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (key, at) = entries.get(hash)?;
        (at.elapsed() < self.ttl).then(|| key.clone())
    }

    /// Remembers an authenticated key.
    pub fn insert(&self, hash: [u8; 32], key: AuthenticatedKey) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_CAPACITY {
                let ttl = self.ttl;
                entries.retain(|_, (_, at)| at.elapsed() < ttl);
                if entries.len() >= CACHE_CAPACITY {
                    entries.clear();
                }
            }
            entries.insert(hash, (key, Instant::now()));
        }
    }

    /// Forgets a key (revoked or rotated here).
    pub fn invalidate_key(&self, id: &Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (k, _)| k.id != *id);
        }
    }

    /// Forgets every key of a tenant (deleted here).
    pub fn invalidate_tenant(&self, tenant_id: &TenantId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (k, _)| k.tenant_id != *tenant_id);
        }
    }
}

/// Key hashing and the cache, shared by all workers.
#[derive(Debug)]
pub struct ApiKeyAuth {
    /// The keyed hash.
    pub hasher: ApiKeyHasher,
    /// Recently authenticated keys.
    pub cache: ApiKeyCache,
}

/// The file in the data directory holding the generated development API key secret.
pub const DEV_SECRET_FILE: &str = "api-key-hmac.key";

/// The secret API keys are hashed with: the configured one (`SAAS_API_KEY_SECRET`) or, in
/// development, a key file in the data directory; the bool says whether it was just generated.
/// Production without a configured secret is refused.
pub fn load_secret(
    configured: Option<&Secret>,
    deployment: &Deployment,
) -> Result<(Zeroizing<Vec<u8>>, bool), String> {
    if let Some(secret) = configured {
        return Ok((Zeroizing::new(secret.expose().as_bytes().to_vec()), false));
    }
    if deployment.is_production() {
        return Err("SAAS_API_KEY_SECRET is required when SAAS_ENV=production".into());
    }
    let path = deployment.data_dir.join(DEV_SECRET_FILE);
    let file = crate::dev_secrets::load_or_generate(&path, 32)
        .map_err(|e| format!("cannot load or generate {}: {e}", path.display()))?;
    Ok((file.key, file.generated))
}

impl ApiKeyAuth {
    /// Authenticates an API key: the cache, else the database (recording the use). `Ok(None)`
    /// for an unknown, revoked or expired key.
    pub async fn authenticate(&self, db: &Database, key: &str) -> ServiceResult<Option<Principal>> {
        let hash = self.hasher.hash(key);
        let now = tenant_core::now();
        if let Some(found) = self.cache.get(&hash) {
            return Ok(found.usable_at(now).then(|| found.principal()));
        }
        let hex_hash = hex::encode(hash);
        let row = crate::db::run(db, move |c| {
            let row = api_keys::find_by_hash(c, &hex_hash)?;
            if let Some(r) = row.as_ref().filter(|r| r.is_usable(now)) {
                api_keys::touch(c, &r.id, now, LAST_USED_INTERVAL_SECS)?;
            }
            Ok::<_, ServiceError>(row)
        })
        .await?;
        let Some(row) = row.filter(|r| r.is_usable(now)) else {
            return Ok(None);
        };
        let (Ok(id), Ok(tenant_id)) = (Uuid::try_parse(&row.id), row.tenant_id.parse::<TenantId>())
        else {
            return Err(ServiceError::Internal("malformed api key row".into()));
        };
        let found = AuthenticatedKey {
            id,
            tenant_id,
            role: row.role(),
            expires_at: row.expires_at.map(|e| e.and_utc()),
        };
        self.cache.insert(hash, found.clone());
        Ok(Some(found.principal()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_and_stable() {
        let a = ApiKeyHasher::new(&[1u8; 32]);
        let b = ApiKeyHasher::new(&[2u8; 32]);
        assert_eq!(a.hash("msk_live_x"), a.hash("msk_live_x"));
        assert_ne!(a.hash("msk_live_x"), b.hash("msk_live_x"));
        assert_ne!(a.hash("msk_live_x"), a.hash("msk_live_y"));
        assert_eq!(a.hash_hex("k").len(), 64);
        assert_eq!(format!("{a:?}"), "ApiKeyHasher(..)");
    }

    #[test]
    fn cache_expires_and_invalidates() {
        let key = AuthenticatedKey {
            id: Uuid::new_v4(),
            tenant_id: TenantId::random(),
            role: Role::Admin,
            expires_at: None,
        };
        let cache = ApiKeyCache::new(Duration::from_secs(60));
        cache.insert([7; 32], key.clone());
        assert_eq!(cache.get(&[7; 32]), Some(key.clone()));
        cache.invalidate_key(&key.id);
        assert_eq!(cache.get(&[7; 32]), None);
        cache.insert([7; 32], key.clone());
        cache.invalidate_tenant(&key.tenant_id);
        assert_eq!(cache.get(&[7; 32]), None);
        let off = ApiKeyCache::new(Duration::ZERO);
        off.insert([7; 32], key);
        assert_eq!(off.get(&[7; 32]), None);
    }

    #[test]
    fn expired_cached_keys_do_not_authenticate() {
        let key = AuthenticatedKey {
            id: Uuid::new_v4(),
            tenant_id: TenantId::random(),
            role: Role::Member,
            expires_at: Some(tenant_core::now() - chrono::Duration::seconds(1)),
        };
        assert!(!key.usable_at(tenant_core::now()));
    }
}
