//! One backoff type for every retry in the engine: the outbox's deliveries, the realtime
//! connection's reconnects and rejoins, and the live catch-up after a failed pass.
//!
//! A [`Backoff`] is a schedule (doubling between two bounds, or fixed steps whose last
//! repeats) and a jitter fraction; [`Backoff::delay`] takes the attempt number and a random
//! number in [0, 1) from the caller, so it stays a pure function and tests pick the jitter.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
enum Schedule {
    /// `initial`, doubling per attempt, never above `max` (nor, after jitter, below `initial`).
    Doubling { initial: Duration, max: Duration },
    /// The waits before attempts 1, 2, 3, …; the last repeats.
    Steps(Vec<Duration>),
}

/// How long to wait before the next attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    schedule: Schedule,
    /// ± this fraction of the wait, e.g. 0.25.
    jitter: f64,
}

/// The outbox: 0.5 s doubling to 60 s, ±25 % (matrix-sdk's send queue curve). The live
/// catch-up retries on the same curve.
pub const OUTBOX: Backoff =
    Backoff { schedule: Schedule::Doubling { initial: Duration::from_millis(500), max: Duration::from_secs(60) }, jitter: 0.25 };

impl Backoff {
    /// Doubling from `initial` up to `max`, ± `jitter`.
    pub const fn doubling(initial: Duration, max: Duration, jitter: f64) -> Backoff {
        Backoff { schedule: Schedule::Doubling { initial, max }, jitter }
    }

    /// Fixed steps (the last repeats), ± `jitter`.
    pub fn steps(steps: Vec<Duration>, jitter: f64) -> Backoff {
        Backoff { schedule: Schedule::Steps(steps), jitter }
    }

    /// The wait before retry number `attempt` (0-based); `random` in [0, 1) picks the jitter.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let factor = 1.0 - self.jitter + 2.0 * self.jitter * random.clamp(0.0, 1.0);
        match &self.schedule {
            Schedule::Doubling { initial, max } => {
                let base = initial.as_secs_f64() * 2f64.powi(attempt.min(32) as i32);
                let secs = (base.min(max.as_secs_f64()) * factor).clamp(initial.as_secs_f64(), max.as_secs_f64());
                Duration::from_secs_f64(secs)
            }
            Schedule::Steps(steps) => {
                let base = steps.get(attempt as usize).or(steps.last()).copied().unwrap_or(Duration::from_secs(1));
                base.mul_f64(factor)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_is_bounded_and_steps_repeat_their_last() {
        let b = Backoff::doubling(Duration::from_secs(1), Duration::from_secs(8), 0.5);
        assert_eq!(b.delay(0, 0.5), Duration::from_secs(1));
        assert_eq!(b.delay(2, 0.5), Duration::from_secs(4));
        assert_eq!(b.delay(40, 0.99), Duration::from_secs(8));
        assert_eq!(b.delay(0, 0.0), Duration::from_secs(1), "never below the first wait");
        let s = Backoff::steps(vec![Duration::from_secs(1), Duration::from_secs(3)], 0.0);
        assert_eq!(s.delay(0, 0.7), Duration::from_secs(1));
        assert_eq!(s.delay(5, 0.7), Duration::from_secs(3));
    }
}
