//! Durable entities through the engine handle (docs/semantics.md#entities), with an in-process
//! plugin: operations run one at a time in arrival order, a failed operation rolls the state back
//! and is logged, delayed signals wait for the virtual clock, an entity signals another and
//! starts an orchestration, faults hit entity operations, remote workers run entity batches
//! through the hub, queued work survives a restart, and the reader sees it all without an engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::engine::{
    Engine, EngineConfig, EngineEvent, EngineHandle, EntityOperationOutcome, EntityQuery,
    EntityRequester,
};
use durable_emu_engine::faults::parse_compact;
use durable_emu_engine::plugin::{LoadedPlugin, PluginOrigin};
use durable_emu_engine::{DbLocation, EngineError, Reader, RemoteWorkItem, WorkKind, WorkerInfo};
use durable_emu_testing::engine::{eventually, wait};
use durable_sdk::history::RuntimeStatus;
use durable_sdk::serde_json::{Value, json};
use durable_sdk::{EntityContext, EntityId, FailureDetails, OrchestrationContext, Registry};
use std::path::Path;
use std::time::Duration;

// ----- the functions --------------------------------------------------------------------------

/// A counter: `add n`, `get`, `reset`, `delete`; `fail` changes the state, then fails (so the
/// change must be rolled back).
async fn counter(ctx: EntityContext) -> Result<i64, FailureDetails> {
    let mut value: i64 = ctx.state_or_default()?;
    match ctx.operation().as_str() {
        "add" => value += ctx.input::<i64>()?,
        "get" => {}
        "reset" => value = 0,
        "delete" => {
            ctx.delete_state();
            return Ok(0);
        }
        "fail" => {
            ctx.set_state(value + 1000);
            ctx.signal_entity(&EntityId::new("log", "from-fail"), "append", "never");
            return Err(FailureDetails::new("Overdrawn", "not enough"));
        }
        _ => return Err(ctx.unknown_operation()),
    }
    ctx.set_state(value);
    Ok(value)
}

/// A list that `append` adds its input to.
async fn log(ctx: EntityContext) -> Result<usize, FailureDetails> {
    let mut items: Vec<Value> = ctx.state_or_default()?;
    items.push(ctx.raw_input());
    ctx.set_state(&items);
    Ok(items.len())
}

/// Passes its input on to `@log@relay`, and starts `Echo` with it when asked to `start`.
async fn relay(ctx: EntityContext) -> Result<String, FailureDetails> {
    match ctx.operation().as_str() {
        "forward" => {
            ctx.signal_entity(&EntityId::new("log", "relay"), "append", ctx.raw_input());
            Ok(String::new())
        }
        "start" => Ok(ctx.start_orchestration("Echo", ctx.raw_input())),
        _ => Err(ctx.unknown_operation()),
    }
}

async fn echo(_ctx: OrchestrationContext, input: Value) -> Result<Value, FailureDetails> {
    Ok(input)
}

/// How often `@slow@*` started an operation, and whether one is running now.
static SLOW_STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static SLOW_RUNNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Takes a while (so a test can stop the engine while it runs) and counts its starts.
async fn slow(ctx: EntityContext) -> Result<u32, FailureDetails> {
    use std::sync::atomic::Ordering;
    let starts = SLOW_STARTS.fetch_add(1, Ordering::SeqCst) + 1;
    SLOW_RUNNING.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    SLOW_RUNNING.store(false, Ordering::SeqCst);
    ctx.set_state(starts);
    Ok(starts)
}

fn registry() -> Registry {
    Registry::new()
        .entity("Counter", counter)
        .entity("Slow", slow)
        .entity("Log", log)
        .entity("Relay", relay)
        .orchestrator("Echo", echo)
}

durable_sdk::in_process_plugin!(registry);

fn plugin() -> LoadedPlugin {
    LoadedPlugin::in_process(
        durable_plugin_handle(),
        PluginOrigin::InProcess("entity-tests".into()),
    )
    .unwrap()
}

fn engine() -> Engine {
    Engine::start(EngineConfig::in_memory(plugin())).unwrap()
}

// ----- helpers --------------------------------------------------------------------------------

