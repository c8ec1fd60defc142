//! `moltbot-saas config render` and `config sync`: the gateway config written to files for a
//! gateway on the same host to hot-reload (`OPENCLAW_CONFIG_PATH`).
//!
//! In combined mode each pass renews the gateway's lease (a heartbeat through the database),
//! and with a fence ([`super::fence`]) writes only while that lease is valid.
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
use super::fence::Fence;
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
    let (rendered, mut report) = render_gateway(conn, gateway, opts, ring)?;
    write_document(out, &rendered, &mut report)?;
    Ok(report)
}

/// The combined document of `gateway` and the report of a pass that would write it.
fn render_gateway(
    conn: &mut AnyConnection,
    gateway: &GatewayId,
    opts: &RenderOptions,
    ring: &KeyRing,
) -> Result<(RenderedConfig, SyncReport), SyncError> {
    let revision = config_revision::current(conn)?;
    let loaded = load_gateway_sources(conn, gateway, ring)?;
    let rendered = tenant_configgen::render_combined(&as_sources(&loaded), opts)?;
    let report = SyncReport {
        revision,
        served: loaded.iter().map(|(t, _)| t.id).collect(),
        ..SyncReport::default()
    };
    Ok((rendered, report))
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
    /// In combined mode with an interval: the fence of the served file (see [`super::fence`]).
    /// With one, each pass renews the gateway's lease (declaring fencing) and writes only while
    /// the lease is valid. Without one, the lease is renewed all the same, without fencing.
    pub fence: Option<Arc<Fence>>,
    /// The gateway's lease (`SAAS_GATEWAY_LEASE_SECS`): a running sync renews it every fifth.
    pub lease: Duration,
}

/// The document with no tenants a fenced gateway serves, in the sync's options (and its env
/// file, if the secrets mode has one).
pub fn fenced_document(
    opts: &RenderOptions,
) -> Result<(String, Option<String>), tenant_configgen::ConfigError> {
    let rendered = tenant_configgen::render_combined(&[], opts)?;
    Ok((rendered.json, rendered.env_file))
}

/// The longest `config sync --interval` waits between passes while the database is away.
const OUTAGE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Writes the config once, or, with an interval, whenever the config revision changes, until the
/// process is stopped. Every write is atomic, so stopping at any moment leaves valid files.
/// With an interval, a pass that fails because the database is away (or read-only, or full) is
/// retried, waiting twice as long each time up to five seconds (or the interval, if longer),
/// and the log says once that syncing paused and once that it resumed (the fence, if any, acts
/// on its own once the lease lapses).
pub fn sync(
    db: &Database,
    target: &SyncTarget,
    interval: Option<Duration>,
) -> Result<(), SyncError> {
    // Only a running sync keeps a lease: a one-shot pass (an operator's) renews nothing.
    let mut last = Pass {
        revision: None,
        renews: interval.is_some(),
        renewed_at: None,
        renew_failing: false,
    };
    let Some(every) = interval else {
        return sync_once(db, target, &mut last);
    };
    let mut wait = every;
    let mut paused_since: Option<std::time::Instant> = None;
    loop {
        match sync_once(db, target, &mut last) {
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

/// What the passes so far wrote.
#[derive(Debug)]
struct Pass {
    /// The revision of the last document written.
    revision: Option<i64>,
    /// Whether the passes renew the gateway's lease.
    renews: bool,
    /// When the last renewal was sent.
    renewed_at: Option<std::time::Instant>,
    /// Whether renewing fails (logged once).
    renew_failing: bool,
}

/// Renews the gateway's lease: a heartbeat with the revision it serves. Returns when it was
/// sent (the lease runs from then).
fn renew(
    conn: &mut AnyConnection,
    target: &SyncTarget,
    served: Option<i64>,
) -> Result<std::time::Instant, SyncError> {
    let sent = std::time::Instant::now();
    let beat = tenant_store::gateways::HeartbeatRecord {
        etag: None,
        revision: served,
        fencing: target.fence.is_some(),
    };
    tenant_store::gateways::record_heartbeat(conn, &target.gateway, beat, tenant_core::now())?;
    Ok(sent)
}

/// One pass: renews the lease when due, then renders and writes when the revision is not the
/// one written last (or the file is fenced).
fn sync_once(db: &Database, target: &SyncTarget, last: &mut Pass) -> Result<(), SyncError> {
    let mut conn = db.get()?;
    if target.per_tenant {
        let revision = config_revision::current(&mut conn)?;
        if last.revision == Some(revision) {
            return Ok(());
        }
        let report = write_per_tenant(&mut conn, &target.opts, &target.out, &target.keys)?;
        log_pass(&report);
        last.revision = Some(report.revision);
        return Ok(());
    }
    // Taken before renewing: a fence after this point keeps this pass's document out.
    let epoch = target.fence.as_ref().map(|f| f.epoch());
    let due = match &target.fence {
        Some(fence) => fence.renewal_due() || fence.is_fenced(),
        None => {
            last.renews
                && last
                    .renewed_at
                    .is_none_or(|at| at.elapsed() >= target.lease / 5)
        }
    };
    if due {
        // A failed renewal does not stop the pass (a read-only database still serves the
        // file): without a fence nothing depends on it; with one, the lease lapses and the
        // fence acts.
        match renew(&mut conn, target, last.revision) {
            Ok(sent) => {
                if let Some(fence) = &target.fence {
                    fence.renewed(sent);
                }
                last.renewed_at = Some(sent);
                if std::mem::take(&mut last.renew_failing) {
                    tracing::info!("the gateway's lease is renewed again");
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut last.renew_failing, true) {
                    tracing::warn!(error = %e, "the gateway's lease could not be renewed; retrying each pass");
                }
            }
        }
    }
    let revision = config_revision::current(&mut conn)?;
    let fenced = target.fence.as_ref().is_some_and(|f| f.is_fenced());
    if last.revision == Some(revision) && !fenced {
        return Ok(());
    }
    let (rendered, mut report) =
        render_gateway(&mut conn, &target.gateway, &target.opts, &target.keys)?;
    let written = match (&target.fence, epoch) {
        (Some(fence), Some(epoch)) => fence.write(epoch, || {
            write_document(&target.out, &rendered, &mut report)
        }),
        _ => Some(write_document(&target.out, &rendered, &mut report)),
    };
    match written {
        Some(result) => result?,
        None => {
            // The lease lapsed (or a fence happened) while this pass rendered: the next pass
            // renews and renders again.
            tracing::warn!("the lease lapsed during this pass: its document was not written");
            last.revision = None;
            return Ok(());
        }
    }
    acknowledge(&mut conn, &target.gateway, &report);
    log_pass(&report);
    last.revision = Some(report.revision);
    Ok(())
}

fn log_pass(report: &SyncReport) {
    tracing::info!(
        config.revision = report.revision,
        files.written = report.written.len(),
        files.removed = report.removed.len(),
        "gateway config synced"
    );
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
