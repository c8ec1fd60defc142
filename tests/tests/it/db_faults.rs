//! The database breaking under the server: connections cut (a restart, a failover,
//! `pg_terminate_backend`), the database away, a second host taking over, a disk that fills, a
//! file that turns read-only. Requests are answered 503/507 with `Retry-After`, never 500;
//! broken connections are never reused; everything recovers by itself.
//!
//! PostgreSQL faults are made by a [`FaultProxy`] in front of the test's own database, so the
//! shared cluster is never stopped and none of its sessions is terminated (the proxy only closes
//! its own client connections). The stop-the-cluster test is `faults.rs`, on a cluster of its
//! own. SQLite faults use a small tmpfs and an immutable file when this process may make them
//! (root); otherwise those tests say why they skipped.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use moltbot_saas_tests::{
    FaultProxy, TestApp, TestDb, TestResponse, capture_logs, captured_logs, pg_hosts,
    spawn_app_with, test_settings, with_hosts,
};
use reqwest::StatusCode;
use serde_json::json;
use tenant_store::{Database, DatabaseFault, DatabaseUrl, PoolConfig, StoreError};

/// The PostgreSQL server behind a test database, when the suite runs on PostgreSQL over TCP.
pub(crate) fn pg_upstream(db: &TestDb) -> Option<SocketAddr> {
    if db.backend() != "postgres" {
        eprintln!("skipped: needs PostgreSQL (set TEST_DATABASE_URL)");
        return None;
    }
    let host = pg_hosts(db.url())?.split(',').next()?.to_owned();
    let host = if host.contains(':') {
        host
    } else {
        format!("{host}:5432")
    };
    let addr = host.to_socket_addrs().ok()?.next();
    if addr.is_none() {
        eprintln!("skipped: TEST_DATABASE_URL names no TCP host");
    }
    addr
}

/// Pool settings for a store-level test (whose logs are captured like a server's).
fn pool(max_size: u32) -> PoolConfig {
    capture_logs();
    PoolConfig {
        max_size,
        connection_timeout: Duration::from_secs(30),
        reconnect_max: Duration::from_millis(100),
        ..PoolConfig::default()
    }
}

/// One small query on a pooled connection.
async fn query(db: &Database) -> Result<i64, StoreError> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get()?;
        tenant_store::config_revision::current(&mut conn)
    })
    .await
    .unwrap()
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts a database fault's answer: its status and code, `Retry-After`, the error shape.
#[track_caller]
fn assert_fault(r: &TestResponse, status: StatusCode, code: &str) {
    r.assert_error(status, code);
    let retry = r.headers.get("retry-after").and_then(|v| v.to_str().ok());
    assert!(
        retry.is_some_and(|v| v.parse::<u32>().is_ok_and(|s| s >= 1)),
        "Retry-After in seconds: {retry:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_connection_is_dropped_and_its_siblings_are_not_reused() {
    let db = TestDb::new();
    let Some(upstream) = pg_upstream(&db) else {
        return;
    };
    let proxy = FaultProxy::start(upstream).await;
    let url = DatabaseUrl::parse(&with_hosts(db.url(), &proxy.addr().to_string(), "")).unwrap();
    // A pool that fills itself, so that four connections are open when the proxy cuts them.
    let warm = PoolConfig {
        min_idle: None,
        ..pool(4)
    };
    let store = Database::connect(&url, &warm).unwrap();
    wait_for("the pool is full", async || {
        store.pool_state().idle_connections == 4
    })
    .await;
    query(&store).await.unwrap();

    proxy.cut_all();
    let mut failed = Vec::new();
    for _ in 0..8 {
        if let Err(e) = query(&store).await {
            failed.push(e);
        }
    }
    // One request meets a dead connection; the three others opened with it are dropped unused.
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0].fault(),
        Some(DatabaseFault::Unavailable),
        "{}",
        failed[0]
    );
    assert!(store.is_available(), "the database itself never went away");
    assert!(proxy.accepted() >= 6, "new connections were opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_away_requests_fail_at_once_and_it_recovers() {
    let db = TestDb::new();
    let Some(upstream) = pg_upstream(&db) else {
        return;
    };
    let proxy = FaultProxy::start(upstream).await;
    let url = DatabaseUrl::parse(&with_hosts(db.url(), &proxy.addr().to_string(), "")).unwrap();
    let store = Database::connect(&url, &pool(4)).unwrap();
    query(&store).await.unwrap();

    proxy.refuse(true).await;
    proxy.cut_all();
    wait_for("the circuit opens", async || {
        let failed = query(&store).await.is_err();
        failed && !store.is_available()
    })
    .await;
    // Known to be away: no wait for a connection (the pool would wait 30 s).
    let started = Instant::now();
    let e = query(&store).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(e.fault(), Some(DatabaseFault::Unavailable), "{e}");

    proxy.refuse(false).await;
    wait_for("the database is back", async || query(&store).await.is_ok()).await;
    assert!(store.is_available());
}

