//! The real binary's `serve` as a child process, for the tests that run two of them on one
//! database (`limits_processes`, `fleet_failover`): its start on a free port with the secrets
//! both share, the wait for `/ready`, and calls to it.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use moltbot_saas_tests::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::config_sync::command;

/// A port free on 127.0.0.1 right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The secrets the processes of a test share.
pub(crate) struct Secrets<'a> {
    /// `SAAS_ADMIN_TOKEN`.
    pub(crate) admin: &'a str,
    /// `SAAS_GATEWAY_TOKEN`.
    pub(crate) gateway: &'a str,
    /// `SAAS_API_KEY_SECRET`.
    pub(crate) api_key_secret: &'a str,
    /// `SAAS_JWT_SECRET`.
    pub(crate) jwt: &'a str,
}

/// A `serve` process, killed when dropped.
pub(crate) struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    /// `serve` on `db` (a clean configuration environment) on a free port, with `secrets`,
    /// `data_dir`, 2 workers, 4 database connections, no webhook dispatcher, warnings only, and
    /// `env` on top; answers once `/ready` answers 200 (60 s at most), with its body.
    pub(crate) async fn start(
        db: &TestDb,
        secrets: &Secrets<'_>,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> (Self, Value) {
        let port = free_port();
        let mut cmd = command(db);
        cmd.env("SAAS_API_PORT", port.to_string())
            .env("SAAS_DATA_DIR", data_dir)
            .env("SAAS_ADMIN_TOKEN", secrets.admin)
            .env("SAAS_GATEWAY_TOKEN", secrets.gateway)
            .env("SAAS_API_KEY_SECRET", secrets.api_key_secret)
            .env("SAAS_JWT_SECRET", secrets.jwt)
            .env("SAAS_WEBHOOK_DISPATCHER", "false")
            .env("SAAS_WORKERS", "2")
            .env("SAAS_DB_POOL_SIZE", "4")
            .env("RUST_LOG", "warn");
        for (key, value) in env {
            cmd.env(key, value);
        }
        let child = cmd
            .args(["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moltbot-saas serve");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/ready", server.base)).send().await
                && r.status() == StatusCode::OK
            {
                let body = r.json().await.unwrap_or(Value::Null);
                return (server, body);
            }
            assert!(Instant::now() < deadline, "server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Calls `server` with `token`: the status and the JSON body (`null` for none).
pub(crate) async fn call(
    client: &reqwest::Client,
    server: &ServeProcess,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = client
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}
