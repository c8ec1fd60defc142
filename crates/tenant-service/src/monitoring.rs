//! The metrics the use cases record, through the `metrics` facade (whatever recorder the process
//! installed: the server's Prometheus exporter, or none, when every call is a no-op): names,
//! descriptions, and the gauges refreshed from the store on an interval.
//!
//! Labels are bounded (static strings: event types, batch paths, plans, statuses); none names
//! a tenant. docs/monitoring.md lists every series.

use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use tenant_core::{Plan, TenantStatus};
use tenant_store::{AnyConnection, Database, StoreResult, deliveries, tenants};

use crate::error::ServiceResult;

/// Events accepted by the ingest path, by type and result (`accepted`, `duplicate`).
pub const EVENTS_INGESTED: &str = "moltbot_saas_events_ingested_total";
/// Requests per group-commit batch, by write path (`ingest`, `tenant_create`).
pub const BATCH_SIZE: &str = "moltbot_saas_write_batch_requests";
/// Time to write and commit one group-commit batch, by path.
pub const BATCH_COMMIT: &str = "moltbot_saas_write_batch_commit_duration_seconds";
/// Gateway config refreshes, by kind (`full`: first render of a variant, `incremental`).
pub const CONFIG_RENDERS: &str = "moltbot_saas_gateway_config_renders_total";
/// Time of one gateway config refresh.
pub const CONFIG_RENDER_TIME: &str = "moltbot_saas_gateway_config_render_duration_seconds";
/// Size of the last rendered gateway config document, by mode (`combined`, `per_tenant`).
pub const CONFIG_BYTES: &str = "moltbot_saas_gateway_config_document_bytes";
/// Tenants by plan and status (refreshed from the store).
pub const TENANTS: &str = "moltbot_saas_tenants";
/// Webhook deliveries by state (`pending`, `due`, `dead`), refreshed from the store.
pub const WEBHOOK_QUEUE: &str = "moltbot_saas_webhook_queue_deliveries";
/// Age of the longest-waiting due webhook delivery (0 when none is due).
pub const WEBHOOK_OLDEST_DUE: &str = "moltbot_saas_webhook_oldest_due_age_seconds";
/// Webhook endpoints whose circuit is open or half-open (they keep timing out or refusing
/// connections), refreshed from the store.
pub const WEBHOOK_CIRCUITS_OPEN: &str = "moltbot_saas_webhook_circuits_open";
/// Whether the last refresh of the store gauges worked (1) or not (0).
pub const STORE_GAUGES_UP: &str = "moltbot_saas_store_gauges_up";
/// Calls to Redis by the rate limiter that failed (the process limited on its own meanwhile).
pub use crate::rate_limit::RATE_LIMIT_REDIS_ERRORS;
/// Requests refused by a rate limit (429), by the policy that refused (`key`, `tenant`,
/// `address`); defined beside the limiter, which the plans use (no import cycle).
pub use crate::rate_limit::RATE_LIMITED;

/// Describes this crate's and `tenant-webhooks`' series to the installed recorder (their help
/// lines in the Prometheus output).
pub fn describe() {
    crate::lifecycle::purge::describe();
    describe_counter!(
        EVENTS_INGESTED,
        Unit::Count,
        "Gateway events ingested, by type and result (accepted, duplicate)."
    );
    describe_histogram!(
        BATCH_SIZE,
        Unit::Count,
        "Requests written per group-commit batch, by path."
    );
    describe_histogram!(
        BATCH_COMMIT,
        Unit::Seconds,
        "Time to write and commit one group-commit batch, by path."
    );
    describe_counter!(
        CONFIG_RENDERS,
        Unit::Count,
        "Gateway config documents (re)rendered, by kind (full, incremental)."
    );
    describe_histogram!(
        CONFIG_RENDER_TIME,
        Unit::Seconds,
        "Time to bring a gateway config document up to date."
    );
    describe_gauge!(
        CONFIG_BYTES,
        Unit::Bytes,
        "Size of the last rendered gateway config document, by mode."
    );
    describe_gauge!(TENANTS, Unit::Count, "Tenants by plan and status.");
    describe_gauge!(
        WEBHOOK_QUEUE,
        Unit::Count,
        "Webhook deliveries by state: pending (due or not), due now, dead (failed for good)."
    );
    describe_gauge!(
        WEBHOOK_OLDEST_DUE,
        Unit::Seconds,
        "How long the longest-waiting due webhook delivery has been due (0: none)."
    );
    describe_gauge!(
        WEBHOOK_CIRCUITS_OPEN,
        Unit::Count,
        "Webhook endpoints whose circuit is open or half-open."
    );
    describe_gauge!(
        STORE_GAUGES_UP,
        "Whether the last refresh of the gauges read from the store succeeded."
    );
    describe_counter!(
        RATE_LIMITED,
        Unit::Count,
        "Requests refused by a rate limit (429), by policy (key, tenant, address)."
    );
    describe_counter!(
        RATE_LIMIT_REDIS_ERRORS,
        Unit::Count,
        "Rate-limit calls to Redis that failed (each process limited on its own meanwhile)."
    );
    tenant_webhooks::delivery::metrics::describe();
    crate::fleet::metrics::describe();
}

