//! Engine tests (docs/architecture.md#tests-in-layers): an in-memory or temporary store, the
//! virtual clock, and a plugin defined right here and linked in-process, called through the same C
//! ABI entry points a library has. Assertions are on statuses, outputs and histories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::DbLocation;
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::engine::{Engine, EngineConfig, EngineError, EngineHandle};
use durable_emu_engine::plugin::{LoadedPlugin, PluginOrigin};
use durable_emu_testing::engine::{current_history, kinds, run, wait};
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use durable_sdk::serde_json::{Value, json};
use durable_sdk::{
    ActivityContext, FailureDetails, OrchestrationContext, Registry, RetryPolicy, when_all,
    when_any,
};
use std::collections::HashSet;
use std::time::Duration;

// ----- the test plugin ------------------------------------------------------------------------

async fn echo(_ctx: ActivityContext, value: Value) -> Result<Value, FailureDetails> {
    Ok(value)
}

async fn slow_echo(_ctx: ActivityContext, value: Value) -> Result<Value, FailureDetails> {
    std::thread::sleep(Duration::from_millis(2));
    Ok(value)
}

async fn always_fails(_ctx: ActivityContext, what: String) -> Result<(), FailureDetails> {
    Err(FailureDetails::new("Broken", format!("{what} is broken")))
}

async fn chain(ctx: OrchestrationContext, count: u32) -> Result<Vec<u32>, FailureDetails> {
    let mut results = Vec::new();
    for step in 0..count {
        results.push(ctx.call_activity::<u32>("SlowEcho", step).await?);
    }
    Ok(results)
}

async fn fan_out(ctx: OrchestrationContext, n: u64) -> Result<u64, FailureDetails> {
    let calls = (1..=n).map(|i| ctx.call_activity::<u64>("SlowEcho", i));
    Ok(when_all(calls).await?.into_iter().sum())
}

async fn long_timer(ctx: OrchestrationContext, days: u64) -> Result<String, FailureDetails> {
    let started = ctx.current_utc_date_time();
    ctx.create_timer_after(Duration::from_secs(days * 86_400))
        .await?;
    Ok(format!(
        "{}",
        (ctx.current_utc_date_time() - started).num_days()
    ))
}

async fn short_timer(ctx: OrchestrationContext, millis: u64) -> Result<i64, FailureDetails> {
    let started = ctx.current_utc_date_time();
    ctx.create_timer_after(Duration::from_millis(millis))
        .await?;
    Ok((ctx.current_utc_date_time() - started).num_milliseconds())
}

async fn wait_for_go(ctx: OrchestrationContext, _input: ()) -> Result<Value, FailureDetails> {
    ctx.set_custom_status("waiting");
    let first: Value = ctx.wait_for_external_event("Go").await?;
    let second: Value = ctx.wait_for_external_event("go").await?;
    Ok(json!([first, second]))
}

async fn approval(ctx: OrchestrationContext, hours: u64) -> Result<String, FailureDetails> {
    let answer = ctx.wait_for_external_event::<bool>("Approval");
    let timeout = ctx.create_timer_after(Duration::from_secs(hours * 3600));
    if when_any([answer.handle(), timeout.handle()]).await == 0 {
        Ok(if answer.await? {
            "Approved"
        } else {
            "Rejected"
        }
        .into())
    } else {
        Ok("Escalated".into())
    }
}

async fn child_fails(ctx: OrchestrationContext, _input: ()) -> Result<(), FailureDetails> {
    ctx.call_activity::<()>("AlwaysFails", "the card").await?;
    Ok(())
}

async fn parent_of_failing_child(
    ctx: OrchestrationContext,
    _input: (),
) -> Result<(), FailureDetails> {
    ctx.call_sub_orchestrator::<()>("ChildFails", ()).await?;
    Ok(())
}

async fn parent_of_echo_child(ctx: OrchestrationContext, n: u64) -> Result<u64, FailureDetails> {
    Ok(ctx.call_sub_orchestrator::<u64>("FanOut", n).await?)
}

async fn parent_of_waiting_child(
    ctx: OrchestrationContext,
    _input: (),
) -> Result<Value, FailureDetails> {
    Ok(ctx.call_sub_orchestrator::<Value>("WaitForGo", ()).await?)
}

async fn retries(ctx: OrchestrationContext, _input: ()) -> Result<(), FailureDetails> {
    let policy = RetryPolicy::new(3, Duration::from_secs(10)).with_backoff(2.0);
    ctx.call_activity_with_retry::<()>("AlwaysFails", "payments", policy)
        .await?;
    Ok(())
}

