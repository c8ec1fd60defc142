//! The phases: each runs bounded requests against the server and reports one JSON line.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{AUTHORIZATION, ETAG, IF_NONE_MATCH};
use reqwest::{Client, Method};
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use crate::procfs;
use crate::stats::{Recorder, round3};

/// The phases, in the order they run when all are asked for.
pub const PHASES: [&str; 12] = [
    "health",
    "create",
    "create-keyed",
    "channels",
    "credentials",
    "endpoints",
    "endpoint-updates",
    "keys",
    "reads",
    "config",
    "ingest",
    "list",
];

/// Upper bound on requests a phase may send, whatever the other limits say.
pub const HARD_REQUEST_CAP: u64 = 10_000_000;

/// What to run and against what.
#[derive(Debug, Clone)]
pub struct Options {
    /// `http://127.0.0.1:<port>`, already checked by [`crate::target::check_base_url`].
    pub base_url: String,
    /// Phases to run, from [`PHASES`].
    pub phases: Vec<String>,
    /// Tenants to create (`create`), and most tenants fetched when no `create` ran.
    pub tenants: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests in flight at once in the `config` phase (its replies can be large).
    pub config_concurrency: usize,
    /// How long each time-bounded phase (`reads`, `config`, `ingest`, `list`, `health`) runs.
    pub duration: Duration,
    /// Longest time a count-bounded phase (`create`, `channels`, `endpoints`) may take.
    pub phase_timeout: Duration,
    /// Most requests per phase.
    pub max_requests: u64,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Operator bearer token.
    pub token: Option<String>,
    /// Gateway bearer token, for `config` and `ingest`.
    pub gateway_token: Option<String>,
    /// Send tenant-scoped requests with the tenant's own API key from its create reply.
    pub tenant_keys: bool,
    /// The server's pid, for its CPU time and memory from `/proc`.
    pub server_pid: Option<u32>,
    /// Page size of the `list` phase.
    pub page_size: u32,
    /// After a `create` phase, write the tenants made so far here (one JSON line each, with
    /// the API key of its create reply: a secret of a benchmark database, kept in its work dir).
    pub save_tenants: Option<PathBuf>,
    /// Without a `create` phase, take the tenants (and their API keys) from a file written by
    /// `save_tenants` instead of listing them (a listing has no API keys, and its requests would
    /// be counted with the measured ones).
    pub load_tenants: Option<PathBuf>,
    /// Extra fields copied into every line (e.g. backend, run number).
    pub tags: Map<String, Value>,
    /// A shell command run after each phase, its lines written, with `PHASE` set to its name
    /// (e.g. `callgrind_control -d <pid>`: a profile per phase, `scripts/bench/callgrind.sh`).
    pub after_phase: Option<String>,
}

/// A tenant this driver created or found.
#[derive(Debug, Clone)]
struct Tenant {
    id: String,
    api_key: Option<String>,
}

/// One request to make.
#[derive(Debug, Clone)]
struct Req {
    method: Method,
    path: String,
    body: Option<Value>,
    auth: Option<String>,
    if_none_match: Option<String>,
    /// An `Idempotency-Key` to send.
    idempotency_key: Option<String>,
    /// Whether 304 counts as success.
    ok_304: bool,
}

impl Req {
    fn get(path: String, auth: Option<String>) -> Self {
        Self {
            method: Method::GET,
            path,
            body: None,
            auth,
            if_none_match: None,
            idempotency_key: None,
            ok_304: false,
        }
    }

    fn post(path: &str, body: Value, auth: Option<String>) -> Self {
        Self {
            method: Method::POST,
            path: path.to_owned(),
            body: Some(body),
            auth,
            if_none_match: None,
            idempotency_key: None,
            ok_304: false,
        }
    }
}

/// The bounds of one phase, shared by its tasks.
struct Limits {
    next: AtomicU64,
    count: u64,
    deadline: Instant,
}

impl Limits {
    fn new(count: u64, time: Duration) -> Self {
        Self {
            next: AtomicU64::new(0),
            count: count.min(HARD_REQUEST_CAP),
            deadline: Instant::now() + time,
        }
    }

    /// The next request's index, or `None` once the count or the time is used up.
    fn take(&self) -> Option<u64> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.count).then_some(i)
    }
}

