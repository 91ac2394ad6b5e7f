//! The plugin boundary, end to end: real cdylibs built by cargo, loaded with libloading, called
//! through the C ABI. A layer of docs/architecture.md#tests-in-layers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::plugin::{LoadedPlugin, PluginError};
use durable_emu_tests::built_cdylib;
use durable_sdk::chrono::{DateTime, Utc};
use durable_sdk::history::{EventKind, HistoryEvent};
use durable_sdk::protocol::{
    ActionKind, ActivityOutcome, ActivityRequest, OrchestratorRequest, OrchestratorResponse,
};
use durable_sdk::serde_json::{Value, json};
use durable_sdk::{PANIC, RuntimeStatus};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + seconds, 0).unwrap()
}

fn event(kind: EventKind, seconds: i64) -> HistoryEvent {
    HistoryEvent {
        event_id: -1,
        timestamp: at(seconds),
        kind,
    }
}

fn activity_request(name: &str, input: Value) -> ActivityRequest {
    ActivityRequest {
        name: name.into(),
        input,
        instance_id: "i-1".into(),
        task_id: 0,
        attempt: 1,
    }
}

/// Runs `HelloSequence` to completion the way a host does: every episode after the first sends
/// only its new events (the plugin continues its cached session), activities run through the
/// same C ABI, and each action is recorded in history.
#[test]
fn a_real_cdylib_runs_an_orchestration_and_its_activities_through_the_c_abi() {
    let plugin = LoadedPlugin::load(&built_cdylib("sample-functions")).unwrap();
    assert_eq!(plugin.manifest.crate_name, "sample-functions");
    assert!(
        plugin
            .manifest
            .orchestrators
            .contains(&"HelloSequence".into())
    );
    assert!(plugin.manifest.activities.contains(&"SayHello".into()));
    assert!(!plugin.manifest.build_id.is_empty());

    let mut history: Vec<HistoryEvent> = Vec::new();
    let mut new_events = vec![
        event(EventKind::OrchestratorStarted, 0),
        event(
            EventKind::ExecutionStarted {
                name: "HelloSequence".into(),
                version: None,
                input: Value::Null,
                instance_id: "i-1".into(),
                execution_id: "e-1".into(),
                parent: None,
                scheduled_start: None,
            },
            0,
        ),
    ];
    let mut scheduled = Vec::new();
    for episode in 1..=10 {
        let request = OrchestratorRequest {
            instance_id: "i-1".into(),
            execution_id: "e-1".into(),
            history_len: history.len(),
            past_events: Vec::new(),
            new_events: new_events.clone(),
            include_replay_logs: false,
            max_actions: None,
        };
        let response: OrchestratorResponse = plugin.handle.orchestrate(&request).unwrap();
        assert!(
            !response.needs_history,
            "episode {episode} missed its session"
        );
        history.append(&mut new_events);
        let mut completion = None;
        for action in &response.actions {
            history.push(HistoryEvent {
                event_id: action.id,
                timestamp: at(episode),
                kind: action.kind.to_event_kind(),
            });
            match &action.kind {
                ActionKind::ScheduleTask { name, input } => {
                    scheduled.push(input.clone());
                    let outcome = plugin
                        .handle
                        .run_activity(&ActivityRequest {
                            task_id: action.id,
                            ..activity_request(name, input.clone())
                        })
                        .unwrap();
                    let ActivityOutcome::Completed { result } = outcome else {
                        panic!("SayHello failed: {outcome:?}");
                    };
                    new_events.push(event(EventKind::OrchestratorStarted, episode));
                    new_events.push(event(
                        EventKind::TaskCompleted {
                            task_scheduled_id: action.id,
                            result,
                        },
                        episode,
                    ));
                }
                ActionKind::CompleteOrchestration { status, result, .. } => {
                    completion = Some((*status, result.clone()));
                }
                other => panic!("unexpected action {other:?}"),
            }
        }
        history.push(event(EventKind::OrchestratorCompleted, episode));
        if let Some((status, output)) = completion {
            assert_eq!(status, RuntimeStatus::Completed);
            assert_eq!(
                output,
                json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
            );
            assert_eq!(
                scheduled,
                [json!("Tokyo"), json!("Seattle"), json!("London")]
            );
            return;
        }
    }
    panic!("HelloSequence did not complete in 10 episodes");
}

