//! The dispatcher: claims due deliveries under a lease, sends them signed, records every attempt
//! and decides what comes next (success, a retry by the schedule, or a dead letter).
//!
//! [`Dispatcher::dispatch_due`] is one deterministic round at a given time, which tests call
//! directly. [`Dispatcher::run`] is the server's continuous pipeline: up to
//! `workers × batch_size` deliveries in flight, at most `endpoint_concurrency` of them per
//! endpoint; a delivery that finishes frees its slot at once and the next claim fills it, so a
//! slow or hanging endpoint holds only its own few slots and nobody waits for it. Claims are fair
//! across endpoints (see `tenant_store::deliveries::claim`), and an endpoint that keeps timing out
//! or refusing connections has its circuit opened (see [`super::circuit`]). Outcomes are recorded
//! in batches by a separate task, so the database work does not hold up sending.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tenant_store::crypto::KeyRing;
use tenant_store::deliveries::{self, AttemptRecord, ClaimLimits, Claimed, Next};
use tenant_store::endpoint_circuits::{self, CircuitRow, OPEN};
use tenant_store::{Database, StoreError, webhooks, write_transaction};
use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

use super::circuit::{self, CircuitPolicy, FAST_ANSWER, Holdings, Observation};
use super::client::{ClientConfig, DeliveryClient, Response};
use super::metrics::Metrics;
use crate::{RetrySchedule, SigningSecret, signature_header};

/// The longest a dispatch loop waits between rounds while the database is away.
const OUTAGE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The attempt outcome of a delivery not sent because its endpoint's secret does not open.
pub const OUTCOME_UNSIGNED: &str = "unsigned";

/// The most outcomes recorded in one transaction.
const RECORD_BATCH: usize = 512;
/// What a graceful stop allows, beyond the request timeout, to record the last outcomes.
const STOP_RECORD_GRACE: Duration = Duration::from_secs(5);

/// A fast endpoint ([`FAST_ANSWER`]) may hold this many times the per-endpoint cap of claimed
/// deliveries (see [`Holdings`]): 32 with the default cap of 4.
const FAST_DEPTH_FACTOR: usize = 8;

/// What a claim running beside the sending answers: its limit, and the claimed jobs.
type ClaimAnswer = (usize, Result<Vec<Job>, DispatchError>);

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// With `batch_size`, how many deliveries [`Dispatcher::run`] keeps in flight:
    /// `workers × batch_size`.
    pub workers: usize,
    /// Deliveries claimed at most per claim (and per round of [`Dispatcher::dispatch_due`]).
    pub batch_size: i64,
    /// Deliveries of one endpoint in flight at once in this process (and claimed at most per
    /// claim).
    pub endpoint_concurrency: usize,
    /// When an endpoint's circuit opens, and for how long.
    pub circuit: CircuitPolicy,
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
    /// Set by [`Dispatcher::stop`].
    stopping: watch::Sender<bool>,
}

struct Job {
    claimed: Claimed,
    secrets: Vec<SigningSecret>,
}

/// Finished deliveries, decided, ready to record.
#[derive(Clone)]
struct Batch {
    outcome: Outcome,
    records: Vec<AttemptRecord>,
    /// By endpoint: (any success, any `410`).
    health: HashMap<String, (bool, bool)>,
    /// What the attempts said about their endpoints, in the order they finished.
    observations: Vec<(String, Observation)>,
    now: DateTime<Utc>,
}

