//! The generic cell rate algorithm (GCRA): one number per key, the theoretical arrival time
//! (TAT) of the next request. A quota of `per_minute` requests has an emission interval
//! `T = 60 s / per_minute`; a burst of `b` requests is a tolerance `τ = (b - 1)·T`. A request at
//! `now` is accepted when `max(TAT, now) - now ≤ τ`, and then moves the TAT to
//! `max(TAT, now) + T`. The same arithmetic runs in memory ([`super::memory`]) and in Redis's
//! Lua script ([`super::shared`]); both answer with the "debt" `TAT - now` after the check,
//! from which [`Decision::from_debt`] derives what the headers say.

/// A rate: requests per minute, and how many may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Steady requests per minute (≥ 1).
    pub per_minute: u32,
    /// Requests accepted at once (≥ 1).
    pub burst: u32,
}

impl Quota {
    /// The emission interval, in microseconds.
    pub fn interval_us(&self) -> u64 {
        60_000_000 / u64::from(self.per_minute.max(1))
    }

    /// The tolerance, in microseconds.
    pub fn tolerance_us(&self) -> u64 {
        self.interval_us() * u64::from(self.burst.max(1) - 1)
    }
}

/// The answer for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may pass (as far as this key is concerned).
    pub allowed: bool,
    /// The quota checked.
    pub quota: Quota,
    /// Requests that may still come at once.
    pub remaining: u32,
    /// Seconds until the full burst is available again.
    pub reset_secs: u64,
    /// Seconds until a refused request would be accepted (0 when allowed).
    pub retry_after_secs: u64,
}

impl Decision {
    /// The decision for a key whose debt (`TAT - now`, µs, after the check) is `debt_us`.
    pub fn from_debt(allowed: bool, quota: Quota, debt_us: i64) -> Self {
        let t = quota.interval_us() as i64;
        let tau = quota.tolerance_us() as i64;
        let debt = debt_us.max(0);
        // Requests that still fit: each one adds `T` to the debt, which may reach `τ + T`.
        let remaining = ((tau + t - debt) / t).clamp(0, i64::from(quota.burst)) as u32;
        let retry_after = if allowed {
            0
        } else {
            div_ceil_secs(debt - tau)
        };
        Self {
            allowed,
            quota,
            remaining: if allowed { remaining } else { 0 },
            reset_secs: div_ceil_secs(debt),
            retry_after_secs: retry_after.max(u64::from(!allowed)),
        }
    }
}

fn div_ceil_secs(us: i64) -> u64 {
    u64::try_from(us.max(0)).unwrap_or(0).div_ceil(1_000_000)
}

/// Checks `tat` (µs; `None`: never seen) at `now` (µs): whether allowed, and the new TAT to store
/// if it is.
pub fn check(tat: Option<u64>, now: u64, quota: Quota) -> (bool, u64) {
    let tat = tat.unwrap_or(now).max(now);
    let allowed = tat - now <= quota.tolerance_us();
    (allowed, tat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(quota: Quota, times_ms: &[u64]) -> Vec<bool> {
        let mut tat = None;
        times_ms
            .iter()
            .map(|&ms| {
                let now = ms * 1000;
                let (ok, t) = check(tat, now, quota);
                if ok {
                    tat = Some(t + quota.interval_us());
                }
                ok
            })
            .collect()
    }

    #[test]
    fn a_burst_then_the_steady_rate() {
        let q = Quota {
            per_minute: 60,
            burst: 3,
        };
        // Three at once pass, the fourth waits a second.
        assert_eq!(run(q, &[0, 0, 0, 0]), [true, true, true, false]);
        assert_eq!(
            run(q, &[0, 0, 0, 1000, 1500, 2000]),
            [true, true, true, true, false, true]
        );
    }

    #[test]
    fn the_decision_counts_what_is_left() {
        let q = Quota {
            per_minute: 60,
            burst: 3,
        };
        let fresh = Decision::from_debt(true, q, 1_000_000);
        assert_eq!((fresh.remaining, fresh.reset_secs), (2, 1));
        let last = Decision::from_debt(true, q, 3_000_000);
        assert_eq!((last.remaining, last.reset_secs), (0, 3));
        let refused = Decision::from_debt(false, q, 2_500_000);
        assert_eq!((refused.remaining, refused.retry_after_secs), (0, 1));
    }
}
