//! `moltbot-saas config sync --url URL`: a gateway host without database access keeps its
//! gateway's file from the control plane's API, with the gateway's own token (read from
//! `SAAS_SYNC_TOKEN`, never from the command line). Each pass fetches `GET /config` (with
//! `If-None-Match`), swaps the file atomically when it changed, and sends the heartbeat
//! (`POST /gateway/heartbeat` with the `ETag` and revision it now serves): that renews the
//! gateway's lease and acknowledges moves away from it (`docs/fleet.md`).
//!
//! With `--interval` it fences like the database-mode sync
//! (`tenant_service::gateway_config::fence`): it writes a document with tenants only while its
//! lease is valid (so not before its first heartbeat), and a document with no tenants — the one
//! `GET /config?fenced=true` gave it at start — when it starts (it cannot know what the control
//! plane did since the file was written; the lease it learns from the first heartbeat's answer),
//! once it could not renew for a lease, and when it stops (SIGTERM, Ctrl-C, or a token the
//! server refuses).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};
use tenant_configgen::Dialect;
use tenant_service::gateway_config::atomic_file::write_if_changed;
use tenant_service::gateway_config::fence::Fence;

use super::console::CliResult;

/// The environment variable holding the gateway's token.
pub const TOKEN_VAR: &str = "SAAS_SYNC_TOKEN";
/// The longest wait between passes while the control plane is away.
const OUTAGE_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The lease assumed until the control plane's first answer says it.
const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// What `config sync --url` does.
#[derive(Debug)]
pub struct HttpSync {
    /// The control plane's base URL (`https://saas.example.com`).
    pub url: String,
    /// The dialect to fetch (default: the server's).
    pub dialect: Option<Dialect>,
    /// The file.
    pub out: PathBuf,
    /// Seconds between passes; `None`: one pass, no heartbeat, no fence.
    pub interval: Option<Duration>,
    /// The longest one request may take, connecting included (`--timeout`,
    /// `SAAS_SYNC_TIMEOUT_SECS`): a control plane that accepts and never answers fails the pass
    /// after this long, as an outage (retried; the file is kept as it is, until the fence).
    pub timeout: Duration,
    /// Whether to fence (with an interval).
    pub fence: bool,
}

/// Why a pass stopped short.
#[derive(Debug)]
enum PassError {
    /// The control plane refused the token or the request: stop.
    Fatal(String),
    /// Unreachable, timed out, or a 5xx: retry.
    Transient(String),
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    dialect: Option<Dialect>,
}

