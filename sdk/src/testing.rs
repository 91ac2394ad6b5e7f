//! The compact text form of histories and actions, for tests of anything that reads or writes a
//! history: the SDK's replay tables, and the engine's, UI's and server's tests (re-exported by
//! `durable-emu-testing`). Pure text <-> [`HistoryEvent`] / [`Action`]: no registry, no host.
//! Compiled only with the `testing` feature; not part of the SDK's public API.
//!
//! Malformed text is a bug in the test that wrote it, so parsing panics with a message naming the
//! line instead of returning an error.
//!
//! ## The text form of a history
//! One event per line, named as in docs/semantics.md#history; `---` separates the past events
//! (already recorded) from the new events of the episode under test. Lines starting with `//` are
//! comments. Times are `@<minutes>` (or `@<minutes>:<seconds>`) after [`base_time`]; every event is
//! stamped with the time of the latest `OrchestratorStarted` above it. A line ending in `\`
//! continues on the next. Payloads are JSON (default `null`); failures are `Type: message`
//! segments, outermost first, joined by ` > ` (the inner-failure chain), each optionally followed
//! by `[non-retriable]`.
//!
//! ```text
//! OrchestratorStarted @0
//! ExecutionStarted HelloSequence null
//! TaskScheduled #0 SayHello "Tokyo"
//! OrchestratorCompleted
//! ---
//! OrchestratorStarted @1
//! TaskFailed #0 CardDeclined: insufficient funds
//! ```
//!
//! Other lines: `TaskCompleted #0 "Hello Tokyo!"`, `TimerCreated #1 @60`, `TimerFired #1 @60`,
//! `SubOrchestrationInstanceCreated #2 Child inst:2 "input"`, `SubOrchestrationInstanceCompleted
//! #2 "out"`, `SubOrchestrationInstanceFailed #2 <failure>`, `EventRaised Approval true`,
//! `EventSent #3 other-instance Approval true`, `ExecutionSuspended [reason]`,
//! `ExecutionResumed [reason]`, `ExecutionTerminated "reason"`, `ContinueAsNew #4 5`,
//! `ExecutionCompleted #4 Completed "out"` / `ExecutionCompleted #4 Failed <failure>`,
//! `OrchestratorCompleted`. Events that record an action carry its id (`#4`), as the host writes
//! them; the host appends them after the episode's new events.
//!
//! Entity events: `EntityOperationCalled #3 @counter@a add 5`, `EntityOperationSignaled #2
//! @counter@a add 5` (delivered at a time: `EntityOperationSignaled #2 @counter@a add @60 5`),
//! `EntityLockRequested #4 @account@a,@account@b`, `EntityUnlockSent #7 @account@a #4`.
//! A call, signal or lock request's request id (critical section id) is its own `#id` unless
//! written after it (`EntityOperationCalled #3 req=<id> ...`); answers name the request they
//! answer: `EntityOperationCompleted #3 6`, `EntityOperationFailed #3 <failure>`,
//! `EntityLockGranted #4`; `EntityUnlockSent` ends with the critical section's id. (The code's
//! own request ids are deterministic guids; history's are authoritative, so a replayed call
//! answers to the id history recorded.)
//!
//! ## The text form of actions
//! `ScheduleTask #1 SayHello "Seattle"`, `CreateTimer #2 @60`,
//! `CreateSubOrchestration #1 Child inst:1 "input"`, `SendEvent #2 other Approval true`,
//! `Complete #3 Completed ["a","b"]`, `Complete #3 Failed <failure>`,
//! `Complete #3 ContinuedAsNew 5` followed by one `carry <event>` line per carried-over event.
//! Entity actions leave out their request ids (guids): `CallEntity #3 @counter@a add 5`,
//! `SignalEntity #2 @counter@a add 5` (`... add @60 5` when scheduled),
//! `LockEntities #4 @account@a,@account@b`, `UnlockEntity #7 @account@a`.

use crate::protocol::{Action, ActionKind, OrchestratorRequest};
use crate::{EventKind, FailureDetails, HistoryEvent, RuntimeStatus};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

/// The instance every text-form request is for.
pub const INSTANCE: &str = "inst";
/// The execution every text-form request is for.
pub const EXECUTION: &str = "inst-e1";

