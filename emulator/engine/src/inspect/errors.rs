//! The error-propagation tree of an instance: orchestration ->
//! sub-orchestration -> activity, each failure with its error type and message (and, for a call
//! retried by a retry policy, its attempt number: [`super::retries`]), whether a
//! fault was injected, and what the orchestrator did next (retried, compensated, rethrew,
//! handled). Built from history alone (docs/semantics.md#failures: each level wraps the failure
//! below, so the chain is recoverable from history); children are expanded when their histories are
//! loaded. Pure.

use super::Tone;
use super::rows::{fault_task, format_age, is_fault};
use crate::engine::ExecutionHistory;
use durable_sdk::FailureDetails;
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use std::collections::HashMap;

/// One line of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRow {
    /// Nesting depth.
    pub depth: u8,
    /// The text.
    pub text: String,
    /// How to colour it.
    pub tone: Tone,
    /// The failure the row is about (its call's, for the rows under a call), for showing in
    /// full: [`failure_text`].
    pub failure: Option<FailureDetails>,
}

/// Sub-orchestrations of `events` that failed: their instance ids (to load for the tree).
pub fn failed_children(events: &[HistoryEvent]) -> Vec<String> {
    let children = child_ids(events);
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id, ..
            } => children.get(task_scheduled_id).cloned(),
            _ => None,
        })
        .collect()
}

