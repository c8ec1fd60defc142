//! The CI fault test: a real server process on a PostgreSQL cluster of its own, under 8
//! concurrent writers creating tenants, while (a) every session of the server is terminated
//! (`pg_terminate_backend`) and (b) the cluster is stopped for 10 s and started again.
//!
//! It runs only when `TEST_FAULT_PG_CLUSTER` (`<version>/<name>` for `pg_ctlcluster`, e.g.
//! `15/moltbot-faults`) and `TEST_FAULT_PG_URL` (that cluster's administrative URL, never the
//! shared one on port 5432) are set; `scripts/faults/pg-outage.sh` creates the cluster and runs
//! this test alone. Otherwise it says why it skipped.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl, sql_query};
use moltbot_saas_tests::{TEST_ENCRYPTION_KEYS, pg_hosts, with_database};
use serde_json::{Value, json};

/// One answer a writer got.
#[derive(Debug, Clone)]
struct Answer {
    sent: Instant,
    done: Instant,
    /// 0 when no HTTP answer came (connection error or timeout).
    status: u16,
    retry_after: Option<String>,
    id: Option<String>,
}

/// One look at the probes.
#[derive(Debug, Clone, Copy)]
struct Probe {
    at: Instant,
    ready: u16,
    health: u16,
}

type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// The fault cluster, started again if the test stops midway.
struct Cluster {
    version: String,
    name: String,
}

impl Cluster {
    fn ctl(&self, action: &str) {
        let mut cmd = Command::new("pg_ctlcluster");
        cmd.args([
            "--skip-systemctl-redirect",
            &self.version,
            &self.name,
            action,
        ]);
        if action == "stop" {
            cmd.args(["-m", "fast"]);
        }
        let out = cmd.output().expect("run pg_ctlcluster");
        assert!(
            out.status.success(),
            "pg_ctlcluster {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &self.version,
                &self.name,
                "start",
            ])
            .output();
    }
}

/// A directory removed on drop, even when the test fails.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server process, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn fault_env() -> Option<(Cluster, String)> {
    let cluster = std::env::var("TEST_FAULT_PG_CLUSTER")
        .ok()
        .filter(|v| !v.is_empty());
    let url = std::env::var("TEST_FAULT_PG_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let (Some(cluster), Some(url)) = (cluster, url) else {
        eprintln!(
            "skipped: set TEST_FAULT_PG_CLUSTER (e.g. 15/moltbot-faults) and TEST_FAULT_PG_URL \
             to a PostgreSQL cluster this test may stop; scripts/faults/pg-outage.sh does"
        );
        return None;
    };
    let (version, name) = cluster
        .split_once('/')
        .expect("TEST_FAULT_PG_CLUSTER is <version>/<name>");
    let hosts = pg_hosts(&url).expect("TEST_FAULT_PG_URL is a postgres:// URL");
    assert!(
        hosts.contains(':') && !hosts.ends_with(":5432") && name != "main",
        "refusing to stop the shared cluster: TEST_FAULT_PG_URL must name another port"
    );
    Some((
        Cluster {
            version: version.to_owned(),
            name: name.to_owned(),
        },
        url,
    ))
}