/// Time zero of the text form: `@0`.
#[allow(clippy::expect_used)] // A fixed, valid date.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("2024-01-01T00:00:00Z is one valid UTC instant")
}

/// `@minutes` of the text form.
pub fn at(minutes: i64) -> DateTime<Utc> {
    base_time() + chrono::Duration::minutes(minutes)
}

fn parse_time(token: &str) -> DateTime<Utc> {
    let text = token
        .strip_prefix('@')
        .unwrap_or_else(|| panic!("expected a time like @60, found '{token}'"));
    let (minutes, seconds) = text.split_once(':').unwrap_or((text, "0"));
    let minutes: i64 = minutes
        .parse()
        .unwrap_or_else(|_| panic!("bad minutes in '{token}'"));
    let seconds: i64 = seconds
        .parse()
        .unwrap_or_else(|_| panic!("bad seconds in '{token}'"));
    at(minutes) + chrono::Duration::seconds(seconds)
}

/// A time in the text form: `@90`, `@1:30`, or an RFC 3339 string for times before `@0`.
pub fn render_time(time: &DateTime<Utc>) -> String {
    let seconds = (*time - base_time()).num_seconds();
    if seconds < 0 {
        return time.to_rfc3339();
    }
    match (seconds / 60, seconds % 60) {
        (minutes, 0) => format!("@{minutes}"),
        (minutes, seconds) => format!("@{minutes}:{seconds:02}"),
    }
}

#[allow(clippy::expect_used)] // A `Value` has string keys only, so it always serializes.
fn json(value: &Value) -> String {
    serde_json::to_string(value).expect("a serde_json::Value always serializes")
}

fn parse_json(text: &str, line: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text.trim())
        .unwrap_or_else(|error| panic!("bad JSON '{text}' in line '{line}': {error}"))
}

/// Splits off the first space-separated word.
fn word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    text.split_once(' ').unwrap_or((text, ""))
}

fn parse_id(token: &str, line: &str) -> i32 {
    token
        .strip_prefix('#')
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("expected an id like #3, found '{token}' in line '{line}'"))
}

/// The request id of an entity call, signal or lock request: `req=<id>` if written, else the
/// event's own `#id` token.
fn request_id<'a>(id_token: &str, rest: &'a str) -> (String, &'a str) {
    match word(rest) {
        (written, rest) if written.starts_with("req=") => {
            (written["req=".len()..].to_string(), rest)
        }
        _ => (id_token.to_string(), rest),
    }
}

/// ` req=<id>` unless the request id is the event's own `#id` (the text form's default).
fn render_request_id(event_id: i32, request_id: &str) -> String {
    if request_id == format!("#{event_id}") {
        String::new()
    } else {
        format!(" req={request_id}")
    }
}

/// ` @60` for a scheduled delivery, nothing otherwise.
fn render_scheduled(time: Option<&DateTime<Utc>>) -> String {
    time.map(|time| format!(" {}", render_time(time)))
        .unwrap_or_default()
}

const NON_RETRIABLE: &str = " [non-retriable]";

/// Parses a failure chain: `TaskFailed: outer message > CardDeclined: insufficient funds`.
pub fn failure(text: &str) -> FailureDetails {
    let segments: Vec<&str> = text.split(" > ").collect();
    segments
        .into_iter()
        .rev()
        .fold(None, |inner: Option<FailureDetails>, segment| {
            let segment = segment.trim();
            let (segment, non_retriable) = match segment.strip_suffix(NON_RETRIABLE.trim_start()) {
                Some(rest) => (rest.trim_end(), true),
                None => (segment, false),
            };
            let (error_type, message) = segment.split_once(": ").unwrap_or((segment, ""));
            let mut failure = FailureDetails::new(error_type, message);
            failure.is_non_retriable = non_retriable;
            failure.inner_failure = inner.map(Box::new);
            Some(failure)
        })
        .unwrap_or_else(|| panic!("empty failure '{text}'"))
}

/// A failure chain in the text form (stack traces left out: they name source lines).
pub fn render_failure(failure: &FailureDetails) -> String {
    failure
        .chain()
        .map(|failure| {
            let marker = if failure.is_non_retriable {
                NON_RETRIABLE
            } else {
                ""
            };
            format!("{}: {}{marker}", failure.error_type, failure.error_message)
        })
        .collect::<Vec<_>>()
        .join(" > ")
}

