//! proto <-> SDK mapping: payload rules by table, history events and actions round-tripped.
// Test helpers panic on setup failures, which is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, Utc};
use durable_emu_grpc::mapping::*;
use durable_sdk::FailureDetails;
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use durable_sdk::protocol::{Action, ActionKind};
use proptest::prelude::*;
use serde_json::{Value, json};

#[test]
fn payloads_absent_and_empty_are_null_and_non_json_is_refused_naming_the_field() {
    let table: [(Option<&str>, Option<Value>); 6] = [
        (None, Some(Value::Null)),
        (Some(""), Some(Value::Null)),
        (Some("null"), Some(Value::Null)),
        (Some("\"text\""), Some(json!("text"))),
        (Some("{\"a\":[1,2]}"), Some(json!({"a": [1, 2]}))),
        (Some("plain text"), None),
    ];
    for (wire, expected) in table {
        let got = payload_from_wire("Test.input", wire);
        match expected {
            Some(value) => assert_eq!(got.unwrap(), value, "{wire:?}"),
            None => {
                let error = got.unwrap_err();
                assert!(error.to_string().contains("Test.input"), "{error}");
            }
        }
    }
    assert_eq!(payload_to_wire(&Value::Null), None);
    assert_eq!(payload_to_wire(&json!(5)).as_deref(), Some("5"));
}

#[test]
fn a_streamed_episode_takes_its_history_length_from_the_count_only_when_the_count_is_sound() {
    use durable_emu_grpc::proto;
    let streamed = |count: Option<prost_types::value::Kind>| {
        let mut request = proto::OrchestratorRequest {
            instance_id: "i".into(),
            requires_history_streaming: true,
            ..Default::default()
        };
        if let Some(kind) = count {
            request.properties.insert(
                PAST_EVENT_COUNT_PROPERTY.to_string(),
                prost_types::Value { kind: Some(kind) },
            );
        }
        request
    };
    use prost_types::value::Kind;
    let table = [
        (Some(Kind::NumberValue(12.0)), Some(12)),
        (Some(Kind::NumberValue(0.0)), Some(0)),
        (None, None),
        (Some(Kind::NumberValue(-1.0)), None),
        (Some(Kind::NumberValue(2.5)), None),
        (Some(Kind::StringValue("12".into())), None),
    ];
    for (count, expected) in table {
        let request = streamed(count.clone());
        assert_eq!(streamed_past_event_count(&request), expected, "{count:?}");
        let sdk = orchestrator_request_from_wire(&request).unwrap();
        assert_eq!(sdk.history_len, expected.unwrap_or(0), "{count:?}");
        assert!(sdk.past_events.is_empty());
    }
    // Not streamed, the count means nothing: the past events sent are the history.
    let mut sent = streamed(Some(Kind::NumberValue(12.0)));
    sent.requires_history_streaming = false;
    assert_eq!(streamed_past_event_count(&sent), None);
    assert_eq!(
        orchestrator_request_from_wire(&sent).unwrap().history_len,
        0
    );
}

#[test]
fn every_runtime_status_round_trips_through_the_wire_enum() {
    for status in [
        RuntimeStatus::Pending,
        RuntimeStatus::Running,
        RuntimeStatus::Suspended,
        RuntimeStatus::ContinuedAsNew,
        RuntimeStatus::Completed,
        RuntimeStatus::Failed,
        RuntimeStatus::Canceled,
        RuntimeStatus::Terminated,
    ] {
        assert_eq!(
            status_from_wire("s", status_to_wire(status) as i32).unwrap(),
            status
        );
    }
    assert!(status_from_wire("s", 99).is_err());
}

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

fn failure() -> impl Strategy<Value = FailureDetails> {
    (
        "[A-Za-z]{1,8}",
        "[a-z ]{0,12}",
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(kind, message, inner, non_retriable)| {
            let mut failure = FailureDetails::new(kind, message);
            if inner {
                failure = failure.with_inner(FailureDetails::new("Inner", "cause"));
            }
            if non_retriable {
                failure = failure.non_retriable();
            }
            failure
        })
}

fn event_kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        Just(EventKind::OrchestratorStarted),
        Just(EventKind::OrchestratorCompleted),
        ("[a-z]{1,6}", json_value())
            .prop_map(|(name, input)| EventKind::TaskScheduled { name, input }),
        (any::<i32>(), json_value()).prop_map(|(task_scheduled_id, result)| {
            EventKind::TaskCompleted {
                task_scheduled_id,
                result,
            }
        }),
        (any::<i32>(), failure()).prop_map(|(task_scheduled_id, failure)| EventKind::TaskFailed {
            task_scheduled_id,
            failure
        }),
        time().prop_map(|fire_at| EventKind::TimerCreated { fire_at }),
        (time(), any::<i32>())
            .prop_map(|(fire_at, timer_id)| EventKind::TimerFired { fire_at, timer_id }),
        ("[a-z]{1,6}", json_value())
            .prop_map(|(name, input)| EventKind::EventRaised { name, input }),
        (json_value(), any::<bool>())
            .prop_map(|(reason, recurse)| EventKind::ExecutionTerminated { reason, recurse }),
        proptest::option::of("[a-z]{0,6}")
            .prop_map(|reason| EventKind::ExecutionSuspended { reason }),
        (json_value(), proptest::option::of(failure())).prop_map(|(result, failure)| {
            EventKind::ExecutionCompleted {
                status: RuntimeStatus::Failed,
                result,
                failure,
            }
        }),
        ("[a-z]{1,6}", "[a-z]{1,6}", json_value()).prop_map(|(name, instance_id, input)| {
            EventKind::ExecutionStarted {
                name,
                version: None,
                input,
                instance_id,
                execution_id: "e1".into(),
                parent: None,
                scheduled_start: None,
            }
        }),
        ("[a-z]{1,6}", "[a-z ]{0,6}").prop_map(|(rule, effect)| EventKind::FaultInjected {
            rule,
            effect,
            target: "activity X (attempt 1)".into(),
            task_scheduled_id: Some(3),
        }),
    ]
}

proptest! {
    #[test]
    fn history_events_round_trip_through_the_wire(id in -1i32..1000, at in time(), kind in event_kind()) {
        let event = HistoryEvent { event_id: id, timestamp: at, kind };
        prop_assert_eq!(event_from_wire(&event_to_wire(&event)).unwrap(), event);
    }

    #[test]
    fn actions_round_trip_through_the_wire(id in 0i32..1000, name in "[a-z]{1,6}", input in json_value(), at in time()) {
        for kind in [
            ActionKind::ScheduleTask { name: name.clone(), input: input.clone() },
            ActionKind::CreateTimer { fire_at: at },
            ActionKind::CreateSubOrchestration { name: name.clone(), instance_id: "child".into(), input: input.clone() },
            ActionKind::SendEvent { instance_id: "other".into(), name: name.clone(), input: input.clone() },
            ActionKind::CompleteOrchestration { status: RuntimeStatus::Completed, result: input.clone(), failure: None, carryover_events: vec![] },
        ] {
            let action = Action { id, kind };
            prop_assert_eq!(action_from_wire(&action_to_wire(&action)).unwrap(), action);
        }
    }
}
