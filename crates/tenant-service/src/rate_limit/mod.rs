//! Rate limiting with the GCRA ([`gcra`]): per API key and per tenant (rates from the tenant's
//! plan and overrides), and per client address on the login flows (login, refresh, accepting an
//! invite). The state is in memory ([`memory`]) in one process, or shared by every replica
//! through Redis ([`shared`]) when a Redis URL is configured; while Redis is unreachable each
//! process falls back to its own state (fail open to per-process limits, never to refusals).
//! Operators and gateways are not limited.
//!
//! The counters (`rejected`, and the shared limiter's `errors`) are kept for the metrics.

pub mod gcra;
pub mod memory;
pub mod shared;

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use uuid::Uuid;

pub use gcra::{Decision, Quota};
pub use shared::RedisState;

use crate::principal::{ActorRef, Principal};

/// What a limit's state is kept for: an API key, a tenant, or a client address. A plain value
/// (no allocation on the request path); its text form, `k:<key id>`, `t:<tenant id>` or
/// `ip:<address>` (UUIDs in simple form), is only made for Redis ([`LimitKey::write_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// An API key, by id.
    ApiKey(Uuid),
    /// A tenant, by id.
    Tenant(Uuid),
    /// A client address (`None`: unknown).
    Address(Option<IpAddr>),
}

impl LimitKey {
    /// Appends the key's name (`k:…`, `t:…`, `ip:…`) to `out`.
    pub fn write_name(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Self::ApiKey(id) => {
                out.push_str("k:");
                out.push_str(id.simple().encode_lower(&mut Uuid::encode_buffer()));
            }
            Self::Tenant(id) => {
                out.push_str("t:");
                out.push_str(id.simple().encode_lower(&mut Uuid::encode_buffer()));
            }
            Self::Address(Some(ip)) => {
                let _ = write!(out, "ip:{ip}");
            }
            Self::Address(None) => out.push_str("ip:unknown"),
        }
    }

    /// The key's name (`k:…`, `t:…`, `ip:…`).
    pub fn name(&self) -> String {
        let mut out = String::with_capacity(36);
        self.write_name(&mut out);
        out
    }
}

/// One key to check: what it is called in the headers (`key`, `tenant`, `address`), the
/// state's key, and its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// The policy's name in the `RateLimit-Policy` header.
    pub policy: &'static str,
    /// The key of the state.
    pub key: LimitKey,
    /// Its quota.
    pub quota: Quota,
}

/// Requests refused by a rate limit (429), by the policy that refused (`key`, `tenant`,
/// `address`): the metric's name (described with the others in `monitoring`).
pub const RATE_LIMITED: &str = "moltbot_saas_rate_limited_requests_total";

/// Calls to Redis by the rate limiter that failed (the process limited on its own meanwhile):
/// the metric's name.
pub const RATE_LIMIT_REDIS_ERRORS: &str = "moltbot_saas_rate_limit_redis_errors_total";

/// The most keys a request is checked against (its API key and its tenant).
pub const MAX_CHECKS: usize = 2;

/// Up to [`MAX_CHECKS`] items kept inline (no allocation on the request path); derefs to the
/// slice of those pushed.
#[derive(Debug, Clone, Copy)]
pub struct Inline<T: Copy> {
    items: [Option<T>; MAX_CHECKS],
    len: usize,
}

impl<T: Copy> Default for Inline<T> {
    fn default() -> Self {
        Self {
            items: [None; MAX_CHECKS],
            len: 0,
        }
    }
}

impl<T: Copy> Inline<T> {
    /// Adds an item; one beyond [`MAX_CHECKS`] is a bug of the caller, and is dropped.
    pub fn push(&mut self, item: T) {
        debug_assert!(self.len < MAX_CHECKS, "more than MAX_CHECKS items");
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(item);
            self.len += 1;
        }
    }

    /// The items, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items[..self.len].iter().flatten()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: Copy> FromIterator<T> for Inline<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut out = Self::default();
        for item in iter {
            out.push(item);
        }
        out
    }
}

/// A request's checks, with the value of its `RateLimit-Policy` header (which depends only on
/// the quotas, so it is built once per tenant's limits and shared: a clone is a reference
/// count).
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// The keys and quotas.
    pub items: Inline<Check>,
    /// The `RateLimit-Policy` field value for these checks (see [`policy_field`]).
    pub policy: Bytes,
}

impl Deref for Checks {
    type Target = Inline<Check>;
    fn deref(&self) -> &Inline<Check> {
        &self.items
    }
}

/// The `RateLimit-Policy` field value (draft-ietf-httpapi-ratelimit-headers) of these policies
/// and quotas, in order: `"key";q=120;w=60, "tenant";q=600;w=60`.
pub fn policy_field(policies: &[(&str, Quota)]) -> Bytes {
    let mut out = String::with_capacity(32 * policies.len());
    for (k, (name, quota)) in policies.iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\";q=");
        out.push_str(&quota.per_minute.to_string());
        out.push_str(";w=60");
    }
    Bytes::from(out)
}

/// The per-minute quotas of a tenant's requests (from its plan and overrides), with the
/// `RateLimit-Policy` values of both shapes of check built once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestQuotas {
    /// Per API key.
    pub key: Quota,
    /// Per tenant.
    pub tenant: Quota,
    /// `RateLimit-Policy` of a request with an API key (`key` and `tenant`).
    pub key_policy: Bytes,
    /// `RateLimit-Policy` of a request without one (`tenant`).
    pub tenant_policy: Bytes,
}

