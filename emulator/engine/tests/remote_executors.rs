//! The executor boundary (docs/architecture.md#executors): one conformance suite, written once
//! and run against both executors (the in-process plugin, and remote workers on the hub API
//! played by a Rust test worker that runs the same functions through the SDK's registry), then
//! what only the remote executor has: tokens, stale and history-breaking completions, parked
//! names and filters, probes, faults, the virtual clock and restarts with remote work out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::engine::{Engine, EngineConfig, EngineEvent, EngineHandle};
use durable_emu_engine::faults::parse_compact;
use durable_emu_engine::plugin::{LoadedPlugin, PluginOrigin};
use durable_emu_engine::{
    DbLocation, NameFilter, RemoteError, RemoteHub, RemoteWorkItem, WorkFilters, WorkKind,
    WorkerConnection, WorkerInfo,
};
use durable_emu_testing::engine::{current_history, wait};
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use durable_sdk::protocol::{Action, ActionKind, ActivityOutcome};
use durable_sdk::serde_json::{Value, json};
use durable_sdk::{ActivityContext, FailureDetails, OrchestrationContext, Registry, when_all};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

// ----- the functions both executors run -------------------------------------------------------

async fn echo(_ctx: ActivityContext, value: Value) -> Result<Value, FailureDetails> {
    Ok(value)
}

async fn chain(ctx: OrchestrationContext, count: u32) -> Result<Vec<u32>, FailureDetails> {
    let mut results = Vec::new();
    for step in 0..count {
        results.push(ctx.call_activity::<u32>("Echo", step).await?);
    }
    Ok(results)
}

async fn fan_out(ctx: OrchestrationContext, n: u64) -> Result<u64, FailureDetails> {
    let calls = (1..=n).map(|i| ctx.call_activity::<u64>("Echo", i));
    Ok(when_all(calls).await?.into_iter().sum())
}

async fn collect_events(ctx: OrchestrationContext, n: u32) -> Result<Vec<Value>, FailureDetails> {
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(ctx.wait_for_external_event::<Value>("item").await?);
    }
    Ok(seen)
}

async fn long_timer(ctx: OrchestrationContext, days: u64) -> Result<i64, FailureDetails> {
    let started = ctx.current_utc_date_time();
    ctx.create_timer_after(Duration::from_secs(days * 86_400))
        .await?;
    Ok((ctx.current_utc_date_time() - started).num_days())
}

async fn tolerant(ctx: OrchestrationContext, _: Value) -> Result<String, FailureDetails> {
    match ctx.call_activity::<Value>("Echo", "x").await {
        Ok(_) => Ok("ran".into()),
        Err(failure) => Ok(format!("failed: {}", failure.failure.error_type)),
    }
}

fn registry() -> Registry {
    Registry::new()
        .activity("Echo", echo)
        .orchestrator("Chain", chain)
        .orchestrator("FanOut", fan_out)
        .orchestrator("CollectEvents", collect_events)
        .orchestrator("LongTimer", long_timer)
        .orchestrator("Tolerant", tolerant)
}

durable_sdk::in_process_plugin!(registry);

// ----- executors ------------------------------------------------------------------------------

const WAIT: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A remote worker on the hub API, on its own thread: runs what it receives through the
/// registry and completes it; stops (dropping its connection: a disconnect) when told.
struct TestWorker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestWorker {
    fn spawn(hub: RemoteHub, info: WorkerInfo) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let registry = registry();
            runtime().block_on(async move {
                let mut connection = hub.connect(info);
                ready_tx.send(()).unwrap();
                loop {
                    let item = tokio::select! {
                        item = connection.items.recv() => item,
                        _ = &mut stopped => return,
                    };
                    let Some(item) = item else { return };
                    answer(&hub, &registry, item).await;
                }
            });
        });
        ready.recv().unwrap();
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.halt();
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

use durable_emu_testing::engine::answer_remote as answer;

fn plugin() -> LoadedPlugin {
    LoadedPlugin::in_process(
        durable_plugin_handle(),
        PluginOrigin::InProcess("remote-tests".into()),
    )
    .unwrap()
}

fn config(db: &Path, remote: bool) -> EngineConfig {
    let mut config = EngineConfig::in_memory(plugin());
    config.db = DbLocation::File(db.to_path_buf());
    if remote {
        config.plugin = None;
        config.remote_workers = true;
    }
    config
}

/// An executor under test, with what "it goes away while work is out" means for it.
trait Executor {
    fn start(db: &Path) -> Self;
    fn handle(&self) -> EngineHandle;
    /// The executor goes away and comes back (plugin: the engine process restarts; remote: the
    /// worker disconnects and another connects).
    fn interrupt(&mut self);
}

struct PluginExecutor {
    db: std::path::PathBuf,
    engine: Option<Engine>,
}

impl Executor for PluginExecutor {
    fn start(db: &Path) -> Self {
        Self {
            db: db.to_path_buf(),
            engine: Some(Engine::start(config(db, false)).unwrap()),
        }
    }
    fn handle(&self) -> EngineHandle {
        self.engine.as_ref().unwrap().handle()
    }
    fn interrupt(&mut self) {
        self.engine.take().unwrap().shutdown();
        self.engine = Some(Engine::start(config(&self.db, false)).unwrap());
    }
}

