//! Replay probes of remote workers' code (docs/architecture.md#executors): the nondeterminism
//! check when a worker connects, as a hot reload does for a plugin build, and
//! `EngineHandle::probe_remote`, the replay stepper for remote instances. Workers are Rust test
//! workers on the hub API running two versions of the same orchestration through the SDK's
//! registry: `v1` (the code that recorded the history) and `v2` (changed: its first call is
//! another activity).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::engine::{Engine, EngineEvent, EngineHandle};
use durable_emu_engine::{
    DbLocation, REMOTE_CODE, RemoteError, RemoteHub, RemoteWorkItem, WorkerConnection, WorkerInfo,
};
use durable_emu_testing::engine::{current_history, eventually, samples_config, wait};
use durable_sdk::history::{EventKind, RuntimeStatus};
use durable_sdk::protocol::ActionKind;
use durable_sdk::serde_json::{Value, json};
use durable_sdk::{ActivityContext, FailureDetails, OrchestrationContext, Registry};
use std::sync::mpsc;
use std::time::Duration;

// ----- two versions of the code ----------------------------------------------------------------

async fn echo(_ctx: ActivityContext, value: Value) -> Result<Value, FailureDetails> {
    Ok(value)
}

/// v1: an activity, then an external event; returns both.
async fn waiter_v1(ctx: OrchestrationContext, input: u32) -> Result<Value, FailureDetails> {
    let first = ctx.call_activity::<Value>("Echo", input).await?;
    let go = ctx.wait_for_external_event::<Value>("go").await?;
    Ok(json!([first, go]))
}

/// v2: the first call is another activity, so it does not replay v1's history.
async fn waiter_v2(ctx: OrchestrationContext, input: u32) -> Result<Value, FailureDetails> {
    let first = ctx.call_activity::<Value>("Other", input).await?;
    let go = ctx.wait_for_external_event::<Value>("go").await?;
    Ok(json!([first, go]))
}

/// v1: two activities in a row.
async fn pair(ctx: OrchestrationContext, input: u32) -> Result<Vec<u32>, FailureDetails> {
    let a = ctx.call_activity::<u32>("Echo", input).await?;
    let b = ctx.call_activity::<u32>("Echo", a + 1).await?;
    Ok(vec![a, b])
}

fn v1() -> Registry {
    Registry::new()
        .activity("Echo", echo)
        .activity("Other", echo)
        .orchestrator("Waiter", waiter_v1)
        .orchestrator("Pair", pair)
}

fn v2() -> Registry {
    Registry::new()
        .activity("Echo", echo)
        .activity("Other", echo)
        .orchestrator("Waiter", waiter_v2)
        .orchestrator("Pair", pair)
}

// ----- workers ---------------------------------------------------------------------------------

const WAIT: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// What a test worker received.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Episode { instance_id: String, probe: bool },
    Activity { instance_id: String, name: String },
}

/// A remote worker on the hub API, on its own thread, running `code`; tells the test every item
/// it receives. Stops (its connection dropped: a disconnect) when dropped.
struct TestWorker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    seen: mpsc::Receiver<Seen>,
}

impl TestWorker {
    fn spawn(hub: RemoteHub, code: fn() -> Registry) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = mpsc::channel();
        let (seen_tx, seen) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let registry = code();
            runtime().block_on(async move {
                let mut connection = hub.connect(WorkerInfo {
                    peer: "test-worker".into(),
                    ..WorkerInfo::default()
                });
                ready_tx.send(()).unwrap();
                loop {
                    let item = tokio::select! {
                        item = connection.items.recv() => item,
                        _ = &mut stopped => return,
                    };
                    let Some(item) = item else { return };
                    let _ = seen_tx.send(seen_of(&item));
                    answer(&hub, &registry, item).await;
                }
            });
        });
        ready.recv().unwrap();
        Self {
            stop: Some(stop),
            thread: Some(thread),
            seen,
        }
    }

    /// Waits for the next item the worker receives.
    fn next_seen(&self) -> Seen {
        self.seen
            .recv_timeout(WAIT)
            .expect("the worker receives an item within the wait")
    }

    /// Waits until the worker has received (and answered) a probe of `instance_id`; returns
    /// everything it received until then.
    fn until_probe_of(&self, instance_id: &str) -> Vec<Seen> {
        let mut seen = Vec::new();
        loop {
            let item = self.next_seen();
            let done = item
                == Seen::Episode {
                    instance_id: instance_id.to_string(),
                    probe: true,
                };
            seen.push(item);
            if done {
                return seen;
            }
        }
    }

    /// Stops the worker; returns everything it received that was not taken yet.
    fn stop(mut self) -> Vec<Seen> {
        self.halt();
        self.seen.try_iter().collect()
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        self.halt();
    }
}

