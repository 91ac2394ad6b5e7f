//! The engine's clock: the one place the engine asks for "now" and for timer deadlines.
//!
//! Real time follows the wall clock. Virtual time is either *paused* (it moves only when told: by
//! a duration, to the next timer, or with auto-skip to the next due timer whenever nothing else
//! can run) or *playing* (it also runs at real speed from an anchor: the virtual time of the last
//! jump plus the real time since). Jumps work the same either way: they move the anchor. (The
//! engine, not the clock, makes a long advance step through the timers on the way.) It never
//! goes backwards and never leaves the times a history can hold (years 1 to 9999,
//! `durable_sdk::history::LATEST_TIME`): moving past that is refused, so nothing the store cannot
//! write back is ever "now". Persisting virtual time, waking when a deadline comes under a
//! playing clock and deciding when to skip are the engine's job.

use chrono::{DateTime, Utc};
use durable_sdk::history::{EARLIEST_TIME, LATEST_TIME, check_time};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

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
    #[error(
        "the clock is real; only a virtual clock (--clock virtual) can be advanced, paused or played"
    )]
    NotVirtual,
    /// The duration does not fit in the calendar.
    #[error(
        "advancing by {} would pass {LATEST_TIME}, the latest time durable-emu can store; virtual time stays where it is",
        humantime::format_duration(*.0)
    )]
    OutOfRange(Duration),
    /// The time asked for is past the calendar.
    #[error(
        "virtual time cannot move to {0}: the latest time durable-emu can store is {LATEST_TIME}; it stays where it is"
    )]
    PastLatest(DateTime<Utc>),
}

/// The engine's clock.
#[derive(Debug, Clone)]
pub struct Clock {
    kind: ClockKind,
    /// Virtual now while paused; while playing, the anchor that real time runs on from.
    virtual_now: DateTime<Utc>,
    /// Set while virtual time plays: the real instant `virtual_now` was anchored at.
    playing_since: Option<Instant>,
    /// Under virtual time: jump to the next due timer whenever nothing else can run.
    pub auto_skip: bool,
}

impl Clock {
    /// The wall clock.
    pub fn real() -> Self {
        Self {
            kind: ClockKind::Real,
            virtual_now: Utc::now(),
            playing_since: None,
            auto_skip: false,
        }
    }

    /// Virtual time starting at `start`, paused.
    pub fn virtual_at(start: DateTime<Utc>, auto_skip: bool) -> Self {
        Self {
            kind: ClockKind::Virtual,
            virtual_now: start,
            playing_since: None,
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

    /// Whether virtual time runs at real speed (a real clock never "plays": it just is).
    pub fn is_playing(&self) -> bool {
        self.playing_since.is_some()
    }

    /// Lets virtual time run at real speed from now on (`true`), or stops it where it is
    /// (`false`); doing what is already so changes nothing. Returns now.
    pub fn set_playing(&mut self, playing: bool) -> Result<DateTime<Utc>, ClockError> {
        if !self.is_virtual() {
            return Err(ClockError::NotVirtual);
        }
        let at = Instant::now();
        if playing != self.is_playing() {
            self.virtual_now = self.virtual_now_at(at);
            self.playing_since = playing.then_some(at);
        }
        Ok(self.virtual_now)
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self.kind {
            ClockKind::Real => Utc::now(),
            ClockKind::Virtual => self.virtual_now_at(Instant::now()),
        }
    }

    /// Virtual now as of the real instant `at` (an instant before the anchor counts as the
    /// anchor: time never goes back). Playing time stops at the latest storable time.
    fn virtual_now_at(&self, at: Instant) -> DateTime<Utc> {
        let Some(since) = self.playing_since else {
            return self.virtual_now;
        };
        chrono::Duration::from_std(at.saturating_duration_since(since))
            .ok()
            .and_then(|elapsed| self.virtual_now.checked_add_signed(elapsed))
            .map_or(LATEST_TIME, |now| now.min(LATEST_TIME))
    }

    /// Puts virtual now at `at` (a jump); a playing clock runs on from there.
    fn jump_to(&mut self, at: DateTime<Utc>) {
        self.virtual_now = at;
        if self.playing_since.is_some() {
            self.playing_since = Some(Instant::now());
        }
    }

    /// Moves virtual time forward by `by`.
    pub fn advance(&mut self, by: Duration) -> Result<DateTime<Utc>, ClockError> {
        let later = self.later(self.now(), by)?;
        self.jump_to(later);
        Ok(later)
    }

    /// The virtual time `by` after `from`, without moving the clock: what an advance that
    /// steps through the timers on the way (the engine's job) will end at. Refused like
    /// [`Clock::advance`].
    pub fn later(&self, from: DateTime<Utc>, by: Duration) -> Result<DateTime<Utc>, ClockError> {
        if !self.is_virtual() {
            return Err(ClockError::NotVirtual);
        }
        chrono::Duration::from_std(by)
            .ok()
            .and_then(|by| from.checked_add_signed(by))
            .filter(|later| *later <= LATEST_TIME)
            .ok_or(ClockError::OutOfRange(by))
    }

    /// Moves virtual time to `at` if that is later than now (time never goes back).
    pub fn advance_to(&mut self, at: DateTime<Utc>) -> Result<DateTime<Utc>, ClockError> {
        if !self.is_virtual() {
            return Err(ClockError::NotVirtual);
        }
        if at > LATEST_TIME {
            return Err(ClockError::PastLatest(at));
        }
        let now = self.now();
        if at > now {
            self.jump_to(at);
            return Ok(at);
        }
        Ok(now)
    }
}

/// What a front end shows of the clock, read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockSnapshot {
    /// Real or virtual.
    pub kind: ClockKind,
    /// Now, when read.
    pub now: DateTime<Utc>,
    /// Virtual time runs at real speed (between jumps).
    pub playing: bool,
    /// Virtual time jumps to the next timer whenever nothing else can run.
    pub auto_skip: bool,
    /// Where an advance under way is taking virtual time (None when none is).
    pub advancing_to: Option<DateTime<Utc>>,
}

/// Why a stored virtual time was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the stored virtual time '{text}' is not a time durable-emu can use ({reason}); virtual time never goes backwards, so it is not reset silently. Delete the meta row 'virtual_now' to start virtual time again from the wall clock, or use --db to choose another file"
)]
pub struct StoredTimeError {
    /// The stored text.
    pub text: String,
    /// Why it was refused.
    pub reason: String,
}

