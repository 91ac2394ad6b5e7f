//! Retry policies for activity and sub-orchestration calls (docs/semantics.md#retries, **Ours**:
//! the DurableTask.Core behaviour). Retries run inside the orchestrator, so history shows every
//! attempt and every timer between attempts.
//!
//! Owns [`RetryPolicy`] and its delay arithmetic (pure functions). The retry loop itself lives in
//! `context`, which knows how to schedule attempts and timers.

use crate::failure::FailureDetails;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// How a failed activity or sub-orchestration is tried again.
///
/// Attempt `n` (1-based) that fails is followed, if retriable, by a durable timer of
/// `min(first_retry_interval * backoff_coefficient^(n-1), max_retry_interval)` and attempt `n+1`,
/// which gets a new sequence id. There is no timer after the last attempt.
#[derive(Clone)]
pub struct RetryPolicy {
    /// Total attempts, including the first. At least 1.
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub first_retry_interval: Duration,
    /// Multiplier applied to the delay after each failure; at least 1.0 (default 1.0).
    pub backoff_coefficient: f64,
    /// Upper bound of any single delay (default 1 hour).
    pub max_retry_interval: Duration,
    /// Stop retrying once this much orchestration time has passed since the first attempt was
    /// scheduled (default: no limit). Measured on the orchestration clock, never the wall clock.
    pub retry_timeout: Option<Duration>,
    handle: Option<HandlePredicate>,
}

/// Decides whether a failure is worth another attempt.
type HandlePredicate = Rc<dyn Fn(&FailureDetails) -> bool>;

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("first_retry_interval", &self.first_retry_interval)
            .field("backoff_coefficient", &self.backoff_coefficient)
            .field("max_retry_interval", &self.max_retry_interval)
            .field("retry_timeout", &self.retry_timeout)
            .field("has_handle_predicate", &self.handle.is_some())
            .finish()
    }
}

impl RetryPolicy {
    /// `max_attempts` attempts in all, `first_retry_interval` before the second; no backoff.
    pub fn new(max_attempts: u32, first_retry_interval: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            first_retry_interval,
            backoff_coefficient: 1.0,
            max_retry_interval: Duration::from_secs(3600),
            retry_timeout: None,
            handle: None,
        }
    }

    /// Multiplies the delay by `coefficient` after each failure (values below 1.0 count as 1.0).
    #[must_use]
    pub fn with_backoff(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = if coefficient.is_finite() {
            coefficient.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// Caps every delay at `max`.
    #[must_use]
    pub fn with_max_retry_interval(mut self, max: Duration) -> Self {
        self.max_retry_interval = max;
        self
    }

    /// Gives up once `timeout` of orchestration time has passed since the first attempt.
    #[must_use]
    pub fn with_retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = Some(timeout);
        self
    }

    /// Retries only failures for which `predicate` returns true.
    #[must_use]
    pub fn with_handle(mut self, predicate: impl Fn(&FailureDetails) -> bool + 'static) -> Self {
        self.handle = Some(Rc::new(predicate));
        self
    }

    /// The delay after failed attempt `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(i32::MAX as u32) as i32;
        let factor = self.backoff_coefficient.powi(exponent);
        let seconds = self.first_retry_interval.as_secs_f64() * factor;
        let capped = seconds.min(self.max_retry_interval.as_secs_f64());
        if capped.is_finite() && capped >= 0.0 {
            Duration::from_secs_f64(capped)
        } else {
            self.max_retry_interval
        }
    }

    /// Whether a failure of attempt `attempt`, `elapsed` orchestration time after the first
    /// attempt was scheduled, is followed by another attempt.
    pub fn should_retry(&self, attempt: u32, failure: &FailureDetails, elapsed: Duration) -> bool {
        if failure.is_non_retriable || attempt >= self.max_attempts {
            return false;
        }
        if let Some(timeout) = self.retry_timeout {
            if elapsed >= timeout {
                return false;
            }
        }
        self.handle.as_ref().is_none_or(|handle| handle(failure))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_the_coefficient_and_stop_at_the_cap() {
        let policy = RetryPolicy::new(5, Duration::from_secs(10))
            .with_backoff(2.0)
            .with_max_retry_interval(Duration::from_secs(30));
        let delays: Vec<u64> = (1..=4).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 30, 30]);
    }

    #[test]
    fn non_retriable_failures_and_the_last_attempt_are_not_retried() {
        let policy = RetryPolicy::new(3, Duration::from_secs(1));
        let plain = FailureDetails::new("Boom", "x");
        assert!(policy.should_retry(1, &plain, Duration::ZERO));
        assert!(!policy.should_retry(3, &plain, Duration::ZERO));
        assert!(!policy.should_retry(1, &plain.clone().non_retriable(), Duration::ZERO));
    }

    #[test]
    fn retry_timeout_and_handle_predicate_stop_retries() {
        let policy = RetryPolicy::new(10, Duration::from_secs(1))
            .with_retry_timeout(Duration::from_secs(60))
            .with_handle(|failure| failure.error_type != "Fatal");
        let plain = FailureDetails::new("Boom", "x");
        assert!(policy.should_retry(1, &plain, Duration::from_secs(59)));
        assert!(!policy.should_retry(1, &plain, Duration::from_secs(60)));
        assert!(!policy.should_retry(1, &FailureDetails::new("Fatal", "x"), Duration::ZERO));
    }
}
