//! The fence of a running `config sync` (database or HTTP mode): fenced at start, its watchdog,
//! and fencing on SIGTERM or Ctrl-C before the process exits
//! (`tenant_service::gateway_config::fence`).

use std::sync::Arc;
use std::time::Duration;

use tenant_service::gateway_config::fence::Fence;

/// The fence of `out`, fenced now (until the first renewal), with its watchdog running, and
/// fencing on SIGTERM or Ctrl-C before the process exits (a stopped sync renews nothing, so its
/// gateway must stop serving).
pub(super) fn fence_with_stop(
    out: &std::path::Path,
    empty: (String, Option<String>),
    lease: Duration,
) -> Result<Arc<Fence>, Box<dyn std::error::Error>> {
    let fence = Fence::new(out.to_owned(), empty, lease);
    // The file may be from a run that did not stop cleanly, and the control plane may have
    // given its tenants away since: serve none until this run has renewed the lease (its first
    // pass, moments from now). After a clean stop the file is fenced already: nothing changes.
    fence.fence_now("config sync starting")?;
    fence.spawn_watchdog();
    let on_stop = Arc::clone(&fence);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Registered now, so that a failure stops the command before it serves anything.
    let (mut term, mut int) = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        });
        let code = match on_stop.fence_now("config sync stopping") {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "config sync stopping: fencing failed");
                1
            }
        };
        std::process::exit(code);
    });
    Ok(fence)
}
