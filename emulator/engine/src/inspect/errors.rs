//! The error-propagation tree of an instance: orchestration ->
//! sub-orchestration -> activity, HTTP request (named by method and URI: [`super::http`]) or entity
//! operation, each failure with its error type and message
//! (and, for a call retried by a retry policy, its attempt number: [`super::retries`]), whether a
//! fault was injected, and what the orchestrator did next (retried, compensated, rethrew,
//! handled). Built from history alone (docs/semantics.md#failures: each level wraps the failure
//! below, so the chain is recoverable from history); children are expanded when their histories are
//! loaded, and a failed entity call is followed into the entity's operation log when the caller
//! loaded it ([`failed_entities`]: the entry the failure came from, its fault, the state the
//! entity rolled back to). Pure.

use super::Tone;
use super::rows::{fault_task, format_age, is_fault};
use crate::engine::{EntityOperationOutcome, EntityOperationRecord, ExecutionHistory};
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

/// Entities whose calls failed in `events`: their ids (to load their operation logs for the tree).
pub fn failed_entities(events: &[HistoryEvent]) -> Vec<String> {
    let requests = super::entities::requests(events);
    let mut entities: Vec<String> = Vec::new();
    for event in events {
        if let EventKind::EntityOperationFailed { request_id, .. } = &event.kind {
            if let Some(entity) = requests
                .get(request_id)
                .and_then(|request| request.entity.clone())
            {
                if !entities.contains(&entity) {
                    entities.push(entity);
                }
            }
        }
    }
    entities
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

/// What the tree can expand beyond the instance's own history, as far as the caller loaded it.
#[derive(Debug, Clone, Copy)]
pub struct Loaded<'a> {
    /// Histories of failed sub-orchestrations ([`failed_children`]), by instance id.
    pub children: &'a HashMap<String, Vec<ExecutionHistory>>,
    /// Operation logs of entities whose calls failed ([`failed_entities`]), by entity id.
    pub entity_logs: &'a HashMap<String, Vec<EntityOperationRecord>>,
}