/// Applies a batch's observations to the endpoints' circuits; an endpoint whose circuit opens
/// has its due deliveries moved to when it may be probed. Returns the circuits opened.
fn update_circuits(
    c: &mut tenant_store::AnyConnection,
    observations: &[(String, Observation)],
    policy: &CircuitPolicy,
    now: DateTime<Utc>,
) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    if observations.is_empty() {
        return Ok(Vec::new());
    }
    let mut endpoints: Vec<String> = observations.iter().map(|(e, _)| e.clone()).collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    let stored: HashMap<String, CircuitRow> = endpoint_circuits::load(c, &endpoints)?
        .into_iter()
        .map(|r| (r.endpoint_id.clone(), r))
        .collect();
    let mut opened = Vec::new();
    for endpoint in endpoints {
        let before = stored
            .get(&endpoint)
            .cloned()
            .unwrap_or_else(|| CircuitRow::closed(&endpoint));
        let mut row = before.clone();
        let mut opened_until = None;
        for (_, obs) in observations.iter().filter(|(e, _)| *e == endpoint) {
            if let Some(until) = circuit::apply(&mut row, *obs, policy, now) {
                opened_until = Some(until);
            }
        }
        if row == before {
            continue;
        }
        endpoint_circuits::save(c, &row, now)?;
        match opened_until {
            Some(until) if row.state == OPEN => {
                let moved = deliveries::hold_back(c, &endpoint, until, now)?;
                tracing::warn!(
                    webhook.endpoint_id = %endpoint,
                    failures = row.failures,
                    deliveries.held_back = moved,
                    retry_in_s = (until - now).num_seconds(),
                    "webhook endpoint circuit opened: it keeps timing out or refusing connections"
                );
                opened.push((endpoint, until));
            }
            _ if before.state != row.state => tracing::info!(
                webhook.endpoint_id = %endpoint,
                circuit = %row.state,
                "webhook endpoint circuit {}", row.state
            ),
            _ => {}
        }
    }
    Ok(opened)
}

