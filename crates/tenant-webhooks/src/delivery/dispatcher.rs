//! The dispatcher: claims due deliveries under a lease, sends them signed, records every attempt
//! and decides what comes next (success, a retry by the schedule, or a dead letter).
//!
//! [`Dispatcher::dispatch_due`] is one deterministic round at a given time, which tests call
//! directly; [`Dispatcher::run`] repeats rounds in the server, woken by new events and a poll.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tenant_store::crypto::KeyRing;
use tenant_store::deliveries::{self, AttemptRecord, Claimed, Next};
use tenant_store::{Database, StoreError, webhooks};
use tokio::sync::Notify;
use uuid::Uuid;

use super::client::{ClientConfig, DeliveryClient, Response};
use super::metrics::Metrics;
use crate::{RetrySchedule, SigningSecret, signature_header};

/// The longest a dispatch loop waits between rounds while the database is away.
const OUTAGE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The attempt outcome of a delivery not sent because its endpoint's secret does not open.
pub const OUTCOME_UNSIGNED: &str = "unsigned";

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Dispatch loops run by [`Dispatcher::run`] (PostgreSQL; SQLite always uses one).
    pub workers: usize,
    /// Deliveries claimed per round, sent concurrently.
    pub batch_size: i64,
    /// How long a claim is held before another dispatcher may take the delivery.
    pub lease: Duration,
    /// When failed deliveries are retried.
    pub schedule: RetrySchedule,
    /// An endpoint failing continuously this long is disabled.
    pub failure_grace: Duration,
    /// How often an idle loop looks for due deliveries.
    pub poll_interval: Duration,
    /// How often metrics are logged.
    pub metrics_interval: Duration,
    /// The HTTP client's settings.
    pub client: ClientConfig,
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Deliveries claimed.
    pub claimed: usize,
    /// Accepted by their endpoint.
    pub succeeded: usize,
    /// Failed and scheduled again.
    pub retried: usize,
    /// Failed for good (exhausted, `410 Gone`, or endpoint disabled): dead letters.
    pub failed: usize,
}

