//! `moltbot-saas migrate`: applies pending database migrations (PostgreSQL; SQLite migrates on
//! start) and prints the versions applied.

use super::console::{CliResult, print_json};
use crate::settings::Settings;

/// Applies the pending migrations.
pub fn run(settings: &Settings) -> CliResult {
    let applied = tenant_service::db::migrate(&settings.database_url, &settings.pool_config(1))?;
    tracing::info!(migrations.applied = applied.len(), "migrations done");
    print_json(&serde_json::json!({ "applied": applied }))
}