struct RemoteExecutor {
    engine: Engine,
    worker: Option<TestWorker>,
}

impl Executor for RemoteExecutor {
    fn start(db: &Path) -> Self {
        let engine = Engine::start(config(db, true)).unwrap();
        let worker = TestWorker::spawn(engine.handle().remote_hub(), WorkerInfo::default());
        Self {
            engine,
            worker: Some(worker),
        }
    }
    fn handle(&self) -> EngineHandle {
        self.engine.handle()
    }
    fn interrupt(&mut self) {
        self.worker.take().unwrap().stop();
        self.worker = Some(TestWorker::spawn(
            self.engine.handle().remote_hub(),
            WorkerInfo::default(),
        ));
    }
}

// ----- the conformance suite ------------------------------------------------------------------

/// Every action id appears once in history, and each completion answers a scheduled call once.
fn assert_exactly_once(events: &[HistoryEvent]) {
    let mut actions = HashSet::new();
    let mut answered = HashSet::new();
    for event in events {
        if event.event_id >= 0 {
            assert!(
                actions.insert(event.event_id),
                "action {} twice",
                event.event_id
            );
        }
        if let EventKind::TaskCompleted {
            task_scheduled_id, ..
        }
        | EventKind::TaskFailed {
            task_scheduled_id, ..
        } = &event.kind
        {
            assert!(
                actions.contains(task_scheduled_id),
                "answer to an unscheduled task"
            );
            assert!(
                answered.insert(*task_scheduled_id),
                "task {task_scheduled_id} answered twice"
            );
        }
    }
}

/// Episodes never overlap: each `OrchestratorStarted` is closed before the next opens.
fn assert_episodes_in_sequence(events: &[HistoryEvent]) {
    let mut open = false;
    for event in events {
        match event.kind {
            EventKind::OrchestratorStarted => {
                assert!(!open, "an episode started inside another");
                open = true;
            }
            EventKind::OrchestratorCompleted => {
                assert!(open, "an episode completed without starting");
                open = false;
            }
            _ => {}
        }
    }
    assert!(!open);
}

fn conformance_chain_completes_with_exactly_once_history<E: Executor>() {
    let dir = tempfile::tempdir().unwrap();
    let executor = E::start(&dir.path().join("db.sqlite"));
    let handle = executor.handle();
    let id = handle
        .start_orchestration("Chain", json!(4), Some("chain".into()))
        .unwrap();
    let record = wait(&handle, &id);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!([0, 1, 2, 3]));
    let history = current_history(&handle, &id);
    assert_exactly_once(&history);
    assert_episodes_in_sequence(&history);
}

fn conformance_fan_out_runs_every_activity_and_records_each_once<E: Executor>() {
    let dir = tempfile::tempdir().unwrap();
    let executor = E::start(&dir.path().join("db.sqlite"));
    let handle = executor.handle();
    let id = handle
        .start_orchestration("FanOut", json!(50), None)
        .unwrap();
    let record = wait(&handle, &id);
    assert_eq!(record.output, json!(1275));
    let history = current_history(&handle, &id);
    assert_exactly_once(&history);
    let completed = history
        .iter()
        .filter(|event| matches!(event.kind, EventKind::TaskCompleted { .. }))
        .count();
    assert_eq!(completed, 50);
}

fn conformance_messages_arriving_during_an_episode_wait_for_the_next<E: Executor>() {
    let dir = tempfile::tempdir().unwrap();
    let executor = E::start(&dir.path().join("db.sqlite"));
    let handle = executor.handle();
    let id = handle
        .start_orchestration("CollectEvents", json!(20), None)
        .unwrap();
    for i in 0..20 {
        handle.raise_event(&id, "item", json!(i)).unwrap();
    }
    let record = wait(&handle, &id);
    assert_eq!(record.output, json!((0..20).collect::<Vec<_>>()));
    assert_episodes_in_sequence(&current_history(&handle, &id));
}

fn conformance_work_out_when_the_executor_goes_away_is_redelivered_and_recorded_once<
    E: Executor,
>() {
    let dir = tempfile::tempdir().unwrap();
    let mut executor = E::start(&dir.path().join("db.sqlite"));
    let id = executor
        .handle()
        .start_orchestration("FanOut", json!(200), Some("interrupted".into()))
        .unwrap();
    executor.interrupt();
    let handle = executor.handle();
    let record = wait(&handle, &id);
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!(20_100));
    let history = current_history(&handle, &id);
    assert_exactly_once(&history);
    assert_episodes_in_sequence(&history);
}

macro_rules! conformance {
    ($module:ident, $executor:ty) => {
        mod $module {
            use super::*;
            #[test]
            fn chain_completes_with_exactly_once_history() {
                conformance_chain_completes_with_exactly_once_history::<$executor>();
            }
            #[test]
            fn fan_out_runs_every_activity_and_records_each_once() {
                conformance_fan_out_runs_every_activity_and_records_each_once::<$executor>();
            }
            #[test]
            fn messages_arriving_during_an_episode_wait_for_the_next() {
                conformance_messages_arriving_during_an_episode_wait_for_the_next::<$executor>();
            }
            #[test]
            fn work_out_when_the_executor_goes_away_is_redelivered_and_recorded_once() {
                conformance_work_out_when_the_executor_goes_away_is_redelivered_and_recorded_once::<
                    $executor,
                >();
            }
        }
    };
}

