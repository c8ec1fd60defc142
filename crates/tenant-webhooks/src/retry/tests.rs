//! Tests of the schedule arithmetic: steps, jitter bounds and the `Retry-After` rule.

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::*;

const HOUR: u64 = 3600;

fn no_jitter() -> RetrySchedule {
    RetrySchedule::default()
        .with_jitter_percent(0)
        .expect("0 % is valid")
}

#[test]
fn default_schedule_is_the_documented_one_and_then_exhausts() {
    let schedule = no_jitter();
    let mut rng = StdRng::seed_from_u64(1);
    let delays: Vec<u64> = (0..8)
        .map(|n| {
            schedule
                .next_delay(n, &mut rng)
                .expect("in range")
                .as_secs()
        })
        .collect();
    assert_eq!(
        delays,
        [0, 5, 300, 1800, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR]
    );
    assert_eq!(schedule.max_attempts(), 8);
    assert_eq!(schedule.next_delay(8, &mut rng), None);
    assert_eq!(schedule.next_delay(u32::MAX, &mut rng), None);
}

#[test]
fn jitter_positions_map_to_exact_bounds() {
    let schedule = RetrySchedule::default();
    let step = Duration::from_secs(300);
    assert_eq!(schedule.jittered_delay(2, 0.0), Some(step));
    assert_eq!(
        schedule.jittered_delay(2, -1.0),
        Some(Duration::from_secs(240))
    );
    assert_eq!(
        schedule.jittered_delay(2, 1.0),
        Some(Duration::from_secs(360))
    );
    assert_eq!(
        schedule.jittered_delay(2, 0.5),
        Some(Duration::from_secs(330))
    );
    // Out-of-range and NaN positions are clamped rather than trusted.
    assert_eq!(
        schedule.jittered_delay(2, -7.0),
        Some(Duration::from_secs(240))
    );
    assert_eq!(
        schedule.jittered_delay(2, 7.0),
        Some(Duration::from_secs(360))
    );
    assert_eq!(schedule.jittered_delay(2, f64::NAN), Some(step));
    assert_eq!(schedule.jittered_delay(0, 1.0), Some(Duration::ZERO));
    assert_eq!(schedule.jittered_delay(8, 0.0), None);
}

#[test]
fn full_jitter_never_goes_negative() {
    let schedule = RetrySchedule::default()
        .with_jitter_percent(100)
        .expect("100 % is valid");
    assert_eq!(schedule.jittered_delay(1, -1.0), Some(Duration::ZERO));
    assert_eq!(
        schedule.jittered_delay(1, 1.0),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn random_jitter_stays_within_bounds_and_actually_varies() {
    let schedule = RetrySchedule::default();
    let mut rng = StdRng::seed_from_u64(42);
    let samples: Vec<Duration> = (0..500)
        .map(|_| schedule.next_delay(3, &mut rng).expect("in range"))
        .collect();
    let (low, high) = (Duration::from_secs(1440), Duration::from_secs(2160));
    assert!(samples.iter().all(|d| (low..=high).contains(d)));
    assert!(samples.iter().any(|d| *d < Duration::from_secs(1700)));
    assert!(samples.iter().any(|d| *d > Duration::from_secs(1900)));
}

#[test]
fn seeded_rngs_are_reproducible() {
    let schedule = RetrySchedule::default();
    let run = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..8)
            .map(|n| schedule.next_delay(n, &mut rng))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
}

#[test]
fn retry_after_can_lengthen_but_never_shorten_the_wait() {
    let schedule = no_jitter();
    let mut rng = StdRng::seed_from_u64(3);
    let longer = Some(Duration::from_secs(900));
    assert_eq!(
        schedule.next_delay_with_retry_after(2, &mut rng, longer),
        Some(Duration::from_secs(900))
    );
    let shorter = Some(Duration::from_secs(10));
    assert_eq!(
        schedule.next_delay_with_retry_after(2, &mut rng, shorter),
        Some(Duration::from_secs(300))
    );
    assert_eq!(
        schedule.next_delay_with_retry_after(2, &mut rng, None),
        Some(Duration::from_secs(300))
    );
}

#[test]
fn retry_after_is_capped_and_cannot_extend_an_exhausted_schedule() {
    let schedule = no_jitter().with_max_retry_after(Duration::from_secs(HOUR));
    let mut rng = StdRng::seed_from_u64(3);
    let huge = Some(Duration::from_secs(30 * 24 * HOUR));
    assert_eq!(
        schedule.next_delay_with_retry_after(1, &mut rng, huge),
        Some(Duration::from_secs(HOUR))
    );
    // A cap below the step never shortens the step itself.
    assert_eq!(
        schedule.next_delay_with_retry_after(5, &mut rng, huge),
        Some(Duration::from_secs(5 * HOUR))
    );
    assert_eq!(
        schedule.next_delay_with_retry_after(8, &mut rng, huge),
        None
    );

    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(
        schedule.retry_after("86400", now),
        Some(Duration::from_secs(HOUR))
    );
    assert_eq!(
        schedule.retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(schedule.retry_after("soon", now), None);
}

#[test]
fn new_validates_steps_and_jitter() {
    assert_eq!(RetrySchedule::new(vec![]), Err(ScheduleError::Empty));
    assert_eq!(
        RetrySchedule::new(vec![Duration::ZERO; MAX_STEPS + 1]),
        Err(ScheduleError::TooManySteps(MAX_STEPS + 1))
    );
    assert!(RetrySchedule::new(vec![Duration::ZERO; MAX_STEPS]).is_ok());
    assert_eq!(
        RetrySchedule::new(vec![Duration::ZERO, MAX_STEP + Duration::from_millis(1)]),
        Err(ScheduleError::StepTooLong { position: 2 })
    );
    assert!(RetrySchedule::new(vec![MAX_STEP]).is_ok());
    assert_eq!(
        RetrySchedule::new(vec![Duration::from_micros(1500)]),
        Err(ScheduleError::SubMillisecond { position: 1 })
    );
    assert_eq!(
        RetrySchedule::default().with_jitter_percent(101),
        Err(ScheduleError::JitterTooLarge(101))
    );
}

#[test]
fn longest_step_with_full_jitter_does_not_overflow() {
    let schedule = RetrySchedule::new(vec![MAX_STEP])
        .and_then(|s| s.with_jitter_percent(100))
        .expect("valid");
    assert_eq!(schedule.jittered_delay(0, 1.0), Some(MAX_STEP * 2));
}
