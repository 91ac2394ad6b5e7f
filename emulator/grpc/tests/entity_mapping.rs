//! proto <-> SDK mapping of durable entities: every entity history event and action round-trips,
//! entity batches go out as both work-item shapes and their answers come back, and what a worker
//! may leave out or get wrong is filled in or refused with the field named.
// Test helpers panic on setup failures, which is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, Utc};
use durable_emu_grpc::mapping::*;
use durable_emu_grpc::proto;
use durable_sdk::FailureDetails;
use durable_sdk::history::{EventKind, HistoryEvent};
use durable_sdk::protocol::{
    Action, ActionKind, EntityAction, EntityBatchRequest, EntityBatchResult, EntityCaller,
    EntityOperationRequest, EntityOperationResult,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z ]{0,8}".prop_map(Value::from),
    ]
    .prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_000_000_000, 0u32..1_000_000_000).prop_map(|(secs, nanos)| {
        DateTime::UNIX_EPOCH + TimeDelta::seconds(secs) + TimeDelta::nanoseconds(i64::from(nanos))
    })
}

/// Canonical entity ids: lower-case names, keys of any case (and with '@' in them).
fn entity_id() -> impl Strategy<Value = String> {
    ("[a-z]{1,6}", "[A-Za-z0-9@]{0,5}").prop_map(|(name, key)| format!("@{name}@{key}"))
}

fn failure() -> impl Strategy<Value = FailureDetails> {
    ("[A-Za-z]{1,8}", "[a-z ]{0,12}", any::<bool>()).prop_map(|(kind, message, inner)| {
        let failure = FailureDetails::new(kind, message);
        if inner {
            failure.with_inner(FailureDetails::new("Inner", "cause"))
        } else {
            failure
        }
    })
}

fn entity_event_kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        (
            "[a-f0-9-]{1,12}",
            "[a-z]{1,6}",
            json_value(),
            entity_id(),
            proptest::option::of(time())
        )
            .prop_map(
                |(request_id, operation, input, target_instance_id, scheduled_time)| {
                    EventKind::EntityOperationSignaled {
                        request_id,
                        operation,
                        input,
                        target_instance_id,
                        scheduled_time,
                    }
                }
            ),
        (
            "[a-f0-9-]{1,12}",
            "[a-z]{1,6}",
            json_value(),
            entity_id(),
            proptest::option::of(time()),
            "[a-z]{1,6}",
            "[a-z0-9]{0,6}"
        )
            .prop_map(
                |(
                    request_id,
                    operation,
                    input,
                    target_instance_id,
                    scheduled_time,
                    parent_instance_id,
                    parent_execution_id,
                )| EventKind::EntityOperationCalled {
                    request_id,
                    operation,
                    input,
                    target_instance_id,
                    scheduled_time,
                    parent_instance_id,
                    parent_execution_id,
                }
            ),
        ("[a-f0-9-]{1,12}", json_value()).prop_map(|(request_id, output)| {
            EventKind::EntityOperationCompleted { request_id, output }
        }),
        ("[a-f0-9-]{1,12}", failure()).prop_map(|(request_id, failure)| {
            EventKind::EntityOperationFailed {
                request_id,
                failure,
            }
        }),
        (
            "[a-f0-9-]{1,12}",
            prop::collection::vec(entity_id(), 1..4),
            0i32..4,
            "[a-z]{1,6}"
        )
            .prop_map(
                |(critical_section_id, lock_set, position, parent_instance_id)| {
                    EventKind::EntityLockRequested {
                        critical_section_id,
                        lock_set,
                        position,
                        parent_instance_id,
                    }
                }
            ),
        "[a-f0-9-]{1,12}".prop_map(|critical_section_id| EventKind::EntityLockGranted {
            critical_section_id
        }),
        ("[a-f0-9-]{1,12}", "[a-z]{1,6}", entity_id()).prop_map(
            |(critical_section_id, parent_instance_id, target_instance_id)| {
                EventKind::EntityUnlockSent {
                    critical_section_id,
                    parent_instance_id,
                    target_instance_id,
                }
            }
        ),
    ]
}