conformance!(plugin_executor, PluginExecutor);
conformance!(remote_executor, RemoteExecutor);

// ----- the remote executor's own rules --------------------------------------------------------

fn remote_engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(&dir.path().join("db.sqlite"), true)).unwrap();
    (dir, engine)
}

/// Receives the next item on a connection held by the test itself.
fn next_item(rt: &tokio::runtime::Runtime, connection: &mut WorkerConnection) -> RemoteWorkItem {
    rt.block_on(async { tokio::time::timeout(WAIT, connection.items.recv()).await })
        .expect("an item within the wait")
        .expect("the hub keeps the connection open")
        .with_past_in_request()
}

/// Like [`next_item`], answering (as the test's code) the replay probes a connect brings first
/// (docs/architecture.md#executors: a connecting worker's code is checked against running
/// instances).
fn next_work(
    rt: &tokio::runtime::Runtime,
    hub: &RemoteHub,
    connection: &mut WorkerConnection,
) -> RemoteWorkItem {
    loop {
        match next_item(rt, connection) {
            RemoteWorkItem::Orchestrator {
                token,
                request,
                probe: true,
                ..
            } => {
                let id = request.instance_id.clone();
                let response = registry().orchestrate_uncached(request);
                rt.block_on(hub.complete_orchestrator(&token, &id, response))
                    .unwrap();
            }
            item => return item,
        }
    }
}

fn no_item_yet(rt: &tokio::runtime::Runtime, connection: &mut WorkerConnection) -> bool {
    rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(200), connection.items.recv()).await
    })
    .is_err()
}

fn only(names: &[&str], activities: &[&str]) -> WorkerInfo {
    let filters = |names: &[&str]| {
        names
            .iter()
            .map(|name| NameFilter {
                name: (*name).to_string(),
                versions: Vec::new(),
            })
            .collect()
    };
    WorkerInfo {
        peer: "test".into(),
        filters: Some(WorkFilters {
            orchestrations: filters(names),
            activities: filters(activities),
            entities: Vec::new(),
        }),
        ..WorkerInfo::default()
    }
}

fn history_len(handle: &EngineHandle, id: &str) -> usize {
    current_history(handle, id).len()
}

#[test]
fn an_episode_item_carries_the_full_history_and_starts_with_orchestrator_started() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let registry = registry();
    let mut worker = hub.connect(WorkerInfo::default());
    let id = handle.start_orchestration("Chain", json!(1), None).unwrap();
    let RemoteWorkItem::Orchestrator {
        token,
        request,
        name,
        probe,
        ..
    } = next_item(&rt, &mut worker)
    else {
        panic!("an episode first")
    };
    assert_eq!((name.as_str(), probe), ("Chain", false));
    assert!(request.past_events.is_empty());
    assert!(matches!(
        request.new_events[0].kind,
        EventKind::OrchestratorStarted
    ));
    assert!(matches!(
        request.new_events[1].kind,
        EventKind::ExecutionStarted { .. }
    ));
    let response = registry.orchestrate_uncached(request);
    rt.block_on(hub.complete_orchestrator(&token, &id, response))
        .unwrap();
    let RemoteWorkItem::Activity {
        token,
        task_id,
        attempt,
        ..
    } = next_item(&rt, &mut worker)
    else {
        panic!("then the activity")
    };
    assert_eq!(attempt, 1);
    rt.block_on(hub.complete_activity(
        &token,
        &id,
        task_id,
        ActivityOutcome::Completed { result: json!(0) },
    ))
    .unwrap();
    let RemoteWorkItem::Orchestrator { request, .. } = next_item(&rt, &mut worker) else {
        panic!("then the next episode")
    };
    assert_eq!(request.past_events.len(), request.history_len);
    assert_eq!(request.past_events, current_history(&handle, &id));
}

#[test]
fn every_episode_of_a_long_chain_carries_exactly_the_stored_history() {
    // The core keeps a remote instance's history between episodes and reads only what was
    // recorded since; what the host records in between (a raised event's episode) must be in
    // the next episode's past all the same.
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let registry = registry();
    let mut worker = hub.connect(WorkerInfo::default());
    let id = handle.start_orchestration("Chain", json!(6), None).unwrap();
    let mut episodes = 0;
    loop {
        match next_item(&rt, &mut worker) {
            RemoteWorkItem::Orchestrator {
                token,
                request,
                past,
                ..
            } => {
                episodes += 1;
                assert_eq!(past.len(), request.history_len, "episode {episodes}");
                assert_eq!(
                    request.past_events,
                    current_history(&handle, &id),
                    "episode {episodes} carries the stored history"
                );
                let response = registry.orchestrate_uncached(request);
                let done = response
                    .actions
                    .iter()
                    .any(|action| matches!(action.kind, ActionKind::CompleteOrchestration { .. }));
                rt.block_on(hub.complete_orchestrator(&token, &id, response))
                    .unwrap();
                if done {
                    break;
                }
            }
            RemoteWorkItem::Activity {
                token,
                task_id,
                input,
                ..
            } => {
                if episodes == 3 {
                    // A message the host records while the activity is out: it is in the inbox
                    // until the next episode, then in history like the activity's result.
                    handle
                        .raise_event(&id, "unrelated", json!("noise"))
                        .unwrap();
                }
                rt.block_on(hub.complete_activity(
                    &token,
                    &id,
                    task_id,
                    ActivityOutcome::Completed { result: input },
                ))
                .unwrap();
            }
            RemoteWorkItem::Entity { .. } => panic!("no entities here"),
        }
    }
    assert!(
        episodes >= 7,
        "one episode per step, and the event's: {episodes}"
    );
    let record = wait(&handle, &id);
    assert_eq!(record.output, json!([0, 1, 2, 3, 4, 5]));
}