fn seen_of(item: &RemoteWorkItem) -> Seen {
    match item {
        RemoteWorkItem::Orchestrator { request, probe, .. } => Seen::Episode {
            instance_id: request.instance_id.clone(),
            probe: *probe,
        },
        RemoteWorkItem::Activity {
            instance_id, name, ..
        } => Seen::Activity {
            instance_id: instance_id.clone(),
            name: name.clone(),
        },
        RemoteWorkItem::Entity { request, name, .. } => Seen::Activity {
            instance_id: request.instance_id.clone(),
            name: name.clone(),
        },
    }
}

use durable_emu_testing::engine::answer_remote as answer;

// ----- helpers ---------------------------------------------------------------------------------

fn remote_engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = samples_config();
    config.db = DbLocation::File(dir.path().join("db.sqlite"));
    config.plugin = None;
    config.remote_workers = true;
    (dir, Engine::start(config).unwrap())
}

/// Starts a `Waiter` under `id` on v1 and waits until it waits for `go` (its activity done);
/// the v1 worker is gone afterwards.
fn waiting_instance(handle: &EngineHandle, id: &str) {
    let worker = TestWorker::spawn(handle.remote_hub(), v1);
    handle
        .start_orchestration("Waiter", json!(7), Some(id.into()))
        .unwrap();
    eventually("the instance to wait for 'go'", || {
        handle
            .instance(id)
            .unwrap()
            .is_some_and(|record| record.awaited_events == ["go"])
    });
    worker.stop();
}

fn diverged_event(
    events: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
    id: &str,
) -> Option<EngineEvent> {
    std::iter::from_fn(|| events.try_recv().ok()).find(|event| {
        matches!(event, EngineEvent::InstanceDiverged { instance_id, .. } if instance_id == id)
    })
}

fn next_item(rt: &tokio::runtime::Runtime, connection: &mut WorkerConnection) -> RemoteWorkItem {
    rt.block_on(async { tokio::time::timeout(WAIT, connection.items.recv()).await })
        .expect("an item within the wait")
        .expect("the hub keeps the connection open")
        .with_past_in_request()
}

fn no_item_yet(rt: &tokio::runtime::Runtime, connection: &mut WorkerConnection) -> bool {
    rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(200), connection.items.recv()).await
    })
    .is_err()
}

// ----- the reconnect check ---------------------------------------------------------------------

#[test]
fn a_worker_connecting_with_code_that_does_not_replay_an_instance_marks_it_diverged_and_says_so() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    waiting_instance(&handle, "w");
    let before = current_history(&handle, "w");
    let mut events = handle.subscribe();

    let changed = TestWorker::spawn(handle.remote_hub(), v2);
    changed.until_probe_of("w");
    eventually("the instance to be marked diverged", || {
        handle
            .instance("w")
            .unwrap()
            .is_some_and(|record| record.divergence.is_some())
    });

    let record = handle.instance("w").unwrap().unwrap();
    assert_eq!(record.status, RuntimeStatus::Suspended);
    let divergence = record.divergence.unwrap();
    assert_eq!(divergence.build, REMOTE_CODE);
    let diff = divergence.diff.expect("the SDK's diff is kept");
    assert_eq!(diff.sequence_id, 0);
    assert!(
        divergence.reason.contains("test-worker"),
        "{}",
        divergence.reason
    );
    let Some(EngineEvent::InstanceDiverged {
        build,
        pinned_build,
        diff: published,
        ..
    }) = diverged_event(&mut events, "w")
    else {
        panic!("InstanceDiverged is published");
    };
    assert_eq!((build, pinned_build), (REMOTE_CODE, None));
    assert_eq!(published, Some(diff));

    // The host suspended it (as a reload check does); the probe's own answer left no trace.
    let after = current_history(&handle, "w");
    assert_eq!(after[..before.len()], before[..]);
    let added: Vec<&EventKind> = after[before.len()..].iter().map(|e| &e.kind).collect();
    assert!(
        matches!(
            added[..],
            [
                EventKind::OrchestratorStarted,
                EventKind::ExecutionSuspended { .. },
                EventKind::OrchestratorCompleted
            ]
        ),
        "{added:?}"
    );

    // Code that does not replay it never runs it: the event waits, and a terminate is done by
    // the host (the changed code would fail it instead).
    handle.raise_event("w", "go", json!("now")).unwrap();
    handle.terminate("w", json!("given up"), false).unwrap();
    let ended = wait(&handle, "w");
    assert_eq!(ended.status, RuntimeStatus::Terminated);
    let received = changed.stop();
    assert!(
        !received
            .iter()
            .any(|seen| matches!(seen, Seen::Episode { probe: false, .. })),
        "{received:?}"
    );
}

