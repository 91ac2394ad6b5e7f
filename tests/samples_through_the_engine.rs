//! The samples that need something to happen mid-run, driven through the engine library on the
//! built sample cdylib: ApprovalWorkflow's Approved and Rejected paths (an event raised while it
//! waits, with auto-skip off so the timeout does not fire at once) and FanOutFanIn's progress as
//! it changes. `durable-emu run` alone cannot raise an event while it runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::InstanceRecord;
use durable_emu_engine::engine::{Engine, EngineConfig, EngineEvent, EngineHandle};
use durable_emu_engine::plugin::LoadedPlugin;
use durable_emu_tests::built_cdylib;
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn engine() -> Engine {
    let plugin = LoadedPlugin::load(&built_cdylib("sample-functions")).unwrap();
    Engine::start(EngineConfig::in_memory(plugin)).unwrap()
}

fn wait(handle: &EngineHandle, id: &str) -> InstanceRecord {
    handle
        .wait_until_terminal(id, Duration::from_secs(60))
        .unwrap()
        .unwrap_or_else(|| panic!("{id} did not finish within a minute"))
}

fn history(handle: &EngineHandle, id: &str) -> Vec<HistoryEvent> {
    handle
        .history(id)
        .unwrap()
        .into_iter()
        .flat_map(|execution| execution.events)
        .collect()
}

/// Waits (real time, at most 30 s) until the instance's history has an event of `kind`.
fn wait_for_event(handle: &EngineHandle, id: &str, kind: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if history(handle, id)
            .iter()
            .any(|event| event.kind.type_name() == kind)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{id} never recorded {kind}");
}

fn story(events: &[HistoryEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|event| event.kind.type_name())
        .filter(|kind| !matches!(*kind, "OrchestratorStarted" | "OrchestratorCompleted"))
        .collect()
}

fn scheduled_activities(events: &[HistoryEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::TaskScheduled { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

/// Starts ApprovalWorkflow with the clock held still, waits until it is waiting for the answer,
/// raises `Approval` with `answer` and returns the finished instance and its history.
fn answer_approval(instance_id: &str, answer: Value) -> (InstanceRecord, Vec<HistoryEvent>) {
    let engine = engine();
    let handle = engine.handle();
    handle.set_auto_skip(false).unwrap();
    let input = json!({"request": "Ship on Friday", "timeout_hours": 24});
    let id = handle
        .start_orchestration("ApprovalWorkflow", input, Some(instance_id.into()))
        .unwrap();
    wait_for_event(&handle, &id, "TimerCreated");
    let waiting = handle.instance(&id).unwrap().unwrap();
    assert_eq!(waiting.status, RuntimeStatus::Running);
    assert_eq!(
        waiting.custom_status.as_ref().unwrap()["waiting_for"],
        "Approval"
    );
    // Names compare case-insensitively.
    handle.raise_event(&id, "approval", answer).unwrap();
    let record = wait(&handle, &id);
    let events = history(&handle, &id);
    (record, events)
}

#[test]
fn approval_workflow_is_approved_when_the_answer_true_arrives_before_the_timeout() {
    let (record, events) = answer_approval("approve", json!(true));
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!("Approved"));
    assert_eq!(
        story(&events),
        [
            "ExecutionStarted",
            "TaskScheduled",
            "TaskCompleted",
            "TimerCreated",
            "EventRaised",
            "ExecutionCompleted"
        ]
    );
    // The timer lost the race: it never fired and nobody was escalated to.
    assert_eq!(scheduled_activities(&events), ["RequestApproval"]);
}

#[test]
fn approval_workflow_is_rejected_when_the_answer_false_arrives_before_the_timeout() {
    let (record, events) = answer_approval("reject", json!(false));
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!("Rejected"));
    assert!(story(&events).contains(&"EventRaised"));
    assert!(!story(&events).contains(&"TimerFired"));
    assert_eq!(scheduled_activities(&events), ["RequestApproval"]);
}

#[test]
fn approval_workflow_fails_on_an_answer_that_is_not_a_boolean() {
    let (record, _) = answer_approval("answer-yes", json!("yes"));
    assert_eq!(record.status, RuntimeStatus::Failed);
    let failure = record.failure.unwrap();
    let chain: Vec<&str> = failure.chain().map(|f| f.error_type.as_str()).collect();
    assert_eq!(chain, ["TaskFailed", "SerializationError"]);
    assert!(failure.error_message.contains("'Approval'"), "{failure}");
}

#[test]
fn approval_workflow_escalates_when_the_clock_reaches_the_timeout() {
    let engine = engine();
    let handle = engine.handle();
    handle.set_auto_skip(false).unwrap();
    let input = json!({"request": "Ship on Friday", "timeout_hours": 24});
    let id = handle
        .start_orchestration("ApprovalWorkflow", input, None)
        .unwrap();
    wait_for_event(&handle, &id, "TimerCreated");
    // 23 hours: still waiting.
    handle
        .advance_clock(Duration::from_secs(23 * 3600))
        .unwrap();
    assert!(
        handle
            .wait_until_terminal(&id, Duration::from_millis(200))
            .unwrap()
            .is_none()
    );
    // One more hour: the timer wins.
    handle.advance_clock(Duration::from_secs(3600)).unwrap();
    let record = wait(&handle, &id);
    assert_eq!(record.output, json!("Escalated"));
    assert_eq!(
        scheduled_activities(&history(&handle, &id)),
        ["RequestApproval", "Escalate"]
    );
}

#[test]
fn fan_out_fan_in_progress_counts_up_from_zero_to_the_total() {
    let engine = engine();
    let handle = engine.handle();
    let mut events = handle.subscribe();
    let id = handle
        .start_orchestration("FanOutFanIn", json!(50), Some("progress".into()))
        .unwrap();
    let record = wait(&handle, &id);
    assert_eq!(record.output, json!(42_925));
    let mut done = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EngineEvent::InstanceChanged {
            instance_id,
            custom_status: Some(status),
            ..
        } = event
        {
            if instance_id == id {
                assert_eq!(status["total"], 50);
                done.push(status["done"].as_u64().unwrap());
            }
        }
    }
    // How many results each episode brings depends on the workers; the count only goes up.
    assert_eq!(done.first(), Some(&0), "{done:?}");
    assert!(done.is_sorted(), "{done:?}");
    assert_eq!(done.last(), Some(&50), "{done:?}");
}
