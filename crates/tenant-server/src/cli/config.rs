//! `moltbot-saas config render` and `config sync`: the gateway config printed, or written to
//! files (atomically, mode 0600, only when changed) for a gateway on the same host to hot-reload.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use tenant_configgen::{Dialect, Layout, Mode, RenderOptions, SecretsMode};
use tenant_core::{GatewayId, TenantId};
use tenant_service::gateway_config::file_sync::{self, SyncReport, SyncTarget};
use tenant_service::gateway_config::{render_combined, render_tenant};

use super::console::{CliResult, print_json, print_raw};
use crate::settings::Settings;
use crate::startup::{key_ring, open_database};

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
    /// The gateway whose document to render (its id or name; default: the built-in `default`,
    /// which holds every tenant until other gateways exist).
    #[arg(long)]
    gateway: Option<String>,
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
        /// Fencing (with `--interval`, combined mode): `on` writes a document with no tenants
        /// when the gateway's lease could not be renewed for a lease, and when the sync stops
        /// (SIGTERM, Ctrl-C), so the control plane may fail its tenants over; `off` never does
        /// (then no move waits on its lease, and it is never failed over); `auto` (default):
        /// `on` for a fleet gateway, `off` for the built-in `default`.
        #[arg(long, default_value = "auto")]
        fence: FenceMode,
        /// Over HTTP instead of the database: the control plane's base URL; the gateway's token
        /// is read from `SAAS_SYNC_TOKEN` (its gateway is the token's). Combined mode, the
        /// server's secrets mode; `--fence auto` fences (give `--fence off` for the built-in
        /// gateway's `SAAS_GATEWAY_TOKEN`).
        #[arg(long, conflicts_with = "gateway")]
        url: Option<String>,
        /// With `--url`: the longest one request to the control plane may take, connecting
        /// included, in seconds (default 10). A control plane that accepts and never answers
        /// costs one pass this long; the pass is retried and the file kept as it is. Without
        /// `--url`: ignored.
        #[arg(
            long,
            env = "SAAS_SYNC_TIMEOUT_SECS",
            default_value_t = 10,
            value_parser = clap::value_parser!(u64).range(1..=3_600)
        )]
        timeout: u64,
    },
}

/// Whether `config sync` fences its gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FenceMode {
    /// On for a fleet gateway, off for the built-in `default`.
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl FenceMode {
    /// Whether a sync of `gateway` fences.
    pub fn applies(self, gateway: &GatewayId) -> bool {
        match self {
            FenceMode::Auto => !gateway.is_default(),
            FenceMode::On => true,
            FenceMode::Off => false,
        }
    }
}

/// Runs a `config` subcommand.
pub fn run(settings: &Settings, command: ConfigCommand) -> CliResult {
    // Over HTTP: no database here.
    if let ConfigCommand::Sync {
        args,
        out,
        interval,
        fence,
        url: Some(url),
        timeout,
    } = command
    {
        if args.mode == Mode::PerTenant || args.secrets.is_some() || args.layout != Layout::Compact
        {
            return Err(
                "config sync --url writes the combined document as the server renders it: no --mode per-tenant, --secrets or --layout"
                    .into(),
            );
        }
        return super::config_http::run(super::config_http::HttpSync {
            url,
            dialect: args.dialect,
            out,
            interval: interval.map(Duration::from_secs),
            timeout: Duration::from_secs(timeout),
            // The token's gateway is not known here: `auto` fences (a fleet gateway's sync).
            fence: fence != FenceMode::Off,
        });
    }
    let mut cfg = settings.clone();
    cfg.db_pool_size = 1;
    let db = open_database(&cfg)?;
    let keys = key_ring(settings)?;
    match command {
        ConfigCommand::Render { args, tenant, out } => {
            let opts = args.options(settings)?;
            let mut conn = db.get()?;
            let gateway = resolve_gateway(&mut conn, settings, args.gateway.as_deref())?;
            let per_tenant = args.mode == Mode::PerTenant;
            match (tenant, out) {
                (Some(id), Some(out)) => {
                    let id: TenantId = id.parse()?;
                    report(&file_sync::write_tenant(
                        &mut conn, &opts, &id, &out, &keys,
                    )?)
                }
                (Some(id), None) => {
                    let id: TenantId = id.parse()?;
                    print_raw(&render_tenant(&mut conn, &id, &opts, &keys)?.json)
                }
                (None, Some(out)) if per_tenant => {
                    report(&file_sync::write_per_tenant(&mut conn, &opts, &out, &keys)?)
                }
                (None, Some(out)) => report(&file_sync::write_combined(
                    &mut conn, &gateway, &opts, &out, &keys,
                )?),
                (None, None) if per_tenant => Err(
                    "per-tenant mode writes one file per tenant: give --out DIR (or --tenant ID)"
                        .into(),
                ),
                (None, None) => {
                    print_raw(&render_combined(&mut conn, &gateway, &opts, &keys)?.json)
                }
            }
        }
        ConfigCommand::Sync {
            args,
            out,
            interval,
            fence,
            url: _,
            timeout: _,
        } => {
            let gateway = resolve_gateway(&mut *db.get()?, settings, args.gateway.as_deref())?;
            let per_tenant = args.mode == Mode::PerTenant;
            let opts = args.options(settings)?;
            let lease = settings.fleet.lease;
            let fence = (interval.is_some() && !per_tenant && fence.applies(&gateway))
                .then(|| {
                    super::sync_fence::fence_with_stop(
                        &out,
                        file_sync::fenced_document(&opts)?,
                        lease,
                    )
                })
                .transpose()?;
            let target = SyncTarget {
                gateway,
                out,
                per_tenant,
                opts,
                keys,
                fence,
                lease,
            };
            Ok(file_sync::sync(
                &db,
                &target,
                interval.map(Duration::from_secs),
            )?)
        }
    }
}

/// The gateway named by id or name (`None`: the built-in one).
fn resolve_gateway(
    conn: &mut tenant_store::AnyConnection,
    settings: &Settings,
    given: Option<&str>,
) -> Result<GatewayId, Box<dyn std::error::Error>> {
    match given {
        None => Ok(GatewayId::DEFAULT),
        Some(given) => super::gateways::resolve(conn, &settings.fleet, given),
    }
}

fn report(report: &SyncReport) -> CliResult {
    print_json(&serde_json::json!({
        "revision": report.revision,
        "written": report.written,
        "removed": report.removed,
    }))
}
