//! The command line: `serve` (default), `migrate`, and operator tasks on tenants.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tenant_core::{NewTenant, PageRequest};
use tenant_store::access_tokens::TokenScope;
use tenant_store::audit::AuditContext;
use tenant_store::tenants::TenantFilter;
use tenant_store::{Database, PoolConfig, migrations, tenants};

use crate::dto::{CreatedTenantResponse, TenantListResponse, TenantResponse};
use crate::settings::Settings;
use crate::startup::{Application, open_database};
use crate::{service, telemetry};

/// moltbot-saas: run the OpenClaw (Moltbot) gateway for many tenants.
#[derive(Debug, Parser)]
#[command(name = "moltbot-saas", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (the default).
    Serve,
    /// Apply pending database migrations (PostgreSQL; SQLite migrates on start).
    Migrate,
    /// Operator tasks on tenants, straight on the database.
    Tenants {
        /// The task.
        #[command(subcommand)]
        command: TenantsCommand,
    },
}

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

/// Runs the command line; the process exit code says how it went.
pub fn run(cli: Cli) -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    telemetry::init(settings.log_format, std::io::stderr);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&settings),
        Command::Migrate => migrate(&settings),
        Command::Tenants { command } => tenants_command(&settings, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e.as_ref()),
    }
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

fn fail(e: &dyn std::error::Error) -> ExitCode {
    tracing::error!(error = %e, "moltbot-saas failed");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("error: {e}");
    }
    ExitCode::FAILURE
}

#[allow(clippy::print_stdout)]
fn print_json<T: serde::Serialize>(value: &T) -> CliResult {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn serve(settings: &Settings) -> CliResult {
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(settings)?;
        for generated in app.generated_tokens() {
            let (what, var) = match generated.scope {
                TokenScope::Operator => ("an operator token", "SAAS_ADMIN_TOKEN"),
                TokenScope::Gateway => ("a gateway token (for GET /config)", "SAAS_GATEWAY_TOKEN"),
            };
            // Shown once, on the terminal only, never through the log pipeline.
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "\n  First start: {what} was generated. It is stored only as a hash and will\n  \
                     not be shown again. Keep it now:\n\n    {}\n\n  \
                     Use it as `Authorization: Bearer <token>`, or set {var} instead.\n",
                    generated.token.expose()
                );
            }
        }
        app.run_until_stopped().await?;
        tracing::info!("server stopped");
        Ok(())
    })
}

fn migrate(settings: &Settings) -> CliResult {
    let db = Database::connect(
        &settings.database_url,
        &PoolConfig {
            max_size: 1,
            ..PoolConfig::default()
        },
    )?;
    let applied = migrations::run_pending(&mut *db.get()?)?;
    tracing::info!(migrations.applied = applied.len(), "migrations done");
    print_json(&serde_json::json!({ "applied": applied }))
}

fn tenants_command(settings: &Settings, command: TenantsCommand) -> CliResult {
    let mut cfg = settings.clone();
    cfg.db_pool_size = 1;
    let db = open_database(&cfg)?;
    let mut conn = db.get()?;
    match command {
        TenantsCommand::Create { name, slug, plan } => {
            let new = NewTenant::parse(&name, slug.as_deref(), plan.as_deref())?;
            let ctx = AuditContext {
                actor_type: "cli".into(),
                ..AuditContext::default()
            };
            let (tenant, key) = service::create_tenant(&mut conn, &ctx, new)?;
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
            let page = tenants::list(&mut conn, &filter, &page)?;
            print_json(&TenantListResponse {
                tenants: page.items.iter().map(TenantResponse::from).collect(),
                next_cursor: page.next_cursor.map(|c| c.encode()),
            })
        }
    }
}
