//! `EngineHandle::fork`: a new instance from a prefix of another's current execution, resumed by
//! the engine, on the built-in samples (in memory, virtual time with auto-skip). Assertions are on
//! ids, statuses, outputs, histories and the errors a bad request gets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::InstanceRecord;
use durable_emu_engine::engine::{Engine, EngineConfig, EngineError, EngineHandle};
use durable_emu_engine::inspect::replay::CompletionEdit;
use durable_emu_engine::plugin::LoadedPlugin;
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use durable_sdk::serde_json::{Value, json};
use std::time::Duration;

fn engine() -> Engine {
    Engine::start(EngineConfig::in_memory(LoadedPlugin::builtin().unwrap())).unwrap()
}

fn finished(handle: &EngineHandle, id: &str) -> InstanceRecord {
    handle
        .wait_until_terminal(id, Duration::from_secs(30))
        .unwrap()
        .unwrap_or_else(|| panic!("{id} did not finish"))
}

fn run(handle: &EngineHandle, name: &str, input: Value, id: &str) -> InstanceRecord {
    handle
        .start_orchestration(name, input, Some(id.to_string()))
        .unwrap();
    finished(handle, id)
}

fn current_events(handle: &EngineHandle, id: &str) -> Vec<HistoryEvent> {
    handle.history(id).unwrap().pop().unwrap().events
}

fn activities_scheduled(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::TaskScheduled { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_fork_at_any_step_of_a_completed_sequence_runs_to_the_same_output() {
    let engine = engine();
    let handle = engine.handle();
    let source = run(&handle, "HelloSequence", Value::Null, "hello");
    assert_eq!(source.status, RuntimeStatus::Completed);
    let events = current_events(&handle, "hello");
    let started = events
        .iter()
        .position(|event| matches!(event.kind, EventKind::ExecutionStarted { .. }))
        .unwrap();
    let ended = events
        .iter()
        .position(|event| matches!(event.kind, EventKind::ExecutionCompleted { .. }))
        .unwrap();
    // Every cut: at episode boundaries (imported as is) and inside episodes (the cut episode runs
    // through the plugin first).
    for (number, step) in (started + 1..=ended).enumerate() {
        let fork = handle.fork("hello", step, None).unwrap();
        assert_eq!(
            fork,
            format!("hello-fork{}", number + 1),
            "forks are numbered"
        );
        let record = finished(&handle, &fork);
        assert_eq!(
            record.status,
            RuntimeStatus::Completed,
            "fork at step {step}"
        );
        assert_eq!(record.output, source.output, "fork at step {step}");
        let forked = current_events(&handle, &fork);
        assert_eq!(
            activities_scheduled(&forked),
            ["SayHello", "SayHello", "SayHello"],
            "fork at step {step} neither repeats nor skips a call"
        );
    }
    engine.shutdown();
}

#[test]
fn a_fork_with_the_next_completion_failed_takes_the_failure_path() {
    let engine = engine();
    let handle = engine.handle();
    let source = run(
        &handle,
        "OrderSaga",
        json!({"order_id": "o-1", "amount": 10.0}),
        "order",
    );
    assert_eq!(source.status, RuntimeStatus::Completed);
    let events = current_events(&handle, "order");
    let reserve = events
        .iter()
        .position(|event| {
            matches!(&event.kind, EventKind::TaskScheduled { name, .. } if name == "ReserveInventory")
        })
        .unwrap();
    let edit = CompletionEdit::Failure {
        error_type: "OutOfStock".into(),
        message: "nothing left in a fork".into(),
    };
    let fork = handle.fork("order", reserve + 1, Some(edit)).unwrap();
    assert_eq!(fork, "order-fork1");
    let record = finished(&handle, &fork);
    assert_eq!(record.status, RuntimeStatus::Failed);
    let failure = record.failure.expect("a failed fork has failure details");
    assert!(
        failure.to_string().contains("nothing left in a fork"),
        "the edited failure propagates: {failure}"
    );
    let forked = current_events(&handle, &fork);
    assert_eq!(
        activities_scheduled(&forked),
        ["ReserveInventory", "RefundPayment"],
        "the payment is refunded and the order is never shipped"
    );
    // The source is untouched.
    assert_eq!(
        handle.instance("order").unwrap().unwrap().status,
        RuntimeStatus::Completed
    );
    engine.shutdown();
}

#[test]
fn forking_an_unknown_instance_or_past_the_end_is_refused_and_creates_nothing() {
    let engine = engine();
    let handle = engine.handle();
    run(&handle, "HelloSequence", Value::Null, "hello");
    let length = current_events(&handle, "hello").len();

    let error = handle.fork("nobody", 1, None).unwrap_err();
    assert!(
        matches!(&error, EngineError::InstanceNotFound(id) if id == "nobody"),
        "{error}"
    );

    let error = handle.fork("hello", length + 1, None).unwrap_err();
    assert!(matches!(error, EngineError::InvalidArgument(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("has {length} events")) && message.contains("from 0 to"),
        "names the range: {message}"
    );

    let error = handle.fork("hello", length, None).unwrap_err();
    assert!(matches!(error, EngineError::InvalidArgument(_)), "{error}");
    assert!(error.to_string().contains("already ended"), "{error}");

    let error = handle.fork("hello", 0, None).unwrap_err();
    assert!(matches!(error, EngineError::InvalidArgument(_)), "{error}");
    assert!(error.to_string().contains("ExecutionStarted"), "{error}");

    let error = handle
        .fork(
            "hello",
            length - 1,
            Some(CompletionEdit::Result(json!("x"))),
        )
        .unwrap_err();
    assert!(matches!(error, EngineError::InvalidArgument(_)), "{error}");
    assert!(error.to_string().contains("nothing to edit"), "{error}");

    let ids: Vec<String> = handle
        .instances()
        .unwrap()
        .into_iter()
        .map(|record| record.instance_id)
        .collect();
    assert_eq!(ids, ["hello"], "a refused fork creates nothing");
    engine.shutdown();
}
