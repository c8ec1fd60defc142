//! The key ring sealing secrets at rest (channel credentials, webhook signing secrets): where it
//! comes from at start, and the operator's `keys` commands (`status`, `rotate`, `generate`).
//!
//! Production takes the ring from `SAAS_ENCRYPTION_KEYS` and refuses to start without it.
//! Development without it uses a key generated once into `<data dir>/encryption.key` (id `dev`),
//! with a loud warning: a database sealed that way is only as safe as that file.

use std::sync::Arc;

use clap::Subcommand;
use tenant_store::crypto::KeyRing;
use tenant_store::key_rotation::{self, Scope};
use tenant_store::{AnyConnection, StoreResult};
use zeroize::Zeroizing;

use crate::keyfile;
use crate::settings::{Environment, Settings};

/// The file holding the generated development key, in the data directory.
pub const DEV_KEY_FILE: &str = "encryption.key";
/// The key id of the generated development key.
pub const DEV_KEY_ID: &str = "dev";

/// Why no key ring could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// Production without `SAAS_ENCRYPTION_KEYS`.
    #[error(
        "SAAS_ENCRYPTION_KEYS is required when SAAS_ENV=production (channel credentials are sealed with it); generate a key with `moltbot-saas keys generate`"
    )]
    MissingInProduction,
    /// The development key file could not be read or written.
    #[error("development encryption key {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The key file's content is not a usable key.
    #[error("development encryption key: {0}")]
    Invalid(String),
}

/// The key ring to use: the configured one, else (development only) the generated one.
pub fn key_ring(settings: &Settings) -> Result<Arc<KeyRing>, KeysError> {
    if let Some(ring) = &settings.encryption_keys {
        return Ok(Arc::clone(ring));
    }
    if settings.environment == Environment::Production {
        return Err(KeysError::MissingInProduction);
    }
    let path = settings.data_dir.join(DEV_KEY_FILE);
    let file = keyfile::load_or_generate(&path, tenant_store::crypto::KEY_LEN).map_err(|e| {
        KeysError::KeyFile {
            path: path.display().to_string(),
            source: e,
        }
    })?;
    tracing::warn!(
        path = %path.display(),
        generated = file.generated,
        "SAAS_ENCRYPTION_KEYS is not set: channel credentials are sealed with a development key \
         kept in the data directory. Never run production like this; configure \
         SAAS_ENCRYPTION_KEYS (see `moltbot-saas keys generate`)"
    );
    let ring = KeyRing::new([(DEV_KEY_ID.to_owned(), Zeroizing::new(file.key.to_vec()))])
        .map_err(|e| KeysError::Invalid(e.to_string()))?;
    Ok(Arc::new(ring))
}

/// Seals the plaintext rows older versions left, so none stays readable on disk; called on
/// start. Returns how many were sealed.
pub fn seal_plaintext_rows(conn: &mut AnyConnection, ring: &KeyRing) -> StoreResult<usize> {
    let done = key_rotation::reseal_all(conn, ring, Scope::Plaintext, 500, |_, _| {})?;
    if done.resealed > 0 {
        tracing::info!(
            rows.sealed = done.resealed,
            "sealed plaintext channel credentials and webhook secrets"
        );
    }
    Ok(done.resealed)
}

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
pub fn run(
    settings: &Settings,
    command: KeysCommand,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    if let KeysCommand::Generate { id } = &command {
        let entry = KeyRing::generate_entry(id)?;
        return Ok(serde_json::json!({ "key": entry.as_str() }));
    }
    let ring = key_ring(settings)?;
    let mut cfg = settings.clone();
    cfg.db_pool_size = 1;
    let db = crate::startup::open_database(&cfg)?;
    let mut conn = db.get()?;
    if let KeysCommand::Rotate { batch_size } = command {
        let before = key_rotation::usage(&mut conn, &ring)?;
        tracing::info!(
            active = ring.active_id(),
            pending = before.pending(),
            "rotating channel credentials and webhook secrets"
        );
        let done = key_rotation::reseal_all(
            &mut conn,
            &ring,
            Scope::NotActive,
            batch_size,
            |batch, total| {
                tracing::info!(
                    batch.resealed = batch.resealed,
                    batch.skipped = batch.skipped,
                    total.resealed = total,
                    "batch done"
                );
            },
        )?;
        let after = key_rotation::usage(&mut conn, &ring)?;
        return Ok(serde_json::json!({
            "activeKey": ring.active_id(),
            "resealed": done.resealed,
            "skippedConcurrent": done.skipped,
            "remaining": after.pending(),
        }));
    }
    let usage = key_rotation::usage(&mut conn, &ring)?;
    let other: serde_json::Map<String, serde_json::Value> = usage
        .other
        .iter()
        .map(|(k, n)| (k.clone(), (*n).into()))
        .collect();
    // Rows sealed under a key the ring lacks cannot be opened or rotated: restore that key.
    let missing: Vec<&str> = usage
        .other
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !ring.contains(k))
        .collect();
    Ok(serde_json::json!({
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
