//! Delivery counters, by outcome: kept here for the dispatcher's log line, and recorded through
//! the `metrics` facade for whatever recorder the process installed (the server's Prometheus
//! exporter).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

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

/// Deliveries by outcome of their attempt: `delivered`, `retried` (failed, scheduled again),
/// `dead` (failed for good).
pub const DELIVERIES: &str = "moltbot_saas_webhook_deliveries_total";
/// Failed attempts by reason.
pub const ATTEMPT_FAILURES: &str = "moltbot_saas_webhook_attempt_failures_total";
/// Duration of delivery attempts (sent ones).
pub const ATTEMPT_DURATION: &str = "moltbot_saas_webhook_attempt_duration_seconds";

/// Describes the delivery series to the installed recorder.
pub fn describe() {
    describe_counter!(
        DELIVERIES,
        Unit::Count,
        "Webhook delivery attempts by what followed: delivered, retried (scheduled again), dead (failed for good)."
    );
    describe_counter!(
        ATTEMPT_FAILURES,
        Unit::Count,
        "Failed webhook delivery attempts by reason (timeout, connect_error, http_error, refused, unsigned, disabled)."
    );
    describe_histogram!(
        ATTEMPT_DURATION,
        Unit::Seconds,
        "Duration of webhook delivery attempts, from sending to the endpoint's answer."
    );
}

impl Metrics {
    /// Counts one attempt's outcome and what followed; `latency`: the attempt's, when it was
    /// sent.
    pub fn record(&self, outcome: &str, next: Next, latency: Option<Duration>) {
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
        // Literal label sets: nothing allocated per attempt.
        match outcome {
            "success" => {}
            "timeout" => counter!(ATTEMPT_FAILURES, "reason" => "timeout").increment(1),
            "refused" => counter!(ATTEMPT_FAILURES, "reason" => "refused").increment(1),
            "http_error" => counter!(ATTEMPT_FAILURES, "reason" => "http_error").increment(1),
            "connect_error" => counter!(ATTEMPT_FAILURES, "reason" => "connect_error").increment(1),
            "unsigned" => counter!(ATTEMPT_FAILURES, "reason" => "unsigned").increment(1),
            "disabled" => counter!(ATTEMPT_FAILURES, "reason" => "disabled").increment(1),
            _ => counter!(ATTEMPT_FAILURES, "reason" => "other").increment(1),
        }
        let by_next = match next {
            Next::Succeeded => {
                counter!(DELIVERIES, "outcome" => "delivered").increment(1);
                &self.succeeded
            }
            Next::RetryAt(_) => {
                counter!(DELIVERIES, "outcome" => "retried").increment(1);
                &self.retried
            }
            Next::Failed => {
                counter!(DELIVERIES, "outcome" => "dead").increment(1);
                &self.failed
            }
        };
        by_next.fetch_add(1, Ordering::Relaxed);
        if let Some(latency) = latency {
            histogram!(ATTEMPT_DURATION).record(latency);
        }
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