/// A server on `url` whose database gets back within 100 ms of being reachable again.
async fn app_on(db: &TestDb, url: &str) -> TestApp {
    let mut settings = test_settings(db);
    settings.database_url = DatabaseUrl::parse(url).unwrap();
    settings.db_reconnect_max = Duration::from_millis(100);
    spawn_app_with(settings).await
}

async fn create(app: &TestApp, name: &str) -> TestResponse {
    app.post("/tenants", &json!({ "name": name })).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_an_outage_is_503_with_retry_after_never_500_and_heals() {
    let db = TestDb::new();
    let Some(upstream) = pg_upstream(&db) else {
        return;
    };
    let proxy = FaultProxy::start(upstream).await;
    let app = app_on(&db, &with_hosts(db.url(), &proxy.addr().to_string(), "")).await;
    let mut created = vec![create(&app, "Before").await.body["id"].clone()];

    proxy.refuse(true).await;
    proxy.cut_all();
    let mut refused = 0;
    wait_for("/ready says the database is away", async || {
        let r = create(&app, "During").await;
        match r.status {
            StatusCode::CREATED => created.push(r.body["id"].clone()),
            _ => {
                assert_fault(&r, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
                refused += 1;
            }
        }
        app.get("/ready").await.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let r = app.get("/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.body,
        json!({
            "status": "unavailable",
            "database": "postgres",
            "checks": {"database": "unavailable"},
            "failed": ["database"],
            "rateLimits": {"store": "memory"},
        })
    );
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(app.get("/health").await.status, StatusCode::OK);
    for path in ["/tenants", "/config"] {
        let r = app.get(path).await;
        assert_fault(&r, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
    }
    assert!(refused >= 1);

    proxy.refuse(false).await;
    wait_for("/ready is 200 again", async || {
        app.get("/ready").await.status == StatusCode::OK
    })
    .await;
    let r = create(&app, "After").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    created.push(r.body["id"].clone());
    for id in created {
        let r = app.get(&format!("/tenants/{}", id.as_str().unwrap())).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "an acknowledged create is readable"
        );
    }
    let logs = captured_logs();
    assert!(logs.contains("database unavailable: answering 503 until it is back"));
    assert!(logs.contains("database available again after"));
    app.stop().await;
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_hosts_an_unreachable_first_one_and_the_real_second() {
    let db = TestDb::new();
    let Some(upstream) = pg_upstream(&db) else {
        return;
    };
    let hosts = format!("127.0.0.1:{},{upstream}", closed_port());
    let url = with_hosts(db.url(), &hosts, "target_session_attrs=read-write");
    let app = app_on(&db, &url).await;
    let r = create(&app, "Failover Co").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get(&format!("/tenants/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get("/ready").await.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_first_host_goes_away_the_second_takes_over() {
    let db = TestDb::new();
    let Some(upstream) = pg_upstream(&db) else {
        return;
    };
    let proxy = FaultProxy::start(upstream).await;
    let hosts = format!("{},{upstream}", proxy.addr());
    let app = app_on(
        &db,
        &with_hosts(db.url(), &hosts, "target_session_attrs=read-write"),
    )
    .await;
    assert_eq!(create(&app, "Primary").await.status, StatusCode::CREATED);

    // The first host vanishes: connections move to the second, the service goes on.
    proxy.refuse(true).await;
    proxy.cut_all();
    let through_first = proxy.accepted();
    let mut answers = Vec::new();
    wait_for("creates succeed on the second host", async || {
        let r = create(&app, "Standby").await;
        answers.push(r.status);
        if r.status != StatusCode::CREATED {
            assert_fault(&r, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
        }
        r.status == StatusCode::CREATED
    })
    .await;
    assert!(
        answers.len() <= 3,
        "a failover costs a request or two: {answers:?}"
    );
    assert_eq!(
        proxy.accepted(),
        through_first,
        "nothing went to the first host since"
    );
    assert_eq!(app.get("/ready").await.status, StatusCode::OK);
    app.stop().await;
}

/// A tmpfs of `size` mounted on a new directory, unmounted on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("moltbot-tmpfs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(format!(
                "cannot mount a tmpfs here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0xa5u8; 64 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Settings for a server on the SQLite file `path`, its keys in a directory of their own.
fn sqlite_app_settings(db: &TestDb, path: &Path, data: &Path) -> tenant_server::settings::Settings {
    let mut settings = test_settings(db);
    settings.database_url = DatabaseUrl::Sqlite(path.to_owned());
    settings.data_dir = data.to_owned();
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_507_storage_full_and_writes_resume_when_space_returns() {
    let disk = match SmallDisk::mount("3m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!(
                "skipped: {why}; the mapping of SQLite's 'database or disk is full' to 507 is \
                 tested directly in tenant-store (error.rs) and tenant-server (error.rs)"
            );
            return;
        }
    };
    let db = TestDb::new();
    let data = tempdir();
    let app = spawn_app_with(sqlite_app_settings(&db, &disk.dir.join("saas.db"), &data.0)).await;
    let first = create(&app, "Room").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);

    let filler = disk.fill();
    let mut full = None;
    for n in 0..2000 {
        let r = create(&app, &format!("Filling {n}")).await;
        match r.status {
            StatusCode::CREATED => {}
            StatusCode::INSUFFICIENT_STORAGE => {
                full = Some(r);
                break;
            }
            _ => panic!(
                "a full disk answers 201 or 507, never {}: {}",
                r.status, r.text
            ),
        }
    }
    let full = full.expect("the disk filled up");
    assert_fault(&full, StatusCode::INSUFFICIENT_STORAGE, "storage_full");
    // Reads go on.
    let id = first.body["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/tenants/{id}")).await.status,
        StatusCode::OK
    );

    std::fs::remove_file(filler).unwrap();
    let r = create(&app, "Space again").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/tenants/{id}")).await.status,
        StatusCode::OK
    );
    assert!(captured_logs().contains("its storage is full"));
    app.stop().await;
}

/// A directory of its own, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    let dir = std::env::temp_dir().join(format!("moltbot-faults-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// Clears the immutable attribute on drop, so a failed test leaves a file its cleanup can
/// remove.
struct Immutable<'a>(&'a Path);

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = immutable(self.0, false);
    }
}

