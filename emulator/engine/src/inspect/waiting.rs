//! What an instance waits for: the external events its code waits for by name, its timers not yet
//! fired (with their due time), its activities, HTTP requests (`HTTP GET /jobs/1`:
//! [`super::http`]) and sub-orchestrations scheduled but without a result, and its entity calls
//! and lock requests without an answer; with the two text forms front ends show (a header line, a list cell).
//!
//! History records no wait for an event (a wait is not an action), so the event names come from
//! the caller: the plugin reports them with each episode and the engine keeps them on the
//! instance record (`InstanceRecord::awaited_events`). Everything else is read from the current
//! execution's history, either at once ([`OpenCalls::of`]) or event by event as it grows
//! ([`OpenCalls::record`]), so a list can keep one per row without reloading histories.
//!
//! Must not know: terminals, the store or the core.

use super::rows::format_age;
use chrono::{DateTime, Utc};
use durable_sdk::history::{EventKind, HistoryEvent};
use std::collections::BTreeMap;

/// The calls of one execution that are still open, by sequence id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenCalls {
    timers: BTreeMap<i32, DateTime<Utc>>,
    activities: BTreeMap<i32, String>,
    /// HTTP requests (the built-in activity), by what they ask: `HTTP GET /jobs/1`.
    http: BTreeMap<i32, String>,
    sub_orchestrations: BTreeMap<i32, String>,
    /// Entity calls awaiting their answer and lock requests awaiting their grant, by request
    /// id: the entity called, or `lock` for a lock request.
    entities: BTreeMap<String, String>,
}

impl OpenCalls {
    /// The open calls of an execution's events, from its first event.
    pub fn of(events: &[HistoryEvent]) -> Self {
        let mut open = Self::default();
        for event in events {
            open.record(event);
        }
        open
    }

    /// Adds one event. A result for a call not seen (a history read from its middle) is ignored;
    /// the execution's end closes everything (a timer that lost a race never fires into it).
    pub fn record(&mut self, event: &HistoryEvent) {
        match &event.kind {
            EventKind::TimerCreated { fire_at } => {
                self.timers.insert(event.event_id, *fire_at);
            }
            EventKind::TimerFired { timer_id, .. } => {
                self.timers.remove(timer_id);
            }
            EventKind::TaskScheduled { name, input } => match super::http::request(name, input) {
                Some(wire) => {
                    self.http
                        .insert(event.event_id, super::http::call_name(&wire));
                }
                None => {
                    self.activities.insert(event.event_id, name.clone());
                }
            },
            EventKind::TaskCompleted {
                task_scheduled_id, ..
            }
            | EventKind::TaskFailed {
                task_scheduled_id, ..
            } => {
                self.activities.remove(task_scheduled_id);
                self.http.remove(task_scheduled_id);
            }
            EventKind::SubOrchestrationInstanceCreated { name, .. } => {
                self.sub_orchestrations.insert(event.event_id, name.clone());
            }
            EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id, ..
            }
            | EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id, ..
            } => {
                self.sub_orchestrations.remove(task_scheduled_id);
            }
            EventKind::EntityOperationCalled {
                request_id,
                target_instance_id,
                ..
            } => {
                self.entities
                    .insert(request_id.clone(), target_instance_id.clone());
            }
            EventKind::EntityLockRequested {
                critical_section_id,
                ..
            } => {
                self.entities
                    .insert(critical_section_id.clone(), "lock".to_string());
            }
            EventKind::ExecutionCompleted { .. } | EventKind::ContinueAsNew { .. } => {
                *self = Self::default();
            }
            kind => {
                if let Some(request) = kind.answers_entity_request() {
                    self.entities.remove(request);
                }
            }
        }
    }

    /// Nothing open.
    pub fn is_empty(&self) -> bool {
        self.timers.is_empty()
            && self.activities.is_empty()
            && self.http.is_empty()
            && self.sub_orchestrations.is_empty()
            && self.entities.is_empty()
    }
}