#[test]
fn a_worker_connecting_with_the_same_code_leaves_the_instance_running() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    waiting_instance(&handle, "w");
    let mut events = handle.subscribe();

    let same = TestWorker::spawn(handle.remote_hub(), v1);
    same.until_probe_of("w");
    handle.raise_event("w", "go", json!("now")).unwrap();
    let ended = wait(&handle, "w");

    assert_eq!(
        ended.status,
        RuntimeStatus::Completed,
        "{:?}",
        ended.failure
    );
    assert_eq!(ended.output, json!([7, "now"]));
    assert!(ended.divergence.is_none());
    assert!(diverged_event(&mut events, "w").is_none());
    let history = current_history(&handle, "w");
    assert!(
        !history
            .iter()
            .any(|event| matches!(event.kind, EventKind::ExecutionSuspended { .. })),
        "never suspended"
    );
}

#[test]
fn a_clean_replay_clears_a_divergence_an_earlier_worker_was_found_with() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    waiting_instance(&handle, "w");
    let changed = TestWorker::spawn(handle.remote_hub(), v2);
    changed.until_probe_of("w");
    eventually("the instance to be marked diverged", || {
        handle
            .instance("w")
            .unwrap()
            .is_some_and(|record| record.divergence.is_some())
    });
    changed.stop();

    let mut events = handle.subscribe();
    let same = TestWorker::spawn(handle.remote_hub(), v1);
    same.until_probe_of("w");
    eventually("the stale divergence to be cleared", || {
        handle
            .instance("w")
            .unwrap()
            .is_some_and(|record| record.divergence.is_none())
    });
    // Front ends hear of it (the UI would show the row Diverged otherwise).
    let cleared = std::iter::from_fn(|| events.try_recv().ok()).any(|event| {
        matches!(event, EngineEvent::DivergenceCleared { instance_id } if instance_id == "w")
    });
    assert!(cleared, "DivergenceCleared is published");
    // As after a reload that replays it: still suspended until resumed, then it runs on.
    assert_eq!(
        handle.instance("w").unwrap().unwrap().status,
        RuntimeStatus::Suspended
    );
    handle.resume("w", None).unwrap();
    handle.raise_event("w", "go", json!(1)).unwrap();
    let ended = wait(&handle, "w");
    assert_eq!(
        ended.status,
        RuntimeStatus::Completed,
        "{:?}",
        ended.failure
    );
}

