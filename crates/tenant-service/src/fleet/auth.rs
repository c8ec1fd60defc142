//! Gateway tokens: `msgw_` and 256 random bits, stored as a keyed hash (HMAC-SHA256 under the
//! API key secret, like API keys), shown once. Authentication looks the hash up through a unique
//! index, or within a short TTL in a small per-process cache; rotating a token drops the old one
//! from this process's cache at once (other replicas within the TTL, as for API keys).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tenant_core::{GatewayId, Secret};
use tenant_store::{Database, gateways};

use crate::api_keys::ApiKeyHasher;
use crate::error::{ServiceError, ServiceResult};
use crate::tokens::{GATEWAY_TOKEN_PREFIX, generate_token};

/// How many leading characters of a gateway token are kept in clear.
pub const VISIBLE_PREFIX_LEN: usize = GATEWAY_TOKEN_PREFIX.len() + 4;
const CACHE_CAPACITY: usize = 1_000;

/// A new gateway token, its stored hash and its visible prefix.
pub fn new_token(hasher: &ApiKeyHasher) -> (Secret, String, String) {
    let token = generate_token(GATEWAY_TOKEN_PREFIX);
    let hash = hasher.hash_hex(token.expose());
    let prefix = token.expose().chars().take(VISIBLE_PREFIX_LEN).collect();
    (token, hash, prefix)
}

/// Recently authenticated gateway tokens, by keyed hash.
#[derive(Debug)]
pub struct GatewayAuth {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (GatewayId, Instant)>>,
}

impl GatewayAuth {
    /// An empty cache whose entries live `ttl` (zero: no caching).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The fleet gateway presenting `token`, if any.
    pub async fn authenticate(
        &self,
        db: &Database,
        hasher: &ApiKeyHasher,
        token: &str,
    ) -> ServiceResult<Option<GatewayId>> {
        let hash = hasher.hash(token);
        if let Ok(entries) = self.entries.lock()
            && let Some((id, at)) = entries.get(&hash)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(*id));
        }
        let hex = hex::encode(hash);
        let found: Option<GatewayId> = crate::db::run(db, move |c| {
            gateways::find_by_token_hash(c, &hex).map_err(ServiceError::from)
        })
        .await?;
        if let Some(id) = found
            && !self.ttl.is_zero()
            && let Ok(mut entries) = self.entries.lock()
        {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(hash, (id, Instant::now()));
        }
        Ok(found)
    }

    /// Forgets every cached token of `gateway` (rotated or deleted).
    pub fn invalidate(&self, gateway: &GatewayId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (id, _)| id != gateway);
        }
    }
}

impl Default for GatewayAuth {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

/// `Forbidden` unless `principal` is a gateway; its id otherwise.
pub fn gateway_of(principal: &crate::principal::Principal) -> ServiceResult<GatewayId> {
    principal.gateway().ok_or(ServiceError::Forbidden)
}