fn state(handle: &EngineHandle, id: &str) -> Option<Value> {
    handle
        .entity(id, true)
        .unwrap()
        .and_then(|entity| entity.state)
}

/// Waits until the entity has run `count` operations.
fn ran(handle: &EngineHandle, id: &str, count: usize) {
    eventually(&format!("{id} to run {count} operations"), || {
        handle.entity_operations(id, usize::MAX).unwrap().len() >= count
    });
}

// ----- ordering, state, the log ---------------------------------------------------------------

#[test]
fn signals_run_one_at_a_time_in_the_order_they_arrived() {
    let engine = engine();
    let handle = engine.handle();
    for n in 0..300 {
        handle
            .signal_entity("@log@a", "append", json!(n), None)
            .unwrap();
    }
    ran(&handle, "@log@a", 300);
    let expected: Vec<Value> = (0..300).map(|n| json!(n)).collect();
    assert_eq!(state(&handle, "@log@a"), Some(Value::Array(expected)));
    let log = handle.entity_operations("@log@a", usize::MAX).unwrap();
    let seqs: Vec<i64> = log.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
    // Each entry has the state right after its own operation, not the batch's end state.
    assert_eq!(log[0].state_after, Some(json!([0])));
    assert_eq!(log[1].state_after, Some(json!([0, 1])));
    assert_eq!(log[0].requester, EntityRequester::Client);
    assert!(!log[0].awaits_answer);
}

#[test]
fn entity_names_are_case_insensitive_and_keys_are_not() {
    let engine = engine();
    let handle = engine.handle();
    handle
        .signal_entity("@Counter@K", "add", json!(2), None)
        .unwrap();
    handle
        .signal_entity("@counter@K", "add", json!(3), None)
        .unwrap();
    handle
        .signal_entity("@counter@k", "add", json!(7), None)
        .unwrap();
    ran(&handle, "@counter@K", 2);
    ran(&handle, "@counter@k", 1);
    assert_eq!(state(&handle, "@COUNTER@K"), Some(json!(5)));
    assert_eq!(state(&handle, "@counter@k"), Some(json!(7)));
    let entity = handle.entity("@counter@K", false).unwrap().unwrap();
    assert_eq!(
        (entity.name.as_str(), entity.key.as_str()),
        ("counter", "K")
    );
    assert!(entity.has_state && entity.state.is_none());
}

#[test]
fn a_malformed_entity_id_is_refused_with_the_sdks_reason() {
    let engine = engine();
    let handle = engine.handle();
    let error = handle
        .signal_entity("counter-a", "add", json!(1), None)
        .unwrap_err();
    let expected = EntityId::parse("counter-a").unwrap_err().to_string();
    match error {
        EngineError::InvalidArgument(message) => assert_eq!(message, expected),
        other => panic!("expected InvalidArgument, got {other}"),
    }
}

#[test]
fn a_failed_operation_rolls_the_state_back_and_is_logged_and_later_ones_still_run() {
    let engine = engine();
    let handle = engine.handle();
    handle
        .signal_entity("@counter@a", "add", json!(5), None)
        .unwrap();
    handle
        .signal_entity("@counter@a", "fail", Value::Null, None)
        .unwrap();
    handle
        .signal_entity("@counter@a", "add", json!(1), None)
        .unwrap();
    ran(&handle, "@counter@a", 3);
    assert_eq!(state(&handle, "@counter@a"), Some(json!(6)));
    let log = handle.entity_operations("@counter@a", 10).unwrap();
    match &log[1].outcome {
        EntityOperationOutcome::Failed { failure } => {
            assert_eq!(failure.error_type, "Overdrawn");
        }
        other => panic!("expected the failure in the log, got {other:?}"),
    }
    assert_eq!(log[1].state_after, Some(json!(5)));
    // The failed operation's signal was dropped with it.
    assert!(handle.entity("@log@from-fail", false).unwrap().is_none());
}

