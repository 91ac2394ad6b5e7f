//! The history rewrite behind a rewind: a failed execution's history with its failures taken
//! out, so that replaying it runs again what failed (docs/semantics.md#rewind).
//!
//! Owns the rewrite rule and nothing else. It follows the official SDKs' worker-side rewrite
//! (durabletask-python `_build_rewind_result`, the proto's `RewindOrchestrationAction`): drop
//! every `TaskFailed` and the `TaskScheduled` it answers (so the code schedules that activity
//! again), every `SubOrchestrationInstanceFailed` (the `SubOrchestrationInstanceCreated` stays, so
//! the same child is awaited again and the host rewinds it), and the `ExecutionCompleted`; the
//! `ExecutionStarted` gets the new execution's id (and a sub-orchestration its parent's new
//! execution id). One addition, for replayers that check episode ends (ours does): every
//! `OrchestratorCompleted` from the first dropped scheduling on is dropped too, since the call
//! that scheduling recorded is unconfirmed from there on and would read as a nondeterminism.
//! Pure: knows nothing of the store or the core.

use durable_sdk::history::{EventKind, HistoryEvent};
use std::collections::HashSet;

/// A sub-orchestration the rewritten history still waits for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AwaitedChild {
    /// The `SubOrchestrationInstanceCreated` event id (the parent's task id for it).
    pub(crate) task_scheduled_id: i32,
    /// The child's orchestration.
    pub(crate) name: String,
    /// The child's instance id.
    pub(crate) instance_id: String,
    /// The child's input.
    pub(crate) input: serde_json::Value,
}

/// The rewritten history and what it still waits for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rewound {
    /// The new execution's history.
    pub(crate) history: Vec<HistoryEvent>,
    /// Activities scheduled and not completed in it (by `TaskScheduled` event).
    pub(crate) open_tasks: Vec<HistoryEvent>,
    /// Timers created and not fired in it (by `TimerCreated` event).
    pub(crate) open_timers: Vec<HistoryEvent>,
    /// Sub-orchestrations created and not completed in it.
    pub(crate) awaited_children: Vec<AwaitedChild>,
}

/// Rewrites `failed` (a failed execution's whole history) for a new execution
/// `new_execution_id`; `parent_execution_id` is the parent's new execution when a rewind of the
/// parent rewinds this child too.
pub(crate) fn rewrite(
    failed: &[HistoryEvent],
    new_execution_id: &str,
    parent_execution_id: Option<&str>,
) -> Rewound {
    let failed_tasks: HashSet<i32> = failed
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::TaskFailed {
                task_scheduled_id, ..
            } => Some(task_scheduled_id),
            _ => None,
        })
        .collect();
    let mut history = Vec::with_capacity(failed.len());
    let mut dropped_a_scheduling = false;
    for event in failed {
        match &event.kind {
            EventKind::TaskFailed { .. }
            | EventKind::SubOrchestrationInstanceFailed { .. }
            | EventKind::ExecutionCompleted { .. } => continue,
            EventKind::TaskScheduled { .. } if failed_tasks.contains(&event.event_id) => {
                dropped_a_scheduling = true;
                continue;
            }
            EventKind::OrchestratorCompleted if dropped_a_scheduling => continue,
            EventKind::ExecutionStarted { .. } => {
                let mut started = event.clone();
                if let EventKind::ExecutionStarted {
                    execution_id,
                    parent,
                    ..
                } = &mut started.kind
                {
                    *execution_id = new_execution_id.to_string();
                    if let (Some(parent), Some(parent_execution)) =
                        (parent.as_mut(), parent_execution_id)
                    {
                        parent.execution_id = parent_execution.to_string();
                    }
                }
                history.push(started);
            }
            _ => history.push(event.clone()),
        }
    }
    analyze(history)
}