#[test]
fn a_stale_token_is_refused_and_changes_nothing() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let registry = registry();
    let mut first = hub.connect(WorkerInfo::default());
    let id = handle.start_orchestration("Chain", json!(1), None).unwrap();
    let RemoteWorkItem::Orchestrator { token, request, .. } = next_item(&rt, &mut first) else {
        panic!("an episode")
    };
    let response = registry.orchestrate_uncached(request);
    rt.block_on(hub.complete_orchestrator(&token, &id, response.clone()))
        .unwrap();
    // The same answer again: its token was used.
    let again = rt.block_on(hub.complete_orchestrator(&token, &id, response));
    assert!(
        matches!(again, Err(RemoteError::UnknownWork { .. })),
        "{again:?}"
    );
    let RemoteWorkItem::Activity {
        token: old,
        task_id,
        ..
    } = next_item(&rt, &mut first)
    else {
        panic!("an activity")
    };
    let before = history_len(&handle, &id);
    drop(first);
    let mut second = hub.connect(WorkerInfo::default());
    let RemoteWorkItem::Activity {
        token: new,
        attempt,
        ..
    } = next_work(&rt, &hub, &mut second)
    else {
        panic!("the activity again")
    };
    assert_ne!(old, new);
    assert_eq!(attempt, 2, "a redelivery counts as another attempt");
    let stale = rt.block_on(hub.complete_activity(
        &old,
        &id,
        task_id,
        ActivityOutcome::Completed { result: json!(0) },
    ));
    let message = stale.unwrap_err().to_string();
    assert!(message.contains("stale"), "{message}");
    assert_eq!(history_len(&handle, &id), before);
    let unknown = rt.block_on(hub.complete_activity(
        &new,
        "no-such-instance",
        task_id,
        ActivityOutcome::Completed { result: json!(0) },
    ));
    assert!(matches!(unknown, Err(RemoteError::UnknownWork { .. })));
    rt.block_on(hub.complete_activity(
        &new,
        &id,
        task_id,
        ActivityOutcome::Completed { result: json!(0) },
    ))
    .unwrap();
    let RemoteWorkItem::Orchestrator { request, .. } = next_work(&rt, &hub, &mut second) else {
        panic!("the next episode")
    };
    let completions = request
        .new_events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::TaskCompleted { .. }))
        .count();
    assert_eq!(
        completions, 1,
        "the current token's answer is delivered, once"
    );
}

#[test]
fn an_empty_token_is_matched_by_instance_and_task_id() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let registry = registry();
    let mut worker = hub.connect(WorkerInfo::default());
    let id = handle.start_orchestration("Chain", json!(1), None).unwrap();
    let RemoteWorkItem::Orchestrator { request, .. } = next_item(&rt, &mut worker) else {
        panic!("an episode")
    };
    rt.block_on(hub.complete_orchestrator("", &id, registry.orchestrate_uncached(request)))
        .unwrap();
    let RemoteWorkItem::Activity { task_id, .. } = next_item(&rt, &mut worker) else {
        panic!("an activity")
    };
    let wrong_task = rt.block_on(hub.complete_activity(
        "",
        &id,
        task_id + 7,
        ActivityOutcome::Completed { result: json!(0) },
    ));
    assert!(matches!(wrong_task, Err(RemoteError::UnknownWork { .. })));
    rt.block_on(hub.complete_activity(
        "",
        &id,
        task_id,
        ActivityOutcome::Completed { result: json!(0) },
    ))
    .unwrap();
    let RemoteWorkItem::Orchestrator { request, .. } = next_item(&rt, &mut worker) else {
        panic!("the next episode")
    };
    rt.block_on(hub.complete_orchestrator("", &id, registry.orchestrate_uncached(request)))
        .unwrap();
    assert_eq!(wait(&handle, &id).output, json!([0]));
}

