//! Entity calls in an orchestration's history (docs/semantics.md#entities): which event opens a
//! request (a call's `request_id`, a lock request's `critical_section_id`), which answers it, and
//! the one-line text every view shows for an entity event (`call @account@a withdraw 50`).
//!
//! Entity answers are matched by request id, not by sequence id as activities are: the history
//! view, the timeline, the stepper, the errors tree and the waits all pair them here, so they pair
//! them the same way. Pure functions of events; must not know the entity store, the core or any
//! UI toolkit.

use super::rows::compact_json;
use durable_sdk::history::{EventKind, HistoryEvent};
use std::collections::HashMap;

/// How much of an entity operation's input a line carries.
const INPUT_CHARS: usize = 60;

/// The request an event opens and expects an answer to: an entity call's `request_id` or a lock
/// request's `critical_section_id`. Signals and unlocks expect none.
pub fn opened_request(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::EntityOperationCalled { request_id, .. } => Some(request_id),
        EventKind::EntityLockRequested {
            critical_section_id,
            ..
        } => Some(critical_section_id),
        _ => None,
    }
}

/// Whether `kind` is one of the entity events an orchestration records for its own calls (a call,
/// a signal, a lock request, an unlock): their sequence ids are never answered by a completion.
pub fn is_entity_call(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::EntityOperationCalled { .. }
            | EventKind::EntityOperationSignaled { .. }
            | EventKind::EntityLockRequested { .. }
            | EventKind::EntityUnlockSent { .. }
    )
}

/// One entity request of a history: what it was and where its event is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRequest {
    /// The sequence id of the call that sent it.
    pub sequence_id: i32,
    /// Index of its event.
    pub index: usize,
    /// `@account@a withdraw` for a call, `lock @account@a, @account@b` for a lock request.
    pub label: String,
    /// The entity called (`None` for a lock request, which names several).
    pub entity: Option<String>,
    /// The operation called (`None` for a lock request).
    pub operation: Option<String>,
}

/// Every entity call and lock request of `events`, by the request id its answer carries.
pub fn requests(events: &[HistoryEvent]) -> HashMap<String, EntityRequest> {
    let mut requests = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        let Some(id) = opened_request(&event.kind) else {
            continue;
        };
        let (label, entity, operation) = match &event.kind {
            EventKind::EntityOperationCalled {
                target_instance_id,
                operation,
                ..
            } => (
                format!("{target_instance_id} {operation}"),
                Some(target_instance_id.clone()),
                Some(operation.clone()),
            ),
            EventKind::EntityLockRequested { lock_set, .. } => {
                (format!("lock {}", lock_set.join(", ")), None, None)
            }
            _ => continue,
        };
        requests.insert(
            id.to_string(),
            EntityRequest {
                sequence_id: event.event_id,
                index,
                label,
                entity,
                operation,
            },
        );
    }
    requests
}

/// The readable detail of an entity event: `call @account@a withdraw 50`, `signal @counter@a add
/// 5 at +00:05:00`, `lock @account@a, @account@b`, `unlock @account@a`; `None` for other events.
/// `offset` writes a scheduled time (a delayed signal) the way the caller shows times.
pub fn detail(
    kind: &EventKind,
    offset: impl Fn(chrono::DateTime<chrono::Utc>) -> String,
) -> Option<String> {
    let with_input = |verb: &str, target: &str, operation: &str, input: &serde_json::Value| {
        let input = compact_json(input, INPUT_CHARS);
        let mut text = format!("{verb} {target} {operation}");
        if !input.is_empty() {
            text.push(' ');
            text.push_str(&input);
        }
        text
    };
    Some(match kind {
        EventKind::EntityOperationCalled {
            operation,
            input,
            target_instance_id,
            scheduled_time,
            ..
        }
        | EventKind::EntityOperationSignaled {
            operation,
            input,
            target_instance_id,
            scheduled_time,
            ..
        } => {
            let verb = if matches!(kind, EventKind::EntityOperationCalled { .. }) {
                "call"
            } else {
                "signal"
            };
            let mut text = with_input(verb, target_instance_id, operation, input);
            if let Some(at) = scheduled_time {
                text.push_str(&format!(" at {}", offset(*at)));
            }
            text
        }
        EventKind::EntityLockRequested { lock_set, .. } => format!("lock {}", lock_set.join(", ")),
        EventKind::EntityUnlockSent {
            target_instance_id, ..
        } => format!("unlock {target_instance_id}"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use durable_sdk::FailureDetails;
    use serde_json::json;

    fn at(event_id: i32, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            event_id,
            timestamp: DateTime::UNIX_EPOCH,
            kind,
        }
    }

    #[test]
    fn calls_and_lock_requests_are_found_by_the_request_id_their_answer_carries() {
        let events = vec![
            at(
                0,
                EventKind::EntityLockRequested {
                    critical_section_id: "cs-1".into(),
                    lock_set: vec!["@account@a".into(), "@account@b".into()],
                    position: 0,
                    parent_instance_id: "transfer".into(),
                },
            ),
            at(
                -1,
                EventKind::EntityLockGranted {
                    critical_section_id: "cs-1".into(),
                },
            ),
            at(
                1,
                EventKind::EntityOperationCalled {
                    request_id: "r-1".into(),
                    operation: "withdraw".into(),
                    input: json!(50),
                    target_instance_id: "@account@a".into(),
                    scheduled_time: None,
                    parent_instance_id: "transfer".into(),
                    parent_execution_id: "e".into(),
                },
            ),
            at(
                -1,
                EventKind::EntityOperationFailed {
                    request_id: "r-1".into(),
                    failure: FailureDetails::new("Overdrawn", "balance 20"),
                },
            ),
        ];
        let found = requests(&events);
        assert_eq!(found["cs-1"].label, "lock @account@a, @account@b");
        assert_eq!(found["r-1"].label, "@account@a withdraw");
        assert_eq!(found["r-1"].sequence_id, 1);
        assert_eq!(found["r-1"].index, 2);
        assert_eq!(
            events[3]
                .kind
                .answers_entity_request()
                .and_then(|id| found.get(id))
                .and_then(|request| request.entity.as_deref()),
            Some("@account@a")
        );
    }

    #[test]
    fn entity_events_read_as_what_the_code_did() {
        let offset = |_| "+00:05:00".to_string();
        let call = EventKind::EntityOperationCalled {
            request_id: "r".into(),
            operation: "withdraw".into(),
            input: json!(50),
            target_instance_id: "@account@a".into(),
            scheduled_time: None,
            parent_instance_id: "p".into(),
            parent_execution_id: "e".into(),
        };
        assert_eq!(
            detail(&call, offset).as_deref(),
            Some("call @account@a withdraw 50")
        );
        let signal = EventKind::EntityOperationSignaled {
            request_id: "r".into(),
            operation: "reset".into(),
            input: json!(null),
            target_instance_id: "@counter@a".into(),
            scheduled_time: Some(DateTime::UNIX_EPOCH),
        };
        assert_eq!(
            detail(&signal, offset).as_deref(),
            Some("signal @counter@a reset at +00:05:00")
        );
        let unlock = EventKind::EntityUnlockSent {
            critical_section_id: "cs".into(),
            parent_instance_id: "p".into(),
            target_instance_id: "@account@b".into(),
        };
        assert_eq!(
            detail(&unlock, offset).as_deref(),
            Some("unlock @account@b")
        );
        assert_eq!(detail(&EventKind::OrchestratorStarted, offset), None);
    }
}
