//! Per-endpoint isolation: the circuit's transitions, and what one dispatcher process holds of
//! each endpoint (in flight, never more than the per-endpoint cap, and claimed-not-yet-sent:
//! about the cap again, or more for an endpoint that answers fast, see [`Holdings`]).
//!
//! The circuit counts consecutive timeouts and connection failures of an endpoint. At
//! [`CircuitPolicy::failures`] it opens: the endpoint's due deliveries wait (no attempt counted)
//! until a backoff passes, [`CircuitPolicy::open_for`] doubling on each opening in a row up to
//! [`CircuitPolicy::open_max`]. Then it is half-open: one delivery probes it (one claimer takes
//! the probe, see `tenant_store::endpoint_circuits::take_probes`). Any answer (a 2xx or not: the
//! endpoint is there) closes it; another failure opens it again for longer. The state is stored,
//! so every dispatcher process and the API see it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tenant_store::endpoint_circuits::{CLOSED, CircuitRow, HALF_OPEN, OPEN};

/// When circuits open and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitPolicy {
    /// Consecutive timeouts or connection failures that open the circuit.
    pub failures: u32,
    /// How long the first opening lasts; it doubles on each opening in a row.
    pub open_for: Duration,
    /// The longest an opening lasts.
    pub open_max: Duration,
}

impl Default for CircuitPolicy {
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(30),
            open_max: Duration::from_secs(600),
        }
    }
}

impl CircuitPolicy {
    /// How long the `opens`-th opening in a row lasts.
    pub fn backoff(&self, opens: i32) -> Duration {
        let exp = u32::try_from(opens.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.open_for
            .checked_mul(1u32 << exp)
            .unwrap_or(self.open_max)
            .min(self.open_max)
    }
}

/// What an attempt says about an endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// It answered (any status).
    Answered,
    /// It timed out or could not be connected to.
    Failed,
}

