//! One line per history event, and the small text forms every view shares: virtual time offsets,
//! ages, JSON shortened to fit a column, the name of each call (what its answer's row is named
//! by: [`CallNames`]) and the call counters behind an instance's progress. HTTP requests read as
//! HTTP ([`super::http`]). Pure functions of events.

use super::Tone;
use super::http;
use chrono::{DateTime, Utc};
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use serde_json::Value;
use std::collections::HashMap;

/// What the history view shows of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Virtual time since the execution started, e.g. `+1h30m00s`.
    pub offset: String,
    /// The event kind (Durable Task name).
    pub kind: &'static str,
    /// The sequence id it carries or completes (`#3`), if any.
    pub id: String,
    /// Activity, orchestration, timer or event name.
    pub name: String,
    /// A short payload, or the failure message.
    pub detail: String,
    /// How to colour it.
    pub tone: Tone,
}

/// Calls (activities, sub-orchestrations and entity calls awaiting an answer) of one execution: scheduled, and of those, completed
/// and failed. Counted from the execution's history, so an imported (forked) history or one
/// stored before a restart counts the same as one seen live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls scheduled.
    pub scheduled: u32,
    /// Of those, completed.
    pub completed: u32,
    /// Of those, failed.
    pub failed: u32,
}

impl CallCounts {
    /// The counts of an execution's events, from its first event.
    pub fn of(events: &[HistoryEvent]) -> Self {
        let mut counts = Self::default();
        for event in events {
            counts.record(event);
        }
        counts
    }

    /// Adds one event. A completion is counted only while some call is still open, so a
    /// completion whose call was not seen (a history read from its middle) never makes more
    /// calls done than scheduled.
    pub fn record(&mut self, event: &HistoryEvent) {
        let open = self.scheduled > self.completed + self.failed;
        match &event.kind {
            EventKind::TaskScheduled { .. }
            | EventKind::SubOrchestrationInstanceCreated { .. }
            | EventKind::EntityOperationCalled { .. } => {
                self.scheduled += 1;
            }
            EventKind::TaskCompleted { .. }
            | EventKind::SubOrchestrationInstanceCompleted { .. }
            | EventKind::EntityOperationCompleted { .. }
                if open =>
            {
                self.completed += 1;
            }
            EventKind::TaskFailed { .. }
            | EventKind::SubOrchestrationInstanceFailed { .. }
            | EventKind::EntityOperationFailed { .. }
                if open =>
            {
                self.failed += 1;
            }
            _ => {}
        }
    }

    /// Calls that ended, completed or failed.
    pub fn done(&self) -> u32 {
        self.completed + self.failed
    }
}

/// Whether `event` is a fault-injection marker. Read by name, so this module does not depend on
/// the variant's fields (the fault-injection API owns them).
pub fn is_fault(event: &HistoryEvent) -> bool {
    event.kind.type_name() == "FaultInjected"
}

/// How much of a payload an event row carries: enough for the widest terminal's DETAIL column (the
/// view cuts it to the width it has).
const DETAIL_CHARS: usize = 240;

/// Where a history's offsets count from: its earliest event. Not simply the first: under a
/// clock that runs, `ExecutionStarted` is stamped when the start was asked for, a moment before
/// the `OrchestratorStarted` of the episode that records it, and an offset must never be negative.
pub fn history_start(events: &[HistoryEvent]) -> Option<DateTime<Utc>> {
    events.iter().map(|event| event.timestamp).min()
}

/// The call an answer belongs to: activities, sub-orchestrations and timers by the sequence id of
/// the call, entity calls and lock requests by the request id their answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answers<'a> {
    /// The call with this sequence id.
    Call(i32),
    /// The entity request with this id (`request_id` or `critical_section_id`).
    Request(&'a str),
}

/// What `kind` answers, if it is an answer.
pub fn answers(kind: &EventKind) -> Option<Answers<'_>> {
    kind.completes_task()
        .map(Answers::Call)
        .or_else(|| kind.answers_entity_request().map(Answers::Request))
}

/// How the rows of a call's answer name the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallName {
    /// The name column's text: the activity or sub-orchestration, `timer`, `@account@a withdraw`,
    /// `lock @account@a, @account@b`, or `HTTP POST /jobs` for an HTTP request.
    pub name: String,
    /// For an HTTP request, its short form (`POST /jobs`, `poll 1 GET /jobs/1`): its answer's
    /// row reads `HTTP 202 Accepted <- POST /jobs`.
    pub http: Option<String>,
}

