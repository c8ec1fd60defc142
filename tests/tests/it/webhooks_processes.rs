//! Several dispatcher processes (the real binary, `moltbot-saas webhooks dispatch`) on one
//! database: every event is delivered exactly once in normal operation, and after one process is
//! killed with SIGKILL mid-delivery, its leased deliveries are retried by another once the lease
//! expires: at-least-once, nothing lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use moltbot_saas_tests::{Reply, TestDb, WebhookReceiver};
use serde_json::Value;
use tenant_core::TenantId;
use tenant_store::events::{self, NewEvent};
use uuid::Uuid;

use crate::webhooks_support::{app, tenant_with_endpoint};

/// A dispatcher process, killed (SIGKILL) when dropped.
struct Dispatch(Child);

impl Drop for Dispatch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_dispatcher(db: &TestDb, lease_secs: &str, batch: &str) -> Dispatch {
    spawn_dispatcher_with(db, lease_secs, batch, "4")
}

/// A dispatcher process sending at most `per_endpoint` deliveries of one endpoint at once.
fn spawn_dispatcher_with(
    db: &TestDb,
    lease_secs: &str,
    batch: &str,
    per_endpoint: &str,
) -> Dispatch {
    let mut cmd = Command::new(crate::cli::binary());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SAAS_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    let child = cmd
        .env("DATABASE_URL", db.url())
        // The same key ring as the API, to open the endpoints' sealed signing secrets.
        .env(
            "SAAS_ENCRYPTION_KEYS",
            moltbot_saas_tests::TEST_ENCRYPTION_KEYS,
        )
        .env("SAAS_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32")
        .env("SAAS_WEBHOOK_POLL_INTERVAL_MS", "50")
        .env("SAAS_WEBHOOK_LEASE_SECS", lease_secs)
        .env("SAAS_WEBHOOK_BATCH_SIZE", batch)
        .env("SAAS_WEBHOOK_WORKERS", "2")
        .env("SAAS_WEBHOOK_ENDPOINT_CONCURRENCY", per_endpoint)
        .env("RUST_LOG", "warn")
        .args(["webhooks", "dispatch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn moltbot-saas webhooks dispatch");
    Dispatch(child)
}

/// Enqueues `n` events for the tenant straight through the store (one delivery each).
fn enqueue(db: &TestDb, tenant: &Value, n: usize) {
    let tenant_id: TenantId = tenant["id"].as_str().unwrap().parse().unwrap();
    let mut conn = db.connect();
    for i in 0..n {
        let id = Uuid::new_v4();
        let payload = serde_json::json!({"type": "message.received", "data": {"n": i}});
        let r = events::ingest(
            &mut conn,
            &tenant_id,
            &NewEvent {
                id,
                source: "gateway".into(),
                source_id: format!("proc-{i}"),
                event_type: "message.received".into(),
                payload: payload.to_string(),
            },
            None,
            Utc::now(),
        )
        .unwrap();
        assert!(matches!(
            r,
            events::Ingested::Accepted { deliveries: 1, .. }
        ));
    }
}

fn pending(db: &TestDb) -> i64 {
    let mut conn = db.connect();
    tenant_store::deliveries::queue_depth(&mut conn, Utc::now())
        .unwrap()
        .pending
}

/// Waits (polling, up to a generous deadline) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn distinct_ids(rx: &WebhookReceiver) -> HashSet<String> {
    rx.requests()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_deliver_each_event_exactly_once() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    let (tenant, _) = tenant_with_endpoint(&app, &rx.url).await;
    const N: usize = 300;
    enqueue(&db, &tenant, N);
    let _a = spawn_dispatcher(&db, "30", "10");
    let _b = spawn_dispatcher(&db, "30", "10");
    wait_until("every delivery is recorded", || pending(&db) == 0).await;
    assert_eq!(distinct_ids(&rx).len(), N, "every event delivered");
    assert_eq!(rx.count(), N, "and none twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_loses_nothing() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    // The first process's requests hang, so it is killed mid-delivery.
    rx.set_default(Reply::status(200).delayed(Duration::from_secs(30)));
    let (tenant, _) = tenant_with_endpoint(&app, &rx.url).await;
    const N: usize = 20;
    enqueue(&db, &tenant, N);
    // Every delivery in flight at once (the per-endpoint cap raised to N), so all are lost with
    // the process.
    let mut first = spawn_dispatcher_with(&db, "2", "100", "20");
    wait_until("the first process has requests in flight", || {
        rx.count() >= N
    })
    .await;
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    rx.set_default(Reply::status(200));
    let _second = spawn_dispatcher(&db, "2", "100");
    wait_until("every delivery is recorded", || pending(&db) == 0).await;
    assert_eq!(distinct_ids(&rx).len(), N, "every event delivered");
    assert!(
        rx.count() >= 2 * N,
        "the killed process's deliveries were sent again"
    );
}
