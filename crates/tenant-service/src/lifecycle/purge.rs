//! The purge: every [`RetentionPolicy::interval`], one replica (the holder of the `purge`
//! lease) removes the rows of deleted tenants and the history older than its retention, in
//! batches of at most [`RetentionPolicy::batch`] rows, each its own short transaction, pausing
//! between batches so that they hold the database at most [`RetentionPolicy::share`] of the
//! time (25 %: three times as long as the batch took). A batch slower than [`BATCH_TARGET`] halves the next. On SQLite, freed pages are then
//! returned to the file system a little at a time.
//!
//! A crash midway loses nothing: what was purged is committed, and the next round (on this
//! replica after its restart, or another once the lease expired) carries on where it stopped.

use std::time::{Duration, Instant};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use tenant_core::Plan;
use tenant_store::purge::{self, Cursor, Finished, PlanScope, TenantStep};
use tenant_store::{AnyConnection, Database, StoreResult};

use super::{BATCH_TARGET, Retention, RetentionPolicy};
use crate::error::{ServiceError, ServiceResult};

/// Rows purged, by kind (`events`, `deliveries`, `dead_letters`, `audit`, `deleted_tenants`).
pub const PURGED_ROWS: &str = "moltbot_saas_purged_rows_total";
/// Time of one purge batch (one transaction).
pub const PURGE_BATCH_TIME: &str = "moltbot_saas_purge_batch_duration_seconds";
/// Purge rounds, by result (`done`, `skipped`: another replica holds the lease, `failed`).
pub const PURGE_ROUNDS: &str = "moltbot_saas_purge_rounds_total";
/// Deleted tenants whose rows are still being purged.
pub const TENANTS_AWAITING_PURGE: &str = "moltbot_saas_tenants_awaiting_purge";
/// When the last purge round finished (Unix seconds).
pub const PURGE_LAST_DONE: &str = "moltbot_saas_purge_last_success_timestamp_seconds";

/// The lease's name in `maintenance_leases`.
const LEASE: &str = "purge";
/// Deleted tenants taken per round at most (the rest wait for the next round).
const TENANTS_PER_ROUND: i64 = 100;
/// The smallest batch a slow database shrinks batches to.
const MIN_BATCH: i64 = 50;
/// Pages SQLite's incremental vacuum frees per step.
const VACUUM_PAGES: u32 = 2_000;
/// Vacuum steps per round at most (the rest waits for the next round).
const VACUUM_STEPS: usize = 500;

/// Describes the purge's series to the installed recorder.
pub fn describe() {
    describe_counter!(PURGED_ROWS, Unit::Count, "Rows purged, by kind.");
    describe_histogram!(
        PURGE_BATCH_TIME,
        Unit::Seconds,
        "Time of one purge batch (one transaction)."
    );
    describe_counter!(
        PURGE_ROUNDS,
        Unit::Count,
        "Purge rounds, by result (done, skipped, failed)."
    );
    describe_gauge!(
        TENANTS_AWAITING_PURGE,
        Unit::Count,
        "Deleted tenants whose rows are still being purged."
    );
    describe_gauge!(
        PURGE_LAST_DONE,
        Unit::Seconds,
        "When the last purge round finished (Unix time)."
    );
}

/// What one round removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Events past their retention.
    pub events: u64,
    /// Delivered deliveries past theirs (their attempts went with them).
    pub deliveries: u64,
    /// Dead letters past theirs.
    pub dead_letters: u64,
    /// Audit entries past theirs.
    pub audit: u64,
    /// Rows of deleted tenants.
    pub tenant_rows: u64,
    /// Deleted tenants whose last row went.
    pub tenants_purged: u64,
}

impl PurgeReport {
    /// Rows removed in all.
    pub fn total(&self) -> u64 {
        self.events + self.deliveries + self.dead_letters + self.audit + self.tenant_rows
    }
}

/// Runs purge rounds for one process.
#[derive(Debug, Clone)]
pub struct Purger {
    db: Database,
    policy: RetentionPolicy,
    holder: String,
}

/// The lease and batch size of a round in progress.
struct Round {
    renewed: Instant,
    batch: i64,
}

