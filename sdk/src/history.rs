//! History: the append-only list of events that is an instance's only source of truth
//! (docs/semantics.md#history).
//!
//! Owns the event types and the runtime status. Knows nothing of how events are produced (the
//! executor and the host do that) or stored (the emulator's store does that).

use crate::failure::FailureDetails;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One event of an instance's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// The sequence id of the action that produced this event, or -1 for events no action
    /// produced (completions, external events, episode markers).
    pub event_id: i32,
    /// When the host recorded the event, on the emulator's clock.
    pub timestamp: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Where a sub-orchestration came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentInstance {
    /// The parent's instance id.
    pub instance_id: String,
    /// The parent's execution id at the time it scheduled the child.
    pub execution_id: String,
    /// The parent's orchestration name.
    pub name: String,
    /// The sequence id of the parent's `SubOrchestrationInstanceCreated` event.
    pub task_scheduled_id: i32,
}

/// The payload of a [`HistoryEvent`]; the variant names are the Durable Task event names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "eventType")]
pub enum EventKind {
    /// Start of an episode; its timestamp is the orchestrator's "now" for the episode.
    OrchestratorStarted,
    /// First event of an execution.
    #[serde(rename_all = "camelCase")]
    ExecutionStarted {
        /// Orchestration name.
        name: String,
        /// Orchestration version, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        /// Orchestration input (JSON).
        #[serde(default)]
        input: Value,
        /// Instance id.
        instance_id: String,
        /// Execution id (changes on continue-as-new).
        execution_id: String,
        /// Set when this is a sub-orchestration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ParentInstance>,
        /// When the instance was asked to start, if scheduled for later.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_start: Option<DateTime<Utc>>,
    },
    /// An activity was scheduled (`event_id` = the call's sequence id).
    #[serde(rename_all = "camelCase")]
    TaskScheduled {
        /// Activity name.
        name: String,
        /// Activity input (JSON).
        #[serde(default)]
        input: Value,
    },
    /// An activity returned a result.
    #[serde(rename_all = "camelCase")]
    TaskCompleted {
        /// Sequence id of the `TaskScheduled` this completes.
        task_scheduled_id: i32,
        /// The result (JSON).
        #[serde(default)]
        result: Value,
    },
    /// An activity failed.
    #[serde(rename_all = "camelCase")]
    TaskFailed {
        /// Sequence id of the `TaskScheduled` this completes.
        task_scheduled_id: i32,
        /// Why it failed.
        failure: FailureDetails,
    },
    /// A sub-orchestration was started (`event_id` = the call's sequence id).
    #[serde(rename_all = "camelCase")]
    SubOrchestrationInstanceCreated {
        /// Orchestration name.
        name: String,
        /// The child's instance id.
        instance_id: String,
        /// The child's input (JSON).
        #[serde(default)]
        input: Value,
    },
    /// A sub-orchestration completed.
    #[serde(rename_all = "camelCase")]
    SubOrchestrationInstanceCompleted {
        /// Sequence id of the `SubOrchestrationInstanceCreated` this completes.
        task_scheduled_id: i32,
        /// The child's output (JSON).
        #[serde(default)]
        result: Value,
    },
    /// A sub-orchestration failed.
    #[serde(rename_all = "camelCase")]
    SubOrchestrationInstanceFailed {
        /// Sequence id of the `SubOrchestrationInstanceCreated` this completes.
        task_scheduled_id: i32,
        /// The child's failure, with its own chain.
        failure: FailureDetails,
    },
    /// A durable timer was created (`event_id` = the call's sequence id).
    #[serde(rename_all = "camelCase")]
    TimerCreated {
        /// When it fires, on the emulator's clock.
        fire_at: DateTime<Utc>,
    },
    /// A durable timer fired.
    #[serde(rename_all = "camelCase")]
    TimerFired {
        /// When it was due.
        fire_at: DateTime<Utc>,
        /// Sequence id of the `TimerCreated` this completes.
        timer_id: i32,
    },
    /// An external event arrived for this instance.
    #[serde(rename_all = "camelCase")]
    EventRaised {
        /// Event name (compared case-insensitively).
        name: String,
        /// Event payload (JSON).
        #[serde(default)]
        input: Value,
    },
    /// This instance sent an event to another (`event_id` = the call's sequence id).
    #[serde(rename_all = "camelCase")]
    EventSent {
        /// Target instance id.
        instance_id: String,
        /// Event name.
        name: String,
        /// Event payload (JSON).
        #[serde(default)]
        input: Value,
    },
    /// The instance was suspended: only resume and terminate are processed until resumed.
    #[serde(rename_all = "camelCase")]
    ExecutionSuspended {
        /// Why, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The instance was resumed.
    #[serde(rename_all = "camelCase")]
    ExecutionResumed {
        /// Why, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The instance was asked to terminate.
    #[serde(rename_all = "camelCase")]
    ExecutionTerminated {
        /// Why, if given; becomes the instance's output.
        #[serde(default)]
        reason: Value,
        /// Whether running sub-orchestrations are terminated too.
        #[serde(default)]
        recurse: bool,
    },
    /// The execution ended by continuing as new with this input.
    #[serde(rename_all = "camelCase")]
    ContinueAsNew {
        /// The next execution's input (JSON).
        #[serde(default)]
        input: Value,
    },
    /// The execution reached a terminal status.
    #[serde(rename_all = "camelCase")]
    ExecutionCompleted {
        /// Completed, Failed or Terminated.
        status: RuntimeStatus,
        /// The output, when completed or terminated.
        #[serde(default)]
        result: Value,
        /// The failure, when failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<FailureDetails>,
    },
    /// End of an episode: every action of the episode is recorded before it.
    OrchestratorCompleted,
    /// The failed instance was rewound: its failed calls were taken out of history so they run
    /// again. Informational for the code (replay ignores it); the Durable Task
    /// `ExecutionRewound` event.
    #[serde(rename_all = "camelCase")]
    ExecutionRewound {
        /// Why, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// This orchestration signalled an entity: a one-way operation (`event_id` = the call's
    /// sequence id). Also the message an entity receives for a signal (then `event_id` is -1).
    #[serde(rename_all = "camelCase")]
    EntityOperationSignaled {
        /// Unique per request (a deterministic guid when an orchestration sends it).
        request_id: String,
        /// The operation name (compared case-insensitively by the SDK's entities).
        operation: String,
        /// The operation's input (JSON; null when none).
        #[serde(default)]
        input: Value,
        /// The entity, `@{name}@{key}`.
        target_instance_id: String,
        /// Delivered no earlier than this time on the emulator's clock, if set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_time: Option<DateTime<Utc>>,
    },
    /// This orchestration called an entity and awaits the result (`event_id` = the call's
    /// sequence id); answered by `EntityOperationCompleted` or `EntityOperationFailed` with the
    /// same `request_id`. Also the message an entity receives for a call.
    #[serde(rename_all = "camelCase")]
    EntityOperationCalled {
        /// Unique per request (a deterministic guid); the answer carries it back.
        request_id: String,
        /// The operation name.
        operation: String,
        /// The operation's input (JSON; null when none).
        #[serde(default)]
        input: Value,
        /// The entity, `@{name}@{key}`.
        target_instance_id: String,
        /// Delivered no earlier than this time, if set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_time: Option<DateTime<Utc>>,
        /// The calling orchestration (where the answer goes).
        parent_instance_id: String,
        /// The calling orchestration's execution.
        parent_execution_id: String,
    },
    /// An entity answered a call: the operation returned.
    #[serde(rename_all = "camelCase")]
    EntityOperationCompleted {
        /// The `request_id` of the `EntityOperationCalled` this answers.
        request_id: String,
        /// The operation's result (JSON).
        #[serde(default)]
        output: Value,
    },
    /// An entity answered a call: the operation failed (and the entity's state was rolled back
    /// to before it).
    #[serde(rename_all = "camelCase")]
    EntityOperationFailed {
        /// The `request_id` of the `EntityOperationCalled` this answers.
        request_id: String,
        /// Why it failed.
        failure: FailureDetails,
    },
    /// This orchestration asked to lock entities for a critical section (`event_id` = the
    /// call's sequence id); answered by `EntityLockGranted` with the same `critical_section_id`.
    #[serde(rename_all = "camelCase")]
    EntityLockRequested {
        /// Unique per critical section (a deterministic guid).
        critical_section_id: String,
        /// The entities to lock, sorted and without duplicates (locks are taken in this order,
        /// so two critical sections never deadlock).
        lock_set: Vec<String>,
        /// How many of `lock_set` are locked so far (0 when sent).
        #[serde(default)]
        position: i32,
        /// The orchestration that holds the lock once granted.
        parent_instance_id: String,
    },
    /// Every entity of a lock request is locked for this orchestration.
    #[serde(rename_all = "camelCase")]
    EntityLockGranted {
        /// The `critical_section_id` of the `EntityLockRequested` this grants.
        critical_section_id: String,
    },
    /// This orchestration released its lock on one entity at the end of a critical section
    /// (`event_id` = the call's sequence id).
    #[serde(rename_all = "camelCase")]
    EntityUnlockSent {
        /// The critical section that ends.
        critical_section_id: String,
        /// The orchestration that held the lock.
        parent_instance_id: String,
        /// The entity released.
        target_instance_id: String,
    },
    /// **Ours**: the emulator injected a fault here (a failure, delay, lost result, dropped event,
    /// crash, ...). Recorded for people and tools; orchestrator code never sees it.
    #[serde(rename_all = "camelCase")]
    FaultInjected {
        /// The rule that fired (its name, or `rule <id>`).
        rule: String,
        /// What it did, e.g. `fail CardDeclined: insufficient funds`.
        effect: String,
        /// What it hit, e.g. `activity ChargeCard (attempt 1)`.
        target: String,
        /// The sequence id of the task it hit, when it hit a task.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_scheduled_id: Option<i32>,
    },
}

impl EventKind {
    /// The Durable Task name of this event kind, e.g. `TaskScheduled`.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::OrchestratorStarted => "OrchestratorStarted",
            EventKind::ExecutionStarted { .. } => "ExecutionStarted",
            EventKind::TaskScheduled { .. } => "TaskScheduled",
            EventKind::TaskCompleted { .. } => "TaskCompleted",
            EventKind::TaskFailed { .. } => "TaskFailed",
            EventKind::SubOrchestrationInstanceCreated { .. } => "SubOrchestrationInstanceCreated",
            EventKind::SubOrchestrationInstanceCompleted { .. } => {
                "SubOrchestrationInstanceCompleted"
            }
            EventKind::SubOrchestrationInstanceFailed { .. } => "SubOrchestrationInstanceFailed",
            EventKind::TimerCreated { .. } => "TimerCreated",
            EventKind::TimerFired { .. } => "TimerFired",
            EventKind::EventRaised { .. } => "EventRaised",
            EventKind::EventSent { .. } => "EventSent",
            EventKind::ExecutionSuspended { .. } => "ExecutionSuspended",
            EventKind::ExecutionResumed { .. } => "ExecutionResumed",
            EventKind::ExecutionTerminated { .. } => "ExecutionTerminated",
            EventKind::ContinueAsNew { .. } => "ContinueAsNew",
            EventKind::ExecutionCompleted { .. } => "ExecutionCompleted",
            EventKind::OrchestratorCompleted => "OrchestratorCompleted",
            EventKind::ExecutionRewound { .. } => "ExecutionRewound",
            EventKind::EntityOperationSignaled { .. } => "EntityOperationSignaled",
            EventKind::EntityOperationCalled { .. } => "EntityOperationCalled",
            EventKind::EntityOperationCompleted { .. } => "EntityOperationCompleted",
            EventKind::EntityOperationFailed { .. } => "EntityOperationFailed",
            EventKind::EntityLockRequested { .. } => "EntityLockRequested",
            EventKind::EntityLockGranted { .. } => "EntityLockGranted",
            EventKind::EntityUnlockSent { .. } => "EntityUnlockSent",
            EventKind::FaultInjected { .. } => "FaultInjected",
        }
    }

    /// The activity, orchestration or event name this event is about, if it has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            EventKind::ExecutionStarted { name, .. }
            | EventKind::TaskScheduled { name, .. }
            | EventKind::SubOrchestrationInstanceCreated { name, .. }
            | EventKind::EventRaised { name, .. }
            | EventKind::EventSent { name, .. } => Some(name),
            EventKind::EntityOperationSignaled { operation, .. }
            | EventKind::EntityOperationCalled { operation, .. } => Some(operation),
            _ => None,
        }
    }

    /// The request or critical section an entity answer belongs to: the `request_id` of
    /// `EntityOperationCompleted`/`EntityOperationFailed`, the `critical_section_id` of
    /// `EntityLockGranted`. Entity answers are matched by these ids, not by sequence ids.
    pub fn answers_entity_request(&self) -> Option<&str> {
        match self {
            EventKind::EntityOperationCompleted { request_id, .. }
            | EventKind::EntityOperationFailed { request_id, .. } => Some(request_id),
            EventKind::EntityLockGranted {
                critical_section_id,
            } => Some(critical_section_id),
            _ => None,
        }
    }

    /// The sequence id of the task this event completes, for completion events.
    pub fn completes_task(&self) -> Option<i32> {
        match self {
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
            EventKind::TimerFired { timer_id, .. } => Some(*timer_id),
            _ => None,
        }
    }

    /// The failure this event carries, if it is a failure.
    pub fn failure(&self) -> Option<&FailureDetails> {
        match self {
            EventKind::TaskFailed { failure, .. }
            | EventKind::SubOrchestrationInstanceFailed { failure, .. }
            | EventKind::EntityOperationFailed { failure, .. } => Some(failure),
            EventKind::ExecutionCompleted { failure, .. } => failure.as_ref(),
            _ => None,
        }
    }
}

