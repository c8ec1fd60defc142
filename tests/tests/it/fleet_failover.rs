//! Leases and failover of the gateway fleet (issue 25, second part), through real servers on
//! both backends: a fenced gateway that stops sending heartbeats loses its tenants to healthy
//! gateways once its lease and the margin have passed (and a move away from it completes), a
//! dedicated or unfenced gateway never does, two server processes failing over at once place
//! each tenant once, a heartbeat recorded while a sweep acts on its lease is not overtaken by the
//! failover, `config sync` fences its file when it stops, and `GET /tenants/{id}` shows the
//! placement.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};
use moltbot_saas_tests::{TestApp, TestDb, spawn_app, spawn_app_with, test_settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_service::fleet::leases;
use tenant_store::AnyConnection;
use tenant_store::audit::AuditContext;
use tenant_store::gateways::{self as store, HeartbeatRecord};

use crate::config_sync::command;
use crate::fleet::{Gw, accounts, gateway_of, placement};
use crate::serve_process::{Secrets, ServeProcess, call};

const DEFAULT: &str = "00000000-0000-0000-0000-000000000000";
/// The shortest lease the settings allow, and a short margin: a lease expires after 6 s.
const LEASE_SECS: u64 = 5;
const MARGIN_SECS: u64 = 1;

/// A tenant with a Telegram channel: its id and account id.
async fn tenant_with_account(app: &TestApp, name: &str) -> (String, String) {
    let t = app.create_tenant(name).await;
    let id = t["id"].as_str().unwrap().to_owned();
    crate::fleet::add_telegram(app, &id).await;
    (id, t["accountId"].as_str().unwrap().to_owned())
}

async fn heartbeat(app: &TestApp, gw: &Gw, fencing: bool) {
    let r = app
        .request_as(
            Some(&gw.token),
            Method::POST,
            "/gateway/heartbeat",
            Some(&json!({"etag": "\"none\"", "fencing": fencing})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// The accounts of a gateway's document, as an operator reads it.
async fn served(app: &TestApp, gw: &str) -> Vec<String> {
    let r = app.get(&format!("/config?gateway={gw}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    accounts(&r.body)
}

fn fleet_settings(db: &TestDb, failover: bool) -> tenant_server::settings::Settings {
    let mut settings = test_settings(db);
    settings.fleet.lease = Duration::from_secs(LEASE_SECS);
    settings.fleet.margin = Duration::from_secs(MARGIN_SECS);
    settings.fleet.failover = failover;
    settings
}

/// The accounts in a config file (none while it is missing or unreadable).
fn file_accounts(file: &std::path::Path) -> Vec<String> {
    std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map(|doc| accounts(&doc))
        .unwrap_or_default()
}

/// Polls `done` every 100 ms until it holds (the test fails after 40 s).
async fn wait_until(what: &str, done: &dyn Fn() -> bool) {
    let since = Instant::now();
    while !done() {
        assert!(
            since.elapsed() < Duration::from_secs(40),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One round of waiting for the lease sweep: `healthy` send their heartbeats, then half a
/// second passes (the test fails 40 s after `since`).
async fn tick(app: &TestApp, healthy: &[&Gw], since: Instant) {
    for gw in healthy {
        heartbeat(app, gw, true).await;
    }
    assert!(
        since.elapsed() < Duration::from_secs(40),
        "the lease sweep never acted"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn audit_actions(app: &TestApp, tenant: &str) -> Vec<(String, Value)> {
    let r = app.get(&format!("/tenants/{tenant}/audit")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["details"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_silent_fenced_gateway_fails_over_and_a_move_away_from_it_completes() {
    let db = TestDb::new();
    let app = spawn_app_with(fleet_settings(&db, true)).await;
    crate::fleet::close_default(&app).await;
    let silent = gateway_of(&app, "a-silent", "shared", 5).await;
    let (stays, stays_account) = tenant_with_account(&app, "Stays").await;
    let (moves, moves_account) = tenant_with_account(&app, "Moves").await;
    let healthy = gateway_of(&app, "b-healthy", "shared", 5).await;
    // Both on a-silent, which declares fencing once and then goes silent.
    assert_eq!(
        placement(&app, &stays).await["gatewayId"],
        silent.id.as_str()
    );
    heartbeat(&app, &silent, true).await;
    heartbeat(&app, &healthy, true).await;
    // `GET /tenants/{id}` shows where it is (operators).
    let t = app.get(&format!("/tenants/{stays}")).await;
    assert_eq!(
        t.body["placement"],
        json!({"gatewayId": silent.id, "state": "placed", "dedicated": false}),
        "{}",
        t.text
    );
    let r = app
        .post(
            &format!("/tenants/{moves}/placement"),
            &json!({"gatewayId": healthy.id}),
        )
        .await;
    assert_eq!(r.body["state"], "moving", "{}", r.text);
    assert_eq!(
        app.get(&format!("/tenants/{moves}")).await.body["placement"]["state"],
        "moving"
    );

    // a-silent never acknowledges; after its lease and the margin both end up on b-healthy,
    // and at no poll is an account in both documents. The two reads are not one snapshot, so
    // b-healthy's comes first: an account only ever goes from a-silent to b-healthy, so it is
    // in both reads only if it was in both documents at once (read the other way round, a
    // sweep committing between the reads shows an account in both).
    let since = Instant::now();
    loop {
        tick(&app, &[&healthy], since).await;
        let b = served(&app, &healthy.id).await;
        let a = served(&app, &silent.id).await;
        assert!(
            !a.iter().any(|acc| b.contains(acc)),
            "an account in two documents: {a:?} {b:?}"
        );
        if b.contains(&stays_account) && b.contains(&moves_account) {
            break;
        }
    }
    for id in [&stays, &moves] {
        let p = placement(&app, id).await;
        assert_eq!(p["state"], "placed", "{p}");
        assert_eq!(p["gatewayId"], healthy.id.as_str(), "{p}");
    }
    assert!(served(&app, &silent.id).await.is_empty());
    let g = app.get(&format!("/gateways/{}", silent.id)).await;
    assert_eq!(g.body["health"], "down", "{}", g.text);
    assert_eq!(g.body["fencing"], true, "{}", g.text);
    assert_eq!(g.body["tenants"], 0, "{}", g.text);
    // Audited, with the reason.
    let failed_over = audit_actions(&app, &stays).await;
    assert!(
        failed_over
            .iter()
            .any(|(a, d)| a == "tenant.failed_over" && d["reason"] == "lease_expired"),
        "{failed_over:?}"
    );
    let moved = audit_actions(&app, &moves).await;
    assert!(
        moved
            .iter()
            .any(|(a, d)| a == "tenant.moved" && d["reason"] == "lease_expired"),
        "{moved:?}"
    );
    // Down now: no move or pin to it.
    app.post(
        &format!("/tenants/{stays}/placement"),
        &json!({"gatewayId": silent.id}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "gateway_down");
    // Its heartbeat brings it back: healthy again, and empty until placement gives it tenants.
    heartbeat(&app, &silent, true).await;
    let g = app.get(&format!("/gateways/{}", silent.id)).await;
    assert_eq!(g.body["health"], "up", "{}", g.text);
    crate::fleet_loads::exact(
        &db,
        "a silent fenced gateway fails over and a move away from it completes",
    );
}

#[tokio::test]
async fn dedicated_and_unfenced_gateways_are_never_failed_over() {
    let db = TestDb::new();
    let app = spawn_app_with(fleet_settings(&db, true)).await;
    crate::fleet::close_default(&app).await;
    let gone = gateway_of(&app, "nf-gone", "shared", 1).await;
    let (on_gone, _) = tenant_with_account(&app, "On Gone").await;
    let plain = gateway_of(&app, "nf-plain", "shared", 1).await;
    let (on_plain, _) = tenant_with_account(&app, "On Plain").await;
    let cell = gateway_of(&app, "nf-cell", "dedicated", 1).await;
    let (in_cell, _) = tenant_with_account(&app, "In Cell").await;
    let r = app
        .post(
            &format!("/tenants/{in_cell}/placement"),
            &json!({"gatewayId": cell.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let spare = gateway_of(&app, "nf-spare", "shared", 10).await;
    let cell_spare = gateway_of(&app, "nf-cell-spare", "dedicated", 1).await;
    assert_eq!(
        placement(&app, &on_gone).await["gatewayId"],
        gone.id.as_str()
    );
    assert_eq!(
        placement(&app, &on_plain).await["gatewayId"],
        plain.id.as_str()
    );
    // gone and the cell fence; plain's heartbeats do not (a poller that may still serve). The
    // cell and plain first: when gone's lease has expired, theirs have too.
    heartbeat(&app, &cell, true).await;
    heartbeat(&app, &plain, false).await;
    heartbeat(&app, &gone, true).await;
    let since = Instant::now();
    while placement(&app, &on_gone).await["gatewayId"] != spare.id.as_str() {
        tick(&app, &[&spare, &cell_spare], since).await;
    }
    // The sweep acted on gone; the cell's and plain's tenants stay where they are.
    assert_eq!(
        placement(&app, &in_cell).await["gatewayId"],
        cell.id.as_str()
    );
    assert_eq!(
        placement(&app, &on_plain).await["gatewayId"],
        plain.id.as_str()
    );
    let g = app.get(&format!("/gateways/{}", plain.id)).await;
    assert_eq!(
        (g.body["health"].as_str(), g.body["fencing"].as_bool()),
        (Some("down"), Some(false)),
        "{}",
        g.text
    );
    // The operator sees the stranded cell in the metrics. The sweep sets the gauge after its
    // transaction commits, so the failover may be visible a moment before it: wait for it.
    let stranded = |metrics: &str, gateway: &str| {
        crate::monitoring::value(
            metrics,
            "moltbot_saas_gateway_stranded_tenants",
            &[("gateway", gateway)],
        )
    };
    let metrics = loop {
        let metrics = app
            .request_as(Some(&app.operator_token), Method::GET, "/metrics", None)
            .await;
        if stranded(&metrics.text, "nf-cell") == 1.0 {
            break metrics.text;
        }
        assert!(
            since.elapsed() < Duration::from_secs(40),
            "the stranded cell never shows: {}",
            metrics.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        stranded(&metrics, "nf-plain"),
        0.0,
        "not expired: it does not fence"
    );
    crate::fleet_loads::exact(&db, "dedicated and unfenced gateways are never failed over");
}

#[tokio::test]
async fn without_failover_only_moves_away_from_a_silent_gateway_complete() {
    let db = TestDb::new();
    let app = spawn_app_with(fleet_settings(&db, false)).await;
    crate::fleet::close_default(&app).await;
    let silent = gateway_of(&app, "off-a", "shared", 5).await;
    let (stays, _) = tenant_with_account(&app, "Stays Put").await;
    let (moves, _) = tenant_with_account(&app, "Moves On").await;
    let healthy = gateway_of(&app, "off-b", "shared", 5).await;
    heartbeat(&app, &silent, true).await;
    heartbeat(&app, &healthy, true).await;
    let r = app
        .post(
            &format!("/tenants/{moves}/placement"),
            &json!({"gatewayId": healthy.id}),
        )
        .await;
    assert_eq!(r.body["state"], "moving", "{}", r.text);
    let since = Instant::now();
    while placement(&app, &moves).await["state"] != "placed" {
        tick(&app, &[&healthy], since).await;
    }
    assert_eq!(
        placement(&app, &moves).await["gatewayId"],
        healthy.id.as_str()
    );
    assert_eq!(
        placement(&app, &stays).await["gatewayId"],
        silent.id.as_str()
    );
    crate::fleet_loads::exact(
        &db,
        "without failover only moves away from a silent gateway complete",
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Records a heartbeat of `gateway` at `at`, declaring fencing.
fn beat_at(conn: &mut AnyConnection, gateway: &str, at: chrono::DateTime<chrono::Utc>) {
    let record = HeartbeatRecord {
        etag: None,
        revision: None,
        fencing: true,
    };
    store::record_heartbeat(conn, &gateway.parse().unwrap(), record, at).unwrap();
}

/// A heartbeat that lands while a sweep is acting on its gateway's expired lease (after the
/// sweep read the leases, before it commits) must not be overtaken: the sweep waits for it and
/// sees the lease renewed. Otherwise the gateway's sync, renewed, reads the placements from
/// before the sweep's commit and serves the tenants the sweep then fails over (PostgreSQL: a
/// heartbeat takes no fleet lock; SQLite's single writer orders them anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_during_a_sweep_is_not_overtaken_by_its_failover() {
    let db = TestDb::new();
    if db.backend() != "postgres" {
        eprintln!("skipped: needs PostgreSQL (set TEST_DATABASE_URL)");
        return;
    }
    // The server's own sweep never sees these leases expired: the one below does.
    let mut settings = test_settings(&db);
    settings.fleet.lease = Duration::from_secs(3600);
    let app = spawn_app_with(settings).await;
    crate::fleet::close_default(&app).await;
    let down = gateway_of(&app, "race-down", "shared", 5).await;
    let (tenant, _) = tenant_with_account(&app, "Renewed In Time").await;
    let up = gateway_of(&app, "race-up", "shared", 5).await;
    let sweep_cfg = tenant_service::fleet::FleetConfig {
        lease: Duration::from_secs(LEASE_SECS),
        margin: Duration::from_secs(MARGIN_SECS),
        failover: true,
        dedicated_plans: Vec::new(),
    };
    let url = db.url().to_owned();
    let connect = move || {
        tenant_store::DatabaseUrl::parse(&url)
            .unwrap()
            .connect()
            .unwrap()
    };
    let (down_id, up_id) = (down.id.clone(), up.id.clone());
    let report = tokio::task::spawn_blocking(move || {
        let (mut sweeper, mut beater, mut watcher) = (connect(), connect(), connect());
        let now = tenant_core::now();
        beat_at(&mut beater, &up_id, now);
        beat_at(&mut beater, &down_id, now - chrono::Duration::minutes(2));
        let pid = diesel::sql_query("SELECT pg_backend_pid()::bigint AS n")
            .get_result::<Count>(&mut sweeper)
            .unwrap()
            .n;
        // The heartbeat, uncommitted; the sweep starts from the expired lease.
        beater
            .transaction(|b| {
                beat_at(b, &down_id, tenant_core::now());
                let sweep = std::thread::spawn(move || {
                    let ctx = AuditContext {
                        actor_type: "system".into(),
                        ..AuditContext::default()
                    };
                    leases::sweep(&mut sweeper, &ctx, &sweep_cfg, tenant_core::now()).unwrap()
                });
                // Commit once the sweep waits on a lock (or, without one, has finished).
                let waiting = format!(
                    "SELECT count(*) AS n FROM pg_stat_activity \
                     WHERE pid = {pid} AND wait_event_type = 'Lock'"
                );
                let since = Instant::now();
                while !sweep.is_finished()
                    && diesel::sql_query(&waiting)
                        .get_result::<Count>(&mut watcher)
                        .unwrap()
                        .n
                        == 0
                {
                    assert!(
                        since.elapsed() < Duration::from_secs(40),
                        "the sweep neither waited nor finished"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok::<_, diesel::result::Error>(sweep)
            })
            .unwrap()
            .join()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!((report.failed_over, report.completed), (0, 0), "{report:?}");
    let p = placement(&app, &tenant).await;
    assert_eq!(p["gatewayId"], down.id.as_str(), "{p}");
    assert_eq!(p["state"], "placed", "{p}");
    assert!(
        !audit_actions(&app, &tenant)
            .await
            .iter()
            .any(|(a, _)| a == "tenant.failed_over")
    );
    crate::fleet_loads::exact(
        &db,
        "a heartbeat during a sweep is not overtaken by its failover",
    );
}

/// A server process (the real binary), killed when dropped, and how to call it.
struct Server {
    process: ServeProcess,
    admin: String,
    client: reqwest::Client,
}

impl Server {
    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        call(&self.client, &self.process, token, method, path, body).await
    }

    async fn op(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let (status, body) = self.call(&self.admin, method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn gateway(&self, name: &str, capacity: i64) -> Gw {
        let body = json!({"name": name, "kind": "shared", "capacity": capacity});
        let r = self.op(Method::POST, "/gateways", Some(&body)).await;
        Gw {
            id: r["id"].as_str().unwrap().to_owned(),
            token: r["token"].as_str().unwrap().to_owned(),
        }
    }

    async fn heartbeat(&self, gw: &Gw) {
        let body = json!({"etag": "\"none\"", "fencing": true});
        let (status, r) = self
            .call(&gw.token, Method::POST, "/gateway/heartbeat", Some(&body))
            .await;
        assert_eq!(status, StatusCode::OK, "{r}");
    }
}

/// A `serve` process on `db` with the fleet's short lease and failover on, sharing `admin` (and
/// the secrets derived from it) with the other.
async fn spawn_server(db: &TestDb, admin: &str, data_dir: &std::path::Path) -> Server {
    let (gateway, api_key_secret, jwt) = (
        format!("{admin}-gateway"),
        format!("{admin}-api-key-secret"),
        format!("{admin}-jwt-secret"),
    );
    let secrets = Secrets {
        admin,
        gateway: &gateway,
        api_key_secret: &api_key_secret,
        jwt: &jwt,
    };
    let (lease, margin) = (LEASE_SECS.to_string(), MARGIN_SECS.to_string());
    let env = [
        ("SAAS_GATEWAY_LEASE_SECS", lease.as_str()),
        ("SAAS_GATEWAY_LEASE_MARGIN_SECS", margin.as_str()),
        ("SAAS_GATEWAY_FAILOVER", "on"),
    ];
    let (process, _) = ServeProcess::start(db, &secrets, data_dir, &env).await;
    Server {
        process,
        admin: admin.to_owned(),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

#[tokio::test]
async fn two_server_processes_failing_over_at_once_place_each_tenant_once() {
    let db = TestDb::new();
    let dir = crate::config_sync::Scratch::new();
    let admin = format!("test-admin-token-{}", uuid::Uuid::new_v4().simple());
    let data = dir.path("data");
    std::fs::create_dir_all(&data).unwrap();
    let one = spawn_server(&db, &admin, &data).await;
    let two = spawn_server(&db, &admin, &data).await;
    one.op(
        Method::PATCH,
        &format!("/gateways/{DEFAULT}"),
        Some(&json!({"capacity": 0})),
    )
    .await;
    let gone = one.gateway("pp-gone", 6).await;
    let mut tenants = Vec::new();
    for i in 0..6 {
        let t = two
            .op(
                Method::POST,
                "/tenants",
                Some(&json!({"name": format!("Replica {i}")})),
            )
            .await;
        tenants.push(t["id"].as_str().unwrap().to_owned());
    }
    let h1 = one.gateway("pp-h1", 3).await;
    let h2 = two.gateway("pp-h2", 3).await;
    one.heartbeat(&gone).await;
    // Both processes sweep every second; the healthy gateways beat through both.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        one.heartbeat(&h1).await;
        two.heartbeat(&h2).await;
        let g = two
            .op(Method::GET, &format!("/gateways/{}", gone.id), None)
            .await;
        if g["tenants"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no failover: {g}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Each tenant failed over exactly once, and no gateway holds more than its capacity.
    let mut on = std::collections::HashMap::new();
    for id in &tenants {
        let p = one
            .op(Method::GET, &format!("/tenants/{id}/placement"), None)
            .await;
        assert_eq!(p["state"], "placed", "{p}");
        *on.entry(p["gatewayId"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        let audit = two
            .op(Method::GET, &format!("/tenants/{id}/audit"), None)
            .await;
        let n = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "tenant.failed_over")
            .count();
        assert_eq!(n, 1, "{audit}");
    }
    assert_eq!(on.get(&h1.id), Some(&3), "{on:?}");
    assert_eq!(on.get(&h2.id), Some(&3), "{on:?}");
    crate::fleet_loads::exact(
        &db,
        "two server processes failing over at once place each tenant once",
    );
}

// Several threads: the command runs while the test waits on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_sync_fences_its_file_when_it_stops() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let a = gateway_of(&app, "fence-a", "shared", 5).await;
    let (_, account) = tenant_with_account(&app, "Fenced").await;
    let dir = crate::config_sync::Scratch::new();
    let file = dir.path("a.json");
    let mut child = command(&db)
        .args(["config", "sync", "--gateway", "fence-a", "--interval", "1"])
        .arg("--out")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the sync writes the file", &|| {
        file_accounts(&file).contains(&account)
    })
    .await;
    // The running sync renews the lease, declaring fencing.
    let g = app.get(&format!("/gateways/{}", a.id)).await;
    assert_eq!(g.body["health"], "up", "{}", g.text);
    assert_eq!(g.body["fencing"], true, "{}", g.text);
    // Stopped: it writes a document without tenants before it exits.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(accounts(&doc).is_empty(), "{doc}");
    assert!(
        doc["agents"]["entries"]
            .as_object()
            .is_none_or(|m| !m.keys().any(|k| k.starts_with("agent-"))),
        "{doc}"
    );
}

// Several threads: the command runs while the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_sync_over_http_acknowledges_moves_and_fences_when_it_stops() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let a = gateway_of(&app, "http-a", "shared", 5).await;
    let (id, account) = tenant_with_account(&app, "Over HTTP").await;
    let b = gateway_of(&app, "http-b", "shared", 5).await;
    // The fenced document: the same settings, no tenant, no tag.
    let fenced = app
        .request_as(Some(&a.token), Method::GET, "/config?fenced=true", None)
        .await;
    assert_eq!(fenced.status, StatusCode::OK, "{}", fenced.text);
    assert!(accounts(&fenced.body).is_empty(), "{}", fenced.text);
    assert!(fenced.headers.get("etag").is_none());

    let dir = crate::config_sync::Scratch::new();
    let file = dir.path("a.json");
    let mut child = command(&db)
        .env("SAAS_SYNC_TOKEN", &a.token)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .args(["config", "sync", "--url", &app.address, "--interval", "1"])
        .arg("--out")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the sync writes the file", &|| {
        file_accounts(&file).contains(&account)
    })
    .await;
    let g = app.get(&format!("/gateways/{}", a.id)).await;
    assert_eq!(g.body["health"], "up", "{}", g.text);
    assert_eq!(g.body["fencing"], true, "{}", g.text);
    // A move away from a: its next pass swaps in a file without the tenant and its heartbeat
    // acknowledges it.
    let r = app
        .post(
            &format!("/tenants/{id}/placement"),
            &json!({"gatewayId": b.id}),
        )
        .await;
    assert_eq!(r.body["state"], "moving", "{}", r.text);
    let since = Instant::now();
    while placement(&app, &id).await["state"] != "placed" {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(placement(&app, &id).await["gatewayId"], b.id.as_str());
    assert!(!file_accounts(&file).contains(&account));
    // Stopped: the fenced document, then exit 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let served: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(served, fenced.body);
}

// Several threads: the command runs while the test cuts its database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_sync_cut_off_from_the_database_fences_after_a_lease_and_recovers() {
    let db = TestDb::new();
    let Some(upstream) = crate::db_faults::pg_upstream(&db) else {
        return;
    };
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    gateway_of(&app, "cut-a", "shared", 5).await;
    let (_, account) = tenant_with_account(&app, "Cut Off").await;
    let proxy = moltbot_saas_tests::FaultProxy::start(upstream).await;
    let dir = crate::config_sync::Scratch::new();
    let file = dir.path("a.json");
    let mut child = command(&db)
        .env(
            "DATABASE_URL",
            moltbot_saas_tests::with_hosts(db.url(), &proxy.addr().to_string(), ""),
        )
        .env("SAAS_DB_RECONNECT_MAX_MS", "100")
        .env("SAAS_GATEWAY_LEASE_SECS", LEASE_SECS.to_string())
        .args(["config", "sync", "--gateway", "cut-a", "--interval", "1"])
        .arg("--out")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let holds = || file_accounts(&file).contains(&account);
    wait_until("the first sync", &holds).await;
    // Cut off: within about a lease the file holds no tenant (the control plane waits the
    // margin longer before it acts).
    proxy.refuse(true).await;
    proxy.cut_all();
    wait_until("the fence", &|| !holds()).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the sync keeps running"
    );
    // Back: it renews and serves its tenants again.
    proxy.refuse(false).await;
    wait_until("serving again", &holds).await;
    let _ = child.kill();
    let _ = child.wait();
}