fn event_kind(line: &str) -> (EventKind, i32) {
    let (name, rest) = word(line);
    let no_id = -1;
    let kind = match name {
        "OrchestratorStarted" => EventKind::OrchestratorStarted,
        "OrchestratorCompleted" => EventKind::OrchestratorCompleted,
        "ExecutionStarted" => {
            let (name, input) = word(rest);
            EventKind::ExecutionStarted {
                name: name.to_string(),
                version: None,
                input: parse_json(input, line),
                instance_id: INSTANCE.to_string(),
                execution_id: EXECUTION.to_string(),
                parent: None,
                scheduled_start: None,
            }
        }
        "TaskScheduled" => {
            let (id, rest) = word(rest);
            let (name, input) = word(rest);
            let kind = EventKind::TaskScheduled {
                name: name.to_string(),
                input: parse_json(input, line),
            };
            return (kind, parse_id(id, line));
        }
        "TaskCompleted" => {
            let (id, result) = word(rest);
            EventKind::TaskCompleted {
                task_scheduled_id: parse_id(id, line),
                result: parse_json(result, line),
            }
        }
        "TaskFailed" => {
            let (id, details) = word(rest);
            EventKind::TaskFailed {
                task_scheduled_id: parse_id(id, line),
                failure: failure(details),
            }
        }
        "SubOrchestrationInstanceCreated" => {
            let (id, rest) = word(rest);
            let (name, rest) = word(rest);
            let (instance_id, input) = word(rest);
            let kind = EventKind::SubOrchestrationInstanceCreated {
                name: name.to_string(),
                instance_id: instance_id.to_string(),
                input: parse_json(input, line),
            };
            return (kind, parse_id(id, line));
        }
        "SubOrchestrationInstanceCompleted" => {
            let (id, result) = word(rest);
            EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id: parse_id(id, line),
                result: parse_json(result, line),
            }
        }
        "SubOrchestrationInstanceFailed" => {
            let (id, details) = word(rest);
            EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id: parse_id(id, line),
                failure: failure(details),
            }
        }
        "TimerCreated" => {
            let (id, time) = word(rest);
            let kind = EventKind::TimerCreated {
                fire_at: parse_time(time.trim()),
            };
            return (kind, parse_id(id, line));
        }
        "TimerFired" => {
            let (id, time) = word(rest);
            EventKind::TimerFired {
                fire_at: parse_time(time.trim()),
                timer_id: parse_id(id, line),
            }
        }
        "EventRaised" => {
            let (name, input) = word(rest);
            EventKind::EventRaised {
                name: name.to_string(),
                input: parse_json(input, line),
            }
        }
        "EventSent" => {
            let (id, rest) = word(rest);
            let (instance_id, rest) = word(rest);
            let (name, input) = word(rest);
            let kind = EventKind::EventSent {
                instance_id: instance_id.to_string(),
                name: name.to_string(),
                input: parse_json(input, line),
            };
            return (kind, parse_id(id, line));
        }
        "ExecutionSuspended" => EventKind::ExecutionSuspended {
            reason: Some(rest.trim().to_string()).filter(|reason| !reason.is_empty()),
        },
        "ExecutionResumed" => EventKind::ExecutionResumed {
            reason: Some(rest.trim().to_string()).filter(|reason| !reason.is_empty()),
        },
        "ExecutionRewound" => EventKind::ExecutionRewound {
            reason: Some(rest.trim().to_string()).filter(|reason| !reason.is_empty()),
        },
        "ExecutionTerminated" => EventKind::ExecutionTerminated {
            reason: parse_json(rest, line),
            recurse: false,
        },
        "ContinueAsNew" => {
            let (id, input) = word(rest);
            let kind = EventKind::ContinueAsNew {
                input: parse_json(input, line),
            };
            return (kind, parse_id(id, line));
        }
        "ExecutionCompleted" => {
            let (id, rest) = word(rest);
            let (status, rest) = word(rest);
            let status: RuntimeStatus = status
                .parse()
                .unwrap_or_else(|_| panic!("unknown status '{status}' in line '{line}'"));
            let (result, failure) = match status {
                RuntimeStatus::Failed => (Value::Null, Some(failure(rest))),
                _ => (parse_json(rest, line), None),
            };
            let kind = EventKind::ExecutionCompleted {
                status,
                result,
                failure,
            };
            return (kind, parse_id(id, line));
        }
        "EntityOperationSignaled" | "EntityOperationCalled" => {
            let (id, rest) = word(rest);
            let event_id = parse_id(id, line);
            let (request_id, rest) = request_id(id, rest);
            let (target, rest) = word(rest);
            let (operation, rest) = word(rest);
            let (scheduled_time, input) = match word(rest) {
                (time, input) if time.starts_with('@') => (Some(parse_time(time)), input),
                _ => (None, rest),
            };
            let (target_instance_id, operation, input) = (
                target.to_string(),
                operation.to_string(),
                parse_json(input, line),
            );
            let kind = if name == "EntityOperationSignaled" {
                EventKind::EntityOperationSignaled {
                    request_id,
                    operation,
                    input,
                    target_instance_id,
                    scheduled_time,
                }
            } else {
                EventKind::EntityOperationCalled {
                    request_id,
                    operation,
                    input,
                    target_instance_id,
                    scheduled_time,
                    parent_instance_id: INSTANCE.to_string(),
                    parent_execution_id: EXECUTION.to_string(),
                }
            };
            return (kind, event_id);
        }
        "EntityOperationCompleted" => {
            let (request_id, output) = word(rest);
            EventKind::EntityOperationCompleted {
                request_id: request_id.to_string(),
                output: parse_json(output, line),
            }
        }
        "EntityOperationFailed" => {
            let (request_id, details) = word(rest);
            EventKind::EntityOperationFailed {
                request_id: request_id.to_string(),
                failure: failure(details),
            }
        }
        "EntityLockRequested" => {
            let (id, rest) = word(rest);
            let (critical_section_id, rest) = request_id(id, rest);
            let kind = EventKind::EntityLockRequested {
                critical_section_id,
                lock_set: rest.trim().split(',').map(str::to_string).collect(),
                position: 0,
                parent_instance_id: INSTANCE.to_string(),
            };
            return (kind, parse_id(id, line));
        }
        "EntityLockGranted" => EventKind::EntityLockGranted {
            critical_section_id: rest.trim().to_string(),
        },
        "EntityUnlockSent" => {
            let (id, rest) = word(rest);
            let (target, critical_section_id) = word(rest);
            let kind = EventKind::EntityUnlockSent {
                critical_section_id: critical_section_id.trim().to_string(),
                parent_instance_id: INSTANCE.to_string(),
                target_instance_id: target.to_string(),
            };
            return (kind, parse_id(id, line));
        }
        // `FaultInjected <rule>: <effect>`: a host marker the code never sees.
        "FaultInjected" => {
            let (rule, effect) = rest.split_once(':').unwrap_or((rest, ""));
            EventKind::FaultInjected {
                rule: rule.trim().to_string(),
                effect: effect.trim().to_string(),
                target: String::new(),
                task_scheduled_id: None,
            }
        }
        other => panic!("unknown event '{other}' in line '{line}'"),
    };
    (kind, no_id)
}

