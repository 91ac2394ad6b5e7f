//! The wire types of the plugin boundary: what the host sends and what the plugin answers
//! (docs/semantics.md#episodes). Serialized as JSON; versioned by [`crate::ffi::ABI_VERSION`].
//!
//! Owns the episode request/response, actions, the structured nondeterminism diff, replay-safe log
//! lines, activity requests/outcomes and the plugin manifest. Knows nothing of how an episode is
//! executed (see `executor`) or how bytes cross the C ABI (see `ffi`).

use crate::failure::FailureDetails;
use crate::history::{EventKind, HistoryEvent, RuntimeStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// One episode's input: the history so far and what is new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchestratorRequest {
    /// The instance.
    pub instance_id: String,
    /// The current execution of the instance.
    pub execution_id: String,
    /// How many events the execution's history had before this episode.
    pub history_len: usize,
    /// The history before this episode: either all `history_len` events (full replay) or none, in
    /// which case the plugin continues its cached session and answers `needs_history` on a miss.
    #[serde(default)]
    pub past_events: Vec<HistoryEvent>,
    /// The events of this episode, starting with `OrchestratorStarted`.
    pub new_events: Vec<HistoryEvent>,
    /// Also report log lines written while replaying (marked as such), for replay debugging.
    #[serde(default)]
    pub include_replay_logs: bool,
    /// Most durable calls the code may have outstanding (made and not yet recorded) in this
    /// episode; beyond it the orchestration fails with `ActionLimitExceeded`. `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_actions: Option<u32>,
}

/// One episode's output.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchestratorResponse {
    /// Set when `past_events` was empty and the plugin has no matching session: send the request
    /// again with the full history. Nothing else in the response is meaningful then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_history: bool,
    /// Every action history has not confirmed yet, in sequence order. The host records each as a
    /// history event with `event_id = action.id`, then appends `OrchestratorCompleted`.
    pub actions: Vec<Action>,
    /// The orchestration's custom status after this episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_status: Option<Value>,
    /// Replay-safe log lines written during the episode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    /// Set when replay disagreed with history; the actions then fail the orchestration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nondeterminism: Option<NonDeterminism>,
    /// Completion events that matched no task of the code (ignored, per
    /// docs/semantics.md#episodes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// External events the code waits for after this episode (the next event of each name goes
    /// to a wait of the code, not to the buffer): names as the code spelled them, once each
    /// (compared case-insensitively), sorted. History cannot tell (a wait records no event), so
    /// hosts and front ends learn it here; a plugin built before this field sends none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaited_events: Vec<String>,
    /// A rewind's answer (the proto's `RewindOrchestrationAction`): the failed execution's
    /// history as the worker rewrote it, for the host to run on as a new execution. Only remote
    /// workers send it, to an episode whose new events are `OrchestratorStarted`,
    /// `ExecutionRewound`; the SDK's plugins never do (the host rewrites their history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewound_history: Option<Vec<HistoryEvent>>,
}

/// A durable call the orchestrator made, waiting to be recorded and carried out by the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    /// The call's sequence id; its history event gets this `event_id`.
    pub id: i32,
    /// What to do.
    #[serde(flatten)]
    pub kind: ActionKind,
}