/// Runs the phases and writes one JSON line per phase to `out`; returns the lines.
pub async fn run(opts: Options, out: &mut impl Write) -> Result<Vec<Value>, String> {
    let client = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(opts.concurrency.max(opts.config_concurrency))
        .timeout(opts.request_timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let mut driver = Driver {
        client,
        opts,
        tenants: Vec::new(),
        channels_done: 0,
        endpoints: Vec::new(),
        endpoints_done: 0,
        run_id: format!("{:08x}", rand::rng().random::<u32>()),
    };
    let mut lines = Vec::new();
    for phase in driver.opts.phases.clone() {
        for line in driver.phase(&phase).await? {
            writeln!(out, "{line}").map_err(|e| format!("writing results: {e}"))?;
            out.flush().map_err(|e| format!("writing results: {e}"))?;
            lines.push(line);
        }
        if let Some(cmd) = &driver.opts.after_phase {
            // Between phases nothing else runs on this thread: waiting here is what is wanted.
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .env("PHASE", &phase)
                .status()
                .map_err(|e| format!("after-phase command: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "after-phase command failed after {phase}: {status}"
                ));
            }
        }
    }
    Ok(lines)
}

struct Driver {
    client: Client,
    opts: Options,
    tenants: Vec<Tenant>,
    channels_done: usize,
    /// The webhook endpoints the `endpoints` phase made: their path and their tenant's auth.
    endpoints: Vec<(String, Option<String>)>,
    /// How many of `tenants` the `endpoints` phase has given an endpoint.
    endpoints_done: usize,
    run_id: String,
}

