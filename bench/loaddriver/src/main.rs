//! `loaddriver`: runs benchmark phases against a moltbot-saas server on 127.0.0.1 and prints
//! one JSON line per phase. `loaddriver --help` lists the options.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use loaddriver::{Options, PHASES, target};
use serde_json::{Map, Value};

/// Load driver for moltbot-saas: one JSON line per phase on stdout.
#[derive(Debug, Parser)]
#[command(name = "loaddriver", version)]
struct Args {
    /// Server base URL; only http://127.0.0.1:<port> is accepted.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    base_url: String,
    /// Comma-separated phases: health, create, create-keyed (with an `Idempotency-Key` each), channels, credentials (`PATCH` of each Telegram channel's token in turn), endpoints (a webhook endpoint per tenant), endpoint-updates (`PATCH` of each endpoint in turn), keys (an API key for each tenant in turn), reads, config, ingest, list.
    #[arg(long, default_value = "create,channels,reads,config,ingest,list")]
    phases: String,
    /// Tenants to create (and most tenants fetched when no create phase runs).
    #[arg(short = 'n', long, default_value_t = 2000)]
    tenants: u64,
    /// Requests in flight at once.
    #[arg(short = 'c', long, default_value_t = 32)]
    concurrency: usize,
    /// Requests in flight at once in the config phase.
    #[arg(long, default_value_t = 2)]
    config_concurrency: usize,
    /// Seconds each time-bounded phase runs (reads, config, ingest, list, health).
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Most seconds a count-bounded phase (create, channels, endpoints) may take.
    #[arg(long, default_value_t = 300.0)]
    phase_timeout: f64,
    /// Most requests per phase.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,
    /// Seconds before one request times out (counted as an error).
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Operator bearer token.
    #[arg(long, env = "SAAS_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Gateway bearer token (config and ingest); the operator token is used when absent.
    #[arg(long, env = "SAAS_GATEWAY_TOKEN", hide_env_values = true)]
    gateway_token: Option<String>,
    /// Send tenant-scoped requests with each tenant's API key from its create reply.
    #[arg(long)]
    tenant_keys: bool,
    /// The server's pid: adds its CPU µs per request and peak RSS, read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Page size of the list phase.
    #[arg(long, default_value_t = 100)]
    page_size: u32,
    /// After a create phase, write the tenants and their API keys to this file (JSON lines).
    #[arg(long)]
    save_tenants: Option<std::path::PathBuf>,
    /// Without a create phase, take the tenants and their API keys from this file (written by
    /// --save-tenants) instead of listing them.
    #[arg(long)]
    load_tenants: Option<std::path::PathBuf>,
    /// Extra `key=value` fields for every line (repeatable), e.g. `--tag backend=sqlite`.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Exit with status 1 when any request failed.
    #[arg(long)]
    strict: bool,
    /// A shell command to run after each phase (its name in `PHASE`), e.g. a profiler's dump.
    #[arg(long)]
    after_phase: Option<String>,
}

fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    if s.is_finite() && (0.0..=86_400.0).contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("{what}: {s} is not between 0 and 86400 seconds"))
    }
}

fn options(a: Args) -> Result<(Options, bool), String> {
    let phases: Vec<String> = a
        .phases
        .split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(bad) = phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
        return Err(format!(
            "unknown phase {bad:?}; phases: {}",
            PHASES.join(",")
        ));
    }
    if !(1..=1024).contains(&a.concurrency) || !(1..=1024).contains(&a.config_concurrency) {
        return Err("concurrency must be between 1 and 1024".into());
    }
    if !(1..=500).contains(&a.page_size) {
        return Err("page size must be between 1 and 500".into());
    }
    let mut tags = Map::new();
    for t in &a.tags {
        let (k, v) = t
            .split_once('=')
            .ok_or_else(|| format!("tag {t:?}: expected key=value"))?;
        let number = match v.parse::<i64>() {
            Ok(i) => Some(Value::from(i)),
            Err(_) => v
                .parse::<f64>()
                .ok()
                .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number)),
        };
        tags.insert(
            k.to_owned(),
            number.unwrap_or_else(|| Value::String(v.to_owned())),
        );
    }
    Ok((
        Options {
            base_url: target::check_base_url(&a.base_url)?,
            phases,
            tenants: a.tenants,
            concurrency: a.concurrency,
            config_concurrency: a.config_concurrency,
            duration: seconds("duration", a.duration)?,
            phase_timeout: seconds("phase timeout", a.phase_timeout)?,
            max_requests: a.max_requests,
            request_timeout: seconds("timeout", a.timeout)?,
            token: a.token,
            gateway_token: a.gateway_token,
            tenant_keys: a.tenant_keys,
            server_pid: a.server_pid,
            page_size: a.page_size,
            save_tenants: a.save_tenants,
            load_tenants: a.load_tenants,
            tags,
            after_phase: a.after_phase,
        },
        a.strict,
    ))
}

fn main() -> ExitCode {
    let (opts, strict) = match options(Args::parse()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("loaddriver: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread: the driver is pinned to one core, and a single-threaded runtime costs the
    // least CPU per request.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loaddriver: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(loaddriver::run(opts, &mut stdout)) {
        Ok(lines) => {
            let failed = lines.iter().any(|l| l["errors"].as_u64().unwrap_or(0) > 0);
            if strict && failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("loaddriver: {e}");
            ExitCode::FAILURE
        }
    }
}
