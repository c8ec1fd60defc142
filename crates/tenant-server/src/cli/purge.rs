//! `moltbot-saas purge`: the retention purge (and the purge of deleted tenants' rows) by hand —
//! one round and exit, or rounds until stopped — and the one-off `VACUUM` an old SQLite database
//! needs before its file can shrink.

use clap::Args;
use serde_json::json;
use tenant_service::lifecycle::purge::Purger;

use super::console::{CliResult, print_json};
use crate::settings::Settings;
use crate::startup::open_database;

/// `purge` options.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Run one round (everything due now), print what went, and exit; another replica's round
    /// in progress makes it print `"skipped": true`.
    #[arg(long)]
    pub once: bool,
    /// Rewrite the whole database first (SQLite: switches a database created before
    /// auto-vacuum to it, so purges shrink the file; it holds the database meanwhile).
    #[arg(long)]
    pub vacuum: bool,
}

/// Runs `purge`.
pub fn run(settings: &Settings, args: PurgeArgs) -> CliResult {
    let db = open_database(settings)?;
    if args.vacuum {
        tenant_store::purge::vacuum_full(&mut *db.get()?)?;
        tracing::info!("database vacuumed");
    }
    let purger = Purger::new(db, settings.retention.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        if !args.once {
            tokio::select! {
                () = purger.run() => {}
                r = super::stop_signal() => r?,
            }
            return Ok(());
        }
        match purger.round().await? {
            None => print_json(&json!({"skipped": true})),
            Some(r) => print_json(&json!({
                "skipped": false, "events": r.events, "deliveries": r.deliveries,
                "deadLetters": r.dead_letters, "audit": r.audit, "tenantRows": r.tenant_rows,
                "tenantsPurged": r.tenants_purged,
            })),
        }
    })
}