/// The claimed deliveries with their endpoints' signing secrets (opened once per endpoint).
fn with_secrets(
    c: &mut tenant_store::AnyConnection,
    claimed: Vec<Claimed>,
    now: DateTime<Utc>,
    ring: &KeyRing,
) -> Result<Vec<Job>, StoreError> {
    let mut secrets: HashMap<String, Vec<SigningSecret>> = HashMap::new();
    let mut jobs = Vec::with_capacity(claimed.len());
    for d in claimed {
        if !secrets.contains_key(&d.endpoint_id) {
            let id = Uuid::parse_str(&d.endpoint_id).map_err(|e| StoreError::Corrupt {
                table: "webhook_deliveries",
                id: d.id.clone(),
                reason: e.to_string(),
            })?;
            let parsed = match webhooks::signing_secrets(c, id, now, ring) {
                Ok(found) => found
                    .iter()
                    .filter_map(|s| SigningSecret::parse(s.expose()).ok())
                    .collect(),
                // One endpoint whose secret does not open (its key is missing from the ring)
                // must not stop everyone's deliveries: its own are not sent, and retried on
                // schedule (see `send`).
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
            stopping: watch::Sender::new(false),
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

    /// Claims up to `limit` due deliveries at `now` with their signing secrets, in one
    /// transaction (see `deliveries::claim_transaction`): first the probe of every circuit due
    /// for one, then fairly across endpoints (at most `endpoint_concurrency` each, `deep` each
    /// of the endpoints in `fast`), leaving the endpoints in `exclude` alone.
    async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        exclude: Vec<String>,
        fast: Vec<String>,
        deep: usize,
    ) -> Result<Vec<Job>, DispatchError> {
        let owner = self.owner.clone();
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::MAX);
        let per_endpoint = i64::try_from(self.config.endpoint_concurrency.max(1)).unwrap_or(1);
        let failures = i32::try_from(self.config.circuit.failures.max(1)).unwrap_or(i32::MAX);
        let deep = i64::try_from(deep).unwrap_or(i64::MAX);
        let ring = Arc::clone(&self.ring);
        self.blocking(move |c| {
            deliveries::claim_transaction(c, |c| {
                let mut claimed = Vec::new();
                for endpoint in endpoint_circuits::take_probes(c, &owner, now, now + lease)? {
                    match deliveries::claim_probe(c, &owner, &endpoint, now, now + lease)? {
                        Some(d) => claimed.push(d),
                        None => endpoint_circuits::close_without_probe(
                            c,
                            &owner,
                            &endpoint,
                            failures - 1,
                            now,
                        )?,
                    }
                }
                let rest = limit.saturating_sub(claimed.len());
                if rest > 0 {
                    claimed.extend(deliveries::claim(
                        c,
                        &owner,
                        now,
                        now + lease,
                        ClaimLimits {
                            limit: i64::try_from(rest).unwrap_or(i64::MAX),
                            per_endpoint,
                            fast: &fast,
                            deep,
                            exclude: &exclude,
                        },
                    )?);
                }
                with_secrets(c, claimed, now, &ring)
            })
        })
        .await
    }

    /// One round at `now`: claims due deliveries (fairly, see [`Self::claim_jobs`]), sends them
    /// concurrently, records the outcomes and the endpoints' circuits.
    pub async fn dispatch_due(&self, now: DateTime<Utc>) -> Result<Outcome, DispatchError> {
        let limit = usize::try_from(self.config.batch_size.max(1)).unwrap_or(1);
        let jobs = self
            .claim_jobs(now, limit, Vec::new(), Vec::new(), 0)
            .await?;
        if jobs.is_empty() {
            return Ok(Outcome::default());
        }
        let mut tasks = tokio::task::JoinSet::new();
        for job in jobs {
            let client = self.client.clone();
            tasks.spawn(async move {
                let response = send(&client, &job).await;
                (job.claimed, response)
            });
        }
        let mut done = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            done.push(joined.map_err(|e| DispatchError::Task(e.to_string()))?);
        }
        let batch = self.prepare(done, now);
        let outcome = batch.outcome;
        self.persist(batch).await?;
        Ok(outcome)
    }

    /// Decides what follows each finished delivery and counts it in the metrics.
    fn prepare(&self, done: Vec<(Claimed, Option<Response>)>, now: DateTime<Utc>) -> Batch {
        let mut batch = Batch {
            outcome: Outcome {
                claimed: done.len(),
                ..Outcome::default()
            },
            records: Vec::with_capacity(done.len()),
            health: HashMap::new(),
            observations: Vec::new(),
            now,
        };
        for (claimed, response) in done {
            let record = self.decide(&claimed, response.as_ref(), now);
            let sent = response
                .as_ref()
                .filter(|r| r.outcome != OUTCOME_UNSIGNED)
                .map(|r| r.latency);
            self.metrics.record(record.outcome, record.next, sent);
            match record.next {
                Next::Succeeded => batch.outcome.succeeded += 1,
                Next::RetryAt(_) => batch.outcome.retried += 1,
                Next::Failed => batch.outcome.failed += 1,
            }
            if let Some(obs) = response.as_ref().and_then(|r| Observation::of(r.outcome)) {
                batch.observations.push((claimed.endpoint_id.clone(), obs));
            }
            // Only what the endpoint answered counts towards its health.
            if response
                .as_ref()
                .is_some_and(|r| r.outcome != OUTCOME_UNSIGNED)
            {
                let gone = record.status_code == Some(410);
                let ok = matches!(record.next, Next::Succeeded);
                let entry = batch
                    .health
                    .entry(claimed.endpoint_id.clone())
                    .or_insert((ok, gone));
                entry.0 |= ok;
                entry.1 |= gone;
            }
            batch.records.push(record);
        }
        batch
    }

    /// Records a batch: the attempts and outcomes, then the endpoints' circuits and health.
    /// Returns the circuits it opened, with when they may be probed.
    async fn persist(&self, batch: Batch) -> Result<Vec<(String, DateTime<Utc>)>, DispatchError> {
        let owner = self.owner.clone();
        let grace =
            chrono::Duration::from_std(self.config.failure_grace).unwrap_or(chrono::Duration::MAX);
        let policy = self.config.circuit;
        // One transaction, so a batch tried again after a failure is never half recorded.
        self.blocking(move |c| {
            let now = batch.now;
            write_transaction(c, |c| {
                deliveries::complete(c, &owner, &batch.records)?;
                let opened = update_circuits(c, &batch.observations, &policy, now)?;
                for (endpoint, (ok, gone)) in &batch.health {
                    if let Ok(id) = Uuid::parse_str(endpoint) {
                        webhooks::record_health(c, id, *ok, *gone, grace, now)?;
                    }
                }
                Ok(opened)
            })
        })
        .await
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

    /// Asks [`Dispatcher::run`] to stop gracefully: it claims nothing more, gives back at once
    /// what it holds but has not sent (due again, for another process or the next start), lets
    /// what is in flight finish (each send ends within the request timeout), records every
    /// outcome, and returns. Without this, a stopped process leaves its claims to expire with
    /// their lease: what it held waits a lease, and what it sent but had not recorded is sent
    /// again.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// How long a graceful stop may take when the database answers: the request timeout (the
    /// longest a send in flight lasts) and a few seconds to record the outcomes.
    pub fn stop_grace(&self) -> Duration {
        self.config.client.request_timeout + STOP_RECORD_GRACE
    }

    /// Runs the dispatcher until [`Dispatcher::stop`] (a process that is aborted instead leaves
    /// its leases to expire, and those deliveries are retried): the claiming and sending
    /// pipeline, the recorder of outcomes, and the metrics log.
    pub async fn run(self: Arc<Self>) {
        let batch = usize::try_from(self.config.batch_size.max(1)).unwrap_or(1);
        let max_in_flight = self.config.workers.max(1).saturating_mul(batch);
        tracing::info!(
            dispatcher.owner = %self.owner,
            max_in_flight,
            endpoint_concurrency = self.config.endpoint_concurrency,
            batch,
            "webhook dispatcher started"
        );
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (opened_tx, opened_rx) = mpsc::unbounded_channel();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(self.clone().recorder(done_rx, opened_tx));
        // The pipeline returns when stopped; the recorder when the pipeline's outcomes are all
        // recorded (its channel closes with the pipeline).
        tasks.spawn(self.clone().pipeline(max_in_flight, done_tx, opened_rx));
        let metrics = tokio::spawn(self.clone().report_metrics());
        while tasks.join_next().await.is_some() {}
        metrics.abort();
        tracing::info!(dispatcher.owner = %self.owner, "webhook dispatcher stopped");
    }

    /// Claims and sends continuously. It claims whenever there is room (at start, after a
    /// delivery finishes, when woken by a new event, and every poll interval), never for an
    /// endpoint already holding its cap (a fast one: its depth, see [`Holdings`]); each claimed
    /// delivery starts as soon as its endpoint has a slot. One claim at a time runs beside the
    /// sending: a finished delivery's slot is refilled from what is held at once, without
    /// waiting for the database. While the database is away (or read-only, or full) claims fail
    /// at once; the poll then waits twice as long after each, up to [`OUTAGE_BACKOFF_MAX`] (a
    /// new event wakes it sooner), and logs nothing: the store logs the outage once.
    async fn pipeline(
        self: Arc<Self>,
        max_in_flight: usize,
        done: mpsc::UnboundedSender<(Claimed, Option<Response>)>,
        mut opened: mpsc::UnboundedReceiver<Vec<(String, DateTime<Utc>)>>,
    ) {
        let batch = usize::try_from(self.config.batch_size.max(1)).unwrap_or(1);
        let cap = self.config.endpoint_concurrency;
        let mut held: Holdings<Job> = Holdings::new(cap, self.fast_depth());
        let mut sends: tokio::task::JoinSet<(Claimed, Option<Response>)> =
            tokio::task::JoinSet::new();
        // At most one claim at a time; dropped (aborted) with the pipeline.
        let mut claiming: tokio::task::JoinSet<ClaimAnswer> = tokio::task::JoinSet::new();
        let mut wait = self.config.poll_interval;
        let mut claim = true;
        let mut stopping = self.stopping.subscribe();
        loop {
            if *stopping.borrow_and_update() {
                break;
            }
            if claim && claiming.is_empty() {
                let room = max_in_flight.saturating_sub(held.total());
                if room > 0 {
                    claim = false;
                    let limit = room.min(batch);
                    let (exclude, fast, deep) = (held.full(), held.fast(), held.depth());
                    let me = Arc::clone(&self);
                    claiming.spawn(async move {
                        let jobs = me.claim_jobs(Utc::now(), limit, exclude, fast, deep).await;
                        (limit, jobs)
                    });
                }
            }
            for job in held.ready() {
                let client = self.client.clone();
                sends.spawn(async move {
                    let response = send(&client, &job).await;
                    (job.claimed, response)
                });
            }
            tokio::select! {
                Some(joined) = sends.join_next(), if !sends.is_empty() => {
                    let mut finished = vec![joined];
                    while let Some(more) = sends.try_join_next() {
                        finished.push(more);
                    }
                    let mut slowed = Vec::new();
                    for joined in finished {
                        match joined {
                            Ok((claimed, response)) => {
                                held.finished(&claimed.endpoint_id);
                                let fast = response.as_ref().is_some_and(|r| {
                                    r.outcome == "success" && r.latency <= FAST_ANSWER
                                });
                                slowed.extend(held.observe(&claimed.endpoint_id, fast));
                                let _ = done.send((claimed, response));
                            }
                            // A send never panics; if one did, its lease expires and the
                            // delivery is retried.
                            Err(e) => tracing::error!(error = %e, "webhook send task failed"),
                        }
                    }
                    if !slowed.is_empty() {
                        // Due again at once, for whoever claims next (at the ordinary cap).
                        self.release(slowed, Utc::now()).await;
                    }
                    claim = true;
                }
                Some(claimed) = claiming.join_next(), if !claiming.is_empty() => {
                    match claimed {
                        Ok((limit, Ok(jobs))) => {
                            wait = self.config.poll_interval;
                            // A full claim may have left more behind: claim again at once.
                            claim |= jobs.len() == limit;
                            let mut endpoints = Vec::new();
                            for job in jobs {
                                let endpoint = job.claimed.endpoint_id.clone();
                                held.push(&endpoint, job);
                                endpoints.push(endpoint);
                            }
                            endpoints.sort_unstable();
                            endpoints.dedup();
                            // Claimed deep for an endpoint that has answered slowly since.
                            let excess: Vec<Job> =
                                endpoints.iter().flat_map(|e| held.excess(e)).collect();
                            if !excess.is_empty() {
                                self.release(excess, Utc::now()).await;
                            }
                        }
                        Ok((_, Err(DispatchError::Store(e)))) if e.fault().is_some() => {
                            tracing::debug!(error = %e, "webhook claim skipped");
                            wait =
                                (wait * 2).min(OUTAGE_BACKOFF_MAX.max(self.config.poll_interval));
                        }
                        Ok((_, Err(e))) => tracing::warn!(error = %e, "webhook claim failed"),
                        Err(e) => tracing::error!(error = %e, "webhook claim task failed"),
                    }
                }
                Some(circuits) = opened.recv() => {
                    self.release_queued(&mut held, circuits).await;
                }
                () = self.wake.notified() => claim = true,
                () = tokio::time::sleep(wait) => claim = true,
                _ = stopping.changed() => {}
            }
        }
        self.wind_down(held, sends, claiming, done).await;
    }

    /// Stops the pipeline: the claim under way is awaited, everything held but not sent goes
    /// back to the queue (due now), and the sends in flight finish and go to the recorder, which
    /// stops once it has recorded them (it holds the other end of `done`).
    async fn wind_down(
        &self,
        mut held: Holdings<Job>,
        mut sends: tokio::task::JoinSet<(Claimed, Option<Response>)>,
        mut claiming: tokio::task::JoinSet<ClaimAnswer>,
        done: mpsc::UnboundedSender<(Claimed, Option<Response>)>,
    ) {
        while let Some(claimed) = claiming.join_next().await {
            if let Ok((_, Ok(jobs))) = claimed {
                for job in jobs {
                    let endpoint = job.claimed.endpoint_id.clone();
                    held.push(&endpoint, job);
                }
            }
        }
        let unsent = held.unqueue_all();
        let (given_back, in_flight) = (unsent.len(), sends.len());
        if !unsent.is_empty() {
            self.release(unsent, Utc::now()).await;
        }
        tracing::info!(
            dispatcher.owner = %self.owner,
            deliveries.given_back = given_back,
            deliveries.in_flight = in_flight,
            "webhook dispatcher stopping: unsent claims given back, waiting for the sends in flight"
        );
        while let Some(joined) = sends.join_next().await {
            match joined {
                Ok(finished) => {
                    let _ = done.send(finished);
                }
                Err(e) => tracing::error!(error = %e, "webhook send task failed"),
            }
        }
    }

    /// How many claimed deliveries a fast endpoint may hold: [`FAST_DEPTH_FACTOR`] times the
    /// per-endpoint cap when the lease lasts at least three request timeouts (what it holds
    /// waits at most one timeout before it is given back, see [`Holdings`]), else the cap.
    fn fast_depth(&self) -> usize {
        let cap = self.config.endpoint_concurrency.max(1);
        if self.config.lease >= self.config.client.request_timeout.saturating_mul(3) {
            cap.saturating_mul(FAST_DEPTH_FACTOR)
        } else {
            cap
        }
    }

    /// Gives back the claims of deliveries held but not sent: due again at `at`.
    async fn release(&self, jobs: Vec<Job>, at: DateTime<Utc>) {
        let ids: Vec<String> = jobs.into_iter().map(|j| j.claimed.id).collect();
        let owner = self.owner.clone();
        let released = self
            .blocking(move |c| deliveries::release(c, &owner, &ids, at))
            .await;
        // Not released: the lease expires and they are claimed again.
        if let Err(e) = released {
            tracing::debug!(error = %e, "claimed deliveries not released");
        }
    }

    /// The circuits of some endpoints opened: what this process claimed of theirs but has not
    /// sent yet goes back to the queue, due when the circuit may be probed (if that fails, the
    /// lease expires and they are claimed again, then held back by the open circuit).
    async fn release_queued(
        &self,
        held: &mut Holdings<Job>,
        circuits: Vec<(String, DateTime<Utc>)>,
    ) {
        for (endpoint, until) in circuits {
            let jobs = held.unqueue(&endpoint);
            if !jobs.is_empty() {
                self.release(jobs, until).await;
            }
        }
    }

    /// Records finished deliveries in batches (whatever finished while the previous batch was
    /// written). A batch the database refuses is tried again with backoff for as long as the
    /// lease lasts; after that the deliveries are claimed and sent again (at-least-once).
    async fn recorder(
        self: Arc<Self>,
        mut done: mpsc::UnboundedReceiver<(Claimed, Option<Response>)>,
        opened: mpsc::UnboundedSender<Vec<(String, DateTime<Utc>)>>,
    ) {
        while let Some(first) = done.recv().await {
            let mut finished = vec![first];
            while finished.len() < RECORD_BATCH {
                match done.try_recv() {
                    Ok(more) => finished.push(more),
                    Err(_) => break,
                }
            }
            let batch = self.prepare(finished, Utc::now());
            let give_up = Instant::now() + self.config.lease;
            let mut wait = self.config.poll_interval;
            loop {
                match self.persist(batch.clone()).await {
                    Ok(circuits) => {
                        if !circuits.is_empty() {
                            let _ = opened.send(circuits);
                        }
                        break;
                    }
                    Err(e) if Instant::now() < give_up => {
                        tracing::debug!(error = %e, "webhook outcomes not recorded yet; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(OUTAGE_BACKOFF_MAX);
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            deliveries = batch.records.len(),
                            "webhook outcomes not recorded; the deliveries will be sent again"
                        );
                        break;
                    }
                }
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
                    webhooks.queue_oldest_due_age_s = d.oldest_due_age_secs,
                    webhooks.circuits_open = d.circuits_open,
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
