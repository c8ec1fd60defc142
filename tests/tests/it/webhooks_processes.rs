//! Several dispatcher processes (the real binary, `moltbot-saas webhooks dispatch`) on one
//! database: every event is delivered exactly once in normal operation, and after one process is
//! killed with SIGKILL mid-delivery, its leased deliveries are retried by another once the lease
//! expires: at-least-once, nothing lost. Such a process answers its probes on
//! `SAAS_METRICS_ADDR`, and says it is not ready while its database is away.

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
    spawn_with_env(db.url(), lease_secs, batch, per_endpoint, &[])
}

/// A dispatcher process on the database at `url`, with `extra` settings.
fn spawn_with_env(
    url: &str,
    lease_secs: &str,
    batch: &str,
    per_endpoint: &str,
    extra: &[(&str, &str)],
) -> Dispatch {
    let mut cmd = Command::new(crate::cli::binary());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SAAS_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.envs(extra.iter().copied());
    let child = cmd
        .env("DATABASE_URL", url)
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
                source_id: format!("proc-{id}"),
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

/// A free port on 127.0.0.1 (bound and released: the dispatcher binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET base/path`: status, `Retry-After`, body (`None` while nothing listens).
async fn probe(base: &str, path: &str) -> Option<(u16, Option<String>, String)> {
    let resp = reqwest::get(format!("{base}{path}")).await.ok()?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    Some((status, retry_after, resp.text().await.unwrap()))
}

/// Polls `GET base/path` until it answers `status`; returns the body.
async fn probe_until(base: &str, path: &str, status: u16) -> (Option<String>, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((s, retry_after, body)) = probe(base, path).await
            && s == status
        {
            return (retry_after, serde_json::from_str(&body).unwrap());
        }
        assert!(Instant::now() < deadline, "{path} never answered {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_process_answers_its_probes_and_metrics() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    let (tenant, _) = tenant_with_endpoint(&app, &rx.url).await;
    // On PostgreSQL the process reaches its database through a proxy the test can break.
    let proxy = match crate::db_faults::pg_upstream(&db) {
        Some(upstream) => Some(moltbot_saas_tests::FaultProxy::start(upstream).await),
        None => None,
    };
    let url = match &proxy {
        Some(p) => moltbot_saas_tests::with_hosts(db.url(), &p.addr().to_string(), ""),
        None => db.url().to_owned(),
    };
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _dispatch = spawn_with_env(&url, "30", "10", "4", &[("SAAS_METRICS_ADDR", &listen)]);
    let base = format!("http://{listen}");

    let (_, health) = probe_until(&base, "/health", 200).await;
    assert_eq!(health["status"], "ok");
    let (_, ready) = probe_until(&base, "/ready", 200).await;
    assert_eq!(ready["status"], "ok");
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["database"], db.backend());

    // It delivers, and its metrics count what it sent.
    enqueue(&db, &tenant, 3);
    wait_until("the deliveries are recorded", || pending(&db) == 0).await;
    let (status, _, text) = probe(&base, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let delivered: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("moltbot_saas_webhook_deliveries_total{")
                && l.contains("outcome=\"delivered\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(delivered, 3.0, "deliveries counted in:\n{text}");
    assert!(text.contains("moltbot_saas_db_pool_max_connections"));

    // No API here: anything else is a JSON 404.
    let (status, _, body) = probe(&base, "/tenants").await.unwrap();
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let Some(proxy) = proxy else { return };
    // The database away: not ready (503, Retry-After, naming it), still alive; and what was
    // enqueued meanwhile is delivered once it is back.
    proxy.refuse(true).await;
    proxy.cut_all();
    let (retry_after, ready) = probe_until(&base, "/ready", 503).await;
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(ready["status"], "unavailable");
    assert_eq!(ready["failed"], serde_json::json!(["database"]));
    let (_, health) = probe_until(&base, "/health", 200).await;
    assert_eq!(health["status"], "ok");
    enqueue(&db, &tenant, 2);
    proxy.refuse(false).await;
    let (_, ready) = probe_until(&base, "/ready", 200).await;
    assert_eq!(ready["checks"]["database"], "ok");
    wait_until("the deliveries enqueued meanwhile are recorded", || {
        pending(&db) == 0
    })
    .await;
    assert_eq!(distinct_ids(&rx).len(), 5, "every event delivered");
}