#[test]
fn an_operation_the_entity_does_not_know_fails_and_an_unregistered_entity_fails_every_operation() {
    let engine = engine();
    let handle = engine.handle();
    handle
        .signal_entity("@counter@a", "jump", Value::Null, None)
        .unwrap();
    handle
        .signal_entity("@nobody@a", "anything", Value::Null, None)
        .unwrap();
    ran(&handle, "@counter@a", 1);
    ran(&handle, "@nobody@a", 1);
    let failure_type = |id: &str| match &handle.entity_operations(id, 1).unwrap()[0].outcome {
        EntityOperationOutcome::Failed { failure } => failure.error_type.clone(),
        other => panic!("expected a failure, got {other:?}"),
    };
    assert_eq!(failure_type("@counter@a"), durable_sdk::UNKNOWN_OPERATION);
    assert_eq!(failure_type("@nobody@a"), "EntityNotFound");
}

#[test]
fn an_entity_signals_another_and_starts_an_orchestration() {
    let engine = engine();
    let handle = engine.handle();
    handle
        .signal_entity("@relay@r", "forward", json!("hello"), None)
        .unwrap();
    handle
        .signal_entity("@relay@r", "start", json!({"from": "relay"}), None)
        .unwrap();
    ran(&handle, "@log@relay", 1);
    assert_eq!(state(&handle, "@log@relay"), Some(json!(["hello"])));
    let log = handle.entity_operations("@log@relay", 1).unwrap();
    assert_eq!(
        log[0].requester,
        EntityRequester::Entity {
            instance_id: "@relay@r".into()
        }
    );
    ran(&handle, "@relay@r", 2);
    let started = match &handle.entity_operations("@relay@r", 2).unwrap()[1].outcome {
        EntityOperationOutcome::Completed { result } => result.as_str().unwrap().to_string(),
        other => panic!("expected the started id, got {other:?}"),
    };
    let record = wait(&handle, &started);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!({"from": "relay"}));
}

#[test]
fn entity_updated_is_published_after_the_commit() {
    let engine = engine();
    let handle = engine.handle();
    let mut events = handle.subscribe();
    handle
        .signal_entity("@counter@ev", "add", json!(1), None)
        .unwrap();
    ran(&handle, "@counter@ev", 1);
    eventually("an EntityUpdated for @counter@ev", || {
        std::iter::from_fn(|| events.try_recv().ok()).any(|event| {
            matches!(event, EngineEvent::EntityUpdated { instance_id } if instance_id == "@counter@ev")
        })
    });
}

// ----- queries and cleaning -------------------------------------------------------------------

#[test]
fn queries_filter_by_prefix_and_state_and_page_with_a_continuation_token() {
    let engine = engine();
    let handle = engine.handle();
    for key in ["a", "b", "c", "d", "e"] {
        handle
            .signal_entity(&format!("@counter@{key}"), "add", json!(1), None)
            .unwrap();
    }
    handle
        .signal_entity("@log@x", "append", json!(1), None)
        .unwrap();
    handle
        .signal_entity("@counter@gone", "delete", Value::Null, None)
        .unwrap();
    for key in ["a", "b", "c", "d", "e", "gone"] {
        ran(&handle, &format!("@counter@{key}"), 1);
    }
    ran(&handle, "@log@x", 1);
    let query = EntityQuery {
        instance_id_starts_with: Some("@counter@".into()),
        include_state: true,
        page_size: Some(2),
        ..EntityQuery::default()
    };
    let mut ids = Vec::new();
    let mut next = query.clone();
    loop {
        let (page, token) = handle.entities(next.clone()).unwrap();
        assert!(page.len() <= 2);
        assert!(page.iter().all(|entity| entity.state == Some(json!(1))));
        ids.extend(page.into_iter().map(|entity| entity.instance_id));
        match token {
            Some(token) => next.continuation_token = Some(token),
            None => break,
        }
    }
    assert_eq!(
        ids,
        [
            "@counter@a",
            "@counter@b",
            "@counter@c",
            "@counter@d",
            "@counter@e"
        ]
    );
    // The name part of a prefix is case-insensitive, as names are.
    let (upper, _) = handle
        .entities(EntityQuery {
            instance_id_starts_with: Some("@Counter@".into()),
            ..EntityQuery::default()
        })
        .unwrap();
    assert_eq!(upper.len(), 5);
    // Without state: only listed as transient.
    let (transient, _) = handle
        .entities(EntityQuery {
            instance_id_starts_with: Some("@counter@g".into()),
            include_transient: true,
            ..EntityQuery::default()
        })
        .unwrap();
    assert_eq!(transient.len(), 1);
    assert!(!transient[0].has_state);
    // A last-modified range after everything finds nothing.
    let later = handle.now().unwrap() + chrono::Duration::hours(1);
    let (none, _) = handle
        .entities(EntityQuery {
            last_modified_from: Some(later),
            ..EntityQuery::default()
        })
        .unwrap();
    assert!(none.is_empty());
    let cleaned = handle.clean_entity_storage(true, true).unwrap();
    assert_eq!(cleaned.empty_entities_removed, 1);
    assert!(handle.entity("@counter@gone", false).unwrap().is_none());
    assert!(handle.entity("@counter@a", false).unwrap().is_some());
}

