//! Entities and orchestrations together (docs/semantics.md#entities): calls answered to the
//! calling orchestration (results and failures), signals from orchestrations (now and at a
//! time), and critical sections: locks granted first come first served, other work waiting while
//! an entity is locked, and locks released at the section's end, when the holder fails and when
//! it is terminated. Through the engine handle, with an in-process plugin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::engine::{
    Engine, EngineConfig, EngineHandle, EntityOperationOutcome, EntityRequester,
};
use durable_emu_engine::plugin::{LoadedPlugin, PluginOrigin};
use durable_emu_engine::{DbLocation, WorkerInfo};
use durable_emu_testing::engine::{current_history, eventually, kinds, wait};
use durable_sdk::history::{EventKind, RuntimeStatus};
use durable_sdk::serde_json::{Value, json};
use durable_sdk::{EntityContext, EntityId, FailureDetails, OrchestrationContext, Registry};
use std::time::Duration;

// ----- the functions --------------------------------------------------------------------------

/// An account: `deposit n`, `withdraw n` (fails when the balance would go below zero), `get`.
async fn account(ctx: EntityContext) -> Result<i64, FailureDetails> {
    let mut balance: i64 = ctx.state_or_default()?;
    match ctx.operation().as_str() {
        "deposit" => balance += ctx.input::<i64>()?,
        "withdraw" => {
            let amount: i64 = ctx.input()?;
            // The state changes first, so a failure must be rolled back.
            ctx.set_state(balance - amount);
            if amount > balance {
                return Err(FailureDetails::new(
                    "InsufficientFunds",
                    format!("balance {balance}, asked {amount}"),
                ));
            }
            balance -= amount;
        }
        "get" => {}
        _ => return Err(ctx.unknown_operation()),
    }
    ctx.set_state(balance);
    Ok(balance)
}

fn acct(key: &str) -> EntityId {
    EntityId::new("Account", key)
}

/// Deposits its input into `@account@x` and returns the balance.
async fn deposit(ctx: OrchestrationContext, amount: i64) -> Result<i64, FailureDetails> {
    Ok(ctx
        .call_entity::<i64>(&acct("x"), "deposit", amount)
        .await?)
}

/// Withdraws its input from `@account@x`; returns what happened.
async fn try_withdraw(ctx: OrchestrationContext, amount: i64) -> Result<String, FailureDetails> {
    match ctx.call_entity::<i64>(&acct("x"), "withdraw", amount).await {
        Ok(balance) => Ok(format!("ok {balance}")),
        Err(error) => Ok(format!("failed {}", error.cause().error_type)),
    }
}

/// Signals `@account@x` now and a day later.
async fn signal_twice(ctx: OrchestrationContext, _: Value) -> Result<(), FailureDetails> {
    ctx.signal_entity(&acct("x"), "deposit", 1);
    let later = ctx.current_utc_date_time() + chrono::Duration::days(1);
    ctx.signal_entity_at(&acct("x"), "deposit", 10, later);
    Ok(())
}

/// Locks the accounts named in its input, withdraws 1 from the first, waits for the event `go`,
/// deposits 1 into the last, and releases.
async fn transfer(ctx: OrchestrationContext, keys: Vec<String>) -> Result<i64, FailureDetails> {
    let ids: Vec<EntityId> = keys.iter().map(|key| acct(key)).collect();
    let section = ctx.lock_entities(ids.clone()).await?;
    ctx.call_entity::<i64>(&ids[0], "withdraw", 1).await?;
    ctx.wait_for_external_event::<Value>("go").await?;
    let balance = ctx
        .call_entity::<i64>(ids.last().unwrap(), "deposit", 1)
        .await?;
    section.release();
    Ok(balance)
}

/// Locks `@account@f`, then fails while holding it.
async fn lock_then_fail(ctx: OrchestrationContext, _: Value) -> Result<(), FailureDetails> {
    let _section = ctx.lock_entities([acct("f")]).await?;
    ctx.call_entity::<i64>(&acct("f"), "deposit", 1).await?;
    Err(FailureDetails::new(
        "Boom",
        "failed inside the critical section",
    ))
}

