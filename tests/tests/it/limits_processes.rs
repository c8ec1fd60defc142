//! Limits shared across replicas (issue 15): two server processes (the real binary) on one
//! database and one Redis (127.0.0.1:6379, keys under a prefix of the test's own). A key's rate
//! limit holds across both, usage adds up exactly, and a used-up quota leaves both processes'
//! gateway config. And a server whose Redis (one the test starts on a free port) goes away keeps
//! serving, says so in `/ready`, and shares again once it is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moltbot_saas_tests::{TestApp, TestDb, spawn_app_with, test_settings};
use reqwest::Method;
use serde_json::{Value, json};
use tenant_core::Secret;

use crate::limits::{eventually, rate_headers, telegram_accounts};
use crate::serve_process::{Secrets, ServeProcess as Server, call, free_port};

/// The secrets both processes share.
struct Shared {
    admin: String,
    gateway: String,
    api_key_secret: String,
    jwt: String,
    prefix: String,
}

impl Shared {
    fn new() -> Self {
        let r = || uuid::Uuid::new_v4().simple().to_string();
        Self {
            admin: format!("test-admin-token-{}", r()),
            gateway: format!("test-gateway-token-{}", r()),
            api_key_secret: format!("test-api-key-secret-{}", r()),
            jwt: format!("test-jwt-secret-{}", r()),
            prefix: format!("moltbot-test:{}:", r()),
        }
    }
}

async fn spawn_server(db: &TestDb, shared: &Shared, data_dir: &std::path::Path) -> Server {
    let secrets = Secrets {
        admin: &shared.admin,
        gateway: &shared.gateway,
        api_key_secret: &shared.api_key_secret,
        jwt: &shared.jwt,
    };
    let env = [
        ("SAAS_REDIS_URL", "redis://127.0.0.1:6379/"),
        ("SAAS_REDIS_KEY_PREFIX", shared.prefix.as_str()),
        ("SAAS_USAGE_FLUSH_MS", "100"),
        ("SAAS_LIMITS_CACHE_TTL_MS", "100"),
        ("SAAS_TENANT_CACHE_SYNC_MS", "100"),
    ];
    let (server, ready) = Server::start(db, &secrets, data_dir, &env).await;
    assert_eq!(
        ready["rateLimits"],
        json!({"store": "redis", "redis": "ok"})
    );
    server
}