#[test]
fn the_async_door_signals_and_reads_entities_like_the_handle() {
    let engine = engine();
    let handle = engine.handle();
    let door = handle.asynchronous();
    runtime().block_on(async {
        door.signal_entity("@counter@door", "add", json!(3), None)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while door
            .entity_operations("@counter@door", 1)
            .await
            .unwrap()
            .is_empty()
        {
            assert!(std::time::Instant::now() < deadline, "the signal never ran");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let entity = door.entity("@counter@door", true).await.unwrap().unwrap();
        assert_eq!(entity.state, Some(json!(3)));
        let (page, _) = door.entities(EntityQuery::default()).await.unwrap();
        assert_eq!(page.len(), 1);
        let cleaned = door.clean_entity_storage(true, true).await.unwrap();
        assert_eq!(cleaned.empty_entities_removed, 0);
    });
}

// ----- the clock ------------------------------------------------------------------------------

#[test]
fn a_delayed_signal_waits_for_the_virtual_clock_and_runs_when_it_gets_there() {
    let engine = Engine::start(EngineConfig {
        auto_skip: false,
        ..EngineConfig::in_memory(plugin())
    })
    .unwrap();
    let handle = engine.handle();
    let due = handle.now().unwrap() + chrono::Duration::hours(2);
    handle
        .signal_entity("@counter@later", "add", json!(4), Some(due))
        .unwrap();
    handle
        .signal_entity("@counter@later", "add", json!(1), None)
        .unwrap();
    ran(&handle, "@counter@later", 1);
    // An hour on, it still waits.
    handle.advance_clock(Duration::from_secs(3600)).unwrap();
    eventually("the advance to arrive", || {
        handle.advancing_to().unwrap().is_none()
    });
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(state(&handle, "@counter@later"), Some(json!(1)));
    assert_eq!(
        handle
            .entity_operations("@counter@later", 10)
            .unwrap()
            .len(),
        1
    );
    // "Advance to the next timer" knows the delayed signal, and it runs there.
    let next = handle.advance_to_next_timer().unwrap();
    assert_eq!(next, Some(due));
    ran(&handle, "@counter@later", 2);
    assert_eq!(state(&handle, "@counter@later"), Some(json!(5)));
    let log = handle.entity_operations("@counter@later", 10).unwrap();
    assert!(log[1].at >= due, "ran at {} before {due}", log[1].at);
}

#[test]
fn auto_skip_jumps_to_a_delayed_signal() {
    let engine = engine();
    let handle = engine.handle();
    let due = handle.now().unwrap() + chrono::Duration::days(3);
    handle
        .signal_entity("@counter@skip", "add", json!(1), Some(due))
        .unwrap();
    ran(&handle, "@counter@skip", 1);
    assert!(handle.now().unwrap() >= due);
}

// ----- faults ---------------------------------------------------------------------------------

#[test]
fn a_fault_fails_the_matching_operation_without_running_it_and_the_log_records_the_rule() {
    let rule = parse_compact(
        "entity=@counter@f*,operation=add,call=2,error=Declined:no money,non-retriable",
        0,
    )
    .unwrap();
    let engine = Engine::start(EngineConfig {
        faults: vec![rule],
        ..EngineConfig::in_memory(plugin())
    })
    .unwrap();
    let handle = engine.handle();
    for n in [1, 10, 100] {
        handle
            .signal_entity("@counter@f1", "add", json!(n), None)
            .unwrap();
    }
    ran(&handle, "@counter@f1", 3);
    assert_eq!(state(&handle, "@counter@f1"), Some(json!(101)));
    let log = handle.entity_operations("@counter@f1", 10).unwrap();
    assert_eq!(log[0].fault, None);
    let fault = log[1].fault.as_deref().unwrap();
    assert!(fault.starts_with("rule 1: fail Declined"), "{fault}");
    match &log[1].outcome {
        EntityOperationOutcome::Failed { failure } => {
            assert_eq!(failure.error_type, "Declined");
            assert!(failure.is_non_retriable);
        }
        other => panic!("expected the injected failure, got {other:?}"),
    }
    assert_eq!(log[1].state_after, Some(json!(1)));
}

#[test]
fn a_delay_fault_holds_the_entity_and_everything_behind_it() {
    let rule = parse_compact("entity=@log@slow,operation=append,call=1,delay=1h", 0).unwrap();
    let engine = Engine::start(EngineConfig {
        faults: vec![rule],
        auto_skip: false,
        ..EngineConfig::in_memory(plugin())
    })
    .unwrap();
    let handle = engine.handle();
    let start = handle.now().unwrap();
    handle
        .signal_entity("@log@slow", "append", json!("first"), None)
        .unwrap();
    handle
        .signal_entity("@log@slow", "append", json!("second"), None)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        handle
            .entity_operations("@log@slow", 10)
            .unwrap()
            .is_empty()
    );
    handle.advance_clock(Duration::from_secs(3600)).unwrap();
    ran(&handle, "@log@slow", 2);
    assert_eq!(
        state(&handle, "@log@slow"),
        Some(json!(["first", "second"]))
    );
    let log = handle.entity_operations("@log@slow", 10).unwrap();
    assert!(log[0].at >= start + chrono::Duration::hours(1));
    assert!(log[0].fault.as_deref().unwrap().contains("delay 1h"));
}