async fn countdown(ctx: OrchestrationContext, n: u32) -> Result<String, FailureDetails> {
    ctx.call_activity::<u32>("Echo", n).await?;
    if n > 0 {
        ctx.continue_as_new(n - 1);
        return Ok(String::new());
    }
    Ok("liftoff".into())
}

fn registry() -> Registry {
    Registry::new()
        .activity("Echo", echo)
        .activity("SlowEcho", slow_echo)
        .activity("AlwaysFails", always_fails)
        .orchestrator("Chain", chain)
        .orchestrator("FanOut", fan_out)
        .orchestrator("LongTimer", long_timer)
        .orchestrator("ShortTimer", short_timer)
        .orchestrator("WaitForGo", wait_for_go)
        .orchestrator("Approval", approval)
        .orchestrator("ChildFails", child_fails)
        .orchestrator("ParentOfFailingChild", parent_of_failing_child)
        .orchestrator("ParentOfEchoChild", parent_of_echo_child)
        .orchestrator("ParentOfWaitingChild", parent_of_waiting_child)
        .orchestrator("Retries", retries)
        .orchestrator("Countdown", countdown)
}

durable_sdk::in_process_plugin!(registry);

// ----- helpers --------------------------------------------------------------------------------

fn plugin() -> LoadedPlugin {
    LoadedPlugin::in_process(
        durable_plugin_handle(),
        PluginOrigin::InProcess("engine-tests".into()),
    )
    .unwrap()
}

fn engine() -> Engine {
    Engine::start(EngineConfig::in_memory(plugin())).unwrap()
}

fn file_engine(path: &std::path::Path) -> Engine {
    Engine::start(EngineConfig {
        db: DbLocation::File(path.to_path_buf()),
        ..EngineConfig::in_memory(plugin())
    })
    .unwrap()
}

/// Waits until the instance's current history satisfies `ready` (engine work is asynchronous).
fn wait_for_history(handle: &EngineHandle, id: &str, ready: impl Fn(&[HistoryEvent]) -> bool) {
    let mut events = handle.subscribe();
    for _ in 0..10_000 {
        let history = handle.history(id).unwrap();
        if ready(&history.last().unwrap().events) {
            return;
        }
        let _ = events.blocking_recv();
    }
    panic!("{id} never reached the expected history");
}

// ----- tests ----------------------------------------------------------------------------------

#[test]
fn chaining_runs_activities_one_after_another() {
    let engine = engine();
    let record = run(&engine.handle(), "Chain", json!(3), None);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!([0, 1, 2]));
    let history = current_history(&engine.handle(), &record.instance_id);
    let scheduled: Vec<i32> = history
        .iter()
        .filter(|event| matches!(event.kind, EventKind::TaskScheduled { .. }))
        .map(|event| event.event_id)
        .collect();
    assert_eq!(scheduled, [0, 1, 2]);
    assert_eq!(
        history.last().unwrap().kind.type_name(),
        "OrchestratorCompleted"
    );
}

#[test]
fn fan_out_fan_in_sums_every_result() {
    let engine = engine();
    let record = run(&engine.handle(), "FanOut", json!(200), None);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!(200 * 201 / 2));
    let history = current_history(&engine.handle(), &record.instance_id);
    let completed = history
        .iter()
        .filter(|event| matches!(event.kind, EventKind::TaskCompleted { .. }))
        .count();
    assert_eq!(completed, 200);
}

#[test]
fn a_thirty_day_timer_completes_at_once_under_auto_skip() {
    let engine = engine();
    let handle = engine.handle();
    let before = handle.now().unwrap();
    let started = std::time::Instant::now();
    let record = run(&handle, "LongTimer", json!(30), None);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(record.output, json!("30"));
    assert!(handle.now().unwrap() - before >= chrono::Duration::days(30));
    let history = current_history(&handle, &record.instance_id);
    assert!(kinds(&history).contains(&"TimerFired"));
}

#[test]
fn under_the_real_clock_a_timer_waits_for_real_time() {
    let engine = Engine::start(EngineConfig {
        clock: ClockKind::Real,
        ..EngineConfig::in_memory(plugin())
    })
    .unwrap();
    let started = std::time::Instant::now();
    let record = run(&engine.handle(), "ShortTimer", json!(300), None);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(record.output.as_i64().unwrap() >= 300);
    assert!(matches!(
        engine.handle().advance_clock(Duration::from_secs(1)),
        Err(EngineError::Clock(_))
    ));
}

