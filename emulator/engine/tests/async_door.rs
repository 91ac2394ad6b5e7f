//! The async door (`EngineHandle::asynchronous`): commands awaited on a current-thread tokio
//! runtime against an in-memory engine running the sample functions. Waits end at the caller's
//! deadline, many tasks wait at once, abandoned waits are dropped by the core, a client that
//! falls behind on events is told to reload, and errors keep their wire kind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::engine::{
    AsyncEngineHandle, Delivery, Engine, EngineError, EngineEvent, WireKind,
};
use durable_emu_testing::engine::samples_config;
use durable_sdk::history::RuntimeStatus;
use durable_sdk::serde_json::json;
use std::time::Duration;

/// A bound on how long any test may wait, so a broken door fails instead of hanging.
const GUARD: Duration = Duration::from_secs(60);

fn engine(auto_skip: bool) -> Engine {
    let mut config = samples_config();
    config.auto_skip = auto_skip;
    config.workers = 2;
    Engine::start(config).unwrap()
}

/// An instance that waits for its `Approval` event (virtual time does not move without
/// auto-skip, so its escalation timer never fires): it never ends on its own.
async fn waiting_instance(door: &AsyncEngineHandle, id: &str) -> String {
    door.start_orchestration(
        "ApprovalWorkflow",
        json!({"request": "a new laptop", "timeout_hours": 24}),
        Some(id.to_string()),
    )
    .await
    .unwrap()
}

fn far_deadline() -> tokio::time::Sleep {
    tokio::time::sleep(GUARD)
}

#[tokio::test(flavor = "current_thread")]
async fn a_started_instance_is_awaited_until_it_completes() {
    let engine = engine(true);
    let door = engine.handle().asynchronous();
    let id = door
        .start_orchestration("HelloSequence", json!(null), None)
        .await
        .unwrap();
    let record = door
        .wait_until_terminal(&id, far_deadline())
        .await
        .unwrap()
        .expect("the instance completes before the deadline");
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(
        record.output,
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
    // Waiting on an instance that has already ended answers at once.
    let again = door
        .wait_until_terminal(&id, std::future::pending())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.status, RuntimeStatus::Completed);
    let history = door.history(&id).await.unwrap();
    assert_eq!(history.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_deadline_that_passes_ends_the_wait_with_none_and_the_instance_runs_on() {
    let engine = engine(false);
    let door = engine.handle().asynchronous();
    let id = waiting_instance(&door, "approval-1").await;
    let waited = tokio::time::timeout(
        GUARD,
        door.wait_until_terminal(&id, tokio::time::sleep(Duration::from_millis(20))),
    )
    .await
    .expect("the wait ends at its own deadline, not the guard's");
    assert_eq!(waited.unwrap(), None);
    let record = door.instance(&id).await.unwrap().unwrap();
    assert_eq!(record.status, RuntimeStatus::Running);
    // The instance is still reachable and finishes when told to.
    door.raise_event(&id, "Approval", json!(true))
        .await
        .unwrap();
    let record = door
        .wait_until_terminal(&id, far_deadline())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!("Approved"));
}

#[tokio::test(flavor = "current_thread")]
async fn many_tasks_await_their_instances_at_once() {
    let engine = engine(true);
    let door = engine.handle().asynchronous();
    // Spawning needs the door's futures to be Send and 'static once their arguments are owned.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40_u64 {
        let door = door.clone();
        tasks.spawn(async move {
            let id = door
                .start_orchestration("BenchChain", json!(n), Some(format!("chain-{n}")))
                .await?;
            let record = door.wait_until_terminal(&id, far_deadline()).await?;
            Ok::<_, EngineError>((n, record))
        });
    }
    // Several tasks also wait on one shared instance.
    let shared = door
        .start_orchestration("FanOutFanIn", json!(5), Some("shared".into()))
        .await
        .unwrap();
    for _ in 0..10 {
        let door = door.clone();
        let shared = shared.clone();
        tasks.spawn(async move {
            let record = door.wait_until_terminal(&shared, far_deadline()).await?;
            Ok((u64::MAX, record))
        });
    }
    let mut chains = 0;
    let mut shared_waiters = 0;
    while let Some(joined) = tasks.join_next().await {
        let (n, record) = joined.unwrap().unwrap();
        let record = record.expect("every instance completes before the deadline");
        assert_eq!(record.status, RuntimeStatus::Completed, "{record:?}");
        if n == u64::MAX {
            assert_eq!(record.instance_id, "shared");
            shared_waiters += 1;
        } else {
            assert_eq!(record.output, json!(n + 5));
            chains += 1;
        }
    }
    assert_eq!((chains, shared_waiters), (40, 10));
}

