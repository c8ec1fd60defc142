//! `moltbot-saas tenants create`, `tenants list`, `tenants export` and `tenants dedicated`:
//! straight on the database, through the same use cases as `POST /tenants` (with the owner key,
//! the audit entry and the placement on a gateway),
//! `GET /tenants` (printing the same JSON), `GET /tenants/{id}/export` (the same NDJSON) and
//! `PATCH /tenants/{id}/placement` (the same JSON).

use clap::Subcommand;
use tenant_core::{NewTenant, PageRequest};
use tenant_service::tenants;
use tenant_store::tenants::TenantFilter;

use super::console::{CliResult, cli_actor, print_json};
use crate::routes::placement::PlacementResponse;
use crate::routes::tenants::{CreatedTenantResponse, TenantListResponse, TenantResponse};
use crate::settings::Settings;
use crate::startup::{api_key_auth, key_ring, open_database};

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
        /// Place it on a dedicated gateway whatever its plan (as a plan in
        /// `SAAS_DEDICATED_PLANS`); it waits `unplaced` while none has room.
        #[arg(long)]
        dedicated: bool,
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
    /// Say whether a tenant wants a dedicated gateway whatever its plan (as
    /// `PATCH /tenants/{id}/placement`): a tenant on a gateway of the other kind starts moving
    /// to one with room; prints its placement as JSON.
    #[command(group(clap::ArgGroup::new("wish").required(true).args(["on", "off"])))]
    Dedicated {
        /// Tenant id (UUID).
        id: String,
        /// It wants a dedicated gateway.
        #[arg(long)]
        on: bool,
        /// It no longer does (its plan decides).
        #[arg(long)]
        off: bool,
    },
    /// Export everything a tenant owns as NDJSON (as `GET /tenants/{id}/export`).
    Export {
        /// Tenant id (UUID).
        id: String,
        /// File to write (created or truncated); standard output when absent.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

/// Runs a `tenants` subcommand.
pub fn run(settings: &Settings, command: TenantsCommand) -> CliResult {
    let mut cfg = settings.clone();
    cfg.db_pool_size = 1;
    let db = open_database(&cfg)?;
    let mut conn = db.get()?;
    match command {
        TenantsCommand::Dedicated { id, on, off: _ } => {
            let id: tenant_core::TenantId = id.parse()?;
            let (placement, _) = tenant_service::fleet::placement::set_dedicated(
                &mut conn,
                &cli_actor(),
                &settings.fleet,
                &id,
                on,
            )?;
            print_json(&PlacementResponse::from(&placement))
        }
        TenantsCommand::Export { id, out } => {
            let id: tenant_core::TenantId = id.parse()?;
            let ring = key_ring(settings)?;
            let mut sink: Box<dyn std::io::Write> = match &out {
                Some(path) => Box::new(std::fs::File::create(path)?),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut failed = None;
            tenant_service::lifecycle::export::export_tenant(&mut conn, &ring, &id, |chunk| {
                match sink.write_all(chunk.as_bytes()) {
                    Ok(()) => true,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            })?;
            if let Some(e) = failed {
                return Err(e.into());
            }
            sink.flush()?;
            Ok(())
        }
        TenantsCommand::Create {
            name,
            slug,
            plan,
            dedicated,
        } => {
            let mut new = NewTenant::parse(&name, slug.as_deref(), plan.as_deref())?;
            new.dedicated = dedicated;
            let keys = api_key_auth(settings)?;
            let (tenant, key) =
                tenants::create_tenant(&mut conn, &cli_actor(), &keys.hasher, new, None)?;
            // Placed like `POST /tenants` does: right after the create, on the gateway placement
            // picks; a failure leaves it on `default` (said on standard error, not fatal).
            let placed = tenant_service::fleet::placement::place_new(
                &mut conn,
                &settings.fleet,
                &[(cli_actor(), tenant.id, tenant.plan, dedicated)],
            );
            if let Err(e) = &placed {
                eprintln!("the tenant was created but not placed (it stays on `default`): {e}");
            }
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