/// The tree for an instance named `name` whose current execution is `events`; `status` is its
/// status as the caller shows it (a UI says `Diverged` for a suspension by a reload check).
pub fn error_tree(
    name: &str,
    status: &str,
    events: &[HistoryEvent],
    loaded: Loaded<'_>,
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
    execution_rows(events, loaded, 1, &mut rows);
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

/// What failed: a call by sequence id (an activity or a sub-orchestration), or an entity call.
enum Failed<'a> {
    Activity(i32),
    Child(i32),
    Entity(&'a super::entities::EntityRequest),
}

fn execution_rows(
    events: &[HistoryEvent],
    loaded: Loaded<'_>,
    depth: u8,
    rows: &mut Vec<ErrorRow>,
) {
    let child_of = child_ids(events);
    let requests = super::entities::requests(events);
    let final_failure = final_failure(events);
    // By sequence id: the name the code called (what its failure message names) and what the
    // row shows (an HTTP request as `HTTP GET http://.../jobs/1 (poll 1)`).
    let mut names: HashMap<i32, (String, String)> = HashMap::new();
    let attempts = super::retries::attempts(events);
    let mut injected: HashMap<i32, String> = HashMap::new();
    for event in events {
        match &event.kind {
            EventKind::TaskScheduled { name, .. }
            | EventKind::SubOrchestrationInstanceCreated { name, .. } => {
                let shown = super::http::scheduled_request(&event.kind).map_or_else(
                    || name.clone(),
                    |wire| format!("HTTP {}", super::http::request_line(&wire)),
                );
                names.insert(event.event_id, (name.clone(), shown));
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
        let (failed, failure) = match &event.kind {
            EventKind::TaskFailed {
                task_scheduled_id,
                failure,
            } => (Failed::Activity(*task_scheduled_id), failure),
            EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id,
                failure,
            } => (Failed::Child(*task_scheduled_id), failure),
            EventKind::EntityOperationFailed {
                request_id,
                failure,
            } => match requests.get(request_id) {
                Some(request) => (Failed::Entity(request), failure),
                // An answer to a call this execution did not make (a history read from its
                // middle): nothing to name it by.
                None => continue,
            },
            _ => continue,
        };
        if let Failed::Entity(request) = failed {
            let call = FailedEntityCall {
                request,
                request_id: events[index].kind.answers_entity_request().unwrap_or(""),
                failure,
                after: &events[index + 1..],
                injected: injected.get(&request.sequence_id),
                final_failure: final_failure.as_ref(),
            };
            entity_rows(&call, loaded, depth, rows);
            continue;
        }
        let (id, is_child) = match failed {
            Failed::Activity(id) => (id, false),
            Failed::Child(id) => (id, true),
            Failed::Entity(_) => continue,
        };
        let (name, shown) = names
            .get(&id)
            .map_or(("?", "?"), |(name, shown)| (name.as_str(), shown.as_str()));
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
                "✗ {what}{shown} #{id}{numbered}: {}: {}",
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
                .and_then(|child| loaded.children.get(child))
                .and_then(|list| list.last())
            {
                Some(history) => execution_rows(&history.events, loaded, depth + 1, rows),
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

/// A failed entity call, as its execution's history shows it.
struct FailedEntityCall<'a> {
    /// The call.
    request: &'a super::entities::EntityRequest,
    /// Its request id (what the entity's operation log knows it by).
    request_id: &'a str,
    /// The failure it was answered with.
    failure: &'a FailureDetails,
    /// The events after the answer (what the orchestrator did next).
    after: &'a [HistoryEvent],
    /// A fault marker in the history naming the call, if any.
    injected: Option<&'a String>,
    /// The execution's own failure, if it failed.
    final_failure: Option<&'a FailureDetails>,
}

/// The rows of a failed entity call: the call (entity, operation, failure), the fault injected, the
/// entity's operation-log entry it came from (when loaded) and what the orchestrator did next.
fn entity_rows(
    call: &FailedEntityCall<'_>,
    loaded: Loaded<'_>,
    depth: u8,
    rows: &mut Vec<ErrorRow>,
) {
    let FailedEntityCall {
        request,
        request_id,
        failure,
        after,
        injected,
        final_failure,
    } = *call;
    let entity = request.entity.as_deref().unwrap_or("?");
    let operation = request.operation.as_deref().unwrap_or("?");
    let id = request.sequence_id;
    let row = |depth: u8, text: String, tone: Tone| ErrorRow {
        depth,
        text,
        tone,
        failure: Some(failure.clone()),
    };
    rows.push(row(
        depth,
        format!(
            "✗ entity {entity} {operation} #{id}: {}: {}",
            failure.error_type, failure.error_message
        ),
        Tone::Error,
    ));
    if let Some(fault) = injected {
        rows.push(row(depth + 1, format!("injected {fault}"), Tone::Warn));
    }
    let record = loaded
        .entity_logs
        .get(entity)
        .and_then(|log| log.iter().find(|record| record.request_id == request_id));
    match record {
        Some(record) => {
            let outcome = match &record.outcome {
                EntityOperationOutcome::Failed { .. } => "failed",
                EntityOperationOutcome::Completed { .. } => "completed",
            };
            let state = match &record.state_after {
                _ if !record.state_known => {
                    "its state is not known (a remote worker reports only its batch's last)"
                        .to_string()
                }
                Some(state) => format!(
                    "state rolled back to {}",
                    super::rows::compact_json(state, 40)
                ),
                None => "no state".to_string(),
            };
            rows.push(row(
                depth + 1,
                format!(
                    "↳ {entity}'s operation log #{}: {} {outcome}; {state}",
                    record.seq, record.operation
                ),
                Tone::Error,
            ));
            if let (Some(fault), None) = (&record.fault, injected) {
                rows.push(row(depth + 1, format!("injected ⚡ {fault}"), Tone::Warn));
            }
        }
        None if loaded.entity_logs.contains_key(entity) => rows.push(row(
            depth + 1,
            format!("↳ {entity}'s operation log no longer has this operation"),
            Tone::Dim,
        )),
        None => rows.push(row(
            depth + 1,
            format!("↳ {entity}'s operation log: the Entities view"),
            Tone::Dim,
        )),
    }
    // The orchestration's failure names the call in its own words; the entity's failure travels
    // in its chain, or at least its message does (`... failed (BankOffline: the bank did not
    // answer); ...`), so finding either says the orchestration rethrew it.
    let rethrown = final_failure.is_some_and(|last| {
        last.chain().any(|link| {
            (link.error_type == failure.error_type && link.error_message == failure.error_message)
                || (!failure.error_message.is_empty()
                    && link.error_message.contains(&failure.error_message))
        })
    });
    rows.push(row(
        depth + 1,
        format!(
            "→ {}",
            reaction_after(after, rethrown, final_failure.is_some())
        ),
        Tone::Dim,
    ));
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
    let rethrown = final_failure.is_some_and(|failure| {
        let marker = format!("(#{id})");
        failure
            .chain()
            .any(|link| link.error_message.contains(&marker) && link.error_message.contains(name))
    });
    reaction_after(after, rethrown, final_failure.is_some())
}

/// What the orchestrator did with a failure (not retried) given the events `after` it: the calls
/// it made next (compensation) and whether its own failure carries this one.
fn reaction_after(after: &[HistoryEvent], rethrown: bool, failed: bool) -> String {
    let mut later_calls: Vec<String> = Vec::new();
    for event in after {
        match &event.kind {
            EventKind::TaskScheduled { name: next, input } => {
                later_calls.push(
                    super::http::request(next, input)
                        .map_or_else(|| next.clone(), |wire| super::http::call_name(&wire)),
                );
            }
            EventKind::SubOrchestrationInstanceCreated { name: next, .. } => {
                later_calls.push(next.clone());
            }
            EventKind::EntityOperationCalled {
                target_instance_id,
                operation,
                ..
            }
            | EventKind::EntityOperationSignaled {
                target_instance_id,
                operation,
                ..
            } => later_calls.push(format!("{target_instance_id} {operation}")),
            _ => {}
        }
    }
    match (later_calls.is_empty(), rethrown) {
        (true, true) => "rethrew".to_string(),
        (false, true) => format!("compensated ({}), then rethrew", later_calls.join(", ")),
        (true, false) if failed => "failed the orchestration".to_string(),
        (true, false) => "handled".to_string(),
        (false, false) => format!("handled, continued with {}", later_calls.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use serde_json::json;

    static NO_CHILDREN: std::sync::LazyLock<HashMap<String, Vec<ExecutionHistory>>> =
        std::sync::LazyLock::new(HashMap::new);
    static NO_LOGS: std::sync::LazyLock<HashMap<String, Vec<EntityOperationRecord>>> =
        std::sync::LazyLock::new(HashMap::new);

    fn no_more() -> Loaded<'static> {
        Loaded {
            children: &NO_CHILDREN,
            entity_logs: &NO_LOGS,
        }
    }

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
        let rows = error_tree("Saga", "Failed", &events, no_more());
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

    fn entity_call(event_id: i32, request: &str, entity: &str, operation: &str) -> HistoryEvent {
        event(
            0,
            event_id,
            EventKind::EntityOperationCalled {
                request_id: request.into(),
                operation: operation.into(),
                input: json!(50),
                target_instance_id: entity.into(),
                scheduled_time: None,
                parent_instance_id: "transfer".into(),
                parent_execution_id: "e1".into(),
            },
        )
    }

    /// A transfer whose deposit into `@account@b` fails halfway: the withdrawal from
    /// `@account@a` is undone (a compensating deposit), then the orchestration rethrows.
    fn transfer_failing_halfway() -> (Vec<HistoryEvent>, FailureDetails) {
        let declined = FailureDetails::new("Injected", "deposit refused");
        let wrapped = FailureDetails::new(
            "EntityOperationFailed",
            "operation 'deposit' on @account@b failed: deposit refused",
        )
        .with_inner(declined.clone());
        let events = vec![
            entity_call(0, "r-0", "@account@a", "withdraw"),
            event(
                0,
                -1,
                EventKind::EntityOperationCompleted {
                    request_id: "r-0".into(),
                    output: json!(50),
                },
            ),
            entity_call(1, "r-1", "@account@b", "deposit"),
            event(
                0,
                -1,
                EventKind::EntityOperationFailed {
                    request_id: "r-1".into(),
                    failure: declined.clone(),
                },
            ),
            entity_call(2, "r-2", "@account@a", "deposit"),
            event(
                0,
                -1,
                EventKind::EntityOperationCompleted {
                    request_id: "r-2".into(),
                    output: json!(100),
                },
            ),
            event(
                0,
                3,
                EventKind::ExecutionCompleted {
                    status: RuntimeStatus::Failed,
                    result: json!(null),
                    failure: Some(wrapped),
                },
            ),
        ];
        (events, declined)
    }

    #[test]
    fn a_failed_entity_call_names_the_entity_and_operation_and_what_the_orchestrator_did() {
        let (events, declined) = transfer_failing_halfway();
        assert_eq!(failed_entities(&events), ["@account@b"]);
        let rows = error_tree("Transfer", "Failed", &events, no_more());
        let text: Vec<&str> = rows.iter().map(|row| row.text.as_str()).collect();
        assert_eq!(
            text[1],
            "✗ entity @account@b deposit #1: Injected: deposit refused"
        );
        // Not loaded: the tree says where the log is.
        assert_eq!(text[2], "↳ @account@b's operation log: the Entities view");
        assert_eq!(text[3], "→ compensated (@account@a deposit), then rethrew");
        assert_eq!(rows[1].failure.as_ref(), Some(&declined));
    }

    #[test]
    fn a_failed_entity_call_is_followed_into_the_entity_operation_log_when_loaded() {
        let (events, declined) = transfer_failing_halfway();
        let record = |seq: i64, request: &str, failed: bool| EntityOperationRecord {
            seq,
            request_id: request.into(),
            operation: "deposit".into(),
            input: json!(50),
            requester: crate::engine::EntityRequester::Orchestration {
                instance_id: "transfer".into(),
                execution_id: "e1".into(),
            },
            awaits_answer: true,
            outcome: if failed {
                EntityOperationOutcome::Failed {
                    failure: declined.clone(),
                }
            } else {
                EntityOperationOutcome::Completed { result: json!(1) }
            },
            state_after: Some(json!(20)),
            state_known: true,
            at: DateTime::UNIX_EPOCH,
            fault: failed.then(|| "rule 1: error Injected: deposit refused".to_string()),
        };
        let logs = HashMap::from([(
            "@account@b".to_string(),
            vec![record(1, "other", false), record(2, "r-1", true)],
        )]);
        let loaded = Loaded {
            children: &NO_CHILDREN,
            entity_logs: &logs,
        };
        let text: Vec<String> = error_tree("Transfer", "Failed", &events, loaded)
            .into_iter()
            .map(|row| row.text)
            .collect();
        assert_eq!(
            text[2],
            "↳ @account@b's operation log #2: deposit failed; state rolled back to 20"
        );
        assert_eq!(
            text[3],
            "injected ⚡ rule 1: error Injected: deposit refused"
        );
        // A log that no longer holds the entry (trimmed, or the entity was cleaned) says so.
        let trimmed = HashMap::from([("@account@b".to_string(), vec![record(1, "other", false)])]);
        let loaded = Loaded {
            children: &NO_CHILDREN,
            entity_logs: &trimmed,
        };
        assert_eq!(
            error_tree("Transfer", "Failed", &events, loaded)[2].text,
            "↳ @account@b's operation log no longer has this operation"
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
        let rows = error_tree("Pay", "Running", &events, no_more());
        assert_eq!(rows[2].text, "→ retried after 5s");
    }

    fn failure_lines(text: &str) -> Vec<String> {
        let events = durable_emu_testing::history::events(text);
        error_tree("Pay", "Running", &events, no_more())
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
    fn a_failing_http_call_and_its_retries_read_as_http() {
        let text = r#"
            OrchestratorStarted @0
            ExecutionStarted Job null
            TaskScheduled #0 BuiltIn::HttpActivity {"method":"POST","uri":"http://h/jobs","timeoutMs":100000,"poll":0}
            OrchestratorStarted @1
            TaskFailed #0 HttpConnectionFailed: connection refused (injected)
            TimerCreated #1 @2
            OrchestratorStarted @2
            TimerFired #1 @2
            TaskScheduled #2 BuiltIn::HttpActivity {"method":"POST","uri":"http://h/jobs","timeoutMs":100000,"poll":0}
            OrchestratorStarted @3
            TaskFailed #2 HttpTimeout: no answer within 100000 ms
            TaskScheduled #3 BuiltIn::HttpActivity {"method":"GET","uri":"http://h/jobs/1","timeoutMs":100000,"poll":1}
            OrchestratorStarted @4
            TaskFailed #3 HttpInvalidRequest: bad header [non-retriable]
        "#;
        assert_eq!(
            failure_lines(text),
            [
                "✗ HTTP POST http://h/jobs #0 attempt 1: HttpConnectionFailed: connection refused (injected)",
                "→ retried after 1m00s",
                "✗ HTTP POST http://h/jobs #2 attempt 2: HttpTimeout: no answer within 100000 ms",
                "→ handled, continued with HTTP GET /jobs/1",
                "✗ HTTP GET http://h/jobs/1 (poll 1) #3: HttpInvalidRequest: bad header",
                "→ handled",
            ]
        );
    }

    #[test]
    fn an_http_failure_the_orchestration_rethrew_says_so() {
        // The SDK names the request's task by the built-in activity in the failure it rethrows.
        let text = r#"
            OrchestratorStarted @0
            ExecutionStarted Job null
            TaskScheduled #0 BuiltIn::HttpActivity {"method":"GET","uri":"http://h/a","timeoutMs":1000,"poll":0}
            OrchestratorStarted @1
            TaskFailed #0 HttpTimeout: no answer within 1000 ms
            ExecutionCompleted #1 Failed TaskFailed: Activity 'BuiltIn::HttpActivity' (#0) failed: no answer within 1000 ms > HttpTimeout: no answer within 1000 ms
        "#;
        assert_eq!(
            failure_lines(text)[1..],
            [
                "✗ HTTP GET http://h/a #0: HttpTimeout: no answer within 1000 ms",
                "→ rethrew",
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