impl CallName {
    fn plain(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            http: None,
        }
    }
}

/// The name of every call of an execution, by what its answer names it by: activities,
/// sub-orchestrations and timers by sequence id, entity calls and lock requests by request id.
/// Built once per history and grown as events arrive, so a row is named without a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallNames {
    by_id: HashMap<i32, CallName>,
    by_request: HashMap<String, CallName>,
}

impl CallNames {
    /// The names of every call in `events`.
    pub fn of(events: &[HistoryEvent]) -> Self {
        let mut names = Self::default();
        for event in events {
            names.record(event);
        }
        names
    }

    /// Adds the call `event` makes, if it makes one.
    pub fn record(&mut self, event: &HistoryEvent) {
        match &event.kind {
            EventKind::TaskScheduled { name, input } => {
                let call = match http::request(name, input) {
                    Some(wire) => CallName {
                        name: http::call_name(&wire),
                        http: Some(http::short_request(&wire)),
                    },
                    None => CallName::plain(name.clone()),
                };
                self.by_id.insert(event.event_id, call);
            }
            EventKind::SubOrchestrationInstanceCreated { name, .. } => {
                self.by_id
                    .insert(event.event_id, CallName::plain(name.clone()));
            }
            EventKind::TimerCreated { .. } => {
                self.by_id.insert(event.event_id, CallName::plain("timer"));
            }
            EventKind::EntityOperationCalled {
                request_id,
                operation,
                target_instance_id,
                ..
            } => {
                self.by_request.insert(
                    request_id.clone(),
                    CallName::plain(format!("{target_instance_id} {operation}")),
                );
            }
            EventKind::EntityLockRequested {
                critical_section_id,
                lock_set,
                ..
            } => {
                self.by_request.insert(
                    critical_section_id.clone(),
                    CallName::plain(format!("lock {}", lock_set.join(", "))),
                );
            }
            _ => {}
        }
    }

    /// The name of the call `answers` answers.
    pub fn get(&self, answers: Answers<'_>) -> Option<&CallName> {
        match answers {
            Answers::Call(id) => self.by_id.get(&id),
            Answers::Request(request) => self.by_request.get(request),
        }
    }
}

/// The row of `event`; `names` names the call an answer answers.
pub fn event_row(event: &HistoryEvent, start: DateTime<Utc>, names: &CallNames) -> EventRow {
    let offset = format_offset(event.timestamp - start);
    let kind = short_kind(event.kind.type_name());
    let completes = event.kind.completes_task();
    let id = match completes {
        Some(id) => format!("#{id}"),
        None if event.event_id >= 0 => format!("#{}", event.event_id),
        None => String::new(),
    };
    let request = http::scheduled_request(&event.kind);
    let answered = answers(&event.kind).and_then(|answers| names.get(answers));
    let name = entity_target(&event.kind)
        .or_else(|| request.as_ref().map(http::call_name))
        .or_else(|| event.kind.name().map(str::to_string))
        .or_else(|| answered.map(|call| call.name.clone()))
        .unwrap_or_default();
    let answered_http = answered.and_then(|call| call.http.as_deref());
    let entity_detail = super::entities::detail(&event.kind, |at| format_offset(at - start));
    let (detail, tone) = match &event.kind {
        _ if is_fault(event) => (fault_text(event), Tone::Warn),
        _ if request.is_some() => (
            request
                .as_ref()
                .map(|wire| http::request_detail(wire, DETAIL_CHARS))
                .unwrap_or_default(),
            Tone::Info,
        ),
        EventKind::TaskCompleted { result, .. } if answered_http.is_some() => {
            let short = answered_http.unwrap_or_default();
            match http::response(result) {
                Some(response) => (
                    http::response_detail(&response, short, DETAIL_CHARS),
                    if http::is_error_status(response.status_code) {
                        Tone::Warn
                    } else {
                        Tone::Ok
                    },
                ),
                None => (compact_json(result, DETAIL_CHARS), Tone::Ok),
            }
        }
        EventKind::TaskFailed { failure, .. } if answered_http.is_some() => (
            truncate(
                &format!("{failure} <- {}", answered_http.unwrap_or_default()),
                DETAIL_CHARS,
            ),
            Tone::Error,
        ),
        _ if entity_detail.is_some() => (entity_detail.unwrap_or_default(), Tone::Info),
        EventKind::EntityOperationCompleted { output, .. } => {
            (compact_json(output, DETAIL_CHARS), Tone::Ok)
        }
        EventKind::EntityLockGranted { .. } => ("locked".to_string(), Tone::Ok),
        _ if event_failure(event).is_some() => {
            (event_failure(event).unwrap_or_default(), Tone::Error)
        }
        EventKind::OrchestratorStarted | EventKind::OrchestratorCompleted => {
            (String::new(), Tone::Dim)
        }
        EventKind::ExecutionStarted { input, .. }
        | EventKind::TaskScheduled { input, .. }
        | EventKind::SubOrchestrationInstanceCreated { input, .. }
        | EventKind::EventRaised { input, .. }
        | EventKind::EventSent { input, .. }
        | EventKind::ContinueAsNew { input } => (compact_json(input, DETAIL_CHARS), Tone::Info),
        EventKind::TaskCompleted { result, .. }
        | EventKind::SubOrchestrationInstanceCompleted { result, .. } => {
            (compact_json(result, DETAIL_CHARS), Tone::Ok)
        }
        EventKind::TimerCreated { fire_at } => (
            format!("fires at {}", format_offset(*fire_at - start)),
            Tone::Info,
        ),
        EventKind::TimerFired { .. } => (String::new(), Tone::Info),
        EventKind::ExecutionCompleted { status, result, .. } => (
            format!("{status} {}", compact_json(result, DETAIL_CHARS)),
            if *status == RuntimeStatus::Completed {
                Tone::Ok
            } else {
                Tone::Warn
            },
        ),
        EventKind::ExecutionTerminated { reason, .. } => {
            (compact_json(reason, DETAIL_CHARS), Tone::Warn)
        }
        EventKind::ExecutionSuspended { reason } | EventKind::ExecutionResumed { reason } => {
            (reason.clone().unwrap_or_default(), Tone::Warn)
        }
        _ => (String::new(), Tone::Info),
    };
    EventRow {
        offset,
        kind,
        id,
        name,
        detail,
        tone,
    }
}

