//! The `moltbot-saas` binary.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tenant_server::cli::run(tenant_server::cli::Cli::parse())
}
