//! Plans and usage: `GET /plans`, `GET /tenants/{id}/usage`, and the operator's change of a
//! tenant's plan and limit overrides, `PATCH /tenants/{id}/limits`.

use actix_web::{HttpResponse, get, patch, web};
use serde::{Deserialize, Serialize};
use tenant_core::Plan;
use tenant_service::plans::{Limits, LimitsChange, TenantLimits};
use tenant_service::usage::UsageReport;
use tenant_store::limits::LimitOverrides;
use tenant_store::usage::UsageRow;
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson, nested_object, parse_tenant_id, whole_number};
use crate::state::AppState;

/// What a plan (or a tenant) may use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitsBody {
    /// Channels the tenant may have.
    pub max_channels: i64,
    /// Webhook endpoints the tenant may have.
    pub max_webhook_endpoints: i64,
    /// Messages (received and sent) per calendar month, UTC.
    pub messages_per_month: i64,
    /// API requests per minute with one API key.
    pub requests_per_minute_per_key: i64,
    /// API requests per minute with all of the tenant's credentials.
    pub requests_per_minute_per_tenant: i64,
    /// Requests accepted at once before the per-minute rate applies.
    pub request_burst: i64,
}

impl From<Limits> for LimitsBody {
    fn from(l: Limits) -> Self {
        Self {
            max_channels: l.max_channels,
            max_webhook_endpoints: l.max_webhook_endpoints,
            messages_per_month: l.messages_per_month,
            requests_per_minute_per_key: l.requests_per_minute_per_key,
            requests_per_minute_per_tenant: l.requests_per_minute_per_tenant,
            request_burst: l.request_burst,
        }
    }
}

/// Declares [`OverridesBody`] and its conversions from the list of its fields: each is an
/// optional whole number (`500.0` reads as 500), absent or `null` when not set, and left out of
/// answers then — the attributes that say so are written once, here.
macro_rules! overrides_body {
    ($($(#[doc = $doc:literal])* $field:ident,)*) => {
        /// A tenant's own overrides: each limit set replaces the plan's; absent or `null` keeps it.
        #[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct OverridesBody {
            $(
                $(#[doc = $doc])*
                #[serde(
                    default,
                    skip_serializing_if = "Option::is_none",
                    deserialize_with = "whole_number"
                )]
                pub $field: Option<i64>,
            )*
        }

        impl From<OverridesBody> for LimitOverrides {
            fn from(o: OverridesBody) -> Self {
                Self { $($field: o.$field,)* }
            }
        }

        impl From<&LimitOverrides> for OverridesBody {
            fn from(o: &LimitOverrides) -> Self {
                Self { $($field: o.$field,)* }
            }
        }
    };
}

overrides_body! {
    /// Channels the tenant may have.
    max_channels,
    /// Webhook endpoints the tenant may have.
    max_webhook_endpoints,
    /// Messages per calendar month.
    messages_per_month,
    /// API requests per minute with one API key.
    requests_per_minute_per_key,
    /// API requests per minute with all of the tenant's credentials.
    requests_per_minute_per_tenant,
    /// Requests accepted at once.
    request_burst,
}

/// A plan and its limits.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanResponse {
    /// `free`, `starter`, `pro` or `enterprise`.
    pub name: String,
    /// Its limits.
    pub limits: LimitsBody,
}

/// `GET /plans`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanListResponse {
    /// Every plan, smallest first.
    pub plans: Vec<PlanResponse>,
    /// The soft limit: a `usage.threshold` event is sent once a month's messages reach this
    /// percentage of the plan's.
    pub soft_limit_percent: u8,
}

/// A tenant's plan, overrides and the limits that result.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantLimitsResponse {
    /// Tenant id (UUID).
    pub tenant_id: String,
    /// Its plan.
    pub plan: String,
    /// Its own overrides (only those set).
    pub overrides: OverridesBody,
    /// The plan's limits with the overrides applied.
    pub limits: LimitsBody,
}

impl TenantLimitsResponse {
    /// The answer for `tenant_id`'s limits.
    pub fn new(tenant_id: String, l: &TenantLimits) -> Self {
        Self {
            tenant_id,
            plan: l.plan.as_str().to_owned(),
            overrides: OverridesBody::from(&l.overrides),
            limits: l.limits.into(),
        }
    }
}

/// One month's usage.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeriodUsage {
    /// `YYYY-MM` (UTC).
    pub period: String,
    /// Messages received and sent.
    pub messages: i64,
    /// API requests.
    pub api_requests: i64,
    /// Whether the soft-limit event was sent.
    pub threshold_notified: bool,
    /// Whether the messages were used up.
    pub exceeded: bool,
}

