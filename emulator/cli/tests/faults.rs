//! Fault injection, effect by effect: each test shows the effect and what the orchestration did
//! about it. Runs on the built-in samples (OrderSaga, ApprovalWorkflow, FanOutFanIn) and on a
//! small plugin defined here, in memory (or a temporary file for the crash), on the virtual clock.
//! Seeded probabilities are also checked through the real binary, as a user would run them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::DbLocation;
use durable_emu_engine::engine::{Engine, EngineConfig, EngineEvent};
use durable_emu_engine::faults::{FaultRule, parse_compact, parse_scenario};
use durable_emu_engine::plugin::{LoadedPlugin, PluginOrigin};
use durable_emu_testing::engine::{all_events, run, samples_config, wait};
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use durable_sdk::{ActivityContext, FailureDetails, OrchestrationContext, Registry, when_any};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

// ----- a plugin for effects the samples do not show -----------------------------------------

static RUNS_OF_COUNTED: AtomicUsize = AtomicUsize::new(0);

async fn delivery(ctx: ActivityContext, _input: Value) -> Result<u32, FailureDetails> {
    Ok(ctx.attempt)
}

async fn counted(_ctx: ActivityContext, input: Value) -> Result<Value, FailureDetails> {
    RUNS_OF_COUNTED.fetch_add(1, Ordering::SeqCst);
    Ok(input)
}

async fn call_once(ctx: OrchestrationContext, name: String) -> Result<Value, FailureDetails> {
    Ok(ctx.call_activity::<Value>(&name, "payload").await?)
}

/// Races an activity against a one-hour timer.
async fn with_timeout(ctx: OrchestrationContext, _input: ()) -> Result<String, FailureDetails> {
    let work = ctx.call_activity::<Value>("Delivery", ());
    let deadline = ctx.create_timer_after(Duration::from_secs(3600));
    Ok(if when_any([work.handle(), deadline.handle()]).await == 0 {
        "answered".into()
    } else {
        "timed out".into()
    })
}

async fn two_events(ctx: OrchestrationContext, _input: ()) -> Result<Vec<Value>, FailureDetails> {
    let first: Value = ctx.wait_for_external_event("Go").await?;
    let second: Value = ctx.wait_for_external_event("Go").await?;
    Ok(vec![first, second])
}

/// Waits for `n` events named "Tick".
async fn ticks(ctx: OrchestrationContext, n: u32) -> Result<u32, FailureDetails> {
    for _ in 0..n {
        let _: Value = ctx.wait_for_external_event("Tick").await?;
    }
    Ok(n)
}

/// Makes the same call (`Counted("same")`) once per execution, for `n` executions.
async fn same_call_each_execution(
    ctx: OrchestrationContext,
    n: u32,
) -> Result<u32, FailureDetails> {
    if n == 0 {
        return Ok(0);
    }
    let _: Value = ctx.call_activity("Counted", "same").await?;
    ctx.continue_as_new(n - 1);
    Ok(n)
}

fn registry() -> Registry {
    Registry::new()
        .activity("Delivery", delivery)
        .activity("Counted", counted)
        .orchestrator("CallOnce", call_once)
        .orchestrator("WithTimeout", with_timeout)
        .orchestrator("TwoEvents", two_events)
        .orchestrator("Ticks", ticks)
        .orchestrator("SameCallEachExecution", same_call_each_execution)
}

durable_sdk::in_process_plugin!(registry);

// ----- helpers --------------------------------------------------------------------------------

fn rule(spec: &str) -> FaultRule {
    parse_compact(spec, 0).unwrap()
}

fn samples_with(rules: Vec<FaultRule>) -> Engine {
    Engine::start(EngineConfig {
        faults: rules,
        ..samples_config()
    })
    .unwrap()
}

fn local_with(rules: Vec<FaultRule>) -> Engine {
    let plugin = LoadedPlugin::in_process(
        durable_plugin_handle(),
        PluginOrigin::InProcess("fault-tests".into()),
    )
    .unwrap();
    Engine::start(EngineConfig {
        faults: rules,
        ..EngineConfig::in_memory(plugin)
    })
    .unwrap()
}

