//! The textual form of a retry schedule, `0s,5s,5m,30m,2h,5h,10h,10h`, and its errors.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tenant_core::{DurationError, format_duration, parse_duration};

use super::{MAX_STEPS, RetrySchedule};

/// Why a retry schedule is invalid. Positions are 1-based indexes into the step list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The schedule has no steps.
    #[error("retry schedule is empty")]
    Empty,
    /// The schedule has more than [`MAX_STEPS`] steps.
    #[error("retry schedule has {0} steps, at most {MAX_STEPS} are allowed")]
    TooManySteps(usize),
    /// A step between two commas is blank.
    #[error("retry step {position} is empty")]
    EmptyStep {
        /// Which step.
        position: usize,
    },
    /// A step does not start with a decimal number.
    #[error("retry step {position} ({step:?}) must start with a whole number, e.g. `5m`")]
    InvalidNumber {
        /// Which step.
        position: usize,
        /// The step as written.
        step: String,
    },
    /// A step's unit is missing or not one of `ms`, `s`, `m`, `h`, `d`.
    #[error("retry step {position} ({step:?}) needs a unit: ms, s, m, h or d")]
    InvalidUnit {
        /// Which step.
        position: usize,
        /// The step as written.
        step: String,
    },
    /// A step is longer than [`MAX_STEP`](super::MAX_STEP).
    #[error("retry step {position} exceeds the maximum of 7d")]
    StepTooLong {
        /// Which step.
        position: usize,
    },
    /// A step is not a whole number of milliseconds.
    #[error("retry step {position} is not a whole number of milliseconds")]
    SubMillisecond {
        /// Which step.
        position: usize,
    },
    /// The jitter bound is above 100 %.
    #[error("retry jitter must be 0..=100 percent, got {0}")]
    JitterTooLarge(u8),
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(ScheduleError::Empty);
        }
        let steps = s
            .split(',')
            .enumerate()
            .map(|(index, step)| parse_step(index + 1, step.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(steps)
    }
}

impl fmt::Display for RetrySchedule {
    /// Writes the steps only, in the form [`FromStr`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, step) in self.steps().iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            f.write_str(&format_duration(*step))?;
        }
        Ok(())
    }
}

/// Parses one trimmed step such as `30m` (the shared duration syntax).
fn parse_step(position: usize, step: &str) -> Result<Duration, ScheduleError> {
    if step.is_empty() {
        return Err(ScheduleError::EmptyStep { position });
    }
    parse_duration(step).map_err(|e| match e {
        DurationError::InvalidNumber => ScheduleError::InvalidNumber {
            position,
            step: step.to_owned(),
        },
        DurationError::InvalidUnit => ScheduleError::InvalidUnit {
            position,
            step: step.to_owned(),
        },
        DurationError::TooLong => ScheduleError::StepTooLong { position },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_schedule_text() {
        let parsed: RetrySchedule = "0s,5s,5m,30m,2h,5h,10h,10h".parse().expect("valid");
        assert_eq!(parsed, RetrySchedule::default());
    }

    #[test]
    fn accepts_every_unit_and_surrounding_whitespace() {
        let parsed: RetrySchedule = " 250ms , 2s,3m ,4h,\t1d ".parse().expect("valid");
        let secs: Vec<u128> = parsed.steps().iter().map(Duration::as_millis).collect();
        assert_eq!(secs, [250, 2_000, 180_000, 14_400_000, 86_400_000]);
    }

    #[test]
    fn display_round_trips_in_the_coarsest_exact_unit() {
        assert_eq!(
            RetrySchedule::default().to_string(),
            "0s,5s,5m,30m,2h,5h,10h,10h"
        );
        let text = "1500ms,90s,1d,25h,0s,7d";
        let parsed: RetrySchedule = text.parse().expect("valid");
        assert_eq!(parsed.to_string(), text);
        assert_eq!(parsed.to_string().parse::<RetrySchedule>(), Ok(parsed));
    }

    #[test]
    fn reports_the_offending_step() {
        let err = |s: &str| s.parse::<RetrySchedule>().unwrap_err();
        assert_eq!(err(""), ScheduleError::Empty);
        assert_eq!(err("  "), ScheduleError::Empty);
        assert_eq!(err("5s,,5m"), ScheduleError::EmptyStep { position: 2 });
        assert_eq!(err("5s,"), ScheduleError::EmptyStep { position: 2 });
        assert_eq!(
            err("5s,m"),
            ScheduleError::InvalidNumber {
                position: 2,
                step: "m".into()
            }
        );
        assert_eq!(
            err("-5s"),
            ScheduleError::InvalidNumber {
                position: 1,
                step: "-5s".into()
            }
        );
        for bad in ["5", "5w", "5 s", "5S", "1.5h", "5sec"] {
            assert_eq!(
                err(bad),
                ScheduleError::InvalidUnit {
                    position: 1,
                    step: bad.into()
                },
                "{bad}"
            );
        }
        assert_eq!(err("0s,8d"), ScheduleError::StepTooLong { position: 2 });
        assert_eq!(
            err("99999999999999999999999h"),
            ScheduleError::StepTooLong { position: 1 }
        );
        assert_eq!(
            err("18446744073709551615d"),
            ScheduleError::StepTooLong { position: 1 }
        );
        let many = vec!["1s"; MAX_STEPS + 1].join(",");
        assert_eq!(err(&many), ScheduleError::TooManySteps(MAX_STEPS + 1));
    }

    #[test]
    fn errors_read_clearly() {
        let err = "5s,5w".parse::<RetrySchedule>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"retry step 2 ("5w") needs a unit: ms, s, m, h or d"#
        );
        assert_eq!(super::super::MAX_STEP, Duration::from_secs(7 * 86_400));
    }
}