impl Client {
    fn query(&self, fenced: bool) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(d) = self.dialect {
            q.push(("dialect", d.as_str().to_owned()));
        }
        if fenced {
            q.push(("fenced", "true".to_owned()));
        }
        q
    }

    fn classify(status: StatusCode, what: &str, body: &str) -> PassError {
        let detail: String = body.chars().take(300).collect();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            PassError::Transient(format!("{what}: {status}"))
        } else if status == StatusCode::UNAUTHORIZED {
            PassError::Fatal(format!(
                "{what}: the control plane refused the gateway token ({TOKEN_VAR}): rotated or its gateway deleted?"
            ))
        } else {
            PassError::Fatal(format!("{what}: {status}: {detail}"))
        }
    }

    fn transient(what: &str) -> impl FnOnce(reqwest::Error) -> PassError + '_ {
        move |e| {
            if e.is_timeout() {
                PassError::Transient(format!(
                    "{what}: no answer within the timeout (--timeout, SAAS_SYNC_TIMEOUT_SECS): {e}"
                ))
            } else {
                PassError::Transient(format!("{what}: {e}"))
            }
        }
    }

    /// `GET /config`: `Some((body, etag, revision))`, or `None` when `etag` is still current.
    async fn fetch(
        &self,
        etag: Option<&str>,
        fenced: bool,
    ) -> Result<Option<(String, Option<String>, Option<i64>)>, PassError> {
        let mut req = self
            .http
            .get(format!("{}/config", self.base))
            .bearer_auth(&self.token)
            .query(&self.query(fenced));
        if let Some(tag) = etag {
            req = req.header(IF_NONE_MATCH, tag);
        }
        let r = req.send().await.map_err(Self::transient("GET /config"))?;
        let status = r.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let tag = r
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let revision = r
            .headers()
            .get(crate::routes::config::REVISION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = r.text().await.map_err(Self::transient("GET /config"))?;
        if status != StatusCode::OK {
            return Err(Self::classify(status, "GET /config", &body));
        }
        Ok(Some((body, tag, revision)))
    }

    /// `POST /gateway/heartbeat`; returns the lease the control plane answers with.
    async fn heartbeat(
        &self,
        etag: &str,
        revision: Option<i64>,
        fencing: bool,
    ) -> Result<Option<Duration>, PassError> {
        let mut body = json!({"etag": etag, "fencing": fencing});
        if let Some(rev) = revision {
            body["revision"] = json!(rev);
        }
        if let Some(d) = self.dialect {
            body["dialect"] = json!(d.as_str());
        }
        let r = self
            .http
            .post(format!("{}/gateway/heartbeat", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(Self::transient("POST /gateway/heartbeat"))?;
        let status = r.status();
        let text = r
            .text()
            .await
            .map_err(Self::transient("POST /gateway/heartbeat"))?;
        if status != StatusCode::OK {
            return Err(Self::classify(status, "POST /gateway/heartbeat", &text));
        }
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(answer["leaseSecs"].as_u64().map(Duration::from_secs))
    }
}

/// What the file holds now.
#[derive(Debug, Default)]
struct Served {
    etag: Option<String>,
    revision: Option<i64>,
}

/// Runs `config sync --url`.
pub fn run(sync: HttpSync) -> CliResult {
    let token = std::env::var(TOKEN_VAR)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("config sync --url: set {TOKEN_VAR} to the gateway's token"))?;
    let base = sync.url.trim_end_matches('/').to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err("config sync --url: an http:// or https:// URL".into());
    }
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(sync.timeout)
            .connect_timeout(sync.timeout)
            .build()?,
        base,
        token,
        dialect: sync.dialect,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let Some(every) = sync.interval else {
        // One pass: the document as it is, no lease.
        return match runtime.block_on(client.fetch(None, false)) {
            Ok(Some((body, _, _))) => {
                write_if_changed(&sync.out, body.as_bytes())?;
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(PassError::Fatal(e) | PassError::Transient(e)) => Err(e.into()),
        };
    };
    let fence = if sync.fence {
        // The fenced document first: without it there is nothing safe to fence with.
        let empty: String = runtime.block_on(async {
            let mut wait = every;
            loop {
                match client.fetch(None, true).await {
                    Ok(Some((body, _, _))) => return Ok(body),
                    Ok(None) => {}
                    Err(PassError::Fatal(e)) => return Err(e),
                    Err(PassError::Transient(e)) => {
                        tracing::warn!(error = %e, "config sync: waiting for the control plane");
                    }
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(OUTAGE_BACKOFF_MAX.max(every));
            }
        })?;
        Some(super::sync_fence::fence_with_stop(
            &sync.out,
            (empty, None),
            DEFAULT_LEASE,
        )?)
    } else {
        None
    };
    let result = runtime.block_on(run_loop(&client, &sync, every, fence.as_ref()));
    if let Err(e) = &result {
        tracing::error!(error = %e, "config sync stopped");
        if let Some(fence) = &fence {
            fence.fence_now("config sync stopped on an error")?;
        }
    }
    result
}

async fn run_loop(
    client: &Client,
    sync: &HttpSync,
    every: Duration,
    fence: Option<&Arc<Fence>>,
) -> CliResult {
    let mut served = Served::default();
    let mut wait = every;
    let mut paused_since: Option<Instant> = None;
    loop {
        match pass(client, sync, fence, &mut served).await {
            Ok(again) => {
                if let Some(since) = paused_since.take() {
                    tracing::info!(
                        paused_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "gateway config sync resumed"
                    );
                }
                wait = every;
                if again {
                    continue;
                }
            }
            Err(PassError::Transient(e)) => {
                if paused_since.is_none() {
                    paused_since = Some(Instant::now());
                    tracing::warn!(error = %e, "gateway config sync paused: the control plane is unavailable; retrying");
                }
                wait = (wait * 2).min(OUTAGE_BACKOFF_MAX.max(every));
            }
            Err(PassError::Fatal(e)) => return Err(e.into()),
        }
        tokio::time::sleep(wait).await;
    }
}

/// One pass: fetch, swap (under the fence), heartbeat. Returns whether to run the next pass at
/// once (a document was refused for want of a valid lease, which the heartbeat just renewed).
async fn pass(
    client: &Client,
    sync: &HttpSync,
    fence: Option<&Arc<Fence>>,
    served: &mut Served,
) -> Result<bool, PassError> {
    // Taken before fetching: a fence after this point keeps this document out.
    let epoch = fence.map(|f| f.epoch());
    let fenced = fence.is_some_and(|f| f.is_fenced());
    // A fenced file is not what the tag names: fetch the body again.
    let current = if fenced { None } else { served.etag.as_deref() };
    let mut refused = false;
    if let Some((body, etag, revision)) = client.fetch(current, false).await? {
        let write = || write_if_changed(&sync.out, body.as_bytes());
        let written = match (fence, epoch) {
            (Some(f), Some(epoch)) => f.write(epoch, write),
            _ => Some(write()),
        };
        match written {
            Some(Ok(changed)) => {
                if changed {
                    tracing::info!(config.revision = ?revision, "gateway config synced");
                }
                *served = Served { etag, revision };
            }
            Some(Err(e)) => {
                return Err(PassError::Fatal(format!("{}: {e}", sync.out.display())));
            }
            None => refused = true,
        }
    }
    // The heartbeat after the swap: what the gateway now serves (nothing while fenced).
    let fenced = fence.is_some_and(|f| f.is_fenced()) || refused;
    let (etag, revision) = match (&served.etag, fenced) {
        (Some(tag), false) => (tag.as_str(), served.revision),
        _ => ("\"fenced\"", None),
    };
    let sent = Instant::now();
    let lease = client.heartbeat(etag, revision, fence.is_some()).await?;
    if let Some(f) = fence {
        f.renewed(sent);
        if let Some(lease) = lease {
            f.set_lease(lease);
        }
    }
    Ok(refused)
}
