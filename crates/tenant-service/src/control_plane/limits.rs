//! The plans, usage and rate-limit use cases of [`ControlPlane`]: the plans, a tenant's usage,
//! the operator's change of a tenant's plan and overrides, a request's rate-limit check (which
//! also meters it), and the flush of the metered requests.

use std::sync::Arc;

use tenant_core::{Plan, TenantId};
use tenant_store::audit::AuditContext;

use super::ControlPlane;
use crate::error::ServiceResult;
use crate::plans::{Limits, LimitsChange, TenantLimits};
use crate::principal::Principal;
use crate::rate_limit::{Outcome, RateLimiter, Store};
use crate::usage::{self, UsageReport};

impl ControlPlane {
    /// Every plan with its limits.
    pub fn plans(&self) -> Vec<(Plan, Limits)> {
        self.limits.plans.catalog.all()
    }

    /// The soft limit, in percent of a month's messages.
    pub fn soft_limit_percent(&self) -> u8 {
        self.limits.plans.soft_limit_percent
    }

    /// A tenant's plan, limits and usage (this month and the months before).
    pub async fn tenant_usage(&self, tenant_id: TenantId) -> ServiceResult<UsageReport> {
        let plans = Arc::clone(&self.limits.plans);
        let unflushed = self.limits.meter.unflushed(&tenant_id);
        self.run(move |c| usage::report(c, &plans, &tenant_id, unflushed, tenant_core::now()))
            .await
    }

    /// Changes a tenant's plan and overrides (operator only: the route table says so), audited;
    /// the tenant's cached entries are dropped here at once.
    pub async fn change_limits(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        change: LimitsChange,
    ) -> ServiceResult<TenantLimits> {
        let change = change.check()?;
        let plans = Arc::clone(&self.limits.plans);
        let result = self
            .run(move |c| usage::change_limits(c, &ctx, &plans, &tenant_id, change))
            .await;
        self.tenant_cache.invalidate(&tenant_id);
        self.limits.plans.cache.forget(&tenant_id);
        result
    }

    /// Checks (and charges) a request of `principal` against its rate limits; a tenant's
    /// request that passes is metered. Operators and gateways pass unchecked.
    pub async fn rate_limit(&self, principal: &Principal) -> ServiceResult<Outcome> {
        let Principal::Tenant { tenant_id, .. } = principal else {
            return Ok(Outcome::default());
        };
        let tenant_id = *tenant_id;
        let limits = if self.limits.limiter.enabled() {
            let limits = match self.limits.plans.cache.get(&tenant_id) {
                Some(l) => l,
                None => {
                    let plans = Arc::clone(&self.limits.plans);
                    self.run(move |c| plans.limits_of(c, &tenant_id)).await?
                }
            };
            Some(limits)
        } else {
            None
        };
        let outcome = match limits {
            Some(l) => {
                let checks = RateLimiter::checks_for(principal, &l.quotas);
                self.limits.limiter.check(&checks).await
            }
            None => Outcome::default(),
        };
        if outcome.allowed() {
            self.limits.meter.count_request(tenant_id);
        }
        Ok(outcome)
    }

    /// Checks (and charges) a login-flow request from the client address `address` (`None`:
    /// unknown).
    pub async fn rate_limit_address(&self, address: Option<std::net::IpAddr>) -> Outcome {
        let checks = self.limits.limiter.address_check(address);
        self.limits.limiter.check(&checks).await
    }

    /// Where the rate-limit state lives, and whether Redis answers (for `/ready`).
    pub fn rate_limit_store(&self) -> Store {
        self.limits.limiter.store()
    }

    /// The rate limiter, with its counters.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.limits.limiter
    }

    /// Adds the API requests metered by this process to the store.
    pub async fn flush_usage(&self) -> ServiceResult<usize> {
        let meter = Arc::clone(&self.limits.meter);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || meter.flush(&db))
            .await
            .map_err(|e| crate::ServiceError::Internal(format!("blocking task failed: {e}")))?
    }
}
