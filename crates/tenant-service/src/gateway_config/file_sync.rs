//! `moltbot-saas config render` and `config sync`: the gateway config written to files for a
//! gateway on the same host to hot-reload (`OPENCLAW_CONFIG_PATH`).
//!
//! Combined mode writes one file (and, in the `env` and `secret-ref` secrets modes, its env file
//! beside it as `<file>.env`). Per-tenant mode writes `<accountId>.json` (and `.env`) for every
//! tenant into a directory, suspended tenants included (their document has no agent, so their
//! gateway stops serving them), and removes the files of tenants that no longer exist.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tenant_configgen::{RenderOptions, RenderedConfig};
use tenant_core::{GatewayId, TenantId};
use tenant_store::crypto::KeyRing;
use tenant_store::{AnyConnection, Database, StoreError, channels, config_revision, tenants};

use super::atomic_file::write_if_changed;
use super::{as_sources, load_gateway_sources, load_sources};

/// What went wrong writing config files.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tenants cannot make a valid config.
    #[error("the gateway config cannot be rendered: {0}")]
    Config(#[from] tenant_configgen::ConfigError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// What one pass wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The config revision rendered.
    pub revision: i64,
    /// Files written because their content changed.
    pub written: Vec<PathBuf>,
    /// Files removed because their tenant is gone.
    pub removed: Vec<PathBuf>,
    /// The tenants in the combined document written (what the gateway now serves).
    pub served: HashSet<TenantId>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SyncError + '_ {
    move |source| SyncError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write(path: &Path, contents: &str, report: &mut SyncReport) -> Result<(), SyncError> {
    if write_if_changed(path, contents.as_bytes()).map_err(io_err(path))? {
        report.written.push(path.to_owned());
    }
    Ok(())
}

fn env_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".env");
    PathBuf::from(s)
}

/// Renders the combined document of `gateway`'s active tenants (every active tenant in a
/// single-gateway setup) into `out` (and its env file).
pub fn write_combined(
    conn: &mut AnyConnection,
    gateway: &GatewayId,
    opts: &RenderOptions,
    out: &Path,
    ring: &KeyRing,
) -> Result<SyncReport, SyncError> {
    let revision = config_revision::current(conn)?;
    let loaded = load_gateway_sources(conn, gateway, ring)?;
    let rendered = tenant_configgen::render_combined(&as_sources(&loaded), opts)?;
    let mut report = SyncReport {
        revision,
        served: loaded.iter().map(|(t, _)| t.id).collect(),
        ..SyncReport::default()
    };
    drop(loaded);
    write_document(out, &rendered, &mut report)?;
    Ok(report)
}

/// Writes a document and its env file; removes a stale env file (left by an earlier `env` run)
/// when the document has none, so no credentials linger beside an inline config.
fn write_document(
    out: &Path,
    rendered: &RenderedConfig,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let env_file = env_path(out);
    // The env file first: a gateway reloading on the config's change must find its variables.
    match &rendered.env_file {
        Some(env) => write(&env_file, env, report)?,
        None => match fs::remove_file(&env_file) {
            Ok(()) => report.removed.push(env_file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&env_file)(e)),
        },
    }
    write(out, &rendered.json, report)
}

/// Renders one tenant's document into `out` (and its env file).
pub fn write_tenant(
    conn: &mut AnyConnection,
    opts: &RenderOptions,
    id: &TenantId,
    out: &Path,
    ring: &KeyRing,
) -> Result<SyncReport, SyncError> {
    let revision = config_revision::current(conn)?;
    let loaded = [(tenants::find(conn, id)?, channels::list(conn, id, ring)?)];
    let rendered = tenant_configgen::render_tenant(&as_sources(&loaded)[0], opts)?;
    let mut report = SyncReport {
        revision,
        ..SyncReport::default()
    };
    write_document(out, &rendered, &mut report)?;
    Ok(report)
}

/// Renders every tenant's own document into `dir` as `<accountId>.json`, and removes the files of
/// tenants that no longer exist.
pub fn write_per_tenant(
    conn: &mut AnyConnection,
    opts: &RenderOptions,
    dir: &Path,
    ring: &KeyRing,
) -> Result<SyncReport, SyncError> {
    let revision = config_revision::current(conn)?;
    let loaded = load_sources(conn, true, ring)?;
    let mut report = SyncReport {
        revision,
        ..SyncReport::default()
    };
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut keep = HashSet::new();
    for source in as_sources(&loaded) {
        let rendered = tenant_configgen::render_tenant(&source, opts)?;
        let name = source.tenant.account_id.as_str();
        let path = dir.join(format!("{name}.json"));
        if let Some(env) = &rendered.env_file {
            let env_file = dir.join(format!("{name}.json.env"));
            write(&env_file, env, &mut report)?;
            keep.insert(env_file);
        }
        write(&path, &rendered.json, &mut report)?;
        keep.insert(path);
    }
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let ours = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.starts_with(tenant_core::AccountId::PREFIX)
                && (n.ends_with(".json") || n.ends_with(".json.env"))
        });
        if ours && !keep.contains(&path) {
            fs::remove_file(&path).map_err(io_err(&path))?;
            report.removed.push(path);
        }
    }
    Ok(report)
}