/// What a rewound `history` still waits for (it becomes the new execution's history as it is):
/// the host re-arms these. Also used for a history a remote worker rewrote itself.
pub(crate) fn analyze(history: Vec<HistoryEvent>) -> Rewound {
    let completed: HashSet<i32> = history
        .iter()
        .filter_map(|event| event.kind.completes_task())
        .collect();
    let open = |event: &&HistoryEvent| !completed.contains(&event.event_id);
    let open_tasks = history
        .iter()
        .filter(|event| matches!(event.kind, EventKind::TaskScheduled { .. }))
        .filter(open)
        .cloned()
        .collect();
    let open_timers = history
        .iter()
        .filter(|event| matches!(event.kind, EventKind::TimerCreated { .. }))
        .filter(open)
        .cloned()
        .collect();
    let awaited_children = history
        .iter()
        .filter(open)
        .filter_map(|event| match &event.kind {
            EventKind::SubOrchestrationInstanceCreated {
                name,
                instance_id,
                input,
            } => Some(AwaitedChild {
                task_scheduled_id: event.event_id,
                name: name.clone(),
                instance_id: instance_id.clone(),
                input: input.clone(),
            }),
            _ => None,
        })
        .collect();
    Rewound {
        history,
        open_tasks,
        open_timers,
        awaited_children,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use durable_sdk::FailureDetails;
    use durable_sdk::history::RuntimeStatus;
    use serde_json::{Value, json};

    fn event(event_id: i32, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            event_id,
            timestamp: chrono::DateTime::UNIX_EPOCH,
            kind,
        }
    }

    fn started() -> HistoryEvent {
        event(
            -1,
            EventKind::ExecutionStarted {
                name: "Chain".into(),
                version: None,
                input: Value::Null,
                instance_id: "i".into(),
                execution_id: "old".into(),
                parent: None,
                scheduled_start: None,
            },
        )
    }

    fn scheduled(id: i32, name: &str) -> HistoryEvent {
        event(
            id,
            EventKind::TaskScheduled {
                name: name.into(),
                input: Value::Null,
            },
        )
    }

    #[test]
    fn a_failed_activity_loses_its_scheduling_and_failure_and_the_episode_ends_after_it() {
        let failed = vec![
            event(-1, EventKind::OrchestratorStarted),
            started(),
            scheduled(0, "A"),
            event(-1, EventKind::OrchestratorCompleted),
            event(-1, EventKind::OrchestratorStarted),
            event(
                -1,
                EventKind::TaskCompleted {
                    task_scheduled_id: 0,
                    result: json!(1),
                },
            ),
            scheduled(1, "B"),
            event(-1, EventKind::OrchestratorCompleted),
            event(-1, EventKind::OrchestratorStarted),
            event(
                -1,
                EventKind::TaskFailed {
                    task_scheduled_id: 1,
                    failure: FailureDetails::new("Boom", "b failed"),
                },
            ),
            event(
                2,
                EventKind::ExecutionCompleted {
                    status: RuntimeStatus::Failed,
                    result: Value::Null,
                    failure: Some(FailureDetails::new("Boom", "b failed")),
                },
            ),
            event(-1, EventKind::OrchestratorCompleted),
        ];
        let rewound = rewrite(&failed, "new", None);
        let kinds: Vec<&str> = rewound
            .history
            .iter()
            .map(|event| event.kind.type_name())
            .collect();
        assert_eq!(
            kinds,
            [
                "OrchestratorStarted",
                "ExecutionStarted",
                "TaskScheduled",
                "OrchestratorCompleted",
                "OrchestratorStarted",
                "TaskCompleted",
                "OrchestratorStarted",
            ]
        );
        assert!(matches!(
            &rewound.history[1].kind,
            EventKind::ExecutionStarted { execution_id, .. } if execution_id == "new"
        ));
        assert!(rewound.open_tasks.is_empty());
    }

    #[test]
    fn a_failed_child_stays_awaited_and_its_parent_execution_is_renamed() {
        let mut child_started = started();
        if let EventKind::ExecutionStarted { parent, .. } = &mut child_started.kind {
            *parent = Some(durable_sdk::history::ParentInstance {
                instance_id: "p".into(),
                execution_id: "p-old".into(),
                name: "Parent".into(),
                task_scheduled_id: 0,
            });
        }
        let failed = vec![
            child_started,
            event(
                0,
                EventKind::SubOrchestrationInstanceCreated {
                    name: "Child".into(),
                    instance_id: "c".into(),
                    input: json!(3),
                },
            ),
            event(
                -1,
                EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id: 0,
                    failure: FailureDetails::new("Boom", "child failed"),
                },
            ),
            scheduled(1, "StillOut"),
        ];
        let rewound = rewrite(&failed, "new", Some("p-new"));
        assert_eq!(rewound.history.len(), 3);
        assert!(matches!(
            &rewound.history[0].kind,
            EventKind::ExecutionStarted { parent: Some(parent), .. } if parent.execution_id == "p-new"
        ));
        assert_eq!(
            rewound.awaited_children,
            vec![AwaitedChild {
                task_scheduled_id: 0,
                name: "Child".into(),
                instance_id: "c".into(),
                input: json!(3),
            }]
        );
        assert_eq!(
            rewound.open_tasks.len(),
            1,
            "an activity never answered runs again"
        );
    }
}