/// The meaningful lines of a text block: trimmed, without blanks and `//` comments; a line ending
/// in `\` continues on the next (joined with one space), for long failure messages.
fn text_lines(text: &str) -> Vec<String> {
    let mut joined = Vec::new();
    let mut pending = String::new();
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"));
    for line in lines {
        match line.strip_suffix('\\') {
            Some(start) => {
                pending.push_str(start.trim_end());
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                joined.push(std::mem::take(&mut pending));
            }
        }
    }
    joined
}

/// Parses a text-form history into (past events, new events).
pub fn parse_history(text: &str) -> (Vec<HistoryEvent>, Vec<HistoryEvent>) {
    let mut past = Vec::new();
    let mut new = Vec::new();
    let mut seen_separator = false;
    let mut now = base_time();
    for line in text_lines(text) {
        let line = line.as_str();
        if line == "---" {
            assert!(!seen_separator, "more than one '---' in history");
            seen_separator = true;
            continue;
        }
        if line.starts_with("OrchestratorStarted") {
            now = parse_time(word(line).1.trim());
        }
        let (kind, event_id) = event_kind(line);
        let event = HistoryEvent {
            event_id,
            timestamp: now,
            kind,
        };
        if seen_separator {
            new.push(event);
        } else {
            past.push(event);
        }
    }
    (past, new)
}