proptest! {
    #[test]
    fn every_entity_history_event_round_trips_through_its_own_proto_event(
        id in -1i32..1000, at in time(), kind in entity_event_kind()
    ) {
        let event = HistoryEvent { event_id: id, timestamp: at, kind };
        let wire = event_to_wire(&event);
        // Each has its own oneof case (fields 23-29), never a genericEvent.
        let is_entity_case = matches!(
            wire.event_type,
            Some(proto::history_event::EventType::EntityOperationSignaled(_)
                | proto::history_event::EventType::EntityOperationCalled(_)
                | proto::history_event::EventType::EntityOperationCompleted(_)
                | proto::history_event::EventType::EntityOperationFailed(_)
                | proto::history_event::EventType::EntityLockRequested(_)
                | proto::history_event::EventType::EntityLockGranted(_)
                | proto::history_event::EventType::EntityUnlockSent(_))
        );
        prop_assert!(is_entity_case, "{:?}", wire.event_type);
        prop_assert_eq!(event_from_wire(&wire).unwrap(), event);
    }

    #[test]
    fn every_entity_action_round_trips_through_send_entity_message(
        id in 0i32..1000, input in json_value(), at in proptest::option::of(time()),
        target in entity_id(), lock_set in prop::collection::vec(entity_id(), 1..4),
    ) {
        for kind in [
            ActionKind::SignalEntity {
                request_id: "r1".into(), target_instance_id: target.clone(),
                operation: "add".into(), input: input.clone(), scheduled_time: at,
            },
            ActionKind::CallEntity {
                request_id: "r2".into(), target_instance_id: target.clone(),
                operation: "get".into(), input: input.clone(),
                parent_instance_id: "caller".into(), parent_execution_id: "e1".into(),
            },
            ActionKind::LockEntities {
                critical_section_id: "cs".into(), lock_set: lock_set.clone(),
                parent_instance_id: "caller".into(),
            },
            ActionKind::UnlockEntity {
                critical_section_id: "cs".into(), target_instance_id: target.clone(),
                parent_instance_id: "caller".into(),
            },
        ] {
            let action = Action { id, kind };
            let wire = action_to_wire(&action);
            let is_entity_message = matches!(
                wire.orchestrator_action_type,
                Some(proto::orchestrator_action::OrchestratorActionType::SendEntityMessage(
                    proto::SendEntityMessageAction { entity_message_type: Some(_) }
                ))
            );
            prop_assert!(is_entity_message, "{:?}", wire);
            prop_assert_eq!(action_from_wire(&wire).unwrap(), action);
        }
    }
}

fn batch() -> EntityBatchRequest {
    EntityBatchRequest {
        instance_id: "@counter@a".into(),
        state: Some(json!({"count": 5})),
        operations: vec![
            EntityOperationRequest {
                request_id: "s1".into(),
                operation: "add".into(),
                input: json!(3),
                caller: None,
            },
            EntityOperationRequest {
                request_id: "c1".into(),
                operation: "get".into(),
                input: Value::Null,
                caller: Some(EntityCaller {
                    instance_id: "orch".into(),
                    execution_id: "e7".into(),
                }),
            },
        ],
    }
}

