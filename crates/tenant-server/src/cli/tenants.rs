//! `moltbot-saas tenants create` and `tenants list`: straight on the database, through the same
//! use cases as `POST /tenants` (with the owner key and the audit entry) and `GET /tenants`,
//! printing the same JSON.

use clap::Subcommand;
use tenant_core::{NewTenant, PageRequest};
use tenant_service::tenants;
use tenant_store::tenants::TenantFilter;

use super::console::{CliResult, cli_actor, print_json};
use crate::routes::tenants::{CreatedTenantResponse, TenantListResponse, TenantResponse};
use crate::settings::Settings;
use crate::startup::{api_key_auth, open_database};

/// `tenants` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant; prints it as JSON with its API key (shown once).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Slug (derived from the name when absent).
        #[arg(long)]
        slug: Option<String>,
        /// Plan: free, starter, pro or enterprise.
        #[arg(long)]
        plan: Option<String>,
    },
    /// List tenants as JSON, a page at a time.
    List {
        /// Page size (1–500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Cursor from the previous page's `nextCursor`.
        #[arg(long)]
        cursor: Option<String>,
        /// Only this status.
        #[arg(long)]
        status: Option<String>,
        /// Only this plan.
        #[arg(long)]
        plan: Option<String>,
    },
}

/// Runs a `tenants` subcommand.
pub fn run(settings: &Settings, command: TenantsCommand) -> CliResult {
    let mut cfg = settings.clone();
    cfg.db_pool_size = 1;
    let db = open_database(&cfg)?;
    let mut conn = db.get()?;
    match command {
        TenantsCommand::Create { name, slug, plan } => {
            let new = NewTenant::parse(&name, slug.as_deref(), plan.as_deref())?;
            let keys = api_key_auth(settings)?;
            let (tenant, key) =
                tenants::create_tenant(&mut conn, &cli_actor(), &keys.hasher, new, None)?;
            print_json(&CreatedTenantResponse {
                tenant: TenantResponse::from(&tenant),
                api_key: key.expose().to_owned(),
            })
        }
        TenantsCommand::List {
            limit,
            cursor,
            status,
            plan,
        } => {
            let page = PageRequest::parse(Some(limit), cursor.as_deref())?;
            let filter = TenantFilter {
                status: status.as_deref().map(str::parse).transpose()?,
                plan: plan.as_deref().map(str::parse).transpose()?,
                name_contains: None,
            };
            let page = tenants::list_tenants(&mut conn, &filter, &page)?;
            print_json(&TenantListResponse {
                tenants: page.items.iter().map(TenantResponse::from).collect(),
                next_cursor: page.next_cursor.map(|c| c.encode()),
            })
        }
    }
}
