//! Client starts (`EngineHandle::start_with`): version and tags are recorded, a taken id is
//! refused unless the reuse policy replaces it, a scheduled start waits on the engine clock (and
//! what arrives meanwhile waits with it), `wait_until_started` ends when the instance leaves
//! Pending, and bad input changes nothing. The CLI's start (`start_orchestration`) is unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::engine::{Engine, EngineError, EngineHandle, ReusePolicy, StartOptions};
use durable_emu_testing::engine::{current_history, samples_config, wait};
use durable_sdk::history::{EventKind, RuntimeStatus};
use durable_sdk::serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

fn engine(auto_skip: bool) -> Engine {
    let mut config = samples_config();
    config.auto_skip = auto_skip;
    config.workers = 2;
    Engine::start(config).unwrap()
}

fn with_id(id: &str) -> StartOptions {
    StartOptions {
        instance_id: Some(id.to_string()),
        ..StartOptions::default()
    }
}

/// An instance that waits for its `Approval` event (virtual time stands still without
/// auto-skip, so it never ends on its own).
fn waiting(handle: &EngineHandle, options: StartOptions) -> String {
    handle
        .start_with(
            "ApprovalWorkflow",
            json!({"request": "a laptop", "timeout_hours": 24}),
            options,
        )
        .unwrap()
}

fn status(handle: &EngineHandle, id: &str) -> RuntimeStatus {
    handle
        .instance(id)
        .unwrap()
        .expect("the instance exists")
        .status
}

#[test]
fn version_and_tags_are_recorded_on_the_instance_and_in_execution_started() {
    let engine = engine(true);
    let handle = &engine.handle();
    let tags = BTreeMap::from([("team".to_string(), "payments".to_string())]);
    let id = handle
        .start_with(
            "HelloSequence",
            json!(null),
            StartOptions {
                instance_id: Some("tagged".into()),
                version: Some("1.2".into()),
                tags: tags.clone(),
                ..StartOptions::default()
            },
        )
        .unwrap();
    let record = wait(handle, &id);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.version.as_deref(), Some("1.2"));
    assert_eq!(record.tags, tags);
    let started = current_history(handle, &id)
        .into_iter()
        .find_map(|event| match event.kind {
            EventKind::ExecutionStarted { version, .. } => Some(version),
            _ => None,
        });
    assert_eq!(started, Some(Some("1.2".to_string())));
}

