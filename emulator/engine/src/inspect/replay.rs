//! The replay stepper and fork, as pure functions of a history.
//!
//! Stepping to step `k` means: replay the first `k` events of the execution through the plugin
//! (`past_events` = that prefix, `include_replay_logs` on) and look at the answer: the actions the
//! code emits next (every call history has not confirmed yet), its custom status, its replay-safe
//! log lines, and a nondeterminism diff when the code no longer matches history. Which history
//! event scheduled and which satisfied each durable call is read from the prefix itself
//! ([`calls_at`]). Whoever steps (the terminal UI's replay lane) calls the plugin; this module
//! only builds the request and reads the answer.
//!
//! A fork is a new instance whose history is a prefix of another's. The engine can already import
//! an instance from its histories and resume it (open activities and timers are scheduled again),
//! so a fork is an import: the prefix up to the last episode boundary is the past, the events
//! after it (plus an edited completion, if asked) are a new episode ([`ForkPlan::episode`]) that
//! the engine's `fork` runs through the plugin exactly as an episode runs (`OrchestratorStarted`,
//! the new events, the actions the code answers with, `OrchestratorCompleted`), and the result
//! ([`fork_export`]) is imported.
//! Sub-orchestrations still running at the cut are not copied (the engine warns about them).

use crate::export::{EXPORT_FORMAT, ExecutionExport, InstanceExport, InstanceStatus};
use chrono::{DateTime, Utc};
use durable_sdk::FailureDetails;
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use durable_sdk::protocol::{ActionKind, DurableCall, OrchestratorRequest, OrchestratorResponse};
use serde_json::Value;
use std::collections::HashMap;

/// The plugin's answer at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    /// How many events were replayed.
    pub step: usize,
    /// What the code answered.
    pub response: OrchestratorResponse,
}

/// The request that replays the first `step` events of an execution.
pub fn step_request(
    instance_id: &str,
    execution_id: &str,
    events: &[HistoryEvent],
    step: usize,
) -> OrchestratorRequest {
    let step = step.min(events.len());
    OrchestratorRequest {
        instance_id: instance_id.to_string(),
        execution_id: execution_id.to_string(),
        history_len: step,
        past_events: events[..step].to_vec(),
        new_events: Vec::new(),
        include_replay_logs: true,
        max_actions: None,
    }
}

/// One durable call the code made, as the prefix of history shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRow {
    /// Its sequence id.
    pub sequence_id: i32,
    /// What it was (method and name), e.g. `call_activity SayHello`.
    pub call: String,
    /// Index of the history event that recorded it.
    pub scheduled_at: usize,
    /// Index of the history event that satisfied it, if it is in the prefix.
    pub completed_at: Option<usize>,
    /// Whether that completion was a failure.
    pub failed: bool,
}

/// The durable calls recorded in the first `step` events, in sequence order, each with the event
/// that satisfied it (if any within the prefix).
pub fn calls_at(events: &[HistoryEvent], step: usize) -> Vec<CallRow> {
    let prefix = &events[..step.min(events.len())];
    let mut rows: Vec<CallRow> = Vec::new();
    let mut by_id: HashMap<i32, usize> = HashMap::new();
    // Entity calls and lock requests are answered by request id, not sequence id.
    let mut by_request: HashMap<&str, usize> = HashMap::new();
    for (index, event) in prefix.iter().enumerate() {
        if let Some(call) = DurableCall::from_event(&event.kind) {
            match super::entities::opened_request(&event.kind) {
                Some(request) => {
                    by_request.insert(request, rows.len());
                }
                // Signals and unlocks expect no answer; a completion never names their ids.
                None if super::entities::is_entity_call(&event.kind) => {}
                None => {
                    by_id.insert(event.event_id, rows.len());
                }
            }
            rows.push(CallRow {
                sequence_id: event.event_id,
                call: match super::http::scheduled_request(&event.kind) {
                    Some(wire) => super::http::call_text(&wire),
                    None if call.name.is_empty() => call.kind.method().to_string(),
                    None => format!("{} {}", call.kind.method(), call.name),
                },
                scheduled_at: index,
                completed_at: None,
                failed: false,
            });
        } else if let Some(answered) = match super::rows::answers(&event.kind) {
            Some(super::rows::Answers::Call(id)) => by_id.get(&id),
            Some(super::rows::Answers::Request(request)) => by_request.get(request),
            None => None,
        } {
            if let Some(row) = rows.get_mut(*answered) {
                if row.completed_at.is_none() {
                    row.completed_at = Some(index);
                    row.failed = event.kind.failure().is_some();
                }
            }
        }
    }
    rows
}

