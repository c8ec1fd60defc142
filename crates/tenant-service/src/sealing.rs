//! The key ring sealing secrets at rest (channel credentials, webhook signing secrets): where it
//! comes from at start, sealing what older versions left in plaintext, and the use cases behind
//! the operator's `keys` commands (`status`, `rotate`).
//!
//! Production takes the ring from `SAAS_ENCRYPTION_KEYS` and refuses to start without it.
//! Development without it uses a key generated once into `<data dir>/encryption.key` (id `dev`),
//! with a loud warning: a database sealed that way is only as safe as that file.

use std::sync::Arc;

use tenant_store::crypto::KeyRing;
use tenant_store::key_rotation::{self, BatchOutcome, KeyUsage, Scope};
use tenant_store::{AnyConnection, StoreResult};
use zeroize::Zeroizing;

use crate::deployment::Deployment;
use crate::dev_secrets;

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

/// The key ring to use: the configured one (`SAAS_ENCRYPTION_KEYS`), else (development only)
/// the generated one.
pub fn key_ring(
    configured: Option<&Arc<KeyRing>>,
    deployment: &Deployment,
) -> Result<Arc<KeyRing>, KeysError> {
    if let Some(ring) = configured {
        return Ok(Arc::clone(ring));
    }
    if deployment.is_production() {
        return Err(KeysError::MissingInProduction);
    }
    let path = deployment.data_dir.join(DEV_KEY_FILE);
    let file =
        dev_secrets::load_or_generate(&path, tenant_store::crypto::KEY_LEN).map_err(|e| {
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

/// What a rotation did: the rows re-sealed under the active key, those skipped because a
/// concurrent change got there first, and the usage after it.
#[derive(Debug)]
pub struct Rotation {
    /// Totals over every batch.
    pub done: BatchOutcome,
    /// Rows by key afterwards.
    pub after: KeyUsage,
}

/// Re-seals every channel credential and webhook secret not under the active (first) key of
/// `ring`, `batch_size` rows per transaction. Safe while servers run; resumable (running it again
/// continues). Progress goes to the log.
pub fn rotate(conn: &mut AnyConnection, ring: &KeyRing, batch_size: i64) -> StoreResult<Rotation> {
    let before = key_rotation::usage(conn, ring)?;
    tracing::info!(
        active = ring.active_id(),
        pending = before.pending(),
        "rotating channel credentials and webhook secrets"
    );
    let done =
        key_rotation::reseal_all(conn, ring, Scope::NotActive, batch_size, |batch, total| {
            tracing::info!(
                batch.resealed = batch.resealed,
                batch.skipped = batch.skipped,
                total.resealed = total,
                "batch done"
            );
        })?;
    let after = key_rotation::usage(conn, ring)?;
    Ok(Rotation { done, after })
}

/// Sealed rows by the key that sealed them.
pub fn usage(conn: &mut AnyConnection, ring: &KeyRing) -> StoreResult<KeyUsage> {
    key_rotation::usage(conn, ring)
}

/// The keys rows are sealed under that `ring` lacks: those rows cannot be opened or rotated
/// until the key is restored.
pub fn missing_keys<'a>(usage: &'a KeyUsage, ring: &KeyRing) -> Vec<&'a str> {
    usage
        .other
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !ring.contains(k))
        .collect()
}