/// Locks `@account@t` and waits forever.
async fn lock_and_wait(ctx: OrchestrationContext, _: Value) -> Result<(), FailureDetails> {
    let _section = ctx.lock_entities([acct("t")]).await?;
    ctx.wait_for_external_event::<Value>("never").await?;
    Ok(())
}

/// Reads `@account@{input}`.
async fn peek(ctx: OrchestrationContext, key: String) -> Result<i64, FailureDetails> {
    Ok(ctx
        .call_entity::<i64>(&acct(&key), "get", Value::Null)
        .await?)
}

fn registry() -> Registry {
    Registry::new()
        .entity("Account", account)
        .orchestrator("Deposit", deposit)
        .orchestrator("TryWithdraw", try_withdraw)
        .orchestrator("SignalTwice", signal_twice)
        .orchestrator("Transfer", transfer)
        .orchestrator("LockThenFail", lock_then_fail)
        .orchestrator("LockAndWait", lock_and_wait)
        .orchestrator("Peek", peek)
}

durable_sdk::in_process_plugin!(registry);

fn plugin() -> LoadedPlugin {
    LoadedPlugin::in_process(
        durable_plugin_handle(),
        PluginOrigin::InProcess("entity-orchestration-tests".into()),
    )
    .unwrap()
}

fn engine() -> Engine {
    Engine::start(EngineConfig::in_memory(plugin())).unwrap()
}

fn start(handle: &EngineHandle, name: &str, input: Value, id: &str) -> String {
    handle
        .start_orchestration(name, input, Some(id.to_string()))
        .unwrap()
}

fn balance(handle: &EngineHandle, key: &str) -> Option<Value> {
    handle
        .entity(&format!("@account@{key}"), true)
        .unwrap()
        .and_then(|entity| entity.state)
}

fn locked_by(handle: &EngineHandle, key: &str) -> Option<String> {
    handle
        .entity(&format!("@account@{key}"), false)
        .unwrap()
        .and_then(|entity| entity.locked_by)
}

// ----- calls ----------------------------------------------------------------------------------

#[test]
fn a_call_is_answered_to_the_calling_orchestration_by_request_id() {
    let engine = engine();
    let handle = engine.handle();
    handle
        .signal_entity("@account@x", "deposit", json!(10), None)
        .unwrap();
    let id = start(&handle, "Deposit", json!(5), "dep");
    let record = wait(&handle, &id);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!(15));
    let history = current_history(&handle, &id);
    let names = kinds(&history);
    assert!(names.contains(&"EntityOperationCalled"), "{names:?}");
    assert!(names.contains(&"EntityOperationCompleted"), "{names:?}");
    let called = history
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::EntityOperationCalled { request_id, .. } => Some(request_id.clone()),
            _ => None,
        })
        .unwrap();
    let log = handle.entity_operations("@account@x", 10).unwrap();
    assert_eq!(log[1].request_id, called);
    assert!(log[1].awaits_answer);
    assert!(matches!(
        &log[1].requester,
        EntityRequester::Orchestration { instance_id, .. } if instance_id == "dep"
    ));
}

#[test]
fn a_failed_operation_reaches_the_caller_and_the_entity_state_is_rolled_back() {
    let engine = engine();
    let handle = engine.handle();
    handle
        .signal_entity("@account@x", "deposit", json!(3), None)
        .unwrap();
    let id = start(&handle, "TryWithdraw", json!(50), "overdraw");
    let record = wait(&handle, &id);
    assert_eq!(record.output, json!("failed InsufficientFunds"));
    assert_eq!(balance(&handle, "x"), Some(json!(3)));
    let failed = current_history(&handle, &id)
        .into_iter()
        .find_map(|event| match event.kind {
            EventKind::EntityOperationFailed { failure, .. } => Some(failure),
            _ => None,
        })
        .unwrap();
    assert_eq!(failed.error_type, "InsufficientFunds");
}

#[test]
fn signals_from_an_orchestration_arrive_now_and_at_their_time() {
    let engine = Engine::start(EngineConfig {
        auto_skip: false,
        ..EngineConfig::in_memory(plugin())
    })
    .unwrap();
    let handle = engine.handle();
    let id = start(&handle, "SignalTwice", Value::Null, "signals");
    wait(&handle, &id);
    eventually("the first signal to run", || {
        balance(&handle, "x") == Some(json!(1))
    });
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(balance(&handle, "x"), Some(json!(1)));
    handle.advance_clock(Duration::from_secs(86_400)).unwrap();
    eventually("the delayed signal to run", || {
        balance(&handle, "x") == Some(json!(11))
    });
}