#[test]
fn effects_that_do_not_apply_to_entities_are_refused_with_the_ones_that_do() {
    let error = parse_compact("entity=@a@*,timeout", 0).unwrap_err();
    assert!(
        error.message.contains("entities: fail, panic, delay"),
        "{error}"
    );
    let error = parse_compact("entity=@a@*,crash", 0).unwrap_err();
    assert!(
        error.message.contains("does not apply to entity"),
        "{error}"
    );
    let error = parse_compact("activity=A,operation=x,error=E", 0).unwrap_err();
    assert!(
        error.message.contains("`operation` goes with `entity`"),
        "{error}"
    );
    let rule = parse_compact("entity=@account@*,panic", 0).unwrap();
    assert_eq!(rule.target.instance.as_deref(), Some("@account@*"));
    assert_eq!(rule.target.name, "*");
}

// ----- remote workers -------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn remote_workers_run_entity_batches_through_the_hub_and_unfiltered_names_park() {
    let mut config = EngineConfig::in_memory(plugin());
    config.plugin = None;
    config.remote_workers = true;
    let engine = Engine::start(config).unwrap();
    let handle = engine.handle();
    let mut events = handle.subscribe();
    handle
        .signal_entity("@counter@r", "add", json!(2), None)
        .unwrap();
    eventually("the entity batch to park", || {
        std::iter::from_fn(|| events.try_recv().ok()).any(|event| {
            matches!(event, EngineEvent::WorkParked { kind: WorkKind::Entity, ref name, .. } if name == "counter")
        })
    });
    let hub = handle.remote_hub();
    let registry = registry();
    runtime().block_on(async {
        let mut connection = hub.connect(WorkerInfo::default());
        for expected in [2, 5] {
            let item = connection.items.recv().await.unwrap();
            match &item {
                RemoteWorkItem::Entity { name, request, .. } => {
                    assert_eq!(name, "counter");
                    assert_eq!(request.instance_id, "@counter@r");
                    assert_eq!(request.operations.len(), 1);
                }
                other => panic!("expected an entity batch, got {other:?}"),
            }
            durable_emu_testing::engine::answer_remote(&hub, &registry, item).await;
            eventually("the remote result to be recorded", || {
                state(&handle, "@counter@r") == Some(json!(expected))
            });
            if expected == 2 {
                handle
                    .signal_entity("@counter@r", "add", json!(3), None)
                    .unwrap();
            }
        }
    });
    assert_eq!(handle.entity_operations("@counter@r", 10).unwrap().len(), 2);
}

