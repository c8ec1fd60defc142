//! Plans as data: each plan's limits (built-in defaults, overridable by the operator's plans
//! file), a tenant's own overrides on top (enterprise deals, stored in `tenant_limits`), the
//! bounds every limit must respect, and a short-lived per-process cache of each tenant's
//! effective limits for the request path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tenant_core::{Plan, TenantId, ValidationError, ValidationErrors};
use tenant_store::limits::LimitOverrides;
use tenant_store::{AnyConnection, limits, tenants};

use crate::error::ServiceResult;
use crate::rate_limit::RequestQuotas;

/// What a tenant may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Channels the tenant may have.
    pub max_channels: i64,
    /// Webhook endpoints the tenant may have.
    pub max_webhook_endpoints: i64,
    /// Messages (received and sent) per calendar month, UTC.
    pub messages_per_month: i64,
    /// API requests per minute with one API key.
    pub requests_per_minute_per_key: i64,
    /// API requests per minute with all of the tenant's credentials together.
    pub requests_per_minute_per_tenant: i64,
    /// Requests accepted at once before the per-minute rate applies (the GCRA burst).
    pub request_burst: i64,
}

/// The name, bounds and meaning of each limit, in the API's spelling.
pub const LIMIT_FIELDS: [(&str, i64, i64); 6] = [
    ("maxChannels", 0, 10_000),
    ("maxWebhookEndpoints", 0, 1_000),
    ("messagesPerMonth", 0, 1_000_000_000_000),
    ("requestsPerMinutePerKey", 1, 1_000_000),
    ("requestsPerMinutePerTenant", 1, 1_000_000),
    ("requestBurst", 1, 100_000),
];

impl Limits {
    /// Every limit, in [`LIMIT_FIELDS`] order.
    pub fn values(&self) -> [i64; 6] {
        [
            self.max_channels,
            self.max_webhook_endpoints,
            self.messages_per_month,
            self.requests_per_minute_per_key,
            self.requests_per_minute_per_tenant,
            self.request_burst,
        ]
    }

    /// Each limit with the overrides that are set applied.
    pub fn with(self, o: &LimitOverrides) -> Self {
        Self {
            max_channels: o.max_channels.unwrap_or(self.max_channels),
            max_webhook_endpoints: o
                .max_webhook_endpoints
                .unwrap_or(self.max_webhook_endpoints),
            messages_per_month: o.messages_per_month.unwrap_or(self.messages_per_month),
            requests_per_minute_per_key: o
                .requests_per_minute_per_key
                .unwrap_or(self.requests_per_minute_per_key),
            requests_per_minute_per_tenant: o
                .requests_per_minute_per_tenant
                .unwrap_or(self.requests_per_minute_per_tenant),
            request_burst: o.request_burst.unwrap_or(self.request_burst),
        }
    }
}

/// Checks every set value against [`LIMIT_FIELDS`] (negative or absurd values are refused),
/// naming each field at fault under `parent` (e.g. `overrides.maxChannels`).
pub fn check_overrides(o: &LimitOverrides, parent: &str) -> Result<(), ValidationErrors> {
    let values = [
        o.max_channels,
        o.max_webhook_endpoints,
        o.messages_per_month,
        o.requests_per_minute_per_key,
        o.requests_per_minute_per_tenant,
        o.request_burst,
    ];
    let mut errors = ValidationErrors::default();
    for ((name, min, max), value) in LIMIT_FIELDS.iter().zip(values) {
        if let Some(v) = value
            && !(*min..=*max).contains(&v)
        {
            let field = if parent.is_empty() {
                (*name).to_owned()
            } else {
                format!("{parent}.{name}")
            };
            errors.push(ValidationError::new(
                field,
                "out_of_range",
                format!("must be between {min} and {max}"),
            ));
        }
    }
    errors.into_result()
}

/// The built-in limits of a plan.
pub fn default_limits(plan: Plan) -> Limits {
    let (channels, endpoints, messages, per_key, per_tenant, burst) = match plan {
        Plan::Free => (3, 3, 1_000, 120, 240, 60),
        Plan::Starter => (10, 10, 20_000, 600, 1_200, 200),
        Plan::Pro => (50, 25, 250_000, 3_000, 6_000, 1_000),
        Plan::Enterprise => (500, 100, 5_000_000, 12_000, 30_000, 5_000),
    };
    Limits {
        max_channels: channels,
        max_webhook_endpoints: endpoints,
        messages_per_month: messages,
        requests_per_minute_per_key: per_key,
        requests_per_minute_per_tenant: per_tenant,
        request_burst: burst,
    }
}

/// Every plan's limits: the defaults, with the operator's plans file applied.
#[derive(Debug, Clone)]
pub struct PlanCatalog {
    plans: HashMap<Plan, Limits>,
}

impl Default for PlanCatalog {
    fn default() -> Self {
        Self {
            plans: Plan::ALL.iter().map(|&p| (p, default_limits(p))).collect(),
        }
    }
}

