//! Rewind (`EngineHandle::rewind`): a failed instance runs on in a new execution whose history
//! is the failed one's without its failures, so the failed call runs again; the failed execution
//! stays readable; a failed child it awaits is rewound with it and a purged one started again;
//! anything but a failed instance is refused and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::engine::{Engine, EngineError, EngineHandle};
use durable_emu_engine::faults::parse_compact;
use durable_emu_testing::engine::{current_history, kinds, samples_config, wait};
use durable_sdk::history::{EventKind, RuntimeStatus};
use durable_sdk::serde_json::json;

fn engine() -> Engine {
    let mut config = samples_config();
    config.workers = 2;
    Engine::start(config).unwrap()
}

/// HelloSequence whose first `SayHello` fails once (no retry policy: the instance fails).
fn failed_hello(handle: &EngineHandle, id: &str) {
    handle
        .add_fault(parse_compact("activity=SayHello,limit=1,error=Boom:once", 0).unwrap())
        .unwrap();
    handle
        .start_orchestration("HelloSequence", json!(null), Some(id.into()))
        .unwrap();
    assert_eq!(wait(handle, id).status, RuntimeStatus::Failed);
}

#[test]
fn rewinding_a_failed_instance_runs_the_failed_activity_again_and_it_completes() {
    let engine = engine();
    let handle = &engine.handle();
    failed_hello(handle, "hello");
    handle.rewind("hello", Some("fixed".into())).unwrap();
    let record = wait(handle, "hello");
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(
        record.output,
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
    assert_eq!(record.failure, None);
}

#[test]
fn the_failed_execution_is_kept_and_the_rewound_one_records_execution_rewound() {
    let engine = engine();
    let handle = &engine.handle();
    failed_hello(handle, "kept");
    handle.rewind("kept", Some("try again".into())).unwrap();
    wait(handle, "kept");
    let executions = handle.history("kept").unwrap();
    assert_eq!(
        executions.len(),
        2,
        "the failed execution and the rewound one"
    );
    let failed = kinds(&executions[0].events);
    assert!(failed.contains(&"TaskFailed"), "{failed:?}");
    let rewound = &executions[1].events;
    assert!(
        !kinds(rewound).contains(&"TaskFailed"),
        "{:?}",
        kinds(rewound)
    );
    assert!(rewound.iter().any(|event| matches!(
        &event.kind,
        EventKind::ExecutionRewound { reason } if reason.as_deref() == Some("try again")
    )));
    let record = handle.instance("kept").unwrap().unwrap();
    assert_eq!(record.execution_id, executions[1].execution.execution_id);
}

#[test]
fn rewinding_an_instance_that_has_not_failed_is_refused_and_changes_nothing() {
    let engine = engine();
    let handle = &engine.handle();
    let id = handle
        .start_orchestration("HelloSequence", json!(null), Some("fine".into()))
        .unwrap();
    wait(handle, &id);
    let before = current_history(handle, &id);
    let error = handle.rewind(&id, None).unwrap_err();
    assert!(matches!(error, EngineError::NotFailed { .. }), "{error}");
    assert!(
        error.to_string().contains("only a failed instance"),
        "{error}"
    );
    assert_eq!(current_history(handle, &id), before);
    let error = handle.rewind("nobody", None).unwrap_err();
    assert!(matches!(error, EngineError::InstanceNotFound(_)), "{error}");
}

/// OrderSaga whose payment child fails (ChargeCard fails once, non-retriable), so the saga fails.
fn failed_saga(handle: &EngineHandle, id: &str) -> String {
    handle
        .add_fault(
            parse_compact(
                "activity=ChargeCard,limit=1,error=Declined:once,non-retriable",
                0,
            )
            .unwrap(),
        )
        .unwrap();
    handle
        .start_orchestration(
            "OrderSaga",
            json!({"order_id": id, "amount": 20.0}),
            Some(id.into()),
        )
        .unwrap();
    assert_eq!(wait(handle, id).status, RuntimeStatus::Failed);
    let child = current_history(handle, id)
        .into_iter()
        .find_map(|event| match event.kind {
            EventKind::SubOrchestrationInstanceCreated { instance_id, .. } => Some(instance_id),
            _ => None,
        })
        .expect("the saga started its payment child");
    assert_eq!(wait(handle, &child).status, RuntimeStatus::Failed);
    child
}

#[test]
fn rewinding_a_parent_rewinds_the_failed_child_it_awaits() {
    let engine = engine();
    let handle = &engine.handle();
    let child = failed_saga(handle, "saga");
    handle.rewind("saga", None).unwrap();
    assert_eq!(wait(handle, "saga").status, RuntimeStatus::Completed);
    let child_record = wait(handle, &child);
    assert_eq!(child_record.status, RuntimeStatus::Completed);
    assert_eq!(
        handle.history(&child).unwrap().len(),
        2,
        "the child was rewound"
    );
}

#[test]
fn a_purged_failed_child_is_started_again_by_the_parents_rewind() {
    let engine = engine();
    let handle = &engine.handle();
    let child = failed_saga(handle, "saga-purged");
    assert!(handle.purge(&child).unwrap());
    handle.rewind("saga-purged", None).unwrap();
    assert_eq!(wait(handle, "saga-purged").status, RuntimeStatus::Completed);
    assert_eq!(wait(handle, &child).status, RuntimeStatus::Completed);
    assert_eq!(handle.history(&child).unwrap().len(), 1, "started afresh");
}
