//! The mapping between the wire types (`crate::proto`) and the SDK's types (`durable_sdk`):
//! history events, actions, episode requests and responses, failures, statuses, payloads and
//! instance records.
//!
//! Payloads: the wire carries JSON text in a `StringValue`; the SDK holds `serde_json::Value`.
//! Absent (and empty text, which the official SDKs send for "no result", e.g. Python's failure
//! path) is `Null`, and `Null` is sent as absent. Text that is not JSON is refused with a
//! [`MappingError::NotJson`] naming the field: every official SDK's default data converter writes
//! JSON, the store keeps JSON, and guessing (wrapping the text as a JSON string) would hand a
//! different value back to the code that wrote it.
//!
//! A `rewindOrchestration` action is not a durable call: it is the whole answer to a rewind
//! episode, mapped to `OrchestratorResponse::rewound_history`.
//!
//! Entities (docs/semantics.md#entities): the entity history events are the proto's events 23-29;
//! an orchestration's entity actions travel as `sendEntityMessage` (whose message is the event
//! that records the action); entity ids are checked and written canonically (`@name@key`, name
//! lower-cased). A batch goes to a worker as the newer `EntityRequest` (operations as
//! `entityOperationSignaled`/`entityOperationCalled` events) or the older `EntityBatchRequest`;
//! its answer, an `EntityBatchResult`, comes back as the SDK's [`EntityBatchResult`].
//!
//! Dropped on the way in, because the engine has no place for them yet: versions and tags of
//! tasks and sub-orchestrations, trace contexts, failure `properties`, `numEventsProcessed`, the
//! `operationInfos` and `requiresState` of entity answers and a call's `scheduledTime`.
//! durable-emu's own `FaultInjected` events travel as a `genericEvent` whose data is
//! `{"faultInjected": {...}}`, so SDKs (which ignore generic events) replay them harmlessly.
//!
//! Knows nothing of the server, the engine's core or how work is dispatched.

use crate::proto;
use chrono::{DateTime, Utc};
use durable_emu_engine::InstanceRecord;
use durable_sdk::history::{EventKind, HistoryEvent, ParentInstance, RuntimeStatus};
use durable_sdk::protocol::{
    Action, ActionKind, ActivityOutcome, EntityAction, EntityBatchRequest, EntityBatchResult,
    EntityCaller, EntityOperationRequest, EntityOperationResult, OrchestratorRequest,
    OrchestratorResponse,
};
use durable_sdk::{EntityId, FailureDetails};
use proto::history_event::EventType;
use proto::orchestrator_action::OrchestratorActionType;
use serde_json::Value;

/// Why a wire message could not be turned into the SDK's types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A payload field held text that is not JSON.
    #[error(
        "{field} is not JSON ({error}); durable-emu stores payloads as JSON, so send JSON text (the SDKs' default data converter does)"
    )]
    NotJson {
        /// Which field, e.g. `CreateInstanceRequest.input`.
        field: &'static str,
        /// The parser's complaint.
        error: String,
    },
    /// A required field was missing.
    #[error("{field} is missing; it is required")]
    Missing {
        /// Which field.
        field: &'static str,
    },
    /// A timestamp outside what a history can hold, or not a valid time.
    #[error("{field} is not a time a history can hold (years 1 to 9999): {detail}")]
    BadTime {
        /// Which field.
        field: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// An enum value this version of the proto does not know.
    #[error("{field} has the unknown value {value}")]
    UnknownEnum {
        /// Which field.
        field: &'static str,
        /// The number sent.
        value: i32,
    },
    /// A field that must name an entity (`@name@key`) does not.
    #[error("{field} is not an entity id: {error}")]
    InvalidEntityId {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        error: String,
    },
    /// A message durable-emu does not handle yet.
    #[error("{what} is not supported by durable-emu yet: {why}")]
    Unsupported {
        /// What was sent.
        what: &'static str,
        /// Why, and what to do.
        why: &'static str,
    },
}

// ---------------------------------------------------------------------------------------------
// Payloads, times, statuses, failures
// ---------------------------------------------------------------------------------------------

/// A JSON value as the wire carries it: `Null` is absent.
pub fn payload_to_wire(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A wire payload as JSON: absent or empty text is `Null`; other text must be JSON.
pub fn payload_from_wire(field: &'static str, text: Option<&str>) -> Result<Value, MappingError> {
    match text {
        None => Ok(Value::Null),
        Some(text) if text.trim().is_empty() => Ok(Value::Null),
        Some(text) => serde_json::from_str(text).map_err(|error| MappingError::NotJson {
            field,
            error: error.to_string(),
        }),
    }
}

/// A time as the wire carries it.
pub fn time_to_wire(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        // A chrono time's sub-second part is below 2e9 (leap seconds included), so it fits.
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(i32::MAX),
    }
}

/// A wire time, checked against what a history can hold.
pub fn time_from_wire(
    field: &'static str,
    time: &prost_types::Timestamp,
) -> Result<DateTime<Utc>, MappingError> {
    let nanos = u32::try_from(time.nanos).map_err(|_| MappingError::BadTime {
        field,
        detail: format!("negative nanos {}", time.nanos),
    })?;
    let at = DateTime::<Utc>::from_timestamp(time.seconds, nanos).ok_or_else(|| {
        MappingError::BadTime {
            field,
            detail: format!("{}s {}ns is out of range", time.seconds, time.nanos),
        }
    })?;
    durable_sdk::history::check_time(at).map_err(|error| MappingError::BadTime {
        field,
        detail: error.to_string(),
    })
}

fn required_time(
    field: &'static str,
    time: Option<&prost_types::Timestamp>,
) -> Result<DateTime<Utc>, MappingError> {
    time_from_wire(field, time.ok_or(MappingError::Missing { field })?)
}

