//! `moltbot-saas backup --out FILE`: an online, consistent copy of the SQLite database, taken
//! while the server runs (restore: stop the server, put the file in place of the database).

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::console::{CliResult, print_json};
use crate::settings::Settings;
use crate::startup::open_database;

/// `backup` options.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy; the file must not exist (it appears whole, or not at all).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `backup`.
pub fn run(settings: &Settings, args: BackupArgs) -> CliResult {
    if args.out.exists() {
        return Err(format!("{} exists: give a new file", args.out.display()).into());
    }
    let db = open_database(settings)?;
    // Written beside the target, then renamed: a copy cut short leaves no file at `out`.
    let mut partial = args.out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    let written = match tenant_store::backup::sqlite_into(&mut *db.get()?, &partial) {
        Ok(written) => written,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    if !written {
        return Err(
            "backup copies the SQLite database; on PostgreSQL use its own tools (a base \
                    backup with WAL archiving, or pg_dump): see docs/deployment.md"
                .into(),
        );
    }
    std::fs::rename(&partial, &args.out)?;
    let bytes = std::fs::metadata(&args.out)?.len();
    tracing::info!(backup.bytes = bytes, "database backed up");
    print_json(&json!({"file": args.out.display().to_string(), "bytes": bytes}))
}
