//! The per-process GCRA state: a TAT per key in 16 locked shards. Keys whose TAT has passed hold
//! no debt and are dropped when a shard grows, so memory follows the keys active in the last
//! few minutes.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::gcra::{self, Decision};
use super::{Check, Inline, LimitKey};

const SHARDS: usize = 16;
/// A shard this large is swept of keys without debt before growing further.
const SWEEP_AT: usize = 4096;

/// A key with its hash, computed once per check: the shard is chosen from bits 32–35 of the
/// hash and the shard's map uses the hash as it is ([`PassThrough`]), so a key is hashed once
/// for both. Bits 32–35 are neither the low bits that pick a bucket nor the top 7 bits that
/// the map keeps as each entry's tag, so the keys of one shard still spread over its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hashed {
    hash: u64,
    key: LimitKey,
}

impl Hash for Hashed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The hasher of a shard's map: the key's hash, already computed ([`Hashed`]).
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `Hashed`); fold anything else in all the same.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<Hashed, u64, BuildHasherDefault<PassThrough>>;

/// GCRA state in memory.
#[derive(Debug)]
pub struct MemoryLimiter {
    origin: Instant,
    /// foldhash rather than SipHash: a few instructions a key instead of ~100. It is not
    /// HashDoS-resistant (its seed comes from address-space randomisation, different per
    /// process), and needs not be: flooding a shard with colliding keys takes keys of the
    /// attacker's choosing, and these are ids this server issued (API keys, tenants; a client
    /// only ever presents its own) or the client's own address, one per connection.
    hasher: foldhash::fast::RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl MemoryLimiter {
    fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Checks every key: the request passes only if each passes, and only then is each charged.
    /// Answers each check's policy with its decision, in order.
    pub fn check(&self, checks: &Inline<Check>) -> Inline<(&'static str, Decision)> {
        let now = self.now_us();
        let hashed: Inline<Hashed> = checks
            .iter()
            .map(|c| Hashed {
                hash: self.hasher.hash_one(c.key),
                key: c.key,
            })
            .collect();
        // Each key's shard is locked on its own: a request charged on one key and refused on
        // another may leave the first charged, which errs on the safe side. The keys are plain
        // values hashed once, and the answer is inline: nothing is allocated.
        let allowed = hashed.iter().zip(checks.iter()).all(|(h, c)| {
            let tat = self.shard(h).get(h).copied();
            gcra::check(tat, now, c.quota).0
        });
        hashed
            .iter()
            .zip(checks.iter())
            .map(|(h, c)| {
                let mut shard = self.shard(h);
                let tat = if allowed {
                    if shard.len() >= SWEEP_AT {
                        shard.retain(|_, t| *t > now);
                    }
                    // Another request may have moved it meanwhile: from where it is now.
                    let slot = shard.entry(*h).or_insert(0);
                    *slot = (*slot).max(now) + c.quota.interval_us();
                    *slot
                } else {
                    shard.get(h).copied().unwrap_or(now)
                };
                (
                    c.policy,
                    Decision::from_debt(allowed, c.quota, tat.saturating_sub(now) as i64),
                )
            })
            .collect()
    }

    fn shard(&self, key: &Hashed) -> MutexGuard<'_, Shard> {
        let i = ((key.hash >> 32) as usize) % SHARDS;
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::Quota;

    #[test]
    fn a_refusal_on_one_key_charges_none() {
        let m = MemoryLimiter::default();
        let wide = Quota {
            per_minute: 6,
            burst: 100,
        };
        let narrow = Quota {
            per_minute: 1,
            burst: 2,
        };
        let check = |id: u128, quota| Check {
            policy: "key",
            key: LimitKey::ApiKey(uuid::Uuid::from_u128(id)),
            quota,
        };
        let both: Inline<Check> = [check(1, wide), check(2, narrow)].into_iter().collect();
        assert!(m.check(&both).iter().all(|(_, d)| d.allowed));
        assert!(m.check(&both).iter().all(|(_, d)| d.allowed));
        let third: Vec<_> = m.check(&both).iter().copied().collect();
        assert_eq!(third.len(), 2);
        assert!(!third[1].1.allowed && !third[0].1.allowed);
        assert!(third[1].1.retry_after_secs > 0);
        // `a` was charged twice only: 98 of its burst remain after one more.
        let first: Inline<Check> = both.iter().copied().take(1).collect();
        let a: Vec<_> = m.check(&first).iter().copied().collect();
        assert_eq!(a[0].1.remaining, 97);
    }
}