#[test]
fn the_built_in_samples_leave_an_entity_name_to_a_connected_worker_that_takes_it() {
    // The samples have a `counter`; so does the Python SDK's own example. With a worker
    // connected that takes the name, the worker runs it; a worker filtered to other names does
    // not take it from the samples, and neither would any worker from a user's own build.
    let mut config = EngineConfig::in_memory(LoadedPlugin::builtin().unwrap());
    config.remote_workers = true;
    let engine = Engine::start(config).unwrap();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    runtime().block_on(async {
        let mut others = hub.connect(WorkerInfo {
            filters: Some(durable_emu_engine::WorkFilters {
                entities: vec!["tally".into()],
                ..Default::default()
            }),
            ..WorkerInfo::default()
        });
        handle
            .signal_entity("@counter@sample", "add", json!(2), None)
            .unwrap();
        eventually("the sample counter to run it", || {
            state(&handle, "@counter@sample") == Some(json!(2))
        });
        assert!(
            others.items.try_recv().is_err(),
            "a worker not taking 'counter' got it"
        );

        let mut python = hub.connect(WorkerInfo::default());
        handle
            .signal_entity("@counter@python", "add", json!(3), None)
            .unwrap();
        let item = tokio::time::timeout(Duration::from_secs(10), python.items.recv())
            .await
            .expect("the unfiltered worker gets the counter's batch")
            .unwrap();
        let RemoteWorkItem::Entity { name, request, .. } = &item else {
            panic!("expected an entity batch, got {item:?}");
        };
        assert_eq!(
            (name.as_str(), request.instance_id.as_str()),
            ("counter", "@counter@python")
        );
    });
}