#[test]
fn a_taken_id_is_already_exists_under_the_default_policy_whether_running_or_ended() {
    let engine = engine(false);
    let handle = &engine.handle();
    waiting(handle, with_id("busy"));
    let error = handle
        .start_with("HelloSequence", json!(null), with_id("busy"))
        .unwrap_err();
    assert!(
        matches!(error, EngineError::AlreadyExists { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("reuse policy"), "{error}");
    assert_eq!(status(handle, "busy"), RuntimeStatus::Running);

    let engine = self::engine(true);
    let handle = &engine.handle();
    let id = handle
        .start_with("HelloSequence", json!(null), with_id("done"))
        .unwrap();
    wait(handle, &id);
    let error = handle
        .start_with("HelloSequence", json!(null), with_id("done"))
        .unwrap_err();
    assert!(
        matches!(error, EngineError::AlreadyExists { .. }),
        "{error}"
    );
}

#[test]
fn replace_ended_replaces_an_ended_instance_and_refuses_a_running_one() {
    let engine = engine(true);
    let handle = &engine.handle();
    let first = handle
        .start_with("HelloSequence", json!(null), with_id("again"))
        .unwrap();
    let before = wait(handle, &first);
    let options = StartOptions {
        reuse: ReusePolicy::ReplaceEnded,
        ..with_id("again")
    };
    handle
        .start_with("HelloSequence", json!(null), options)
        .unwrap();
    let after = wait(handle, "again");
    assert_eq!(after.status, RuntimeStatus::Completed);
    assert_ne!(after.execution_id, before.execution_id, "a new instance");

    let engine = self::engine(false);
    let handle = &engine.handle();
    waiting(handle, with_id("live"));
    let error = handle
        .start_with(
            "HelloSequence",
            json!(null),
            StartOptions {
                reuse: ReusePolicy::ReplaceEnded,
                ..with_id("live")
            },
        )
        .unwrap_err();
    assert!(
        matches!(error, EngineError::AlreadyExists { .. }),
        "{error}"
    );
}

#[test]
fn terminate_running_replaces_a_running_instance_with_a_new_one() {
    let engine = engine(false);
    let handle = &engine.handle();
    waiting(handle, with_id("swap"));
    let old = handle.instance("swap").unwrap().unwrap();
    handle
        .start_with(
            "HelloSequence",
            json!(null),
            StartOptions {
                reuse: ReusePolicy::TerminateRunning,
                ..with_id("swap")
            },
        )
        .unwrap();
    let record = wait(handle, "swap");
    assert_eq!(record.name, "HelloSequence");
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_ne!(record.execution_id, old.execution_id);
}

#[test]
fn a_replaceable_status_list_replaces_only_those_statuses() {
    let engine = engine(false);
    let handle = &engine.handle();
    waiting(handle, with_id("listed"));
    let only_ended = ReusePolicy::Replaceable(vec![RuntimeStatus::Completed]);
    let error = handle
        .start_with(
            "HelloSequence",
            json!(null),
            StartOptions {
                reuse: only_ended,
                ..with_id("listed")
            },
        )
        .unwrap_err();
    assert!(
        matches!(error, EngineError::AlreadyExists { .. }),
        "{error}"
    );
    let running_too = ReusePolicy::Replaceable(vec![RuntimeStatus::Running]);
    handle
        .start_with(
            "ApprovalWorkflow",
            json!({"request": "a desk", "timeout_hours": 1}),
            StartOptions {
                reuse: running_too,
                ..with_id("listed")
            },
        )
        .unwrap();
    let record = handle.instance("listed").unwrap().unwrap();
    assert_eq!(
        record.input,
        json!({"request": "a desk", "timeout_hours": 1})
    );
}

#[test]
fn a_scheduled_start_keeps_the_instance_pending_until_the_engine_clock_reaches_it() {
    let engine = engine(false);
    let handle = &engine.handle();
    let at = handle.now().unwrap() + chrono::Duration::hours(2);
    let id = handle
        .start_with(
            "HelloSequence",
            json!(null),
            StartOptions {
                scheduled_start: Some(at),
                ..with_id("later")
            },
        )
        .unwrap();
    assert_eq!(status(handle, &id), RuntimeStatus::Pending);
    assert_eq!(
        handle.instance(&id).unwrap().unwrap().scheduled_start,
        Some(at)
    );
    handle.advance_clock(Duration::from_secs(3600)).unwrap();
    durable_emu_testing::engine::eventually("the first hour passes", || {
        handle.advancing_to().unwrap().is_none()
    });
    assert_eq!(
        status(handle, &id),
        RuntimeStatus::Pending,
        "one hour early"
    );
    handle.advance_clock(Duration::from_secs(3600)).unwrap();
    let record = wait(handle, &id);
    assert_eq!(record.status, RuntimeStatus::Completed);
    let started_at = current_history(handle, &id)
        .into_iter()
        .find(|event| matches!(event.kind, EventKind::ExecutionStarted { .. }))
        .unwrap()
        .timestamp;
    assert!(started_at >= at, "started {started_at}, scheduled {at}");
}

#[test]
fn an_event_raised_before_a_scheduled_start_waits_and_is_delivered_after_the_start() {
    let engine = engine(false);
    let handle = &engine.handle();
    let at = handle.now().unwrap() + chrono::Duration::minutes(30);
    let id = waiting(
        handle,
        StartOptions {
            scheduled_start: Some(at),
            ..with_id("early-answer")
        },
    );
    handle.raise_event(&id, "Approval", json!(true)).unwrap();
    assert_eq!(status(handle, &id), RuntimeStatus::Pending);
    handle.advance_clock(Duration::from_secs(1800)).unwrap();
    let record = wait(handle, &id);
    assert_eq!(record.output, json!("Approved"));
    let kinds: Vec<&str> = current_history(handle, &id)
        .iter()
        .map(|event| event.kind.type_name())
        .collect();
    let started = kinds.iter().position(|kind| *kind == "ExecutionStarted");
    let raised = kinds.iter().position(|kind| *kind == "EventRaised");
    assert!(started < raised, "{kinds:?}");
}

#[test]
fn terminating_an_instance_before_its_scheduled_start_ends_it_at_once() {
    let engine = engine(false);
    let handle = &engine.handle();
    let at = handle.now().unwrap() + chrono::Duration::days(3);
    let id = handle
        .start_with(
            "HelloSequence",
            json!(null),
            StartOptions {
                scheduled_start: Some(at),
                ..with_id("never")
            },
        )
        .unwrap();
    handle.terminate(&id, json!("not needed"), false).unwrap();
    let record = wait(handle, &id);
    assert_eq!(record.status, RuntimeStatus::Terminated);
    assert_eq!(record.output, json!("not needed"));
}

#[test]
fn wait_until_started_answers_none_while_pending_and_the_record_once_started() {
    let engine = engine(false);
    let handle = &engine.handle();
    let at = handle.now().unwrap() + chrono::Duration::hours(1);
    let id = handle
        .start_with(
            "HelloSequence",
            json!(null),
            StartOptions {
                scheduled_start: Some(at),
                ..with_id("slow-start")
            },
        )
        .unwrap();
    assert_eq!(
        handle
            .wait_until_started(&id, Duration::from_millis(50))
            .unwrap(),
        None
    );
    handle.advance_clock(Duration::from_secs(3600)).unwrap();
    let record = handle
        .wait_until_started(&id, Duration::from_secs(60))
        .unwrap()
        .expect("it starts once its time has come");
    assert_ne!(record.status, RuntimeStatus::Pending);
    let error = handle
        .wait_until_started("nobody", Duration::from_secs(1))
        .unwrap_err();
    assert!(matches!(error, EngineError::InstanceNotFound(_)), "{error}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_async_wait_until_started_ends_at_its_deadline_or_at_the_start() {
    let engine = engine(false);
    let door = engine.handle().asynchronous();
    let at = door.now().await.unwrap() + chrono::Duration::hours(1);
    let id = door
        .start_with(
            "HelloSequence",
            json!(null),
            StartOptions {
                scheduled_start: Some(at),
                ..with_id("async-start")
            },
        )
        .await
        .unwrap();
    let waited = door
        .wait_until_started(&id, tokio::time::sleep(Duration::from_millis(50)))
        .await
        .unwrap();
    assert_eq!(waited, None);
    door.advance_clock(Duration::from_secs(3600)).await.unwrap();
    let record = door
        .wait_until_started(&id, tokio::time::sleep(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("it starts");
    assert_ne!(record.status, RuntimeStatus::Pending);
}

#[test]
fn bad_start_input_is_refused_and_creates_nothing() {
    let engine = engine(true);
    let handle = &engine.handle();
    let error = handle
        .start_with("HelloSequence", json!(null), with_id("  "))
        .unwrap_err();
    assert!(matches!(error, EngineError::InvalidArgument(_)), "{error}");
    let error = handle
        .start_with("NoSuchThing", json!(null), with_id("x"))
        .unwrap_err();
    assert!(
        matches!(error, EngineError::UnknownOrchestration { .. }),
        "{error}"
    );
    assert!(handle.instances().unwrap().is_empty());
}

#[test]
fn the_cli_start_still_replaces_an_ended_instance_of_the_same_id() {
    let engine = engine(true);
    let handle = &engine.handle();
    let id = handle
        .start_orchestration("HelloSequence", json!(null), Some("cli".into()))
        .unwrap();
    wait(handle, &id);
    handle
        .start_orchestration("HelloSequence", json!(null), Some("cli".into()))
        .unwrap();
    assert_eq!(wait(handle, "cli").status, RuntimeStatus::Completed);
}