// ----- critical sections ----------------------------------------------------------------------

#[test]
fn locks_are_granted_first_come_first_served_and_others_wait_until_the_section_ends() {
    let engine = engine();
    let handle = engine.handle();
    for key in ["a", "b", "c"] {
        handle
            .signal_entity(&format!("@account@{key}"), "deposit", json!(100), None)
            .unwrap();
    }
    // T1 holds a and b (waiting for "go" inside its section).
    let t1 = start(&handle, "Transfer", json!(["a", "b"]), "t1");
    eventually("t1 to hold a and b", || {
        locked_by(&handle, "a").as_deref() == Some("t1")
            && locked_by(&handle, "b").as_deref() == Some("t1")
            && balance(&handle, "a") == Some(json!(99))
    });
    // T2 wants b and c: its request waits at b, behind T1; c is not locked yet.
    let t2 = start(&handle, "Transfer", json!(["b", "c"]), "t2");
    eventually("t2 to wait for b", || {
        handle
            .entity("@account@b", false)
            .unwrap()
            .is_some_and(|entity| entity.lock_waiters == ["t2"])
    });
    assert_eq!(locked_by(&handle, "c"), None);
    // A client's signal and another orchestration's call to a locked entity wait too.
    handle
        .signal_entity("@account@a", "deposit", json!(1000), None)
        .unwrap();
    let peek = start(&handle, "Peek", json!("a"), "peek");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(balance(&handle, "a"), Some(json!(99)));
    assert_eq!(
        handle.instance(&peek).unwrap().unwrap().status,
        RuntimeStatus::Running
    );
    assert_eq!(
        handle.entity("@account@a", false).unwrap().unwrap().backlog,
        2
    );
    // T1's section ends: a and b are released, T2 gets b then c, and what waited at a runs.
    handle.raise_event(&t1, "go", Value::Null).unwrap();
    assert_eq!(wait(&handle, &t1).output, json!(101));
    let peeked = wait(&handle, &peek);
    assert_eq!(peeked.output, json!(1099));
    eventually("t2 to hold b and c", || {
        locked_by(&handle, "b").as_deref() == Some("t2")
            && locked_by(&handle, "c").as_deref() == Some("t2")
    });
    assert_eq!(locked_by(&handle, "a"), None);
    handle.raise_event(&t2, "go", Value::Null).unwrap();
    assert_eq!(wait(&handle, &t2).status, RuntimeStatus::Completed);
    assert_eq!(locked_by(&handle, "b"), None);
    assert_eq!(locked_by(&handle, "c"), None);
    // a's log: T1's withdraw, then (after the release) the client's deposit and the peek.
    let log = handle.entity_operations("@account@a", 10).unwrap();
    let operations: Vec<&str> = log.iter().map(|record| record.operation.as_str()).collect();
    assert_eq!(operations, ["deposit", "withdraw", "deposit", "get"]);
    let history = current_history(&handle, &t2);
    let names = kinds(&history);
    for expected in [
        "EntityLockRequested",
        "EntityLockGranted",
        "EntityUnlockSent",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
}

#[test]
fn the_locks_of_an_orchestration_that_fails_inside_its_section_are_released() {
    let engine = engine();
    let handle = engine.handle();
    let id = start(&handle, "LockThenFail", Value::Null, "fails");
    assert_eq!(wait(&handle, &id).status, RuntimeStatus::Failed);
    eventually("the lock to be released", || {
        locked_by(&handle, "f").is_none()
    });
    handle
        .signal_entity("@account@f", "deposit", json!(5), None)
        .unwrap();
    eventually("the next signal to run", || {
        balance(&handle, "f") == Some(json!(6))
    });
}

#[test]
fn the_locks_of_a_terminated_orchestration_are_released() {
    let engine = engine();
    let handle = engine.handle();
    let id = start(&handle, "LockAndWait", Value::Null, "holder");
    eventually("the lock to be taken", || {
        locked_by(&handle, "t").as_deref() == Some("holder")
    });
    handle
        .signal_entity("@account@t", "deposit", json!(5), None)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(balance(&handle, "t"), None);
    handle.terminate(&id, json!("enough"), false).unwrap();
    wait(&handle, &id);
    eventually("the waiting signal to run", || {
        balance(&handle, "t") == Some(json!(5))
    });
    assert_eq!(locked_by(&handle, "t"), None);
    let log = handle.entity_operations("@account@t", 10).unwrap();
    assert!(matches!(
        log[0].outcome,
        EntityOperationOutcome::Completed { .. }
    ));
}

#[test]
fn a_lock_request_of_an_orchestration_that_ends_while_waiting_is_dropped() {
    let engine = engine();
    let handle = engine.handle();
    for key in ["a", "b"] {
        handle
            .signal_entity(&format!("@account@{key}"), "deposit", json!(10), None)
            .unwrap();
    }
    let t1 = start(&handle, "Transfer", json!(["a"]), "t1");
    eventually("t1 to hold a", || {
        locked_by(&handle, "a").as_deref() == Some("t1")
    });
    let t2 = start(&handle, "Transfer", json!(["a", "b"]), "t2");
    eventually("t2 to wait for a", || {
        handle
            .entity("@account@a", false)
            .unwrap()
            .is_some_and(|entity| entity.lock_waiters == ["t2"])
    });
    handle.terminate(&t2, json!("no longer"), false).unwrap();
    wait(&handle, &t2);
    eventually("t2's request to leave a's queue", || {
        handle
            .entity("@account@a", false)
            .unwrap()
            .is_some_and(|entity| entity.lock_waiters.is_empty())
    });
    handle.raise_event(&t1, "go", Value::Null).unwrap();
    wait(&handle, &t1);
    eventually("a to be free", || locked_by(&handle, "a").is_none());
    assert_eq!(locked_by(&handle, "b"), None);
}

// ----- remote workers and restarts ------------------------------------------------------------

#[test]
fn a_call_through_remote_workers_is_answered_like_a_local_one() {
    let mut config = EngineConfig::in_memory(plugin());
    config.plugin = None;
    config.remote_workers = true;
    let engine = Engine::start(config).unwrap();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let registry = registry();
    let id = start(&handle, "Deposit", json!(7), "remote-dep");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut connection = hub.connect(WorkerInfo::default());
        loop {
            let item = tokio::time::timeout(Duration::from_secs(60), connection.items.recv())
                .await
                .unwrap()
                .unwrap();
            durable_emu_testing::engine::answer_remote(&hub, &registry, item).await;
            let done = handle
                .instance(&id)
                .unwrap()
                .is_some_and(|record| record.status.is_terminal());
            if done {
                break;
            }
        }
    });
    let record = wait(&handle, &id);
    assert_eq!(record.output, json!(7));
    assert_eq!(balance(&handle, "x"), Some(json!(7)));
}