/// What an [`Action`] asks the host to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action")]
pub enum ActionKind {
    /// Run an activity (recorded as `TaskScheduled`).
    #[serde(rename_all = "camelCase")]
    ScheduleTask {
        /// Activity name.
        name: String,
        /// Activity input (JSON).
        input: Value,
    },
    /// Start a durable timer (recorded as `TimerCreated`).
    #[serde(rename_all = "camelCase")]
    CreateTimer {
        /// When it fires.
        fire_at: DateTime<Utc>,
    },
    /// Start a sub-orchestration (recorded as `SubOrchestrationInstanceCreated`).
    #[serde(rename_all = "camelCase")]
    CreateSubOrchestration {
        /// Orchestration name.
        name: String,
        /// The child's instance id.
        instance_id: String,
        /// The child's input (JSON).
        input: Value,
    },
    /// Deliver an event to another instance (recorded as `EventSent`).
    #[serde(rename_all = "camelCase")]
    SendEvent {
        /// Target instance id.
        instance_id: String,
        /// Event name.
        name: String,
        /// Event payload (JSON).
        input: Value,
    },
    /// Signal an entity: a one-way operation (recorded as `EntityOperationSignaled`).
    #[serde(rename_all = "camelCase")]
    SignalEntity {
        /// Unique per request (a deterministic guid).
        request_id: String,
        /// The entity, `@{name}@{key}`.
        target_instance_id: String,
        /// The operation name.
        operation: String,
        /// The operation's input (JSON).
        input: Value,
        /// Deliver no earlier than this time, if set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_time: Option<DateTime<Utc>>,
    },
    /// Call an entity and await its answer (recorded as `EntityOperationCalled`).
    #[serde(rename_all = "camelCase")]
    CallEntity {
        /// Unique per request (a deterministic guid); the answer carries it back.
        request_id: String,
        /// The entity, `@{name}@{key}`.
        target_instance_id: String,
        /// The operation name.
        operation: String,
        /// The operation's input (JSON).
        input: Value,
        /// The calling instance (where the answer goes).
        parent_instance_id: String,
        /// The calling execution.
        parent_execution_id: String,
    },
    /// Lock entities for a critical section (recorded as `EntityLockRequested`).
    #[serde(rename_all = "camelCase")]
    LockEntities {
        /// Unique per critical section (a deterministic guid).
        critical_section_id: String,
        /// The entities, sorted and without duplicates.
        lock_set: Vec<String>,
        /// The orchestration that will hold the lock.
        parent_instance_id: String,
    },
    /// Release one entity at the end of a critical section (recorded as `EntityUnlockSent`).
    #[serde(rename_all = "camelCase")]
    UnlockEntity {
        /// The critical section that ends.
        critical_section_id: String,
        /// The entity released.
        target_instance_id: String,
        /// The orchestration that held the lock.
        parent_instance_id: String,
    },
    /// End the execution (recorded as `ExecutionCompleted`, or `ContinueAsNew`).
    #[serde(rename_all = "camelCase")]
    CompleteOrchestration {
        /// Completed, Failed, Terminated or ContinuedAsNew.
        status: RuntimeStatus,
        /// The output; for ContinuedAsNew, the next execution's input.
        result: Value,
        /// The failure, when Failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<FailureDetails>,
        /// For ContinuedAsNew: external events not yet consumed that the next execution keeps.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        carryover_events: Vec<HistoryEvent>,
    },
}

impl ActionKind {
    /// The history event that records this action (`CompleteOrchestration` with ContinuedAsNew
    /// becomes `ContinueAsNew`; carried-over events are the host's to deliver).
    pub fn to_event_kind(&self) -> EventKind {
        match self {
            ActionKind::ScheduleTask { name, input } => EventKind::TaskScheduled {
                name: name.clone(),
                input: input.clone(),
            },
            ActionKind::CreateTimer { fire_at } => EventKind::TimerCreated { fire_at: *fire_at },
            ActionKind::CreateSubOrchestration {
                name,
                instance_id,
                input,
            } => EventKind::SubOrchestrationInstanceCreated {
                name: name.clone(),
                instance_id: instance_id.clone(),
                input: input.clone(),
            },
            ActionKind::SendEvent {
                instance_id,
                name,
                input,
            } => EventKind::EventSent {
                instance_id: instance_id.clone(),
                name: name.clone(),
                input: input.clone(),
            },
            ActionKind::SignalEntity {
                request_id,
                target_instance_id,
                operation,
                input,
                scheduled_time,
            } => EventKind::EntityOperationSignaled {
                request_id: request_id.clone(),
                operation: operation.clone(),
                input: input.clone(),
                target_instance_id: target_instance_id.clone(),
                scheduled_time: *scheduled_time,
            },
            ActionKind::CallEntity {
                request_id,
                target_instance_id,
                operation,
                input,
                parent_instance_id,
                parent_execution_id,
            } => EventKind::EntityOperationCalled {
                request_id: request_id.clone(),
                operation: operation.clone(),
                input: input.clone(),
                target_instance_id: target_instance_id.clone(),
                scheduled_time: None,
                parent_instance_id: parent_instance_id.clone(),
                parent_execution_id: parent_execution_id.clone(),
            },
            ActionKind::LockEntities {
                critical_section_id,
                lock_set,
                parent_instance_id,
            } => EventKind::EntityLockRequested {
                critical_section_id: critical_section_id.clone(),
                lock_set: lock_set.clone(),
                position: 0,
                parent_instance_id: parent_instance_id.clone(),
            },
            ActionKind::UnlockEntity {
                critical_section_id,
                target_instance_id,
                parent_instance_id,
            } => EventKind::EntityUnlockSent {
                critical_section_id: critical_section_id.clone(),
                parent_instance_id: parent_instance_id.clone(),
                target_instance_id: target_instance_id.clone(),
            },
            ActionKind::CompleteOrchestration {
                status: RuntimeStatus::ContinuedAsNew,
                result,
                ..
            } => EventKind::ContinueAsNew {
                input: result.clone(),
            },
            ActionKind::CompleteOrchestration {
                status,
                result,
                failure,
                ..
            } => EventKind::ExecutionCompleted {
                status: *status,
                result: result.clone(),
                failure: failure.clone(),
            },
        }
    }