fn markers(events: &[HistoryEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::FaultInjected { rule, effect, .. } => Some((rule.clone(), effect.clone())),
            _ => None,
        })
        .collect()
}

fn scheduled(events: &[HistoryEvent], activity: &str) -> usize {
    events
        .iter()
        .filter(|event| matches!(&event.kind, EventKind::TaskScheduled { name, .. } if name == activity))
        .count()
}

fn count(events: &[HistoryEvent], kind: &str) -> usize {
    events
        .iter()
        .filter(|event| event.kind.type_name() == kind)
        .count()
}

// ----- effects --------------------------------------------------------------------------------

#[test]
fn the_retry_policy_absorbs_injected_attempts_1_and_2_and_attempt_3_succeeds() {
    let engine = samples_with(vec![rule(
        "activity=ChargeCard,attempts=1-2,error=CardDeclined:insufficient funds",
    )]);
    let handle = engine.handle();
    let record = run(
        &handle,
        "OrderSaga",
        json!({"order_id": "o1", "amount": 5}),
        Some("o1"),
    );
    assert_eq!(
        record.status,
        RuntimeStatus::Completed,
        "{:?}",
        record.failure
    );
    assert_eq!(
        record.output,
        json!({"order_id": "o1", "status": "Shipped"})
    );
    let payment = all_events(&handle, "o1:0");
    assert_eq!(scheduled(&payment, "ChargeCard"), 3);
    let injected: Vec<&HistoryEvent> = payment
        .iter()
        .filter(|event| matches!(&event.kind, EventKind::TaskFailed { failure, .. } if failure.error_type == "CardDeclined"))
        .collect();
    assert_eq!(injected.len(), 2);
    assert_eq!(
        markers(&payment),
        vec![
            (
                "rule 1".to_string(),
                "fail CardDeclined: insufficient funds".to_string()
            );
            2
        ]
    );
}

#[test]
fn a_non_retriable_injected_failure_is_not_retried() {
    let engine = samples_with(vec![rule(
        "activity=ChargeCard,every,error=Fraud:card blocked,non-retriable",
    )]);
    let handle = engine.handle();
    let record = run(
        &handle,
        "OrderSaga",
        json!({"order_id": "o2", "amount": 5}),
        Some("o2"),
    );
    assert_eq!(record.status, RuntimeStatus::Failed);
    assert_eq!(record.failure.unwrap().root_cause().error_type, "Fraud");
    assert_eq!(scheduled(&all_events(&handle, "o2:0"), "ChargeCard"), 1);
}

#[test]
fn a_failing_ship_order_runs_the_sagas_compensations() {
    let engine = samples_with(vec![rule("activity=ShipOrder,error=CarrierDown:no trucks")]);
    let handle = engine.handle();
    let record = run(
        &handle,
        "OrderSaga",
        json!({"order_id": "o3", "amount": 5}),
        Some("o3"),
    );
    assert_eq!(record.status, RuntimeStatus::Failed);
    assert_eq!(
        record.failure.unwrap().root_cause().error_type,
        "CarrierDown"
    );
    let history = all_events(&handle, "o3");
    assert_eq!(scheduled(&history, "ReleaseInventory"), 1);
    assert!(scheduled(&history, "RefundPayment") >= 1);
    assert_eq!(markers(&history).len(), 1);
}

#[test]
fn a_failing_sub_orchestration_reaches_the_parent_with_the_injected_cause() {
    let engine = samples_with(vec![rule(
        "sub-orchestration=ProcessPayment,error=Boom:payments down",
    )]);
    let handle = engine.handle();
    let record = run(
        &handle,
        "OrderSaga",
        json!({"order_id": "o4", "amount": 5}),
        Some("o4"),
    );
    assert_eq!(record.status, RuntimeStatus::Failed);
    let failure = record.failure.unwrap();
    assert_eq!(failure.root_cause().error_type, "Boom");
    let child = handle.instance("o4:0").unwrap().unwrap();
    assert_eq!(child.status, RuntimeStatus::Failed);
    assert_eq!(markers(&all_events(&handle, "o4:0")).len(), 1);
}

