//! Group commit: writer threads that take the write requests of concurrent HTTP requests from a
//! queue, run them as one batch (one transaction, and on PostgreSQL one statement per batch),
//! and answer each request once the batch committed.
//!
//! Why: on PostgreSQL a write's cost in this server is mostly its round trips (a `send`, the
//! loopback TCP stack, a `poll` and the thread switches around it, tens of µs each: see
//! `docs/benchmarks.md`), and the hop of each request to the blocking pool. A batch pays those
//! once for all the requests that arrived while the previous batch was being written: with C
//! requests in flight, batches grow towards C by themselves, and a lone request is written at
//! once (`SAAS_WRITE_BATCH_WAIT_US` can hold a batch open a little longer for more company).
//!
//! The handler awaits its answer, so a request is never answered before its writes are
//! durable; what a batch does when one of its requests fails is the batch function's business
//! (the ingest and create functions store the others and answer the failing one alone).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tenant_store::{AnyConnection, Database, StoreError};
use tokio::sync::oneshot;

use crate::error::ServiceError;

/// Settings of the writer threads (`SAAS_WRITE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// The most requests in one batch; 1 turns batching off.
    pub max_batch: usize,
    /// How long a batch waits for more requests each time (see the module doc); zero takes
    /// only what is already queued.
    pub linger: Duration,
    /// The longest a batch stays open after its first request.
    pub max_wait: Duration,
    /// Writer threads per kind of write, each with its own connection while it writes.
    pub writers: usize,
    /// Requests queued at most; past it a request is refused with 503 rather than queued.
    pub queue: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            linger: Duration::from_micros(250),
            max_wait: Duration::from_millis(5),
            writers: 1,
            queue: 8192,
        }
    }
}

/// Why a request got no answer from the writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupCommitError {
    /// The queue is full.
    #[error("too many writes are waiting; retry later")]
    Overloaded,
    /// The writers stopped (shutdown) or failed while writing this request.
    #[error("the write was not completed")]
    Stopped,
}

impl From<GroupCommitError> for ServiceError {
    fn from(e: GroupCommitError) -> Self {
        match e {
            GroupCommitError::Overloaded => ServiceError::Overloaded(e.to_string()),
            GroupCommitError::Stopped => ServiceError::Internal(e.to_string()),
        }
    }
}

struct Job<I, O> {
    item: I,
    reply: oneshot::Sender<O>,
}

/// A queue of write requests of one kind and the threads that write them in batches.
pub struct GroupCommit<I, O> {
    queue: SyncSender<Job<I, O>>,
}

impl<I, O> std::fmt::Debug for GroupCommit<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

/// What a batch runs: the requests in, one answer per request out, in order.
pub trait BatchFn<I, O>: Fn(&mut AnyConnection, &[I]) -> Vec<O> + Send + Sync + 'static {}
impl<I, O, F: Fn(&mut AnyConnection, &[I]) -> Vec<O> + Send + Sync + 'static> BatchFn<I, O> for F {}

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    /// Starts `config.writers` threads named `{name}-writer-{n}`. `run` writes a batch on a
    /// pooled connection; `unavailable` answers each request of a batch for which no connection
    /// could be had. The threads end when the last handle is dropped, after the queue drained.
    /// Each batch's size and commit time are recorded under `path` (see
    /// [`crate::monitoring::batch_written`]).
    pub fn start(
        name: &str,
        path: &'static str,
        db: Database,
        config: &GroupCommitConfig,
        run: impl BatchFn<I, O>,
        unavailable: impl Fn(&StoreError) -> O + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let (queue, rx) = mpsc::sync_channel(config.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let run = Arc::new(run);
        let unavailable = Arc::new(unavailable);
        for n in 0..config.writers.max(1) {
            let writer = Writer {
                path,
                rx: rx.clone(),
                db: db.clone(),
                max_batch: config.max_batch.max(1),
                linger: config.linger,
                max_wait: config.max_wait,
                run: run.clone(),
                unavailable: unavailable.clone(),
            };
            std::thread::Builder::new()
                .name(format!("{name}-writer-{n}"))
                .spawn(move || writer.work())?;
        }
        Ok(Self { queue })
    }

    /// Queues a request and waits for its answer (after its batch committed, or failed).
    pub async fn submit(&self, item: I) -> Result<O, GroupCommitError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Job { item, reply })
            .map_err(|e| match e {
                TrySendError::Full(_) => GroupCommitError::Overloaded,
                TrySendError::Disconnected(_) => GroupCommitError::Stopped,
            })?;
        answer.await.map_err(|_| GroupCommitError::Stopped)
    }
}

struct Writer<I, O, R, U> {
    path: &'static str,
    rx: Arc<Mutex<Receiver<Job<I, O>>>>,
    db: Database,
    max_batch: usize,
    linger: Duration,
    max_wait: Duration,
    run: Arc<R>,
    unavailable: Arc<U>,
}

