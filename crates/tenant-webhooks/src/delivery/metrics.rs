//! Delivery counters, by outcome.

use std::sync::atomic::{AtomicU64, Ordering};

use tenant_store::deliveries::Next;

/// Counters since the dispatcher started.
#[derive(Debug, Default)]
pub struct Metrics {
    succeeded: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    timeout: AtomicU64,
    refused: AtomicU64,
    http_error: AtomicU64,
    connect_error: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Deliveries accepted by their endpoint.
    pub succeeded: u64,
    /// Attempts failed and scheduled again.
    pub retried: u64,
    /// Deliveries failed for good (dead letters).
    pub failed: u64,
    /// Attempts that timed out.
    pub timeout: u64,
    /// Attempts refused by the SSRF guard.
    pub refused: u64,
    /// Attempts answered with a non-2xx status.
    pub http_error: u64,
    /// Attempts that could not connect.
    pub connect_error: u64,
}

impl Metrics {
    /// Counts one attempt's outcome and what followed.
    pub fn record(&self, outcome: &str, next: Next) {
        let by_outcome = match outcome {
            "timeout" => Some(&self.timeout),
            "refused" => Some(&self.refused),
            "http_error" => Some(&self.http_error),
            "connect_error" => Some(&self.connect_error),
            _ => None,
        };
        if let Some(c) = by_outcome {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let by_next = match next {
            Next::Succeeded => &self.succeeded,
            Next::RetryAt(_) => &self.retried,
            Next::Failed => &self.failed,
        };
        by_next.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            succeeded: get(&self.succeeded),
            retried: get(&self.retried),
            failed: get(&self.failed),
            timeout: get(&self.timeout),
            refused: get(&self.refused),
            http_error: get(&self.http_error),
            connect_error: get(&self.connect_error),
        }
    }
}
