//! `moltbot-saas operators …` and `moltbot-saas users …`: creating people who log in, straight on
//! the database — the first operator user of a deployment, or a tenant's first owner, without
//! going through the HTTP API. Passwords are read from standard input (never from the command
//! line, where other users of the host could read them); the audit log records actor `cli`.

use std::io::BufRead;

use clap::Subcommand;
use serde_json::json;
use tenant_core::{Email, Role, Secret, TenantId, ValidationErrors};
use tenant_store::audit::AuditContext;

use crate::cli::{CliResult, print_json};
use crate::identity::password;
use crate::identity::users::{self as service, CreateUser};
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

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a tenant user. With `--password-stdin` the password is the first line of standard
    /// input; without, an invite token is printed (once) for `POST /auth/accept-invite`.
    Create {
        /// The tenant's id.
        #[arg(long)]
        tenant: String,
        /// Email.
        #[arg(long)]
        email: String,
        /// `owner`, `admin` or `member`.
        #[arg(long, default_value = "member")]
        role: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn cli_actor() -> AuditContext {
    AuditContext {
        actor_type: "cli".into(),
        ..AuditContext::default()
    }
}

/// The first line of standard input, without its line ending, checked like any new password.
fn password_from_stdin() -> Result<Secret, Box<dyn std::error::Error>> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = Secret::new(line.trim_end_matches(['\r', '\n']).to_owned());
    password::validate_new("password", &password)?;
    Ok(password)
}

fn hashed(password: &Secret) -> Result<String, Box<dyn std::error::Error>> {
    Ok(password::hash(password)?)
}

/// Runs an `operators` subcommand.
pub fn run_operators(settings: &Settings, command: OperatorsCommand) -> CliResult {
    let OperatorsCommand::Create { email } = command;
    let email = Email::parse(&email)?;
    let password = password_from_stdin()?;
    let db = open_database(settings)?;
    let row = service::create_operator(
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

/// Runs a `users` subcommand.
pub fn run_users(settings: &Settings, command: UsersCommand) -> CliResult {
    let UsersCommand::Create {
        tenant,
        email,
        role,
        password_stdin,
    } = command;
    let mut errors = ValidationErrors::default();
    let tenant_id = errors.check(tenant.parse::<TenantId>());
    let email = errors.check(Email::parse(&email));
    let role = errors.check(role.parse::<Role>());
    let (Some(tenant_id), Some(email), Some(role)) = (tenant_id, email, role) else {
        return Err(Box::new(errors));
    };
    let password_hash = if password_stdin {
        Some(hashed(&password_from_stdin()?)?)
    } else {
        None
    };
    let db = open_database(settings)?;
    let (row, invite) = service::create_user(
        &mut *db.get()?,
        &cli_actor(),
        &tenant_id,
        CreateUser {
            email,
            role,
            password_hash,
        },
        tenant_core::now(),
    )?;
    let mut out = json!({
        "id": row.id,
        "tenantId": row.tenant_id,
        "email": row.email,
        "role": row.role,
        "createdAt": row.created_at,
    });
    if let Some(invite) = invite {
        out["inviteToken"] = json!(invite.expose());
    }
    print_json(&out)
}