/// Sets or clears the immutable attribute (`chattr`), which refuses opening the file for writing
/// even to root; `Err` says why it cannot be used here.
fn immutable(path: &Path, on: bool) -> Result<(), String> {
    let out = Command::new("chattr")
        .arg(if on { "+i" } else { "-i" })
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run chattr: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// One small write on a pooled connection.
async fn write(db: &Database) -> Result<(), StoreError> {
    use diesel::connection::SimpleConnection;
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get()?;
        conn.batch_execute("UPDATE config_revision SET revision = revision + 1 WHERE slot = 0")
            .map_err(StoreError::from)
    })
    .await
    .unwrap()
}

/// A SQLite file that is read-only when the store opens it (a read-only file, directory or file
/// system; here the immutable attribute, which even root cannot write through). Tested at the
/// store: a server does not start on it (SQLite migrates, and seals plaintext rows, on start),
/// and a file cannot turn read-only under a running server's open connections (they keep
/// writing through their open files; a file system with files open for writing cannot be
/// remounted read-only), so the HTTP answer to it is tested directly in tenant-server's
/// `error.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_file_is_refused_as_such_and_writes_resume_when_it_is_writable() {
    let db = TestDb::new();
    if db.backend() != "sqlite" {
        eprintln!("skipped: a SQLite test (runs without TEST_DATABASE_URL)");
        return;
    }
    let path = PathBuf::from(db.url().trim_start_matches("sqlite://"));
    if let Err(why) = immutable(&path, true) {
        eprintln!(
            "skipped: cannot make the file immutable ({why}); SQLite's 'attempt to write a \
             readonly database' is classified in tenant-store's error.rs tests"
        );
        return;
    }
    let _writable_again = Immutable(&path);
    let store = Database::connect(&DatabaseUrl::parse(db.url()).unwrap(), &pool(2)).unwrap();
    query(&store).await.expect("reads go on");
    let e = write(&store).await.unwrap_err();
    assert_eq!(e.fault(), Some(DatabaseFault::ReadOnly), "{e}");
    assert!(matches!(e, StoreError::ReadOnly(_)), "{e:?}");

    immutable(&path, false).unwrap();
    // Each connection that met the read-only file is dropped, and its replacement can write:
    // at most one more refusal per pooled connection.
    let mut refused = 0;
    while let Err(e) = write(&store).await {
        assert_eq!(e.fault(), Some(DatabaseFault::ReadOnly), "{e}");
        refused += 1;
        assert!(refused <= 2, "writes did not resume");
    }
    query(&store).await.unwrap();
    assert!(captured_logs().contains("it is read-only (answering 503)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_dispatcher_waits_out_an_outage_and_delivers_after_it() {
    use crate::webhooks_support::{app, config, send_event, tenant_with_endpoint};
    let db = TestDb::new();
    let Some(upstream) = pg_upstream(&db) else {
        return;
    };
    // The API on the database itself; the dispatcher through the proxy, which the test breaks.
    let app = app(&db).await;
    let receiver = moltbot_saas_tests::WebhookReceiver::start().await;
    let (tenant, _) = tenant_with_endpoint(&app, &receiver.url).await;
    let proxy = FaultProxy::start(upstream).await;
    let url = DatabaseUrl::parse(&with_hosts(db.url(), &proxy.addr().to_string(), "")).unwrap();
    let store = Database::connect(&url, &pool(2)).unwrap();
    let dispatcher = std::sync::Arc::new(
        tenant_webhooks::Dispatcher::new(
            store,
            moltbot_saas_tests::test_keys(),
            config("0s,1s", Duration::from_secs(2), "127.0.0.1/32"),
        )
        .unwrap(),
    );
    let running = tokio::spawn(dispatcher.run());

    proxy.refuse(true).await;
    proxy.cut_all();
    send_event(&app, &tenant, "evt_during_outage").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.count(),
        0,
        "nothing can be claimed while the database is away"
    );

    proxy.refuse(false).await;
    wait_for("the delivery made after the outage", async || {
        receiver.count() >= 1
    })
    .await;
    running.abort();
    receiver.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_sync_waits_out_an_outage_and_syncs_after_it() {
    let db = TestDb::new();
    let Some(upstream) = pg_upstream(&db) else {
        return;
    };
    let app = app_on(&db, db.url()).await;
    let proxy = FaultProxy::start(upstream).await;
    let dir = tempdir();
    let out = dir.0.join("openclaw.json");
    // `config sync --interval 1` as an operator runs it, through the proxy.
    let mut cmd = Command::new(crate::cli::binary());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SAAS_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    let mut sync = cmd
        .env(
            "DATABASE_URL",
            with_hosts(db.url(), &proxy.addr().to_string(), ""),
        )
        .env(
            "SAAS_ENCRYPTION_KEYS",
            moltbot_saas_tests::TEST_ENCRYPTION_KEYS,
        )
        .env("SAAS_DB_RECONNECT_MAX_MS", "100")
        .env("SAAS_LOG_FORMAT", "json")
        .args(["config", "sync", "--interval", "1", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = sync.stderr.take().unwrap();
    std::thread::spawn({
        let log = log.clone();
        move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        }
    });
    let logged = |what: &str| log.lock().unwrap().matches(what).count();
    let mentions = |name: &str| std::fs::read_to_string(&out).is_ok_and(|t| t.contains(name));
    let r = create(&app, "Synced Before").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let before = r.body["agentId"].as_str().unwrap().to_owned();
    wait_for("the first sync", async || mentions(&before)).await;

    proxy.refuse(true).await;
    proxy.cut_all();
    let r = create(&app, "Made During").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let during = r.body["agentId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!mentions(&during), "no sync while the database is away");
    assert!(
        sync.try_wait().unwrap().is_none(),
        "config sync keeps running"
    );

    proxy.refuse(false).await;
    wait_for("config sync catches up", async || mentions(&during)).await;
    wait_for("config sync says it resumed", async || {
        logged("gateway config sync resumed") == 1
    })
    .await;
    let _ = sync.kill();
    let _ = sync.wait();
    assert_eq!(
        logged("gateway config sync paused"),
        1,
        "{}",
        log.lock().unwrap()
    );
    app.stop().await;
}
