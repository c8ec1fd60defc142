//! `moltbot-saas limits plans`, `limits show` and `limits set`: the plans, a tenant's usage, and
//! the operator's change of a tenant's plan and overrides, through the same use cases as
//! `GET /plans`, `GET /tenants/{id}/usage` and `PATCH /tenants/{id}/limits` (audited, actor
//! `cli`), printing the same JSON.

use clap::Subcommand;
use tenant_core::TenantId;
use tenant_service::plans::LimitsChange;
use tenant_service::usage;
use tenant_store::limits;

use super::console::{CliResult, cli_actor, print_json};
use crate::routes::limits::{
    LimitsBody, PlanListResponse, PlanResponse, TenantLimitsResponse, UsageResponse,
};
use crate::settings::Settings;
use crate::startup::open_database;

/// `limits` subcommands.
#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// Print every plan with its limits (the built-in ones with `SAAS_PLANS_FILE` applied).
    Plans,
    /// Print a tenant's plan, limits and usage.
    Show {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
    },
    /// Change a tenant's plan and limit overrides. Each override given replaces the tenant's
    /// value (`-1`: back to the plan's); the others are kept.
    Set {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// New plan: free, starter, pro or enterprise.
        #[arg(long)]
        plan: Option<String>,
        /// Channels the tenant may have.
        #[arg(long, allow_negative_numbers = true)]
        max_channels: Option<i64>,
        /// Webhook endpoints the tenant may have.
        #[arg(long, allow_negative_numbers = true)]
        max_webhook_endpoints: Option<i64>,
        /// Messages per calendar month.
        #[arg(long, allow_negative_numbers = true)]
        messages_per_month: Option<i64>,
        /// API requests per minute with one API key.
        #[arg(long, allow_negative_numbers = true)]
        requests_per_minute_per_key: Option<i64>,
        /// API requests per minute with all of the tenant's credentials.
        #[arg(long, allow_negative_numbers = true)]
        requests_per_minute_per_tenant: Option<i64>,
        /// Requests accepted at once.
        #[arg(long, allow_negative_numbers = true)]
        request_burst: Option<i64>,
        /// Remove every override first.
        #[arg(long)]
        clear_overrides: bool,
    },
}

/// Runs a `limits` subcommand.
pub fn run(settings: &Settings, command: LimitsCommand) -> CliResult {
    let plans = settings.limits.plans();
    if let LimitsCommand::Plans = command {
        return print_json(&PlanListResponse {
            plans: plans
                .catalog
                .all()
                .into_iter()
                .map(|(plan, l)| PlanResponse {
                    name: plan.as_str().to_owned(),
                    limits: LimitsBody::from(l),
                })
                .collect(),
            soft_limit_percent: plans.soft_limit_percent,
        });
    }
    let mut cfg = settings.clone();
    cfg.db_pool_size = 1;
    let db = open_database(&cfg)?;
    let mut conn = db.get()?;
    match command {
        LimitsCommand::Plans => Ok(()),
        LimitsCommand::Show { tenant } => {
            let id: TenantId = tenant.parse()?;
            let report = usage::report(&mut conn, &plans, &id, 0, tenant_core::now())?;
            print_json(&UsageResponse::from(&report))
        }
        LimitsCommand::Set {
            tenant,
            plan,
            max_channels,
            max_webhook_endpoints,
            messages_per_month,
            requests_per_minute_per_key,
            requests_per_minute_per_tenant,
            request_burst,
            clear_overrides,
        } => {
            let id: TenantId = tenant.parse()?;
            let given = [
                max_channels,
                max_webhook_endpoints,
                messages_per_month,
                requests_per_minute_per_key,
                requests_per_minute_per_tenant,
                request_burst,
            ];
            let overrides = if clear_overrides || given.iter().any(Option::is_some) {
                let mut o = if clear_overrides {
                    limits::LimitOverrides::default()
                } else {
                    limits::find(&mut conn, &id)?
                };
                let fields = [
                    &mut o.max_channels,
                    &mut o.max_webhook_endpoints,
                    &mut o.messages_per_month,
                    &mut o.requests_per_minute_per_key,
                    &mut o.requests_per_minute_per_tenant,
                    &mut o.request_burst,
                ];
                for (field, value) in fields.into_iter().zip(given) {
                    match value {
                        Some(-1) => *field = None,
                        Some(v) => *field = Some(v),
                        None => {}
                    }
                }
                Some(o)
            } else {
                None
            };
            let change = LimitsChange { plan, overrides }.check()?;
            let changed = usage::change_limits(&mut conn, &cli_actor(), &plans, &id, change)?;
            print_json(&TenantLimitsResponse::new(id.to_string(), &changed))
        }
    }
}
