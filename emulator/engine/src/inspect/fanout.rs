//! Fan-out groups: the calls one episode scheduled together (two or more activities,
//! sub-orchestrations or entity calls: what a `when_all` over them waits for), with how many are done, failed
//! and still running, and the throughput: completions per later episode, one sparkline bar each.
//! Pure: a history in, groups out; recomputed as the history grows.

use durable_sdk::history::{EventKind, HistoryEvent};
use std::collections::HashMap;

/// One group of calls scheduled together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FanOutGroup {
    /// What the calls are, e.g. `Square` or `ProcessPayment, ChargeCard`.
    pub name: String,
    /// Index of the first call's event.
    pub first_event: usize,
    /// Calls in the group.
    pub total: u64,
    /// Completed.
    pub done: u64,
    /// Failed.
    pub failed: u64,
    /// Completions per episode that delivered any, in order.
    pub throughput: Vec<u64>,
}

impl FanOutGroup {
    /// Neither done nor failed.
    pub fn running(&self) -> u64 {
        self.total.saturating_sub(self.done + self.failed)
    }
}

/// A call as its answer names it: activities and sub-orchestrations by sequence id, entity calls
/// by request id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CallKey {
    Id(i32),
    Request(String),
}

/// The fan-out groups of `events`, in the order they were scheduled.
pub fn fanout_groups(events: &[HistoryEvent]) -> Vec<FanOutGroup> {
    let mut groups: Vec<FanOutGroup> = Vec::new();
    let mut member_of: HashMap<CallKey, usize> = HashMap::new();
    // Calls of the episode in progress: (key, name, event index).
    let mut episode_calls: Vec<(CallKey, String, usize)> = Vec::new();
    // Completions per group in the episode in progress.
    let mut episode_completions: HashMap<usize, u64> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        match &event.kind {
            EventKind::TaskScheduled { name, input } => {
                // HTTP requests fanned out together form one `HTTP GET` group, whatever URIs.
                let shown = super::http::request(name, input)
                    .map_or_else(|| name.clone(), |wire| format!("HTTP {}", wire.method));
                episode_calls.push((CallKey::Id(event.event_id), shown, index));
            }
            EventKind::SubOrchestrationInstanceCreated { name, .. } => {
                episode_calls.push((CallKey::Id(event.event_id), name.clone(), index));
            }
            EventKind::EntityOperationCalled {
                request_id,
                operation,
                ..
            } => {
                episode_calls.push((
                    CallKey::Request(request_id.clone()),
                    format!("entity {operation}"),
                    index,
                ));
            }
            EventKind::OrchestratorCompleted => {
                close_episode(
                    &mut groups,
                    &mut member_of,
                    &mut episode_calls,
                    &mut episode_completions,
                );
            }
            kind => {
                let key = match super::rows::answers(kind) {
                    Some(super::rows::Answers::Call(id)) => Some(CallKey::Id(id)),
                    Some(super::rows::Answers::Request(request)) => {
                        Some(CallKey::Request(request.to_string()))
                    }
                    None => None,
                };
                if let Some(key) = key {
                    if let Some(&group) = member_of.get(&key) {
                        if kind.failure().is_some() {
                            groups[group].failed += 1;
                        } else {
                            groups[group].done += 1;
                        }
                        *episode_completions.entry(group).or_default() += 1;
                    }
                }
            }
        }
    }
    // A history read mid-episode: its calls count as scheduled.
    close_episode(
        &mut groups,
        &mut member_of,
        &mut episode_calls,
        &mut episode_completions,
    );
    groups
}