impl RequestQuotas {
    /// The quotas of these limits: requests per minute per key and per tenant, and the burst
    /// (each at least 1).
    pub fn new(per_key: i64, per_tenant: i64, burst: i64) -> Self {
        let burst = clamp_u32(burst);
        let key = Quota {
            per_minute: clamp_u32(per_key),
            burst,
        };
        let tenant = Quota {
            per_minute: clamp_u32(per_tenant),
            burst,
        };
        Self {
            key,
            tenant,
            key_policy: policy_field(&[("key", key), ("tenant", tenant)]),
            tenant_policy: policy_field(&[("tenant", tenant)]),
        }
    }
}

/// The answer for a request: one decision per check, in order, and the request's
/// `RateLimit-Policy` value (empty when nothing was checked).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Per check, its policy and decision.
    pub decisions: Inline<(&'static str, Decision)>,
    /// The `RateLimit-Policy` field value of the checks.
    pub policy: Bytes,
}

impl Outcome {
    /// Whether the request may pass.
    pub fn allowed(&self) -> bool {
        self.decisions.iter().all(|(_, d)| d.allowed)
    }

    /// The policy that refused, with how long to wait (the longest of them).
    pub fn refused_by(&self) -> Option<(&'static str, u64)> {
        self.decisions
            .iter()
            .filter(|(_, d)| !d.allowed)
            .map(|(p, d)| (*p, d.retry_after_secs))
            .max_by_key(|(_, secs)| *secs)
    }
}

/// Where the state lives, as `/ready` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Rate limiting is off.
    Off,
    /// In this process's memory.
    Memory,
    /// In Redis, reachable or not.
    Redis(RedisState),
}

/// The rate limiter of a process.
#[derive(Debug)]
pub struct RateLimiter {
    enabled: bool,
    memory: memory::MemoryLimiter,
    shared: Option<Arc<shared::SharedLimiter>>,
    /// The client-address quota of the login flows.
    login_quota: Quota,
    /// `RateLimit-Policy` of the login flows.
    login_policy: Bytes,
    /// Requests refused (429).
    pub rejected: AtomicU64,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::in_memory(DEFAULT_LOGIN_QUOTA)
    }
}

/// Per client address on the login flows: 30 a minute, 20 at once.
pub const DEFAULT_LOGIN_QUOTA: Quota = Quota {
    per_minute: 30,
    burst: 20,
};

impl RateLimiter {
    /// No limits at all.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Limits in this process's memory.
    pub fn in_memory(login_quota: Quota) -> Self {
        Self {
            enabled: true,
            memory: memory::MemoryLimiter::default(),
            shared: None,
            login_quota,
            login_policy: policy_field(&[("address", login_quota)]),
            rejected: AtomicU64::new(0),
        }
    }

    /// Limits shared through Redis at `url`, keys under `prefix`.
    pub fn with_redis(login_quota: Quota, url: &str, prefix: &str) -> Result<Self, String> {
        Ok(Self {
            shared: Some(shared::SharedLimiter::start(url, prefix)?),
            ..Self::in_memory(login_quota)
        })
    }

    /// Whether requests are limited at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Where the state lives.
    pub fn store(&self) -> Store {
        match (&self.shared, self.enabled) {
            (_, false) => Store::Off,
            (Some(s), true) => Store::Redis(s.state()),
            (None, true) => Store::Memory,
        }
    }

    /// Calls to Redis that failed.
    pub fn redis_errors(&self) -> u64 {
        self.shared
            .as_ref()
            .map_or(0, |s| s.errors.load(Ordering::Relaxed))
    }

    /// Requests refused so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The checks of a tenant principal's request under `quotas`: its API key (if it used one)
    /// and its tenant. Operators and gateways have none.
    pub fn checks_for(principal: &Principal, quotas: &RequestQuotas) -> Checks {
        let Principal::Tenant {
            tenant_id, actor, ..
        } = principal
        else {
            return Checks::default();
        };
        let mut checks = Checks::default();
        if let ActorRef::ApiKey(key) = actor {
            checks.items.push(Check {
                policy: "key",
                key: LimitKey::ApiKey(*key),
                quota: quotas.key,
            });
            checks.policy = quotas.key_policy.clone();
        } else {
            checks.policy = quotas.tenant_policy.clone();
        }
        checks.items.push(Check {
            policy: "tenant",
            key: LimitKey::Tenant(*tenant_id.as_uuid()),
            quota: quotas.tenant,
        });
        checks
    }

    /// The check of a login-flow request from `address` (`None`: unknown).
    pub fn address_check(&self, address: Option<IpAddr>) -> Checks {
        let mut checks = Checks {
            policy: self.login_policy.clone(),
            ..Checks::default()
        };
        checks.items.push(Check {
            policy: "address",
            key: LimitKey::Address(address),
            quota: self.login_quota,
        });
        checks
    }

    /// Checks and charges a request's keys (all or none), in Redis when it is configured and
    /// reachable, else in memory.
    pub async fn check(&self, checks: &Checks) -> Outcome {
        if !self.enabled || checks.is_empty() {
            return Outcome::default();
        }
        let decisions = match &self.shared {
            Some(s) => match s.check(&checks.items).await {
                Some(d) => d,
                None => self.memory.check(&checks.items),
            },
            None => self.memory.check(&checks.items),
        };
        let outcome = Outcome {
            decisions,
            policy: checks.policy.clone(),
        };
        if let Some((policy, _)) = outcome.refused_by() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(RATE_LIMITED, "policy" => policy).increment(1);
        }
        outcome
    }
}

fn clamp_u32(v: i64) -> u32 {
    u32::try_from(v.max(1)).unwrap_or(u32::MAX)
}