#[tokio::test]
async fn two_processes_share_rate_limits_usage_and_quotas_through_redis() {
    let db = TestDb::new();
    let shared = Shared::new();
    let dir = tempfile_dir();
    let a = spawn_server(&db, &shared, &dir).await;
    let b = spawn_server(&db, &shared, &dir).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let op = shared.admin.as_str();

    let (status, tenant) = call(
        &client,
        &a,
        op,
        Method::POST,
        "/tenants",
        Some(&json!({"name": "Shared"})),
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    let id = tenant["id"].as_str().unwrap().to_owned();
    let account = tenant["accountId"].as_str().unwrap().to_owned();
    let key = tenant["apiKey"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &client,
        &b,
        op,
        Method::POST,
        &format!("/tenants/{id}/channels"),
        Some(&json!({"channel": "telegram", "credentials": {"botToken": "123456:shared-token"}})),
    )
    .await;
    assert_eq!(status, 201);
    // One request every 2 s per key, 5 at once.
    let (status, _) = call(
        &client,
        &a,
        op,
        Method::PATCH,
        &format!("/tenants/{id}/limits"),
        Some(&json!({"overrides": {"requestsPerMinutePerKey": 30, "requestBurst": 5}})),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The key's requests, alternately to either process, all at once.
    let started = Instant::now();
    let path = format!("/tenants/{id}");
    let requests = (0..30).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        call(&client, server, &key, Method::GET, &path, None)
    });
    let answers = join_all(requests).await;
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(accepted + refused, 30, "{answers:?}");
    // At most the burst plus what the rate refilled meanwhile (one per 2 s), and well under
    // the two bursts two unshared processes would have let through.
    let bound = 5 + (elapsed / 2.0).ceil() as usize;
    assert!(
        (5..=bound).contains(&accepted),
        "{accepted} accepted in {elapsed:.2}s (bound {bound})"
    );
    for side in 0..2 {
        let refused_here = answers
            .iter()
            .enumerate()
            .filter(|(i, (s, _))| i % 2 == side && *s == 429)
            .count();
        assert!(refused_here > 0, "process {side} refused none: {answers:?}");
    }

    // Messages through both processes, with duplicates across them: each counted once.
    let event = |server: &Server, id: String| {
        let client = &client;
        let gateway = shared.gateway.as_str();
        let account = account.clone();
        let base = server.base.clone();
        async move {
            let r = client
                .post(format!("{base}/events"))
                .bearer_auth(gateway)
                .json(&json!({"id": id, "type": "message.received", "accountId": account}))
                .send()
                .await
                .unwrap();
            r.status()
        }
    };
    let mut sends = Vec::new();
    for i in 0..10 {
        sends.push(event(&a, format!("a{i}")));
        sends.push(event(&b, format!("b{i}")));
    }
    for i in 0..5 {
        sends.push(event(&b, format!("a{i}")));
        sends.push(event(&a, format!("b{i}")));
    }
    for status in join_all(sends).await {
        assert_eq!(status, 202);
    }
    let usage_path = format!("/tenants/{id}/usage");
    let usage = async |server: &Server| {
        call(&client, server, op, Method::GET, &usage_path, None)
            .await
            .1
    };
    assert_eq!(usage(&a).await["current"]["messages"], 20);
    assert_eq!(usage(&b).await["current"]["messages"], 20);
    // The key's accepted requests, metered by both and flushed by each.
    eventually(10, "the accepted requests metered", || async {
        usage(&a).await["history"][0]["apiRequests"] == accepted
    })
    .await;

    // A quota used up through one process leaves both processes' gateway config.
    let gateway = shared.gateway.as_str();
    let config = async |server: &Server| {
        call(&client, server, gateway, Method::GET, "/config", None)
            .await
            .1
    };
    assert_eq!(telegram_accounts(&config(&a).await), [account.as_str()]);
    assert_eq!(telegram_accounts(&config(&b).await), [account.as_str()]);
    let (status, _) = call(
        &client,
        &b,
        op,
        Method::PATCH,
        &format!("/tenants/{id}/limits"),
        Some(&json!({"overrides": {"messagesPerMonth": 21}})),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(event(&a, "last".into()).await, 202);
    for server in [&a, &b] {
        eventually(10, "the account out of the config", || async {
            telegram_accounts(&config(server).await).is_empty()
        })
        .await;
    }
    assert_eq!(usage(&b).await["current"]["quotaExceeded"], true);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("limits-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the futures concurrently (each a request), answers in order.
async fn join_all<F: std::future::Future>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let mut set = Vec::new();
    for f in fs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in set.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// A Redis of the test's own on a free port, shut down when dropped.
struct OwnRedis {
    port: u16,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let status = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &std::env::temp_dir().display().to_string(),
                "--pidfile",
                &std::env::temp_dir()
                    .join(format!("redis-test-{port}.pid"))
                    .display()
                    .to_string(),
            ])
            .stdout(Stdio::null())
            .status()
            .expect("redis-server is installed");
        assert!(status.success());
        let me = Self { port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !me.cli(&["ping"]).contains("PONG") {
            assert!(Instant::now() < deadline, "redis did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        me
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn shutdown(&self) {
        let _ = self.cli(&["shutdown", "nosave"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.cli(&["shutdown", "nosave"]);
    }
}

async fn ready_redis(app: &TestApp) -> Value {
    let r = app.get("/ready").await;
    assert_eq!(r.status, 200, "still ready: {}", r.text);
    // The per-dependency checks say the same, and Redis never fails readiness.
    assert_eq!(
        r.body["checks"]["redis"], r.body["rateLimits"]["redis"],
        "{}",
        r.text
    );
    assert_eq!(r.body.get("failed"), None, "{}", r.text);
    r.body["rateLimits"]["redis"].clone()
}

#[tokio::test]
async fn a_server_whose_redis_goes_away_keeps_serving_and_shares_again_once_it_is_back() {
    let db = TestDb::new();
    let port = free_port();
    let redis = OwnRedis::start(port);
    let prefix = format!("moltbot-test:{}:", uuid::Uuid::new_v4().simple());
    let mut settings = test_settings(&db);
    settings.limits.redis_url = Some(Secret::new(format!("redis://127.0.0.1:{port}/")));
    settings.limits.redis_key_prefix = prefix.clone();
    let app = spawn_app_with(settings).await;
    assert_eq!(
        app.get("/ready").await.body["rateLimits"],
        json!({"store": "redis", "redis": "ok"})
    );
    let tenant = app.create_tenant("Resilient").await;
    let id = tenant["id"].as_str().unwrap();
    let key = tenant["apiKey"].as_str().unwrap();
    // Slow enough that a request's debt (and so its keys) lasts seconds: 6 a minute, 100 at once.
    crate::limits::set_limits(
        &app,
        id,
        json!({"overrides": {"requestsPerMinutePerKey": 6, "requestsPerMinutePerTenant": 6, "requestBurst": 100}}),
    )
    .await;
    let path = format!("/tenants/{id}");
    let get = async || app.request_as(Some(key), Method::GET, &path, None).await;
    let r = get().await;
    assert_eq!(r.status, 200);
    assert!(!rate_headers(&r).0.is_empty());
    let keys = redis.cli(&["--scan", "--pattern", &format!("{prefix}*")]);
    assert_eq!(
        keys.lines().count(),
        2,
        "the key's and the tenant's state: {keys}"
    );
    let ttl: i64 = redis
        .cli(&["pttl", keys.lines().next().unwrap()])
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 0, "keys expire by themselves: {ttl}");

    // Redis goes away: requests are still served (limited per process), /ready says so.
    redis.shutdown();
    for _ in 0..20 {
        let r = get().await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!rate_headers(&r).0.is_empty());
    }
    eventually(10, "/ready reporting Redis unreachable", || async {
        ready_redis(&app).await == "unreachable"
    })
    .await;
    let logs = moltbot_saas_tests::captured_logs();
    let warned = logs
        .lines()
        .filter(|l| l.contains("Redis is unreachable: rate limits fall back"))
        .count();
    assert_eq!(warned, 1, "logged once, not per request");

    // Back: shared again.
    let redis = OwnRedis::start(port);
    eventually(15, "/ready reporting Redis back", || async {
        ready_redis(&app).await == "ok"
    })
    .await;
    assert_eq!(get().await.status, 200);
    let keys = redis.cli(&["--scan", "--pattern", &format!("{prefix}*")]);
    assert_eq!(keys.lines().count(), 2, "{keys}");
    app.stop().await;
    drop(redis);
}