/// One thing an instance waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// An external event, by the name its code waits for.
    Event(String),
    /// Timers not yet fired: how many, and when the soonest is due.
    Timers {
        /// Open timers.
        count: usize,
        /// The soonest due time.
        next_due: DateTime<Utc>,
    },
    /// Activities in flight: how many, and their name when they all share one.
    Activities {
        /// Activities scheduled without a result.
        count: usize,
        /// Their common name, if they have one.
        name: Option<String>,
    },
    /// HTTP requests in flight: how many, and what they ask (`HTTP GET /jobs/1`) when they all
    /// ask the same.
    Http {
        /// Requests sent without an answer.
        count: usize,
        /// Their common method and target, if they have one.
        name: Option<String>,
    },
    /// Sub-orchestrations in flight: how many, and their name when they all share one.
    SubOrchestrations {
        /// Children started without a result.
        count: usize,
        /// Their common name, if they have one.
        name: Option<String>,
    },
    /// Entity calls awaiting an answer and lock requests awaiting their grant: how many, and the
    /// entity when they all go to one (`lock` when they are all lock requests).
    Entities {
        /// Requests without an answer.
        count: usize,
        /// Their common entity, if they have one.
        name: Option<String>,
    },
}

/// What an instance waits for: `awaited_events` (as its record names them), then its open
/// timers, activities and sub-orchestrations.
pub fn waits(awaited_events: &[String], open: &OpenCalls) -> Vec<Wait> {
    let mut waits: Vec<Wait> = awaited_events.iter().cloned().map(Wait::Event).collect();
    if let Some(next_due) = open.timers.values().min() {
        waits.push(Wait::Timers {
            count: open.timers.len(),
            next_due: *next_due,
        });
    }
    if !open.activities.is_empty() {
        waits.push(Wait::Activities {
            count: open.activities.len(),
            name: common_name(open.activities.values()),
        });
    }
    if !open.http.is_empty() {
        waits.push(Wait::Http {
            count: open.http.len(),
            name: common_name(open.http.values()),
        });
    }
    if !open.sub_orchestrations.is_empty() {
        waits.push(Wait::SubOrchestrations {
            count: open.sub_orchestrations.len(),
            name: common_name(open.sub_orchestrations.values()),
        });
    }
    if !open.entities.is_empty() {
        waits.push(Wait::Entities {
            count: open.entities.len(),
            name: common_name(open.entities.values()),
        });
    }
    waits
}

fn common_name<'a>(mut names: impl Iterator<Item = &'a String>) -> Option<String> {
    let first = names.next()?;
    names.all(|name| name == first).then(|| first.clone())
}

/// The long form, for a header: `event 'Approval' · timer due 2024-01-01 01:00:00 (in 1h00m) ·
/// 3 activities in flight (Square)`; empty when it waits for nothing. `now` (virtual time) adds
/// how long until a timer is due.
pub fn describe(waits: &[Wait], now: Option<DateTime<Utc>>) -> String {
    let parts: Vec<String> = waits
        .iter()
        .map(|wait| match wait {
            Wait::Event(name) => format!("event '{name}'"),
            Wait::Timers { count, next_due } => {
                let due = next_due.format("%Y-%m-%d %H:%M:%S");
                let until = now.map(|now| due_in(*next_due, now)).unwrap_or_default();
                if *count == 1 {
                    format!("timer due {due}{until}")
                } else {
                    format!("{count} timers, next due {due}{until}")
                }
            }
            Wait::Activities { count, name } => in_flight(*count, name, "activity", "activities"),
            Wait::Http { count, name } => match (count, name) {
                (1, Some(name)) => format!("{name} in flight"),
                (_, Some(name)) => format!("{count} requests in flight ({name})"),
                _ => format!("{count} HTTP requests in flight"),
            },
            Wait::SubOrchestrations { count, name } => {
                in_flight(*count, name, "sub-orchestration", "sub-orchestrations")
            }
            Wait::Entities { count, name } => match (count, name.as_deref()) {
                (1, Some("lock")) => "a lock on entities".to_string(),
                (_, Some("lock")) => format!("{count} lock requests"),
                (1, Some(entity)) => format!("an answer from {entity}"),
                (_, Some(entity)) => format!("{count} answers from {entity}"),
                _ => format!("{count} entity answers"),
            },
        })
        .collect();
    parts.join(" · ")
}

fn due_in(due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if due > now {
        format!(" (in {})", format_age(due - now))
    } else {
        " (due now)".to_string()
    }
}

fn in_flight(count: usize, name: &Option<String>, one: &str, many: &str) -> String {
    match (count, name) {
        (1, Some(name)) => format!("{one} {name} in flight"),
        (_, Some(name)) => format!("{count} {many} in flight ({name})"),
        _ => format!("{count} {many} in flight"),
    }
}