impl<I, O, R, U> Writer<I, O, R, U>
where
    R: BatchFn<I, O>,
    U: Fn(&StoreError) -> O,
{
    fn work(self) {
        while let Some(jobs) = self.next_batch() {
            let (items, replies): (Vec<I>, Vec<oneshot::Sender<O>>) =
                jobs.into_iter().map(|j| (j.item, j.reply)).unzip();
            tracing::debug!(batch.requests = items.len(), "write batch");
            let started = Instant::now();
            let answers = match self.db.get() {
                Ok(mut conn) => {
                    // A panic must not take the writer down with it: its batch's requests get
                    // "not completed" (their senders are dropped) and the next batch goes on.
                    match catch_unwind(AssertUnwindSafe(|| (self.run)(&mut conn, &items))) {
                        Ok(answers) => answers,
                        Err(_) => {
                            tracing::error!(requests = items.len(), "a write batch panicked");
                            Vec::new()
                        }
                    }
                }
                Err(e) => items.iter().map(|_| (self.unavailable)(&e)).collect(),
            };
            crate::monitoring::batch_written(self.path, items.len(), started.elapsed());
            // The requests go before their answers: what they hold (an idempotency key's hold)
            // is released by the time their callers hear back.
            drop(items);
            for (reply, answer) in replies.into_iter().zip(answers) {
                // The request may have gone (client disconnected): its write stands anyway.
                let _ = reply.send(answer);
            }
        }
    }

    /// The next batch: the first request (waiting for it), what else is queued, then more for
    /// as long as each linger brings some, within `max_wait` and `max_batch`. `None` once every
    /// handle is dropped and the queue is empty.
    fn next_batch(&self) -> Option<Vec<Job<I, O>>> {
        // One writer takes from the queue at a time, so each batch is as large as it can be.
        let rx = self.rx.lock().unwrap_or_else(PoisonError::into_inner);
        let first = rx.recv().ok()?;
        let deadline = Instant::now() + self.max_wait;
        let mut jobs = vec![first];
        // The first linger is always waited: the request just taken is usually the first of a
        // burst.
        let mut first_look = true;
        loop {
            let before = jobs.len();
            while jobs.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let grew = jobs.len() > before || std::mem::take(&mut first_look);
            if jobs.len() >= self.max_batch || self.linger.is_zero() || left.is_zero() || !grew {
                return Some(jobs);
            }
            // Sleeping rather than waiting on the queue: one wake-up per linger, not one per
            // request arriving.
            std::thread::sleep(self.linger.min(left));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tenant_store::{DatabaseUrl, PoolConfig};

    use super::*;

    fn db() -> (Database, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("group-commit-{}", uuid::Uuid::new_v4()));
        let url = DatabaseUrl::Sqlite(dir.join("t.db"));
        (
            Database::connect(&url, &PoolConfig::default()).unwrap(),
            dir,
        )
    }

    #[tokio::test]
    async fn every_request_gets_its_own_answer_and_a_panic_fails_only_its_batch() {
        let (db, dir) = db();
        let batches = Arc::new(AtomicUsize::new(0));
        let seen = batches.clone();
        let config = GroupCommitConfig {
            linger: Duration::from_millis(5),
            ..GroupCommitConfig::default()
        };
        let gc = Arc::new(
            GroupCommit::start(
                "test",
                "test",
                db,
                &config,
                move |_conn, items: &[u32]| {
                    seen.fetch_add(1, Ordering::SeqCst);
                    assert!(!items.contains(&999), "poisoned batch");
                    items.iter().map(|i| i * 2).collect::<Vec<u32>>()
                },
                |_| 0,
            )
            .unwrap(),
        );
        let mut set = tokio::task::JoinSet::new();
        for i in 0..100u32 {
            let gc = gc.clone();
            set.spawn(async move { (i, gc.submit(i).await) });
        }
        for (i, answer) in set.join_all().await {
            assert_eq!(answer, Ok(i * 2));
        }
        assert!(batches.load(Ordering::SeqCst) <= 100);
        // A batch that panics answers "not completed"; the writer goes on with the next one.
        assert_eq!(gc.submit(999).await, Err(GroupCommitError::Stopped));
        assert_eq!(gc.submit(7).await, Ok(14));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_rather_than_waited_on() {
        let (db, dir) = db();
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate_rx);
        let config = GroupCommitConfig {
            max_batch: 1,
            queue: 1,
            linger: Duration::ZERO,
            ..GroupCommitConfig::default()
        };
        let gc = Arc::new(
            GroupCommit::start(
                "test-full",
                "test",
                db,
                &config,
                move |_conn, items: &[u32]| {
                    // Held until the test opens the gate.
                    let _ = gate.lock().unwrap().recv();
                    items.to_vec()
                },
                |_| 0,
            )
            .unwrap(),
        );
        // The writer holds at most one request (at the gate) and the queue one more: of ten
        // submitted now, at least eight are refused at once. Each is polled once (a zero timeout
        // polls before it looks at the clock): refused ones are ready, queued ones pending.
        let mut pending = Vec::new();
        let mut refused = 0;
        for n in 1..=10u32 {
            let mut fut = Box::pin({
                let gc = gc.clone();
                async move { gc.submit(n).await }
            });
            match tokio::time::timeout(Duration::ZERO, &mut fut).await {
                Ok(answer) => {
                    assert_eq!(answer, Err(GroupCommitError::Overloaded));
                    refused += 1;
                }
                Err(_) => pending.push(fut),
            }
        }
        assert!(refused >= 8, "{refused} refused");
        for _ in 0..pending.len() {
            gate_tx.send(()).unwrap();
        }
        for fut in pending {
            assert!(fut.await.is_ok());
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