    /// The kind and name used when comparing this action with history.
    pub fn call(&self) -> DurableCall {
        match self {
            ActionKind::ScheduleTask { name, .. } => DurableCall::new(CallKind::Activity, name),
            ActionKind::CreateTimer { .. } => DurableCall::new(CallKind::Timer, ""),
            ActionKind::CreateSubOrchestration { name, .. } => {
                DurableCall::new(CallKind::SubOrchestration, name)
            }
            ActionKind::SendEvent { name, .. } => DurableCall::new(CallKind::SendEvent, name),
            ActionKind::CompleteOrchestration { status, .. } => {
                DurableCall::new(CallKind::Complete, status.as_str())
            }
            ActionKind::SignalEntity {
                target_instance_id,
                operation,
                ..
            } => DurableCall::entity(CallKind::EntitySignal, target_instance_id, operation),
            ActionKind::CallEntity {
                target_instance_id,
                operation,
                ..
            } => DurableCall::entity(CallKind::EntityCall, target_instance_id, operation),
            ActionKind::LockEntities { lock_set, .. } => {
                DurableCall::new(CallKind::EntityLock, lock_set.join(", "))
            }
            ActionKind::UnlockEntity {
                target_instance_id, ..
            } => DurableCall::new(CallKind::EntityUnlock, target_instance_id),
        }
    }
}

/// The kinds of durable call that take a sequence id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CallKind {
    /// `call_activity` (history: TaskScheduled).
    Activity,
    /// `create_timer` (history: TimerCreated).
    Timer,
    /// `call_sub_orchestrator` (history: SubOrchestrationInstanceCreated).
    SubOrchestration,
    /// `send_event` (history: EventSent).
    SendEvent,
    /// Completing the orchestration (history: ExecutionCompleted / ContinueAsNew).
    Complete,
    /// `signal_entity` (history: EntityOperationSignaled).
    EntitySignal,
    /// `call_entity` (history: EntityOperationCalled).
    EntityCall,
    /// `lock_entities` (history: EntityLockRequested).
    EntityLock,
    /// The end of a critical section, one per locked entity (history: EntityUnlockSent).
    EntityUnlock,
}

impl CallKind {
    /// The SDK method that makes this kind of call, as the diff shows it.
    pub fn method(self) -> &'static str {
        match self {
            CallKind::Activity => "call_activity",
            CallKind::Timer => "create_timer",
            CallKind::SubOrchestration => "call_sub_orchestrator",
            CallKind::SendEvent => "send_event",
            CallKind::Complete => "complete",
            CallKind::EntitySignal => "signal_entity",
            CallKind::EntityCall => "call_entity",
            CallKind::EntityLock => "lock_entities",
            CallKind::EntityUnlock => "unlock (end of the critical section)",
        }
    }

    /// The history event that records this kind of call.
    pub fn event_name(self) -> &'static str {
        match self {
            CallKind::Activity => "TaskScheduled",
            CallKind::Timer => "TimerCreated",
            CallKind::SubOrchestration => "SubOrchestrationInstanceCreated",
            CallKind::SendEvent => "EventSent",
            CallKind::Complete => "ExecutionCompleted",
            CallKind::EntitySignal => "EntityOperationSignaled",
            CallKind::EntityCall => "EntityOperationCalled",
            CallKind::EntityLock => "EntityLockRequested",
            CallKind::EntityUnlock => "EntityUnlockSent",
        }
    }
}

/// A durable call's kind and name: what the nondeterminism diff compares.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DurableCall {
    /// The kind of call.
    pub kind: CallKind,
    /// Activity/orchestration/event name; empty for timers.
    pub name: String,
}

impl DurableCall {
    /// A call of `kind` named `name`.
    pub fn new(kind: CallKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }

    /// An entity call or signal: named `<entity id> <operation>`, e.g. `@counter@a add`.
    pub fn entity(kind: CallKind, target_instance_id: &str, operation: &str) -> Self {
        Self::new(kind, format!("{target_instance_id} {operation}"))
    }