fn optional_time(
    field: &'static str,
    time: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, MappingError> {
    time.map(|time| time_from_wire(field, time)).transpose()
}

/// A runtime status as the wire's enum.
pub fn status_to_wire(status: RuntimeStatus) -> proto::OrchestrationStatus {
    use proto::OrchestrationStatus as W;
    match status {
        RuntimeStatus::Pending => W::Pending,
        RuntimeStatus::Running => W::Running,
        RuntimeStatus::Suspended => W::Suspended,
        RuntimeStatus::ContinuedAsNew => W::ContinuedAsNew,
        RuntimeStatus::Completed => W::Completed,
        RuntimeStatus::Failed => W::Failed,
        RuntimeStatus::Canceled => W::Canceled,
        RuntimeStatus::Terminated => W::Terminated,
    }
}

/// The wire's status number as a runtime status.
pub fn status_from_wire(field: &'static str, value: i32) -> Result<RuntimeStatus, MappingError> {
    use proto::OrchestrationStatus as W;
    let wire = W::try_from(value).map_err(|_| MappingError::UnknownEnum { field, value })?;
    Ok(match wire {
        W::Pending => RuntimeStatus::Pending,
        W::Running => RuntimeStatus::Running,
        W::Suspended => RuntimeStatus::Suspended,
        W::ContinuedAsNew => RuntimeStatus::ContinuedAsNew,
        W::Completed => RuntimeStatus::Completed,
        W::Failed => RuntimeStatus::Failed,
        W::Canceled => RuntimeStatus::Canceled,
        W::Terminated => RuntimeStatus::Terminated,
    })
}

/// A failure and its chain as the wire carries it.
pub fn failure_to_wire(failure: &FailureDetails) -> proto::TaskFailureDetails {
    proto::TaskFailureDetails {
        error_type: failure.error_type.clone(),
        error_message: failure.error_message.clone(),
        stack_trace: failure.stack_trace.clone(),
        inner_failure: failure
            .inner_failure
            .as_deref()
            .map(|inner| Box::new(failure_to_wire(inner))),
        is_non_retriable: failure.is_non_retriable,
        properties: Default::default(),
    }
}

/// A wire failure and its chain (`properties` are dropped: the SDK's failure has none).
pub fn failure_from_wire(failure: &proto::TaskFailureDetails) -> FailureDetails {
    FailureDetails {
        error_type: failure.error_type.clone(),
        error_message: failure.error_message.clone(),
        stack_trace: failure.stack_trace.clone(),
        inner_failure: failure
            .inner_failure
            .as_deref()
            .map(|inner| Box::new(failure_from_wire(inner))),
        is_non_retriable: failure.is_non_retriable,
    }
}

fn instance_ref(instance_id: &str, execution_id: &str) -> proto::OrchestrationInstance {
    proto::OrchestrationInstance {
        instance_id: instance_id.to_string(),
        execution_id: Some(execution_id.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// History events
// ---------------------------------------------------------------------------------------------

/// The marker key of durable-emu's own events carried in a `genericEvent`.
const FAULT_INJECTED_KEY: &str = "faultInjected";

/// A history event as the wire carries it.
pub fn event_to_wire(event: &HistoryEvent) -> proto::HistoryEvent {
    let event_type = match &event.kind {
        EventKind::OrchestratorStarted => {
            EventType::OrchestratorStarted(proto::OrchestratorStartedEvent {})
        }
        EventKind::OrchestratorCompleted => {
            EventType::OrchestratorCompleted(proto::OrchestratorCompletedEvent {})
        }
        EventKind::ExecutionStarted {
            name,
            version,
            input,
            instance_id,
            execution_id,
            parent,
            scheduled_start,
        } => EventType::ExecutionStarted(proto::ExecutionStartedEvent {
            name: name.clone(),
            version: version.clone(),
            input: payload_to_wire(input),
            orchestration_instance: Some(instance_ref(instance_id, execution_id)),
            parent_instance: parent.as_ref().map(|parent| proto::ParentInstanceInfo {
                task_scheduled_id: parent.task_scheduled_id,
                name: Some(parent.name.clone()),
                version: None,
                orchestration_instance: Some(instance_ref(
                    &parent.instance_id,
                    &parent.execution_id,
                )),
            }),
            scheduled_start_timestamp: scheduled_start.map(time_to_wire),
            ..Default::default()
        }),
        EventKind::TaskScheduled { name, input } => {
            EventType::TaskScheduled(proto::TaskScheduledEvent {
                name: name.clone(),
                input: payload_to_wire(input),
                ..Default::default()
            })
        }
        EventKind::TaskCompleted {
            task_scheduled_id,
            result,
        } => EventType::TaskCompleted(proto::TaskCompletedEvent {
            task_scheduled_id: *task_scheduled_id,
            result: payload_to_wire(result),
        }),
        EventKind::TaskFailed {
            task_scheduled_id,
            failure,
        } => EventType::TaskFailed(proto::TaskFailedEvent {
            task_scheduled_id: *task_scheduled_id,
            failure_details: Some(failure_to_wire(failure)),
        }),
        EventKind::SubOrchestrationInstanceCreated {
            name,
            instance_id,
            input,
        } => EventType::SubOrchestrationInstanceCreated(
            proto::SubOrchestrationInstanceCreatedEvent {
                instance_id: instance_id.clone(),
                name: name.clone(),
                input: payload_to_wire(input),
                ..Default::default()
            },
        ),
        EventKind::SubOrchestrationInstanceCompleted {
            task_scheduled_id,
            result,
        } => EventType::SubOrchestrationInstanceCompleted(
            proto::SubOrchestrationInstanceCompletedEvent {
                task_scheduled_id: *task_scheduled_id,
                result: payload_to_wire(result),
            },
        ),
        EventKind::SubOrchestrationInstanceFailed {
            task_scheduled_id,
            failure,
        } => {
            EventType::SubOrchestrationInstanceFailed(proto::SubOrchestrationInstanceFailedEvent {
                task_scheduled_id: *task_scheduled_id,
                failure_details: Some(failure_to_wire(failure)),
            })
        }
        EventKind::TimerCreated { fire_at } => EventType::TimerCreated(proto::TimerCreatedEvent {
            fire_at: Some(time_to_wire(*fire_at)),
        }),
        EventKind::TimerFired { fire_at, timer_id } => {
            EventType::TimerFired(proto::TimerFiredEvent {
                fire_at: Some(time_to_wire(*fire_at)),
                timer_id: *timer_id,
            })
        }
        EventKind::EventRaised { name, input } => EventType::EventRaised(proto::EventRaisedEvent {
            name: name.clone(),
            input: payload_to_wire(input),
        }),
        EventKind::EventSent {
            instance_id,
            name,
            input,
        } => EventType::EventSent(proto::EventSentEvent {
            instance_id: instance_id.clone(),
            name: name.clone(),
            input: payload_to_wire(input),
        }),
        // Reasons are free text, not payloads: carried as they are.
        EventKind::ExecutionSuspended { reason } => {
            EventType::ExecutionSuspended(proto::ExecutionSuspendedEvent {
                input: reason.clone(),
            })
        }
        EventKind::ExecutionResumed { reason } => {
            EventType::ExecutionResumed(proto::ExecutionResumedEvent {
                input: reason.clone(),
            })
        }
        EventKind::ExecutionTerminated { reason, recurse } => {
            EventType::ExecutionTerminated(proto::ExecutionTerminatedEvent {
                input: payload_to_wire(reason),
                recurse: *recurse,
            })
        }
        EventKind::ContinueAsNew { input } => EventType::ContinueAsNew(proto::ContinueAsNewEvent {
            input: payload_to_wire(input),
        }),
        EventKind::ExecutionCompleted {
            status,
            result,
            failure,
        } => EventType::ExecutionCompleted(proto::ExecutionCompletedEvent {
            orchestration_status: status_to_wire(*status) as i32,
            result: payload_to_wire(result),
            failure_details: failure.as_ref().map(failure_to_wire),
        }),
        EventKind::ExecutionRewound { reason } => {
            EventType::ExecutionRewound(proto::ExecutionRewoundEvent {
                reason: reason.clone(),
                ..Default::default()
            })
        }
        EventKind::EntityOperationSignaled {
            request_id,
            operation,
            input,
            target_instance_id,
            scheduled_time,
        } => EventType::EntityOperationSignaled(signaled_to_wire(
            request_id,
            operation,
            input,
            target_instance_id,
            *scheduled_time,
        )),
        EventKind::EntityOperationCalled {
            request_id,
            operation,
            input,
            target_instance_id,
            scheduled_time,
            parent_instance_id,
            parent_execution_id,
        } => EventType::EntityOperationCalled(proto::EntityOperationCalledEvent {
            request_id: request_id.clone(),
            operation: operation.clone(),
            scheduled_time: scheduled_time.map(time_to_wire),
            input: payload_to_wire(input),
            parent_instance_id: Some(parent_instance_id.clone()),
            parent_execution_id: non_empty_wire(parent_execution_id),
            target_instance_id: Some(target_instance_id.clone()),
        }),
        EventKind::EntityOperationCompleted { request_id, output } => {
            EventType::EntityOperationCompleted(proto::EntityOperationCompletedEvent {
                request_id: request_id.clone(),
                output: payload_to_wire(output),
            })
        }
        EventKind::EntityOperationFailed {
            request_id,
            failure,
        } => EventType::EntityOperationFailed(proto::EntityOperationFailedEvent {
            request_id: request_id.clone(),
            failure_details: Some(failure_to_wire(failure)),
        }),
        EventKind::EntityLockRequested {
            critical_section_id,
            lock_set,
            position,
            parent_instance_id,
        } => EventType::EntityLockRequested(proto::EntityLockRequestedEvent {
            critical_section_id: critical_section_id.clone(),
            lock_set: lock_set.clone(),
            position: *position,
            parent_instance_id: Some(parent_instance_id.clone()),
        }),
        EventKind::EntityLockGranted {
            critical_section_id,
        } => EventType::EntityLockGranted(proto::EntityLockGrantedEvent {
            critical_section_id: critical_section_id.clone(),
        }),
        EventKind::EntityUnlockSent {
            critical_section_id,
            parent_instance_id,
            target_instance_id,
        } => EventType::EntityUnlockSent(unlock_to_wire(
            critical_section_id,
            parent_instance_id,
            target_instance_id,
        )),
        EventKind::FaultInjected { .. } => {
            let body = serde_json::to_value(&event.kind).unwrap_or(Value::Null);
            EventType::GenericEvent(proto::GenericEvent {
                data: Some(serde_json::json!({ FAULT_INJECTED_KEY: body }).to_string()),
            })
        }
    };
    proto::HistoryEvent {
        event_id: event.event_id,
        timestamp: Some(time_to_wire(event.timestamp)),
        event_type: Some(event_type),
    }
}

fn failure_field(
    field: &'static str,
    failure: Option<&proto::TaskFailureDetails>,
) -> Result<FailureDetails, MappingError> {
    failure
        .map(failure_from_wire)
        .ok_or(MappingError::Missing { field })
}

/// A wire history event in the SDK's types.
pub fn event_from_wire(event: &proto::HistoryEvent) -> Result<HistoryEvent, MappingError> {
    let timestamp = required_time("HistoryEvent.timestamp", event.timestamp.as_ref())?;
    let event_type = event.event_type.as_ref().ok_or(MappingError::Missing {
        field: "HistoryEvent.eventType",
    })?;
    let kind = match event_type {
        EventType::OrchestratorStarted(_) => EventKind::OrchestratorStarted,
        EventType::OrchestratorCompleted(_) => EventKind::OrchestratorCompleted,
        EventType::ExecutionStarted(started) => {
            let instance =
                started
                    .orchestration_instance
                    .as_ref()
                    .ok_or(MappingError::Missing {
                        field: "ExecutionStartedEvent.orchestrationInstance",
                    })?;
            let parent =
                match &started.parent_instance {
                    None => None,
                    Some(parent) => {
                        let of = parent.orchestration_instance.as_ref().ok_or(
                            MappingError::Missing {
                                field: "ParentInstanceInfo.orchestrationInstance",
                            },
                        )?;
                        Some(ParentInstance {
                            instance_id: of.instance_id.clone(),
                            execution_id: of.execution_id.clone().unwrap_or_default(),
                            name: parent.name.clone().unwrap_or_default(),
                            task_scheduled_id: parent.task_scheduled_id,
                        })
                    }
                };
            EventKind::ExecutionStarted {
                name: started.name.clone(),
                version: started.version.clone(),
                input: payload_from_wire("ExecutionStartedEvent.input", started.input.as_deref())?,
                instance_id: instance.instance_id.clone(),
                execution_id: instance.execution_id.clone().unwrap_or_default(),
                parent,
                scheduled_start: optional_time(
                    "ExecutionStartedEvent.scheduledStartTimestamp",
                    started.scheduled_start_timestamp.as_ref(),
                )?,
            }
        }
        EventType::TaskScheduled(scheduled) => EventKind::TaskScheduled {
            name: scheduled.name.clone(),
            input: payload_from_wire("TaskScheduledEvent.input", scheduled.input.as_deref())?,
        },
        EventType::TaskCompleted(completed) => EventKind::TaskCompleted {
            task_scheduled_id: completed.task_scheduled_id,
            result: payload_from_wire("TaskCompletedEvent.result", completed.result.as_deref())?,
        },
        EventType::TaskFailed(failed) => EventKind::TaskFailed {
            task_scheduled_id: failed.task_scheduled_id,
            failure: failure_field(
                "TaskFailedEvent.failureDetails",
                failed.failure_details.as_ref(),
            )?,
        },
        EventType::SubOrchestrationInstanceCreated(created) => {
            EventKind::SubOrchestrationInstanceCreated {
                name: created.name.clone(),
                instance_id: created.instance_id.clone(),
                input: payload_from_wire(
                    "SubOrchestrationInstanceCreatedEvent.input",
                    created.input.as_deref(),
                )?,
            }
        }
        EventType::SubOrchestrationInstanceCompleted(completed) => {
            EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id: completed.task_scheduled_id,
                result: payload_from_wire(
                    "SubOrchestrationInstanceCompletedEvent.result",
                    completed.result.as_deref(),
                )?,
            }
        }
        EventType::SubOrchestrationInstanceFailed(failed) => {
            EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id: failed.task_scheduled_id,
                failure: failure_field(
                    "SubOrchestrationInstanceFailedEvent.failureDetails",
                    failed.failure_details.as_ref(),
                )?,
            }
        }
        EventType::TimerCreated(timer) => EventKind::TimerCreated {
            fire_at: required_time("TimerCreatedEvent.fireAt", timer.fire_at.as_ref())?,
        },
        EventType::TimerFired(timer) => EventKind::TimerFired {
            fire_at: required_time("TimerFiredEvent.fireAt", timer.fire_at.as_ref())?,
            timer_id: timer.timer_id,
        },
        EventType::EventRaised(raised) => EventKind::EventRaised {
            name: raised.name.clone(),
            input: payload_from_wire("EventRaisedEvent.input", raised.input.as_deref())?,
        },
        EventType::EventSent(sent) => EventKind::EventSent {
            instance_id: sent.instance_id.clone(),
            name: sent.name.clone(),
            input: payload_from_wire("EventSentEvent.input", sent.input.as_deref())?,
        },
        EventType::ExecutionSuspended(suspended) => EventKind::ExecutionSuspended {
            reason: suspended.input.clone(),
        },
        EventType::ExecutionResumed(resumed) => EventKind::ExecutionResumed {
            reason: resumed.input.clone(),
        },
        EventType::ExecutionTerminated(terminated) => EventKind::ExecutionTerminated {
            reason: payload_from_wire(
                "ExecutionTerminatedEvent.input",
                terminated.input.as_deref(),
            )?,
            recurse: terminated.recurse,
        },
        EventType::ContinueAsNew(continued) => EventKind::ContinueAsNew {
            input: payload_from_wire("ContinueAsNewEvent.input", continued.input.as_deref())?,
        },
        EventType::ExecutionCompleted(completed) => EventKind::ExecutionCompleted {
            status: status_from_wire(
                "ExecutionCompletedEvent.orchestrationStatus",
                completed.orchestration_status,
            )?,
            result: payload_from_wire(
                "ExecutionCompletedEvent.result",
                completed.result.as_deref(),
            )?,
            failure: completed.failure_details.as_ref().map(failure_from_wire),
        },
        EventType::GenericEvent(generic) => fault_from_generic(generic)?,
        EventType::HistoryState(_) => {
            return Err(MappingError::Unsupported {
                what: "a historyState event",
                why: "durable-emu keeps instance state in its store, not in history",
            });
        }
        EventType::ExecutionRewound(rewound) => EventKind::ExecutionRewound {
            reason: rewound.reason.clone(),
        },
        EventType::EntityOperationSignaled(signaled) => signaled_from_wire(signaled)?,
        EventType::EntityOperationCalled(called) => called_from_wire(called)?,
        EventType::EntityOperationCompleted(completed) => EventKind::EntityOperationCompleted {
            request_id: non_empty(
                "EntityOperationCompletedEvent.requestId",
                &completed.request_id,
            )?,
            output: payload_from_wire(
                "EntityOperationCompletedEvent.output",
                completed.output.as_deref(),
            )?,
        },
        EventType::EntityOperationFailed(failed) => EventKind::EntityOperationFailed {
            request_id: non_empty("EntityOperationFailedEvent.requestId", &failed.request_id)?,
            failure: failure_field(
                "EntityOperationFailedEvent.failureDetails",
                failed.failure_details.as_ref(),
            )?,
        },
        EventType::EntityLockRequested(requested) => lock_requested_from_wire(requested)?,
        EventType::EntityLockGranted(granted) => EventKind::EntityLockGranted {
            critical_section_id: non_empty(
                "EntityLockGrantedEvent.criticalSectionId",
                &granted.critical_section_id,
            )?,
        },
        EventType::EntityUnlockSent(unlock) => unlock_from_wire(unlock)?,
    };
    Ok(HistoryEvent {
        event_id: event.event_id,
        timestamp,
        kind,
    })
}

fn fault_from_generic(generic: &proto::GenericEvent) -> Result<EventKind, MappingError> {
    const UNKNOWN: MappingError = MappingError::Unsupported {
        what: "a genericEvent",
        why: "durable-emu only reads back the faultInjected events it wrote itself",
    };
    let data = payload_from_wire("GenericEvent.data", generic.data.as_deref())?;
    let body = data.get(FAULT_INJECTED_KEY).ok_or(UNKNOWN)?;
    match serde_json::from_value::<EventKind>(body.clone()) {
        Ok(kind @ EventKind::FaultInjected { .. }) => Ok(kind),
        _ => Err(UNKNOWN),
    }
}

/// History events in the SDK's types.
pub fn events_from_wire(events: &[proto::HistoryEvent]) -> Result<Vec<HistoryEvent>, MappingError> {
    events.iter().map(event_from_wire).collect()
}

// ---------------------------------------------------------------------------------------------
// Entity messages (history events 23-29 and the sendEntityMessage action)
// ---------------------------------------------------------------------------------------------

/// Empty text is "not given" on the wire's optional strings.
fn non_empty_wire(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// An entity id a message must carry, in its canonical form (`@{name lowercased}@{key}`): names
/// are case-insensitive, so `@Counter@a` and `@counter@a` are one entity (docs/semantics.md#entities).
fn entity_id_field(field: &'static str, text: Option<&str>) -> Result<String, MappingError> {
    let text = text.filter(|text| !text.is_empty());
    let text = text.ok_or(MappingError::Missing { field })?;
    EntityId::parse(text)
        .map(|id| id.to_string())
        .map_err(|error| MappingError::InvalidEntityId {
            field,
            error: error.to_string(),
        })
}

fn signaled_to_wire(
    request_id: &str,
    operation: &str,
    input: &Value,
    target_instance_id: &str,
    scheduled_time: Option<DateTime<Utc>>,
) -> proto::EntityOperationSignaledEvent {
    proto::EntityOperationSignaledEvent {
        request_id: request_id.to_string(),
        operation: operation.to_string(),
        scheduled_time: scheduled_time.map(time_to_wire),
        input: payload_to_wire(input),
        target_instance_id: Some(target_instance_id.to_string()),
    }
}

fn unlock_to_wire(
    critical_section_id: &str,
    parent_instance_id: &str,
    target_instance_id: &str,
) -> proto::EntityUnlockSentEvent {
    proto::EntityUnlockSentEvent {
        critical_section_id: critical_section_id.to_string(),
        parent_instance_id: non_empty_wire(parent_instance_id),
        target_instance_id: Some(target_instance_id.to_string()),
    }
}

fn signaled_from_wire(
    signaled: &proto::EntityOperationSignaledEvent,
) -> Result<EventKind, MappingError> {
    Ok(EventKind::EntityOperationSignaled {
        request_id: non_empty(
            "EntityOperationSignaledEvent.requestId",
            &signaled.request_id,
        )?,
        operation: non_empty(
            "EntityOperationSignaledEvent.operation",
            &signaled.operation,
        )?,
        input: payload_from_wire(
            "EntityOperationSignaledEvent.input",
            signaled.input.as_deref(),
        )?,
        target_instance_id: entity_id_field(
            "EntityOperationSignaledEvent.targetInstanceId",
            signaled.target_instance_id.as_deref(),
        )?,
        scheduled_time: optional_time(
            "EntityOperationSignaledEvent.scheduledTime",
            signaled.scheduled_time.as_ref(),
        )?,
    })
}

/// A call. The parent ids may be absent (the Python SDK sends no `parentExecutionId`): they are
/// then empty here, and the worker side fills them in from the work item the answer belongs to.
fn called_from_wire(called: &proto::EntityOperationCalledEvent) -> Result<EventKind, MappingError> {
    Ok(EventKind::EntityOperationCalled {
        request_id: non_empty("EntityOperationCalledEvent.requestId", &called.request_id)?,
        operation: non_empty("EntityOperationCalledEvent.operation", &called.operation)?,
        input: payload_from_wire("EntityOperationCalledEvent.input", called.input.as_deref())?,
        target_instance_id: entity_id_field(
            "EntityOperationCalledEvent.targetInstanceId",
            called.target_instance_id.as_deref(),
        )?,
        scheduled_time: optional_time(
            "EntityOperationCalledEvent.scheduledTime",
            called.scheduled_time.as_ref(),
        )?,
        parent_instance_id: called.parent_instance_id.clone().unwrap_or_default(),
        parent_execution_id: called.parent_execution_id.clone().unwrap_or_default(),
    })
}

fn lock_requested_from_wire(
    requested: &proto::EntityLockRequestedEvent,
) -> Result<EventKind, MappingError> {
    if requested.lock_set.is_empty() {
        return Err(MappingError::Missing {
            field: "EntityLockRequestedEvent.lockSet",
        });
    }
    let lock_set = requested
        .lock_set
        .iter()
        .map(|id| entity_id_field("EntityLockRequestedEvent.lockSet", Some(id)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EventKind::EntityLockRequested {
        critical_section_id: non_empty(
            "EntityLockRequestedEvent.criticalSectionId",
            &requested.critical_section_id,
        )?,
        lock_set,
        position: requested.position,
        parent_instance_id: requested.parent_instance_id.clone().unwrap_or_default(),
    })
}

fn unlock_from_wire(unlock: &proto::EntityUnlockSentEvent) -> Result<EventKind, MappingError> {
    Ok(EventKind::EntityUnlockSent {
        critical_section_id: non_empty(
            "EntityUnlockSentEvent.criticalSectionId",
            &unlock.critical_section_id,
        )?,
        parent_instance_id: unlock.parent_instance_id.clone().unwrap_or_default(),
        target_instance_id: entity_id_field(
            "EntityUnlockSentEvent.targetInstanceId",
            unlock.target_instance_id.as_deref(),
        )?,
    })
}

/// An orchestration's entity action as the `sendEntityMessage` it travels in: the message is the
/// history event that records the action (the proto reuses the event messages).
fn entity_message_to_wire(kind: &ActionKind) -> proto::SendEntityMessageAction {
    use proto::send_entity_message_action::EntityMessageType as Message;
    let message = match event_to_wire_kind(&kind.to_event_kind()) {
        Some(EventType::EntityOperationSignaled(signaled)) => {
            Some(Message::EntityOperationSignaled(signaled))
        }
        Some(EventType::EntityOperationCalled(called)) => {
            Some(Message::EntityOperationCalled(called))
        }
        Some(EventType::EntityLockRequested(requested)) => {
            Some(Message::EntityLockRequested(requested))
        }
        Some(EventType::EntityUnlockSent(unlock)) => Some(Message::EntityUnlockSent(unlock)),
        // Only the four entity actions come here (see action_to_wire).
        _ => None,
    };
    proto::SendEntityMessageAction {
        entity_message_type: message,
    }
}

/// The wire kind of an event (without id and timestamp).
fn event_to_wire_kind(kind: &EventKind) -> Option<EventType> {
    event_to_wire(&HistoryEvent {
        event_id: -1,
        timestamp: DateTime::<Utc>::UNIX_EPOCH,
        kind: kind.clone(),
    })
    .event_type
}

/// A worker's `sendEntityMessage` as the SDK's action. A call's `scheduledTime` is dropped: the
/// Durable Task model schedules only signals (no SDK sets it on a call).
fn entity_message_from_wire(
    message: &proto::SendEntityMessageAction,
) -> Result<ActionKind, MappingError> {
    use proto::send_entity_message_action::EntityMessageType as Message;
    let message = message
        .entity_message_type
        .as_ref()
        .ok_or(MappingError::Missing {
            field: "SendEntityMessageAction.entityMessageType",
        })?;
    let event = match message {
        Message::EntityOperationSignaled(signaled) => signaled_from_wire(signaled)?,
        Message::EntityOperationCalled(called) => called_from_wire(called)?,
        Message::EntityLockRequested(requested) => lock_requested_from_wire(requested)?,
        Message::EntityUnlockSent(unlock) => unlock_from_wire(unlock)?,
    };
    Ok(match event {
        EventKind::EntityOperationSignaled {
            request_id,
            operation,
            input,
            target_instance_id,
            scheduled_time,
        } => ActionKind::SignalEntity {
            request_id,
            target_instance_id,
            operation,
            input,
            scheduled_time,
        },
        EventKind::EntityOperationCalled {
            request_id,
            operation,
            input,
            target_instance_id,
            parent_instance_id,
            parent_execution_id,
            ..
        } => ActionKind::CallEntity {
            request_id,
            target_instance_id,
            operation,
            input,
            parent_instance_id,
            parent_execution_id,
        },
        EventKind::EntityLockRequested {
            critical_section_id,
            lock_set,
            parent_instance_id,
            ..
        } => ActionKind::LockEntities {
            critical_section_id,
            lock_set,
            parent_instance_id,
        },
        EventKind::EntityUnlockSent {
            critical_section_id,
            parent_instance_id,
            target_instance_id,
        } => ActionKind::UnlockEntity {
            critical_section_id,
            target_instance_id,
            parent_instance_id,
        },
        // The four helpers above return only their own kind.
        _ => {
            return Err(MappingError::Missing {
                field: "SendEntityMessageAction.entityMessageType",
            });
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

/// An action as the wire carries it (what a worker would send).
pub fn action_to_wire(action: &Action) -> proto::OrchestratorAction {
    let kind = match &action.kind {
        ActionKind::SignalEntity { .. }
        | ActionKind::CallEntity { .. }
        | ActionKind::LockEntities { .. }
        | ActionKind::UnlockEntity { .. } => {
            OrchestratorActionType::SendEntityMessage(entity_message_to_wire(&action.kind))
        }
        ActionKind::ScheduleTask { name, input } => {
            OrchestratorActionType::ScheduleTask(proto::ScheduleTaskAction {
                name: name.clone(),
                input: payload_to_wire(input),
                ..Default::default()
            })
        }
        ActionKind::CreateTimer { fire_at } => {
            OrchestratorActionType::CreateTimer(proto::CreateTimerAction {
                fire_at: Some(time_to_wire(*fire_at)),
            })
        }
        ActionKind::CreateSubOrchestration {
            name,
            instance_id,
            input,
        } => OrchestratorActionType::CreateSubOrchestration(proto::CreateSubOrchestrationAction {
            instance_id: instance_id.clone(),
            name: name.clone(),
            input: payload_to_wire(input),
            ..Default::default()
        }),
        ActionKind::SendEvent {
            instance_id,
            name,
            input,
        } => OrchestratorActionType::SendEvent(proto::SendEventAction {
            instance: Some(proto::OrchestrationInstance {
                instance_id: instance_id.clone(),
                execution_id: None,
            }),
            name: name.clone(),
            data: payload_to_wire(input),
        }),
        ActionKind::CompleteOrchestration {
            status,
            result,
            failure,
            carryover_events,
        } => OrchestratorActionType::CompleteOrchestration(proto::CompleteOrchestrationAction {
            orchestration_status: status_to_wire(*status) as i32,
            result: payload_to_wire(result),
            failure_details: failure.as_ref().map(failure_to_wire),
            carryover_events: carryover_events.iter().map(event_to_wire).collect(),
            ..Default::default()
        }),
    };
    proto::OrchestratorAction {
        id: action.id,
        orchestrator_action_type: Some(kind),
    }
}

/// A worker's action in the SDK's types.
pub fn action_from_wire(action: &proto::OrchestratorAction) -> Result<Action, MappingError> {
    let kind = match action
        .orchestrator_action_type
        .as_ref()
        .ok_or(MappingError::Missing {
            field: "OrchestratorAction.orchestratorActionType",
        })? {
        OrchestratorActionType::ScheduleTask(task) => ActionKind::ScheduleTask {
            name: non_empty("ScheduleTaskAction.name", &task.name)?,
            input: payload_from_wire("ScheduleTaskAction.input", task.input.as_deref())?,
        },
        OrchestratorActionType::CreateTimer(timer) => ActionKind::CreateTimer {
            fire_at: required_time("CreateTimerAction.fireAt", timer.fire_at.as_ref())?,
        },
        OrchestratorActionType::CreateSubOrchestration(child) => {
            ActionKind::CreateSubOrchestration {
                name: non_empty("CreateSubOrchestrationAction.name", &child.name)?,
                instance_id: non_empty(
                    "CreateSubOrchestrationAction.instanceId",
                    &child.instance_id,
                )?,
                input: payload_from_wire(
                    "CreateSubOrchestrationAction.input",
                    child.input.as_deref(),
                )?,
            }
        }
        OrchestratorActionType::SendEvent(send) => ActionKind::SendEvent {
            instance_id: non_empty(
                "SendEventAction.instance.instanceId",
                send.instance
                    .as_ref()
                    .map_or("", |instance| instance.instance_id.as_str()),
            )?,
            name: non_empty("SendEventAction.name", &send.name)?,
            input: payload_from_wire("SendEventAction.data", send.data.as_deref())?,
        },
        OrchestratorActionType::CompleteOrchestration(complete) => {
            let status = status_from_wire(
                "CompleteOrchestrationAction.orchestrationStatus",
                complete.orchestration_status,
            )?;
            if !(status.is_terminal() || status == RuntimeStatus::ContinuedAsNew) {
                return Err(MappingError::Unsupported {
                    what: "a completeOrchestration action with a status that does not end the execution",
                    why: "use COMPLETED, FAILED, TERMINATED or CONTINUED_AS_NEW",
                });
            }
            ActionKind::CompleteOrchestration {
                status,
                result: payload_from_wire(
                    "CompleteOrchestrationAction.result",
                    complete.result.as_deref(),
                )?,
                failure: complete.failure_details.as_ref().map(failure_from_wire),
                carryover_events: events_from_wire(&complete.carryover_events)?,
            }
        }
        OrchestratorActionType::TerminateOrchestration(_) => {
            return Err(MappingError::Unsupported {
                what: "a terminateOrchestration action",
                why: "terminate other instances from a client (TerminateInstance)",
            });
        }
        OrchestratorActionType::SendEntityMessage(message) => entity_message_from_wire(message)?,
        OrchestratorActionType::RewindOrchestration(_) => {
            return Err(MappingError::Unsupported {
                what: "a rewindOrchestration action",
                why: "it is the whole answer to a rewind episode, not one of its durable calls",
            });
        }
    };
    Ok(Action {
        id: action.id,
        kind,
    })
}

fn non_empty(field: &'static str, text: &str) -> Result<String, MappingError> {
    if text.is_empty() {
        Err(MappingError::Missing { field })
    } else {
        Ok(text.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Episodes and activities
// ---------------------------------------------------------------------------------------------

/// `OrchestratorRequest.properties` key under which durable-emu says how many events the
/// history before an episode holds, when it leaves them out (`requiresHistoryStreaming`). Not in
/// the protocol, so other backends do not send it and other workers ignore it: with it, a worker
/// that ran the instance's previous episode can tell its cached state is current and skip
/// fetching the past (`durable-emu worker` does); without it, a worker fetches as usual.
pub const PAST_EVENT_COUNT_PROPERTY: &str = "durable-emu.pastEventCount";

/// An episode as an orchestrator work item, its history before it given apart (`past`;
/// `request.past_events` is not read). With `stream_history`, `pastEvents` are left out,
/// `requiresHistoryStreaming` is set and [`PAST_EVENT_COUNT_PROPERTY`] says how many there are
/// (the worker fetches them with StreamInstanceHistory if it needs them).
pub fn orchestrator_request_to_wire(
    request: &OrchestratorRequest,
    past: &[HistoryEvent],
    stream_history: bool,
) -> proto::OrchestratorRequest {
    let streamed = stream_history && !past.is_empty();
    let mut properties = std::collections::HashMap::new();
    if streamed {
        properties.insert(
            PAST_EVENT_COUNT_PROPERTY.to_string(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::NumberValue(past.len() as f64)),
            },
        );
    }
    proto::OrchestratorRequest {
        instance_id: request.instance_id.clone(),
        execution_id: Some(request.execution_id.clone()),
        past_events: if streamed {
            Vec::new()
        } else {
            past.iter().map(event_to_wire).collect()
        },
        new_events: request.new_events.iter().map(event_to_wire).collect(),
        requires_history_streaming: streamed,
        properties,
        ..Default::default()
    }
}

/// How many events a streamed episode's history holds, if the backend said
/// ([`PAST_EVENT_COUNT_PROPERTY`]; only for an episode whose `pastEvents` were left out).
pub fn streamed_past_event_count(request: &proto::OrchestratorRequest) -> Option<usize> {
    if !request.requires_history_streaming || !request.past_events.is_empty() {
        return None;
    }
    match request.properties.get(PAST_EVENT_COUNT_PROPERTY)?.kind {
        Some(prost_types::value::Kind::NumberValue(count))
            if count >= 0.0 && count.fract() == 0.0 && count <= u32::MAX as f64 =>
        {
            Some(count as usize)
        }
        _ => None,
    }
}

/// An orchestrator work item in the SDK's types (what a worker reads; used by the load
/// generator and tests). `history_len` is the number of past events; for a streamed episode
/// whose backend gave their count ([`streamed_past_event_count`]), that count, with no past
/// events: the request a cached session answers, or asks for the history.
pub fn orchestrator_request_from_wire(
    request: &proto::OrchestratorRequest,
) -> Result<OrchestratorRequest, MappingError> {
    let past_events = events_from_wire(&request.past_events)?;
    Ok(OrchestratorRequest {
        instance_id: request.instance_id.clone(),
        execution_id: request.execution_id.clone().unwrap_or_default(),
        history_len: streamed_past_event_count(request).unwrap_or(past_events.len()),
        past_events,
        new_events: events_from_wire(&request.new_events)?,
        include_replay_logs: false,
        max_actions: None,
    })
}

/// A worker's episode answer in the SDK's types.
pub fn orchestrator_response_from_wire(
    response: &proto::OrchestratorResponse,
) -> Result<OrchestratorResponse, MappingError> {
    let mut actions = Vec::with_capacity(response.actions.len());
    let mut rewound_history = None;
    for action in &response.actions {
        match &action.orchestrator_action_type {
            // A rewind's answer is not a durable call: it is the rewritten history itself.
            Some(OrchestratorActionType::RewindOrchestration(rewind)) => {
                rewound_history = Some(
                    rewind
                        .new_history
                        .iter()
                        .map(event_from_wire)
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
            _ => actions.push(action_from_wire(action)?),
        }
    }
    let custom_status = match response.custom_status.as_deref() {
        None => None,
        Some(text) => Some(payload_from_wire(
            "OrchestratorResponse.customStatus",
            Some(text),
        )?),
    };
    Ok(OrchestratorResponse {
        needs_history: response.requires_history,
        actions,
        custom_status,
        rewound_history,
        ..Default::default()
    })
}

/// An episode answer as a worker sends it (used by the load generator and tests).
pub fn orchestrator_response_to_wire(
    instance_id: &str,
    token: &str,
    response: &OrchestratorResponse,
) -> proto::OrchestratorResponse {
    proto::OrchestratorResponse {
        instance_id: instance_id.to_string(),
        actions: response.actions.iter().map(action_to_wire).collect(),
        custom_status: response.custom_status.as_ref().and_then(payload_to_wire),
        completion_token: token.to_string(),
        requires_history: response.needs_history,
        ..Default::default()
    }
}

/// A worker's activity answer in the SDK's types: a failure if `failureDetails` is set, else
/// the result.
pub fn activity_outcome_from_wire(
    response: &proto::ActivityResponse,
) -> Result<ActivityOutcome, MappingError> {
    match &response.failure_details {
        Some(failure) => Ok(ActivityOutcome::Failed {
            failure: failure_from_wire(failure),
        }),
        None => Ok(ActivityOutcome::Completed {
            result: payload_from_wire("ActivityResponse.result", response.result.as_deref())?,
        }),
    }
}

/// An activity answer as a worker sends it.
pub fn activity_outcome_to_wire(
    instance_id: &str,
    task_id: i32,
    token: &str,
    outcome: &ActivityOutcome,
) -> proto::ActivityResponse {
    let (result, failure_details) = match outcome {
        ActivityOutcome::Completed { result } => (payload_to_wire(result), None),
        ActivityOutcome::Failed { failure } => (None, Some(failure_to_wire(failure))),
    };
    proto::ActivityResponse {
        instance_id: instance_id.to_string(),
        task_id,
        result,
        failure_details,
        completion_token: token.to_string(),
    }
}

/// An activity work item's request.
pub fn activity_request_to_wire(
    name: &str,
    input: &Value,
    instance_id: &str,
    execution_id: &str,
    task_id: i32,
) -> proto::ActivityRequest {
    proto::ActivityRequest {
        name: name.to_string(),
        input: payload_to_wire(input),
        orchestration_instance: Some(instance_ref(instance_id, execution_id)),
        task_id,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Entity batches
// ---------------------------------------------------------------------------------------------

/// An entity's state as the wire carries it: no state (or `null`) is absent.
fn state_to_wire(state: Option<&Value>) -> Option<String> {
    state.and_then(payload_to_wire)
}

/// A wire state: absent, empty or `null` text is "no state".
fn state_from_wire(field: &'static str, text: Option<&str>) -> Result<Option<Value>, MappingError> {
    Ok(match payload_from_wire(field, text)? {
        Value::Null => None,
        state => Some(state),
    })
}

/// One operation of a batch as the history event the newer work item carries: a call
/// (`entityOperationCalled`, with where the answer goes) or a signal (`entityOperationSignaled`).
fn operation_to_wire_event(
    instance_id: &str,
    operation: &EntityOperationRequest,
) -> proto::HistoryEvent {
    let event_type = match &operation.caller {
        None => EventType::EntityOperationSignaled(signaled_to_wire(
            &operation.request_id,
            &operation.operation,
            &operation.input,
            instance_id,
            None,
        )),
        Some(caller) => EventType::EntityOperationCalled(proto::EntityOperationCalledEvent {
            request_id: operation.request_id.clone(),
            operation: operation.operation.clone(),
            scheduled_time: None,
            input: payload_to_wire(&operation.input),
            parent_instance_id: Some(caller.instance_id.clone()),
            parent_execution_id: non_empty_wire(&caller.execution_id),
            target_instance_id: Some(instance_id.to_string()),
        }),
    };
    // Messages, not history: they have no sequence id, and their time is the entity's business
    // (the SDKs read neither).
    proto::HistoryEvent {
        event_id: -1,
        timestamp: None,
        event_type: Some(event_type),
    }
}

/// An entity batch as the newer work item (`entityRequestV2`): its operations as the history
/// events that sent them, so a worker can tell calls (and their callers) from signals.
pub fn entity_request_to_wire(request: &EntityBatchRequest) -> proto::EntityRequest {
    proto::EntityRequest {
        instance_id: request.instance_id.clone(),
        // An entity has no executions; the SDKs ignore the field.
        execution_id: String::new(),
        entity_state: state_to_wire(request.state.as_ref()),
        operation_requests: request
            .operations
            .iter()
            .map(|operation| operation_to_wire_event(&request.instance_id, operation))
            .collect(),
    }
}

/// A newer entity work item in the SDK's types (what a worker reads; used by tests).
pub fn entity_request_from_wire(
    request: &proto::EntityRequest,
) -> Result<EntityBatchRequest, MappingError> {
    let instance_id = entity_id_field("EntityRequest.instanceId", Some(&request.instance_id))?;
    let operations = request
        .operation_requests
        .iter()
        .map(|event| match event.event_type.as_ref() {
            Some(EventType::EntityOperationSignaled(signaled)) => {
                match signaled_from_wire(signaled)? {
                    EventKind::EntityOperationSignaled {
                        request_id,
                        operation,
                        input,
                        ..
                    } => Ok(EntityOperationRequest {
                        request_id,
                        operation,
                        input,
                        caller: None,
                    }),
                    _ => Err(NOT_AN_OPERATION),
                }
            }
            Some(EventType::EntityOperationCalled(called)) => match called_from_wire(called)? {
                EventKind::EntityOperationCalled {
                    request_id,
                    operation,
                    input,
                    parent_instance_id,
                    parent_execution_id,
                    ..
                } => Ok(EntityOperationRequest {
                    request_id,
                    operation,
                    input,
                    caller: Some(EntityCaller {
                        instance_id: non_empty(
                            "EntityOperationCalledEvent.parentInstanceId",
                            &parent_instance_id,
                        )?,
                        execution_id: parent_execution_id,
                    }),
                }),
                _ => Err(NOT_AN_OPERATION),
            },
            _ => Err(NOT_AN_OPERATION),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EntityBatchRequest {
        instance_id,
        state: state_from_wire("EntityRequest.entityState", request.entity_state.as_deref())?,
        operations,
    })
}

const NOT_AN_OPERATION: MappingError = MappingError::Unsupported {
    what: "an EntityRequest.operationRequests event other than entityOperationSignaled or entityOperationCalled",
    why: "an entity work item carries only operations",
};

/// An entity batch as the older work item (`entityRequest`), for workers that ask for it: the
/// operations without their callers (durable-emu routes the answers itself, by position).
pub fn entity_batch_request_to_wire(request: &EntityBatchRequest) -> proto::EntityBatchRequest {
    proto::EntityBatchRequest {
        instance_id: request.instance_id.clone(),
        entity_state: state_to_wire(request.state.as_ref()),
        operations: request
            .operations
            .iter()
            .map(|operation| proto::OperationRequest {
                operation: operation.operation.clone(),
                request_id: operation.request_id.clone(),
                input: payload_to_wire(&operation.input),
                trace_context: None,
            })
            .collect(),
        properties: Default::default(),
    }
}

/// An older entity work item in the SDK's types (every operation reads as a signal: the older
/// message does not say who called).
pub fn entity_batch_request_from_wire(
    request: &proto::EntityBatchRequest,
) -> Result<EntityBatchRequest, MappingError> {
    Ok(EntityBatchRequest {
        instance_id: entity_id_field("EntityBatchRequest.instanceId", Some(&request.instance_id))?,
        state: state_from_wire(
            "EntityBatchRequest.entityState",
            request.entity_state.as_deref(),
        )?,
        operations: request
            .operations
            .iter()
            .map(|operation| {
                Ok(EntityOperationRequest {
                    request_id: non_empty("OperationRequest.requestId", &operation.request_id)?,
                    operation: non_empty("OperationRequest.operation", &operation.operation)?,
                    input: payload_from_wire("OperationRequest.input", operation.input.as_deref())?,
                    caller: None,
                })
            })
            .collect::<Result<Vec<_>, MappingError>>()?,
    })
}

/// A worker's answer to an entity batch in the SDK's types. `operationInfos` are not read: the
/// engine knows each operation's caller from the batch it sent, and answers follow the order of
/// the results. `requiresState` is not read either: every batch carries the entity's state.
pub fn entity_batch_result_from_wire(
    result: &proto::EntityBatchResult,
) -> Result<EntityBatchResult, MappingError> {
    use proto::operation_action::OperationActionType as Wire;
    use proto::operation_result::ResultType;
    let results = result
        .results
        .iter()
        .map(|outcome| match outcome.result_type.as_ref() {
            Some(ResultType::Success(success)) => Ok(EntityOperationResult::Completed {
                result: payload_from_wire(
                    "OperationResultSuccess.result",
                    success.result.as_deref(),
                )?,
            }),
            Some(ResultType::Failure(failure)) => Ok(EntityOperationResult::Failed {
                failure: failure_field(
                    "OperationResultFailure.failureDetails",
                    failure.failure_details.as_ref(),
                )?,
            }),
            None => Err(MappingError::Missing {
                field: "OperationResult.resultType",
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let actions = result
        .actions
        .iter()
        .map(|action| match action.operation_action_type.as_ref() {
            Some(Wire::SendSignal(signal)) => Ok(EntityAction::SignalEntity {
                instance_id: entity_id_field(
                    "SendSignalAction.instanceId",
                    Some(&signal.instance_id),
                )?,
                operation: non_empty("SendSignalAction.name", &signal.name)?,
                input: payload_from_wire("SendSignalAction.input", signal.input.as_deref())?,
                scheduled_time: optional_time(
                    "SendSignalAction.scheduledTime",
                    signal.scheduled_time.as_ref(),
                )?,
            }),
            Some(Wire::StartNewOrchestration(start)) => Ok(EntityAction::StartOrchestration {
                name: non_empty("StartNewOrchestrationAction.name", &start.name)?,
                instance_id: non_empty_wire(&start.instance_id),
                input: payload_from_wire(
                    "StartNewOrchestrationAction.input",
                    start.input.as_deref(),
                )?,
                scheduled_time: optional_time(
                    "StartNewOrchestrationAction.scheduledTime",
                    start.scheduled_time.as_ref(),
                )?,
            }),
            None => Err(MappingError::Missing {
                field: "OperationAction.operationActionType",
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EntityBatchResult {
        results,
        actions,
        state: state_from_wire(
            "EntityBatchResult.entityState",
            result.entity_state.as_deref(),
        )?,
        failure: result.failure_details.as_ref().map(failure_from_wire),
    })
}

/// An entity batch's answer as a worker sends it (used by tests): `operationInfos` name each
/// answered operation's caller, as the newer work item's workers send them.
pub fn entity_batch_result_to_wire(
    token: &str,
    request: &EntityBatchRequest,
    result: &EntityBatchResult,
) -> proto::EntityBatchResult {
    use proto::operation_action::OperationActionType as Wire;
    use proto::operation_result::ResultType;
    let results = result
        .results
        .iter()
        .map(|outcome| proto::OperationResult {
            result_type: Some(match outcome {
                EntityOperationResult::Completed { result } => {
                    ResultType::Success(proto::OperationResultSuccess {
                        result: payload_to_wire(result),
                        ..Default::default()
                    })
                }
                EntityOperationResult::Failed { failure } => {
                    ResultType::Failure(proto::OperationResultFailure {
                        failure_details: Some(failure_to_wire(failure)),
                        ..Default::default()
                    })
                }
            }),
        })
        .collect();
    let actions = result
        .actions
        .iter()
        .zip(0..)
        .map(|(action, id)| proto::OperationAction {
            id,
            operation_action_type: Some(match action {
                EntityAction::SignalEntity {
                    instance_id,
                    operation,
                    input,
                    scheduled_time,
                } => Wire::SendSignal(proto::SendSignalAction {
                    instance_id: instance_id.clone(),
                    name: operation.clone(),
                    input: payload_to_wire(input),
                    scheduled_time: scheduled_time.map(time_to_wire),
                    ..Default::default()
                }),
                EntityAction::StartOrchestration {
                    name,
                    instance_id,
                    input,
                    scheduled_time,
                } => Wire::StartNewOrchestration(proto::StartNewOrchestrationAction {
                    instance_id: instance_id.clone().unwrap_or_default(),
                    name: name.clone(),
                    input: payload_to_wire(input),
                    scheduled_time: scheduled_time.map(time_to_wire),
                    ..Default::default()
                }),
            }),
        })
        .collect();
    let operation_infos = request
        .operations
        .iter()
        .take(result.results.len())
        .map(|operation| proto::OperationInfo {
            request_id: operation.request_id.clone(),
            response_destination: operation
                .caller
                .as_ref()
                .map(|caller| instance_ref(&caller.instance_id, &caller.execution_id)),
        })
        .collect();
    proto::EntityBatchResult {
        results,
        actions,
        entity_state: state_to_wire(result.state.as_ref()),
        failure_details: result.failure.as_ref().map(failure_to_wire),
        completion_token: token.to_string(),
        operation_infos,
        requires_state: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------------

/// An instance's state as GetInstance, the waits and QueryInstances answer it. Inputs, output
/// and custom status only `with_payloads` (the SDKs' `fetch_payloads`); failure details always.
pub fn instance_to_wire(record: &InstanceRecord, with_payloads: bool) -> proto::OrchestrationState {
    let payload = |value: &Value| {
        if with_payloads {
            payload_to_wire(value)
        } else {
            None
        }
    };
    proto::OrchestrationState {
        instance_id: record.instance_id.clone(),
        name: record.name.clone(),
        version: record.version.clone(),
        orchestration_status: status_to_wire(record.status) as i32,
        scheduled_start_timestamp: record.scheduled_start.map(time_to_wire),
        created_timestamp: Some(time_to_wire(record.created_at)),
        last_updated_timestamp: Some(time_to_wire(record.updated_at)),
        input: payload(&record.input),
        output: payload(&record.output),
        custom_status: record.custom_status.as_ref().and_then(payload),
        failure_details: record.failure.as_ref().map(failure_to_wire),
        execution_id: Some(record.execution_id.clone()),
        completed_timestamp: record
            .status
            .is_terminal()
            .then(|| time_to_wire(record.updated_at)),
        parent_instance_id: record
            .parent
            .as_ref()
            .map(|parent| parent.instance_id.clone()),
        tags: record
            .tags
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    }
}
