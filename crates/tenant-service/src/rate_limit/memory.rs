//! The per-process GCRA state: a TAT per key in 16 locked shards. Keys whose TAT has passed hold
//! no debt and are dropped when a shard grows, so memory follows the keys active in the last
//! few minutes.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::gcra::{self, Decision, Quota};

const SHARDS: usize = 16;
/// A shard this large is swept of keys without debt before growing further.
const SWEEP_AT: usize = 4096;

/// GCRA state in memory.
#[derive(Debug)]
pub struct MemoryLimiter {
    origin: Instant,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<String, u64>>>,
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
    pub fn check(&self, checks: &[(String, Quota)]) -> Vec<Decision> {
        let now = self.now_us();
        // Each key's shard is locked on its own: a request charged on one key and refused on
        // another may leave the first charged, which errs on the safe side.
        let mut tats = Vec::with_capacity(checks.len());
        let mut allowed = true;
        for (key, quota) in checks {
            let shard = self.shard(key);
            let tat = shard.get(key).copied();
            let (ok, tat) = gcra::check(tat, now, *quota);
            allowed &= ok;
            tats.push(tat);
        }
        checks
            .iter()
            .zip(tats)
            .map(|((key, quota), tat)| {
                let tat = if allowed {
                    let new = tat + quota.interval_us();
                    let mut shard = self.shard(key);
                    if shard.len() >= SWEEP_AT {
                        shard.retain(|_, t| *t > now);
                    }
                    // Another request may have moved it meanwhile: never move it back.
                    let slot = shard.entry(key.clone()).or_insert(0);
                    *slot = (*slot).max(now) + quota.interval_us();
                    (*slot).max(new)
                } else {
                    tat
                };
                Decision::from_debt(allowed, *quota, tat.saturating_sub(now) as i64)
            })
            .collect()
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let both = [("a".to_owned(), wide), ("b".to_owned(), narrow)];
        assert!(m.check(&both).iter().all(|d| d.allowed));
        assert!(m.check(&both).iter().all(|d| d.allowed));
        let third = m.check(&both);
        assert!(!third[1].allowed && !third[0].allowed);
        assert!(third[1].retry_after_secs > 0);
        // `a` was charged twice only: 98 of its burst remain after one more.
        let a = m.check(&both[..1]);
        assert_eq!(a[0].remaining, 97);
    }
}