/// Where the stepper stands after replaying `step` events: `before the first event`, or `after`
/// the last event's kind; an HTTP request's event also says what it sent or got (`after
/// TaskCompleted: HTTP 202 Accepted <- POST /jobs`). `names` names the calls of `events`.
pub fn step_description(
    events: &[HistoryEvent],
    step: usize,
    names: &super::rows::CallNames,
) -> String {
    let Some(event) = step.checked_sub(1).and_then(|index| events.get(index)) else {
        return "before the first event".to_string();
    };
    let kind = event.kind.type_name();
    let answers_http = super::rows::answers(&event.kind)
        .and_then(|answers| names.get(answers))
        .is_some_and(|call| call.http.is_some());
    if answers_http || super::http::scheduled_request(&event.kind).is_some() {
        let start = super::rows::history_start(events).unwrap_or(event.timestamp);
        let row = super::rows::event_row(event, start, names);
        format!("after {kind}: {}", row.detail)
    } else {
        format!("after {kind}")
    }
}

/// The first event at or after `step` that completes something the code waits for (a task, a
/// sub-orchestration, a timer, an external event, an entity call's answer): what a fork may edit.
pub fn next_completion(events: &[HistoryEvent], step: usize) -> Option<usize> {
    events
        .iter()
        .enumerate()
        .skip(step)
        .find(|(_, event)| is_completion(&event.kind))
        .map(|(index, _)| index)
}

fn is_completion(kind: &EventKind) -> bool {
    kind.completes_task().is_some()
        || matches!(
            kind,
            EventKind::EventRaised { .. }
                | EventKind::EntityOperationCompleted { .. }
                | EventKind::EntityOperationFailed { .. }
        )
}

/// An edit of the next completion before forking.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionEdit {
    /// Complete with this result (an event: with this payload).
    Result(Value),
    /// Fail with this error.
    Failure {
        /// The failure's error type.
        error_type: String,
        /// Its message.
        message: String,
    },
}

/// The edited version of the completion `event`.
pub fn edit_completion(event: &HistoryEvent, edit: &CompletionEdit) -> Result<EventKind, String> {
    let failure = |error_type: &str, message: &str| FailureDetails::new(error_type, message);
    Ok(match (&event.kind, edit) {
        (
            EventKind::TaskCompleted {
                task_scheduled_id, ..
            }
            | EventKind::TaskFailed {
                task_scheduled_id, ..
            },
            edit,
        ) => match edit {
            CompletionEdit::Result(result) => EventKind::TaskCompleted {
                task_scheduled_id: *task_scheduled_id,
                result: result.clone(),
            },
            CompletionEdit::Failure {
                error_type,
                message,
            } => EventKind::TaskFailed {
                task_scheduled_id: *task_scheduled_id,
                failure: failure(error_type, message),
            },
        },
        (
            EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id, ..
            }
            | EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id, ..
            },
            edit,
        ) => match edit {
            CompletionEdit::Result(result) => EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id: *task_scheduled_id,
                result: result.clone(),
            },
            CompletionEdit::Failure {
                error_type,
                message,
            } => EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id: *task_scheduled_id,
                failure: failure(error_type, message),
            },
        },
        (
            EventKind::EntityOperationCompleted { request_id, .. }
            | EventKind::EntityOperationFailed { request_id, .. },
            edit,
        ) => match edit {
            CompletionEdit::Result(output) => EventKind::EntityOperationCompleted {
                request_id: request_id.clone(),
                output: output.clone(),
            },
            CompletionEdit::Failure {
                error_type,
                message,
            } => EventKind::EntityOperationFailed {
                request_id: request_id.clone(),
                failure: failure(error_type, message),
            },
        },
        (EventKind::EventRaised { name, .. }, CompletionEdit::Result(input)) => {
            EventKind::EventRaised {
                name: name.clone(),
                input: input.clone(),
            }
        }
        (EventKind::EventRaised { .. }, CompletionEdit::Failure { .. }) => {
            return Err("an external event cannot fail; edit its payload instead".into());
        }
        (other, _) => {
            return Err(format!(
                "{} cannot be edited; fork without an edit",
                other.type_name()
            ));
        }
    })
}