/// Parses a text-form list of events (no `---`).
pub fn events(text: &str) -> Vec<HistoryEvent> {
    let (past, new) = parse_history(text);
    assert!(new.is_empty(), "events() takes no '---'");
    past
}

/// The episode request a host sends for this text-form history (full replay of the past).
pub fn request(text: &str) -> OrchestratorRequest {
    let (past_events, new_events) = parse_history(text);
    OrchestratorRequest {
        instance_id: INSTANCE.to_string(),
        execution_id: EXECUTION.to_string(),
        history_len: past_events.len(),
        past_events,
        new_events,
        include_replay_logs: false,
        max_actions: None,
    }
}

/// One event in the text form.
pub fn render_event(event: &HistoryEvent) -> String {
    let id = event.event_id;
    match &event.kind {
        EventKind::OrchestratorStarted => {
            format!("OrchestratorStarted {}", render_time(&event.timestamp))
        }
        EventKind::OrchestratorCompleted => "OrchestratorCompleted".to_string(),
        EventKind::EntityOperationSignaled {
            request_id,
            operation,
            input,
            target_instance_id,
            scheduled_time,
        } => format!(
            "EntityOperationSignaled #{id}{} {target_instance_id} {operation}{} {}",
            render_request_id(id, request_id),
            render_scheduled(scheduled_time.as_ref()),
            json(input)
        ),
        EventKind::EntityOperationCalled {
            request_id,
            operation,
            input,
            target_instance_id,
            scheduled_time,
            ..
        } => format!(
            "EntityOperationCalled #{id}{} {target_instance_id} {operation}{} {}",
            render_request_id(id, request_id),
            render_scheduled(scheduled_time.as_ref()),
            json(input)
        ),
        EventKind::EntityOperationCompleted { request_id, output } => {
            format!("EntityOperationCompleted {request_id} {}", json(output))
        }
        EventKind::EntityOperationFailed {
            request_id,
            failure,
        } => format!(
            "EntityOperationFailed {request_id} {}",
            render_failure(failure)
        ),
        EventKind::EntityLockRequested {
            critical_section_id,
            lock_set,
            ..
        } => format!(
            "EntityLockRequested #{id}{} {}",
            render_request_id(id, critical_section_id),
            lock_set.join(",")
        ),
        EventKind::EntityLockGranted {
            critical_section_id,
        } => format!("EntityLockGranted {critical_section_id}"),
        EventKind::EntityUnlockSent {
            critical_section_id,
            target_instance_id,
            ..
        } => format!("EntityUnlockSent #{id} {target_instance_id} {critical_section_id}"),
        EventKind::FaultInjected { rule, effect, .. } => format!("FaultInjected {rule}: {effect}"),
        EventKind::ExecutionStarted { name, input, .. } => {
            format!("ExecutionStarted {name} {}", json(input))
        }
        EventKind::TaskScheduled { name, input } => {
            format!("TaskScheduled #{id} {name} {}", json(input))
        }
        EventKind::TaskCompleted {
            task_scheduled_id,
            result,
        } => format!("TaskCompleted #{task_scheduled_id} {}", json(result)),
        EventKind::TaskFailed {
            task_scheduled_id,
            failure,
        } => format!(
            "TaskFailed #{task_scheduled_id} {}",
            render_failure(failure)
        ),
        EventKind::SubOrchestrationInstanceCreated {
            name,
            instance_id,
            input,
        } => format!(
            "SubOrchestrationInstanceCreated #{id} {name} {instance_id} {}",
            json(input)
        ),
        EventKind::SubOrchestrationInstanceCompleted {
            task_scheduled_id,
            result,
        } => format!(
            "SubOrchestrationInstanceCompleted #{task_scheduled_id} {}",
            json(result)
        ),
        EventKind::SubOrchestrationInstanceFailed {
            task_scheduled_id,
            failure,
        } => format!(
            "SubOrchestrationInstanceFailed #{task_scheduled_id} {}",
            render_failure(failure)
        ),
        EventKind::TimerCreated { fire_at } => {
            format!("TimerCreated #{id} {}", render_time(fire_at))
        }
        EventKind::TimerFired { fire_at, timer_id } => {
            format!("TimerFired #{timer_id} {}", render_time(fire_at))
        }
        EventKind::EventRaised { name, input } => format!("EventRaised {name} {}", json(input)),
        EventKind::EventSent {
            instance_id,
            name,
            input,
        } => format!("EventSent #{id} {instance_id} {name} {}", json(input)),
        EventKind::ExecutionSuspended { reason } => format!(
            "ExecutionSuspended {}",
            reason.as_deref().unwrap_or_default()
        )
        .trim_end()
        .to_string(),
        EventKind::ExecutionResumed { reason } => {
            format!("ExecutionResumed {}", reason.as_deref().unwrap_or_default())
                .trim_end()
                .to_string()
        }
        EventKind::ExecutionRewound { reason } => {
            format!("ExecutionRewound {}", reason.as_deref().unwrap_or_default())
                .trim_end()
                .to_string()
        }
        EventKind::ExecutionTerminated { reason, .. } => {
            format!("ExecutionTerminated {}", json(reason))
        }
        EventKind::ContinueAsNew { input } => format!("ContinueAsNew #{id} {}", json(input)),
        EventKind::ExecutionCompleted {
            status,
            result,
            failure,
        } => match failure {
            Some(failure) => format!(
                "ExecutionCompleted #{id} {status} {}",
                render_failure(failure)
            ),
            None => format!("ExecutionCompleted #{id} {status} {}", json(result)),
        },
    }
}