#[test]
fn a_lock_and_a_call_waiting_at_a_stop_go_on_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = EngineConfig::in_memory(plugin());
        config.db = DbLocation::File(dir.path().join("state.db"));
        config
    };
    {
        let engine = Engine::start(config()).unwrap();
        let handle = engine.handle();
        for key in ["a", "b"] {
            handle
                .signal_entity(&format!("@account@{key}"), "deposit", json!(10), None)
                .unwrap();
        }
        start(&handle, "Transfer", json!(["a", "b"]), "t1");
        eventually("t1 to hold a and b", || {
            locked_by(&handle, "b").as_deref() == Some("t1")
        });
        start(&handle, "Transfer", json!(["b"]), "t2");
        eventually("t2 to wait for b", || {
            handle
                .entity("@account@b", false)
                .unwrap()
                .is_some_and(|entity| entity.lock_waiters == ["t2"])
        });
        engine.shutdown();
    }
    let engine = Engine::start(config()).unwrap();
    let handle = engine.handle();
    assert_eq!(locked_by(&handle, "b").as_deref(), Some("t1"));
    handle.raise_event("t1", "go", Value::Null).unwrap();
    wait(&handle, "t1");
    eventually("t2 to get b after the restart", || {
        locked_by(&handle, "b").as_deref() == Some("t2")
    });
    handle.raise_event("t2", "go", Value::Null).unwrap();
    assert_eq!(wait(&handle, "t2").status, RuntimeStatus::Completed);
}