/// What a fork will import: the past (whole episodes) and, if any, one more episode to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ForkPlan {
    /// The instance forked from.
    pub source_id: String,
    /// The new instance.
    pub instance_id: String,
    /// Its execution.
    pub execution_id: String,
    /// Orchestration name.
    pub name: String,
    /// The execution's input.
    pub input: Value,
    /// Whole episodes of the prefix (ending after an `OrchestratorCompleted`).
    pub past: Vec<HistoryEvent>,
    /// Events after the last episode boundary (and the edited completion); empty: import as is.
    pub new_events: Vec<HistoryEvent>,
}

impl ForkPlan {
    /// The episode to run before importing, if the cut is inside an episode.
    pub fn episode(&self) -> Option<OrchestratorRequest> {
        (!self.new_events.is_empty()).then(|| OrchestratorRequest {
            instance_id: self.instance_id.clone(),
            execution_id: self.execution_id.clone(),
            history_len: self.past.len(),
            past_events: self.past.clone(),
            new_events: self.new_events.clone(),
            include_replay_logs: false,
            max_actions: None,
        })
    }
}

/// Plans a fork of `events` (one execution of `source_id`) at `step`, optionally editing the next
/// completion (the fork then takes history up to that completion, edited).
pub fn plan_fork(
    source_id: &str,
    events: &[HistoryEvent],
    step: usize,
    edit: Option<&CompletionEdit>,
    now: DateTime<Utc>,
    instance_id: String,
) -> Result<ForkPlan, String> {
    let step = step.min(events.len());
    let (cut, edited) = match edit {
        Some(edit) => {
            let at = next_completion(events, step)
                .ok_or("nothing completes after this step, so there is nothing to edit")?;
            let kind = edit_completion(&events[at], edit)?;
            let edited = HistoryEvent {
                event_id: -1,
                timestamp: now,
                kind,
            };
            (at, Some(edited))
        }
        None => (step, None),
    };
    let prefix = &events[..cut];
    let (name, input) = prefix
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::ExecutionStarted { name, input, .. } => Some((name.clone(), input.clone())),
            _ => None,
        })
        .ok_or("history has not started the execution at this step; step past ExecutionStarted")?;
    if prefix.iter().any(|event| {
        matches!(
            event.kind,
            EventKind::ExecutionCompleted { .. } | EventKind::ContinueAsNew { .. }
        )
    }) {
        return Err(
            "the execution had already ended at this step; step back before its completion".into(),
        );
    }
    let execution_id = uuid::Uuid::new_v4().simple().to_string();
    let rewrite = |event: &HistoryEvent| {
        let mut event = event.clone();
        if let EventKind::ExecutionStarted {
            instance_id: id,
            execution_id: execution,
            parent,
            ..
        } = &mut event.kind
        {
            id.clone_from(&instance_id);
            execution.clone_from(&execution_id);
            // A fork is a root instance: its completion must not reach the source's parent.
            *parent = None;
        }
        event
    };
    let boundary = prefix
        .iter()
        .rposition(|event| matches!(event.kind, EventKind::OrchestratorCompleted))
        .map_or(0, |index| index + 1);
    let past: Vec<HistoryEvent> = prefix[..boundary].iter().map(rewrite).collect();
    // Calls recorded after the boundary were the code's answer to this episode: the fork runs the
    // episode again and records the code's answer instead.
    let mut new_events: Vec<HistoryEvent> = prefix[boundary..]
        .iter()
        .filter(|event| DurableCall::from_event(&event.kind).is_none())
        .map(rewrite)
        .collect();
    new_events.extend(edited);
    if !new_events.is_empty() && !matches!(new_events[0].kind, EventKind::OrchestratorStarted) {
        new_events.insert(
            0,
            HistoryEvent {
                event_id: -1,
                timestamp: now,
                kind: EventKind::OrchestratorStarted,
            },
        );
    }
    Ok(ForkPlan {
        source_id: source_id.to_string(),
        instance_id,
        execution_id,
        name,
        input,
        past,
        new_events,
    })
}