#[test]
fn a_batch_goes_out_as_entity_request_v2_with_signals_and_calls_as_their_events() {
    let request = batch();
    let wire = entity_request_to_wire(&request);
    assert_eq!(wire.instance_id, "@counter@a");
    assert_eq!(wire.entity_state.as_deref(), Some(r#"{"count":5}"#));
    use proto::history_event::EventType;
    match &wire.operation_requests[0].event_type {
        Some(EventType::EntityOperationSignaled(signaled)) => {
            assert_eq!(signaled.request_id, "s1");
            assert_eq!(signaled.input.as_deref(), Some("3"));
            assert_eq!(signaled.target_instance_id.as_deref(), Some("@counter@a"));
        }
        other => panic!("the signal should be entityOperationSignaled, is {other:?}"),
    }
    match &wire.operation_requests[1].event_type {
        Some(EventType::EntityOperationCalled(called)) => {
            assert_eq!(called.parent_instance_id.as_deref(), Some("orch"));
            assert_eq!(called.parent_execution_id.as_deref(), Some("e7"));
            assert_eq!(called.input, None, "a null input is absent on the wire");
        }
        other => panic!("the call should be entityOperationCalled, is {other:?}"),
    }
    assert_eq!(entity_request_from_wire(&wire).unwrap(), request);
}

#[test]
fn a_batch_goes_out_as_the_older_entity_request_without_callers() {
    let request = batch();
    let wire = entity_batch_request_to_wire(&request);
    assert_eq!(wire.operations.len(), 2);
    assert_eq!(wire.operations[1].request_id, "c1");
    let back = entity_batch_request_from_wire(&wire).unwrap();
    assert_eq!(back.state, request.state);
    let without_callers: Vec<_> = request
        .operations
        .iter()
        .cloned()
        .map(|operation| EntityOperationRequest {
            caller: None,
            ..operation
        })
        .collect();
    assert_eq!(back.operations, without_callers);
}

#[test]
fn an_entity_without_state_sends_no_state_and_null_state_reads_as_none() {
    let request = EntityBatchRequest {
        state: None,
        ..batch()
    };
    assert_eq!(entity_request_to_wire(&request).entity_state, None);
    assert_eq!(entity_batch_request_to_wire(&request).entity_state, None);
    let answer = proto::EntityBatchResult {
        entity_state: Some("null".into()),
        ..Default::default()
    };
    assert_eq!(entity_batch_result_from_wire(&answer).unwrap().state, None);
}

#[test]
fn a_batch_answer_round_trips_with_results_failures_signals_and_starts() {
    let request = batch();
    let result = EntityBatchResult {
        results: vec![
            EntityOperationResult::Completed { result: json!(8) },
            EntityOperationResult::Failed {
                failure: FailureDetails::new("ValueError", "negative").non_retriable(),
            },
        ],
        actions: vec![
            EntityAction::SignalEntity {
                instance_id: "@counter@b".into(),
                operation: "add".into(),
                input: json!(1),
                scheduled_time: Some(DateTime::UNIX_EPOCH + TimeDelta::days(20_000)),
            },
            EntityAction::StartOrchestration {
                name: "report".into(),
                instance_id: None,
                input: json!({"n": 8}),
                scheduled_time: None,
            },
        ],
        state: Some(json!({"count": 8})),
        failure: None,
    };
    let wire = entity_batch_result_to_wire("tok-1", &request, &result);
    assert_eq!(wire.completion_token, "tok-1");
    assert_eq!(wire.operation_infos.len(), 2);
    assert_eq!(
        wire.operation_infos[1]
            .response_destination
            .as_ref()
            .map(|to| to.instance_id.as_str()),
        Some("orch")
    );
    assert_eq!(entity_batch_result_from_wire(&wire).unwrap(), result);
}

#[test]
fn a_whole_batch_failure_comes_back_as_the_results_failure() {
    let result = EntityBatchResult {
        failure: Some(FailureDetails::new("WorkerCrashed", "out of memory")),
        ..Default::default()
    };
    let wire = entity_batch_result_to_wire("t", &batch(), &result);
    assert_eq!(entity_batch_result_from_wire(&wire).unwrap(), result);
}

#[test]
fn a_python_call_without_parent_execution_reads_with_an_empty_one_for_the_worker_side_to_fill() {
    // What durabletask-python 1.12.0 sends for ctx.call_entity (parentExecutionId=None).
    let wire = proto::OrchestratorAction {
        id: 3,
        orchestrator_action_type: Some(
            proto::orchestrator_action::OrchestratorActionType::SendEntityMessage(
                proto::SendEntityMessageAction {
                    entity_message_type: Some(
                        proto::send_entity_message_action::EntityMessageType::EntityOperationCalled(
                            proto::EntityOperationCalledEvent {
                                request_id: "r".into(),
                                operation: "get".into(),
                                parent_instance_id: Some("orch".into()),
                                target_instance_id: Some("@Counter@Key".into()),
                                ..Default::default()
                            },
                        ),
                    ),
                },
            ),
        ),
    };
    let action = action_from_wire(&wire).unwrap();
    assert_eq!(
        action.kind,
        ActionKind::CallEntity {
            request_id: "r".into(),
            // The name is case-insensitive and stored lower-cased; the key keeps its case.
            target_instance_id: "@counter@Key".into(),
            operation: "get".into(),
            input: Value::Null,
            parent_instance_id: "orch".into(),
            parent_execution_id: String::new(),
        }
    );
}

#[test]
fn entity_messages_with_a_bad_or_missing_entity_id_are_refused_naming_the_field() {
    use proto::send_entity_message_action::EntityMessageType as Message;
    let signal = |target: Option<&str>| proto::OrchestratorAction {
        id: 1,
        orchestrator_action_type: Some(
            proto::orchestrator_action::OrchestratorActionType::SendEntityMessage(
                proto::SendEntityMessageAction {
                    entity_message_type: Some(Message::EntityOperationSignaled(
                        proto::EntityOperationSignaledEvent {
                            request_id: "r".into(),
                            operation: "add".into(),
                            target_instance_id: target.map(str::to_string),
                            ..Default::default()
                        },
                    )),
                },
            ),
        ),
    };
    for (target, complaint) in [
        (Some("counter"), "is not an entity id"),
        (Some("@@key"), "is not an entity id"),
        (None, "is missing"),
    ] {
        let error = action_from_wire(&signal(target)).unwrap_err().to_string();
        assert!(
            error.contains("EntityOperationSignaledEvent.targetInstanceId")
                && error.contains(complaint),
            "{target:?}: {error}"
        );
    }
    let empty = proto::OrchestratorAction {
        id: 1,
        orchestrator_action_type: Some(
            proto::orchestrator_action::OrchestratorActionType::SendEntityMessage(
                proto::SendEntityMessageAction::default(),
            ),
        ),
    };
    assert!(
        action_from_wire(&empty)
            .unwrap_err()
            .to_string()
            .contains("SendEntityMessageAction.entityMessageType")
    );
    let bad_signal = proto::EntityBatchResult {
        actions: vec![proto::OperationAction {
            id: 0,
            operation_action_type: Some(proto::operation_action::OperationActionType::SendSignal(
                proto::SendSignalAction {
                    instance_id: "not-an-entity".into(),
                    name: "add".into(),
                    ..Default::default()
                },
            )),
        }],
        ..Default::default()
    };
    assert!(
        entity_batch_result_from_wire(&bad_signal)
            .unwrap_err()
            .to_string()
            .contains("SendSignalAction.instanceId")
    );
}

#[test]
fn an_operation_result_without_success_or_failure_is_refused() {
    let answer = proto::EntityBatchResult {
        results: vec![proto::OperationResult { result_type: None }],
        ..Default::default()
    };
    assert!(
        entity_batch_result_from_wire(&answer)
            .unwrap_err()
            .to_string()
            .contains("OperationResult.resultType")
    );
}
