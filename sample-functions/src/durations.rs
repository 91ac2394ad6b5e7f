//! The whole hours and minutes that sample inputs carry, as orchestration-clock arithmetic that
//! saturates instead of panicking: an input such as `"deadline_hours": 1e19` must not crash an
//! orchestrator, it just means "never".

use durable_sdk::chrono::{DateTime, TimeDelta, Utc};

/// `hours` as a time span (the longest one chrono has if it does not fit).
pub fn hours(hours: u64) -> TimeDelta {
    i64::try_from(hours)
        .ok()
        .and_then(TimeDelta::try_hours)
        .unwrap_or(TimeDelta::MAX)
}

/// `minutes` as a time span (the longest one chrono has if it does not fit).
pub fn minutes(minutes: u64) -> TimeDelta {
    i64::try_from(minutes)
        .ok()
        .and_then(TimeDelta::try_minutes)
        .unwrap_or(TimeDelta::MAX)
}

/// `start + span`, or the end of time if that is past the calendar.
pub fn after(start: DateTime<Utc>, span: TimeDelta) -> DateTime<Utc> {
    start
        .checked_add_signed(span)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_saturate_instead_of_overflowing() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(after(start, hours(2)), start + TimeDelta::hours(2));
        assert_eq!(after(start, minutes(90)), start + TimeDelta::minutes(90));
        assert_eq!(after(start, hours(u64::MAX)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(after(start, minutes(u64::MAX)), DateTime::<Utc>::MAX_UTC);
    }
}