#[test]
fn an_episode_waits_while_a_probe_of_its_instance_is_out_and_goes_once_it_is_answered() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    waiting_instance(&handle, "w");
    let hub = handle.remote_hub();
    let rt = runtime();
    let mut connection = hub.connect(WorkerInfo::default());
    let RemoteWorkItem::Orchestrator {
        token,
        request,
        probe: true,
        ..
    } = next_item(&rt, &mut connection)
    else {
        panic!("a probe first");
    };
    assert_eq!(request.history_len, request.past_events.len());
    assert!(matches!(
        request.new_events[..],
        [ref started] if started.kind == EventKind::OrchestratorStarted
    ));

    handle.raise_event("w", "go", json!("held")).unwrap();
    assert!(
        no_item_yet(&rt, &mut connection),
        "the episode waits for the probe"
    );

    let response = v1().orchestrate_uncached(request);
    rt.block_on(hub.complete_orchestrator(&token, "w", response))
        .unwrap();
    let RemoteWorkItem::Orchestrator {
        token,
        request,
        probe: false,
        ..
    } = next_item(&rt, &mut connection)
    else {
        panic!("then the episode");
    };
    let response = v1().orchestrate_uncached(request);
    rt.block_on(hub.complete_orchestrator(&token, "w", response))
        .unwrap();
    let ended = wait(&handle, "w");
    assert_eq!(ended.output, json!([7, "held"]));
}

#[test]
fn an_instance_with_an_episode_out_is_not_probed() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    waiting_instance(&handle, "a-busy");
    waiting_instance(&handle, "b-idle");
    // A worker that holds a-busy's next episode unanswered (it answers its own probes first).
    let mut holder = hub.connect(WorkerInfo::default());
    for _ in 0..2 {
        let RemoteWorkItem::Orchestrator {
            token,
            request,
            probe: true,
            ..
        } = next_item(&rt, &mut holder)
        else {
            panic!("the holder is sent a probe of each waiting instance");
        };
        let id = request.instance_id.clone();
        rt.block_on(hub.complete_orchestrator(&token, &id, v1().orchestrate_uncached(request)))
            .unwrap();
    }
    handle.raise_event("a-busy", "go", json!("late")).unwrap();
    let held = next_item(&rt, &mut holder);
    let RemoteWorkItem::Orchestrator {
        token,
        request,
        probe: false,
        ..
    } = held
    else {
        panic!("a-busy's episode");
    };
    assert_eq!(request.instance_id, "a-busy");

    let checker = TestWorker::spawn(hub.clone(), v2);
    // Probes of one connect go out together in instance id order: one of a-busy would come
    // before b-idle's.
    let seen = checker.until_probe_of("b-idle");
    assert!(
        !seen
            .iter()
            .any(|seen| matches!(seen, Seen::Episode { instance_id, .. }
            if instance_id == "a-busy")),
        "{seen:?}"
    );
    eventually("b-idle (probed) to be marked diverged", || {
        handle
            .instance("b-idle")
            .unwrap()
            .is_some_and(|record| record.divergence.is_some())
    });

    // The held episode is recorded as usual; a-busy was never checked, let alone marked.
    rt.block_on(hub.complete_orchestrator(&token, "a-busy", v1().orchestrate_uncached(request)))
        .unwrap();
    let busy = wait(&handle, "a-busy");
    assert_eq!(busy.output, json!([7, "late"]));
    assert!(busy.divergence.is_none());
    drop(holder);
    let rest = checker.stop();
    assert!(
        !rest
            .iter()
            .any(|seen| matches!(seen, Seen::Episode { instance_id, .. }
            if instance_id == "a-busy")),
        "{rest:?}"
    );
}

#[test]
fn resuming_an_instance_a_probe_suspended_lets_the_connected_code_run_it_unpinned() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    waiting_instance(&handle, "w");
    let changed = TestWorker::spawn(handle.remote_hub(), v2);
    changed.until_probe_of("w");
    eventually("the instance to be marked diverged", || {
        handle
            .instance("w")
            .unwrap()
            .is_some_and(|record| record.divergence.is_some())
    });

    handle.resume("w", None).unwrap();
    let resumed = handle.instance("w").unwrap().unwrap();
    assert!(resumed.divergence.is_none());
    assert!(!resumed.pinned, "remote code has no build to pin to");
    // The user's call: the changed code runs the resume's episode, and fails it as the SDK does.
    let ended = wait(&handle, "w");
    assert_eq!(ended.status, RuntimeStatus::Failed);
    assert_eq!(
        ended.failure.unwrap().error_type,
        durable_sdk::NON_DETERMINISM
    );
}

// ----- the stepper -----------------------------------------------------------------------------