/// The runtime status of an instance (docs/semantics.md#history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RuntimeStatus {
    /// Created, not yet run.
    Pending,
    /// Running (waiting for work or events counts as running).
    Running,
    /// Suspended: only resume and terminate are processed.
    Suspended,
    /// Transient: the execution ended and a new one is starting.
    ContinuedAsNew,
    /// Terminal: returned an output.
    Completed,
    /// Terminal: ended with a failure.
    Failed,
    /// Terminal: cancelled.
    Canceled,
    /// Terminal: terminated by request.
    Terminated,
}

impl RuntimeStatus {
    /// Completed, Failed, Canceled and Terminated are terminal: nothing more happens.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RuntimeStatus::Completed
                | RuntimeStatus::Failed
                | RuntimeStatus::Canceled
                | RuntimeStatus::Terminated
        )
    }

    /// The Durable Functions spelling, e.g. `Completed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeStatus::Pending => "Pending",
            RuntimeStatus::Running => "Running",
            RuntimeStatus::Suspended => "Suspended",
            RuntimeStatus::ContinuedAsNew => "ContinuedAsNew",
            RuntimeStatus::Completed => "Completed",
            RuntimeStatus::Failed => "Failed",
            RuntimeStatus::Canceled => "Canceled",
            RuntimeStatus::Terminated => "Terminated",
        }
    }
}

