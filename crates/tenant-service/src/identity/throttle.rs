//! Brute-force protection: failed logins are counted per account and per client address in the
//! database (so every replica sees them); past a number of free failures each further failure
//! locks the key for a doubling time. Unknown accounts are counted exactly like known ones, so a
//! lock reveals nothing about whether an email exists.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use tenant_store::login_throttle::{self, ThrottleRow};
use tenant_store::{AnyConnection, StoreResult};

/// How a kind of key is throttled.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures allowed before the first lock.
    pub free_failures: i32,
    /// The first lock, in seconds; each further failure doubles it.
    pub base_lock_secs: i64,
    /// The longest lock, in seconds.
    pub max_lock_secs: i64,
}

/// Per account: 5 free failures, then 30 s, 60 s, … up to 15 minutes.
pub const ACCOUNT: Policy = Policy {
    free_failures: 5,
    base_lock_secs: 30,
    max_lock_secs: 15 * 60,
};

/// Per client address: 20 free failures (offices share addresses), then the same doubling.
pub const ADDRESS: Policy = Policy {
    free_failures: 20,
    base_lock_secs: 30,
    max_lock_secs: 15 * 60,
};

/// Failures older than this are forgotten: the count restarts.
const WINDOW_SECS: i64 = 3600;

impl Policy {
    /// How long the `failures`-th failure locks the key, if at all.
    pub fn lock_secs(&self, failures: i32) -> Option<i64> {
        let over = failures.checked_sub(self.free_failures)?;
        if over < 0 {
            return None;
        }
        let doubled = self.base_lock_secs.saturating_mul(1_i64 << over.min(20));
        Some(doubled.min(self.max_lock_secs))
    }
}

/// The throttle key of an account: a hash of its scope (tenant id, or `operator`) and email, so
/// the table holds no email.
pub fn account_key(scope: &str, email: &str) -> String {
    let digest = Sha256::digest(format!("{scope}\n{email}").as_bytes());
    format!("acct:{}", hex::encode(&digest[..16]))
}

/// The throttle key of a client address.
pub fn address_key(addr: &str) -> String {
    format!("addr:{addr}")
}

/// Seconds until every key is unlocked; `None` when none is locked now.
pub fn retry_after(
    conn: &mut AnyConnection,
    keys: &[&str],
    now: DateTime<Utc>,
) -> StoreResult<Option<u64>> {
    let mut longest: Option<u64> = None;
    for key in keys {
        if let Some(until) = login_throttle::get(conn, key)?.and_then(|r| r.locked_until) {
            let left = (until.and_utc() - now).num_milliseconds();
            if left > 0 {
                let secs = u64::try_from((left + 999) / 1000).unwrap_or(1);
                longest = Some(longest.map_or(secs, |l| l.max(secs)));
            }
        }
    }
    Ok(longest)
}

/// Counts one failure against `key`.
pub fn record_failure(
    conn: &mut AnyConnection,
    key: &str,
    policy: Policy,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    // Sweep counters nobody failed on for a window (indexed), so sprayed emails cannot pile up.
    login_throttle::delete_stale(conn, now - Duration::seconds(WINDOW_SECS))?;
    let previous = login_throttle::get(conn, key)?
        .filter(|r| (now - r.updated_at.and_utc()).num_seconds() < WINDOW_SECS)
        .map_or(0, |r| r.failures);
    let failures = previous.saturating_add(1);
    let row = ThrottleRow {
        throttle_key: key.to_owned(),
        failures,
        locked_until: policy
            .lock_secs(failures)
            .map(|s| (now + Duration::seconds(s)).naive_utc()),
        updated_at: now.naive_utc(),
    };
    login_throttle::put(conn, &row)
}

/// Forgets the failures of `key` (a successful login resets its account's counter).
pub fn reset(conn: &mut AnyConnection, key: &str) -> StoreResult<()> {
    login_throttle::clear(conn, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_and_cap() {
        assert_eq!(ACCOUNT.lock_secs(1), None);
        assert_eq!(ACCOUNT.lock_secs(4), None);
        assert_eq!(ACCOUNT.lock_secs(5), Some(30));
        assert_eq!(ACCOUNT.lock_secs(6), Some(60));
        assert_eq!(ACCOUNT.lock_secs(7), Some(120));
        assert_eq!(ACCOUNT.lock_secs(40), Some(900));
        assert_eq!(ACCOUNT.lock_secs(i32::MAX), Some(900));
        assert_eq!(ADDRESS.lock_secs(19), None);
        assert_eq!(ADDRESS.lock_secs(20), Some(30));
    }

    #[test]
    fn account_keys_hide_the_email() {
        let k = account_key("operator", "alice@example.com");
        assert!(k.starts_with("acct:"));
        assert!(!k.contains("alice"));
        assert_ne!(k, account_key("operator", "bob@example.com"));
        assert_ne!(k, account_key("tenant-x", "alice@example.com"));
    }
}