#[test]
fn external_events_raised_before_and_after_the_wait_are_both_delivered_in_order() {
    let engine = engine();
    let handle = engine.handle();
    let id = handle
        .start_orchestration("WaitForGo", json!(null), None)
        .unwrap();
    // The first event arrives before the orchestration waits for it (it is buffered), the second
    // after it started waiting; names compare case-insensitively.
    handle.raise_event(&id, "GO", json!("first")).unwrap();
    wait_for_history(&handle, &id, |events| {
        events
            .iter()
            .any(|event| matches!(&event.kind, EventKind::EventRaised { .. }))
    });
    handle.raise_event(&id, "go", json!("second")).unwrap();
    let record = wait(&handle, &id);
    assert_eq!(record.output, json!(["first", "second"]));
    assert_eq!(record.custom_status, Some(json!("waiting")));
}

/// Waits until the instance's record says its code waits for `events`.
fn wait_for_awaits(handle: &EngineHandle, id: &str, events: &[&str]) {
    let mut stream = handle.subscribe();
    for _ in 0..10_000 {
        let record = handle.instance(id).unwrap().unwrap();
        if record.awaited_events == events {
            return;
        }
        let _ = stream.blocking_recv();
    }
    panic!("{id} never waited for {events:?}");
}

#[test]
fn the_instance_record_names_the_events_its_code_waits_for_and_forgets_them_at_the_end() {
    let engine = engine();
    let handle = engine.handle();
    let mut stream = handle.subscribe();
    let id = handle
        .start_orchestration("WaitForGo", json!(null), None)
        .unwrap();
    wait_for_awaits(&handle, &id, &["Go"]);
    handle.raise_event(&id, "GO", json!(1)).unwrap();
    // The second wait spells the name its own way.
    wait_for_awaits(&handle, &id, &["go"]);
    handle.raise_event(&id, "go", json!(2)).unwrap();
    let record = wait(&handle, &id);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert!(record.awaited_events.is_empty());
    // Front ends heard each change, in order, ending with "nothing".
    let mut heard: Vec<Vec<String>> = Vec::new();
    while let Ok(event) = stream.try_recv() {
        if let durable_emu_engine::engine::EngineEvent::InstanceAwaits {
            instance_id,
            events,
        } = event
        {
            if instance_id == id {
                heard.push(events);
            }
        }
    }
    assert_eq!(
        heard,
        [vec!["Go".to_string()], vec!["go".to_string()], Vec::new()]
    );
}

#[test]
fn when_any_lets_an_event_beat_a_timer_and_the_timer_win_without_one() {
    let engine = engine();
    let handle = engine.handle();
    handle.set_auto_skip(false).unwrap();
    let id = handle
        .start_orchestration("Approval", json!(2), None)
        .unwrap();
    handle.raise_event(&id, "Approval", json!(true)).unwrap();
    assert_eq!(wait(&handle, &id).output, json!("Approved"));

    handle.set_auto_skip(true).unwrap();
    let escalated = run(&handle, "Approval", json!(2), None);
    assert_eq!(escalated.output, json!("Escalated"));
}

#[test]
fn a_failing_activity_in_a_sub_orchestration_fails_the_parent_with_the_whole_chain() {
    let engine = engine();
    let handle = engine.handle();
    let record = run(&handle, "ParentOfFailingChild", json!(null), None);
    assert_eq!(record.status, RuntimeStatus::Failed);
    let failure = record.failure.unwrap();
    let chain: Vec<&str> = failure.chain().map(|f| f.error_type.as_str()).collect();
    assert_eq!(chain, ["TaskFailed", "TaskFailed", "Broken"]);
    assert!(
        failure
            .error_message
            .contains("SubOrchestration 'ChildFails'")
    );
    assert_eq!(failure.root_cause().error_message, "the card is broken");

    let history = current_history(&handle, &record.instance_id);
    assert!(kinds(&history).contains(&"SubOrchestrationInstanceFailed"));
    let child = handle
        .instance(&format!("{}:0", record.instance_id))
        .unwrap()
        .unwrap();
    assert_eq!(child.status, RuntimeStatus::Failed);
    assert_eq!(child.parent.unwrap().instance_id, record.instance_id);
}

#[test]
fn a_sub_orchestration_result_reaches_the_parent() {
    let engine = engine();
    let record = run(&engine.handle(), "ParentOfEchoChild", json!(10), None);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!(55));
}