impl Purger {
    /// A purger on `db` keeping `policy`; its lease holder name is unique to this process.
    pub fn new(db: Database, policy: RetentionPolicy) -> Self {
        Self {
            db,
            policy,
            holder: format!("purge-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The policy it keeps.
    pub fn policy(&self) -> &RetentionPolicy {
        &self.policy
    }

    /// How long the lease lasts without renewal: a crashed holder's is taken over after this.
    fn lease_ttl(&self) -> Duration {
        (self.policy.interval * 2).clamp(Duration::from_secs(3), Duration::from_secs(120))
    }

    /// Purge rounds every interval, forever (the background task).
    pub async fn run(self) {
        loop {
            tokio::time::sleep(self.policy.interval).await;
            match self.round().await {
                Ok(Some(report)) if report.total() > 0 => tracing::info!(
                    events = report.events,
                    deliveries = report.deliveries,
                    dead_letters = report.dead_letters,
                    audit = report.audit,
                    tenant_rows = report.tenant_rows,
                    tenants_purged = report.tenants_purged,
                    "purge round done"
                ),
                Ok(_) => {}
                // The store logs a database outage itself; the next round carries on.
                Err(ServiceError::Store(e)) if e.fault().is_some() => {
                    tracing::debug!(error = %e, "purge round interrupted");
                }
                Err(e) => tracing::warn!(error = %e, "purge round failed"),
            }
        }
    }

    /// One round: `None` when another replica holds the lease, else what it removed.
    pub async fn round(&self) -> ServiceResult<Option<PurgeReport>> {
        let result = self.round_inner().await;
        let label = match &result {
            Ok(Some(_)) => "done",
            Ok(None) => "skipped",
            Err(_) => "failed",
        };
        counter!(PURGE_ROUNDS, "result" => label).increment(1);
        if matches!(result, Ok(Some(_))) {
            gauge!(PURGE_LAST_DONE).set(tenant_core::now().timestamp() as f64);
        }
        let (holder, db) = (self.holder.clone(), self.db.clone());
        // Let another replica take over at once, whatever happened (best effort).
        let _ = crate::db::run(&db, move |c| {
            purge::release_lease(c, LEASE, &holder).map_err(ServiceError::from)
        })
        .await;
        result
    }

    async fn round_inner(&self) -> ServiceResult<Option<PurgeReport>> {
        let mut round = Round {
            renewed: Instant::now(),
            batch: self.policy.batch,
        };
        if !self.take_lease().await? {
            return Ok(None);
        }
        let mut report = PurgeReport::default();
        self.purge_deleted_tenants(&mut round, &mut report).await?;
        let now = tenant_core::now();
        if let Some(before) = self.policy.deliveries.cutoff(now) {
            report.deliveries = self
                .walk(&mut round, "deliveries", move |c, at, n| {
                    purge::finished_deliveries(c, Finished::Delivered, before, at, n)
                })
                .await?;
        }
        if let Some(before) = self.policy.dead_letters.cutoff(now) {
            report.dead_letters = self
                .walk(&mut round, "dead_letters", move |c, at, n| {
                    purge::finished_deliveries(c, Finished::Dead, before, at, n)
                })
                .await?;
        }
        report.events = self.purge_events(&mut round, now).await?;
        if let Some(before) = self.policy.audit.cutoff(now) {
            report.audit = self
                .drain(&mut round, "audit", move |c, n| {
                    purge::old_audit(c, before, n)
                })
                .await?;
        }
        if report.total() > 0 {
            self.vacuum().await?;
        }
        Ok(Some(report))
    }

    /// Events: each plan with its own retention, then every other plan with the default one.
    async fn purge_events(
        &self,
        round: &mut Round,
        now: chrono::DateTime<chrono::Utc>,
    ) -> ServiceResult<u64> {
        let own: Vec<&'static str> = self
            .policy
            .events_by_plan
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        let mut total = 0;
        for plan in Plan::ALL {
            let Some((_, keep)) = self.policy.events_by_plan.iter().find(|(p, _)| p == plan) else {
                continue;
            };
            let Some(before) = keep.cutoff(now) else {
                continue;
            };
            let only = [plan.as_str()];
            total += self
                .walk(round, "events", move |c, at, n| {
                    purge::old_events(c, before, PlanScope::Only(&only), at, n)
                })
                .await?;
        }
        if let Retention::For(_) = self.policy.events
            && let Some(before) = self.policy.events.cutoff(now)
        {
            total += self
                .walk(round, "events", move |c, at, n| {
                    purge::old_events(c, before, PlanScope::Except(&own), at, n)
                })
                .await?;
        }
        Ok(total)
    }

    /// The rows of deleted tenants, table by table, the longest-waiting tenant first.
    async fn purge_deleted_tenants(
        &self,
        round: &mut Round,
        report: &mut PurgeReport,
    ) -> ServiceResult<()> {
        let waiting = crate::db::run(&self.db, |c| {
            purge::deleted_tenants(c, TENANTS_PER_ROUND).map_err(ServiceError::from)
        })
        .await?;
        gauge!(TENANTS_AWAITING_PURGE).set(waiting.len() as f64);
        for (done, tenant) in waiting.iter().enumerate() {
            loop {
                let tenant = *tenant;
                let step = self
                    .batch(round, move |c, n| purge::tenant_step(c, &tenant, n))
                    .await?;
                let TenantStep::Rows(_, n) = step else {
                    report.tenants_purged += 1;
                    gauge!(TENANTS_AWAITING_PURGE).set((waiting.len() - done - 1) as f64);
                    tracing::info!(tenant.id = %tenant, "deleted tenant's rows purged");
                    break;
                };
                counter!(PURGED_ROWS, "kind" => "deleted_tenants").increment(n as u64);
                report.tenant_rows += n as u64;
            }
        }
        Ok(())
    }

    /// Runs `step` in batches until a batch takes fewer rows than asked; how many rows in all.
    async fn drain<F>(&self, round: &mut Round, kind: &'static str, step: F) -> ServiceResult<u64>
    where
        F: Fn(&mut AnyConnection, i64) -> StoreResult<usize> + Clone + Send + 'static,
    {
        let mut total = 0;
        loop {
            let asked = round.batch;
            let n = self.batch(round, step.clone()).await?;
            counter!(PURGED_ROWS, "kind" => kind).increment(n as u64);
            total += n as u64;
            if (n as i64) < asked {
                return Ok(total);
            }
        }
    }

    /// Walks rows by age in batches, each from where the last stopped, to the end; how many
    /// rows it deleted in all.
    async fn walk<F>(&self, round: &mut Round, kind: &'static str, step: F) -> ServiceResult<u64>
    where
        F: Fn(&mut AnyConnection, &mut Cursor, i64) -> StoreResult<purge::Batch>
            + Clone
            + Send
            + 'static,
    {
        let mut total = 0;
        let mut cursor = Cursor::default();
        loop {
            let step = step.clone();
            let (batch, at) = self
                .batch(round, move |c, n| {
                    step(c, &mut cursor, n).map(|batch| (batch, cursor))
                })
                .await?;
            cursor = at;
            counter!(PURGED_ROWS, "kind" => kind).increment(batch.deleted as u64);
            total += batch.deleted as u64;
            if batch.done {
                return Ok(total);
            }
        }
    }

    /// One batch: renews the lease when due (a round that lost it stops), runs `step` with the
    /// current batch size, adapts the size, and pauses as long as it took.
    async fn batch<T, F>(&self, round: &mut Round, step: F) -> ServiceResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection, i64) -> StoreResult<T> + Send + 'static,
    {
        if round.renewed.elapsed() > self.lease_ttl() / 4 {
            if !self.take_lease().await? {
                return Err(ServiceError::Internal(
                    "the purge lease was taken over".into(),
                ));
            }
            round.renewed = Instant::now();
        }
        let limit = round.batch;
        let started = Instant::now();
        let n = crate::db::run(&self.db, move |c| {
            step(c, limit).map_err(ServiceError::from)
        })
        .await?;
        let took = started.elapsed();
        histogram!(PURGE_BATCH_TIME).record(took.as_secs_f64());
        if took > BATCH_TARGET {
            round.batch = (round.batch / 2).max(MIN_BATCH.min(self.policy.batch));
        } else if took < BATCH_TARGET / 4 {
            round.batch = (round.batch * 2).min(self.policy.batch);
        }
        tokio::time::sleep(self.policy.pause_after(took)).await;
        Ok(n)
    }

    /// Takes or renews the lease; `false` while another replica holds it.
    async fn take_lease(&self) -> ServiceResult<bool> {
        let holder = self.holder.clone();
        let ttl = chrono::Duration::from_std(self.lease_ttl()).unwrap_or(chrono::Duration::MAX);
        crate::db::run(&self.db, move |c| {
            let now = tenant_core::now();
            purge::try_lease(c, LEASE, &holder, now, now + ttl).map_err(ServiceError::from)
        })
        .await
    }

    /// SQLite: returns the freed pages to the file system, a few thousand at a time.
    async fn vacuum(&self) -> ServiceResult<()> {
        for _ in 0..VACUUM_STEPS {
            let started = Instant::now();
            let left = crate::db::run(&self.db, |c| {
                purge::incremental_vacuum(c, VACUUM_PAGES).map_err(ServiceError::from)
            })
            .await?;
            if left == 0 {
                return Ok(());
            }
            tokio::time::sleep(started.elapsed().max(Duration::from_millis(1))).await;
        }
        Ok(())
    }
}
