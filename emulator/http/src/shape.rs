//! Azure's JSON shapes: the orchestration status (camelCase), its history (PascalCase Durable
//! Task events with scheduled events merged into their completions), the management payload's
//! URIs and entity listings.
//!
//! Pure functions from engine records to `serde_json` values: knows the records and Azure's
//! field names, and nothing of HTTP, routing or the engine's handle.

use chrono::{DateTime, SecondsFormat, Utc};
use durable_emu_engine::InstanceRecord;
use durable_emu_engine::engine::EntityMetadata;
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Azure writes times to the second with a `Z` (`yyyy-MM-ddTHH:mm:ssZ`).
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The status body of one instance; `history` goes in as `historyEvents` when asked for.
pub(crate) fn status(record: &InstanceRecord, show_input: bool, history: Option<Value>) -> Value {
    let output = match record.status {
        // Azure reports a failure's message as the output; the details go alongside.
        RuntimeStatus::Failed => record.failure.as_ref().map_or(Value::Null, |failure| {
            Value::String(failure.error_message.clone())
        }),
        _ => record.output.clone(),
    };
    let mut body = json!({
        "name": record.name,
        "instanceId": record.instance_id,
        "runtimeStatus": record.status.as_str(),
        "input": if show_input { record.input.clone() } else { Value::Null },
        "customStatus": record.custom_status.clone().unwrap_or(Value::Null),
        "output": output,
        "createdTime": time(record.created_at),
        "lastUpdatedTime": time(record.updated_at),
    });
    if let (Some(failure), Value::Object(map)) = (&record.failure, &mut body) {
        map.insert(
            "failureDetails".into(),
            serde_json::to_value(failure).unwrap_or(Value::Null),
        );
    }
    if let (Some(history), Value::Object(map)) = (history, &mut body) {
        // Azure's field is `historyEvents`; the Python client (azure-functions-durable) reads
        // `history`, so it gets both.
        map.insert("history".into(), history.clone());
        map.insert("historyEvents".into(), history);
    }
    body
}

/// What a completion takes over from the event that scheduled it.
struct Scheduled {
    name: String,
    input: Value,
    at: DateTime<Utc>,
}

/// One execution's events in Azure's projection: episode markers and scheduling events are
/// dropped (a scheduling event is merged into its completion as `FunctionName`,
/// `ScheduledTime` and `Input`); `EventId` goes; `Result` stays only with `show_output`, since
/// results can be large or private.
pub(crate) fn history(events: &[HistoryEvent], show_output: bool) -> Value {
    let mut scheduled: HashMap<i32, Scheduled> = HashMap::new();
    for event in events {
        match &event.kind {
            EventKind::TaskScheduled { name, input }
            | EventKind::SubOrchestrationInstanceCreated { name, input, .. } => {
                scheduled.insert(
                    event.event_id,
                    Scheduled {
                        name: name.clone(),
                        input: input.clone(),
                        at: event.timestamp,
                    },
                );
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for event in events {
        let completes = match &event.kind {
            EventKind::OrchestratorStarted
            | EventKind::OrchestratorCompleted
            | EventKind::TaskScheduled { .. }
            | EventKind::SubOrchestrationInstanceCreated { .. } => continue,
            EventKind::TaskCompleted {
                task_scheduled_id, ..
            }
            | EventKind::TaskFailed {
                task_scheduled_id, ..
            }
            | EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id, ..
            }
            | EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id, ..
            } => Some(*task_scheduled_id),
            _ => None,
        };
        let Ok(Value::Object(fields)) = serde_json::to_value(event) else {
            continue;
        };
        let mut shaped = Map::new();
        for (key, value) in fields {
            if key == "eventId" {
                continue;
            }
            let key = match key.as_str() {
                // ExecutionStarted's orchestration name is Azure's FunctionName.
                "name" if matches!(event.kind, EventKind::ExecutionStarted { .. }) => {
                    "FunctionName".to_string()
                }
                // Durable Task's ExecutionCompleted calls it OrchestrationStatus.
                "status" if matches!(event.kind, EventKind::ExecutionCompleted { .. }) => {
                    "OrchestrationStatus".to_string()
                }
                _ => pascal(&key),
            };
            shaped.insert(key, value);
        }
        if let Some(origin) = completes.and_then(|id| scheduled.get(&id)) {
            shaped.insert("FunctionName".into(), Value::String(origin.name.clone()));
            shaped.insert("ScheduledTime".into(), Value::String(time(origin.at)));
            shaped.insert("Input".into(), origin.input.clone());
        }
        if let EventKind::ContinueAsNew { .. } = event.kind {
            // The next execution's input is what this execution produced.
            if let Some(input) = shaped.remove("Input") {
                shaped.insert("Result".into(), input);
            }
        }
        if !show_output {
            shaped.remove("Result");
        }
        if let Some(Value::String(at)) = shaped.get_mut("Timestamp") {
            if let Ok(parsed) = DateTime::parse_from_rfc3339(at) {
                *at = time(parsed.with_timezone(&Utc));
            }
        }
        out.push(Value::Object(shaped));
    }
    Value::Array(out)
}

/// `taskScheduledId` -> `TaskScheduledId`.
fn pascal(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One entity as Azure lists it.
pub(crate) fn entity(metadata: &EntityMetadata) -> Value {
    let mut body = json!({
        "entityId": { "name": metadata.name, "key": metadata.key },
        "lastOperationTime": time(metadata.last_modified),
    });
    if let (Some(state), Value::Object(map)) = (&metadata.state, &mut body) {
        map.insert("state".into(), state.clone());
    }
    body
}

/// The management payload: where a client reads, answers, ends and purges one instance.
/// `root` is `http://host/base`; `code` is the access key's query suffix (`code=...`), if any.
pub(crate) fn management(root: &str, instance_id: &str, code: Option<&str>) -> Value {
    let instance = format!("{root}/instances/{}", encode(instance_id));
    let plain = code.map(|code| format!("?{code}")).unwrap_or_default();
    let with_reason = code.map(|code| format!("&{code}")).unwrap_or_default();
    json!({
        "id": instance_id,
        "statusQueryGetUri": format!("{instance}{plain}"),
        "sendEventPostUri": format!("{instance}/raiseEvent/{{eventName}}{plain}"),
        "terminatePostUri": format!("{instance}/terminate?reason={{text}}{with_reason}"),
        "purgeHistoryDeleteUri": format!("{instance}{plain}"),
        "restartPostUri": format!("{instance}/restart{plain}"),
        "suspendPostUri": format!("{instance}/suspend?reason={{text}}{with_reason}"),
        "resumePostUri": format!("{instance}/resume?reason={{text}}{with_reason}"),
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so an id with `/`, `?`
/// or spaces stays one path segment or one query value.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_unreserved_characters_and_escapes_the_rest() {
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn pascal_upper_cases_the_first_letter_only() {
        assert_eq!(pascal("taskScheduledId"), "TaskScheduledId");
        assert_eq!(pascal(""), "");
    }
}
