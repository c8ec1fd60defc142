//! `config sync --url` against a control plane that stalls: a real TCP listener on 127.0.0.1 in
//! front of a real server that, when told to, accepts connections and never answers. The sync
//! gives up on each request after its `--timeout`, keeps the last good file untouched, retries,
//! and writes the current document again once the server answers.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moltbot_saas_tests::{TestApp, TestDb, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config_sync::{Scratch, command};
use crate::fleet::accounts;

const TELEGRAM_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const OTHER_TELEGRAM_TOKEN: &str = "987654321:ZZyXwvUT9s8r7q6p5o4n3m2l1k0jihgfed";

/// A listener in front of `upstream` that forwards, or (stalled) accepts and never answers.
struct StallProxy {
    addr: SocketAddr,
    stalled: Arc<AtomicBool>,
    /// Connections accepted while stalled.
    stalled_accepts: Arc<AtomicU64>,
    /// How long after being accepted each stalled connection was closed by the client.
    gave_up: Arc<Mutex<Vec<Duration>>>,
    /// Bumped to close every forwarded connection (a pooled keep-alive connection must not
    /// carry on forwarding once the server stalls).
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl StallProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stalled = Arc::new(AtomicBool::new(false));
        let stalled_accepts = Arc::new(AtomicU64::new(0));
        let (cut, cut_rx) = watch::channel(0u64);
        let gave_up: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let (s, n) = (stalled.clone(), stalled_accepts.clone());
        let gave_up_seen = gave_up.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if s.load(Ordering::SeqCst) {
                    n.fetch_add(1, Ordering::SeqCst);
                    // Read what the client sends, never answer, and note when it gives up
                    // (closes the connection): stalled connections stay open until then.
                    let gave_up = gave_up.clone();
                    tokio::spawn(async move {
                        let accepted = Instant::now();
                        let mut buf = [0u8; 4096];
                        while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
                        gave_up.lock().unwrap().push(accepted.elapsed());
                    });
                    continue;
                }
                let mut cut = cut_rx.clone();
                // Only a cut after this connection was accepted closes it.
                cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            stalled,
            stalled_accepts,
            gave_up: gave_up_seen,
            cut,
            task,
        }
    }

    fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
        if on {
            self.cut.send_modify(|n| *n += 1);
        }
    }

    fn stalled_accepts(&self) -> u64 {
        self.stalled_accepts.load(Ordering::SeqCst)
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A tenant with a Telegram channel (`token`): its account id.
async fn tenant_with_account(app: &TestApp, name: &str, token: &str) -> String {
    let t = app.create_tenant(name).await;
    let id = t["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram", "credentials": {"botToken": token}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    t["accountId"].as_str().unwrap().to_owned()
}

fn file_accounts(file: &Path) -> Vec<String> {
    std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map(|doc| accounts(&doc))
        .unwrap_or_default()
}

/// One version of a file: a rewrite (an atomic rename of a new file) changes the inode.
fn version(file: &Path) -> (u64, i64, i64) {
    let m = std::fs::metadata(file).unwrap();
    (m.ino(), m.mtime(), m.mtime_nsec())
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

// Several threads: the command runs while the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_sync_over_http_times_out_on_a_stalled_control_plane_and_recovers() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let r = app
        .post(
            "/gateways",
            &json!({"name": "stall-a", "kind": "shared", "capacity": 5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let first = tenant_with_account(&app, "Before Stall", TELEGRAM_TOKEN).await;
    let upstream: SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let proxy = StallProxy::start(upstream).await;

    let dir = Scratch::new();
    let file = dir.path("a.json");
    let log = dir.path("sync.log");
    let mut child = command(&db)
        .env("SAAS_SYNC_TOKEN", &token)
        .env("SAAS_SYNC_TIMEOUT_SECS", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .args(["config", "sync", "--interval", "1", "--url"])
        .arg(format!("http://{}", proxy.addr))
        .arg("--out")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until("the first sync", &|| file_accounts(&file).contains(&first)).await;
    let good = std::fs::read(&file).unwrap();
    let good_version = version(&file);

    // The control plane stalls; meanwhile the gateway's document changes.
    proxy.stall(true);
    let second = tenant_with_account(&app, "During Stall", OTHER_TELEGRAM_TOKEN).await;
    // Each pass gives up after its timeout and the next one is tried: three connections
    // accepted and never answered mean two retries after the first timeout.
    wait_until("retries against the stalled server", &|| {
        proxy.stalled_accepts() >= 3 && !proxy.gave_up.lock().unwrap().is_empty()
    })
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the sync keeps running through the stall"
    );
    assert_eq!(version(&file), good_version, "the file was rewritten");
    assert_eq!(std::fs::read(&file).unwrap(), good, "the file changed");
    assert!(!file_accounts(&file).contains(&second));
    // The sync gave up on stalled requests itself after its 1 s timeout (the default, 10 s,
    // would not fit; the bound is loose for a loaded machine), and said it paused.
    let gave_up = proxy.gave_up.lock().unwrap().clone();
    assert!(
        !gave_up.is_empty(),
        "the sync never gave up on a stalled request"
    );
    assert!(
        gave_up
            .iter()
            .all(|d| *d >= Duration::from_millis(900) && *d < Duration::from_secs(9)),
        "stalled requests abandoned after {gave_up:?}"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("gateway config sync paused"),
        "the log does not say the sync paused: {logged}"
    );

    // The server answers again: the next pass writes the current document.
    proxy.stall(false);
    let since = Instant::now();
    loop {
        let now = file_accounts(&file);
        if now.contains(&first) && now.contains(&second) {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(40),
            "the sync never recovered: {now:?}; its log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(version(&file), good_version);
    // Said once the pass is over: after the file is written comes the heartbeat.
    wait_until("the log saying the sync resumed", &|| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("gateway config sync resumed")
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
}