#[test]
fn only_one_episode_per_instance_is_out_and_events_meanwhile_wait_for_the_next() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let registry = registry();
    let mut worker = hub.connect(WorkerInfo::default());
    let id = handle
        .start_orchestration("CollectEvents", json!(2), None)
        .unwrap();
    let RemoteWorkItem::Orchestrator { token, request, .. } = next_item(&rt, &mut worker) else {
        panic!("an episode")
    };
    handle.raise_event(&id, "item", json!("a")).unwrap();
    handle.raise_event(&id, "item", json!("b")).unwrap();
    assert!(
        no_item_yet(&rt, &mut worker),
        "a second episode went out while one was"
    );
    rt.block_on(hub.complete_orchestrator(&token, &id, registry.orchestrate_uncached(request)))
        .unwrap();
    let RemoteWorkItem::Orchestrator { token, request, .. } = next_item(&rt, &mut worker) else {
        panic!("the next episode")
    };
    let raised = request
        .new_events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::EventRaised { .. }))
        .count();
    assert_eq!(raised, 2, "both events waited for this episode");
    rt.block_on(hub.complete_orchestrator(&token, &id, registry.orchestrate_uncached(request)))
        .unwrap();
    assert_eq!(wait(&handle, &id).output, json!(["a", "b"]));
}

#[test]
fn an_answer_that_reuses_an_action_id_is_refused_and_fails_the_instance_cleanly() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let registry = registry();
    let mut worker = hub.connect(WorkerInfo::default());
    let id = handle.start_orchestration("Chain", json!(2), None).unwrap();
    let RemoteWorkItem::Orchestrator { token, request, .. } = next_item(&rt, &mut worker) else {
        panic!("an episode")
    };
    let first = registry.orchestrate_uncached(request);
    let used_id = first.actions[0].id;
    rt.block_on(hub.complete_orchestrator(&token, &id, first))
        .unwrap();
    let RemoteWorkItem::Activity { token, task_id, .. } = next_item(&rt, &mut worker) else {
        panic!("an activity")
    };
    rt.block_on(hub.complete_activity(
        &token,
        &id,
        task_id,
        ActivityOutcome::Completed { result: json!(0) },
    ))
    .unwrap();
    let RemoteWorkItem::Orchestrator { token, .. } = next_item(&rt, &mut worker) else {
        panic!("the next episode")
    };
    let before = current_history(&handle, &id);
    let broken = durable_sdk::protocol::OrchestratorResponse {
        actions: vec![Action {
            id: used_id,
            kind: ActionKind::ScheduleTask {
                name: "Echo".into(),
                input: json!(1),
            },
        }],
        ..Default::default()
    };
    let refused = rt.block_on(hub.complete_orchestrator(&token, &id, broken));
    let Err(RemoteError::InvalidCompletion(reason)) = refused else {
        panic!("refused as invalid: {refused:?}")
    };
    assert!(reason.contains(&format!("action id {used_id}")), "{reason}");
    let record = wait(&handle, &id);
    assert_eq!(record.status, RuntimeStatus::Failed);
    assert_eq!(record.failure.unwrap().error_type, "InvalidWorkerResponse");
    let after = current_history(&handle, &id);
    assert_eq!(
        after[..before.len()],
        before[..],
        "nothing before was rewritten"
    );
    assert!(
        !after[before.len()..]
            .iter()
            .any(|event| matches!(event.kind, EventKind::TaskScheduled { .. })),
        "nothing of the refused answer was recorded"
    );
}

/// The official SDKs (durabletask-python's retry policies) schedule a retried activity again
/// under the id of the attempt that failed: that answer is a retry, not a broken history.
#[test]
fn a_retry_under_the_failed_attempts_id_is_accepted_and_its_result_delivered() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let registry = registry();
    let mut worker = hub.connect(WorkerInfo::default());
    let id = handle.start_orchestration("Chain", json!(1), None).unwrap();
    let RemoteWorkItem::Orchestrator { token, request, .. } = next_item(&rt, &mut worker) else {
        panic!("an episode")
    };
    let first = registry.orchestrate_uncached(request);
    let (used_id, name, input) = match &first.actions[0].kind {
        ActionKind::ScheduleTask { name, input } => {
            (first.actions[0].id, name.clone(), input.clone())
        }
        other => panic!("the chain schedules an activity first, not {other:?}"),
    };
    rt.block_on(hub.complete_orchestrator(&token, &id, first))
        .unwrap();
    let RemoteWorkItem::Activity { token, task_id, .. } = next_item(&rt, &mut worker) else {
        panic!("an activity")
    };
    rt.block_on(hub.complete_activity(
        &token,
        &id,
        task_id,
        ActivityOutcome::Failed {
            failure: durable_sdk::FailureDetails::new("Flaky", "first attempt fails"),
        },
    ))
    .unwrap();
    let RemoteWorkItem::Orchestrator { token, .. } = next_item(&rt, &mut worker) else {
        panic!("the episode that sees the failure")
    };
    let retry = durable_sdk::protocol::OrchestratorResponse {
        actions: vec![Action {
            id: used_id,
            kind: ActionKind::ScheduleTask {
                name: name.clone(),
                input,
            },
        }],
        ..Default::default()
    };
    rt.block_on(hub.complete_orchestrator(&token, &id, retry))
        .expect("a retry under the failed attempt's id is accepted");
    let RemoteWorkItem::Activity {
        token,
        task_id,
        name: again,
        ..
    } = next_item(&rt, &mut worker)
    else {
        panic!("the retried activity")
    };
    assert_eq!((task_id, again.as_str()), (used_id, name.as_str()));
    rt.block_on(hub.complete_activity(
        &token,
        &id,
        task_id,
        ActivityOutcome::Completed { result: json!(7) },
    ))
    .unwrap();
    let RemoteWorkItem::Orchestrator { request, .. } = next_item(&rt, &mut worker) else {
        panic!("the episode that gets the retry's result")
    };
    assert!(
        request.new_events.iter().any(|event| matches!(
            &event.kind,
            EventKind::TaskCompleted { task_scheduled_id, result } if *task_scheduled_id == used_id && *result == json!(7)
        )),
        "the retry's result reaches the orchestrator: {:?}",
        request.new_events
    );
    let scheduled = current_history(&handle, &id)
        .iter()
        .filter(|event| {
            event.event_id == used_id && matches!(event.kind, EventKind::TaskScheduled { .. })
        })
        .count();
    assert_eq!(
        scheduled, 2,
        "both attempts are in history under the one id"
    );
}

