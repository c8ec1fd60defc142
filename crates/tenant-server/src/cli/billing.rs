//! `moltbot-saas billing show` and `billing sweep`: a tenant's billing as
//! `GET /tenants/{id}/billing` shows it (readable with billing off too: what is stored), and the
//! suspension of tenants whose grace period ran out, as the server's periodic sweep does it
//! (audited, actor `cli`).

use clap::Subcommand;
use tenant_core::TenantId;
use tenant_service::billing::DEFAULT_GRACE;
use tenant_service::billing::{self, Billing, entitlements};

use super::console::{CliResult, cli_actor, print_json};
use crate::routes::billing::BillingResponse;
use crate::settings::Settings;
use crate::startup::open_database;

/// `billing` subcommands.
#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Print a tenant's plan, billing state, subscription, period end and grace.
    Show {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
    },
    /// Suspend now the tenants whose grace period ran out (the server does it every
    /// `SAAS_BILLING_SWEEP_SECS`); prints their ids.
    Sweep,
}

/// Runs a `billing` subcommand.
pub fn run(settings: &Settings, command: BillingCommand) -> CliResult {
    let mut cfg = settings.clone();
    cfg.db_pool_size = 1;
    let db = open_database(&cfg)?;
    let mut conn = db.get()?;
    let grace = settings
        .billing
        .config
        .as_ref()
        .map_or(DEFAULT_GRACE, |c| c.grace);
    let grace = chrono::Duration::from_std(grace)?;
    match command {
        BillingCommand::Show { tenant } => {
            let id: TenantId = tenant.parse()?;
            let view = billing::report(&mut conn, &id, grace)?;
            print_json(&BillingResponse::from(view))
        }
        BillingCommand::Sweep => {
            let Some(config) = &settings.billing.config else {
                return Err("billing is off: SAAS_STRIPE_SECRET_KEY is not set".into());
            };
            let b = Billing::from_config(config)?;
            let plans = settings.limits.plans();
            let suspended = entitlements::suspend_overdue(
                &mut conn,
                &cli_actor(),
                &plans,
                &b.rules,
                tenant_core::now(),
            )?;
            let ids: Vec<String> = suspended.iter().map(ToString::to_string).collect();
            print_json(&serde_json::json!({ "suspended": ids }))
        }
    }
}