/// The earliest time a history can hold. Histories and the emulator's store write times as
/// RFC 3339, which has four-digit years, so years 1 to 9999 are all there is.
pub const EARLIEST_TIME: DateTime<Utc> = calendar_time(1, 1, 1, 0, 0, 0, 0);

/// The latest time a history can hold (see [`EARLIEST_TIME`]).
pub const LATEST_TIME: DateTime<Utc> = calendar_time(9999, 12, 31, 23, 59, 59, 999_999_999);

const fn calendar_time(
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nano: u32,
) -> DateTime<Utc> {
    let Some(date) = chrono::NaiveDate::from_ymd_opt(year, month, day) else {
        panic!("a calendar date of the time range is valid");
    };
    let Some(time) = chrono::NaiveTime::from_hms_nano_opt(hour, minute, second, nano) else {
        panic!("a clock time of the time range is valid");
    };
    chrono::NaiveDateTime::new(date, time).and_utc()
}

/// A time outside [`EARLIEST_TIME`]..=[`LATEST_TIME`]: no history can record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{time} is outside the times a history can hold (years 1 to 9999; RFC 3339 has four-digit years)"
)]
pub struct TimeOutOfRange {
    /// The time asked for.
    pub time: DateTime<Utc>,
}

/// `time` if a history can hold it.
pub fn check_time(time: DateTime<Utc>) -> Result<DateTime<Utc>, TimeOutOfRange> {
    if (EARLIEST_TIME..=LATEST_TIME).contains(&time) {
        Ok(time)
    } else {
        Err(TimeOutOfRange { time })
    }
}