#[tokio::test(flavor = "current_thread")]
async fn waits_whose_callers_are_gone_are_dropped_by_the_core() {
    let engine = engine(false);
    let door = engine.handle().asynchronous();
    let id = waiting_instance(&door, "approval-abandoned").await;

    // Waits dropped by their caller (tasks aborted while waiting).
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let door = door.clone();
        let id = id.clone();
        tasks.spawn(async move { door.wait_until_terminal(&id, std::future::pending()).await });
    }
    let mut held = 0;
    for _ in 0..1000 {
        held = door.terminal_waiters_held().await.unwrap();
        if held == 100 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(held, 100, "the core holds every live wait");
    tasks.abort_all();
    while let Some(joined) = tasks.join_next().await {
        assert!(joined.unwrap_err().is_cancelled());
    }
    assert_eq!(door.terminal_waiters_held().await.unwrap(), 0);

    // Waits whose deadline passed.
    for _ in 0..50 {
        let waited = door
            .wait_until_terminal(&id, tokio::time::sleep(Duration::from_millis(1)))
            .await
            .unwrap();
        assert_eq!(waited, None);
    }
    assert_eq!(door.terminal_waiters_held().await.unwrap(), 0);

    // A blocking wait that times out is let go too.
    let blocking = door.blocking().clone();
    let waited = tokio::task::spawn_blocking(move || {
        blocking.wait_until_terminal("approval-abandoned", Duration::from_millis(1))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(waited, None);
    assert_eq!(door.terminal_waiters_held().await.unwrap(), 0);

    // A wait still held is answered as before once the instance ends.
    let live = {
        let door = door.clone();
        let id = id.clone();
        tokio::spawn(async move { door.wait_until_terminal(&id, far_deadline()).await })
    };
    while door.terminal_waiters_held().await.unwrap() != 1 {
        tokio::task::yield_now().await;
    }
    door.raise_event(&id, "Approval", json!(false))
        .await
        .unwrap();
    let record = live.await.unwrap().unwrap().unwrap();
    assert_eq!(record.output, json!("Rejected"));
    assert_eq!(door.terminal_waiters_held().await.unwrap(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_that_falls_behind_on_events_is_told_to_reload_and_the_engine_carries_on() {
    let engine = engine(true);
    let door = engine.handle().asynchronous();
    let mut stream = door.events();
    // More events than the broadcast holds for one client, none of them read meanwhile.
    let id = door
        .start_orchestration("BenchFanOut", json!(12_000), None)
        .await
        .unwrap();
    let record = door
        .wait_until_terminal(&id, far_deadline())
        .await
        .unwrap()
        .expect("the engine is not held back by a client that does not read");
    assert_eq!(record.status, RuntimeStatus::Completed);
    match stream.next().await {
        Some(Delivery::Reload { missed }) => assert!(missed > 0),
        other => panic!("expected a reload, got {other:?}"),
    }
    assert!(matches!(stream.next().await, Some(Delivery::Event(_))));
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_that_keeps_up_sees_the_instance_created() {
    let engine = engine(true);
    let door = engine.handle().asynchronous();
    let mut stream = door.events();
    let id = door
        .start_orchestration("HelloSequence", json!(null), None)
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(GUARD, stream.next()).await.unwrap() {
            Some(Delivery::Event(EngineEvent::InstanceCreated { instance_id, .. }))
                if instance_id == id =>
            {
                break;
            }
            Some(Delivery::Event(_)) => {}
            other => panic!("expected events, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn errors_through_the_door_keep_their_messages_and_wire_kinds() {
    let engine = engine(true);
    let door = engine.handle().asynchronous();
    let error = door.remove_fault(99).await.unwrap_err();
    assert_eq!(error.to_string(), "no fault rule 99");
    assert_eq!(
        (error.kind(), error.http_status()),
        (WireKind::NotFound, 404)
    );
    let error = door
        .start_orchestration("Nope", json!(null), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), WireKind::NotFound);
    let error = door
        .start_orchestration("HelloSequence", json!(null), Some("  ".into()))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "an instance id cannot be empty");
    assert_eq!(
        (error.kind(), error.grpc_code()),
        (WireKind::InvalidArgument, 3)
    );
    let error = door
        .wait_until_terminal("missing", far_deadline())
        .await
        .unwrap_err();
    assert!(matches!(error, EngineError::InstanceNotFound(_)), "{error}");
    assert_eq!(door.terminal_waiters_held().await.unwrap(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_stopped_engine_answers_calls_and_waits_with_unavailable() {
    let engine = engine(false);
    let door = engine.handle().asynchronous();
    let id = waiting_instance(&door, "approval-stopping").await;
    let waiting = {
        let door = door.clone();
        tokio::spawn(async move { door.wait_until_terminal(&id, far_deadline()).await })
    };
    while door.terminal_waiters_held().await.unwrap() != 1 {
        tokio::task::yield_now().await;
    }
    engine.shutdown();
    let error = waiting.await.unwrap().unwrap_err();
    assert!(matches!(error, EngineError::Stopped), "{error}");
    let error = door.now().await.unwrap_err();
    assert_eq!(error.kind(), WireKind::Unavailable);
}