/// A plan's entry in the plans file: the limits it changes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlanFileEntry {
    max_channels: Option<i64>,
    max_webhook_endpoints: Option<i64>,
    messages_per_month: Option<i64>,
    requests_per_minute_per_key: Option<i64>,
    requests_per_minute_per_tenant: Option<i64>,
    request_burst: Option<i64>,
}

impl PlanCatalog {
    /// The defaults with a plans file applied: a JSON object keyed by plan name, each value an
    /// object of the limits it changes (`{"free": {"maxChannels": 5}}`). Unknown plans, unknown
    /// limits and out-of-range values are refused, naming them.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: HashMap<String, PlanFileEntry> =
            serde_json::from_str(text).map_err(|e| format!("not a plans file: {e}"))?;
        let mut catalog = Self::default();
        for (name, entry) in file {
            let plan: Plan = name
                .parse()
                .map_err(|e: ValidationError| format!("unknown plan {name:?}: {}", e.message))?;
            let o = LimitOverrides {
                max_channels: entry.max_channels,
                max_webhook_endpoints: entry.max_webhook_endpoints,
                messages_per_month: entry.messages_per_month,
                requests_per_minute_per_key: entry.requests_per_minute_per_key,
                requests_per_minute_per_tenant: entry.requests_per_minute_per_tenant,
                request_burst: entry.request_burst,
            };
            check_overrides(&o, &name).map_err(|e| e.to_string())?;
            let limits = catalog.limits(plan).with(&o);
            catalog.plans.insert(plan, limits);
        }
        Ok(catalog)
    }

    /// A plan's limits.
    pub fn limits(&self, plan: Plan) -> Limits {
        self.plans
            .get(&plan)
            .copied()
            .unwrap_or_else(|| default_limits(plan))
    }

    /// Every plan with its limits, in the plans' order.
    pub fn all(&self) -> Vec<(Plan, Limits)> {
        Plan::ALL.iter().map(|&p| (p, self.limits(p))).collect()
    }
}

/// A tenant's plan, its overrides and the limits that result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantLimits {
    /// Its plan.
    pub plan: Plan,
    /// Its own overrides.
    pub overrides: LimitOverrides,
    /// The plan's limits with the overrides applied.
    pub limits: Limits,
    /// The request rates of those limits, with their `RateLimit-Policy` values built once for
    /// the request path.
    pub quotas: RequestQuotas,
}

impl TenantLimits {
    /// A tenant on `plan` (whose limits are `plan_limits`) with its `overrides`.
    pub fn new(plan: Plan, plan_limits: Limits, overrides: LimitOverrides) -> Self {
        let limits = plan_limits.with(&overrides);
        Self {
            plan,
            overrides,
            limits,
            quotas: RequestQuotas::new(
                limits.requests_per_minute_per_key,
                limits.requests_per_minute_per_tenant,
                limits.request_burst,
            ),
        }
    }
}

/// A tenant's effective limits, read from the store (`NotFound("tenant")` for a missing one).
pub fn tenant_limits(
    conn: &mut AnyConnection,
    catalog: &PlanCatalog,
    tenant_id: &TenantId,
) -> ServiceResult<TenantLimits> {
    let tenant = tenants::find(conn, tenant_id)?;
    let overrides = limits::find(conn, tenant_id)?;
    Ok(TenantLimits::new(
        tenant.plan,
        catalog.limits(tenant.plan),
        overrides,
    ))
}

/// Each tenant's effective limits, kept for a short time per process: the request path (rate
/// limits) and the ingest path (quotas) read them without a query. A change made on this
/// process drops its entry; other replicas see it within the time to live.
#[derive(Debug)]
pub struct LimitsCache {
    ttl: Duration,
    /// foldhash rather than SipHash (every tenant's request looks its limits up here): not
    /// HashDoS-resistant, and needs not be, as the keys are tenant ids this server issued.
    entries: Mutex<HashMap<TenantId, (Arc<TenantLimits>, Instant), foldhash::fast::RandomState>>,
}

impl LimitsCache {
    /// Entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// The cached limits of a tenant, if fresh.
    pub fn get(&self, tenant_id: &TenantId) -> Option<Arc<TenantLimits>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(tenant_id)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(l, _)| Arc::clone(l))
    }

    /// Remembers a tenant's limits.
    pub fn put(&self, tenant_id: TenantId, limits: Arc<TenantLimits>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= 100_000 {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        entries.insert(tenant_id, (limits, Instant::now()));
    }

    /// Forgets a tenant's limits (they changed).
    pub fn forget(&self, tenant_id: &TenantId) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(tenant_id);
    }
}

/// The plans, the per-process cache of tenants' limits and the quota rules, shared by the request
/// path, the ingest writers and the use cases.
#[derive(Debug)]
pub struct Plans {
    /// Every plan's limits.
    pub catalog: PlanCatalog,
    /// Tenants' effective limits, briefly cached.
    pub cache: LimitsCache,
    /// The soft limit, in percent of the monthly messages (`usage.threshold`).
    pub soft_limit_percent: u8,
}

impl Default for Plans {
    fn default() -> Self {
        Self::new(PlanCatalog::default(), Duration::from_secs(5), 80)
    }
}