fn close_episode(
    groups: &mut Vec<FanOutGroup>,
    member_of: &mut HashMap<CallKey, usize>,
    calls: &mut Vec<(CallKey, String, usize)>,
    completions: &mut HashMap<usize, u64>,
) {
    let mut delivered: Vec<(usize, u64)> = completions.drain().collect();
    delivered.sort_unstable();
    for (group, count) in delivered {
        groups[group].throughput.push(count);
    }
    if calls.len() >= 2 {
        let group = groups.len();
        let mut names: Vec<&str> = Vec::new();
        for (_, name, _) in calls.iter() {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        groups.push(FanOutGroup {
            name: names.join(", "),
            first_event: calls[0].2,
            total: calls.len() as u64,
            ..FanOutGroup::default()
        });
        for (key, _, _) in calls.drain(..) {
            member_of.insert(key, group);
        }
    }
    calls.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use serde_json::json;

    fn event(event_id: i32, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            event_id,
            timestamp: DateTime::UNIX_EPOCH,
            kind,
        }
    }

    #[test]
    fn entity_calls_made_together_form_a_group_answered_by_request_id() {
        let call = |id: i32, key: &str| {
            event(
                id,
                EventKind::EntityOperationCalled {
                    request_id: format!("r-{id}"),
                    operation: "get".into(),
                    input: json!(null),
                    target_instance_id: format!("@counter@{key}"),
                    scheduled_time: None,
                    parent_instance_id: "p".into(),
                    parent_execution_id: "e".into(),
                },
            )
        };
        let events = vec![
            event(-1, EventKind::OrchestratorStarted),
            call(0, "a"),
            call(1, "b"),
            event(-1, EventKind::OrchestratorCompleted),
            event(-1, EventKind::OrchestratorStarted),
            // A task completion with the call's sequence id answers nothing here.
            event(
                -1,
                EventKind::TaskCompleted {
                    task_scheduled_id: 0,
                    result: json!(1),
                },
            ),
            event(
                -1,
                EventKind::EntityOperationCompleted {
                    request_id: "r-0".into(),
                    output: json!(3),
                },
            ),
            event(
                -1,
                EventKind::EntityOperationFailed {
                    request_id: "r-1".into(),
                    failure: durable_sdk::FailureDetails::new("Boom", "no"),
                },
            ),
            event(-1, EventKind::OrchestratorCompleted),
        ];
        let groups = fanout_groups(&events);
        assert_eq!(groups.len(), 1);
        let group = &groups[0];
        assert_eq!(group.name, "entity get");
        assert_eq!((group.total, group.done, group.failed), (2, 1, 1));
        assert_eq!(group.throughput, [2]);
    }

    #[test]
    fn calls_scheduled_in_one_episode_form_a_group_that_counts_up() {
        let square = |id| {
            event(
                id,
                EventKind::TaskScheduled {
                    name: "Square".into(),
                    input: json!(id),
                },
            )
        };
        let done = |id| {
            event(
                -1,
                EventKind::TaskCompleted {
                    task_scheduled_id: id,
                    result: json!(1),
                },
            )
        };
        let events = vec![
            event(-1, EventKind::OrchestratorStarted),
            square(0),
            square(1),
            square(2),
            event(-1, EventKind::OrchestratorCompleted),
            event(-1, EventKind::OrchestratorStarted),
            done(0),
            done(2),
            event(-1, EventKind::OrchestratorCompleted),
        ];
        let groups = fanout_groups(&events);
        assert_eq!(groups.len(), 1);
        let group = &groups[0];
        assert_eq!((group.total, group.done, group.running()), (3, 2, 1));
        assert_eq!(group.name, "Square");
        assert_eq!(group.throughput, [2]);
    }

    #[test]
    fn http_requests_made_together_form_one_group_named_by_method() {
        let events = durable_emu_testing::history::events(
            r#"
            OrchestratorStarted @0
            ExecutionStarted Prices null
            TaskScheduled #0 BuiltIn::HttpActivity {"method":"GET","uri":"http://a/price","timeoutMs":1000,"poll":0}
            TaskScheduled #1 BuiltIn::HttpActivity {"method":"GET","uri":"http://b/price","timeoutMs":1000,"poll":0}
            TaskScheduled #2 Square 3
            OrchestratorCompleted
            OrchestratorStarted @1
            TaskCompleted #0 {"statusCode":200,"headers":{},"content":"1"}
            OrchestratorCompleted
            "#,
        );
        let groups = fanout_groups(&events);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].name, "HTTP GET, Square");
        assert_eq!((groups[0].total, groups[0].done), (3, 1));
    }
}
