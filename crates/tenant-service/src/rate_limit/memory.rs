//! The per-process GCRA state: a TAT per key in 16 locked shards. Keys whose TAT has passed hold
//! no debt and are dropped when a shard grows, so memory follows the keys active in the last
//! few minutes.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::gcra::{self, Decision};
use super::{Check, LimitKey};

const SHARDS: usize = 16;
/// A shard this large is swept of keys without debt before growing further.
const SWEEP_AT: usize = 4096;

/// GCRA state in memory.
#[derive(Debug)]
pub struct MemoryLimiter {
    origin: Instant,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<LimitKey, u64>>>,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            hasher: RandomState::new(),
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
    pub fn check(&self, checks: &[Check]) -> Vec<(&'static str, Decision)> {
        let now = self.now_us();
        // Each key's shard is locked on its own: a request charged on one key and refused on
        // another may leave the first charged, which errs on the safe side. The keys are plain
        // values, hashed and copied, so nothing is allocated but the answer.
        let allowed = checks.iter().all(|c| {
            let tat = self.shard(&c.key).get(&c.key).copied();
            gcra::check(tat, now, c.quota).0
        });
        checks
            .iter()
            .map(|c| {
                let mut shard = self.shard(&c.key);
                let tat = if allowed {
                    if shard.len() >= SWEEP_AT {
                        shard.retain(|_, t| *t > now);
                    }
                    // Another request may have moved it meanwhile: from where it is now.
                    let slot = shard.entry(c.key).or_insert(0);
                    *slot = (*slot).max(now) + c.quota.interval_us();
                    *slot
                } else {
                    shard.get(&c.key).copied().unwrap_or(now)
                };
                (
                    c.policy,
                    Decision::from_debt(allowed, c.quota, tat.saturating_sub(now) as i64),
                )
            })
            .collect()
    }

    fn shard(&self, key: &LimitKey) -> MutexGuard<'_, HashMap<LimitKey, u64>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
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
        let both = [check(1, wide), check(2, narrow)];
        assert!(m.check(&both).iter().all(|(_, d)| d.allowed));
        assert!(m.check(&both).iter().all(|(_, d)| d.allowed));
        let third = m.check(&both);
        assert!(!third[1].1.allowed && !third[0].1.allowed);
        assert!(third[1].1.retry_after_secs > 0);
        // `a` was charged twice only: 98 of its burst remain after one more.
        let a = m.check(&both[..1]);
        assert_eq!(a[0].1.remaining, 97);
    }
}