impl From<&UsageRow> for PeriodUsage {
    fn from(r: &UsageRow) -> Self {
        Self {
            period: r.period.clone(),
            messages: r.messages,
            api_requests: r.api_requests,
            threshold_notified: r.threshold_notified_at.is_some(),
            exceeded: r.exceeded_at.is_some(),
        }
    }
}

/// This month's usage against the limits.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentUsage {
    /// `YYYY-MM` (UTC).
    pub period: String,
    /// Messages this month.
    pub messages: i64,
    /// API requests this month (this replica's not yet stored ones included).
    pub api_requests: i64,
    /// Channels the tenant has.
    pub channels: i64,
    /// Webhook endpoints the tenant has.
    pub webhook_endpoints: i64,
    /// Messages at which the `usage.threshold` event is sent.
    pub soft_limit: i64,
    /// Whether this month's messages are used up: the tenant's channel accounts are out of the
    /// gateway config.
    pub quota_exceeded: bool,
}

/// `GET /tenants/{id}/usage`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageResponse {
    /// Tenant id (UUID).
    pub tenant_id: String,
    /// Its plan.
    pub plan: String,
    /// Its own overrides (only those set).
    pub overrides: OverridesBody,
    /// Its effective limits.
    pub limits: LimitsBody,
    /// This month.
    pub current: CurrentUsage,
    /// Every month with usage, newest first (up to 24).
    pub history: Vec<PeriodUsage>,
}

impl From<&UsageReport> for UsageResponse {
    fn from(r: &UsageReport) -> Self {
        Self {
            tenant_id: r.tenant_id.to_string(),
            plan: r.limits.plan.as_str().to_owned(),
            overrides: OverridesBody::from(&r.limits.overrides),
            limits: r.limits.limits.into(),
            current: CurrentUsage {
                period: r.period.clone(),
                messages: r.messages,
                api_requests: r.api_requests,
                channels: r.channels,
                webhook_endpoints: r.webhook_endpoints,
                soft_limit: r.soft_limit,
                quota_exceeded: r.quota_exceeded,
            },
            history: r.history.iter().map(PeriodUsage::from).collect(),
        }
    }
}

/// `PATCH /tenants/{id}/limits`: a new plan, new overrides (replacing the old ones), or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeLimitsRequest {
    /// `free`, `starter`, `pro` or `enterprise`.
    pub plan: Option<String>,
    /// The tenant's overrides; `{}` removes them all.
    #[serde(default, deserialize_with = "nested_object")]
    pub overrides: Option<OverridesBody>,
}

/// Every plan with its limits.
#[utoipa::path(tag = "plans", security(("bearer" = [])), responses(
    (status = 200, description = "The plans", body = PlanListResponse),
    (status = 401, description = "No valid token", body = ErrorBody),
))]
#[get("/plans")]
pub async fn list_plans(state: web::Data<AppState>) -> HttpResponse {
    let plans = state
        .control
        .plans()
        .into_iter()
        .map(|(plan, limits): (Plan, Limits)| PlanResponse {
            name: plan.as_str().to_owned(),
            limits: limits.into(),
        })
        .collect();
    HttpResponse::Ok().json(PlanListResponse {
        plans,
        soft_limit_percent: state.control.soft_limit_percent(),
    })
}

/// A tenant's plan, limits and usage: this month and the months before.
#[utoipa::path(tag = "plans", params(("id" = String, Path, description = "Tenant id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "The tenant's usage", body = UsageResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
))]
#[get("/tenants/{id}/usage")]
pub async fn get_usage(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let report = state.control.tenant_usage(tenant_id).await?;
    Ok(HttpResponse::Ok().json(UsageResponse::from(&report)))
}

/// Changes a tenant's plan and limit overrides (operators only; audited as
/// `tenant.limits_changed`). A used-up quota of this month is judged again under the new limits.
#[utoipa::path(tag = "plans", params(("id" = String, Path, description = "Tenant id (UUID)")), request_body = ChangeLimitsRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The tenant's new limits", body = TenantLimitsResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 422, description = "Unknown plan, or a limit out of range (each field named)", body = ErrorBody),
))]
#[patch("/tenants/{id}/limits")]
pub async fn change_limits(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    ApiJson(body): ApiJson<ChangeLimitsRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let change = LimitsChange {
        plan: body.plan,
        overrides: body.overrides.map(LimitOverrides::from),
    };
    let limits = state
        .control
        .change_limits(actor.0, tenant_id, change)
        .await?;
    Ok(HttpResponse::Ok().json(TenantLimitsResponse::new(tenant_id.to_string(), &limits)))
}
