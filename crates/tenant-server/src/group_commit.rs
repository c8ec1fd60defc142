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
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tenant_store::{AnyConnection, Database, StoreError};
use tokio::sync::oneshot;

use crate::error::ApiError;

/// Settings of the writer threads (`SAAS_WRITE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// The most requests in one batch; 1 turns batching off.
    pub max_batch: usize,
    /// How long a batch stays open for more requests after its first one; zero takes only what
    /// is already queued.
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
            max_wait: Duration::ZERO,
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

impl From<GroupCommitError> for ApiError {
    fn from(e: GroupCommitError) -> Self {
        match e {
            GroupCommitError::Overloaded => ApiError::Unavailable(e.to_string()),
            GroupCommitError::Stopped => ApiError::Internal(e.to_string()),
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
    pub fn start(
        name: &str,
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
                rx: rx.clone(),
                db: db.clone(),
                max_batch: config.max_batch.max(1),
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
    rx: Arc<Mutex<Receiver<Job<I, O>>>>,
    db: Database,
    max_batch: usize,
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
            for (reply, answer) in replies.into_iter().zip(answers) {
                // The request may have gone (client disconnected): its write stands anyway.
                let _ = reply.send(answer);
            }
        }
    }

    /// The next batch: the first request (waiting for it), then whatever else is queued, up to
    /// `max_batch`, waiting up to `max_wait` for more. `None` once every handle is dropped.
    fn next_batch(&self) -> Option<Vec<Job<I, O>>> {
        // One writer takes from the queue at a time, so each batch is as large as it can be.
        let rx = self.rx.lock().unwrap_or_else(PoisonError::into_inner);
        let first = rx.recv().ok()?;
        let mut jobs = vec![first];
        let deadline = Instant::now() + self.max_wait;
        while jobs.len() < self.max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match rx.recv_timeout(left) {
                        Ok(job) => jobs.push(job),
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
            }
        }
        Some(jobs)
    }
}