/// The short form, for a list cell: `Approval, timer 1h00m, 3× Square`; empty when it waits for
/// nothing. Events by name alone, a timer by the time left (or its due time without `now`).
pub fn summary(waits: &[Wait], now: Option<DateTime<Utc>>) -> String {
    let parts: Vec<String> = waits
        .iter()
        .map(|wait| match wait {
            Wait::Event(name) => name.clone(),
            Wait::Timers { count, next_due } => {
                let when = match now {
                    Some(now) if *next_due > now => format_age(*next_due - now),
                    Some(_) => "due".to_string(),
                    None => next_due.format("%H:%M:%S").to_string(),
                };
                if *count == 1 {
                    format!("timer {when}")
                } else {
                    format!("{count} timers {when}")
                }
            }
            Wait::Activities { count, name } | Wait::SubOrchestrations { count, name } => {
                let kind = if matches!(wait, Wait::Activities { .. }) {
                    ("activity", "activities")
                } else {
                    ("sub", "subs")
                };
                match (count, name) {
                    (1, Some(name)) => name.clone(),
                    (_, Some(name)) => format!("{count}× {name}"),
                    (1, None) => format!("1 {}", kind.0),
                    _ => format!("{count} {}", kind.1),
                }
            }
            Wait::Http { count, name } => match (count, name) {
                (1, Some(name)) => name.clone(),
                (_, Some(name)) => format!("{count}× {name}"),
                _ => format!("{count} HTTP requests"),
            },
            Wait::Entities { count, name } => match (count, name) {
                (1, Some(name)) => name.clone(),
                (_, Some(name)) => format!("{count}× {name}"),
                _ => format!("{count} entities"),
            },
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use durable_emu_testing::history::{at, events};

    fn open(text: &str) -> OpenCalls {
        OpenCalls::of(&events(text))
    }

    #[test]
    fn an_event_raced_against_a_timer_waits_for_both() {
        let open = open(
            "
            OrchestratorStarted @0
            ExecutionStarted Approval null
            TimerCreated #0 @60
            OrchestratorCompleted
            ",
        );
        let waits = waits(&["Approval".to_string()], &open);
        assert_eq!(
            waits,
            [
                Wait::Event("Approval".into()),
                Wait::Timers {
                    count: 1,
                    next_due: at(60)
                }
            ]
        );
        assert_eq!(
            describe(&waits, Some(at(0))),
            "event 'Approval' · timer due 2024-01-01 01:00:00 (in 1h00m)"
        );
        assert_eq!(summary(&waits, Some(at(0))), "Approval, timer 1h00m");
        assert_eq!(summary(&waits, Some(at(61))), "Approval, timer due");
    }

    #[test]
    fn an_entity_call_waits_for_its_answer_and_a_lock_request_for_its_grant() {
        let event = |event_id, kind| HistoryEvent {
            event_id,
            timestamp: at(0),
            kind,
        };
        let mut open = OpenCalls::default();
        open.record(&event(
            0,
            EventKind::EntityLockRequested {
                critical_section_id: "cs".into(),
                lock_set: vec!["@account@a".into(), "@account@b".into()],
                position: 0,
                parent_instance_id: "t".into(),
            },
        ));
        assert_eq!(describe(&waits(&[], &open), None), "a lock on entities");
        open.record(&event(
            -1,
            EventKind::EntityLockGranted {
                critical_section_id: "cs".into(),
            },
        ));
        assert!(open.is_empty());
        open.record(&event(
            1,
            EventKind::EntityOperationCalled {
                request_id: "r".into(),
                operation: "withdraw".into(),
                input: serde_json::json!(50),
                target_instance_id: "@account@a".into(),
                scheduled_time: None,
                parent_instance_id: "t".into(),
                parent_execution_id: "e".into(),
            },
        ));
        let now = waits(&[], &open);
        assert_eq!(describe(&now, None), "an answer from @account@a");
        assert_eq!(summary(&now, None), "@account@a");
        open.record(&event(
            -1,
            EventKind::EntityOperationFailed {
                request_id: "r".into(),
                failure: durable_sdk::FailureDetails::new("Overdrawn", "no"),
            },
        ));
        assert!(open.is_empty());
    }

    #[test]
    fn activities_count_until_their_results_arrive_and_failures_close_them_too() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted FanOut null
            TaskScheduled #0 Square 1
            TaskScheduled #1 Square 2
            TaskScheduled #2 Square 3
            OrchestratorCompleted
            OrchestratorStarted @1
            TaskCompleted #0 1
            TaskFailed #2 Boom: no
            OrchestratorCompleted
            ";
        let all = events(text);
        let before = OpenCalls::of(&all[..6]);
        assert_eq!(
            describe(&waits(&[], &before), None),
            "3 activities in flight (Square)"
        );
        assert_eq!(summary(&waits(&[], &before), None), "3× Square");
        let after = OpenCalls::of(&all);
        assert_eq!(
            waits(&[], &after),
            [Wait::Activities {
                count: 1,
                name: Some("Square".into())
            }]
        );
        assert_eq!(
            describe(&waits(&[], &after), None),
            "activity Square in flight"
        );
    }

    #[test]
    fn an_http_request_in_flight_is_named_by_what_it_asks() {
        let open = open(
            r#"
            OrchestratorStarted @0
            ExecutionStarted Job null
            TaskScheduled #0 BuiltIn::HttpActivity {"method":"GET","uri":"http://h/jobs/1","timeoutMs":1000,"poll":3}
            OrchestratorCompleted
            "#,
        );
        let waits = waits(&[], &open);
        assert_eq!(describe(&waits, None), "HTTP GET /jobs/1 in flight");
        assert_eq!(summary(&waits, None), "HTTP GET /jobs/1");
        let (mut two, text) = (
            open.clone(),
            r#"
            TaskScheduled #1 BuiltIn::HttpActivity {"method":"GET","uri":"http://h/other","timeoutMs":1000,"poll":0}
            TaskScheduled #2 Square 2
            TaskCompleted #0 {"statusCode":200}
            TaskScheduled #3 BuiltIn::HttpActivity {"method":"GET","uri":"http://h/third","timeoutMs":1000,"poll":0}
            "#,
        );
        for event in events(text) {
            two.record(&event);
        }
        let waits = super::waits(&[], &two);
        assert_eq!(
            describe(&waits, None),
            "activity Square in flight · 2 HTTP requests in flight"
        );
        assert_eq!(summary(&waits, None), "Square, 2 HTTP requests");
    }

    #[test]
    fn mixed_calls_are_counted_without_a_name_and_children_separately() {
        let open = open(
            r#"
            OrchestratorStarted @0
            ExecutionStarted Parent null
            TaskScheduled #0 Charge null
            TaskScheduled #1 Ship null
            SubOrchestrationInstanceCreated #2 Child inst:2 null
            TimerCreated #3 @30
            TimerCreated #4 @10
            OrchestratorCompleted
            "#,
        );
        let waits = waits(&[], &open);
        assert_eq!(
            describe(&waits, Some(at(0))),
            "2 timers, next due 2024-01-01 00:10:00 (in 10m00s) · 2 activities in flight · \
             sub-orchestration Child in flight"
        );
        assert_eq!(
            summary(&waits, Some(at(0))),
            "2 timers 10m00s, 2 activities, Child"
        );
    }

    #[test]
    fn fired_timers_finished_children_and_an_ended_execution_wait_for_nothing() {
        let fired = open(
            r#"
            OrchestratorStarted @0
            ExecutionStarted Parent null
            TimerCreated #0 @10
            SubOrchestrationInstanceCreated #1 Child inst:1 null
            OrchestratorCompleted
            OrchestratorStarted @10
            TimerFired #0 @10
            SubOrchestrationInstanceCompleted #1 "done"
            OrchestratorCompleted
            "#,
        );
        assert!(fired.is_empty());
        // A timer that lost a race is still open when the execution ends: it waits for nothing.
        let ended = open(
            r#"
            OrchestratorStarted @0
            ExecutionStarted Approval null
            TimerCreated #0 @60
            OrchestratorCompleted
            OrchestratorStarted @5
            EventRaised Approval true
            ExecutionCompleted #1 Completed "Approved"
            OrchestratorCompleted
            "#,
        );
        assert!(ended.is_empty());
        assert_eq!(describe(&waits(&[], &ended), None), "");
        assert_eq!(summary(&waits(&[], &ended), None), "");
    }

    #[test]
    fn a_result_for_a_call_not_seen_is_ignored() {
        let open = open(
            "
            OrchestratorStarted @3
            TaskCompleted #7 null
            TimerFired #8 @3
            OrchestratorCompleted
            ",
        );
        assert!(open.is_empty());
    }
}