fn child_ids(events: &[HistoryEvent]) -> HashMap<i32, String> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::SubOrchestrationInstanceCreated { instance_id, .. } => {
                Some((event.event_id, instance_id.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The tree for an instance named `name` whose current execution is `events`; `status` is its
/// status as the caller shows it (a UI says `Diverged` for a suspension by a reload check).
pub fn error_tree(
    name: &str,
    status: &str,
    events: &[HistoryEvent],
    children: &HashMap<String, Vec<ExecutionHistory>>,
) -> Vec<ErrorRow> {
    let mut rows = Vec::new();
    let failure = final_failure(events);
    let head = match &failure {
        Some(failure) => format!("✗ {name} {status}: {failure}"),
        None => format!("{name} {status}"),
    };
    rows.push(ErrorRow {
        depth: 0,
        text: head,
        tone: if failure.is_some() {
            Tone::Error
        } else {
            Tone::Info
        },
        failure: failure.clone(),
    });
    let before = rows.len();
    execution_rows(events, children, 1, &mut rows);
    if rows.len() == before {
        rows.push(ErrorRow {
            depth: 1,
            text: "no failures in this execution".into(),
            tone: Tone::Dim,
            failure: None,
        });
    }
    if let Some(failure) = failure {
        rows.push(ErrorRow {
            depth: 0,
            text: format!(
                "chain: {}",
                failure
                    .chain()
                    .map(|failure| failure.error_type.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
            tone: Tone::Dim,
            failure: Some(failure),
        });
    }
    rows
}

fn final_failure(events: &[HistoryEvent]) -> Option<FailureDetails> {
    events.iter().rev().find_map(|event| match &event.kind {
        EventKind::ExecutionCompleted {
            status: RuntimeStatus::Failed,
            failure,
            ..
        } => Some(
            failure
                .clone()
                .unwrap_or_else(|| FailureDetails::new("Failed", "no details")),
        ),
        _ => None,
    })
}

fn execution_rows(
    events: &[HistoryEvent],
    children: &HashMap<String, Vec<ExecutionHistory>>,
    depth: u8,
    rows: &mut Vec<ErrorRow>,
) {
    let child_of = child_ids(events);
    let final_failure = final_failure(events);
    let mut names: HashMap<i32, String> = HashMap::new();
    let attempts = super::retries::attempts(events);
    let mut injected: HashMap<i32, String> = HashMap::new();
    for event in events {
        match &event.kind {
            EventKind::TaskScheduled { name, .. }
            | EventKind::SubOrchestrationInstanceCreated { name, .. } => {
                names.insert(event.event_id, name.clone());
            }
            _ if is_fault(event) => {
                if let Some(task) = fault_task(event) {
                    injected.insert(task, super::rows::fault_text(event));
                }
            }
            _ => {}
        }
    }
    for (index, event) in events.iter().enumerate() {
        let (id, failure, is_child) = match &event.kind {
            EventKind::TaskFailed {
                task_scheduled_id,
                failure,
            } => (*task_scheduled_id, failure, false),
            EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id,
                failure,
            } => (*task_scheduled_id, failure, true),
            _ => continue,
        };
        let name = names.get(&id).map_or("?", String::as_str);
        let attempt = attempts.get(&id);
        let numbered = attempt.map_or_else(String::new, |attempt| {
            format!(" attempt {}", attempt.number)
        });
        let what = if is_child { "sub-orchestration " } else { "" };
        let cause = if is_child {
            failure.root_cause()
        } else {
            failure
        };
        rows.push(ErrorRow {
            depth,
            text: format!(
                "✗ {what}{name} #{id}{numbered}: {}: {}",
                cause.error_type, cause.error_message
            ),
            tone: Tone::Error,
            failure: Some(failure.clone()),
        });
        if let Some(fault) = injected.get(&id) {
            rows.push(ErrorRow {
                depth: depth + 1,
                text: format!("injected {fault}"),
                tone: Tone::Warn,
                failure: Some(failure.clone()),
            });
        }
        if is_child {
            let child = child_of.get(&id);
            match child
                .and_then(|child| children.get(child))
                .and_then(|list| list.last())
            {
                Some(history) => execution_rows(&history.events, children, depth + 1, rows),
                None => {
                    for inner in failure.chain().skip(1) {
                        rows.push(ErrorRow {
                            depth: depth + 1,
                            text: format!("↳ {}: {}", inner.error_type, inner.error_message),
                            tone: Tone::Error,
                            failure: Some(inner.clone()),
                        });
                    }
                }
            }
        }
        rows.push(ErrorRow {
            depth: depth + 1,
            text: format!(
                "→ {}",
                reaction(
                    events,
                    index,
                    id,
                    name,
                    attempt.is_some_and(|attempt| attempt.retried_by.is_some()),
                    final_failure.as_ref()
                )
            ),
            tone: Tone::Dim,
            failure: Some(failure.clone()),
        });
    }
}

/// A failure in full, for reading rather than a row: its type and message, whether retries give
/// up on it, its stack or details, then each failure it wraps down to the root cause.
pub fn failure_text(failure: &FailureDetails) -> Vec<String> {
    let mut lines = Vec::new();
    for (depth, link) in failure.chain().enumerate() {
        if depth > 0 {
            lines.push(String::new());
            lines.push(format!("caused by ({depth}):"));
        }
        lines.push(format!("type: {}", link.error_type));
        lines.push(format!("message: {}", link.error_message));
        if link.is_non_retriable {
            lines.push("non-retriable: retry policies give up at once".into());
        }
        if let Some(stack) = &link.stack_trace {
            lines.push("stack / details:".into());
            lines.extend(stack.lines().map(|line| format!("  {line}")));
        }
    }
    let chain: Vec<&str> = failure
        .chain()
        .map(|link| link.error_type.as_str())
        .collect();
    if chain.len() > 1 {
        let root = failure.root_cause();
        lines.push(String::new());
        lines.push(format!("chain: {}", chain.join(" → ")));
        lines.push(format!("root cause: {root}"));
    }
    lines
}

/// What the orchestrator did after the failure of call `id` (its completion at `index`);
/// `retried`: a retry policy scheduled another attempt of it.
fn reaction(
    events: &[HistoryEvent],
    index: usize,
    id: i32,
    name: &str,
    retried: bool,
    final_failure: Option<&FailureDetails>,
) -> String {
    let after = &events[index + 1..];
    if retried {
        // The back-off is the first timer the retry loop created after the failure.
        return after
            .iter()
            .find_map(|event| match &event.kind {
                EventKind::TimerCreated { fire_at } => Some(*fire_at - event.timestamp),
                _ => None,
            })
            .map_or_else(
                || "retried".to_string(),
                |delay| format!("retried after {}", format_age(delay)),
            );
    }
    let mut later_calls: Vec<&str> = Vec::new();
    for event in after {
        if let EventKind::TaskScheduled { name: next, .. }
        | EventKind::SubOrchestrationInstanceCreated { name: next, .. } = &event.kind
        {
            later_calls.push(next);
        }
    }
    let rethrown = final_failure.is_some_and(|failure| {
        let marker = format!("(#{id})");
        failure
            .chain()
            .any(|link| link.error_message.contains(&marker) && link.error_message.contains(name))
    });
    match (later_calls.is_empty(), rethrown) {
        (true, true) => "rethrew".to_string(),
        (false, true) => format!("compensated ({}), then rethrew", later_calls.join(", ")),
        (true, false) if final_failure.is_some() => "failed the orchestration".to_string(),
        (true, false) => "handled".to_string(),
        (false, false) => format!("handled, continued with {}", later_calls.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use serde_json::json;

    fn event(seconds: i64, event_id: i32, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            event_id,
            timestamp: DateTime::UNIX_EPOCH + chrono::Duration::seconds(seconds),
            kind,
        }
    }

    #[test]
    fn a_retried_then_compensated_failure_reads_top_down() {
        let declined = FailureDetails::new("CarrierUnavailable", "no carrier");
        let wrapped = FailureDetails::new("TaskFailed", "Activity 'Ship' (#0) failed: no carrier")
            .with_inner(declined.clone());
        let events = vec![
            event(
                0,
                0,
                EventKind::TaskScheduled {
                    name: "Ship".into(),
                    input: json!(1),
                },
            ),
            event(
                0,
                -1,
                EventKind::TaskFailed {
                    task_scheduled_id: 0,
                    failure: declined,
                },
            ),
            event(
                0,
                1,
                EventKind::TaskScheduled {
                    name: "Refund".into(),
                    input: json!(1),
                },
            ),
            event(
                0,
                -1,
                EventKind::TaskCompleted {
                    task_scheduled_id: 1,
                    result: json!(null),
                },
            ),
            event(
                0,
                2,
                EventKind::ExecutionCompleted {
                    status: RuntimeStatus::Failed,
                    result: json!(null),
                    failure: Some(wrapped),
                },
            ),
        ];
        let rows = error_tree("Saga", "Failed", &events, &HashMap::new());
        let text: Vec<&str> = rows.iter().map(|row| row.text.as_str()).collect();
        assert_eq!(text[1], "✗ Ship #0: CarrierUnavailable: no carrier");
        assert_eq!(text[2], "→ compensated (Refund), then rethrew");
        assert_eq!(text[3], "chain: TaskFailed → CarrierUnavailable");
        // Every row under a failed call carries that call's failure; the head the final one.
        assert_eq!(
            rows[1].failure.as_ref().map(|f| f.error_type.as_str()),
            Some("CarrierUnavailable")
        );
        assert_eq!(rows[2].failure, rows[1].failure);
        assert_eq!(
            rows[0].failure.as_ref().map(|f| f.error_type.as_str()),
            Some("TaskFailed")
        );
    }

    #[test]
    fn the_full_failure_lists_each_link_of_the_chain_down_to_the_root() {
        let mut root = FailureDetails::new("CarrierUnavailable", "no carrier");
        root.stack_trace = Some("at ship (src/lib.rs:40)\nat run (src/lib.rs:12)".into());
        root.is_non_retriable = true;
        let wrapped = FailureDetails::new("TaskFailed", "Activity 'Ship' (#0) failed: no carrier")
            .with_inner(root);
        assert_eq!(
            failure_text(&wrapped),
            [
                "type: TaskFailed",
                "message: Activity 'Ship' (#0) failed: no carrier",
                "",
                "caused by (1):",
                "type: CarrierUnavailable",
                "message: no carrier",
                "non-retriable: retry policies give up at once",
                "stack / details:",
                "  at ship (src/lib.rs:40)",
                "  at run (src/lib.rs:12)",
                "",
                "chain: TaskFailed → CarrierUnavailable",
                "root cause: CarrierUnavailable: no carrier",
            ]
        );
        let single = failure_text(&FailureDetails::new("Boom", "it broke"));
        assert_eq!(single, ["type: Boom", "message: it broke"]);
    }

    #[test]
    fn a_retry_names_its_backoff() {
        let down = FailureDetails::new("Down", "gateway down");
        let events = vec![
            event(
                0,
                0,
                EventKind::TaskScheduled {
                    name: "Charge".into(),
                    input: json!(1),
                },
            ),
            event(
                0,
                -1,
                EventKind::TaskFailed {
                    task_scheduled_id: 0,
                    failure: down,
                },
            ),
            event(
                0,
                1,
                EventKind::TimerCreated {
                    fire_at: DateTime::UNIX_EPOCH + chrono::Duration::seconds(5),
                },
            ),
            event(
                5,
                -1,
                EventKind::TimerFired {
                    fire_at: DateTime::UNIX_EPOCH,
                    timer_id: 1,
                },
            ),
            event(
                5,
                2,
                EventKind::TaskScheduled {
                    name: "Charge".into(),
                    input: json!(1),
                },
            ),
        ];
        let rows = error_tree("Pay", "Running", &events, &HashMap::new());
        assert_eq!(rows[2].text, "→ retried after 5s");
    }

    fn failure_lines(text: &str) -> Vec<String> {
        let events = durable_emu_testing::history::events(text);
        error_tree("Pay", "Running", &events, &HashMap::new())
            .into_iter()
            .map(|row| row.text)
            .filter(|text| text.starts_with('✗') || text.starts_with('→'))
            .collect()
    }

    #[test]
    fn separate_failed_calls_to_the_same_activity_show_no_attempt() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted HelloSequence null
            TaskScheduled #0 SayHello \"Tokyo\"
            OrchestratorStarted @1
            TaskFailed #0 Boom: a
            TaskScheduled #1 SayHello \"Tokyo\"
            OrchestratorStarted @2
            TaskFailed #1 Boom: b
        ";
        assert_eq!(
            failure_lines(text),
            [
                "✗ SayHello #0: Boom: a",
                "→ handled, continued with SayHello",
                "✗ SayHello #1: Boom: b",
                "→ handled",
            ]
        );
    }

    #[test]
    fn a_retry_policy_numbers_the_attempts_of_one_call() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted Pay null
            TaskScheduled #0 ChargeCard 5
            OrchestratorStarted @1
            TaskFailed #0 Down: one
            TimerCreated #1 @2
            OrchestratorStarted @2
            TimerFired #1 @2
            TaskScheduled #2 ChargeCard 5
            OrchestratorStarted @3
            TaskFailed #2 Down: two
            TimerCreated #3 @4
            OrchestratorStarted @4
            TimerFired #3 @4
            TaskScheduled #4 ChargeCard 5
            OrchestratorStarted @5
            TaskFailed #4 Down: three
        ";
        assert_eq!(
            failure_lines(text),
            [
                "✗ ChargeCard #0 attempt 1: Down: one",
                "→ retried after 1m00s",
                "✗ ChargeCard #2 attempt 2: Down: two",
                "→ retried after 1m00s",
                "✗ ChargeCard #4 attempt 3: Down: three",
                "→ handled",
            ]
        );
    }

    #[test]
    fn a_retried_sub_orchestration_numbers_its_attempts_and_a_plain_one_does_not() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted Shop null
            SubOrchestrationInstanceCreated #0 OrderSaga inst:0 7
            OrchestratorStarted @1
            SubOrchestrationInstanceFailed #0 Down: stock
            TimerCreated #1 @2
            OrchestratorStarted @2
            TimerFired #1 @2
            SubOrchestrationInstanceCreated #2 OrderSaga inst:2 7
            OrchestratorStarted @3
            SubOrchestrationInstanceFailed #2 Down: stock
            SubOrchestrationInstanceCreated #3 OrderSaga inst:3 8
            OrchestratorStarted @4
            SubOrchestrationInstanceFailed #3 Down: stock
        ";
        let lines = failure_lines(text);
        assert_eq!(
            lines[0],
            "✗ sub-orchestration OrderSaga #0 attempt 1: Down: stock"
        );
        assert_eq!(
            lines[2],
            "✗ sub-orchestration OrderSaga #2 attempt 2: Down: stock"
        );
        assert_eq!(lines[4], "✗ sub-orchestration OrderSaga #3: Down: stock");
    }
}
