//! When to try a failed callback again: a fixed ladder from seconds to hours, ±20 % jitter, given up after 3 days.

use std::time::Duration;

use rand::Rng;

/// The ladder of delays after the 1st, 2nd, … failed attempt, as multiples of [`RetryPolicy::first_retry`]:
/// with the default 5 s these are 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h and 8 h.
const LADDER: [u32; 9] = [1, 6, 24, 120, 360, 720, 1440, 2880, 5760];

/// The retry schedule of one callback.
///
/// After the n-th failed attempt the next one waits `LADDER[n-1] × first_retry` (capped at `max_interval`; every
/// delay past the ladder is `max_interval`), multiplied by a uniformly random factor in `[1 - jitter, 1 + jitter]`
/// so receivers recovering from an outage are not hit by every sender at once. No attempt is scheduled later than
/// `max_age` after the first one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the first retry, and the unit of the ladder. Default 5 s.
    pub first_retry: Duration,
    /// Longest delay between two attempts. Default 8 h.
    pub max_interval: Duration,
    /// No attempt is made later than this after the first one. Default 3 days.
    pub max_age: Duration,
    /// Relative jitter applied to every delay, clamped to `0.0..=0.9`. Default 0.2 (±20 %).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(5),
            max_interval: Duration::from_secs(8 * 60 * 60),
            max_age: Duration::from_secs(3 * 24 * 60 * 60),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// The delay, before jitter, after `failed_attempts` failed attempts (1 after the first failure; 0 is treated
    /// as 1).
    pub fn base_delay(&self, failed_attempts: u32) -> Duration {
        let index = usize::try_from(failed_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        match LADDER.get(index) {
            Some(&multiple) => self.first_retry.checked_mul(multiple).unwrap_or(Duration::MAX).min(self.max_interval),
            None => self.max_interval,
        }
    }

    /// How long to wait before the next attempt, given the number of attempts that have failed so far (1 after
    /// the first failure) and the time since the first attempt; `None` once that attempt would fall later than
    /// `max_age` after the first one, meaning: give up.
    pub fn next_attempt_after<R: Rng + ?Sized>(
        &self,
        failed_attempts: u32,
        first_failure_age: Duration,
        rng: &mut R,
    ) -> Option<Duration> {
        let jitter = if self.jitter.is_finite() { self.jitter.clamp(0.0, 0.9) } else { 0.0 };
        let factor = rng.random_range((1.0 - jitter)..=(1.0 + jitter));
        let base = self.base_delay(failed_attempts);
        let delay = Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(Duration::MAX);
        (first_failure_age.saturating_add(delay) <= self.max_age).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    use super::*;

    const HOUR: u64 = 60 * 60;

    fn no_jitter() -> RetryPolicy {
        RetryPolicy { jitter: 0.0, ..RetryPolicy::default() }
    }

    #[test]
    fn default_ladder_goes_from_seconds_to_hours() {
        let policy = RetryPolicy::default();
        let expected = [5, 30, 120, 600, 1800, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 8 * HOUR, 8 * HOUR];
        for (index, secs) in expected.into_iter().enumerate() {
            let failed = u32::try_from(index).unwrap() + 1;
            assert_eq!(policy.base_delay(failed), Duration::from_secs(secs), "after {failed} failures");
        }
        assert_eq!(policy.base_delay(0), Duration::from_secs(5));
        assert_eq!(policy.base_delay(u32::MAX), Duration::from_secs(8 * HOUR));
    }

    #[test]
    fn base_delays_never_shrink() {
        let policy = RetryPolicy::default();
        let delays: Vec<Duration> = (1..100).map(|n| policy.base_delay(n)).collect();
        assert!(delays.windows(2).all(|pair| pair[0] <= pair[1]), "{delays:?}");
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_ladder_steps_never_overlap() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        let mut previous_max = Duration::ZERO;
        for failed in 1..=9 {
            let base = policy.base_delay(failed).as_secs_f64();
            let samples: Vec<f64> = (0..500)
                .map(|_| policy.next_attempt_after(failed, Duration::ZERO, &mut rng).unwrap().as_secs_f64())
                .collect();
            let (min, max) = samples.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &s| (lo.min(s), hi.max(s)));
            assert!(min >= base * 0.8 - 1e-9 && max <= base * 1.2 + 1e-9, "step {failed}: {min}..{max} vs {base}");
            assert!(max - min > base * 0.2, "step {failed} has too little spread: {min}..{max}");
            assert!(Duration::from_secs_f64(min) > previous_max, "step {failed} overlaps the previous step");
            previous_max = Duration::from_secs_f64(max);
        }
    }

    #[test]
    fn gives_up_when_the_next_attempt_would_be_past_three_days() {
        let policy = no_jitter();
        let mut rng = StdRng::seed_from_u64(1);
        let three_days = Duration::from_secs(72 * HOUR);
        assert_eq!(policy.max_age, three_days);
        assert_eq!(
            policy.next_attempt_after(10, three_days - Duration::from_secs(8 * HOUR), &mut rng),
            Some(Duration::from_secs(8 * HOUR))
        );
        assert_eq!(policy.next_attempt_after(10, three_days - Duration::from_secs(8 * HOUR - 1), &mut rng), None);
        assert_eq!(policy.next_attempt_after(1, three_days, &mut rng), None);
        assert_eq!(
            policy.next_attempt_after(1, three_days - Duration::from_secs(5), &mut rng),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn full_schedule_without_jitter_makes_seventeen_attempts_within_three_days() {
        let policy = no_jitter();
        let mut rng = StdRng::seed_from_u64(2);
        let mut age = Duration::ZERO;
        let mut attempts = 1;
        while let Some(delay) = policy.next_attempt_after(attempts, age, &mut rng) {
            age += delay;
            attempts += 1;
        }
        assert_eq!(attempts, 17);
        assert_eq!(age, Duration::from_secs(71 * HOUR + 42 * 60 + 35));
    }

    #[test]
    fn jittered_schedule_always_ends_within_max_age() {
        let policy = RetryPolicy::default();
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut age = Duration::ZERO;
            let mut attempts = 1;
            while let Some(delay) = policy.next_attempt_after(attempts, age, &mut rng) {
                age += delay;
                attempts += 1;
            }
            assert!(age <= policy.max_age, "seed {seed}: last attempt at {age:?}");
            assert!((15..=19).contains(&attempts), "seed {seed}: {attempts} attempts");
        }
    }

    #[test]
    fn custom_first_retry_scales_the_ladder_and_out_of_range_values_are_safe() {
        let fast = RetryPolicy { first_retry: Duration::from_millis(10), jitter: 0.0, ..RetryPolicy::default() };
        assert_eq!(fast.base_delay(2), Duration::from_millis(60));
        let huge = RetryPolicy { first_retry: Duration::MAX, max_interval: Duration::MAX, ..RetryPolicy::default() };
        assert_eq!(huge.base_delay(3), Duration::MAX);
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(huge.next_attempt_after(3, Duration::ZERO, &mut rng), None);
        let wild = RetryPolicy { jitter: f64::NAN, ..RetryPolicy::default() };
        assert_eq!(wild.next_attempt_after(1, Duration::ZERO, &mut rng), Some(Duration::from_secs(5)));
    }
}