    /// The call recorded by a history event, if the event records a call.
    pub fn from_event(kind: &EventKind) -> Option<Self> {
        Some(match kind {
            EventKind::TaskScheduled { name, .. } => Self::new(CallKind::Activity, name),
            EventKind::TimerCreated { .. } => Self::new(CallKind::Timer, ""),
            EventKind::SubOrchestrationInstanceCreated { name, .. } => {
                Self::new(CallKind::SubOrchestration, name)
            }
            EventKind::EventSent { name, .. } => Self::new(CallKind::SendEvent, name),
            EventKind::EntityOperationSignaled {
                target_instance_id,
                operation,
                ..
            } => Self::entity(CallKind::EntitySignal, target_instance_id, operation),
            EventKind::EntityOperationCalled {
                target_instance_id,
                operation,
                ..
            } => Self::entity(CallKind::EntityCall, target_instance_id, operation),
            EventKind::EntityLockRequested { lock_set, .. } => {
                Self::new(CallKind::EntityLock, lock_set.join(", "))
            }
            EventKind::EntityUnlockSent {
                target_instance_id, ..
            } => Self::new(CallKind::EntityUnlock, target_instance_id),
            _ => return None,
        })
    }
}

impl fmt::Display for DurableCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            CallKind::Timer => write!(f, "{} ({})", self.kind.method(), self.kind.event_name()),
            _ => write!(
                f,
                "{} \"{}\" ({})",
                self.kind.method(),
                self.name,
                self.kind.event_name()
            ),
        }
    }
}

/// A structured difference between history and what the code does on replay
/// (docs/semantics.md#nondeterminism, **Ours**), so front ends can show both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NonDeterminism {
    /// The sequence id where history and code disagree.
    pub sequence_id: i32,
    /// What history recorded at this id (`None`: history has no call with this id).
    pub expected: Option<DurableCall>,
    /// What the code does at this id (`None`: the code never makes this call).
    pub actual: Option<DurableCall>,
}

impl NonDeterminism {
    /// The failure the orchestration ends with.
    pub fn to_failure_details(&self) -> FailureDetails {
        FailureDetails::new(crate::failure::NON_DETERMINISM, self.to_string()).non_retriable()
    }
}

impl fmt::Display for NonDeterminism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.sequence_id;
        match (&self.expected, &self.actual) {
            (Some(expected), Some(actual)) => write!(
                f,
                "history has {expected} as call #{id}, but the code now makes {actual} as call #{id}"
            ),
            (Some(expected), None) => write!(
                f,
                "history has {expected} as call #{id}, but the code never makes call #{id}"
            ),
            (None, Some(actual)) => write!(
                f,
                "the code makes {actual} as call #{id}, but history has no call #{id} at this point"
            ),
            (None, None) => write!(f, "history and code disagree at call #{id}"),
        }
    }
}

/// Severity of a replay-safe log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LogLevel {
    /// Fine detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected but handled.
    Warn,
    /// Something failed.
    Error,
}

/// A line an orchestrator logged through `OrchestrationContext::log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// The text.
    pub message: String,
    /// Written while replaying history (only reported with `include_replay_logs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaying: bool,
    /// The orchestrator's time when it was written.
    pub timestamp: DateTime<Utc>,
}

/// A request to run one activity attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityRequest {
    /// Activity name.
    pub name: String,
    /// Activity input (JSON).
    #[serde(default)]
    pub input: Value,
    /// The instance that scheduled it.
    pub instance_id: String,
    /// The sequence id of its `TaskScheduled` event.
    pub task_id: i32,
    /// Which delivery of this task this is (1 for the first; redeliveries count up).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

/// The outcome of one activity attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum ActivityOutcome {
    /// The activity returned a result.
    Completed {
        /// The result (JSON).
        result: Value,
    },
    /// The activity returned an error or panicked.
    Failed {
        /// Why.
        failure: FailureDetails,
    },
}

/// What a plugin contains, read by the host right after the ABI check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The plugin crate's name.
    pub crate_name: String,
    /// The plugin crate's version.
    pub crate_version: String,
    /// The `durable-sdk` version it was built with.
    pub sdk_version: String,
    /// Unique per compilation of the plugin crate.
    pub build_id: String,
    /// Registered orchestrator names, sorted.
    pub orchestrators: Vec<String>,
    /// Registered activity names, sorted.
    pub activities: Vec<String>,
    /// What the plugin says about its orchestrators (description, example input), by name; only
    /// those that declared something. Absent from older plugins, so it defaults to empty, and an
    /// older host ignores it: adding it did not change the ABI version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub orchestrator_info: BTreeMap<String, OrchestratorInfo>,
    /// Registered entity names, lower-cased and sorted (entity names are case-insensitive:
    /// `@Counter@a` and `@counter@a` are one entity). Absent from older plugins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
}