#[test]
fn retries_with_backoff_are_visible_as_timers_in_history() {
    let engine = engine();
    let handle = engine.handle();
    let record = run(&handle, "Retries", json!(null), None);
    assert_eq!(record.status, RuntimeStatus::Failed);
    let history = current_history(&handle, &record.instance_id);
    let calls: Vec<(&str, i32)> = history
        .iter()
        .filter(|event| {
            matches!(
                event.kind,
                EventKind::TaskScheduled { .. }
                    | EventKind::TaskFailed { .. }
                    | EventKind::TimerCreated { .. }
                    | EventKind::TimerFired { .. }
            )
        })
        .map(|event| (event.kind.type_name(), event.event_id))
        .collect();
    assert_eq!(
        calls,
        [
            ("TaskScheduled", 0),
            ("TaskFailed", -1),
            ("TimerCreated", 1),
            ("TimerFired", -1),
            ("TaskScheduled", 2),
            ("TaskFailed", -1),
            ("TimerCreated", 3),
            ("TimerFired", -1),
            ("TaskScheduled", 4),
            ("TaskFailed", -1),
        ]
    );
    // Backoff: 10 s after the first failure, 20 s after the second.
    let delays: Vec<i64> = history
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::TimerCreated { fire_at } => Some((fire_at - event.timestamp).num_seconds()),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [10, 20]);
}

#[test]
fn continue_as_new_starts_fresh_executions_and_keeps_the_earlier_ones_readable() {
    let engine = engine();
    let handle = engine.handle();
    let record = run(&handle, "Countdown", json!(3), None);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!("liftoff"));
    let executions = handle.history(&record.instance_id).unwrap();
    assert_eq!(executions.len(), 4);
    let inputs: Vec<Value> = executions
        .iter()
        .map(|e| e.execution.input.clone())
        .collect();
    assert_eq!(inputs, [json!(3), json!(2), json!(1), json!(0)]);
    for execution in &executions[..3] {
        assert!(kinds(&execution.events).contains(&"ContinueAsNew"));
    }
    assert!(kinds(&executions[3].events).contains(&"ExecutionCompleted"));
}

#[test]
fn terminate_suspend_resume_purge_and_restart_do_what_they_say() {
    let engine = engine();
    let handle = engine.handle();

    // Suspend holds events until resume.
    let id = handle
        .start_orchestration("WaitForGo", json!(null), None)
        .unwrap();
    handle.suspend(&id, Some("look closer".into())).unwrap();
    wait_for_history(&handle, &id, |events| {
        kinds(events).contains(&"ExecutionSuspended")
    });
    assert_eq!(
        handle.instance(&id).unwrap().unwrap().status,
        RuntimeStatus::Suspended
    );
    handle.raise_event(&id, "Go", json!(1)).unwrap();
    handle.raise_event(&id, "Go", json!(2)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(!kinds(&current_history(&handle, &id)).contains(&"EventRaised"));
    handle.resume(&id, None).unwrap();
    let record = wait(&handle, &id);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!([1, 2]));

    // Restart: same input, new instance.
    let again = handle.restart(&id).unwrap();
    assert_ne!(again, id);
    handle
        .terminate(&again, json!("no longer needed"), false)
        .unwrap();
    let terminated = wait(&handle, &again);
    assert_eq!(terminated.status, RuntimeStatus::Terminated);
    assert_eq!(terminated.output, json!("no longer needed"));
    assert!(matches!(
        handle.raise_event(&again, "Go", json!(1)),
        Err(EngineError::InstanceTerminal { .. })
    ));

    // Purge removes everything; running instances are refused.
    assert!(handle.purge(&again).unwrap());
    assert!(handle.instance(&again).unwrap().is_none());
    assert!(matches!(
        handle.history(&again),
        Err(EngineError::InstanceNotFound(_))
    ));
    let running = handle
        .start_orchestration("WaitForGo", json!(null), None)
        .unwrap();
    assert!(matches!(
        handle.purge(&running),
        Err(EngineError::InstanceRunning(_))
    ));
}

#[test]
fn recursive_terminate_also_terminates_running_children() {
    let engine = engine();
    let handle = engine.handle();
    let parent = handle
        .start_orchestration("ParentOfWaitingChild", json!(null), Some("parent".into()))
        .unwrap();
    let child = "parent:0";
    wait_for_history(&handle, &parent, |events| {
        kinds(events).contains(&"SubOrchestrationInstanceCreated")
    });
    wait_for_history(&handle, child, |events| {
        kinds(events).contains(&"ExecutionStarted")
    });
    handle.terminate(&parent, json!("stop"), true).unwrap();
    assert_eq!(wait(&handle, &parent).status, RuntimeStatus::Terminated);
    let child = wait(&handle, child);
    assert_eq!(child.status, RuntimeStatus::Terminated);
    assert_eq!(child.output, json!("stop"));
}