/// The entity an entity event is sent to, for the name column (`lock` for a lock request, which
/// names several: its detail lists them).
fn entity_target(kind: &EventKind) -> Option<String> {
    match kind {
        EventKind::EntityOperationCalled {
            target_instance_id, ..
        }
        | EventKind::EntityOperationSignaled {
            target_instance_id, ..
        }
        | EventKind::EntityUnlockSent {
            target_instance_id, ..
        } => Some(target_instance_id.clone()),
        EventKind::EntityLockRequested { .. } => Some("lock".to_string()),
        _ => None,
    }
}

/// The event kind as the history view prints it: the Durable Task name, with
/// `SubOrchestrationInstance` shortened to `SubOrch` and `EntityOperation` to `EntityOp` so every
/// kind fits one column.
pub fn short_kind(kind: &'static str) -> &'static str {
    match kind {
        "EntityOperationCalled" => "EntityOpCalled",
        "EntityOperationSignaled" => "EntityOpSignaled",
        "EntityOperationCompleted" => "EntityOpCompleted",
        "EntityOperationFailed" => "EntityOpFailed",
        "SubOrchestrationInstanceCreated" => "SubOrchCreated",
        "SubOrchestrationInstanceCompleted" => "SubOrchCompleted",
        "SubOrchestrationInstanceFailed" => "SubOrchFailed",
        other => other,
    }
}

/// `rule: effect (target)` of a fault marker, read from its JSON form.
pub fn fault_text(event: &HistoryEvent) -> String {
    let json = serde_json::to_value(&event.kind).unwrap_or(Value::Null);
    let field = |name: &str| {
        json.get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    format!(
        "⚡ {}: {} ({})",
        field("rule"),
        field("effect"),
        field("target")
    )
}

/// The task a fault marker hit, if it names one.
pub fn fault_task(event: &HistoryEvent) -> Option<i32> {
    let json = serde_json::to_value(&event.kind).ok()?;
    json.get("taskScheduledId")
        .and_then(Value::as_i64)
        .and_then(|id| i32::try_from(id).ok())
}

/// `+1d02h03m04s`-style offset (virtual time since a start); negative offsets show `-`.
pub fn format_offset(offset: chrono::Duration) -> String {
    let negative = offset < chrono::Duration::zero();
    let total = offset.num_seconds().unsigned_abs();
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    let sign = if negative { '-' } else { '+' };
    if days > 0 {
        format!("{sign}{days}d{hours:02}h{minutes:02}m")
    } else {
        format!("{sign}{hours:02}:{minutes:02}:{seconds:02}")
    }
}

/// An age such as `45s`, `12m`, `3h05m`, `2d04h`.
pub fn format_age(age: chrono::Duration) -> String {
    let total = age.num_seconds().max(0);
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    if days > 0 {
        format!("{days}d{hours:02}h")
    } else if hours > 0 {
        format!("{hours}h{minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m{seconds:02}s")
    } else {
        format!("{seconds}s")
    }
}

/// JSON on one line, cut to `max` characters with `…`.
pub fn compact_json(value: &Value, max: usize) -> String {
    if value.is_null() {
        return String::new();
    }
    let text = value.to_string();
    truncate(&text, max)
}

/// `text` cut to `max` characters with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The failure of an event, if it is one (for the red history rows).
pub fn event_failure(event: &HistoryEvent) -> Option<String> {
    match &event.kind {
        EventKind::ExecutionCompleted {
            status: RuntimeStatus::Failed,
            failure,
            ..
        } => Some(
            failure
                .as_ref()
                .map_or_else(|| "failed".to_string(), ToString::to_string),
        ),
        kind => kind.failure().map(ToString::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn offsets_and_ages_are_compact() {
        assert_eq!(format_offset(chrono::Duration::seconds(5_400)), "+01:30:00");
        assert_eq!(format_offset(chrono::Duration::days(3)), "+3d00h00m");
        assert_eq!(format_age(chrono::Duration::seconds(75)), "1m15s");
        assert_eq!(format_age(chrono::Duration::hours(50)), "2d02h");
    }

    #[test]
    fn offsets_count_from_the_earliest_event_so_none_is_negative() {
        let at = |millis: i64| DateTime::UNIX_EPOCH + chrono::Duration::milliseconds(millis);
        let events = [
            HistoryEvent {
                event_id: -1,
                timestamp: at(40),
                kind: EventKind::OrchestratorStarted,
            },
            HistoryEvent {
                event_id: -1,
                timestamp: at(10),
                kind: EventKind::OrchestratorCompleted,
            },
        ];
        let start = history_start(&events).unwrap();
        assert_eq!(start, at(10));
        for event in &events {
            assert!(
                event_row(event, start, &CallNames::default())
                    .offset
                    .starts_with('+')
            );
        }
        assert_eq!(history_start(&[]), None);
    }

    #[test]
    fn a_completion_row_names_the_call_it_completes() {
        let event = HistoryEvent {
            event_id: -1,
            timestamp: DateTime::UNIX_EPOCH,
            kind: EventKind::TaskCompleted {
                task_scheduled_id: 2,
                result: json!("Hello Tokyo!"),
            },
        };
        let names = CallNames::of(&[HistoryEvent {
            event_id: 2,
            timestamp: DateTime::UNIX_EPOCH,
            kind: EventKind::TaskScheduled {
                name: "SayHello".into(),
                input: json!("Tokyo"),
            },
        }]);
        let row = event_row(&event, DateTime::UNIX_EPOCH, &names);
        assert_eq!(row.id, "#2");
        assert_eq!(row.name, "SayHello");
        assert_eq!(row.detail, "\"Hello Tokyo!\"");
        assert_eq!(row.tone, Tone::Ok);
    }

    #[test]
    fn call_counts_never_show_more_done_than_scheduled() {
        let whole = durable_emu_testing::history::events(
            "
            OrchestratorStarted @0
            ExecutionStarted FanOut 2
            TaskScheduled #0 Square 1
            TaskScheduled #1 Square 2
            OrchestratorStarted @1
            TaskCompleted #0 1
            TaskFailed #1 Boom: odd
            TaskScheduled #2 Square 3
            ",
        );
        let counts = CallCounts::of(&whole);
        assert_eq!(
            (counts.scheduled, counts.completed, counts.failed),
            (3, 1, 1)
        );
        // Read from the middle (after the calls were scheduled): the completions do not count.
        let tail = CallCounts::of(&whole[4..]);
        assert_eq!((tail.scheduled, tail.done()), (1, 0));
    }

    #[test]
    fn entity_rows_name_the_entity_and_answers_name_the_call_they_answer() {
        let at = |kind| HistoryEvent {
            event_id: 3,
            timestamp: DateTime::UNIX_EPOCH,
            kind,
        };
        let called = at(EventKind::EntityOperationCalled {
            request_id: "r-1".into(),
            operation: "withdraw".into(),
            input: json!(50),
            target_instance_id: "@account@a".into(),
            scheduled_time: None,
            parent_instance_id: "transfer".into(),
            parent_execution_id: "e".into(),
        });
        let call = event_row(&called, DateTime::UNIX_EPOCH, &CallNames::default());
        assert_eq!(
            (call.kind, call.id.as_str(), call.name.as_str()),
            ("EntityOpCalled", "#3", "@account@a")
        );
        assert_eq!(call.detail, "call @account@a withdraw 50");
        let name_of = &CallNames::of(std::slice::from_ref(&called));
        let mut failed = at(EventKind::EntityOperationFailed {
            request_id: "r-1".into(),
            failure: durable_sdk::FailureDetails::new("Overdrawn", "balance 20"),
        });
        failed.event_id = -1;
        let row = event_row(&failed, DateTime::UNIX_EPOCH, name_of);
        assert_eq!(row.name, "@account@a withdraw");
        assert_eq!(row.detail, "Overdrawn: balance 20");
        assert_eq!(row.tone, Tone::Error);
        let mut done = at(EventKind::EntityOperationCompleted {
            request_id: "r-1".into(),
            output: json!(70),
        });
        done.event_id = -1;
        let row = event_row(&done, DateTime::UNIX_EPOCH, name_of);
        assert_eq!((row.detail.as_str(), row.tone), ("70", Tone::Ok));
        for kind in [
            "EntityOperationSignaled",
            "EntityOperationCompleted",
            "EntityLockRequested",
            "EntityLockGranted",
            "EntityUnlockSent",
        ] {
            assert!(short_kind(kind).len() < 21, "{kind} fits the EVENT column");
        }
    }

    #[test]
    fn http_requests_and_their_answers_read_as_http() {
        let events = durable_emu_testing::history::events(http::HTTP_JOB);
        let start = history_start(&events).unwrap();
        let names = CallNames::of(&events);
        let rows: Vec<(String, String, Tone)> = events
            .iter()
            .map(|event| event_row(event, start, &names))
            .filter(|row| row.kind.starts_with("Task"))
            .map(|row| (row.name, row.detail, row.tone))
            .collect();
        let http = |name: &str, detail: &str, tone| (name.to_string(), detail.to_string(), tone);
        assert_eq!(
            rows,
            [
                http(
                    "HTTP POST /jobs",
                    "HTTP POST http://127.0.0.1:8088/jobs {\"steps\":3}",
                    Tone::Info
                ),
                http(
                    "HTTP POST /jobs",
                    "HTTP 202 Accepted <- POST /jobs",
                    Tone::Ok
                ),
                http(
                    "HTTP GET /jobs/1",
                    "HTTP GET http://127.0.0.1:8088/jobs/1 (poll 1)",
                    Tone::Info
                ),
                http(
                    "HTTP GET /jobs/1",
                    "HttpConnectionFailed: connection refused <- poll 1 GET /jobs/1",
                    Tone::Error
                ),
                http(
                    "HTTP GET /jobs/1",
                    "HTTP GET http://127.0.0.1:8088/jobs/1 (poll 2)",
                    Tone::Info
                ),
                http(
                    "HTTP GET /jobs/1",
                    "HTTP 500 Internal Server Error <- poll 2 GET /jobs/1 oops",
                    Tone::Warn
                ),
            ]
        );
    }

    #[test]
    fn an_http_activity_whose_input_is_not_a_request_reads_as_a_plain_activity() {
        let events = durable_emu_testing::history::events(
            r#"
            OrchestratorStarted @0
            ExecutionStarted Odd null
            TaskScheduled #0 BuiltIn::HttpActivity {"url":"http://h/"}
            OrchestratorStarted @1
            TaskCompleted #0 {"statusCode":200}
            "#,
        );
        let names = CallNames::of(&events);
        let row = event_row(&events[4], DateTime::UNIX_EPOCH, &names);
        assert_eq!(
            (row.name.as_str(), row.detail.as_str()),
            ("BuiltIn::HttpActivity", "{\"statusCode\":200}")
        );
    }

    #[test]
    fn long_payloads_are_cut_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(compact_json(&Value::Null, 4), "");
    }
}
