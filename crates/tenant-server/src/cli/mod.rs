//! The command line: `serve` (the default), `migrate`, and the operator's tasks, one file per
//! command group. Every task calls the same use cases as the HTTP API (`tenant-service`), so it
//! writes the same rows and audit entries (actor `cli`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::Settings;
use crate::telemetry;

mod backup;
mod billing;
mod config;
mod config_http;
mod console;
mod gateway;
mod gateways;
mod keys;
mod limits;
mod migrate;
mod operators;
mod probes;
mod purge;
mod serve;
mod sync_fence;
mod tenants;
mod users;
mod webhooks;

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
        command: config::ConfigCommand,
    },
    /// Encryption keys of channel credentials: status, rotation, generation.
    Keys {
        /// The task.
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// The gateway fleet: list, create, drain, rotate a token.
    Gateways {
        /// The task.
        #[command(subcommand)]
        command: gateways::GatewaysCommand,
    },
    /// Operator tasks on tenants, straight on the database.
    Tenants {
        /// The task.
        #[command(subcommand)]
        command: tenants::TenantsCommand,
    },
    /// Operator users (who log in and see every tenant).
    Operators {
        /// The task.
        #[command(subcommand)]
        command: operators::OperatorsCommand,
    },
    /// A tenant's users.
    Users {
        /// The task.
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Webhook delivery: drain the due queue, or run a dispatcher without the HTTP API.
    Webhooks {
        /// The task.
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
    /// The gateway host: install the bridge plugin that reports messages and sessions.
    Gateway {
        /// The task.
        #[command(subcommand)]
        command: gateway::GatewayCommand,
    },
    /// Plans, a tenant's usage, and changing its plan and limit overrides.
    Limits {
        /// The task.
        #[command(subcommand)]
        command: limits::LimitsCommand,
    },
    /// Purge history past its retention and deleted tenants' rows (`--once`: one round).
    Purge(purge::PurgeArgs),
    /// An online, consistent copy of the SQLite database to a new file.
    Backup(backup::BackupArgs),
    /// Stripe billing: a tenant's billing state, the suspension sweep.
    Billing {
        /// The task.
        #[command(subcommand)]
        command: billing::BillingCommand,
    },
}

/// Runs the command line; the process exit code says how it went.
pub fn run(cli: Cli) -> ExitCode {
    // Installing files on a gateway host needs neither settings nor a database.
    if let Some(Command::Gateway { command }) = cli.command {
        return match gateway::run(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e.as_ref()),
        };
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    telemetry::init(
        settings.log_format,
        "info",
        std::io::stderr,
        settings.sentry.dsn.is_some(),
    );
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(&settings),
        Command::Migrate => migrate::run(&settings),
        Command::Config { command } => config::run(&settings, command),
        Command::Tenants { command } => tenants::run(&settings, command),
        Command::Gateways { command } => gateways::run(&settings, command),
        Command::Keys { command } => keys::run(&settings, command),
        Command::Operators { command } => operators::run(&settings, command),
        Command::Users { command } => users::run(&settings, command),
        Command::Webhooks { command } => webhooks::run(&settings, command),
        Command::Gateway { command } => gateway::run(command),
        Command::Limits { command } => limits::run(&settings, command),
        Command::Purge(args) => purge::run(&settings, args),
        Command::Backup(args) => backup::run(&settings, args),
        Command::Billing { command } => billing::run(&settings, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e.as_ref()),
    }
}

fn fail(e: &dyn std::error::Error) -> ExitCode {
    tracing::error!(error = %e, "moltbot-saas failed");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("error: {e}");
    }
    ExitCode::FAILURE
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM (what systemd and Kubernetes send to stop a process):
/// the long-running commands (`webhooks dispatch`, `purge`) stop on either.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