#[test]
fn probe_remote_answers_the_workers_actions_at_a_step_and_records_nothing() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let worker = TestWorker::spawn(handle.remote_hub(), v1);
    handle
        .start_orchestration("Pair", json!(3), Some("p".into()))
        .unwrap();
    let ended = wait(&handle, "p");
    assert_eq!(ended.output, json!([3, 4]));
    let history = current_history(&handle, "p");
    let activities_before = std::iter::from_fn(|| worker.seen.try_recv().ok())
        .filter(|seen| matches!(seen, Seen::Activity { .. }))
        .count();

    // Cut after the first episode's start (OrchestratorStarted, ExecutionStarted): the code
    // calls its first activity.
    let first = handle.probe_remote("p", Some(2)).unwrap();
    assert!(
        matches!(
            &first.actions[..],
            [action] if matches!(&action.kind, ActionKind::ScheduleTask { name, input } if name == "Echo" && *input == json!(3))
        ),
        "{:?}",
        first.actions
    );
    // Cut after the first activity's result: the second call, with the result in its input.
    let completed_at = history
        .iter()
        .position(|event| matches!(event.kind, EventKind::TaskCompleted { .. }))
        .unwrap();
    let second = handle.probe_remote("p", Some(completed_at + 1)).unwrap();
    assert!(
        matches!(
            &second.actions[..],
            [action] if action.id == 1 && matches!(&action.kind, ActionKind::ScheduleTask { input, .. } if *input == json!(4))
        ),
        "{:?}",
        second.actions
    );

    // Nothing of either was recorded or carried out.
    assert_eq!(current_history(&handle, "p"), history);
    assert_eq!(handle.instance("p").unwrap().unwrap(), ended);
    let received = worker.stop();
    assert_eq!(
        received
            .iter()
            .filter(|seen| matches!(seen, Seen::Activity { .. }))
            .count(),
        0,
        "no activity went out after the probes ({activities_before} before): {received:?}"
    );
    assert_eq!(
        received
            .iter()
            .filter(|seen| matches!(seen, Seen::Episode { probe: true, .. }))
            .count(),
        2
    );
}

#[test]
fn probe_remote_refuses_a_step_past_history_an_unknown_instance_and_a_name_no_worker_runs() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let worker = TestWorker::spawn(handle.remote_hub(), v1);
    handle
        .start_orchestration("Pair", json!(1), Some("p".into()))
        .unwrap();
    wait(&handle, "p");
    let len = current_history(&handle, "p").len();

    let past = handle.probe_remote("p", Some(len + 1)).unwrap_err();
    assert!(
        past.to_string().contains(&format!("step {}", len + 1))
            && past.to_string().contains(&format!("{len} events")),
        "{past}"
    );
    let unknown = handle.probe_remote("nope", None).unwrap_err();
    assert!(unknown.to_string().contains("nope"), "{unknown}");
    worker.stop();
    let nobody = handle.probe_remote("p", None).unwrap_err();
    assert!(
        matches!(nobody, RemoteError::NoWorker(ref name) if name == "Pair"),
        "{nobody:?}"
    );
}

/// A worker that connects while another worker's probe of an instance is out is not skipped:
/// it gets its own probe of that instance once the first one is answered.
#[test]
fn a_worker_that_connects_during_another_workers_probe_is_probed_after_it() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    waiting_instance(&handle, "b-idle");
    let mut holder = hub.connect(WorkerInfo::default());
    let RemoteWorkItem::Orchestrator {
        token,
        request,
        probe: true,
        ..
    } = next_item(&rt, &mut holder)
    else {
        panic!("the first worker is sent a probe of the waiting instance");
    };
    assert_eq!(request.instance_id, "b-idle");

    // The second worker connects while that probe is out (unanswered).
    let checker = TestWorker::spawn(hub.clone(), v2);
    rt.block_on(hub.complete_orchestrator(&token, "b-idle", v1().orchestrate_uncached(request)))
        .unwrap();
    let seen = checker.until_probe_of("b-idle");
    assert_eq!(
        seen,
        vec![Seen::Episode {
            instance_id: "b-idle".into(),
            probe: true
        }]
    );
    eventually(
        "b-idle (probed by the second worker) to be marked diverged",
        || {
            handle
                .instance("b-idle")
                .unwrap()
                .is_some_and(|record| record.divergence.is_some())
        },
    );
    drop(holder);
    drop(checker);
}