#[test]
fn an_injected_panic_is_a_panic_failure() {
    let engine = local_with(vec![rule("activity=Counted,panic=kaboom")]);
    let handle = engine.handle();
    let record = run(&handle, "CallOnce", json!("Counted"), Some("p1"));
    assert_eq!(record.status, RuntimeStatus::Failed);
    let cause = record.failure.unwrap().root_cause().clone();
    assert_eq!(
        (cause.error_type.as_str(), cause.error_message.as_str()),
        ("Panic", "kaboom")
    );
}

#[test]
fn an_activity_that_times_out_lets_the_orchestrators_timer_branch_win() {
    let engine = local_with(vec![rule("activity=Delivery,timeout")]);
    let handle = engine.handle();
    let record = run(&handle, "WithTimeout", Value::Null, Some("t1"));
    assert_eq!(record.output, json!("timed out"));
    let history = all_events(&handle, "t1");
    assert_eq!(count(&history, "TimerFired"), 1);
    assert_eq!(count(&history, "TaskCompleted"), 0);
    assert_eq!(markers(&history)[0].1, "timeout (never finishes)");
}

#[test]
fn a_lost_result_is_redelivered_and_recorded_once() {
    let engine = local_with(vec![rule("activity=Delivery,lose-result")]);
    let handle = engine.handle();
    let record = run(&handle, "CallOnce", json!("Delivery"), Some("l1"));
    // The first delivery's result was lost; the second delivery (attempt 2) is the one recorded.
    assert_eq!(record.output, json!(2));
    let history = all_events(&handle, "l1");
    assert_eq!(count(&history, "TaskCompleted"), 1);
    assert_eq!(markers(&history).len(), 1);
}

#[test]
fn an_activity_run_twice_is_recorded_once() {
    let engine = local_with(vec![rule("activity=Counted,run-twice")]);
    let handle = engine.handle();
    let before = RUNS_OF_COUNTED.load(Ordering::SeqCst);
    let record = run(&handle, "CallOnce", json!("Counted"), Some("r1"));
    assert_eq!(record.output, json!("payload"));
    // The second run may finish just after the instance does.
    for _ in 0..500 {
        if RUNS_OF_COUNTED.load(Ordering::SeqCst) - before >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(RUNS_OF_COUNTED.load(Ordering::SeqCst) - before, 2);
    assert_eq!(count(&all_events(&handle, "r1"), "TaskCompleted"), 1);
}

#[test]
fn a_delayed_activity_starts_later_in_virtual_time() {
    let engine = local_with(vec![rule("activity=Counted,delay=2h")]);
    let handle = engine.handle();
    run(&handle, "CallOnce", json!("Counted"), Some("d1"));
    let history = all_events(&handle, "d1");
    let at = |kind: &str| {
        history
            .iter()
            .find(|event| event.kind.type_name() == kind)
            .unwrap()
            .timestamp
    };
    assert!(at("TaskCompleted") - at("TaskScheduled") >= chrono::Duration::hours(2));
}

#[test]
fn a_dropped_approval_lets_the_timeout_escalate() {
    let engine = samples_with(vec![rule("event=Approval,drop")]);
    let handle = engine.handle();
    handle.set_auto_skip(false).unwrap();
    handle
        .start_orchestration(
            "ApprovalWorkflow",
            json!({"request": "r", "timeout_hours": 1}),
            Some("a1".into()),
        )
        .unwrap();
    let mut stream = handle.subscribe();
    loop {
        if handle
            .pending_timers()
            .unwrap()
            .iter()
            .any(|timer| timer.instance_id == "a1")
        {
            break;
        }
        let _ = stream.blocking_recv();
    }
    handle.raise_event("a1", "Approval", json!(true)).unwrap();
    handle.advance_clock(Duration::from_secs(3600)).unwrap();
    assert_eq!(wait(&handle, "a1").output, json!("Escalated"));
    let history = all_events(&handle, "a1");
    assert_eq!(count(&history, "EventRaised"), 0);
    assert_eq!(markers(&history)[0].1, "drop the event");
}

#[test]
fn a_duplicated_event_arrives_twice() {
    let engine = local_with(vec![rule("event=Go,duplicate")]);
    let handle = engine.handle();
    handle
        .start_orchestration("TwoEvents", Value::Null, Some("e1".into()))
        .unwrap();
    handle.raise_event("e1", "Go", json!("once")).unwrap();
    assert_eq!(wait(&handle, "e1").output, json!(["once", "once"]));
}

#[test]
fn a_crash_mid_saga_recovers_and_completes_like_an_uncrashed_run() {
    let plain = samples_with(Vec::new());
    let expected = run(
        &plain.handle(),
        "OrderSaga",
        json!({"order_id": "o9", "amount": 12}),
        Some("o9"),
    );

    let dir = tempfile::tempdir().unwrap();
    let scenario = std::fs::read_to_string(scenarios().join("saga-crash.toml")).unwrap();
    let engine = Engine::start(EngineConfig {
        db: DbLocation::File(dir.path().join("state.db")),
        faults: parse_scenario(&scenario).unwrap(),
        ..EngineConfig::in_memory(LoadedPlugin::builtin().unwrap())
    })
    .unwrap();
    let handle = engine.handle();
    let mut stream = handle.subscribe();
    let record = run(
        &handle,
        "OrderSaga",
        json!({"order_id": "o9", "amount": 12}),
        Some("o9"),
    );
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, expected.output);
    let history = all_events(&handle, "o9");
    assert!(markers(&history).iter().any(|(rule, _)| rule == "crash"));
    let mut ids = HashSet::new();
    let mut completed = HashSet::new();
    for event in &history {
        if event.kind.type_name() == "TaskScheduled" {
            assert!(
                ids.insert(event.event_id),
                "#{} scheduled twice",
                event.event_id
            );
        }
        if let Some(task) = event.kind.completes_task() {
            assert!(completed.insert(task), "#{task} completed twice");
        }
    }
    assert_eq!(scheduled(&history, "ShipOrder"), 1);
    let mut warned = false;
    while let Ok(event) = stream.try_recv() {
        warned |= matches!(event, EngineEvent::Warning { message, .. } if message.contains("injected crash"));
    }
    assert!(warned);
}