impl Plans {
    /// Plans from `catalog`, limits cached `ttl`, the soft limit at `soft_limit_percent`.
    pub fn new(catalog: PlanCatalog, ttl: Duration, soft_limit_percent: u8) -> Self {
        Self {
            catalog,
            cache: LimitsCache::new(ttl),
            soft_limit_percent,
        }
    }

    /// A tenant's effective limits: cached, or read (and cached).
    pub fn limits_of(
        &self,
        conn: &mut AnyConnection,
        tenant_id: &TenantId,
    ) -> ServiceResult<Arc<TenantLimits>> {
        if let Some(l) = self.cache.get(tenant_id) {
            return Ok(l);
        }
        let l = Arc::new(tenant_limits(conn, &self.catalog, tenant_id)?);
        self.cache.put(*tenant_id, Arc::clone(&l));
        Ok(l)
    }
}

impl Plans {
    /// Reads into the cache the limits of those of `tenant_ids` it does not hold, in two
    /// statements for all of them (a batch of writes checks many tenants' limits at once). A
    /// tenant that does not exist is left out; [`Plans::limits_of`] then answers for it.
    pub fn warm(&self, conn: &mut AnyConnection, tenant_ids: &[TenantId]) -> ServiceResult<()> {
        let missing: Vec<TenantId> = tenant_ids
            .iter()
            .filter(|id| self.cache.get(id).is_none())
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        for (id, plan, overrides) in limits::plans_and_overrides_of(conn, &missing)? {
            let (Ok(id), Ok(plan)) = (id.parse::<TenantId>(), plan.parse::<Plan>()) else {
                continue;
            };
            let limits = TenantLimits::new(plan, self.catalog.limits(plan), overrides);
            self.cache.put(id, Arc::new(limits));
        }
        Ok(())
    }
}

/// A change of a tenant's plan and overrides, as asked (operator only).
#[derive(Debug, Clone, Default)]
pub struct LimitsChange {
    /// The new plan, if it changes (`plan`).
    pub plan: Option<String>,
    /// The new overrides, replacing the old ones, if they change (`overrides`).
    pub overrides: Option<LimitOverrides>,
}

/// A checked [`LimitsChange`].
#[derive(Debug, Clone)]
pub struct ValidLimitsChange {
    /// The new plan.
    pub plan: Option<Plan>,
    /// The new overrides.
    pub overrides: Option<LimitOverrides>,
}

impl LimitsChange {
    /// Checks every field: a known plan, overrides within bounds; an empty change is refused.
    pub fn check(self) -> ServiceResult<ValidLimitsChange> {
        let mut errors = ValidationErrors::default();
        let plan = self.plan.as_deref().map(str::parse::<Plan>);
        let plan = match plan {
            Some(p) => errors.check(p),
            None => None,
        };
        if let Some(o) = &self.overrides
            && let Err(e) = check_overrides(o, "overrides")
        {
            errors.0.extend(e.0);
        }
        if self.plan.is_none() && self.overrides.is_none() {
            errors.push(ValidationError::new(
                "plan",
                "required",
                "give a plan, overrides, or both",
            ));
        }
        errors.into_result()?;
        Ok(ValidLimitsChange {
            plan,
            overrides: self.overrides,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_grow_with_the_plan_and_respect_the_bounds() {
        let catalog = PlanCatalog::default();
        let all = catalog.all();
        for pair in all.windows(2) {
            for (a, b) in pair[0].1.values().iter().zip(pair[1].1.values()) {
                assert!(a <= &b, "{pair:?}");
            }
        }
        for (_, limits) in all {
            for ((name, min, max), v) in LIMIT_FIELDS.iter().zip(limits.values()) {
                assert!((*min..=*max).contains(&v), "{name}");
            }
        }
    }

    #[test]
    fn the_plans_file_changes_what_it_names_and_refuses_nonsense() {
        let c = PlanCatalog::from_json(r#"{"free": {"maxChannels": 7}}"#).unwrap();
        assert_eq!(c.limits(Plan::Free).max_channels, 7);
        assert_eq!(
            c.limits(Plan::Free).messages_per_month,
            default_limits(Plan::Free).messages_per_month
        );
        assert!(
            PlanCatalog::from_json(r#"{"gold": {}}"#)
                .unwrap_err()
                .contains("gold")
        );
        assert!(
            PlanCatalog::from_json(r#"{"free": {"maxChannels": -1}}"#)
                .unwrap_err()
                .contains("free.maxChannels")
        );
        assert!(PlanCatalog::from_json(r#"{"free": {"seats": 3}}"#).is_err());
    }

    #[test]
    fn a_change_names_each_field_at_fault() {
        let e = LimitsChange {
            plan: Some("gold".into()),
            overrides: Some(LimitOverrides {
                request_burst: Some(0),
                messages_per_month: Some(-5),
                ..LimitOverrides::default()
            }),
        }
        .check()
        .unwrap_err();
        let crate::ServiceError::Validation(e) = e else {
            panic!("{e:?}")
        };
        let fields: Vec<&str> = e.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "plan",
                "overrides.messagesPerMonth",
                "overrides.requestBurst"
            ]
        );
        assert!(LimitsChange::default().check().is_err());
    }
}
