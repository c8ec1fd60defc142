//! Counting one phase's requests: outcomes, latencies, percentiles and the JSON summary.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

/// How many error descriptions a phase keeps, so a failing run stays readable.
const MAX_ERROR_SAMPLES: usize = 5;

/// The outcome of every request in one phase.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    latencies_us: Vec<u64>,
    ok: u64,
    errors: u64,
    statuses: BTreeMap<String, u64>,
    error_samples: Vec<String>,
    bytes: u64,
}

impl Recorder {
    /// Records a reply: 2xx (and 304 when `not_modified_ok`) is a success, anything else an error.
    pub fn record_status(&mut self, status: u16, latency: Duration, bytes: usize, ok: bool) {
        self.latencies_us.push(micros(latency));
        self.bytes += bytes as u64;
        if ok {
            self.ok += 1;
        } else {
            self.errors += 1;
            *self.statuses.entry(status.to_string()).or_default() += 1;
        }
    }

    /// Records a request that got no reply (connect, timeout or protocol failure).
    pub fn record_failure(&mut self, latency: Duration, what: &str) {
        self.latencies_us.push(micros(latency));
        self.errors += 1;
        *self.statuses.entry("transport".to_owned()).or_default() += 1;
        self.sample(what);
    }

    /// Keeps a short description of an error reply (a few per phase).
    pub fn sample(&mut self, what: &str) {
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(what.chars().take(200).collect());
        }
    }

    /// Adds another task's records to this one.
    pub fn merge(&mut self, other: Recorder) {
        self.latencies_us.extend(other.latencies_us);
        self.ok += other.ok;
        self.errors += other.errors;
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for s in other.error_samples {
            self.sample(&s);
        }
        self.bytes += other.bytes;
    }

    /// Requests recorded.
    pub fn count(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    /// Failed requests recorded.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The summary fields of a phase line, given the phase's wall-clock time.
    pub fn summary(mut self, elapsed: Duration) -> Map<String, Value> {
        self.latencies_us.sort_unstable();
        let secs = elapsed.as_secs_f64();
        let count = self.count();
        let ms =
            |p: f64| percentile(&self.latencies_us, p).map_or(0.0, |us| round3(us as f64 / 1e3));
        let mut m = Map::new();
        m.insert("count".into(), json!(count));
        m.insert("ok".into(), json!(self.ok));
        m.insert("errors".into(), json!(self.errors));
        if !self.statuses.is_empty() {
            m.insert("statuses".into(), json!(self.statuses));
            m.insert("error_samples".into(), json!(self.error_samples));
        }
        m.insert("seconds".into(), json!(round3(secs)));
        let rps = if secs > 0.0 { count as f64 / secs } else { 0.0 };
        m.insert("rps".into(), json!(round3(rps)));
        m.insert("p50_ms".into(), json!(ms(50.0)));
        m.insert("p90_ms".into(), json!(ms(90.0)));
        m.insert("p99_ms".into(), json!(ms(99.0)));
        m.insert("max_ms".into(), json!(ms(100.0)));
        m.insert("bytes".into(), json!(self.bytes));
        m
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Rounds to three decimals, which is all a JSON line needs.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The nearest-rank percentile `p` (0–100) of sorted values; `None` when there are none.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summary_counts_outcomes_and_merges() {
        let mut a = Recorder::default();
        a.record_status(200, Duration::from_micros(1500), 10, true);
        a.record_status(404, Duration::from_micros(500), 5, false);
        let mut b = Recorder::default();
        b.record_failure(Duration::from_millis(3), "connection refused");
        a.merge(b);
        let s = a.summary(Duration::from_secs(2));
        assert_eq!(s["count"], 3);
        assert_eq!(s["ok"], 1);
        assert_eq!(s["errors"], 2);
        assert_eq!(s["statuses"], json!({"404": 1, "transport": 1}));
        assert_eq!(s["error_samples"], json!(["connection refused"]));
        assert_eq!(s["rps"], 1.5);
        assert_eq!(s["p50_ms"], 1.5);
        assert_eq!(s["max_ms"], 3.0);
        assert_eq!(s["bytes"], 15);
    }

    #[test]
    fn empty_phase_has_zeros_and_no_error_fields() {
        let s = Recorder::default().summary(Duration::ZERO);
        assert_eq!(s["count"], 0);
        assert_eq!(s["rps"], 0.0);
        assert_eq!(s["p99_ms"], 0.0);
        assert!(!s.contains_key("statuses"));
    }
}
