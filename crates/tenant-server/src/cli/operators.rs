//! `moltbot-saas operators create`: an operator user (who logs in and sees every tenant),
//! straight on the database — the first operator of a deployment, without going through the HTTP
//! API. The password is read from standard input; the audit log records actor `cli`.

use clap::Subcommand;
use serde_json::json;
use tenant_core::{Email, Secret};
use tenant_service::identity::password;
use tenant_service::identity::users;

use super::console::{CliResult, cli_actor, password_from_stdin, print_json};
use crate::settings::Settings;
use crate::startup::open_database;

/// `operators` subcommands.
#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// Create an operator user, who then logs in at `POST /auth/login` without a tenant. The
    /// password is the first line of standard input.
    Create {
        /// Email.
        #[arg(long)]
        email: String,
    },
}

/// The first line of standard input, checked like any new password.
fn new_password() -> Result<Secret, Box<dyn std::error::Error>> {
    let password = password_from_stdin()?;
    password::validate_new("password", &password)?;
    Ok(password)
}

fn hashed(password: &Secret) -> Result<String, Box<dyn std::error::Error>> {
    Ok(password::hash(password)?)
}

/// Runs an `operators` subcommand.
pub fn run(settings: &Settings, command: OperatorsCommand) -> CliResult {
    let OperatorsCommand::Create { email } = command;
    let email = Email::parse(&email)?;
    let password = new_password()?;
    let db = open_database(settings)?;
    let row = users::create_operator(
        &mut *db.get()?,
        &cli_actor(),
        &email,
        &hashed(&password)?,
        tenant_core::now(),
    )?;
    print_json(&json!({
        "id": row.id,
        "email": row.email,
        "createdAt": row.created_at,
    }))
}