/// Where and how `config sync` writes.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    /// A file (combined), or a directory (per tenant).
    pub out: PathBuf,
    /// One file per tenant.
    pub per_tenant: bool,
    /// Rendering options.
    pub opts: RenderOptions,
    /// The key ring opening channel credentials.
    pub keys: Arc<KeyRing>,
    /// The gateway whose document it is (`default`: every tenant in a single-gateway setup).
    pub gateway: GatewayId,
}

/// The longest `config sync --interval` waits between passes while the database is away.
const OUTAGE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Writes the config once, or, with an interval, whenever the config revision changes, until the
/// process is stopped. Every write is atomic, so stopping at any moment leaves valid files.
/// With an interval, a pass that fails because the database is away (or read-only, or full) is
/// retried, waiting twice as long each time up to five seconds (or the interval, if longer),
/// and the log says once that syncing paused and once that it resumed.
pub fn sync(
    db: &Database,
    target: &SyncTarget,
    interval: Option<Duration>,
) -> Result<(), SyncError> {
    let mut last_revision = None;
    let Some(every) = interval else {
        return sync_once(db, target, &mut last_revision);
    };
    let mut wait = every;
    let mut paused_since: Option<std::time::Instant> = None;
    loop {
        match sync_once(db, target, &mut last_revision) {
            Ok(()) => {
                if let Some(since) = paused_since.take() {
                    tracing::info!(
                        paused_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "gateway config sync resumed"
                    );
                }
                wait = every;
            }
            Err(SyncError::Store(e)) if e.fault().is_some() => {
                if paused_since.is_none() {
                    paused_since = Some(std::time::Instant::now());
                    tracing::warn!(error = %e, "gateway config sync paused: the database is unavailable; retrying");
                }
                wait = (wait * 2).min(OUTAGE_BACKOFF_MAX.max(every));
            }
            Err(e) => return Err(e),
        }
        std::thread::sleep(wait);
    }
}

/// One pass: renders and writes when the revision is not `last_revision`.
fn sync_once(
    db: &Database,
    target: &SyncTarget,
    last_revision: &mut Option<i64>,
) -> Result<(), SyncError> {
    let mut conn = db.get()?;
    let revision = config_revision::current(&mut conn)?;
    if *last_revision == Some(revision) {
        return Ok(());
    }
    let report = if target.per_tenant {
        write_per_tenant(&mut conn, &target.opts, &target.out, &target.keys)?
    } else {
        let report = write_combined(
            &mut conn,
            &target.gateway,
            &target.opts,
            &target.out,
            &target.keys,
        )?;
        acknowledge(&mut conn, &target.gateway, &report);
        report
    };
    tracing::info!(
        config.revision = report.revision,
        files.written = report.written.len(),
        files.removed = report.removed.len(),
        "gateway config synced"
    );
    *last_revision = Some(report.revision);
    Ok(())
}

/// After a file swap: the moves away from `gateway` that the file just written proves done
/// (tenants moving away that it does not hold) complete, so they enter their target's document
/// (see `crate::fleet::placement`). A failure is logged, never fatal: the next pass tries again.
fn acknowledge(conn: &mut AnyConnection, gateway: &GatewayId, report: &SyncReport) {
    let ctx = tenant_store::audit::AuditContext {
        actor_type: "gateway".into(),
        actor_id: Some(gateway.to_string()),
        ..Default::default()
    };
    let released = tenant_store::gateways::moving_from(conn, gateway)
        .map_err(crate::error::ServiceError::from)
        .and_then(|moving| {
            let absent: Vec<TenantId> = moving
                .iter()
                .map(|p| p.tenant_id)
                .filter(|id| !report.served.contains(id))
                .collect();
            crate::fleet::placement::complete_released(
                conn,
                &ctx,
                gateway,
                &absent,
                report.revision,
            )
        });
    match released {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(gateway.id = %gateway, fleet.released = n, "moves away from this gateway completed")
        }
        Err(e) => {
            tracing::warn!(gateway.id = %gateway, error = %e, "acknowledging the written config failed; retrying on the next pass")
        }
    }
}
