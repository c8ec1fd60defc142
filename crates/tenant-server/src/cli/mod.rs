//! The command line: `serve` (default), `migrate`, and operator tasks on tenants.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tenant_configgen::{Dialect, Layout, Mode, RenderOptions, SecretsMode};
use tenant_core::{NewTenant, PageRequest, TenantId};
use tenant_store::access_tokens::TokenScope;
use tenant_store::audit::AuditContext;
use tenant_store::tenants::TenantFilter;
use tenant_store::{Database, PoolConfig, migrations, tenants};

use crate::dto::{CreatedTenantResponse, TenantListResponse, TenantResponse};
use crate::gateway::{as_sources, load_sources};
use crate::settings::Settings;
use crate::startup::{Application, open_database};
use crate::sync::{self, SyncReport, SyncTarget};
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
    /// Render the gateway config, or keep a file of it in sync for a gateway to hot-reload.
    Config {
        /// The task.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Encryption keys of channel credentials: status, rotation, generation.
    Keys {
        /// The task.
        #[command(subcommand)]
        command: crate::keys::KeysCommand,
    },
    /// Operator tasks on tenants, straight on the database.
    Tenants {
        /// The task.
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Operator users (who log in and see every tenant).
    Operators {
        /// The task.
        #[command(subcommand)]
        command: crate::users_cli::OperatorsCommand,
    },
    /// A tenant's users.
    Users {
        /// The task.
        #[command(subcommand)]
        command: crate::users_cli::UsersCommand,
    },
    /// Webhook delivery: drain the due queue, or run a dispatcher without the HTTP API.
    Webhooks {
        /// The task.
        #[command(subcommand)]
        command: crate::webhook_cli::WebhooksCommand,
    },
}

/// Options shared by `config render` and `config sync` (defaults from the `SAAS_CONFIG_*`
/// settings).
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// `current` (openclaw ≥ 2026.8) or `legacy`.
    #[arg(long)]
    dialect: Option<Dialect>,
    /// `combined` (one document) or `per-tenant` (one file per tenant in the `--out` directory).
    #[arg(long, default_value = "combined")]
    mode: Mode,
    /// `inline`, `env` (with a `.env` file beside each document) or `secret-ref`.
    #[arg(long)]
    secrets: Option<SecretsMode>,
    /// `compact` (no whitespace, what the server serves) or `pretty` (indented, for reading).
    #[arg(long, default_value = "compact")]
    layout: Layout,
}

impl RenderArgs {
    fn options(&self, settings: &Settings) -> Result<RenderOptions, tenant_configgen::ConfigError> {
        let opts = RenderOptions {
            dialect: self.dialect.unwrap_or(settings.render.dialect),
            secrets: self.secrets.unwrap_or(settings.render.secrets),
            layout: self.layout,
            ..settings.render.clone()
        };
        opts.validate()?;
        Ok(opts)
    }
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the config (or write it, atomically and with mode 0600, to `--out`).
    Render {
        /// Rendering options.
        #[command(flatten)]
        args: RenderArgs,
        /// Only this tenant's own document.
        #[arg(long)]
        tenant: Option<String>,
        /// Write here instead of printing (a directory in per-tenant mode).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write the config to `--out` whenever it changes (atomic rename, mode 0600), once or every
    /// `--interval` seconds, for a gateway started with `OPENCLAW_CONFIG_PATH` on that file.
    Sync {
        /// Rendering options.
        #[command(flatten)]
        args: RenderArgs,
        /// The file (a directory in per-tenant mode).
        #[arg(long)]
        out: PathBuf,
        /// Check for changes every this many seconds; without it, sync once and exit.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        interval: Option<u64>,
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
    telemetry::init(settings.log_format, "info", std::io::stderr);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&settings),
        Command::Migrate => migrate(&settings),
        Command::Config { command } => config_command(&settings, command),
        Command::Tenants { command } => tenants_command(&settings, command),
        Command::Keys { command } => {
            crate::keys::run(&settings, command).and_then(|out| print_json(&out))
        }
        Command::Operators { command } => crate::users_cli::run_operators(&settings, command),
        Command::Users { command } => crate::users_cli::run_users(&settings, command),
        Command::Webhooks { command } => crate::webhook_cli::run(&settings, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e.as_ref()),
    }
}

/// What a subcommand returns.
pub(crate) type CliResult = Result<(), Box<dyn std::error::Error>>;

fn fail(e: &dyn std::error::Error) -> ExitCode {
    tracing::error!(error = %e, "moltbot-saas failed");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("error: {e}");
    }
    ExitCode::FAILURE
}

#[allow(clippy::print_stdout)]
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> CliResult {
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

fn config_command(settings: &Settings, command: ConfigCommand) -> CliResult {
    let mut cfg = settings.clone();
    cfg.db_pool_size = 1;
    let db = open_database(&cfg)?;
    let keys = crate::keys::key_ring(settings)?;
    match command {
        ConfigCommand::Render { args, tenant, out } => {
            let opts = args.options(settings)?;
            let mut conn = db.get()?;
            let per_tenant = args.mode == Mode::PerTenant;
            match (tenant, out) {
                (Some(id), Some(out)) => {
                    let id: TenantId = id.parse()?;
                    report(&sync::write_tenant(&mut conn, &opts, &id, &out, &keys)?)
                }
                (Some(id), None) => {
                    let id: TenantId = id.parse()?;
                    let loaded = [(
                        tenants::find(&mut conn, &id)?,
                        tenant_store::channels::list(&mut conn, &id, &keys)?,
                    )];
                    let rendered = tenant_configgen::render_tenant(&as_sources(&loaded)[0], &opts)?;
                    print_raw(&rendered.json)
                }
                (None, Some(out)) if per_tenant => {
                    report(&sync::write_per_tenant(&mut conn, &opts, &out, &keys)?)
                }
                (None, Some(out)) => report(&sync::write_combined(&mut conn, &opts, &out, &keys)?),
                (None, None) if per_tenant => Err(
                    "per-tenant mode writes one file per tenant: give --out DIR (or --tenant ID)"
                        .into(),
                ),
                (None, None) => {
                    let loaded = load_sources(&mut conn, false, &keys)?;
                    let rendered = tenant_configgen::render_combined(&as_sources(&loaded), &opts)?;
                    print_raw(&rendered.json)
                }
            }
        }
        ConfigCommand::Sync {
            args,
            out,
            interval,
        } => {
            let target = SyncTarget {
                out,
                per_tenant: args.mode == Mode::PerTenant,
                opts: args.options(settings)?,
                keys,
            };
            Ok(sync::sync(&db, &target, interval.map(Duration::from_secs))?)
        }
    }
}

fn report(report: &SyncReport) -> CliResult {
    print_json(&serde_json::json!({
        "revision": report.revision,
        "written": report.written,
        "removed": report.removed,
    }))
}

#[allow(clippy::print_stdout)]
fn print_raw(text: &str) -> CliResult {
    print!("{text}");
    Ok(())
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
            let keys = crate::startup::api_key_auth(settings)?;
            let (tenant, key) = service::create_tenant(&mut conn, &ctx, &keys.hasher, new)?;
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
