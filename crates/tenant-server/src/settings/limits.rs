//! Settings of plans, usage and rate limits (`SAAS_PLANS_FILE`, `SAAS_RATE_LIMIT*`,
//! `SAAS_REDIS_*`, `SAAS_USAGE_*`, `SAAS_LIMITS_CACHE_TTL_MS`), read with the rest of
//! [`crate::settings`] and documented in its table and in `docs/limits.md`.

use std::path::PathBuf;
use std::time::Duration;

use tenant_core::Secret;
use tenant_service::plans::{PlanCatalog, Plans};
use tenant_service::rate_limit::{DEFAULT_LOGIN_QUOTA, Quota, RateLimiter};

use super::error::SettingsError;
use super::parse::{parse, parse_in};

/// Plans, usage metering and rate limiting.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Whether requests are rate limited.
    pub rate_limit: bool,
    /// Redis shared by the replicas (`redis://…`); `None`: limits per process. A secret: its
    /// URL may hold a password.
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key.
    pub redis_key_prefix: String,
    /// The plans as the operator changed them (a JSON file), read at start.
    pub plans: PlanCatalog,
    /// The plans file it was read from.
    pub plans_file: Option<PathBuf>,
    /// The soft limit, in percent of a month's messages.
    pub soft_limit_percent: u8,
    /// How often metered API requests are added to the store.
    pub usage_flush: Duration,
    /// How long a tenant's limits are trusted without reading them again.
    pub limits_cache_ttl: Duration,
    /// Per client address on the login flows.
    pub login_quota: Quota,
}

impl LimitSettings {
    /// The plans with their cache and quota rules.
    pub fn plans(&self) -> Plans {
        Plans::new(
            self.plans.clone(),
            self.limits_cache_ttl,
            self.soft_limit_percent,
        )
    }

    /// The rate limiter: off, in memory, or through Redis.
    pub fn limiter(&self) -> Result<RateLimiter, SettingsError> {
        if !self.rate_limit {
            return Ok(RateLimiter::off());
        }
        match &self.redis_url {
            None => Ok(RateLimiter::in_memory(self.login_quota)),
            Some(url) => {
                RateLimiter::with_redis(self.login_quota, url.expose(), &self.redis_key_prefix)
                    .map_err(|message| SettingsError {
                        var: "SAAS_REDIS_URL",
                        message,
                    })
            }
        }
    }
}

/// Reads the group.
pub(super) fn from_lookup(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<LimitSettings, SettingsError> {
    let plans_file = get("SAAS_PLANS_FILE").map(PathBuf::from);
    let plans = match &plans_file {
        None => PlanCatalog::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| SettingsError {
                var: "SAAS_PLANS_FILE",
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            PlanCatalog::from_json(&text).map_err(|message| SettingsError {
                var: "SAAS_PLANS_FILE",
                message,
            })?
        }
    };
    let redis_url = get("SAAS_REDIS_URL")
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    if let Some(u) = &redis_url
        && !(u.starts_with("redis://")
            || u.starts_with("redis+unix://")
            || u.starts_with("unix://"))
    {
        return Err(SettingsError {
            var: "SAAS_REDIS_URL",
            message: "must be a redis:// URL".into(),
        });
    }
    Ok(LimitSettings {
        rate_limit: parse(get, "SAAS_RATE_LIMIT", true)?,
        redis_url: redis_url.map(Secret::new),
        redis_key_prefix: get("SAAS_REDIS_KEY_PREFIX").unwrap_or_else(|| "moltbot:rl:".into()),
        plans,
        plans_file,
        soft_limit_percent: parse_in(get, "SAAS_USAGE_SOFT_LIMIT_PERCENT", 80, 1..=100)?,
        usage_flush: Duration::from_millis(parse_in(
            get,
            "SAAS_USAGE_FLUSH_MS",
            10_000,
            10..=3_600_000,
        )?),
        limits_cache_ttl: Duration::from_millis(parse_in(
            get,
            "SAAS_LIMITS_CACHE_TTL_MS",
            5_000,
            0..=3_600_000,
        )?),
        login_quota: Quota {
            per_minute: parse_in(
                get,
                "SAAS_RATE_LIMIT_LOGIN_PER_MINUTE",
                DEFAULT_LOGIN_QUOTA.per_minute,
                1..=1_000_000,
            )?,
            burst: parse_in(
                get,
                "SAAS_RATE_LIMIT_LOGIN_BURST",
                DEFAULT_LOGIN_QUOTA.burst,
                1..=100_000,
            )?,
        },
    })
}