#[test]
fn a_name_no_worker_takes_is_parked_and_runs_once_a_worker_takes_it() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let mut events = handle.subscribe();
    let activities_only = TestWorker::spawn(hub.clone(), only(&[], &["Echo"]));
    let id = handle.start_orchestration("Chain", json!(2), None).unwrap();
    let parked = loop {
        match events.blocking_recv().unwrap() {
            EngineEvent::WorkParked {
                instance_id,
                kind,
                name,
            } => break (instance_id, kind, name),
            _ => continue,
        }
    };
    assert_eq!(
        parked,
        (id.clone(), WorkKind::Orchestration, "Chain".to_string())
    );
    assert_eq!(hub.parked().len(), 1);
    assert_eq!(hub.parked()[0].name, "Chain");
    assert_eq!(
        handle.instance(&id).unwrap().unwrap().status,
        RuntimeStatus::Pending
    );
    let orchestrations_only = TestWorker::spawn(hub.clone(), only(&["Chain"], &[]));
    assert_eq!(wait(&handle, &id).output, json!([0, 1]));
    assert!(hub.parked().is_empty());
    let workers = hub.workers();
    assert_eq!(workers.len(), 2);
    assert!(
        workers.iter().all(|worker| worker.completed > 0),
        "{workers:?}"
    );
    drop((activities_only, orchestrations_only));
    assert!(
        hub.workers()
            .iter()
            .all(|worker| worker.disconnected_at.is_some())
    );
}

#[test]
fn auto_skip_moves_virtual_time_over_a_remote_timer() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let _worker = TestWorker::spawn(handle.remote_hub(), WorkerInfo::default());
    let before = handle.now().unwrap();
    let id = handle
        .start_orchestration("LongTimer", json!(3), None)
        .unwrap();
    let record = wait(&handle, &id);
    assert_eq!(record.output, json!(3));
    assert!(handle.now().unwrap() - before >= chrono::Duration::days(3));
}

#[test]
fn parked_work_does_not_keep_virtual_time_from_skipping() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    // Orchestrations run; nobody takes the activity, so it stays parked.
    let _worker = TestWorker::spawn(hub.clone(), only(&["LongTimer", "Chain"], &[]));
    let chain = handle.start_orchestration("Chain", json!(1), None).unwrap();
    let timer = handle
        .start_orchestration("LongTimer", json!(2), None)
        .unwrap();
    assert_eq!(wait(&handle, &timer).output, json!(2));
    assert_eq!(
        hub.parked(),
        vec![durable_emu_engine::ParkedWork {
            kind: WorkKind::Activity,
            name: "Echo".into(),
            instance_id: chain,
        }]
    );
}

#[test]
fn an_injected_failure_of_a_remote_activity_is_answered_without_dispatching_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir.path().join("db.sqlite"), true);
    config.faults = vec![parse_compact("activity=Echo,error=Injected:no echo", 0).unwrap()];
    let engine = Engine::start(config).unwrap();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let _orchestrations = TestWorker::spawn(hub.clone(), only(&["Tolerant"], &[]));
    let rt = runtime();
    let mut activities = hub.connect(only(&[], &["Echo"]));
    let id = handle
        .start_orchestration("Tolerant", json!(null), None)
        .unwrap();
    assert_eq!(wait(&handle, &id).output, json!("failed: Injected"));
    assert!(
        no_item_yet(&rt, &mut activities),
        "the activity was dispatched"
    );
}

#[test]
fn remote_work_outstanding_at_a_restart_is_delivered_again_and_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let id = {
        let engine = Engine::start(config(&db, true)).unwrap();
        let handle = engine.handle();
        let hub = handle.remote_hub();
        let rt = runtime();
        let registry = registry();
        let mut worker = hub.connect(WorkerInfo::default());
        let id = handle.start_orchestration("Chain", json!(2), None).unwrap();
        let RemoteWorkItem::Orchestrator { token, request, .. } = next_item(&rt, &mut worker)
        else {
            panic!("an episode")
        };
        rt.block_on(hub.complete_orchestrator(&token, &id, registry.orchestrate_uncached(request)))
            .unwrap();
        // The activity is out; an event waits behind the next episode; then the engine stops.
        let RemoteWorkItem::Activity { .. } = next_item(&rt, &mut worker) else {
            panic!("an activity")
        };
        drop(worker);
        engine.shutdown();
        id
    };
    let engine = Engine::start(config(&db, true)).unwrap();
    let handle = engine.handle();
    let _worker = TestWorker::spawn(handle.remote_hub(), WorkerInfo::default());
    let record = wait(&handle, &id);
    assert_eq!(record.output, json!([0, 1]));
    assert_exactly_once(&current_history(&handle, &id));
}

