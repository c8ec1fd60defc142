//! The GCRA state shared by every replica through Redis: one Lua script per request checks and
//! charges all of its keys atomically (one round trip; `EVALSHA`, loaded again if Redis lost
//! it), on Redis's clock, each key expiring by itself once its debt is paid.
//!
//! Redis is a dependency that may go away. A failed call marks it unreachable (logged once),
//! after which requests use the per-process state ([`super::memory`]) without waiting on Redis;
//! a probe thread pings it every [`PROBE_INTERVAL`] and switches back once it answers (logged
//! once). The probe thread owns the connection's runtime and ends with the limiter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::gcra::Decision;
use super::{Check, Inline};

/// How often the probe checks Redis.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Checks and charges every key: `KEYS` are the keys, `ARGV` per key its emission interval and
/// tolerance (µs). Answers `{allowed, debt_1, …}` (µs): allowed only if every key is, and only
/// then are they charged. TATs are written as integers (`%d`: Lua's default formatting of
/// large numbers loses digits) with an expiry at the end of their debt.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local tats = {}
local allowed = 1
for i = 1, n do
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  tats[i] = tat
  if tat - now > tolerance then allowed = 0 end
end
local out = {allowed}
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local tat = tats[i]
  if allowed == 1 then
    tat = tat + interval
    local ttl = math.floor((tat - now) / 1000) + 1
    redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', string.format('%d', ttl))
  end
  out[i + 1] = tat - now
end
return out
";

/// The shared limiter's state and counters.
#[derive(Debug)]
pub struct SharedLimiter {
    prefix: String,
    script: redis::Script,
    conn: RwLock<Option<ConnectionManager>>,
    healthy: AtomicBool,
    /// Calls to Redis that failed (connection, timeout, script error).
    pub errors: AtomicU64,
}

/// What `/ready` reports of Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisState {
    /// Answering: limits are shared.
    Reachable,
    /// Not answering: each process limits on its own until it is back.
    Unreachable,
}

impl SharedLimiter {
    /// Starts the limiter on `url` with keys under `prefix`: the probe thread connects (now, and
    /// again whenever Redis is away). Requests before the first connection limit per process.
    pub fn start(url: &str, prefix: &str) -> Result<Arc<Self>, String> {
        let client = redis::Client::open(url).map_err(|e| format!("SAAS_REDIS_URL: {e}"))?;
        let me = Arc::new(Self {
            prefix: prefix.to_owned(),
            script: redis::Script::new(SCRIPT),
            conn: RwLock::new(None),
            healthy: AtomicBool::new(false),
            errors: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&me);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("redis-limits".into())
            .spawn(move || probe(weak, client, ready_tx))
            .map_err(|e| format!("cannot start the Redis probe: {e}"))?;
        // The first connection is waited for (briefly), so a server that starts with Redis up
        // shares its limits from the first request.
        let _ = ready_rx.recv_timeout(Duration::from_secs(2));
        Ok(me)
    }

    /// Whether Redis answered last time.
    pub fn state(&self) -> RedisState {
        if self.healthy.load(Ordering::Relaxed) {
            RedisState::Reachable
        } else {
            RedisState::Unreachable
        }
    }

    /// Checks and charges the keys in Redis; `None` when Redis is unreachable (the caller limits
    /// in memory instead).
    pub async fn check(&self, checks: &Inline<Check>) -> Option<Inline<(&'static str, Decision)>> {
        if !self.healthy.load(Ordering::Relaxed) {
            return None;
        }
        let mut conn = self
            .conn
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()?;
        let mut invocation = self.script.prepare_invoke();
        for c in checks.iter() {
            let mut key = String::with_capacity(self.prefix.len() + 36);
            key.push_str(&self.prefix);
            c.key.write_name(&mut key);
            invocation
                .key(key)
                .arg(c.quota.interval_us())
                .arg(c.quota.tolerance_us());
        }
        match invocation.invoke_async::<Vec<i64>>(&mut conn).await {
            Ok(out) if out.len() == checks.len() + 1 => {
                let allowed = out[0] == 1;
                Some(
                    checks
                        .iter()
                        .zip(&out[1..])
                        .map(|(c, debt)| (c.policy, Decision::from_debt(allowed, c.quota, *debt)))
                        .collect(),
                )
            }
            Ok(out) => {
                self.failed(&format!("unexpected answer of {} values", out.len()));
                None
            }
            Err(e) => {
                self.failed(&e.to_string());
                None
            }
        }
    }

    fn failed(&self, error: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(super::RATE_LIMIT_REDIS_ERRORS).increment(1);
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "Redis is unreachable: rate limits fall back to each process's own state until it is back"
            );
        }
    }

    fn recovered(&self) {
        if !self.healthy.swap(true, Ordering::Relaxed) {
            tracing::info!("Redis is reachable: rate limits are shared again");
        }
    }
}

/// The probe thread: connects, then pings every [`PROBE_INTERVAL`] until the limiter is gone.
fn probe(limiter: Weak<SharedLimiter>, client: redis::Client, ready: std::sync::mpsc::Sender<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the Redis probe's runtime");
            return;
        }
    };
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    runtime.block_on(async move {
        let mut ready = Some(ready);
        let mut first = true;
        loop {
            let Some(me) = limiter.upgrade() else { return };
            let existing = me
                .conn
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let conn = match existing {
                Some(c) => Some(c),
                None => {
                    match ConnectionManager::new_with_config(client.clone(), config.clone()).await
                    {
                        Ok(c) => {
                            *me.conn
                                .write()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                                Some(c.clone());
                            Some(c)
                        }
                        Err(e) => {
                            if first {
                                tracing::warn!(error = %e, "Redis is unreachable at start: rate limits are per process until it is reachable");
                            }
                            None
                        }
                    }
                }
            };
            first = false;
            if let Some(mut c) = conn {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut c).await;
                match pong {
                    Ok(_) => me.recovered(),
                    Err(e) => me.failed(&e.to_string()),
                }
            }
            if let Some(tx) = ready.take() {
                let _ = tx.send(());
            }
            drop(me);
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    });
}