/// Why a round could not run.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking task panicked or was cancelled.
    #[error("dispatcher task failed: {0}")]
    Task(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Sends due deliveries.
#[derive(Debug)]
pub struct Dispatcher {
    db: Database,
    ring: Arc<KeyRing>,
    client: DeliveryClient,
    config: DispatcherConfig,
    owner: String,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
}

struct Job {
    claimed: Claimed,
    secrets: Vec<SigningSecret>,
}

impl Dispatcher {
    /// A dispatcher on `db` with a unique lease owner id; `ring` opens the endpoints' sealed
    /// signing secrets.
    pub fn new(
        db: Database,
        ring: Arc<KeyRing>,
        config: DispatcherConfig,
    ) -> Result<Self, DispatchError> {
        let client = DeliveryClient::new(&config.client)
            .map_err(|e| DispatchError::Client(e.to_string()))?;
        Ok(Self {
            db,
            ring,
            client,
            config,
            owner: format!("dispatcher-{}", Uuid::new_v4().simple()),
            metrics: Arc::default(),
            wake: Arc::default(),
        })
    }

    /// The lease owner id of this dispatcher.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Counters since start.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Wakes an idle loop: call after enqueuing deliveries.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut tenant_store::AnyConnection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, DispatchError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.get()?;
            work(&mut conn)
        })
        .await
        .map_err(|e| DispatchError::Task(e.to_string()))?
        .map_err(DispatchError::from)
    }

    /// One round at `now`: claims due deliveries, sends them concurrently, records the outcomes.
    pub async fn dispatch_due(&self, now: DateTime<Utc>) -> Result<Outcome, DispatchError> {
        let owner = self.owner.clone();
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::MAX);
        let limit = self.config.batch_size;
        let ring = Arc::clone(&self.ring);
        let jobs = self
            .blocking(move |c| {
                let claimed = deliveries::claim(c, &owner, now, now + lease, limit)?;
                let mut secrets: HashMap<String, Vec<SigningSecret>> = HashMap::new();
                let mut jobs = Vec::with_capacity(claimed.len());
                for d in claimed {
                    if !secrets.contains_key(&d.endpoint_id) {
                        let id =
                            Uuid::parse_str(&d.endpoint_id).map_err(|e| StoreError::Corrupt {
                                table: "webhook_deliveries",
                                id: d.id.clone(),
                                reason: e.to_string(),
                            })?;
                        let parsed = match webhooks::signing_secrets(c, id, now, &ring) {
                            Ok(found) => found
                                .iter()
                                .filter_map(|s| SigningSecret::parse(s.expose()).ok())
                                .collect(),
                            // One endpoint whose secret does not open (its key is missing from
                            // the ring) must not stop everyone's deliveries: its own are not
                            // sent, and retried on schedule (see `send`).
                            Err(e @ StoreError::WebhookSecret { .. }) => {
                                tracing::error!(
                                    webhook.endpoint_id = %id,
                                    error = %e,
                                    "cannot sign deliveries: the endpoint's secret does not open"
                                );
                                Vec::new()
                            }
                            Err(e) => return Err(e),
                        };
                        secrets.insert(d.endpoint_id.clone(), parsed);
                    }
                    let s = secrets.get(&d.endpoint_id).cloned().unwrap_or_default();
                    jobs.push(Job {
                        claimed: d,
                        secrets: s,
                    });
                }
                Ok(jobs)
            })
            .await?;
        let mut outcome = Outcome {
            claimed: jobs.len(),
            ..Outcome::default()
        };
        if jobs.is_empty() {
            return Ok(outcome);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for job in jobs {
            let client = self.client.clone();
            tasks.spawn(async move {
                let response = send(&client, &job).await;
                (job.claimed, response)
            });
        }
        let mut records = Vec::with_capacity(outcome.claimed);
        let mut health: HashMap<String, (bool, bool)> = HashMap::new();
        while let Some(joined) = tasks.join_next().await {
            let (claimed, response) = joined.map_err(|e| DispatchError::Task(e.to_string()))?;
            let record = self.decide(&claimed, response.as_ref(), now);
            let sent = response
                .as_ref()
                .filter(|r| r.outcome != OUTCOME_UNSIGNED)
                .map(|r| r.latency);
            self.metrics.record(record.outcome, record.next, sent);
            match record.next {
                Next::Succeeded => outcome.succeeded += 1,
                Next::RetryAt(_) => outcome.retried += 1,
                Next::Failed => outcome.failed += 1,
            }
            // Only what the endpoint answered counts towards its health.
            if response
                .as_ref()
                .is_some_and(|r| r.outcome != OUTCOME_UNSIGNED)
            {
                let gone = record.status_code == Some(410);
                let ok = matches!(record.next, Next::Succeeded);
                let entry = health
                    .entry(claimed.endpoint_id.clone())
                    .or_insert((ok, gone));
                entry.0 |= ok;
                entry.1 |= gone;
            }
            records.push(record);
        }
        let owner = self.owner.clone();
        let grace =
            chrono::Duration::from_std(self.config.failure_grace).unwrap_or(chrono::Duration::MAX);
        self.blocking(move |c| {
            deliveries::complete(c, &owner, &records)?;
            for (endpoint, (ok, gone)) in health {
                if let Ok(id) = Uuid::parse_str(&endpoint) {
                    webhooks::record_health(c, id, ok, gone, grace, now)?;
                }
            }
            Ok(())
        })
        .await?;
        Ok(outcome)
    }

    /// What follows an attempt (`None`: the endpoint was disabled, nothing was sent).
    fn decide(&self, d: &Claimed, r: Option<&Response>, now: DateTime<Utc>) -> AttemptRecord {
        let attempt = d.attempts.saturating_add(1);
        let Some(r) = r else {
            return AttemptRecord {
                delivery_id: d.id.clone(),
                attempt: d.attempts,
                outcome: "disabled",
                status_code: None,
                latency_ms: 0,
                error: Some("the endpoint is disabled".into()),
                response_excerpt: None,
                next: Next::Failed,
                at: now,
            };
        };
        let next = if r.outcome == "success" {
            Next::Succeeded
        } else if r.status == Some(410) {
            Next::Failed
        } else {
            let schedule = &self.config.schedule;
            let retry_after = r
                .retry_after
                .as_deref()
                .and_then(|v| schedule.retry_after(v, SystemTime::from(now)));
            let index = u32::try_from(attempt).unwrap_or(u32::MAX);
            match schedule.next_delay_with_retry_after(index, &mut rand::rng(), retry_after) {
                Some(wait) => Next::RetryAt(
                    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
                ),
                None => Next::Failed,
            }
        };
        AttemptRecord {
            delivery_id: d.id.clone(),
            attempt,
            outcome: r.outcome,
            status_code: r.status.map(i32::from),
            latency_ms: i64::try_from(r.latency.as_millis()).unwrap_or(i64::MAX),
            error: r.error.clone(),
            response_excerpt: r.excerpt.clone(),
            next,
            at: now,
        }
    }

    /// Rounds at the current time until nothing is due; returns the totals.
    pub async fn drain(&self) -> Result<Outcome, DispatchError> {
        let mut total = Outcome::default();
        loop {
            let o = self.dispatch_due(Utc::now()).await?;
            total.claimed += o.claimed;
            total.succeeded += o.succeeded;
            total.retried += o.retried;
            total.failed += o.failed;
            if o.claimed == 0 {
                return Ok(total);
            }
        }
    }

    /// Runs dispatch loops forever (the server aborts them on shutdown; a lease left behind
    /// expires and the delivery is retried).
    pub async fn run(self: Arc<Self>) {
        let workers = if self.db.backend() == "sqlite" {
            1
        } else {
            self.config.workers.max(1)
        };
        tracing::info!(
            dispatcher.owner = %self.owner,
            workers,
            batch = self.config.batch_size,
            "webhook dispatcher started"
        );
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..workers {
            loops.spawn(self.clone().worker());
        }
        loops.spawn(self.clone().report_metrics());
        while loops.join_next().await.is_some() {}
    }

    /// While the database is away (or read-only, or full) rounds fail at once; the loop then
    /// waits twice as long after each, up to [`OUTAGE_BACKOFF_MAX`] (a new event wakes it
    /// sooner), and logs nothing: the store logs the outage once.
    async fn worker(self: Arc<Self>) {
        let mut wait = self.config.poll_interval;
        loop {
            match self.dispatch_due(Utc::now()).await {
                Ok(o) if o.claimed > 0 => {
                    wait = self.config.poll_interval;
                    continue;
                }
                Ok(_) => wait = self.config.poll_interval,
                Err(DispatchError::Store(e)) if e.fault().is_some() => {
                    tracing::debug!(error = %e, "webhook dispatch round skipped");
                    wait = (wait * 2).min(OUTAGE_BACKOFF_MAX.max(self.config.poll_interval));
                }
                Err(e) => tracing::warn!(error = %e, "webhook dispatch round failed"),
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn report_metrics(self: Arc<Self>) {
        let mut last = Instant::now();
        loop {
            tokio::time::sleep(self.config.metrics_interval).await;
            let depth = self
                .blocking(|c| deliveries::queue_depth(c, Utc::now()))
                .await;
            let m = self.metrics.snapshot();
            match depth {
                Ok(d) => tracing::info!(
                    webhooks.succeeded = m.succeeded,
                    webhooks.retried = m.retried,
                    webhooks.failed = m.failed,
                    webhooks.attempts_timeout = m.timeout,
                    webhooks.attempts_refused = m.refused,
                    webhooks.attempts_http_error = m.http_error,
                    webhooks.attempts_connect_error = m.connect_error,
                    webhooks.queue_pending = d.pending,
                    webhooks.queue_due = d.due,
                    webhooks.dead_letters = d.failed,
                    interval_s = last.elapsed().as_secs(),
                    "webhook metrics"
                ),
                Err(e) => tracing::warn!(error = %e, "webhook queue depth unavailable"),
            }
            last = Instant::now();
        }
    }
}

/// Sends one delivery; `None` when its endpoint is disabled.
async fn send(client: &DeliveryClient, job: &Job) -> Option<Response> {
    let d = &job.claimed;
    if !d.endpoint_enabled {
        return None;
    }
    let msg_id = match Uuid::parse_str(&d.id) {
        Ok(u) => format!("msg_{}", u.simple()),
        Err(_) => format!("msg_{}", d.id.replace(['-', '.'], "")),
    };
    if job.secrets.is_empty() {
        // Never send a delivery the tenant could not verify.
        return Some(Response {
            outcome: OUTCOME_UNSIGNED,
            status: None,
            retry_after: None,
            excerpt: None,
            error: Some("not sent: the endpoint's signing secret cannot be opened".into()),
            latency: Duration::ZERO,
        });
    }
    let timestamp = Utc::now().timestamp();
    let secrets: Vec<&SigningSecret> = job.secrets.iter().collect();
    let signature = signature_header(&secrets, &msg_id, timestamp, d.payload.as_bytes());
    Some(
        client
            .post(&d.url, &msg_id, timestamp, &signature, d.payload.clone())
            .await,
    )
}
