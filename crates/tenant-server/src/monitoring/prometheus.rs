//! The Prometheus exporter: the process-wide `metrics` recorder (installed once, whatever number
//! of servers a process starts), the gauges read at scrape time (database pool, process) and the
//! rendering of the text exposition. (The HTTP series are recorded by `crate::http::metrics`.)

use std::sync::OnceLock;

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tenant_store::Database;

/// `GET /config` and `GET /tenants/{id}/config` answered 304.
pub const CONFIG_NOT_MODIFIED: &str = "moltbot_saas_gateway_config_not_modified_total";
/// Gateway config documents served (200), and their bytes.
pub const CONFIG_SERVED_BYTES: &str = "moltbot_saas_gateway_config_served_bytes_total";

/// Latency buckets of the HTTP and other `_seconds` histograms: 0.5 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the group-commit batch sizes.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder (once; later calls
/// return the same handle). `None` when another recorder was installed first (an embedder's).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(tenant_service::monitoring::BATCH_SIZE.to_owned()),
                        BATCH_BUCKETS,
                    )
                });
            let builder = match builder {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "metrics: bad histogram buckets");
                    return None;
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "metrics: another recorder is installed; /metrics stays empty");
                return None;
            }
            describe();
            gauge!("moltbot_saas_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(handle)
        })
        .clone()
}

/// The handle, once [`install`] installed the recorder.
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE.get().cloned().flatten()
}

fn describe() {
    describe_counter!(
        CONFIG_NOT_MODIFIED,
        Unit::Count,
        "Gateway config requests answered 304 Not Modified."
    );
    describe_counter!(
        CONFIG_SERVED_BYTES,
        Unit::Bytes,
        "Bytes of gateway config documents served with 200."
    );
    describe_gauge!(
        "moltbot_saas_build_info",
        "Always 1; the version label is the running build's."
    );
    describe_gauge!(
        "moltbot_saas_db_pool_connections",
        Unit::Count,
        "Open database connections by state: idle, in_use."
    );
    describe_gauge!(
        "moltbot_saas_db_pool_max_connections",
        Unit::Count,
        "The pool's size: the most connections open at once."
    );
    describe_counter!(
        "moltbot_saas_db_pool_waits_total",
        Unit::Count,
        "Connection check-outs that found no idle connection and waited."
    );
    describe_counter!(
        "moltbot_saas_db_pool_wait_timeouts_total",
        Unit::Count,
        "Connection waits that timed out (answered 503)."
    );
    describe_gauge!(
        "moltbot_saas_db_available",
        "Whether the database is thought reachable (1) or its circuit is open (0)."
    );
    describe_gauge!(
        "process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory of the process."
    );
    describe_counter!(
        "process_cpu_seconds_total",
        Unit::Seconds,
        "User and system CPU time of the process, in whole seconds."
    );
    describe_gauge!("process_open_fds", Unit::Count, "Open file descriptors.");
    describe_gauge!(
        "process_max_fds",
        Unit::Count,
        "The process's limit of open file descriptors."
    );
    describe_gauge!("process_threads", Unit::Count, "Threads of the process.");
    tenant_service::monitoring::describe();
}

/// Sets the gauges read at scrape time (the database pool of `db`, the process) and renders
/// every series in the Prometheus text format.
pub fn render(handle: &PrometheusHandle, db: &Database) -> String {
    let pool = db.pool_stats();
    gauge!("moltbot_saas_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
    gauge!("moltbot_saas_db_pool_connections", "state" => "in_use")
        .set(f64::from(pool.connections.saturating_sub(pool.idle)));
    gauge!("moltbot_saas_db_pool_max_connections").set(f64::from(pool.max_size));
    counter!("moltbot_saas_db_pool_waits_total").absolute(pool.waits);
    counter!("moltbot_saas_db_pool_wait_timeouts_total").absolute(pool.wait_timeouts);
    gauge!("moltbot_saas_db_available").set(if db.is_available() { 1.0 } else { 0.0 });
    super::process::record();
    handle.render()
}