#[test]
fn a_panicking_activity_becomes_a_failure_with_its_message_and_location() {
    let plugin = LoadedPlugin::load(&built_cdylib("tests/fixtures/panicking-plugin")).unwrap();
    let outcome = plugin
        .handle
        .run_activity(&activity_request("Explode", json!("kaboom")))
        .unwrap();
    let ActivityOutcome::Failed { failure } = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(failure.error_type, PANIC);
    assert_eq!(failure.error_message, "activity exploded: kaboom");
    assert!(failure.stack_trace.unwrap().contains("lib.rs"));

    // The plugin (and this process) keep working after the panic.
    let outcome = plugin
        .handle
        .run_activity(&activity_request("Decline", json!(500)))
        .unwrap();
    let ActivityOutcome::Failed { failure } = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(failure.error_type, "CardDeclined");
    assert!(failure.is_non_retriable);
}

#[test]
fn a_panicking_orchestrator_fails_the_orchestration_instead_of_crashing() {
    let plugin = LoadedPlugin::load(&built_cdylib("tests/fixtures/panicking-plugin")).unwrap();
    let request = OrchestratorRequest {
        instance_id: "i-2".into(),
        execution_id: "e-1".into(),
        history_len: 0,
        past_events: Vec::new(),
        new_events: vec![
            event(EventKind::OrchestratorStarted, 0),
            event(
                EventKind::ExecutionStarted {
                    name: "ExplodeOrchestration".into(),
                    version: None,
                    input: Value::Null,
                    instance_id: "i-2".into(),
                    execution_id: "e-1".into(),
                    parent: None,
                    scheduled_start: None,
                },
                0,
            ),
        ],
        include_replay_logs: false,
        max_actions: None,
    };
    let response = plugin.handle.orchestrate(&request).unwrap();
    let [action] = response.actions.as_slice() else {
        panic!("expected one action, got {:?}", response.actions);
    };
    let ActionKind::CompleteOrchestration {
        status, failure, ..
    } = &action.kind
    else {
        panic!("expected a completion, got {action:?}");
    };
    assert_eq!(*status, RuntimeStatus::Failed);
    let failure = failure.as_ref().unwrap();
    assert_eq!(failure.error_type, PANIC);
    assert_eq!(failure.error_message, "orchestrator exploded");
}

#[test]
fn an_unknown_activity_name_is_a_non_retriable_failure_naming_the_known_ones() {
    let plugin = LoadedPlugin::load(&built_cdylib("sample-functions")).unwrap();
    let outcome = plugin
        .handle
        .run_activity(&activity_request("SayGoodbye", json!("x")))
        .unwrap();
    let ActivityOutcome::Failed { failure } = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(failure.error_type, "ActivityNotFound");
    assert!(failure.error_message.contains("SayHello"));
    assert!(failure.is_non_retriable);
}

#[test]
fn a_library_with_another_abi_version_is_refused_before_anything_else_is_touched() {
    let library = built_cdylib("tests/fixtures/wrong-abi");
    let error = LoadedPlugin::load(&library).unwrap_err();
    match &error {
        PluginError::AbiMismatch {
            found, expected, ..
        } => {
            assert_eq!(*found, 999);
            assert_eq!(*expected, durable_sdk::ffi::ABI_VERSION);
        }
        other => panic!("expected an ABI mismatch, got {other}"),
    }
    assert!(
        error
            .to_string()
            .contains("rebuild it against a matching durable-sdk")
    );
}

#[test]
fn a_library_that_is_not_a_plugin_is_refused_with_the_missing_symbol() {
    let library = built_cdylib("tests/fixtures/not-a-plugin");
    let error = LoadedPlugin::load(&library).unwrap_err();
    assert!(
        matches!(error, PluginError::NotAPlugin { symbol, .. } if symbol == "durable_plugin_abi_version"),
        "{error}"
    );
}

#[test]
fn loading_the_same_file_twice_gives_two_independent_builds_of_the_same_content() {
    let library = built_cdylib("sample-functions");
    let first = LoadedPlugin::load(&library).unwrap();
    let second = LoadedPlugin::load(&library).unwrap();
    assert_eq!(first.content_hash, second.content_hash);
    assert_eq!(first.manifest, second.manifest);
    let outcome = second
        .handle
        .run_activity(&activity_request("SayHello", json!("Oslo")))
        .unwrap();
    assert_eq!(
        outcome,
        ActivityOutcome::Completed {
            result: json!("Hello Oslo!")
        }
    );
}