/// Starts the server on `database_url`; returns it, its base URL and its log lines.
fn start_server(
    database_url: &str,
    data_dir: &std::path::Path,
    token: &str,
) -> (Server, String, Lines) {
    let mut cmd = Command::new(crate::cli::binary());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SAAS_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("DATABASE_URL", database_url)
        .env("SAAS_API_PORT", "0")
        .env("SAAS_ADMIN_TOKEN", token)
        .env("SAAS_GATEWAY_TOKEN", format!("{token}-gateway"))
        .env(
            "SAAS_API_KEY_SECRET",
            "fault-test-api-key-secret-0123456789abcdef",
        )
        .env(
            "SAAS_JWT_SECRET",
            "fault-test-jwt-secret-0123456789abcdefghij",
        )
        .env("SAAS_ENCRYPTION_KEYS", TEST_ENCRYPTION_KEYS)
        .env("SAAS_DATA_DIR", data_dir)
        .env("SAAS_MIGRATE_ON_START", "true")
        .env("SAAS_LOG_FORMAT", "json")
        .env("SAAS_WORKERS", "2")
        .env("SAAS_DB_POOL_SIZE", "8")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start moltbot-saas");
    let lines: Lines = Arc::default();
    for out in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push((Instant::now(), line));
            }
        });
    }
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        let found = lines.lock().unwrap().iter().find_map(|(_, l)| {
            let v: Value = serde_json::from_str(l).ok()?;
            (v["message"] == "listening")
                .then(|| v["port"].as_u64())
                .flatten()
        });
        if let Some(port) = found {
            break port;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not start: {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    (server, format!("http://127.0.0.1:{port}"), lines)
}

async fn writer(
    client: reqwest::Client,
    base: String,
    token: String,
    w: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let sent = Instant::now();
        let r = client
            .post(format!("{base}/tenants"))
            .bearer_auth(&token)
            .json(&json!({ "name": format!("Writer {w} tenant {n}") }))
            .send()
            .await;
        let answer = match r {
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body: Value = r.json().await.unwrap_or(Value::Null);
                Answer {
                    sent,
                    done: Instant::now(),
                    status,
                    retry_after,
                    id: body["id"].as_str().map(str::to_owned),
                }
            }
            Err(_) => Answer {
                sent,
                done: Instant::now(),
                status: 0,
                retry_after: None,
                id: None,
            },
        };
        answers.push(answer);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    answers
}

