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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

pub use gcra::{Decision, Quota};
pub use shared::RedisState;

use crate::plans::Limits;
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

/// The answer for a request: one decision per check, in order.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Per check, its policy and decision.
    pub decisions: Vec<(&'static str, Decision)>,
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
    pub login_quota: Quota,
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

    /// The checks of a tenant principal's request under `limits`: its API key (if it used one)
    /// and its tenant. Operators and gateways have none.
    pub fn checks_for(principal: &Principal, limits: &Limits) -> Vec<Check> {
        let Principal::Tenant {
            tenant_id, actor, ..
        } = principal
        else {
            return Vec::new();
        };
        let burst = clamp_u32(limits.request_burst);
        let mut checks = Vec::with_capacity(2);
        if let ActorRef::ApiKey(key) = actor {
            checks.push(Check {
                policy: "key",
                key: LimitKey::ApiKey(*key),
                quota: Quota {
                    per_minute: clamp_u32(limits.requests_per_minute_per_key),
                    burst,
                },
            });
        }
        checks.push(Check {
            policy: "tenant",
            key: LimitKey::Tenant(*tenant_id.as_uuid()),
            quota: Quota {
                per_minute: clamp_u32(limits.requests_per_minute_per_tenant),
                burst,
            },
        });
        checks
    }

    /// The check of a login-flow request from `address` (`None`: unknown).
    pub fn address_check(&self, address: Option<IpAddr>) -> Check {
        Check {
            policy: "address",
            key: LimitKey::Address(address),
            quota: self.login_quota,
        }
    }

    /// Checks and charges a request's keys (all or none), in Redis when it is configured and
    /// reachable, else in memory.
    pub async fn check(&self, checks: &[Check]) -> Outcome {
        if !self.enabled || checks.is_empty() {
            return Outcome {
                decisions: Vec::new(),
            };
        }
        let decisions = match &self.shared {
            Some(s) => match s.check(checks).await {
                Some(d) => d,
                None => self.memory.check(checks),
            },
            None => self.memory.check(checks),
        };
        let outcome = Outcome { decisions };
        if let Some((policy, _)) = outcome.refused_by() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(crate::monitoring::RATE_LIMITED, "policy" => policy).increment(1);
        }
        outcome
    }
}

fn clamp_u32(v: i64) -> u32 {
    u32::try_from(v.max(1)).unwrap_or(u32::MAX)
}
