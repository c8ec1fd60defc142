//! When to retry a failed delivery: a fixed step schedule with bounded jitter, stretched by the
//! receiver's `Retry-After` within a cap.
//!
//! Attempts are numbered from zero: attempt 0 is the first delivery, attempt `n` its `n`-th retry.
//! [`RetrySchedule::next_delay`] gives the wait before attempt `n`, or `None` once the schedule is
//! exhausted and the delivery should be marked failed.

mod parse;
mod retry_after;

use std::time::{Duration, SystemTime};

use rand::Rng;

pub use parse::ScheduleError;
pub use retry_after::parse_retry_after;

/// The default steps: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_STEPS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// Default jitter: each delay is moved by up to ±20 %.
pub const DEFAULT_JITTER_PERCENT: u8 = 20;
/// Default ceiling on a honoured `Retry-After` (10 h, the longest default step), so a receiver
/// cannot park a delivery indefinitely.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 3600);
/// The longest single step a schedule may hold (7 days).
pub const MAX_STEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most steps (attempts) a schedule may hold.
pub const MAX_STEPS: usize = 50;

/// A validated retry schedule: one delay per attempt, a jitter bound and a `Retry-After` cap.
///
/// `FromStr`/`Display` use a comma list of steps such as `0s,5s,5m,30m,2h,5h,10h,10h` (units `ms`,
/// `s`, `m`, `h`, `d`); parsing keeps the default jitter and cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    steps: Vec<Duration>,
    jitter_percent: u8,
    max_retry_after: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            steps: DEFAULT_STEPS.to_vec(),
            jitter_percent: DEFAULT_JITTER_PERCENT,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

impl RetrySchedule {
    /// A schedule with these steps and the default jitter and cap. Steps must be whole
    /// milliseconds and at most [`MAX_STEP`]; there must be 1 to [`MAX_STEPS`] of them.
    pub fn new(steps: Vec<Duration>) -> Result<Self, ScheduleError> {
        if steps.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if steps.len() > MAX_STEPS {
            return Err(ScheduleError::TooManySteps(steps.len()));
        }
        for (index, step) in steps.iter().enumerate() {
            if *step > MAX_STEP {
                return Err(ScheduleError::StepTooLong {
                    position: index + 1,
                });
            }
            if !step.subsec_nanos().is_multiple_of(1_000_000) {
                return Err(ScheduleError::SubMillisecond {
                    position: index + 1,
                });
            }
        }
        Ok(Self {
            steps,
            ..Self::default()
        })
    }

    /// Sets the jitter bound: each delay moves by up to ±`percent` % (0 disables jitter, at most
    /// 100).
    pub fn with_jitter_percent(mut self, percent: u8) -> Result<Self, ScheduleError> {
        if percent > 100 {
            return Err(ScheduleError::JitterTooLarge(percent));
        }
        self.jitter_percent = percent;
        Ok(self)
    }

    /// Sets the ceiling on a honoured `Retry-After`.
    pub fn with_max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// The steps, one per attempt.
    pub fn steps(&self) -> &[Duration] {
        &self.steps
    }

    /// How many attempts the schedule allows in total (the first delivery included).
    pub fn max_attempts(&self) -> usize {
        self.steps.len()
    }

    /// The jitter bound in percent.
    pub fn jitter_percent(&self) -> u8 {
        self.jitter_percent
    }

    /// The ceiling on a honoured `Retry-After`.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The un-jittered wait before `attempt`, or `None` when the schedule is exhausted.
    pub fn base_delay(&self, attempt: u32) -> Option<Duration> {
        self.steps.get(usize::try_from(attempt).ok()?).copied()
    }

    /// The wait before `attempt`, jittered by a uniform draw from `rng`; `None` when exhausted.
    pub fn next_delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Option<Duration> {
        let unit = rng.random_range(-1.0..=1.0);
        self.jittered_delay(attempt, unit)
    }

    /// The wait before `attempt` with an explicit jitter position `unit` in `[-1, 1]` (clamped;
    /// NaN counts as 0): `-1` is the shortest allowed wait, `1` the longest. Never negative, and a
    /// zero step stays zero. `None` when exhausted.
    pub fn jittered_delay(&self, attempt: u32, unit: f64) -> Option<Duration> {
        let base = self.base_delay(attempt)?;
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(-1.0, 1.0)
        };
        // Steps are whole milliseconds of at most 7 days, so these conversions are exact.
        let base_ms = base.as_millis() as f64;
        let offset = base_ms * f64::from(self.jitter_percent) / 100.0 * unit;
        let jittered = (base_ms + offset).round().max(0.0);
        Some(Duration::from_millis(jittered as u64))
    }

    /// The receiver's `Retry-After` header value as a wait from `now`, capped at
    /// [`RetrySchedule::max_retry_after`]; `None` when the value is malformed.
    pub fn retry_after(&self, header_value: &str, now: SystemTime) -> Option<Duration> {
        parse_retry_after(header_value, now).map(|wait| wait.min(self.max_retry_after))
    }

    /// The wait before `attempt` once the previous attempt answered with `retry_after` (from
    /// [`RetrySchedule::retry_after`]): the longer of the jittered step and the `Retry-After`
    /// (capped again here), so a receiver can slow retries down but never speed them up or
    /// extend the schedule. `None` when exhausted.
    pub fn next_delay_with_retry_after<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        rng: &mut R,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let scheduled = self.next_delay(attempt, rng)?;
        let requested = retry_after.map_or(Duration::ZERO, |wait| wait.min(self.max_retry_after));
        Some(scheduled.max(requested))
    }
}

#[cfg(test)]
mod tests;