impl Observation {
    /// The observation of an attempt's outcome; `None` for outcomes that say nothing about the
    /// endpoint (refused by the SSRF guard, not signed, endpoint disabled).
    pub fn of(outcome: &str) -> Option<Self> {
        match outcome {
            "success" | "http_error" => Some(Self::Answered),
            "timeout" | "connect_error" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Applies one observation at `now`; returns `Some(retry_at)` when it opened the circuit.
pub fn apply(
    row: &mut CircuitRow,
    obs: Observation,
    policy: &CircuitPolicy,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match obs {
        Observation::Answered => {
            row.state = CLOSED.to_owned();
            row.failures = 0;
            row.opens = 0;
            row.retry_at = None;
            row.probe_owner = None;
            None
        }
        Observation::Failed => {
            row.failures = row.failures.saturating_add(1);
            let threshold = i32::try_from(policy.failures.max(1)).unwrap_or(i32::MAX);
            let opens =
                row.state == HALF_OPEN || (row.state == CLOSED && row.failures >= threshold);
            if !opens {
                return None;
            }
            row.opens = row.opens.saturating_add(1);
            let until = now
                + chrono::Duration::from_std(policy.backoff(row.opens))
                    .unwrap_or(chrono::Duration::MAX);
            row.state = OPEN.to_owned();
            row.retry_at = Some(until.naive_utc());
            row.probe_owner = None;
            Some(until)
        }
    }
}

/// What this process holds of one endpoint.
#[derive(Debug)]
pub(crate) struct Held<J> {
    /// Being sent.
    pub in_flight: usize,
    /// Claimed, waiting for a slot under the cap.
    pub queue: VecDeque<J>,
}

impl<J> Default for Held<J> {
    fn default() -> Self {
        Self {
            in_flight: 0,
            queue: VecDeque::new(),
        }
    }
}

/// An endpoint whose last answer in this process was a success within this time is *fast*: it
/// may hold [`Holdings::depth`] claimed deliveries instead of its cap.
pub const FAST_ANSWER: Duration = Duration::from_millis(100);
/// How long an endpoint stays fast after its last fast answer (without one since, it claims at
/// its cap again).
pub const FAST_FOR: Duration = Duration::from_secs(5);

/// What this process holds, by endpoint: at most `cap` in flight per endpoint, and claims are
/// not made for an endpoint holding `cap` or more, so it never holds more than `2 × cap - 1`
/// (the wait of a queued delivery is bounded by two request timeouts, well within a lease).
///
/// An endpoint that answers fast ([`FAST_ANSWER`]) may hold `depth` instead (claims of up to
/// `depth` at once, so at most `2 × depth - 1`), still with `cap` in flight: its queued
/// deliveries wait a few answers of a few milliseconds each, and one claim feeds it for longer.
/// Its first answer that is not fast (a failure, or slow) makes it an ordinary endpoint again and
/// gives back what it holds beyond `cap` ([`Holdings::observe`]), so a fast endpoint turning slow
/// or hanging keeps the ordinary bound on the wait of what it holds.
#[derive(Debug)]
pub(crate) struct Holdings<J> {
    cap: usize,
    depth: usize,
    by_endpoint: HashMap<String, Held<J>>,
    /// The endpoints that answered fast, with when they last did.
    fast: HashMap<String, Instant>,
    queued: usize,
    in_flight: usize,
}

impl<J> Holdings<J> {
    /// `cap` in flight per endpoint, and as many held (`depth` for a fast one).
    pub fn new(cap: usize, depth: usize) -> Self {
        let cap = cap.max(1);
        Self {
            cap,
            depth: depth.max(cap),
            by_endpoint: HashMap::new(),
            fast: HashMap::new(),
            queued: 0,
            in_flight: 0,
        }
    }

    /// How many a fast endpoint may hold (and have claimed at once).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Records how an endpoint's delivery ended: `fast` when it succeeded within
    /// [`FAST_ANSWER`]. An endpoint that was fast and no longer is gives back its queued
    /// deliveries beyond `cap` (returned: the caller releases their claims).
    pub fn observe(&mut self, endpoint: &str, fast: bool) -> Vec<J> {
        if fast {
            match self.fast.get_mut(endpoint) {
                Some(at) => *at = Instant::now(),
                None => {
                    self.fast.insert(endpoint.to_owned(), Instant::now());
                }
            }
            return Vec::new();
        }
        if self.fast.remove(endpoint).is_none() {
            return Vec::new();
        }
        self.excess(endpoint)
    }

    /// What an endpoint that is not fast holds queued beyond `cap` (taken: the caller releases
    /// their claims). A claim made while it was fast may land after it stopped being so.
    pub fn excess(&mut self, endpoint: &str) -> Vec<J> {
        if self.fast.contains_key(endpoint) {
            return Vec::new();
        }
        let cap = self.cap;
        let Some(held) = self.by_endpoint.get_mut(endpoint) else {
            return Vec::new();
        };
        let keep = cap.saturating_sub(held.in_flight);
        let out: Vec<J> = if held.queue.len() > keep {
            held.queue.drain(keep..).collect()
        } else {
            Vec::new()
        };
        self.queued -= out.len();
        out
    }

    /// The fast endpoints with room for more (their last fast answer within [`FAST_FOR`]);
    /// forgets the others.
    pub fn fast(&mut self) -> Vec<String> {
        self.fast.retain(|_, at| at.elapsed() < FAST_FOR);
        self.fast
            .keys()
            .filter(|e| {
                self.by_endpoint
                    .get(*e)
                    .is_none_or(|h| h.in_flight + h.queue.len() < self.depth)
            })
            .cloned()
            .collect()
    }

    /// Deliveries held in all (in flight and queued).
    pub fn total(&self) -> usize {
        self.queued + self.in_flight
    }

    /// Endpoints a claim must leave alone: they hold their cap already (a fast one, its depth).
    pub fn full(&self) -> Vec<String> {
        self.by_endpoint
            .iter()
            .filter(|(id, h)| {
                let allowed = if self.fast.contains_key(*id) {
                    self.depth
                } else {
                    self.cap
                };
                h.in_flight + h.queue.len() >= allowed
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Queues a claimed delivery.
    pub fn push(&mut self, endpoint: &str, job: J) {
        self.by_endpoint
            .entry(endpoint.to_owned())
            .or_default()
            .queue
            .push_back(job);
        self.queued += 1;
    }

    /// Takes every queued delivery that has a slot under its endpoint's cap, marking it in
    /// flight.
    pub fn ready(&mut self) -> Vec<J> {
        let mut out = Vec::new();
        for held in self.by_endpoint.values_mut() {
            while held.in_flight < self.cap {
                let Some(job) = held.queue.pop_front() else {
                    break;
                };
                held.in_flight += 1;
                out.push(job);
            }
        }
        self.queued -= out.len();
        self.in_flight += out.len();
        out
    }

    /// One delivery of `endpoint` finished.
    pub fn finished(&mut self, endpoint: &str) {
        if let Some(held) = self.by_endpoint.get_mut(endpoint) {
            held.in_flight = held.in_flight.saturating_sub(1);
            self.in_flight = self.in_flight.saturating_sub(1);
            if held.in_flight == 0 && held.queue.is_empty() {
                self.by_endpoint.remove(endpoint);
            }
        }
    }

    /// Takes back every queued (not yet sent) delivery; what is in flight stays counted.
    pub fn unqueue_all(&mut self) -> Vec<J> {
        let mut out = Vec::with_capacity(self.queued);
        for held in self.by_endpoint.values_mut() {
            out.extend(held.queue.drain(..));
        }
        self.by_endpoint.retain(|_, held| held.in_flight > 0);
        self.queued = 0;
        out
    }

    /// Takes back the queued (not yet sent) deliveries of `endpoint`.
    pub fn unqueue(&mut self, endpoint: &str) -> Vec<J> {
        let Some(held) = self.by_endpoint.get_mut(endpoint) else {
            return Vec::new();
        };
        let out: Vec<J> = held.queue.drain(..).collect();
        self.queued -= out.len();
        if held.in_flight == 0 {
            self.by_endpoint.remove(endpoint);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn opens_after_consecutive_failures_and_an_answer_closes_it() {
        let policy = CircuitPolicy {
            failures: 3,
            open_for: Duration::from_secs(10),
            open_max: Duration::from_secs(25),
        };
        let mut row = CircuitRow::closed("e");
        assert_eq!(apply(&mut row, Observation::Failed, &policy, at(0)), None);
        assert_eq!(apply(&mut row, Observation::Failed, &policy, at(0)), None);
        // An answer in between starts the count again.
        assert_eq!(apply(&mut row, Observation::Answered, &policy, at(0)), None);
        assert_eq!(row.failures, 0);
        for _ in 0..2 {
            assert_eq!(apply(&mut row, Observation::Failed, &policy, at(0)), None);
        }
        assert_eq!(
            apply(&mut row, Observation::Failed, &policy, at(0)),
            Some(at(10))
        );
        assert_eq!(row.state, OPEN);
        // Stragglers failing while open do not push the probe further out.
        assert_eq!(apply(&mut row, Observation::Failed, &policy, at(1)), None);
        // A failed probe opens it again, for twice as long, then capped.
        row.state = HALF_OPEN.to_owned();
        assert_eq!(
            apply(&mut row, Observation::Failed, &policy, at(20)),
            Some(at(40))
        );
        row.state = HALF_OPEN.to_owned();
        assert_eq!(
            apply(&mut row, Observation::Failed, &policy, at(50)),
            Some(at(75))
        );
        // An answer to the probe closes it and forgets the openings.
        row.state = HALF_OPEN.to_owned();
        assert_eq!(
            apply(&mut row, Observation::Answered, &policy, at(80)),
            None
        );
        assert_eq!(
            (row.state.as_str(), row.opens, row.retry_at),
            (CLOSED, 0, None)
        );
    }

    #[test]
    fn outcomes_that_say_nothing_about_the_endpoint_are_not_counted() {
        assert_eq!(Observation::of("success"), Some(Observation::Answered));
        assert_eq!(Observation::of("http_error"), Some(Observation::Answered));
        assert_eq!(Observation::of("timeout"), Some(Observation::Failed));
        assert_eq!(Observation::of("connect_error"), Some(Observation::Failed));
        assert_eq!(Observation::of("refused"), None);
        assert_eq!(Observation::of("unsigned"), None);
    }

    #[test]
    fn holdings_keep_each_endpoint_under_its_cap() {
        let mut h: Holdings<u32> = Holdings::new(2, 2);
        for i in 0..3 {
            h.push("a", i);
        }
        h.push("b", 10);
        let mut ready = h.ready();
        ready.sort_unstable();
        assert_eq!(ready, vec![0, 1, 10]);
        assert_eq!(h.total(), 4);
        let mut full = h.full();
        full.sort();
        assert_eq!(full, vec!["a".to_owned()]);
        h.finished("a");
        assert_eq!(h.ready(), vec![2]);
        h.push("a", 3);
        assert_eq!(h.unqueue("a"), vec![3]);
        h.finished("a");
        h.finished("a");
        h.finished("b");
        assert_eq!(h.total(), 0);
        assert!(h.full().is_empty());
    }

    #[test]
    fn a_fast_endpoint_holds_its_depth_until_it_answers_slowly() {
        let mut h: Holdings<u32> = Holdings::new(2, 6);
        h.push("a", 0);
        assert_eq!(h.ready(), vec![0]);
        h.finished("a");
        assert!(h.observe("a", true).is_empty());
        assert_eq!(h.fast(), vec!["a".to_owned()]);
        for i in 1..=5 {
            h.push("a", i);
        }
        // Two in flight (the cap), three queued: below the depth, so still claimable.
        assert_eq!(h.ready(), vec![1, 2]);
        assert!(h.full().is_empty());
        h.push("a", 6);
        assert_eq!(h.full(), vec!["a".to_owned()]);
        assert!(h.fast().is_empty());
        // A slow answer: back to the cap, the queue beyond it given back.
        h.finished("a");
        assert_eq!(h.observe("a", false), vec![4, 5, 6]);
        assert_eq!(h.total(), 2);
        assert_eq!(h.full(), vec!["a".to_owned()]);
        assert!(h.observe("a", false).is_empty());
        assert_eq!(h.ready(), vec![3]);
    }

    #[test]
    fn unqueue_all_gives_back_what_was_not_sent_and_keeps_counting_what_is_in_flight() {
        let mut h: Holdings<u32> = Holdings::new(1, 1);
        for (endpoint, job) in [("a", 0), ("a", 1), ("b", 2), ("b", 3), ("c", 4)] {
            h.push(endpoint, job);
        }
        let mut sent = h.ready();
        sent.sort_unstable();
        assert_eq!(sent, vec![0, 2, 4]);
        let mut back = h.unqueue_all();
        back.sort_unstable();
        assert_eq!(back, vec![1, 3]);
        assert_eq!(h.total(), 3, "the three in flight stay counted");
        assert!(h.ready().is_empty());
        for endpoint in ["a", "b", "c"] {
            h.finished(endpoint);
        }
        assert_eq!(h.total(), 0);
        assert!(h.full().is_empty());
    }
}
