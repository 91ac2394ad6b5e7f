//! The timeline: every activity, timer, sub-orchestration and entity call (or lock request) of an
//! execution as a bar over virtual time (an HTTP call as one bar per request, `POST /jobs`, `poll
//! 1 GET /jobs/1`, with its polling timers between them: [`super::http`]), each attempt of a retried call as a bar of its own labelled `(attempt N)` (the rule
//! is [`super::retries`]; a plain call has no attempt), so parallelism and waiting show at a glance.
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
    /// An entity call awaiting its answer, or a lock request awaiting its grant.
    Entity,
    /// One HTTP request (the first of a call, or a poll of its `Location`) until its answer.
    Http,
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
    // Entity answers name their request, not a sequence id.
    let mut by_request: HashMap<&str, usize> = HashMap::new();
    let attempts = super::retries::attempts(events);
    let call_label = |name: &str, id: i32| match attempts.get(&id) {
        Some(attempt) => format!("{name} #{id} (attempt {})", attempt.number),
        None => format!("{name} #{id}"),
    };
    for event in events {
        let bar = match &event.kind {
            EventKind::TaskScheduled { name, input } => match super::http::request(name, input) {
                Some(wire) => Some((
                    call_label(&super::http::short_request(&wire), event.event_id),
                    BarKind::Http,
                    None,
                )),
                None => Some((call_label(name, event.event_id), BarKind::Activity, None)),
            },
            EventKind::SubOrchestrationInstanceCreated { name, .. } => Some((
                call_label(name, event.event_id),
                BarKind::SubOrchestration,
                None,
            )),
            EventKind::TimerCreated { fire_at } => Some((
                format!("timer #{}", event.event_id),
                BarKind::Timer,
                Some(*fire_at),
            )),
            EventKind::EntityOperationCalled {
                request_id,
                operation,
                target_instance_id,
                ..
            } => {
                by_request.insert(request_id, bars.len());
                Some((
                    format!("{target_instance_id} {operation} #{}", event.event_id),
                    BarKind::Entity,
                    None,
                ))
            }
            EventKind::EntityLockRequested {
                critical_section_id,
                lock_set,
                ..
            } => {
                by_request.insert(critical_section_id, bars.len());
                Some((
                    format!("lock {} #{}", lock_set.join(", "), event.event_id),
                    BarKind::Entity,
                    None,
                ))
            }
            kind => {
                let answered = match kind.answers_entity_request() {
                    Some(request) => by_request.get(request).copied(),
                    None => kind.completes_task().and_then(|id| by_id.get(&id).copied()),
                };
                if let Some(bar) = answered.and_then(|index| bars.get_mut(index)) {
                    bar.end.get_or_insert(event.timestamp);
                    bar.failed |= kind.failure().is_some();
                }
                None
            }
        };
        if let Some((label, kind, due)) = bar {
            if kind != BarKind::Entity {
                by_id.insert(event.event_id, bars.len());
            }
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
    fn an_entity_call_is_a_bar_until_its_answer_and_a_lock_request_until_its_grant() {
        let failure = durable_sdk::FailureDetails::new("Overdrawn", "balance 20");
        let events = vec![
            at(
                0,
                0,
                EventKind::EntityLockRequested {
                    critical_section_id: "cs".into(),
                    lock_set: vec!["@account@a".into(), "@account@b".into()],
                    position: 0,
                    parent_instance_id: "t".into(),
                },
            ),
            at(
                1,
                -1,
                EventKind::EntityLockGranted {
                    critical_section_id: "cs".into(),
                },
            ),
            at(
                1,
                1,
                EventKind::EntityOperationCalled {
                    request_id: "r".into(),
                    operation: "withdraw".into(),
                    input: json!(50),
                    target_instance_id: "@account@a".into(),
                    scheduled_time: None,
                    parent_instance_id: "t".into(),
                    parent_execution_id: "e".into(),
                },
            ),
            // A completion of sequence id 1 that is not this call's answer leaves the bar open.
            at(
                2,
                -1,
                EventKind::TimerFired {
                    fire_at: DateTime::UNIX_EPOCH,
                    timer_id: 1,
                },
            ),
            at(
                3,
                -1,
                EventKind::EntityOperationFailed {
                    request_id: "r".into(),
                    failure,
                },
            ),
        ];
        let line = timeline(&events, None);
        let bars: Vec<(&str, BarKind, i64, bool)> = line
            .bars
            .iter()
            .map(|bar| {
                (
                    bar.label.as_str(),
                    bar.kind,
                    bar.end.map_or(-1, |end| end.timestamp()),
                    bar.failed,
                )
            })
            .collect();
        assert_eq!(
            bars,
            [
                ("lock @account@a, @account@b #0", BarKind::Entity, 1, false),
                ("@account@a withdraw #1", BarKind::Entity, 3, true),
            ]
        );
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
        assert_eq!(
            labels,
            ["Charge #0 (attempt 1)", "timer #1", "Charge #2 (attempt 2)"]
        );
        assert!(line.bars[0].failed);
        assert_eq!(line.bars[1].end.unwrap().timestamp(), 11);
        assert_eq!(
            line.end.unwrap().timestamp(),
            20,
            "the open attempt runs until now"
        );
    }

    fn labels(text: &str) -> Vec<String> {
        timeline(&durable_emu_testing::history::events(text), None)
            .bars
            .into_iter()
            .map(|bar| bar.label)
            .collect()
    }

    #[test]
    fn separate_calls_to_the_same_activity_show_no_attempt() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted HelloSequence null
            TaskScheduled #0 SayHello \"Tokyo\"
            OrchestratorStarted @1
            TaskCompleted #0 \"Hello Tokyo!\"
            TaskScheduled #1 SayHello \"Seattle\"
            OrchestratorStarted @2
            TaskCompleted #1 \"Hello Seattle!\"
            TaskScheduled #2 SayHello \"Tokyo\"
        ";
        assert_eq!(labels(text), ["SayHello #0", "SayHello #1", "SayHello #2"]);
    }

    #[test]
    fn a_fan_out_shows_no_attempts() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted FanOut 3
            TaskScheduled #0 Square 1
            TaskScheduled #1 Square 2
            TaskScheduled #2 Square 3
            OrchestratorStarted @1
            TaskCompleted #0 1
            TaskFailed #1 Boom: odd
            TaskCompleted #2 9
        ";
        assert_eq!(labels(text), ["Square #0", "Square #1", "Square #2"]);
    }

    #[test]
    fn a_retried_call_numbers_its_attempts_and_separate_calls_stay_plain() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted Pay null
            TaskScheduled #0 ChargeCard 5
            OrchestratorStarted @1
            TaskFailed #0 Down: gateway down
            TimerCreated #1 @2
            OrchestratorStarted @2
            TimerFired #1 @2
            TaskScheduled #2 ChargeCard 5
            OrchestratorStarted @3
            TaskFailed #2 Down: gateway down
            TimerCreated #3 @4
            OrchestratorStarted @4
            TimerFired #3 @4
            TaskScheduled #4 ChargeCard 5
            OrchestratorStarted @5
            TaskCompleted #4 \"ok\"
            TaskScheduled #5 ChargeCard 5
        ";
        assert_eq!(
            labels(text),
            [
                "ChargeCard #0 (attempt 1)",
                "timer #1",
                "ChargeCard #2 (attempt 2)",
                "timer #3",
                "ChargeCard #4 (attempt 3)",
                "ChargeCard #5",
            ]
        );
    }

    #[test]
    fn an_http_call_is_a_bar_per_request_with_its_polling_timers_between() {
        let line = timeline(
            &durable_emu_testing::history::events(crate::inspect::http::HTTP_JOB),
            None,
        );
        let bars: Vec<(&str, BarKind, bool)> = line
            .bars
            .iter()
            .map(|bar| (bar.label.as_str(), bar.kind, bar.failed))
            .collect();
        assert_eq!(
            bars,
            [
                ("POST /jobs #0", BarKind::Http, false),
                ("timer #1", BarKind::Timer, false),
                ("poll 1 GET /jobs/1 #2", BarKind::Http, true),
                ("poll 2 GET /jobs/1 #3", BarKind::Http, false),
            ]
        );
        assert!(line.bars.iter().all(|bar| bar.end.is_some()));
    }

    #[test]
    fn a_retried_http_request_numbers_its_attempts_though_its_time_limit_shrank() {
        // With a whole-call timeout, each attempt's limit is what remains of it.
        let text = r#"
            OrchestratorStarted @0
            ExecutionStarted Job null
            TaskScheduled #0 BuiltIn::HttpActivity {"method":"GET","uri":"http://h/a","timeoutMs":600000,"poll":0}
            OrchestratorStarted @1
            TaskFailed #0 HttpTimeout: no answer
            TimerCreated #1 @2
            OrchestratorStarted @2
            TimerFired #1 @2
            TaskScheduled #2 BuiltIn::HttpActivity {"method":"GET","uri":"http://h/a","timeoutMs":480000,"poll":0}
        "#;
        assert_eq!(
            labels(text),
            ["GET /a #0 (attempt 1)", "timer #1", "GET /a #2 (attempt 2)"]
        );
    }

    #[test]
    fn a_retried_sub_orchestration_numbers_its_attempts() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted Shop null
            SubOrchestrationInstanceCreated #0 OrderSaga inst:0 7
            SubOrchestrationInstanceCreated #1 OrderSaga inst:1 8
            OrchestratorStarted @1
            SubOrchestrationInstanceFailed #0 Down: stock
            SubOrchestrationInstanceCompleted #1 null
            TimerCreated #2 @2
            OrchestratorStarted @2
            TimerFired #2 @2
            SubOrchestrationInstanceCreated #3 OrderSaga inst:3 7
        ";
        assert_eq!(
            labels(text),
            [
                "OrderSaga #0 (attempt 1)",
                "OrderSaga #1",
                "timer #2",
                "OrderSaga #3 (attempt 2)",
            ]
        );
    }
}