/// The label of an event type: one of the gateway's (validated before an event is queued), or
/// `other`.
pub fn event_type_label(event_type: &str) -> &'static str {
    tenant_webhooks::ingest::GATEWAY_EVENT_TYPES
        .iter()
        .find(|t| **t == event_type)
        .copied()
        .unwrap_or("other")
}

/// Counts one ingested event of `event_type` (see [`event_type_label`]). Each label set is a
/// literal: nothing is allocated.
pub fn event_ingested(event_type: &str, duplicate: bool) {
    macro_rules! count {
        ($t:literal) => {
            if duplicate {
                counter!(EVENTS_INGESTED, "type" => $t, "result" => "duplicate").increment(1)
            } else {
                counter!(EVENTS_INGESTED, "type" => $t, "result" => "accepted").increment(1)
            }
        };
    }
    match event_type {
        "message.received" => count!("message.received"),
        "message.sent" => count!("message.sent"),
        "session.started" => count!("session.started"),
        "session.ended" => count!("session.ended"),
        _ => count!("other"),
    }
}

/// Records one group-commit batch of `path`.
pub fn batch_written(path: &'static str, requests: usize, elapsed: Duration) {
    histogram!(BATCH_SIZE, "write_path" => path).record(requests as f64);
    histogram!(BATCH_COMMIT, "write_path" => path).record(elapsed);
}

/// Records one refresh of a gateway config document.
pub fn config_rendered(full: bool, per_tenant: bool, bytes: usize, elapsed: Duration) {
    let kind = if full { "full" } else { "incremental" };
    counter!(CONFIG_RENDERS, "kind" => kind).increment(1);
    histogram!(CONFIG_RENDER_TIME).record(elapsed);
    let mode = if per_tenant { "per_tenant" } else { "combined" };
    gauge!(CONFIG_BYTES, "mode" => mode).set(bytes as f64);
}

/// What the store gauges show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreFigures {
    /// (plan, status, count), every known combination (zeros included).
    pub tenants: Vec<(&'static str, &'static str, i64)>,
    /// The webhook queue.
    pub queue: deliveries::QueueDepth,
}

/// Reads the figures the store gauges show: tenants by plan and status, the webhook queue.
pub fn store_figures(conn: &mut AnyConnection, now: DateTime<Utc>) -> StoreResult<StoreFigures> {
    let counted = tenants::count_by_plan_and_status(conn)?;
    let mut figures = Vec::with_capacity(Plan::ALL.len() * TenantStatus::ALL.len());
    for plan in Plan::ALL {
        for status in TenantStatus::ALL {
            let n = counted
                .iter()
                .filter(|(p, s, _)| p == plan.as_str() && s == status.as_str())
                .map(|(_, _, n)| *n)
                .sum();
            figures.push((plan.as_str(), status.as_str(), n));
        }
    }
    Ok(StoreFigures {
        tenants: figures,
        queue: deliveries::queue_depth(conn, now)?,
    })
}

/// Reads the store figures and sets their gauges (the server calls this on an interval); on
/// failure only [`STORE_GAUGES_UP`] changes (to 0), the others keep their last values.
pub async fn refresh_store_gauges(db: &Database) -> ServiceResult<StoreFigures> {
    let now = Utc::now();
    let read = crate::db::run(db, move |conn| {
        crate::fleet::metrics::refresh(conn, now)?;
        Ok(store_figures(conn, now)?)
    })
    .await;
    let figures = match read {
        Ok(f) => f,
        Err(e) => {
            gauge!(STORE_GAUGES_UP).set(0.0);
            return Err(e);
        }
    };
    for (plan, status, n) in &figures.tenants {
        gauge!(TENANTS, "plan" => *plan, "status" => *status).set(*n as f64);
    }
    let q = &figures.queue;
    gauge!(WEBHOOK_QUEUE, "state" => "pending").set(q.pending as f64);
    gauge!(WEBHOOK_QUEUE, "state" => "due").set(q.due as f64);
    gauge!(WEBHOOK_QUEUE, "state" => "dead").set(q.failed as f64);
    let age = q
        .oldest_due
        .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
    gauge!(WEBHOOK_OLDEST_DUE).set(age);
    gauge!(WEBHOOK_CIRCUITS_OPEN).set(q.circuits_open as f64);
    gauge!(STORE_GAUGES_UP).set(1.0);
    Ok(figures)
}