#[test]
fn a_remote_worker_gets_every_queued_operation_in_one_batch_and_only_the_last_has_a_known_state() {
    let mut config = EngineConfig::in_memory(plugin());
    config.plugin = None;
    config.remote_workers = true;
    let engine = Engine::start(config).unwrap();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let registry = registry();
    let rt = runtime();
    let next = |connection: &mut durable_emu_engine::WorkerConnection| {
        let item = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), connection.items.recv()).await
            })
            .expect("a batch comes")
            .unwrap();
        let RemoteWorkItem::Entity { request, .. } = &item else {
            panic!("expected an entity batch, got {item:?}");
        };
        let count = request.operations.len();
        (item, count)
    };
    let mut connection = hub.connect(WorkerInfo::default());
    handle
        .signal_entity("@counter@b", "add", json!(2), None)
        .unwrap();
    let (first, count) = next(&mut connection);
    assert_eq!(count, 1);
    // These two queue behind the batch that is out, and go out together after it.
    handle
        .signal_entity("@counter@b", "fail", json!(null), None)
        .unwrap();
    handle
        .signal_entity("@counter@b", "add", json!(3), None)
        .unwrap();
    eventually("both to be queued", || {
        handle
            .entity("@counter@b", false)
            .unwrap()
            .is_some_and(|entity| entity.backlog == 3)
    });
    rt.block_on(durable_emu_testing::engine::answer_remote(
        &hub, &registry, first,
    ));
    let (second, count) = next(&mut connection);
    assert_eq!(count, 2, "one batch for the two queued operations");
    rt.block_on(durable_emu_testing::engine::answer_remote(
        &hub, &registry, second,
    ));
    eventually("the batch to be recorded", || {
        state(&handle, "@counter@b") == Some(json!(5))
    });
    let log = handle.entity_operations("@counter@b", 10).unwrap();
    let outcomes: Vec<_> = log
        .iter()
        .map(|record| {
            (
                record.operation.as_str(),
                matches!(record.outcome, EntityOperationOutcome::Failed { .. }),
                record.state_known,
                record.state_after.clone(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("add", false, true, Some(json!(2))),
            ("fail", true, false, None),
            ("add", false, true, Some(json!(5))),
        ],
        "the worker reports the state after its batch only; the failed one was rolled back"
    );
}

#[test]
fn a_stale_remote_entity_completion_is_refused_and_an_abandoned_batch_goes_out_again() {
    let mut config = EngineConfig::in_memory(plugin());
    config.plugin = None;
    config.remote_workers = true;
    let engine = Engine::start(config).unwrap();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let registry = registry();
    runtime().block_on(async {
        let mut connection = hub.connect(WorkerInfo::default());
        handle
            .signal_entity("@counter@s", "add", json!(1), None)
            .unwrap();
        let first = connection.items.recv().await.unwrap();
        hub.abandon(first.token(), "@counter@s", None).unwrap();
        let second = connection.items.recv().await.unwrap();
        assert_ne!(first.token(), second.token());
        let RemoteWorkItem::Entity { request, .. } = &first else {
            panic!("expected an entity batch");
        };
        let result = registry.run_entity_batch(request.clone());
        let stale = hub
            .complete_entity(first.token(), "@counter@s", result)
            .await;
        assert!(stale.is_err(), "the abandoned delivery's answer is stale");
        durable_emu_testing::engine::answer_remote(&hub, &registry, second).await;
    });
    assert_eq!(state(&handle, "@counter@s"), Some(json!(1)));
}

#[test]
fn a_remote_answer_without_results_runs_the_batch_again_and_one_with_too_many_fails_it() {
    use durable_sdk::protocol::{EntityBatchResult, EntityOperationResult};
    let mut config = EngineConfig::in_memory(plugin());
    config.plugin = None;
    config.remote_workers = true;
    let engine = Engine::start(config).unwrap();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    runtime().block_on(async {
        let mut connection = hub.connect(WorkerInfo::default());
        handle
            .signal_entity("@counter@w", "add", json!(1), None)
            .unwrap();
        let first = connection.items.recv().await.unwrap();
        hub.complete_entity(first.token(), "@counter@w", EntityBatchResult::default())
            .await
            .unwrap();
        // Nothing ran: the same operation comes again, under a new token.
        let again = connection.items.recv().await.unwrap();
        assert_ne!(first.token(), again.token());
        let (RemoteWorkItem::Entity { request: a, .. }, RemoteWorkItem::Entity { request: b, .. }) =
            (&first, &again)
        else {
            panic!("expected entity batches");
        };
        assert_eq!(a.operations, b.operations);
        let completed = || EntityOperationResult::Completed {
            result: Value::Null,
        };
        let too_many = EntityBatchResult {
            results: vec![completed(), completed()],
            state: Some(json!(1)),
            ..EntityBatchResult::default()
        };
        let refused = hub
            .complete_entity(again.token(), "@counter@w", too_many)
            .await;
        assert!(
            matches!(
                refused,
                Err(durable_emu_engine::RemoteError::InvalidCompletion(_))
            ),
            "{refused:?}"
        );
    });
    let log = handle.entity_operations("@counter@w", 10).unwrap();
    assert_eq!(log.len(), 1);
    match &log[0].outcome {
        EntityOperationOutcome::Failed { failure } => {
            assert_eq!(failure.error_type, "InvalidWorkerResponse");
        }
        other => panic!("expected the operation to fail, got {other:?}"),
    }
    assert_eq!(state(&handle, "@counter@w"), None);
}

// ----- restarts and the reader ----------------------------------------------------------------

fn file_config(db: &Path, plugin_runs_entities: bool) -> EngineConfig {
    let mut config = EngineConfig::in_memory(plugin());
    config.db = DbLocation::File(db.to_path_buf());
    if !plugin_runs_entities {
        // No code here: the batch goes to the hub, where no worker takes it before the stop.
        config.plugin = None;
        config.remote_workers = true;
    }
    config
}

#[test]
fn queued_operations_and_a_batch_out_at_a_stop_run_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    {
        let engine = Engine::start(file_config(&db, false)).unwrap();
        let handle = engine.handle();
        for n in [1, 2, 3] {
            handle
                .signal_entity("@counter@crash", "add", json!(n), None)
                .unwrap();
        }
        let entity = handle.entity("@counter@crash", false).unwrap().unwrap();
        assert_eq!(entity.backlog, 3);
        engine.shutdown();
    }
    let engine = Engine::start(file_config(&db, true)).unwrap();
    let handle = engine.handle();
    ran(&handle, "@counter@crash", 3);
    assert_eq!(state(&handle, "@counter@crash"), Some(json!(6)));
    engine.shutdown();
    let reader = Reader::open(&DbLocation::File(db.clone())).unwrap();
    let entity = reader.entity("@counter@crash", true).unwrap().unwrap();
    assert_eq!(entity.state, Some(json!(6)));
    assert_eq!(entity.backlog, 0);
    assert_eq!(
        reader.entity_operations("@counter@crash", 2).unwrap().len(),
        2
    );
    let (listed, _) = reader.entities(&EntityQuery::default()).unwrap();
    assert_eq!(listed.len(), 1);
}

