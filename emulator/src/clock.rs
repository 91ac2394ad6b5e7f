//! The engine's clock: the one place the engine asks for "now" and for timer deadlines.
//!
//! Real time follows the wall clock. Virtual time moves only when told: by a duration, to the
//! next timer, or (with auto-skip) to the next due timer whenever nothing else can run. Pure:
//! persisting virtual time and deciding when to skip are the engine's job.

use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Which kind of time the engine runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// The wall clock.
    Real,
    /// Simulated time that moves only when told (the default: durable waits finish at once).
    #[default]
    Virtual,
}

impl FromStr for ClockKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "real" => Ok(ClockKind::Real),
            "virtual" => Ok(ClockKind::Virtual),
            other => Err(format!("unknown clock '{other}'; expected real or virtual")),
        }
    }
}

impl fmt::Display for ClockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClockKind::Real => "real",
            ClockKind::Virtual => "virtual",
        })
    }
}

/// Why the clock refused to move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// Only virtual time can be moved.
    #[error("the clock is real; only a virtual clock (--clock virtual) can be advanced")]
    NotVirtual,
    /// The duration does not fit in the calendar.
    #[error("advancing by {0:?} leaves the representable range of dates")]
    OutOfRange(Duration),
}

/// The engine's clock.
#[derive(Debug, Clone)]
pub struct Clock {
    kind: ClockKind,
    virtual_now: DateTime<Utc>,
    /// Under virtual time: jump to the next due timer whenever nothing else can run.
    pub auto_skip: bool,
}

impl Clock {
    /// The wall clock.
    pub fn real() -> Self {
        Self {
            kind: ClockKind::Real,
            virtual_now: Utc::now(),
            auto_skip: false,
        }
    }

    /// Virtual time starting at `start`.
    pub fn virtual_at(start: DateTime<Utc>, auto_skip: bool) -> Self {
        Self {
            kind: ClockKind::Virtual,
            virtual_now: start,
            auto_skip,
        }
    }

    /// Real or virtual.
    pub fn kind(&self) -> ClockKind {
        self.kind
    }

    /// Whether time moves only when told.
    pub fn is_virtual(&self) -> bool {
        self.kind == ClockKind::Virtual
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self.kind {
            ClockKind::Real => Utc::now(),
            ClockKind::Virtual => self.virtual_now,
        }
    }

    /// Moves virtual time forward by `by`.
    pub fn advance(&mut self, by: Duration) -> Result<DateTime<Utc>, ClockError> {
        if !self.is_virtual() {
            return Err(ClockError::NotVirtual);
        }
        let later = chrono::Duration::from_std(by)
            .ok()
            .and_then(|by| self.virtual_now.checked_add_signed(by))
            .ok_or(ClockError::OutOfRange(by))?;
        self.virtual_now = later;
        Ok(later)
    }

    /// Moves virtual time to `at` if that is later than now (time never goes back).
    pub fn advance_to(&mut self, at: DateTime<Utc>) -> Result<DateTime<Utc>, ClockError> {
        if !self.is_virtual() {
            return Err(ClockError::NotVirtual);
        }
        if at > self.virtual_now {
            self.virtual_now = at;
        }
        Ok(self.virtual_now)
    }
}

/// Parses a human duration such as `90m`, `3d`, `1h 30m` or `45s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|error| {
        format!("'{text}' is not a duration ({error}); examples: 90s, 15m, 2h, 3d, 1h30m")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_time_moves_only_when_told_and_never_back() {
        let start = DateTime::UNIX_EPOCH;
        let mut clock = Clock::virtual_at(start, false);
        assert_eq!(clock.now(), start);
        clock.advance(parse_duration("90m").unwrap()).unwrap();
        assert_eq!(clock.now(), start + chrono::Duration::minutes(90));
        clock.advance_to(start).unwrap();
        assert_eq!(clock.now(), start + chrono::Duration::minutes(90));
    }

    #[test]
    fn real_time_cannot_be_advanced() {
        let mut clock = Clock::real();
        assert_eq!(
            clock.advance(Duration::from_secs(1)),
            Err(ClockError::NotVirtual)
        );
    }

    #[test]
    fn durations_parse_in_human_units() {
        assert_eq!(
            parse_duration("3d").unwrap(),
            Duration::from_secs(3 * 86_400)
        );
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
        assert!(parse_duration("soon").unwrap_err().contains("examples"));
    }
}