#[test]
fn unknown_orchestrations_and_instances_are_clear_errors() {
    let engine = engine();
    let handle = engine.handle();
    let error = handle
        .start_orchestration("NoSuchThing", json!(null), None)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no orchestration named 'NoSuchThing'")
    );
    assert!(error.to_string().contains("Chain"));
    assert!(matches!(
        handle.raise_event("nobody", "Go", json!(1)),
        Err(EngineError::InstanceNotFound(_))
    ));
    assert!(matches!(
        handle.restart("nobody"),
        Err(EngineError::InstanceNotFound(_))
    ));
    // The engine keeps working after bad input.
    assert_eq!(run(&handle, "Chain", json!(1), None).output, json!([0]));
}

#[test]
fn a_duplicate_instance_id_is_refused_while_running() {
    let engine = engine();
    let handle = engine.handle();
    handle.set_auto_skip(false).unwrap();
    handle
        .start_orchestration("WaitForGo", json!(null), Some("same".into()))
        .unwrap();
    let error = handle
        .start_orchestration("WaitForGo", json!(null), Some("same".into()))
        .unwrap_err();
    assert!(matches!(error, EngineError::InstanceExists(_)));
}

#[test]
fn pending_timers_are_readable_and_the_clock_moves_only_when_told() {
    let engine = engine();
    let handle = engine.handle();
    handle.set_auto_skip(false).unwrap();
    let id = handle
        .start_orchestration("LongTimer", json!(2), None)
        .unwrap();
    wait_for_history(&handle, &id, |events| {
        kinds(events).contains(&"TimerCreated")
    });
    let timers = handle.pending_timers().unwrap();
    assert_eq!(timers.len(), 1);
    assert_eq!(timers[0].instance_id, id);
    let now = handle.now().unwrap();
    assert_eq!((timers[0].fire_at - now).num_days(), 2);
    handle.advance_clock(Duration::from_secs(86_400)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        handle.instance(&id).unwrap().unwrap().status,
        RuntimeStatus::Running
    );
    assert_eq!(
        handle.advance_to_next_timer().unwrap(),
        Some(timers[0].fire_at)
    );
    assert_eq!(wait(&handle, &id).output, json!("2"));
    assert_eq!(handle.advance_to_next_timer().unwrap(), None);
}

#[test]
fn a_dropped_engine_recovers_from_its_file_and_every_instance_completes_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut ids = Vec::new();
    {
        let engine = file_engine(&db);
        let handle = engine.handle();
        ids.push((
            handle
                .start_orchestration("FanOut", json!(300), None)
                .unwrap(),
            json!(45_150),
        ));
        for n in 0..20 {
            ids.push((
                handle
                    .start_orchestration("Chain", json!(5), Some(format!("chain-{n}")))
                    .unwrap(),
                json!([0, 1, 2, 3, 4]),
            ));
        }
        ids.push((
            handle
                .start_orchestration("LongTimer", json!(7), None)
                .unwrap(),
            json!("7"),
        ));
        std::thread::sleep(Duration::from_millis(30));
        drop(engine);
    }
    let engine = file_engine(&db);
    let handle = engine.handle();
    for (id, expected) in &ids {
        let record = wait(&handle, id);
        assert_eq!(record.status, RuntimeStatus::Completed, "{id}");
        assert_eq!(&record.output, expected, "{id}");
        for execution in handle.history(id).unwrap() {
            let mut scheduled = HashSet::new();
            let mut completed = HashSet::new();
            for event in &execution.events {
                match &event.kind {
                    EventKind::TaskScheduled { .. } | EventKind::TimerCreated { .. } => {
                        assert!(
                            scheduled.insert(event.event_id),
                            "{id}: #{} scheduled twice",
                            event.event_id
                        );
                    }
                    kind => {
                        if let Some(task) = kind.completes_task() {
                            assert!(completed.insert(task), "{id}: #{task} completed twice");
                        }
                    }
                }
            }
            assert_eq!(
                scheduled, completed,
                "{id}: every call completed exactly once"
            );
        }
    }
}

#[test]
fn a_file_that_is_not_a_database_stops_the_engine_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, "not sqlite at all, just some text ".repeat(100)).unwrap();
    let error = Engine::start(EngineConfig {
        db: DbLocation::File(path),
        clock: ClockKind::Virtual,
        ..EngineConfig::in_memory(plugin())
    })
    .unwrap_err();
    assert!(
        error.to_string().contains("is not a durable-emu database"),
        "{error}"
    );
}