#[test]
fn a_probe_answers_the_workers_actions_and_records_nothing() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let request = durable_sdk::protocol::OrchestratorRequest {
        instance_id: "probed".into(),
        execution_id: "e".into(),
        history_len: 0,
        past_events: Vec::new(),
        new_events: vec![
            HistoryEvent {
                event_id: -1,
                timestamp: chrono::Utc::now(),
                kind: EventKind::OrchestratorStarted,
            },
            HistoryEvent {
                event_id: -1,
                timestamp: chrono::Utc::now(),
                kind: EventKind::ExecutionStarted {
                    name: "Chain".into(),
                    version: None,
                    input: json!(1),
                    instance_id: "probed".into(),
                    execution_id: "e".into(),
                    parent: None,
                    scheduled_start: None,
                },
            },
        ],
        include_replay_logs: false,
        max_actions: None,
    };
    let nobody = rt.block_on(hub.probe("Chain", request.clone(), Duration::from_secs(5)));
    assert!(
        matches!(nobody, Err(RemoteError::NoWorker(_))),
        "{nobody:?}"
    );
    let _worker = TestWorker::spawn(hub.clone(), WorkerInfo::default());
    let response = rt.block_on(hub.probe("Chain", request, WAIT)).unwrap();
    assert!(matches!(
        response.actions[0].kind,
        ActionKind::ScheduleTask { ref name, .. } if name == "Echo"
    ));
    assert!(handle.instance("probed").unwrap().is_none());
    assert!(handle.instances().unwrap().is_empty());
}

#[test]
fn a_start_of_an_unknown_name_is_refused_without_remote_workers_and_accepted_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(&dir.path().join("a.sqlite"), false)).unwrap();
    let refused = engine
        .handle()
        .start_orchestration("PythonOnly", json!(null), None);
    assert!(refused.unwrap_err().to_string().contains("PythonOnly"));
    let (_dir, engine) = remote_engine();
    let id = engine
        .handle()
        .start_orchestration("PythonOnly", json!(null), None)
        .unwrap();
    let record = engine.handle().instance(&id).unwrap().unwrap();
    assert_eq!(record.status, RuntimeStatus::Pending);
    // Nobody runs it, so a terminate is carried out by the host.
    engine
        .handle()
        .terminate(&id, json!("no worker"), false)
        .unwrap();
    assert_eq!(
        wait(&engine.handle(), &id).status,
        RuntimeStatus::Terminated
    );
}

#[test]
fn an_abandoned_item_goes_out_again_at_once_under_a_new_token() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let mut worker = hub.connect(WorkerInfo::default());
    let id = handle.start_orchestration("Chain", json!(1), None).unwrap();
    let RemoteWorkItem::Orchestrator { token, .. } = next_item(&rt, &mut worker) else {
        panic!("an episode")
    };
    let wrong = hub.abandon(&token, "another-instance", None);
    assert!(
        matches!(wrong, Err(RemoteError::UnknownWork { .. })),
        "{wrong:?}"
    );
    hub.abandon(&token, &id, None).unwrap();
    let RemoteWorkItem::Orchestrator { token: again, .. } = next_item(&rt, &mut worker) else {
        panic!("the episode again")
    };
    assert_ne!(token, again);
    let twice = hub.abandon(&token, &id, None);
    assert!(
        matches!(twice, Err(RemoteError::UnknownWork { .. })),
        "{twice:?}"
    );
    assert_eq!(hub.workers()[0].in_flight, 1);
}

/// Work-item filters with versions: a worker whose filter names versions of an orchestration gets
/// only episodes of instances started with one of them; one without versions takes any.
#[test]
fn a_filter_with_versions_takes_only_episodes_of_those_versions() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let versioned = |versions: &[&str]| WorkerInfo {
        peer: "versioned".into(),
        filters: Some(WorkFilters {
            orchestrations: vec![NameFilter {
                name: "Chain".into(),
                versions: versions.iter().map(|v| (*v).to_string()).collect(),
            }],
            activities: Vec::new(),
            entities: Vec::new(),
        }),
        ..WorkerInfo::default()
    };
    let mut v2_only = hub.connect(versioned(&["2.0"]));
    let start = |version: &str, id: &str| {
        handle
            .start_with(
                "Chain",
                json!(1),
                durable_emu_engine::engine::StartOptions {
                    instance_id: Some(id.to_string()),
                    version: Some(version.to_string()),
                    ..Default::default()
                },
            )
            .unwrap()
    };
    let old = start("1.0", "chain-v1");
    let new = start("2.0", "chain-v2");
    let RemoteWorkItem::Orchestrator { request, .. } = next_item(&rt, &mut v2_only) else {
        panic!("an episode")
    };
    assert_eq!(
        request.instance_id, new,
        "the 2.0 worker gets the 2.0 instance"
    );
    let parked = hub.parked();
    assert!(
        parked.iter().any(|work| work.instance_id == old),
        "the 1.0 instance waits for a worker that takes 1.0: {parked:?}"
    );
    let mut any_version = hub.connect(versioned(&[]));
    let RemoteWorkItem::Orchestrator { request, .. } = next_item(&rt, &mut any_version) else {
        panic!("an episode")
    };
    assert_eq!(
        request.instance_id, old,
        "a filter without versions takes it"
    );
}

