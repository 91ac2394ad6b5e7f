//! The timeline: every activity, timer and sub-orchestration of an execution as a bar over
//! virtual time, retries as separate attempts, so parallelism and waiting show at a glance.
//! Pure: a history (and the clock's now, for bars still open) in, bars out.

use chrono::{DateTime, Utc};
use durable_sdk::history::{EventKind, HistoryEvent};
use std::collections::HashMap;

/// What a bar stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// An activity attempt.
    Activity,
    /// A durable timer.
    Timer,
    /// A sub-orchestration.
    SubOrchestration,
}

/// One call over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// e.g. `ChargeCard #2 (attempt 2)`.
    pub label: String,
    /// What it is.
    pub kind: BarKind,
    /// When it was scheduled.
    pub start: DateTime<Utc>,
    /// When it completed (`None`: still open; timers then end at their due time).
    pub end: Option<DateTime<Utc>>,
    /// For timers: when due.
    pub due: Option<DateTime<Utc>>,
    /// Its completion was a failure.
    pub failed: bool,
}

/// The bars of one execution and the span they cover.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// Start of the axis (the execution's first event).
    pub start: Option<DateTime<Utc>>,
    /// End of the axis.
    pub end: Option<DateTime<Utc>>,
    /// The bars, in scheduling order.
    pub bars: Vec<Bar>,
}

/// The timeline of `events`; open bars extend to `now`.
pub fn timeline(events: &[HistoryEvent], now: Option<DateTime<Utc>>) -> Timeline {
    let mut bars: Vec<Bar> = Vec::new();
    let mut by_id: HashMap<i32, usize> = HashMap::new();
    let mut attempts: HashMap<String, u32> = HashMap::new();
    for event in events {
        let bar = match &event.kind {
            EventKind::TaskScheduled { name, .. } => {
                let attempt = attempts.entry(name.clone()).or_default();
                *attempt += 1;
                let label = if *attempt > 1 {
                    format!("{name} #{} (attempt {attempt})", event.event_id)
                } else {
                    format!("{name} #{}", event.event_id)
                };
                Some((label, BarKind::Activity, None))
            }
            EventKind::SubOrchestrationInstanceCreated { name, .. } => Some((
                format!("{name} #{}", event.event_id),
                BarKind::SubOrchestration,
                None,
            )),
            EventKind::TimerCreated { fire_at } => Some((
                format!("timer #{}", event.event_id),
                BarKind::Timer,
                Some(*fire_at),
            )),
            kind => {
                if let Some(id) = kind.completes_task() {
                    if let Some(bar) = by_id.get(&id).and_then(|&index| bars.get_mut(index)) {
                        bar.end.get_or_insert(event.timestamp);
                        bar.failed |= kind.failure().is_some();
                    }
                }
                None
            }
        };
        if let Some((label, kind, due)) = bar {
            by_id.insert(event.event_id, bars.len());
            bars.push(Bar {
                label,
                kind,
                start: event.timestamp,
                end: None,
                due,
                failed: false,
            });
        }
    }
    let start = events.first().map(|event| event.timestamp);
    let mut end = events.last().map(|event| event.timestamp);
    let finished = events.iter().any(|event| {
        matches!(
            event.kind,
            EventKind::ExecutionCompleted { .. } | EventKind::ContinueAsNew { .. }
        )
    });
    for bar in &bars {
        end = end.max(bar.end).max(bar.due);
        if bar.end.is_none() && !finished {
            end = end.max(now);
        }
    }
    Timeline { start, end, bars }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(seconds: i64, event_id: i32, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            event_id,
            timestamp: DateTime::UNIX_EPOCH + chrono::Duration::seconds(seconds),
            kind,
        }
    }

    #[test]
    fn retries_are_separate_attempts_and_timers_show_their_wait() {
        let scheduled = |id| {
            at(
                0,
                id,
                EventKind::TaskScheduled {
                    name: "Charge".into(),
                    input: json!(1),
                },
            )
        };
        let failure = durable_sdk::FailureDetails::new("Down", "gateway down");
        let events = vec![
            scheduled(0),
            at(
                1,
                -1,
                EventKind::TaskFailed {
                    task_scheduled_id: 0,
                    failure,
                },
            ),
            at(
                1,
                1,
                EventKind::TimerCreated {
                    fire_at: DateTime::UNIX_EPOCH + chrono::Duration::seconds(11),
                },
            ),
            at(
                11,
                -1,
                EventKind::TimerFired {
                    fire_at: DateTime::UNIX_EPOCH,
                    timer_id: 1,
                },
            ),
            scheduled(2),
        ];
        let line = timeline(
            &events,
            Some(DateTime::UNIX_EPOCH + chrono::Duration::seconds(20)),
        );
        let labels: Vec<&str> = line.bars.iter().map(|bar| bar.label.as_str()).collect();
        assert_eq!(labels, ["Charge #0", "timer #1", "Charge #2 (attempt 2)"]);
        assert!(line.bars[0].failed);
        assert_eq!(line.bars[1].end.unwrap().timestamp(), 11);
        assert_eq!(
            line.end.unwrap().timestamp(),
            20,
            "the open attempt runs until now"
        );
    }
}