/// The export the engine imports for `plan`, with `response` being the plugin's answer to
/// [`ForkPlan::episode`] (when there was one).
pub fn fork_export(
    plan: &ForkPlan,
    response: Option<&OrchestratorResponse>,
    now: DateTime<Utc>,
) -> Result<InstanceExport, String> {
    let mut history = plan.past.clone();
    let mut status = RuntimeStatus::Running;
    let mut output = Value::Null;
    let mut failure = None;
    let mut custom_status = Value::Null;
    if let Some(response) = response {
        if response.needs_history {
            return Err("the plugin asked for history it was given; cannot fork".into());
        }
        history.extend(plan.new_events.iter().cloned());
        for action in &response.actions {
            if let ActionKind::CompleteOrchestration {
                status: done,
                result,
                failure: why,
                ..
            } = &action.kind
            {
                if *done == RuntimeStatus::ContinuedAsNew {
                    return Err(
                        "at this step the code continues as new; fork from an earlier step".into(),
                    );
                }
                status = *done;
                output = result.clone();
                failure = why.clone();
            }
            history.push(HistoryEvent {
                event_id: action.id,
                timestamp: now,
                kind: action.kind.to_event_kind(),
            });
        }
        history.push(HistoryEvent {
            event_id: -1,
            timestamp: now,
            kind: EventKind::OrchestratorCompleted,
        });
        if let Some(value) = &response.custom_status {
            custom_status = value.clone();
        }
    }
    let started_at = plan.past.first().map_or(now, |event| event.timestamp);
    Ok(InstanceExport {
        format: EXPORT_FORMAT.to_string(),
        instance: InstanceStatus {
            name: plan.name.clone(),
            instance_id: plan.instance_id.clone(),
            runtime_status: status.as_str().to_string(),
            input: plan.input.clone(),
            output,
            custom_status,
            created_time: now,
            last_updated_time: now,
            failure_details: failure,
            parent: None,
            execution_id: plan.execution_id.clone(),
            history_events: None,
        },
        executions: vec![ExecutionExport {
            execution_id: plan.execution_id.clone(),
            ordinal: 0,
            input: plan.input.clone(),
            started_at,
            history,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(kind: EventKind, event_id: i32) -> HistoryEvent {
        HistoryEvent {
            event_id,
            timestamp: DateTime::UNIX_EPOCH,
            kind,
        }
    }

    /// HelloSequence after its first activity completed and the second was scheduled.
    fn two_episodes() -> Vec<HistoryEvent> {
        vec![
            at(EventKind::OrchestratorStarted, -1),
            at(
                EventKind::ExecutionStarted {
                    name: "HelloSequence".into(),
                    version: None,
                    input: Value::Null,
                    instance_id: "src".into(),
                    execution_id: "e1".into(),
                    parent: None,
                    scheduled_start: None,
                },
                -1,
            ),
            at(
                EventKind::TaskScheduled {
                    name: "SayHello".into(),
                    input: json!("Tokyo"),
                },
                0,
            ),
            at(EventKind::OrchestratorCompleted, -1),
            at(EventKind::OrchestratorStarted, -1),
            at(
                EventKind::TaskCompleted {
                    task_scheduled_id: 0,
                    result: json!("Hello Tokyo!"),
                },
                -1,
            ),
            at(
                EventKind::TaskScheduled {
                    name: "SayHello".into(),
                    input: json!("Seattle"),
                },
                1,
            ),
            at(EventKind::OrchestratorCompleted, -1),
        ]
    }

    #[test]
    fn an_entity_call_is_paired_with_its_answer_by_request_id_and_the_answer_can_be_edited() {
        let events = vec![
            at(EventKind::OrchestratorStarted, -1),
            at(
                EventKind::EntityOperationCalled {
                    request_id: "r-1".into(),
                    operation: "withdraw".into(),
                    input: json!(50),
                    target_instance_id: "@account@a".into(),
                    scheduled_time: None,
                    parent_instance_id: "transfer".into(),
                    parent_execution_id: "e".into(),
                },
                0,
            ),
            at(EventKind::OrchestratorCompleted, -1),
            at(EventKind::OrchestratorStarted, -1),
            at(
                EventKind::EntityOperationFailed {
                    request_id: "r-1".into(),
                    failure: FailureDetails::new("Overdrawn", "balance 20"),
                },
                -1,
            ),
        ];
        let calls = calls_at(&events, events.len());
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].call, "call_entity @account@a withdraw");
        assert_eq!((calls[0].completed_at, calls[0].failed), (Some(4), true));
        assert_eq!(calls_at(&events, 4)[0].completed_at, None);
        assert_eq!(next_completion(&events, 2), Some(4));
        let edited = edit_completion(&events[4], &CompletionEdit::Result(json!(30))).unwrap();
        assert_eq!(
            edited,
            EventKind::EntityOperationCompleted {
                request_id: "r-1".into(),
                output: json!(30)
            }
        );
    }

    #[test]
    fn calls_are_paired_with_the_event_that_satisfied_them_within_the_prefix() {
        let events = two_episodes();
        let calls = calls_at(&events, 6);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].completed_at, Some(5));
        assert_eq!(calls_at(&events, 5)[0].completed_at, None);
        assert_eq!(calls_at(&events, 8).len(), 2);
    }

    #[test]
    fn a_fork_at_an_episode_boundary_imports_the_prefix_as_is() {
        let events = two_episodes();
        let plan = plan_fork("src", &events, 4, None, DateTime::UNIX_EPOCH, "fork".into()).unwrap();
        assert_eq!(plan.past.len(), 4);
        assert!(plan.episode().is_none());
        match &plan.past[1].kind {
            EventKind::ExecutionStarted { instance_id, .. } => assert_eq!(instance_id, "fork"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_fork_inside_an_episode_drops_its_recorded_calls_and_runs_it_again() {
        let events = two_episodes();
        let plan = plan_fork("src", &events, 7, None, DateTime::UNIX_EPOCH, "fork".into()).unwrap();
        assert_eq!(plan.past.len(), 4);
        let kinds: Vec<_> = plan.new_events.iter().map(|e| e.kind.type_name()).collect();
        assert_eq!(kinds, ["OrchestratorStarted", "TaskCompleted"]);
        assert_eq!(plan.episode().unwrap().history_len, 4);
    }

    #[test]
    fn an_edited_completion_replaces_the_next_one_and_can_become_a_failure() {
        let events = two_episodes();
        let edit = CompletionEdit::Failure {
            error_type: "Boom".into(),
            message: "edited".into(),
        };
        let plan = plan_fork(
            "src",
            &events,
            4,
            Some(&edit),
            DateTime::UNIX_EPOCH,
            "fork".into(),
        )
        .unwrap();
        let last = plan.new_events.last().unwrap();
        assert!(
            matches!(&last.kind, EventKind::TaskFailed { failure, task_scheduled_id: 0 } if failure.error_type == "Boom")
        );
        let response = OrchestratorResponse {
            actions: vec![durable_sdk::protocol::Action {
                id: 1,
                kind: ActionKind::CompleteOrchestration {
                    status: RuntimeStatus::Failed,
                    result: Value::Null,
                    failure: Some(FailureDetails::new("TaskFailed", "x")),
                    carryover_events: Vec::new(),
                },
            }],
            ..OrchestratorResponse::default()
        };
        let export = fork_export(&plan, Some(&response), DateTime::UNIX_EPOCH).unwrap();
        assert_eq!(export.instance.runtime_status, "Failed");
        let kinds: Vec<_> = export.executions[0]
            .history
            .iter()
            .map(|e| e.kind.type_name())
            .collect();
        assert_eq!(
            kinds[4..],
            [
                "OrchestratorStarted",
                "TaskFailed",
                "ExecutionCompleted",
                "OrchestratorCompleted"
            ]
        );
    }

    #[test]
    fn a_fork_after_the_end_or_before_the_start_is_refused_with_a_reason() {
        let events = two_episodes();
        let error = plan_fork("src", &events, 1, None, DateTime::UNIX_EPOCH, "f".into());
        assert!(error.unwrap_err().contains("ExecutionStarted"));
    }

    #[test]
    fn the_stepper_names_http_requests_in_its_calls_and_its_step() {
        let events = durable_emu_testing::history::events(crate::inspect::http::HTTP_JOB);
        let calls: Vec<(String, bool)> = calls_at(&events, events.len())
            .into_iter()
            .map(|call| (call.call, call.failed))
            .collect();
        assert_eq!(
            calls,
            [
                (
                    "call_http POST http://127.0.0.1:8088/jobs".to_string(),
                    false
                ),
                ("create_timer".to_string(), false),
                (
                    "call_http GET http://127.0.0.1:8088/jobs/1 (poll 1)".to_string(),
                    true
                ),
                (
                    "call_http GET http://127.0.0.1:8088/jobs/1 (poll 2)".to_string(),
                    false
                ),
            ]
        );
        let names = super::super::rows::CallNames::of(&events);
        assert_eq!(
            step_description(&events, 3, &names),
            "after TaskScheduled: HTTP POST http://127.0.0.1:8088/jobs {\"steps\":3}"
        );
        assert_eq!(
            step_description(&events, 5, &names),
            "after TaskCompleted: HTTP 202 Accepted <- POST /jobs"
        );
        assert_eq!(step_description(&events, 6, &names), "after TimerCreated");
        assert_eq!(
            step_description(&events, 0, &names),
            "before the first event"
        );
    }
}