// ----- determinism, sources and the handle ------------------------------------------------------

fn scenarios() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .join("assets/scenarios")
}

/// A history without timestamps (virtual time starts at the wall clock) or generated ids.
fn shape(events: &[HistoryEvent]) -> Vec<Value> {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(object) => {
                for unstable in ["timestamp", "executionId", "fireAt", "scheduledStart"] {
                    object.remove(unstable);
                }
                object.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    events
        .iter()
        .map(|event| {
            let mut value = serde_json::to_value(event).unwrap();
            strip(&mut value);
            value
        })
        .collect()
}

#[test]
fn one_seeded_probabilistic_scenario_gives_identical_histories_twice() {
    let scenario = std::fs::read_to_string(scenarios().join("flaky-payments.toml")).unwrap();
    let run_once = || {
        let engine = Engine::start(EngineConfig {
            workers: 1,
            faults: parse_scenario(&scenario).unwrap(),
            ..EngineConfig::in_memory(LoadedPlugin::builtin().unwrap())
        })
        .unwrap();
        let handle = engine.handle();
        let mut shapes = Vec::new();
        for order in 0..6 {
            let id = format!("order-{order}");
            run(
                &handle,
                "OrderSaga",
                json!({"order_id": id, "amount": 10 + order}),
                Some(&id),
            );
            shapes.push(shape(&all_events(&handle, &id)));
            shapes.push(shape(&all_events(&handle, &format!("{id}:0"))));
        }
        shapes
    };
    let first = run_once();
    let second = run_once();
    for (index, (a, b)) in first.iter().zip(&second).enumerate() {
        assert!(a == b, "history {index} differs:\n{a:#?}\n{b:#?}");
    }
    let all: Vec<&Value> = first.iter().flatten().collect();
    assert!(
        all.iter()
            .any(|event| event["eventType"] == "FaultInjected"),
        "the scenario fired"
    );
}

#[test]
fn every_shipped_scenario_parses() {
    for entry in std::fs::read_dir(scenarios()).unwrap() {
        let path = entry.unwrap().path();
        let rules = parse_scenario(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert!(!rules.is_empty(), "{}", path.display());
    }
}

#[test]
fn rules_are_added_listed_switched_and_removed_at_runtime() {
    let engine = local_with(Vec::new());
    let handle = engine.handle();
    let id = handle
        .add_fault(rule("activity=Counted,error=Nope"))
        .unwrap();
    assert_eq!(handle.faults().unwrap().len(), 1);
    assert_eq!(
        run(&handle, "CallOnce", json!("Counted"), Some("h1")).status,
        RuntimeStatus::Failed
    );
    handle.set_fault_enabled(id, false).unwrap();
    assert_eq!(
        run(&handle, "CallOnce", json!("Counted"), Some("h2")).status,
        RuntimeStatus::Completed
    );
    let listed = handle.faults().unwrap();
    assert_eq!((listed[0].enabled, listed[0].fired), (false, 1));
    handle.remove_fault(id).unwrap();
    assert!(handle.faults().unwrap().is_empty());
    assert!(handle.remove_fault(id).is_err());
}

// ----- seeded probabilities decide per call -----------------------------------------------------

fn durable_emu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_durable-emu"))
        .args(args)
        .output()
        .expect("the durable-emu binary runs")
}

/// `run` through the binary with `--db :memory: --history`; the printed status and exit code.
fn run_binary(args: &[&str]) -> (Value, Option<i32>) {
    let mut all = vec!["run", "--db", ":memory:", "--history"];
    all.extend_from_slice(args);
    let output = durable_emu(&all);
    let status = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (status, output.status.code())
}

fn history_of(status: &Value) -> &Vec<Value> {
    status["historyEvents"].as_array().unwrap()
}

/// FanOutFanIn over 1,000 Squares with `probability=0.1,seed=SEED`: the sequence ids of the
/// calls the rule fired on. Every Square is called once, so each is a first attempt.
fn fan_out_fired(seed: u64, workers: &str) -> BTreeSet<i64> {
    let rule = format!("activity=Square,probability=0.1,seed={seed},error=Flaky:injected");
    let (status, code) = run_binary(&[
        "-o",
        "FanOutFanIn",
        "--input",
        "1000",
        "--instance-id",
        "fan",
        "--workers",
        workers,
        "--fault",
        &rule,
    ]);
    let history = history_of(&status);
    let scheduled = history
        .iter()
        .filter(|event| event["eventType"] == "TaskScheduled")
        .count();
    assert_eq!(scheduled, 1000);
    let mut fired = BTreeSet::new();
    for marker in history
        .iter()
        .filter(|event| event["eventType"] == "FaultInjected")
    {
        assert_eq!(marker["target"], "activity Square (attempt 1)");
        fired.insert(marker["taskScheduledId"].as_i64().unwrap());
    }
    let failed: BTreeSet<i64> = history
        .iter()
        .filter(|event| event["eventType"] == "TaskFailed")
        .filter(|event| event["failure"]["errorType"] == "Flaky")
        .map(|event| event["taskScheduledId"].as_i64().unwrap())
        .collect();
    assert_eq!(failed, fired, "each fired call failed, and no other");
    if !fired.is_empty() {
        assert_eq!(
            (status["runtimeStatus"].clone(), code),
            (json!("Failed"), Some(1))
        );
    }
    fired
}

#[test]
fn a_probability_fires_on_6_to_14_percent_of_1000_first_attempts_the_same_calls_in_every_run_and_with_any_workers()
 {
    let mut picks = Vec::new();
    for seed in [15, 16, 17, 18, 19] {
        let fired = fan_out_fired(seed, "1");
        assert!(
            (60..=140).contains(&fired.len()),
            "seed {seed}: {} of 1000 calls fired",
            fired.len()
        );
        assert_eq!(
            fired,
            fan_out_fired(seed, "4"),
            "seed {seed} with 4 workers"
        );
        picks.push(fired);
    }
    assert_eq!(picks[0], fan_out_fired(15, "2"), "seed 15, a third run");
    for (index, pick) in picks.iter().enumerate().skip(1) {
        assert_ne!(
            &picks[0],
            pick,
            "seeds 15 and {} pick other calls",
            15 + index
        );
    }
}

/// BatchOrders over 1,000 OrderSaga sub-orchestrations with `probability=0.1,seed=SEED`: the
/// sequence ids of the children that failed with the injected error.
fn batch_fired(seed: u64, workers: &str) -> BTreeSet<i64> {
    let rule =
        format!("sub-orchestration=OrderSaga,probability=0.1,seed={seed},error=Flaky:injected");
    let (status, code) = run_binary(&[
        "-o",
        "BatchOrders",
        "--input",
        "1000",
        "--instance-id",
        "batch",
        "--workers",
        workers,
        "--fault",
        &rule,
    ]);
    assert_eq!(
        (status["runtimeStatus"].clone(), code),
        (json!("Completed"), Some(0))
    );
    history_of(&status)
        .iter()
        .filter(|event| event["eventType"] == "SubOrchestrationInstanceFailed")
        .filter(|event| event["failure"]["errorType"] == "Flaky")
        .map(|event| event["taskScheduledId"].as_i64().unwrap())
        .collect()
}

#[test]
fn a_probability_on_sub_orchestrations_fires_per_child_the_same_children_with_any_workers() {
    let fired = batch_fired(21, "1");
    assert!(
        (60..=140).contains(&fired.len()),
        "{} of 1000 children failed at start",
        fired.len()
    );
    assert_eq!(fired, batch_fired(21, "4"));
}

#[test]
fn the_shipped_timeout_storm_hangs_about_a_fifth_of_the_calls_and_the_fan_out_never_completes() {
    let scenario = scenarios().join("timeout-storm.toml");
    let (status, code) = run_binary(&[
        "-o",
        "FanOutFanIn",
        "--input",
        "100",
        "--instance-id",
        "storm",
        "--timeout",
        "10s",
        "--faults",
        scenario.to_str().unwrap(),
    ]);
    assert_eq!(
        (status["runtimeStatus"].clone(), code),
        (json!("Running"), Some(1))
    );
    let markers: Vec<&Value> = history_of(&status)
        .iter()
        .filter(|event| event["eventType"] == "FaultInjected")
        .collect();
    let hung = markers
        .iter()
        .filter(|marker| marker["rule"] == "storm")
        .count();
    let slow = markers
        .iter()
        .filter(|marker| marker["rule"] == "slow network")
        .count();
    assert!((10..=30).contains(&hung), "{hung} of 100 calls hung");
    assert_eq!(hung + slow, 100, "every call is either hung or slow");
    // What answered is every call that did not hang, each 10 virtual minutes late.
    assert_eq!(
        status["customStatus"],
        json!({"done": 100 - hung, "total": 100})
    );
}

/// Raises 1,000 "Tick" events under `event=Tick,probability=0.1,seed=SEED,delay=1m`: which
/// occurrences (the n-th Tick) the rule fired on.
fn ticks_fired(seed: u64) -> BTreeSet<String> {
    let engine = local_with(vec![rule(&format!(
        "event=Tick,probability=0.1,seed={seed},delay=1m"
    ))]);
    let handle = engine.handle();
    handle
        .start_orchestration("Ticks", json!(1000), Some("t1".into()))
        .unwrap();
    for tick in 0..1000 {
        handle.raise_event("t1", "Tick", json!(tick)).unwrap();
    }
    assert_eq!(wait(&handle, "t1").status, RuntimeStatus::Completed);
    all_events(&handle, "t1")
        .into_iter()
        .filter_map(|event| match event.kind {
            EventKind::FaultInjected { target, .. } => Some(target),
            _ => None,
        })
        .collect()
}

#[test]
fn a_probability_on_events_fires_per_occurrence_the_same_occurrences_every_run() {
    let fired = ticks_fired(5);
    assert!(
        (60..=140).contains(&fired.len()),
        "{} of 1000 events",
        fired.len()
    );
    assert_eq!(fired, ticks_fired(5));
}

#[test]
fn a_probability_draws_again_for_the_same_call_in_each_execution_after_continue_as_new() {
    let engine = local_with(vec![rule(
        "activity=Counted,probability=0.5,seed=11,delay=1m",
    )]);
    let handle = engine.handle();
    run(&handle, "SameCallEachExecution", json!(40), Some("eternal"));
    let executions = handle.history("eternal").unwrap();
    assert_eq!(executions.len(), 41);
    let hit = executions
        .iter()
        .filter(|execution| !markers(&execution.events).is_empty())
        .count();
    // One draw for all 40 would give 0 or 40.
    assert!((8..=32).contains(&hit), "{hit} of 40 executions hit");
}