/// Rewind of a failed instance a remote worker runs goes the proto's way: the worker is sent the
/// failed history with `OrchestratorStarted`, `ExecutionRewound` as new events, answers with the
/// history rewritten (`RewindOrchestrationAction`), and that history (under the execution id the
/// worker gave it) is the new execution the instance runs on.
#[test]
fn rewinding_a_remote_instance_runs_on_the_history_its_worker_rewrote() {
    let (_dir, engine) = remote_engine();
    let handle = engine.handle();
    let hub = handle.remote_hub();
    let rt = runtime();
    let registry = registry();
    let mut worker = hub.connect(WorkerInfo::default());
    let id = handle.start_orchestration("Chain", json!(1), None).unwrap();
    let RemoteWorkItem::Orchestrator { token, request, .. } = next_item(&rt, &mut worker) else {
        panic!("an episode")
    };
    rt.block_on(hub.complete_orchestrator(&token, &id, registry.orchestrate_uncached(request)))
        .unwrap();
    let RemoteWorkItem::Activity { token, task_id, .. } = next_item(&rt, &mut worker) else {
        panic!("an activity")
    };
    rt.block_on(hub.complete_activity(
        &token,
        &id,
        task_id,
        ActivityOutcome::Failed {
            failure:
                durable_sdk::FailureDetails::new("Boom", "the activity failed").non_retriable(),
        },
    ))
    .unwrap();
    let RemoteWorkItem::Orchestrator { token, request, .. } = next_item(&rt, &mut worker) else {
        panic!("the episode that sees the failure")
    };
    rt.block_on(hub.complete_orchestrator(&token, &id, registry.orchestrate_uncached(request)))
        .unwrap();
    assert_eq!(wait(&handle, &id).status, RuntimeStatus::Failed);

    let rewinding = {
        let handle = handle.clone();
        let id = id.clone();
        std::thread::spawn(move || handle.rewind(&id, Some("try again".into())))
    };
    let RemoteWorkItem::Orchestrator {
        token,
        request,
        probe,
        ..
    } = next_item(&rt, &mut worker)
    else {
        panic!("the rewind episode")
    };
    assert!(probe, "the rewind episode records nothing by itself");
    assert!(
        matches!(
            request.new_events.as_slice(),
            [
                HistoryEvent { kind: EventKind::OrchestratorStarted, .. },
                HistoryEvent { kind: EventKind::ExecutionRewound { reason }, .. },
            ] if reason.as_deref() == Some("try again")
        ),
        "new events: {:?}",
        request.new_events
    );
    // The worker's rewrite (as durabletask-python's): failed calls and the completion go, the
    // execution gets a new id of the worker's choosing.
    let failed: HashSet<i32> = request
        .past_events
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::TaskFailed {
                task_scheduled_id, ..
            } => Some(task_scheduled_id),
            _ => None,
        })
        .collect();
    let rewritten: Vec<HistoryEvent> = request
        .past_events
        .iter()
        .chain(&request.new_events)
        .filter(|event| match event.kind {
            EventKind::TaskFailed { .. } | EventKind::ExecutionCompleted { .. } => false,
            EventKind::TaskScheduled { .. } => !failed.contains(&event.event_id),
            _ => true,
        })
        .map(|event| {
            let mut event = event.clone();
            if let EventKind::ExecutionStarted { execution_id, .. } = &mut event.kind {
                *execution_id = "rewound-by-the-worker".into();
            }
            event
        })
        .collect();
    rt.block_on(hub.complete_orchestrator(
        &token,
        &id,
        durable_sdk::protocol::OrchestratorResponse {
            rewound_history: Some(rewritten),
            ..Default::default()
        },
    ))
    .unwrap();
    rewinding.join().unwrap().unwrap();
    let record = handle.instance(&id).unwrap().unwrap();
    assert_eq!(record.execution_id, "rewound-by-the-worker");
    assert_ne!(record.status, RuntimeStatus::Failed);
    let RemoteWorkItem::Orchestrator { request, probe, .. } = next_item(&rt, &mut worker) else {
        panic!("the rewound instance's next episode")
    };
    assert!(!probe);
    assert_eq!(request.execution_id, "rewound-by-the-worker");
    assert!(
        !request
            .past_events
            .iter()
            .any(|event| matches!(event.kind, EventKind::TaskFailed { .. })),
        "the new execution runs on the worker's history"
    );
}