/// What an orchestrator's registration says about it for people: a one-line description and an
/// example input (the UI's start form pre-fills it). Both optional.
///
/// ```
/// use durable_sdk::protocol::OrchestratorInfo;
/// use serde_json::json;
///
/// let info = OrchestratorInfo::new("Says hello to three cities").example(json!(null));
/// assert_eq!(info.description.as_deref(), Some("Says hello to three cities"));
/// assert_eq!(info.example, Some(json!(null)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchestratorInfo {
    /// One line: what the orchestration does (and, for one that is not meant to be started on its
    /// own, who starts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An input it runs with. `Some(Value::Null)` is an example too ("start it with null").
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_value"
    )]
    pub example: Option<Value>,
}

/// A present field is `Some`, even when it is `null` (plain `Option` would read `null` as absent,
/// and lose a null example).
fn present_value<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl OrchestratorInfo {
    /// Info with a description and no example.
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            description: Some(description.into()),
            example: None,
        }
    }

    /// The same info with `example` as its example input.
    #[must_use]
    pub fn example(mut self, example: Value) -> Self {
        self.example = Some(example);
        self
    }

    /// Whether it says nothing (then the manifest leaves it out).
    pub fn is_empty(&self) -> bool {
        self.description.is_none() && self.example.is_none()
    }
}

/// One batch of operations for one entity: the entity's state before the batch and the
/// operations to run, in arrival order (docs/semantics.md#entities). The plugin runs them one at
/// a time; an operation that fails leaves the state as it was before that operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityBatchRequest {
    /// The entity, `@{name}@{key}` (name lower-cased).
    pub instance_id: String,
    /// The entity's state before the batch (JSON); `None`: the entity has no state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// The operations, in the order they are run.
    pub operations: Vec<EntityOperationRequest>,
}

/// One operation of an [`EntityBatchRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityOperationRequest {
    /// Unique per request; the answer to a call carries it back.
    pub request_id: String,
    /// The operation name.
    pub operation: String,
    /// The operation's input (JSON; null when none).
    #[serde(default)]
    pub input: Value,
    /// The orchestration waiting for the answer; `None` for a signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<EntityCaller>,
}

/// The orchestration execution an entity call answers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityCaller {
    /// The calling instance.
    pub instance_id: String,
    /// Its execution.
    pub execution_id: String,
}

/// What running an [`EntityBatchRequest`] did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityBatchResult {
    /// One result per operation, in the request's order. Shorter than the request only when
    /// `failure` is set: the operations without a result did not run and are run again.
    pub results: Vec<EntityOperationResult>,
    /// What the successful operations asked for (signals, orchestration starts), in order. A
    /// failed operation's actions are dropped with its state changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<EntityAction>,
    /// The entity's state after the batch; `None`: no state (deleted, or never set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// The batch as a whole failed (not one operation): nothing of it is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDetails>,
}

/// The outcome of one entity operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum EntityOperationResult {
    /// The operation returned.
    Completed {
        /// Its result (JSON).
        #[serde(default)]
        result: Value,
    },
    /// The operation failed; the state is as it was before it.
    Failed {
        /// Why.
        failure: FailureDetails,
    },
}

/// Something an entity operation asked the host to do once the operation succeeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum EntityAction {
    /// Signal an entity (possibly itself).
    #[serde(rename_all = "camelCase")]
    SignalEntity {
        /// The entity, `@{name}@{key}`.
        instance_id: String,
        /// The operation name.
        operation: String,
        /// The operation's input (JSON).
        #[serde(default)]
        input: Value,
        /// Deliver no earlier than this time, if set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_time: Option<DateTime<Utc>>,
    },
    /// Start an orchestration.
    #[serde(rename_all = "camelCase")]
    StartOrchestration {
        /// The orchestration name.
        name: String,
        /// Its instance id; `None`: the host picks one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance_id: Option<String>,
        /// Its input (JSON).
        #[serde(default)]
        input: Value,
        /// Start no earlier than this time, if set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_time: Option<DateTime<Utc>>,
    },
}
