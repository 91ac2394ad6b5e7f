//! `new_guid` (docs/semantics.md#deterministic-helpers): a UUIDv5 of (instance id, the episode's
//! `OrchestratorStarted` time, the number of the call within the execution). The count runs over
//! the whole execution, not one episode, because under the virtual clock consecutive episodes often
//! share one timestamp; it starts again with each new execution.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use durable_sdk::protocol::{ActionKind, OrchestratorRequest, OrchestratorResponse};
use durable_sdk::{
    EventKind, FailureDetails, HistoryEvent, OrchestrationContext, Registry, RuntimeStatus,
    SessionCache,
};
use serde_json::Value;
use support::{INSTANCE, events};

/// Takes a GUID and passes it to `Use` (#0, #1, ...), `steps` times; returns the GUIDs.
async fn guids(ctx: OrchestrationContext, steps: u32) -> Result<Vec<String>, FailureDetails> {
    let mut ids = Vec::new();
    for _ in 0..steps {
        let id = ctx.new_guid().to_string();
        ctx.call_activity::<Value>("Use", &id).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// [`guids`], then continues as new with the same input, forever.
async fn guids_forever(ctx: OrchestrationContext, steps: u32) -> Result<(), FailureDetails> {
    guids(ctx.clone(), steps).await?;
    ctx.continue_as_new(steps);
    Ok(())
}

fn registry() -> Registry {
    Registry::new()
        .orchestrator("Guids", guids)
        .orchestrator("GuidsForever", guids_forever)
}

/// One execution run live, episode by episode through one session cache, as a host runs it.
struct Run {
    /// The GUIDs the code passed to `Use`, in call order.
    used: Vec<String>,
    /// The history the host recorded, up to the start of the last episode.
    past: Vec<HistoryEvent>,
    /// The new events of the last episode (the one that ended the execution).
    last_new_events: Vec<HistoryEvent>,
    /// The last episode's answer.
    last: OrchestratorResponse,
}

/// Runs `orchestrator` with `input` as execution `execution_id`, every episode stamped `@minute`:
/// each `Use` completes in an episode of its own.
fn run_live(orchestrator: &str, input: u32, execution_id: &str, minute: i64) -> Run {
    let registry = registry();
    let mut cache = SessionCache::new(4);
    let mut history: Vec<HistoryEvent> = Vec::new();
    let mut used = Vec::new();
    let mut new_events = events(&format!(
        "OrchestratorStarted @{minute}\nExecutionStarted {orchestrator} {input}"
    ));
    for _ in 0..100 {
        let past = history.clone();
        let response = registry.orchestrate(
            &mut cache,
            OrchestratorRequest {
                instance_id: INSTANCE.to_string(),
                execution_id: execution_id.to_string(),
                history_len: history.len(),
                past_events: Vec::new(),
                new_events: new_events.clone(),
                include_replay_logs: false,
                max_actions: None,
            },
        );
        assert!(!response.needs_history, "the session cache lost a session");
        assert_eq!(response.nondeterminism, None);
        let timestamp = new_events[0].timestamp;
        history.extend(new_events.iter().cloned());
        let mut scheduled = None;
        for action in &response.actions {
            match &action.kind {
                ActionKind::ScheduleTask { name, input } if name == "Use" => {
                    used.push(input.as_str().expect("Use takes a GUID string").to_string());
                    scheduled = Some(action.id);
                }
                ActionKind::CompleteOrchestration { .. } => {
                    return Run {
                        used,
                        past,
                        last_new_events: new_events,
                        last: response,
                    };
                }
                other => panic!("unexpected action {other:?}"),
            }
            history.push(HistoryEvent {
                event_id: action.id,
                timestamp,
                kind: action.kind.to_event_kind(),
            });
        }
        history.push(HistoryEvent {
            event_id: -1,
            timestamp,
            kind: EventKind::OrchestratorCompleted,
        });
        let id = scheduled.expect("an episode that does not end the execution schedules Use");
        new_events = events(&format!(
            "OrchestratorStarted @{minute}\nTaskCompleted #{id} null"
        ));
    }
    panic!("{orchestrator} did not end its execution within 100 episodes");
}

/// The status and result of the action that ended the execution.
fn completion(response: &OrchestratorResponse) -> (RuntimeStatus, Value) {
    response
        .actions
        .iter()
        .find_map(|action| match &action.kind {
            ActionKind::CompleteOrchestration { status, result, .. } => {
                Some((*status, result.clone()))
            }
            _ => None,
        })
        .expect("the execution ended")
}

#[test]
fn episodes_sharing_one_timestamp_get_different_guids_because_the_count_spans_the_execution() {
    let run = run_live("Guids", 3, "inst-e1", 0);
    assert_eq!(run.used.len(), 3);
    // Each GUID was taken as the first call of its episode, all at @0: a per-episode counter
    // would have given the same GUID three times.
    assert_ne!(run.used[0], run.used[1]);
    assert_ne!(run.used[1], run.used[2]);
    assert_ne!(run.used[0], run.used[2]);
    assert_eq!(
        completion(&run.last),
        (RuntimeStatus::Completed, serde_json::json!(run.used))
    );
}

#[test]
fn a_replay_of_the_history_gives_the_same_guids_as_the_live_run() {
    let run = run_live("Guids", 3, "inst-e1", 0);
    let request = OrchestratorRequest {
        instance_id: INSTANCE.to_string(),
        execution_id: "inst-e1".to_string(),
        history_len: run.past.len(),
        past_events: run.past.clone(),
        new_events: run.last_new_events.clone(),
        include_replay_logs: false,
        max_actions: None,
    };
    let full_replay = registry().orchestrate_uncached(request.clone());
    let fresh_session = registry().orchestrate(&mut SessionCache::default(), request);
    assert_eq!(full_replay.nondeterminism, None);
    // The output lists every GUID the code took on this replay, two of them while replaying.
    for response in [&full_replay, &fresh_session] {
        assert_eq!(
            completion(response),
            (RuntimeStatus::Completed, serde_json::json!(run.used))
        );
    }
}

/// Pinned as the code stands: the name hashed is (instance, time, count) without the execution
/// id, so a new execution whose episodes have the previous one's timestamps repeats its GUIDs
/// (docs/semantics.md#deterministic-helpers says when that happens and how to avoid it).
#[test]
fn a_new_execution_restarts_the_count_so_only_its_timestamps_tell_its_guids_apart() {
    let first = run_live("GuidsForever", 2, "inst-e1", 0);
    assert_eq!(
        completion(&first.last),
        (RuntimeStatus::ContinuedAsNew, serde_json::json!(2))
    );
    let next_same_time = run_live("GuidsForever", 2, "inst-e2", 0);
    assert_eq!(next_same_time.used, first.used);
    let next_later = run_live("GuidsForever", 2, "inst-e2", 1);
    assert_ne!(next_later.used[0], first.used[0]);
    assert_ne!(next_later.used[1], first.used[1]);
    assert_ne!(next_later.used[0], next_later.used[1]);
}