/// Events in the text form, one a line.
pub fn render_events(events: &[HistoryEvent]) -> String {
    events
        .iter()
        .map(render_event)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One action in the text form (a completion that carries events over takes several lines).
pub fn render_action(action: &Action) -> String {
    let id = action.id;
    match &action.kind {
        ActionKind::ScheduleTask { name, input } => {
            format!("ScheduleTask #{id} {name} {}", json(input))
        }
        ActionKind::SignalEntity {
            target_instance_id,
            operation,
            input,
            scheduled_time,
            ..
        } => format!(
            "SignalEntity #{id} {target_instance_id} {operation}{} {}",
            render_scheduled(scheduled_time.as_ref()),
            json(input)
        ),
        ActionKind::CallEntity {
            target_instance_id,
            operation,
            input,
            ..
        } => format!(
            "CallEntity #{id} {target_instance_id} {operation} {}",
            json(input)
        ),
        ActionKind::LockEntities { lock_set, .. } => {
            format!("LockEntities #{id} {}", lock_set.join(","))
        }
        ActionKind::UnlockEntity {
            target_instance_id, ..
        } => format!("UnlockEntity #{id} {target_instance_id}"),
        ActionKind::CreateTimer { fire_at } => {
            format!("CreateTimer #{id} {}", render_time(fire_at))
        }
        ActionKind::CreateSubOrchestration {
            name,
            instance_id,
            input,
        } => format!(
            "CreateSubOrchestration #{id} {name} {instance_id} {}",
            json(input)
        ),
        ActionKind::SendEvent {
            instance_id,
            name,
            input,
        } => format!("SendEvent #{id} {instance_id} {name} {}", json(input)),
        ActionKind::CompleteOrchestration {
            status,
            result,
            failure,
            carryover_events,
        } => {
            let mut text = match failure {
                Some(failure) => format!("Complete #{id} {status} {}", render_failure(failure)),
                None => format!("Complete #{id} {status} {}", json(result)),
            };
            for event in carryover_events {
                text.push_str("\ncarry ");
                text.push_str(&render_event(event));
            }
            text
        }
    }
}

/// Actions in the text form, one a line.
pub fn render_actions(actions: &[Action]) -> String {
    actions
        .iter()
        .map(render_action)
        .collect::<Vec<_>>()
        .join("\n")
}

/// An expected text block as [`render_actions`] writes it (see `text_lines`).
pub fn lines(text: &str) -> String {
    text_lines(text).join("\n")
}

/// Events that record an action (the host appends them after an episode's new events).
pub fn records_an_action(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::TaskScheduled { .. }
            | EventKind::TimerCreated { .. }
            | EventKind::SubOrchestrationInstanceCreated { .. }
            | EventKind::EventSent { .. }
            | EventKind::EntityOperationSignaled { .. }
            | EventKind::EntityOperationCalled { .. }
            | EventKind::EntityLockRequested { .. }
            | EventKind::EntityUnlockSent { .. }
            | EventKind::ContinueAsNew { .. }
            | EventKind::ExecutionCompleted { .. }
    )
}