/// Parses virtual time as the store keeps it (RFC 3339), refusing what is outside the calendar.
pub fn parse_stored_time(text: &str) -> Result<DateTime<Utc>, StoredTimeError> {
    let refuse = |reason: String| StoredTimeError {
        text: text.to_string(),
        reason,
    };
    let time = DateTime::parse_from_rfc3339(text)
        .map_err(|error| refuse(error.to_string()))?
        .with_timezone(&Utc);
    check_time(time).map_err(|error| refuse(error.to_string()))
}

/// The longest duration that fits in the calendar at all (from year 1 to year 9999).
fn longest_duration() -> Duration {
    (LATEST_TIME - EARLIEST_TIME)
        .to_std()
        .unwrap_or(Duration::MAX)
}

/// Parses a human duration such as `90m`, `3d`, `1h 30m` or `45s`.
///
/// A duration longer than the whole calendar (years 1 to 9999) is refused: nothing could be
/// scheduled that far ahead.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|error| {
        format!("'{text}' is not a duration ({error}); examples: 90s, 15m, 2h, 3d, 1h30m")
    })?;
    if duration > longest_duration() {
        return Err(format!(
            "'{text}' is longer than the calendar durable-emu can store (years 1 to 9999); use a shorter duration"
        ));
    }
    Ok(duration)
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
    fn virtual_time_never_passes_the_latest_storable_time() {
        let start = LATEST_TIME - chrono::Duration::hours(1);
        let mut clock = Clock::virtual_at(start, true);
        let error = clock.advance(Duration::from_secs(7_200)).unwrap_err();
        assert!(matches!(error, ClockError::OutOfRange(_)));
        assert!(
            error
                .to_string()
                .contains("latest time durable-emu can store")
        );
        assert_eq!(clock.now(), start);
        let error = clock.advance_to(DateTime::<Utc>::MAX_UTC).unwrap_err();
        assert!(matches!(error, ClockError::PastLatest(_)));
        assert_eq!(clock.now(), start);
        assert_eq!(clock.advance_to(LATEST_TIME).unwrap(), LATEST_TIME);
    }

    #[test]
    fn a_stored_time_outside_the_calendar_is_refused_not_replaced() {
        let stored = DateTime::UNIX_EPOCH.to_rfc3339();
        assert_eq!(parse_stored_time(&stored).unwrap(), DateTime::UNIX_EPOCH);
        let error = parse_stored_time("+13434-11-11T13:32:49+00:00").unwrap_err();
        assert!(
            error.to_string().contains("never goes backwards"),
            "{error}"
        );
        assert!(parse_stored_time("soon").is_err());
    }

    #[test]
    fn a_duration_longer_than_the_calendar_is_refused() {
        let error = parse_duration("999999999y").unwrap_err();
        assert!(error.contains("longer than the calendar"), "{error}");
        assert!(parse_duration("9000y").is_ok());
    }

    #[test]
    fn playing_virtual_time_runs_at_real_speed_from_its_anchor() {
        let start = DateTime::UNIX_EPOCH;
        let mut clock = Clock::virtual_at(start, false);
        assert!(!clock.is_playing());
        clock.set_playing(true).unwrap();
        let since = clock.playing_since.unwrap();
        assert_eq!(
            clock.virtual_now_at(since + Duration::from_secs(90)),
            start + chrono::Duration::seconds(90)
        );
        // An instant before the anchor is not a time before it.
        assert_eq!(
            clock.virtual_now_at(since.checked_sub(Duration::from_secs(5)).unwrap_or(since)),
            start
        );
    }

    #[test]
    fn a_jump_while_playing_moves_the_anchor_and_pausing_keeps_the_time_reached() {
        let start = DateTime::UNIX_EPOCH;
        let mut clock = Clock::virtual_at(start, false);
        clock.set_playing(true).unwrap();
        let reached = clock.advance(Duration::from_secs(3_600)).unwrap();
        assert!(reached >= start + chrono::Duration::hours(1));
        assert!(clock.now() >= reached);
        let paused = clock.set_playing(false).unwrap();
        assert!(paused >= reached);
        assert!(!clock.is_playing());
        assert_eq!(clock.now(), paused);
        // Going to an earlier time leaves it where it is.
        assert_eq!(clock.advance_to(start).unwrap(), paused);
    }

    #[test]
    fn playing_time_stops_at_the_latest_storable_time() {
        let mut clock = Clock::virtual_at(LATEST_TIME - chrono::Duration::seconds(1), false);
        clock.set_playing(true).unwrap();
        let since = clock.playing_since.unwrap();
        assert_eq!(
            clock.virtual_now_at(since + Duration::from_secs(3_600)),
            LATEST_TIME
        );
    }

    #[test]
    fn real_time_cannot_be_advanced() {
        let mut clock = Clock::real();
        assert_eq!(
            clock.advance(Duration::from_secs(1)),
            Err(ClockError::NotVirtual)
        );
        assert_eq!(clock.set_playing(true), Err(ClockError::NotVirtual));
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
