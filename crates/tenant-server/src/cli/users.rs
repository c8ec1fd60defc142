//! `moltbot-saas users create`: a tenant's user, straight on the database — a tenant's first
//! owner without going through the HTTP API. With `--password-stdin` the password is read from
//! standard input (never from the command line); without, an invite token is printed once. The
//! audit log records actor `cli`.

use clap::Subcommand;
use serde_json::json;
use tenant_core::{Email, Role, Secret, TenantId, ValidationErrors};
use tenant_service::identity::password;
use tenant_service::identity::users::{self, CreateUser};

use super::console::{CliResult, cli_actor, password_from_stdin, print_json};
use crate::settings::Settings;
use crate::startup::open_database;

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

/// The first line of standard input, checked like any new password.
fn new_password() -> Result<Secret, Box<dyn std::error::Error>> {
    let password = password_from_stdin()?;
    password::validate_new("password", &password)?;
    Ok(password)
}

fn hashed(password: &Secret) -> Result<String, Box<dyn std::error::Error>> {
    Ok(password::hash(password)?)
}

/// Runs a `users` subcommand.
pub fn run(settings: &Settings, command: UsersCommand) -> CliResult {
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
        Some(hashed(&new_password()?)?)
    } else {
        None
    };
    let db = open_database(settings)?;
    let (row, invite) = users::create_user(
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