impl HistoryEvent {
    /// Every time this event carries: its timestamp and, for timers and scheduled starts, the
    /// time they name.
    pub fn times(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let named = match &self.kind {
            EventKind::TimerCreated { fire_at } | EventKind::TimerFired { fire_at, .. } => {
                Some(*fire_at)
            }
            EventKind::ExecutionStarted {
                scheduled_start, ..
            } => *scheduled_start,
            EventKind::EntityOperationSignaled { scheduled_time, .. }
            | EventKind::EntityOperationCalled { scheduled_time, .. } => *scheduled_time,
            _ => None,
        };
        std::iter::once(self.timestamp).chain(named)
    }
}

impl std::fmt::Display for RuntimeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RuntimeStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const ALL: [RuntimeStatus; 8] = [
            RuntimeStatus::Pending,
            RuntimeStatus::Running,
            RuntimeStatus::Suspended,
            RuntimeStatus::ContinuedAsNew,
            RuntimeStatus::Completed,
            RuntimeStatus::Failed,
            RuntimeStatus::Canceled,
            RuntimeStatus::Terminated,
        ];
        ALL.into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!(
                    "unknown runtime status '{text}'; expected one of {}",
                    ALL.map(RuntimeStatus::as_str).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_json_with_the_durable_task_event_names() {
        let event = HistoryEvent {
            event_id: 3,
            timestamp: DateTime::UNIX_EPOCH,
            kind: EventKind::TaskScheduled {
                name: "Charge".into(),
                input: serde_json::json!({"amount": 5}),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["eventType"], "TaskScheduled");
        assert_eq!(json["eventId"], 3);
        let back: HistoryEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn only_four_digit_years_are_times_a_history_can_hold() {
        assert_eq!(EARLIEST_TIME.to_rfc3339(), "0001-01-01T00:00:00+00:00");
        assert_eq!(
            LATEST_TIME.to_rfc3339(),
            "9999-12-31T23:59:59.999999999+00:00"
        );
        assert!(check_time(LATEST_TIME).is_ok());
        assert!(check_time(EARLIEST_TIME).is_ok());
        let beyond = LATEST_TIME + chrono::TimeDelta::nanoseconds(1);
        let error = check_time(beyond).unwrap_err();
        assert!(error.to_string().contains("years 1 to 9999"), "{error}");
        assert!(check_time(EARLIEST_TIME - chrono::TimeDelta::nanoseconds(1)).is_err());
        assert!(check_time(DateTime::<Utc>::MAX_UTC).is_err());
    }

    #[test]
    fn an_event_names_its_timestamp_and_the_time_it_schedules() {
        let at = DateTime::UNIX_EPOCH;
        let fire_at = at + chrono::TimeDelta::hours(1);
        let event = HistoryEvent {
            event_id: 2,
            timestamp: at,
            kind: EventKind::TimerCreated { fire_at },
        };
        assert_eq!(event.times().collect::<Vec<_>>(), vec![at, fire_at]);
    }
}