impl Driver {
    fn operator(&self) -> Option<String> {
        self.opts.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    fn gateway(&self) -> Option<String> {
        self.opts
            .gateway_token
            .as_ref()
            .map(|t| format!("Bearer {t}"))
            .or_else(|| self.operator())
    }

    fn tenant_auth(&self, t: &Tenant) -> Option<String> {
        match (&t.api_key, self.opts.tenant_keys) {
            (Some(key), true) => Some(format!("Bearer {key}")),
            _ => self.operator(),
        }
    }

    async fn phase(&mut self, phase: &str) -> Result<Vec<Value>, String> {
        if matches!(
            phase,
            "channels" | "credentials" | "endpoints" | "keys" | "reads" | "ingest"
        ) && self.tenants.is_empty()
        {
            match self.opts.load_tenants.clone() {
                Some(path) => self.load_tenants(&path)?,
                None => self.fetch_tenants().await?,
            }
        }
        let d = self.opts.duration;
        let (c, cap) = (self.opts.concurrency, self.opts.max_requests);
        Ok(match phase {
            "health" => {
                let op = self.measure(
                    phase,
                    c,
                    cap,
                    d,
                    Arc::new(|_| Req::get("/health".into(), None)),
                    None,
                );
                vec![op.await.0]
            }
            "create" | "create-keyed" => {
                let auth = self.operator();
                let prefix = format!("Bench {} ", self.run_id);
                // `create-keyed` sends each create with its own `Idempotency-Key`, as a client
                // that retries safely does.
                let keyed = (phase == "create-keyed").then(|| format!("bench-{}-", self.run_id));
                let make = Arc::new(move |i: u64| Req {
                    idempotency_key: keyed.as_ref().map(|k| format!("{k}{i}")),
                    ..Req::post(
                        "/tenants",
                        json!({"name": format!("{prefix}{i}")}),
                        auth.clone(),
                    )
                });
                let n = self.opts.tenants.min(cap);
                let (line, bodies) = self
                    .measure(phase, c, n, self.opts.phase_timeout, make, Some(()))
                    .await;
                self.tenants.extend(bodies.iter().filter_map(tenant_of));
                if let Some(path) = &self.opts.save_tenants {
                    save_tenants(path, &self.tenants)?;
                }
                vec![line]
            }
            "channels" => {
                let todo: Arc<Vec<(String, Option<String>, usize)>> = Arc::new(
                    self.tenants[self.channels_done..]
                        .iter()
                        .enumerate()
                        .map(|(k, t)| (t.id.clone(), self.tenant_auth(t), self.channels_done + k))
                        .collect(),
                );
                self.channels_done = self.tenants.len();
                let n = (todo.len() as u64 * 2).min(cap);
                let make = Arc::new(move |i: u64| channel_request(&todo, i));
                vec![
                    self.measure(phase, c, n, self.opts.phase_timeout, make, None)
                        .await
                        .0,
                ]
            }
            "credentials" => {
                // Round robin over the tenants given channels, so that the requests in flight
                // at once name different channels (as rotations by many tenants do).
                let targets: Arc<Vec<(String, Option<String>)>> = Arc::new(
                    self.tenants[..self.channels_done]
                        .iter()
                        .map(|t| {
                            (
                                format!("/tenants/{}/channels/telegram", t.id),
                                self.tenant_auth(t),
                            )
                        })
                        .collect(),
                );
                let make = Arc::new(move |i: u64| credentials_request(&targets, i));
                vec![self.measure(phase, c, cap, d, make, None).await.0]
            }
            "endpoints" => {
                let todo: Arc<Vec<(String, Option<String>, usize)>> = Arc::new(
                    self.tenants[self.endpoints_done..]
                        .iter()
                        .enumerate()
                        .map(|(k, t)| (t.id.clone(), self.tenant_auth(t), self.endpoints_done + k))
                        .collect(),
                );
                self.endpoints_done = self.tenants.len();
                let n = (todo.len() as u64).min(cap);
                let make = Arc::new(move |i: u64| endpoint_request(&todo, i));
                let (line, bodies) = self
                    .measure(phase, c, n, self.opts.phase_timeout, make, Some(()))
                    .await;
                let auth: HashMap<&str, Option<String>> = self
                    .tenants
                    .iter()
                    .map(|t| (t.id.as_str(), self.tenant_auth(t)))
                    .collect();
                let made: Vec<(String, Option<String>)> = bodies
                    .iter()
                    .filter_map(|b| {
                        let (id, tenant) = (b.get("id")?.as_str()?, b.get("tenantId")?.as_str()?);
                        let path = format!("/tenants/{tenant}/webhooks/{id}");
                        Some((path, auth.get(tenant).cloned().flatten()))
                    })
                    .collect();
                self.endpoints.extend(made);
                vec![line]
            }
            "endpoint-updates" => {
                if self.endpoints.is_empty() {
                    return Err("no webhook endpoints: run the endpoints phase first".into());
                }
                // Round robin, as `credentials`: the requests in flight name different endpoints.
                let targets = Arc::new(self.endpoints.clone());
                let make = Arc::new(move |i: u64| endpoint_update_request(&targets, i));
                vec![self.measure(phase, c, cap, d, make, None).await.0]
            }
            "keys" => {
                let targets: Arc<Vec<(String, Option<String>)>> = Arc::new(
                    self.tenants
                        .iter()
                        .map(|t| (format!("/tenants/{}/api-keys", t.id), self.tenant_auth(t)))
                        .collect(),
                );
                let make = Arc::new(move |i: u64| key_request(&targets, i));
                vec![self.measure(phase, c, cap, d, make, None).await.0]
            }
            "reads" => {
                let targets: Arc<Vec<(String, Option<String>)>> = Arc::new(
                    self.tenants
                        .iter()
                        .map(|t| (format!("/tenants/{}", t.id), self.tenant_auth(t)))
                        .collect(),
                );
                let make = Arc::new(move |_| {
                    let k = rand::rng().random_range(0..targets.len().max(1));
                    let (path, auth) = targets.get(k).cloned().unwrap_or_default();
                    Req::get(path, auth)
                });
                vec![self.measure(phase, c, cap, d, make, None).await.0]
            }
            "config" => self.config_phase().await,
            "ingest" => {
                let auth = self.gateway();
                let ids: Arc<Vec<String>> =
                    Arc::new(self.tenants.iter().map(|t| t.id.clone()).collect());
                let make = Arc::new(move |i: u64| {
                    let k = rand::rng().random_range(0..ids.len().max(1));
                    let id = ids.get(k).cloned().unwrap_or_default();
                    let body = json!({
                        "tenantId": id,
                        "channel": "telegram",
                        "from": format!("bench-user-{}", i % 1000),
                        "message": format!("benchmark message {i}"),
                    });
                    Req::post("/webhooks/message", body, auth.clone())
                });
                vec![self.measure(phase, c, cap, d, make, None).await.0]
            }
            "list" => vec![self.list_phase().await],
            other => {
                return Err(format!(
                    "unknown phase {other:?}; phases: {}",
                    PHASES.join(",")
                ));
            }
        })
    }

    /// `GET /config` in full, then with `If-None-Match` (two lines).
    async fn config_phase(&mut self) -> Vec<Value> {
        let auth = self.gateway();
        let (c, cap, d) = (
            self.opts.config_concurrency,
            self.opts.max_requests,
            self.opts.duration,
        );
        let full_auth = auth.clone();
        let make = Arc::new(move |_| Req::get("/config".into(), full_auth.clone()));
        let (full, _) = self.measure("config", c, cap, d, make, None).await;
        let etag = self.etag(auth.clone()).await;
        let make = Arc::new(move |_| Req {
            if_none_match: etag.clone(),
            ok_304: true,
            ..Req::get("/config".into(), auth.clone())
        });
        let (cond, _) = self.measure("config_304", c, cap, d, make, None).await;
        vec![full, cond]
    }

    async fn etag(&self, auth: Option<String>) -> Option<String> {
        let mut req = self.client.get(format!("{}/config", self.opts.base_url));
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        let res = req.send().await.ok()?;
        res.headers().get(ETAG)?.to_str().ok().map(str::to_owned)
    }

    /// `GET /tenants` pages: every task walks the list from the start, following `nextCursor`.
    async fn list_phase(&mut self) -> Value {
        let before = self.snapshot();
        let limits = Arc::new(Limits::new(self.opts.max_requests, self.opts.duration));
        let mut set = JoinSet::new();
        for _ in 0..self.opts.concurrency.max(1) {
            let (client, base, limits, auth) = (
                self.client.clone(),
                self.opts.base_url.clone(),
                limits.clone(),
                self.operator(),
            );
            let size = self.opts.page_size;
            set.spawn(async move {
                let mut rec = Recorder::default();
                let mut cursor: Option<String> = None;
                while limits.take().is_some() {
                    let path = match &cursor {
                        Some(c) => format!("/tenants?limit={size}&cursor={c}"),
                        None => format!("/tenants?limit={size}"),
                    };
                    let body = exec(&client, &base, &Req::get(path, auth.clone()), &mut rec).await;
                    cursor = body
                        .as_ref()
                        .and_then(|b| b.get("nextCursor"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                (rec, Vec::new())
            });
        }
        let (rec, _) = join(set).await;
        self.line("list", self.opts.concurrency, rec, before)
    }

    /// Fetches tenant ids from `GET /tenants` when no `create` phase ran (no API keys then).
    async fn fetch_tenants(&mut self) -> Result<(), String> {
        let mut cursor: Option<String> = None;
        let deadline = Instant::now() + self.opts.phase_timeout;
        while (self.tenants.len() as u64) < self.opts.tenants && Instant::now() < deadline {
            // 100 a page keeps each reply under the 64 KiB `exec` parses (500 did not).
            let path = match &cursor {
                Some(c) => format!("/tenants?limit=100&cursor={c}"),
                None => "/tenants?limit=100".to_owned(),
            };
            let mut rec = Recorder::default();
            let body = exec(
                &self.client,
                &self.opts.base_url,
                &Req::get(path, self.operator()),
                &mut rec,
            )
            .await
            .ok_or_else(|| "cannot list tenants (is the operator token right?)".to_owned())?;
            let page = body
                .get("tenants")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            self.tenants.extend(page.iter().filter_map(tenant_of));
            cursor = body
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        self.tenants
            .truncate(usize::try_from(self.opts.tenants).unwrap_or(usize::MAX));
        self.channels_done = self.tenants.len();
        if self.tenants.is_empty() {
            return Err("no tenants: run the create phase first".into());
        }
        Ok(())
    }

    /// Takes the tenants from a file written by [`save_tenants`].
    fn load_tenants(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading tenants from {}: {e}", path.display()))?;
        self.tenants = parse_tenants(&text)
            .map_err(|e| format!("reading tenants from {}: {e}", path.display()))?;
        self.tenants
            .truncate(usize::try_from(self.opts.tenants).unwrap_or(usize::MAX));
        self.channels_done = self.tenants.len();
        if self.tenants.is_empty() {
            return Err(format!("no tenants in {}", path.display()));
        }
        Ok(())
    }

    fn snapshot(&self) -> (Instant, Option<procfs::ProcSample>, Option<f64>) {
        (
            Instant::now(),
            self.opts.server_pid.and_then(procfs::sample),
            procfs::self_cpu_s(),
        )
    }

    /// Runs `make(i)` requests with `concurrency` tasks until `count` or `time` is used up.
    async fn measure(
        &self,
        phase: &str,
        concurrency: usize,
        count: u64,
        time: Duration,
        make: Arc<dyn Fn(u64) -> Req + Send + Sync>,
        keep_bodies: Option<()>,
    ) -> (Value, Vec<Value>) {
        let before = self.snapshot();
        let limits = Arc::new(Limits::new(count, time));
        let mut set = JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let (client, base, limits, make) = (
                self.client.clone(),
                self.opts.base_url.clone(),
                limits.clone(),
                make.clone(),
            );
            set.spawn(async move {
                let mut rec = Recorder::default();
                let mut bodies = Vec::new();
                while let Some(i) = limits.take() {
                    let body = exec(&client, &base, &make(i), &mut rec).await;
                    if let (Some(b), Some(())) = (body, keep_bodies) {
                        bodies.push(b);
                    }
                }
                (rec, bodies)
            });
        }
        let (rec, bodies) = join(set).await;
        (self.line(phase, concurrency, rec, before), bodies)
    }

    fn line(
        &self,
        phase: &str,
        concurrency: usize,
        rec: Recorder,
        (started, server_before, client_before): (Instant, Option<procfs::ProcSample>, Option<f64>),
    ) -> Value {
        let elapsed = started.elapsed();
        let count = rec.count();
        let mut m = Map::new();
        m.insert("phase".into(), json!(phase));
        m.extend(self.opts.tags.clone());
        m.insert("concurrency".into(), json!(concurrency));
        m.extend(rec.summary(elapsed));
        if let (Some(a), Some(b)) = (client_before, procfs::self_cpu_s()) {
            m.insert("client_cpu_s".into(), json!(round3(b - a)));
        }
        if let Some(pid) = self.opts.server_pid {
            match (server_before, procfs::sample(pid)) {
                (Some(a), Some(b)) => {
                    let cpu = b.cpu_s - a.cpu_s;
                    m.insert("server_cpu_s".into(), json!(round3(cpu)));
                    if count > 0 {
                        m.insert(
                            "server_cpu_us_per_req".into(),
                            json!(round3(cpu * 1e6 / count as f64)),
                        );
                    }
                    m.insert("server_rss_mb".into(), json!(round3(b.rss_mb)));
                    m.insert("server_peak_rss_mb".into(), json!(round3(b.peak_rss_mb)));
                }
                _ => {
                    m.insert("server_gone".into(), json!(true));
                }
            }
        }
        if let Some(l) = procfs::load_average() {
            m.insert("load_avg_1m".into(), json!(l));
        }
        Value::Object(m)
    }
}

async fn join(mut set: JoinSet<(Recorder, Vec<Value>)>) -> (Recorder, Vec<Value>) {
    let mut rec = Recorder::default();
    let mut bodies = Vec::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok((r, b)) => {
                rec.merge(r);
                bodies.extend(b);
            }
            Err(e) => rec.sample(&format!("task failed: {e}")),
        }
    }
    (rec, bodies)
}

/// The `i`-th channel request: two per tenant, Telegram then Discord, fake credentials.
fn channel_request(todo: &[(String, Option<String>, usize)], i: u64) -> Req {
    let k = usize::try_from(i / 2).unwrap_or(usize::MAX);
    let Some((id, auth, n)) = todo.get(k) else {
        return Req::get("/health".into(), None);
    };
    let body = if i.is_multiple_of(2) {
        json!({"channel": "telegram", "enabled": true,
               "credentials": {"botToken": format!("{}:AAbench-{n}", 100_000 + n)}})
    } else {
        json!({"channel": "discord", "enabled": true,
               "credentials": {"token": format!("bench.discord.token.{n}")}})
    };
    Req::post(&format!("/tenants/{id}/channels"), body, auth.clone())
}

/// The `i`-th of `targets` in turn, with its place.
fn in_turn<T>(targets: &[T], i: u64) -> Option<(usize, &T)> {
    let k = usize::try_from(i % targets.len().max(1) as u64).unwrap_or(0);
    targets.get(k).map(|t| (k, t))
}

/// The `i`-th credential rotation: a new Telegram bot token for the next tenant in turn.
fn credentials_request(targets: &[(String, Option<String>)], i: u64) -> Req {
    let Some((k, (path, auth))) = in_turn(targets, i) else {
        return Req::get("/health".into(), None);
    };
    Req {
        method: Method::PATCH,
        ..Req::post(
            path,
            json!({"credentials": {"botToken": format!("{}:AArotated-{i}", 100_000 + k)}}),
            auth.clone(),
        )
    }
}

/// The `i`-th webhook endpoint create: one per tenant, disabled (nothing is ever delivered to
/// it), to a public-looking URL (the server checks URLs without resolving them).
fn endpoint_request(todo: &[(String, Option<String>, usize)], i: u64) -> Req {
    let k = usize::try_from(i).unwrap_or(usize::MAX);
    let Some((id, auth, n)) = todo.get(k) else {
        return Req::get("/health".into(), None);
    };
    let body = json!({"url": format!("https://hooks.example.com/bench/{n}"),
                      "description": "bench", "enabled": false});
    Req::post(&format!("/tenants/{id}/webhooks"), body, auth.clone())
}

/// The `i`-th endpoint change: a new description for the next endpoint in turn.
fn endpoint_update_request(targets: &[(String, Option<String>)], i: u64) -> Req {
    let Some((_, (path, auth))) = in_turn(targets, i) else {
        return Req::get("/health".into(), None);
    };
    Req {
        method: Method::PATCH,
        ..Req::post(
            path,
            json!({"description": format!("bench change {i}")}),
            auth.clone(),
        )
    }
}

/// The `i`-th API key issued: to the next tenant in turn.
fn key_request(targets: &[(String, Option<String>)], i: u64) -> Req {
    let Some((_, (path, auth))) = in_turn(targets, i) else {
        return Req::get("/health".into(), None);
    };
    Req::post(
        path,
        json!({"name": format!("bench key {i}")}),
        auth.clone(),
    )
}

/// The id and API key of a create reply (flat, or wrapped as `{"tenant": {...}}`) or list item.
fn tenant_of(v: &Value) -> Option<Tenant> {
    let t = v.get("tenant").unwrap_or(v);
    Some(Tenant {
        id: t.get("id")?.as_str()?.to_owned(),
        api_key: v
            .get("apiKey")
            .or_else(|| t.get("apiKey"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Writes the tenants, one JSON line each (`{"id", "apiKey"}`), readable by [`parse_tenants`].
fn save_tenants(path: &Path, tenants: &[Tenant]) -> Result<(), String> {
    let mut text = String::new();
    for t in tenants {
        text.push_str(&json!({"id": t.id, "apiKey": t.api_key}).to_string());
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("writing tenants to {}: {e}", path.display()))
}

/// The tenants of a file written by [`save_tenants`].
fn parse_tenants(text: &str) -> Result<Vec<Tenant>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(k, l)| {
            serde_json::from_str::<Value>(l)
                .ok()
                .as_ref()
                .and_then(tenant_of)
                .ok_or_else(|| format!("line {}: not a tenant", k + 1))
        })
        .collect()
}

/// Sends one request and records it; returns the JSON body of a successful reply.
async fn exec(client: &Client, base: &str, req: &Req, rec: &mut Recorder) -> Option<Value> {
    let mut b = client.request(req.method.clone(), format!("{base}{}", req.path));
    if let Some(a) = &req.auth {
        b = b.header(AUTHORIZATION, a);
    }
    if let Some(tag) = &req.if_none_match {
        b = b.header(IF_NONE_MATCH, tag);
    }
    if let Some(key) = &req.idempotency_key {
        b = b.header("Idempotency-Key", key);
    }
    if let Some(body) = &req.body {
        b = b.json(body);
    }
    let started = Instant::now();
    let res = match b.send().await {
        Ok(res) => res,
        Err(e) => {
            rec.record_failure(
                started.elapsed(),
                &format!("{} {}: {e}", req.method, req.path),
            );
            return None;
        }
    };
    let status = res.status();
    match read_body(res).await {
        Ok((len, head)) => {
            let ok = status.is_success() || (req.ok_304 && status.as_u16() == 304);
            rec.record_status(status.as_u16(), started.elapsed(), len, ok);
            if !ok {
                let text = String::from_utf8_lossy(&head[..head.len().min(160)]).into_owned();
                rec.sample(&format!("{} {} → {status}: {text}", req.method, req.path));
                return None;
            }
            // Only small replies are parsed; the config document is counted, not decoded.
            (len <= KEPT_BODY)
                .then(|| serde_json::from_slice(&head).ok())
                .flatten()
        }
        Err(e) => {
            rec.record_failure(
                started.elapsed(),
                &format!("{} {}: body: {e}", req.method, req.path),
            );
            None
        }
    }
}

/// The most of a reply's body the driver keeps (to parse it, or to quote it in an error sample).
const KEPT_BODY: usize = 64 * 1024;

/// Reads a reply's body to its end as it arrives: its length, and its first [`KEPT_BODY`] bytes.
/// A large body (a 50 MB config document) is counted and dropped chunk by chunk, as a client
/// writing it to a file would, so the figures time the server and the connection rather than the
/// driver growing a buffer for it (fresh memory is slow to fault in on this VM).
async fn read_body(mut res: reqwest::Response) -> reqwest::Result<(usize, Vec<u8>)> {
    let mut len = 0;
    let mut head = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        len += chunk.len();
        let room = KEPT_BODY.saturating_sub(head.len());
        head.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok((len, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_stop_at_count() {
        let l = Limits::new(3, Duration::from_secs(60));
        let got: Vec<_> = std::iter::from_fn(|| l.take()).collect();
        assert_eq!(got, [0, 1, 2]);
        assert_eq!(l.take(), None);
    }

    #[test]
    fn limits_stop_at_deadline() {
        let l = Limits::new(u64::MAX, Duration::ZERO);
        assert_eq!(l.take(), None);
        assert_eq!(
            Limits::new(u64::MAX, Duration::ZERO).count,
            HARD_REQUEST_CAP
        );
    }

    #[test]
    fn tenants_from_flat_and_wrapped_replies() {
        let flat = tenant_of(&json!({"id": "a", "apiKey": "k"})).unwrap();
        assert_eq!(
            (flat.id.as_str(), flat.api_key.as_deref()),
            ("a", Some("k"))
        );
        let wrapped = tenant_of(&json!({"tenant": {"id": "b"}, "apiKey": "k2"})).unwrap();
        assert_eq!(
            (wrapped.id.as_str(), wrapped.api_key.as_deref()),
            ("b", Some("k2"))
        );
        assert!(tenant_of(&json!({"name": "x"})).is_none());
    }

    #[test]
    fn saved_tenants_read_back_with_their_keys() {
        let dir = std::env::temp_dir().join(format!("loaddriver-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tenants.jsonl");
        let tenants = [
            Tenant {
                id: "a".into(),
                api_key: Some("key-a".into()),
            },
            Tenant {
                id: "b".into(),
                api_key: None,
            },
        ];
        save_tenants(&path, &tenants).unwrap();
        let back = parse_tenants(&std::fs::read_to_string(&path).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let pairs: Vec<_> = back
            .iter()
            .map(|t| (t.id.as_str(), t.api_key.as_deref()))
            .collect();
        assert_eq!(pairs, [("a", Some("key-a")), ("b", None)]);
        assert!(parse_tenants("{\"id\": \"a\"}\nnot json\n").is_err());
    }

    #[test]
    fn two_channel_requests_per_tenant() {
        let todo = vec![("t1".to_owned(), None, 7)];
        let tg = channel_request(&todo, 0);
        let dc = channel_request(&todo, 1);
        assert_eq!(tg.path, "/tenants/t1/channels");
        assert_eq!(tg.body.unwrap()["channel"], "telegram");
        assert_eq!(
            dc.body.unwrap()["credentials"]["token"],
            "bench.discord.token.7"
        );
        assert_eq!(channel_request(&todo, 2).path, "/health");
    }

    #[test]
    fn endpoint_and_key_requests() {
        let todo = vec![("t1".to_owned(), None, 7)];
        let create = endpoint_request(&todo, 0);
        assert_eq!(create.path, "/tenants/t1/webhooks");
        let body = create.body.unwrap();
        assert_eq!(body["url"], "https://hooks.example.com/bench/7");
        assert_eq!(body["enabled"], false);
        assert_eq!(endpoint_request(&todo, 1).path, "/health");
        let targets = vec![
            ("/tenants/t1/webhooks/e1".to_owned(), None),
            ("/tenants/t2/webhooks/e2".to_owned(), None),
        ];
        let change = endpoint_update_request(&targets, 3);
        assert_eq!(change.method, Method::PATCH);
        assert_eq!(change.path, "/tenants/t2/webhooks/e2");
        assert_eq!(change.body.unwrap()["description"], "bench change 3");
        let keys = vec![("/tenants/t1/api-keys".to_owned(), None)];
        let key = key_request(&keys, 5);
        assert_eq!(
            (key.method, key.path.as_str()),
            (Method::POST, "/tenants/t1/api-keys")
        );
        assert_eq!(key_request(&[], 0).path, "/health");
    }
}
