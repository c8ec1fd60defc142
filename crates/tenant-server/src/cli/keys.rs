//! `moltbot-saas keys status|rotate|generate`: the key ring sealing channel credentials and
//! webhook secrets at rest (the use cases are `tenant_service::sealing`).

use clap::Subcommand;
use tenant_service::sealing;
use tenant_store::crypto::KeyRing;

use super::console::{CliResult, print_json};
use crate::settings::Settings;
use crate::startup::{key_ring, open_database};

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Count sealed rows (channel credentials, webhook secrets) by the key that sealed them.
    Status,
    /// Re-seal every channel credential and webhook secret not under the active (first) key,
    /// batch by batch.
    /// Safe while servers run; resumable (running it again continues).
    Rotate {
        /// Rows per batch (each batch is one transaction).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        batch_size: i64,
    },
    /// Print a fresh `id:base64key` entry to put first in SAAS_ENCRYPTION_KEYS.
    Generate {
        /// The new key's id (1-32 of A-Z, a-z, 0-9, '_' or '-').
        #[arg(long)]
        id: String,
    },
}

/// Runs a `keys` command; prints JSON (progress of a rotation goes to the log).
pub fn run(settings: &Settings, command: KeysCommand) -> CliResult {
    if let KeysCommand::Generate { id } = &command {
        let entry = KeyRing::generate_entry(id)?;
        return print_json(&serde_json::json!({ "key": entry.as_str() }));
    }
    let ring = key_ring(settings)?;
    let mut cfg = settings.clone();
    cfg.db_pool_size = 1;
    let db = open_database(&cfg)?;
    let mut conn = db.get()?;
    if let KeysCommand::Rotate { batch_size } = command {
        let rotation = sealing::rotate(&mut conn, &ring, batch_size)?;
        return print_json(&serde_json::json!({
            "activeKey": ring.active_id(),
            "resealed": rotation.done.resealed,
            "skippedConcurrent": rotation.done.skipped,
            "remaining": rotation.after.pending(),
        }));
    }
    let usage = sealing::usage(&mut conn, &ring)?;
    let other: serde_json::Map<String, serde_json::Value> = usage
        .other
        .iter()
        .map(|(k, n)| (k.clone(), (*n).into()))
        .collect();
    // Rows sealed under a key the ring lacks cannot be opened or rotated: restore that key.
    let missing = sealing::missing_keys(&usage, &ring);
    print_json(&serde_json::json!({
        "activeKey": ring.active_id(),
        "keys": ring.ids().collect::<Vec<_>>(),
        "missingKeys": missing,
        "rows": {
            "active": usage.active,
            "otherKeys": other,
            "plaintext": usage.plaintext,
        },
        "pending": usage.pending(),
    }))
}