#[test]
fn clean_entity_storage_releases_a_lock_whose_holder_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    {
        let engine = Engine::start(file_config(&db, true)).unwrap();
        let handle = engine.handle();
        handle
            .signal_entity("@counter@o", "add", json!(1), None)
            .unwrap();
        ran(&handle, "@counter@o", 1);
        engine.shutdown();
    }
    // As if an older emulator lost the holder: the lock names an instance that does not exist.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE entities SET locked_by = 'ghost', critical_section = 'cs' WHERE instance_id = '@counter@o'",
            [],
        )
        .unwrap();
    let engine = Engine::start(file_config(&db, true)).unwrap();
    let handle = engine.handle();
    handle
        .signal_entity("@counter@o", "add", json!(1), None)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(state(&handle, "@counter@o"), Some(json!(1)));
    let cleaned = handle.clean_entity_storage(false, true).unwrap();
    assert_eq!(cleaned.orphaned_locks_released, 1);
    ran(&handle, "@counter@o", 2);
    assert_eq!(state(&handle, "@counter@o"), Some(json!(2)));
}

#[test]
fn a_batch_running_on_a_worker_when_the_engine_stops_runs_again_after_the_restart() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    {
        let engine = Engine::start(file_config(&db, true)).unwrap();
        let handle = engine.handle();
        handle
            .signal_entity("@slow@a", "go", Value::Null, None)
            .unwrap();
        eventually("the operation to start", || {
            SLOW_RUNNING.load(Ordering::SeqCst)
        });
        engine.shutdown();
    }
    // Its outcome was never recorded: it is still queued.
    let reader = Reader::open(&DbLocation::File(db.clone())).unwrap();
    let entity = reader.entity("@slow@a", true).unwrap().unwrap();
    assert_eq!((entity.backlog, entity.state), (1, None));
    drop(reader);
    eventually("the first run to end", || {
        !SLOW_RUNNING.load(Ordering::SeqCst)
    });
    let engine = Engine::start(file_config(&db, true)).unwrap();
    let handle = engine.handle();
    ran(&handle, "@slow@a", 1);
    // At least once: it ran twice, and the log has the run that was recorded.
    assert_eq!(SLOW_STARTS.load(Ordering::SeqCst), 2);
    assert_eq!(state(&handle, "@slow@a"), Some(json!(2)));
    assert_eq!(handle.entity_operations("@slow@a", 10).unwrap().len(), 1);
}

#[test]
fn a_delayed_signal_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let due;
    {
        let mut config = file_config(&db, true);
        config.auto_skip = false;
        let engine = Engine::start(config).unwrap();
        let handle = engine.handle();
        due = handle.now().unwrap() + chrono::Duration::minutes(30);
        handle
            .signal_entity("@counter@later", "add", json!(9), Some(due))
            .unwrap();
        engine.shutdown();
    }
    let mut config = file_config(&db, true);
    config.auto_skip = false;
    let engine = Engine::start(config).unwrap();
    let handle = engine.handle();
    assert_eq!(handle.advance_to_next_timer().unwrap(), Some(due));
    ran(&handle, "@counter@later", 1);
    assert_eq!(state(&handle, "@counter@later"), Some(json!(9)));
}