async fn prober(client: reqwest::Client, base: String, stop: Arc<AtomicBool>) -> Vec<Probe> {
    let mut probes = Vec::new();
    let status = async |path: &str| match client.get(format!("{base}{path}")).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    };
    while !stop.load(Ordering::SeqCst) {
        let ready = status("/ready").await;
        let health = status("/health").await;
        probes.push(Probe {
            at: Instant::now(),
            ready,
            health,
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    probes
}

fn admin_exec(url: &str, sql: &str) {
    use diesel::connection::SimpleConnection;
    let mut conn = PgConnection::establish(url).expect("connect to the fault cluster");
    conn.batch_execute(sql).expect("admin statement");
}

fn admin_sql(url: &str, sql: &str) -> i64 {
    let mut conn = PgConnection::establish(url).expect("connect to the fault cluster");
    sql_query(sql)
        .get_result::<Count>(&mut conn)
        .expect("admin query")
        .n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_rides_through_terminated_sessions_and_a_cluster_restart() {
    let Some((cluster, admin_url)) = fault_env() else {
        return;
    };
    let name = format!("moltbot_faults_{}", uuid::Uuid::new_v4().simple());
    admin_exec(&admin_url, &format!("CREATE DATABASE {name}"));
    let db_url = with_database(&admin_url, &name);
    let data_dir = std::env::temp_dir().join(format!("moltbot-faults-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let _cleanup = RemoveOnDrop(data_dir.clone());
    let token = format!(
        "fault-test-operator-token-{}",
        uuid::Uuid::new_v4().simple()
    );
    let (server, base, lines) = start_server(&db_url, &data_dir, &token);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            tokio::spawn(writer(
                client.clone(),
                base.clone(),
                token.clone(),
                w,
                stop.clone(),
            ))
        })
        .collect();
    let probes = tokio::spawn(prober(client.clone(), base.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // (a) Every session of the server, terminated.
    let terminated_at = Instant::now();
    let terminated = tokio::task::spawn_blocking({
        let admin_url = admin_url.clone();
        let name = name.clone();
        move || {
            admin_sql(
                &admin_url,
                &format!(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n \
                     FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ),
            )
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // (b) The cluster stopped for 10 s, then started again.
    let stopping_at = Instant::now();
    tokio::task::block_in_place(|| cluster.ctl("stop"));
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let starting_at = Instant::now();
    tokio::task::block_in_place(|| cluster.ctl("start"));
    // `pg_ctlcluster start` returns once the server accepts connections.
    let back_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::SeqCst);
    let mut answers = Vec::new();
    for w in writers {
        answers.extend(w.await.unwrap());
    }
    let probes = probes.await.unwrap();
    let secs = |t: Instant| t.saturating_duration_since(stopping_at).as_secs_f64();

    // Never anything but 201 or 503 with Retry-After; never no answer.
    let by_status = |s: u16| answers.iter().filter(|a| a.status == s).count();
    eprintln!(
        "answers: {} ({} created, {} refused 503); {terminated} sessions terminated",
        answers.len(),
        by_status(201),
        by_status(503)
    );
    for a in &answers {
        assert!(
            a.status == 201 || (a.status == 503 && a.retry_after.is_some()),
            "an answer other than 201 or 503 with Retry-After: {a:?} (at {:.2} s)",
            secs(a.sent)
        );
    }
    assert!(terminated >= 1, "the server had sessions to terminate");

    // (a): writes went on within 3 s.
    let resumed = |after: Instant| {
        answers
            .iter()
            .filter(|a| a.status == 201 && a.sent >= after)
            .map(|a| a.done.duration_since(after))
            .min()
    };
    let after_termination = resumed(terminated_at).expect("creates after the termination");
    assert!(
        after_termination <= Duration::from_secs(3),
        "writes resumed {after_termination:?} after the sessions were terminated"
    );

    // (b): during the outage, only 503s, and fast ones; writes back within 3 s of the database.
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.sent >= stopped_at && a.done <= starting_at)
        .collect();
    assert!(
        during.len() > 50,
        "writers kept asking during the outage: {}",
        during.len()
    );
    let created = during.iter().find(|a| a.status != 503);
    assert!(
        created.is_none(),
        "created while the cluster was down: {created:?}"
    );
    let slowest = during.iter().map(|a| a.done - a.sent).max().unwrap();
    assert!(
        slowest < Duration::from_secs(3),
        "refusals are immediate, not a wait for a connection: slowest {slowest:?}"
    );
    let after_restart = resumed(back_at).expect("creates after the restart");
    eprintln!(
        "writes resumed {after_termination:?} after the termination and {after_restart:?} after the restart"
    );
    assert!(
        after_restart <= Duration::from_secs(3),
        "writes resumed {after_restart:?} after the database was back"
    );

    // Probes: /health always 200; /ready 503 during the outage, 200 within 2 s after.
    assert!(probes.iter().all(|p| p.health == 200), "{probes:?}");
    let outage_ready: Vec<u16> = probes
        .iter()
        .filter(|p| p.at >= stopped_at + Duration::from_secs(1) && p.at <= starting_at)
        .map(|p| p.ready)
        .collect();
    assert!(
        !outage_ready.is_empty() && outage_ready.iter().all(|s| *s == 503),
        "{outage_ready:?}"
    );
    let ready_again = probes
        .iter()
        .find(|p| p.at >= back_at && p.ready == 200)
        .map(|p| p.at.duration_since(back_at))
        .expect("/ready is 200 after the restart");
    eprintln!("/ready was 200 again {ready_again:?} after the database was back");
    assert!(ready_again <= Duration::from_secs(2), "{ready_again:?}");
    let r = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Every acknowledged create is readable.
    let ids: Vec<String> = answers.iter().filter_map(|a| a.id.clone()).collect();
    assert_eq!(ids.len(), by_status(201));
    let chunks: Vec<Vec<String>> = ids
        .chunks(ids.len().div_ceil(8).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let mut readers = Vec::new();
    for chunk in chunks {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        readers.push(tokio::spawn(async move {
            for id in chunk {
                let r = client
                    .get(format!("{base}/tenants/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "acknowledged tenant {id} is readable");
            }
        }));
    }
    for r in readers {
        r.await.unwrap();
    }

    // The log: a bounded number of lines for the outage, saying once that the database went
    // away and once that it came back.
    let lines = lines.lock().unwrap().clone();
    let window: Vec<&String> = lines
        .iter()
        .filter(|(at, _)| *at >= terminated_at && *at <= back_at + Duration::from_secs(5))
        .map(|(_, l)| l)
        .collect();
    eprintln!("{} log lines in the fault window:", window.len());
    for l in &window {
        eprintln!("  {l}");
    }
    let count = |needle: &str| window.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("database unavailable: answering 503"), 1);
    assert_eq!(count("database available again after"), 1);
    assert!(
        window.len() <= 20,
        "{} lines for {} refused requests",
        window.len(),
        by_status(503)
    );
    assert!(!window.iter().any(|l| l.contains("\"level\":\"ERROR\"")));

    drop(server);
    admin_exec(
        &admin_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}
