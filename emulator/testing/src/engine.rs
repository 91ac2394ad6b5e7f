//! An in-memory engine with the built-in samples, and the small helpers engine tests repeat:
//! start an instance and wait for it, read its history. Knows the engine's public handle only.

use durable_emu_engine::InstanceRecord;
use durable_emu_engine::engine::{Engine, EngineConfig, EngineHandle};
use durable_emu_engine::plugin::LoadedPlugin;
use durable_sdk::history::HistoryEvent;
use serde_json::Value;
use std::time::Duration;

/// How long [`wait`] gives an instance: generous, because CI machines are slow and a broken engine
/// should fail the test rather than hang it.
pub const WAIT: Duration = Duration::from_secs(60);

/// An in-memory engine configuration with the built-in samples (`sample-functions`, linked in);
/// change its fields before [`Engine::start`].
pub fn samples_config() -> EngineConfig {
    EngineConfig::in_memory(LoadedPlugin::builtin().expect("the built-in samples load"))
}

/// A started in-memory engine with the built-in samples and the default configuration.
pub fn samples_engine() -> Engine {
    Engine::start(samples_config()).expect("an in-memory engine starts")
}

/// Starts `name` (with the instance id `id`, or a generated one) and waits until it ends.
pub fn run(handle: &EngineHandle, name: &str, input: Value, id: Option<&str>) -> InstanceRecord {
    let id = handle
        .start_orchestration(name, input, id.map(str::to_string))
        .unwrap_or_else(|error| panic!("starting {name} failed: {error}"));
    wait(handle, &id)
}

/// Waits until the instance `id` ends (at most [`WAIT`]).
pub fn wait(handle: &EngineHandle, id: &str) -> InstanceRecord {
    handle
        .wait_until_terminal(id, WAIT)
        .unwrap_or_else(|error| panic!("waiting for {id} failed: {error}"))
        .unwrap_or_else(|| panic!("{id} did not finish within {WAIT:?}"))
}

/// The history of the instance's current (latest) execution.
pub fn current_history(handle: &EngineHandle, id: &str) -> Vec<HistoryEvent> {
    handle
        .history(id)
        .unwrap_or_else(|error| panic!("reading the history of {id} failed: {error}"))
        .pop()
        .unwrap_or_else(|| panic!("{id} has no execution"))
        .events
}

/// The history of every execution of the instance, oldest first, as one list.
pub fn all_events(handle: &EngineHandle, id: &str) -> Vec<HistoryEvent> {
    handle
        .history(id)
        .unwrap_or_else(|error| panic!("reading the history of {id} failed: {error}"))
        .into_iter()
        .flat_map(|execution| execution.events)
        .collect()
}

/// The event type names of `events`, in order (`["OrchestratorStarted", "ExecutionStarted", ..]`).
pub fn kinds(events: &[HistoryEvent]) -> Vec<&'static str> {
    events.iter().map(|event| event.kind.type_name()).collect()
}

/// Polls until `ready` holds: a broken engine fails the test (naming `what`) after a minute
/// instead of hanging it.
pub fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A remote worker's answer to one work item, computed by `registry` (the SDK running in the
/// test, as an SDK worker would): an episode is replayed from its full history, an activity is
/// run; the completion goes back to `hub`. A refused completion is the test's business, not the
/// worker's, so it is dropped here.
pub async fn answer_remote(
    hub: &durable_emu_engine::RemoteHub,
    registry: &durable_sdk::Registry,
    item: durable_emu_engine::RemoteWorkItem,
) {
    use durable_emu_engine::RemoteWorkItem;
    match item.with_past_in_request() {
        RemoteWorkItem::Orchestrator { token, request, .. } => {
            let instance_id = request.instance_id.clone();
            let response = registry.orchestrate_uncached(request);
            let _ = hub
                .complete_orchestrator(&token, &instance_id, response)
                .await;
        }
        RemoteWorkItem::Activity {
            token,
            name,
            input,
            instance_id,
            task_id,
            attempt,
            ..
        } => {
            let outcome = registry.run_activity(durable_sdk::protocol::ActivityRequest {
                name,
                input,
                instance_id: instance_id.clone(),
                task_id,
                attempt,
            });
            let _ = hub
                .complete_activity(&token, &instance_id, task_id, outcome)
                .await;
        }
        RemoteWorkItem::Entity { token, request, .. } => {
            let instance_id = request.instance_id.clone();
            let result = registry.run_entity_batch(request);
            let _ = hub.complete_entity(&token, &instance_id, result).await;
        }
    }
}
