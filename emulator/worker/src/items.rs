//! One work item's life in the worker: read it off the wire, wait for a slot under its kind's
//! limit, run it on a blocking thread through the plugin boundary with the build active when it
//! starts, send the answer, report. Items held when the worker stops are abandoned (handed back
//! to the backend) rather than dropped, so the backend can redeliver them at once.
//!
//! Knows the proto and the SDK's protocol (through `durable_emu_grpc::mapping`); knows nothing of
//! connections or reconnecting (`lib.rs`).

use crate::answers::AnswerBatches;
use crate::{Client, ItemKind, Shared, WorkerEvent};
use durable_emu_grpc::mapping;
use durable_emu_grpc::proto;
use durable_emu_grpc::proto::work_item::Request;
use durable_sdk::FailureDetails;
use durable_sdk::history::RuntimeStatus;
use durable_sdk::protocol::{
    Action, ActionKind, ActivityOutcome, ActivityRequest, EntityBatchRequest, OrchestratorResponse,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Instant;
use tokio::task::JoinSet;

/// `error_type` of a failure the worker reports for a function the plugin boundary could not run
/// (the same name the emulator uses in process).
const PLUGIN_ERROR: &str = "PluginError";

/// A held item, by completion token, for abandoning what is still held when the worker stops.
#[derive(Debug, Clone)]
struct Held {
    kind: ItemKind,
    name: String,
    instance_id: String,
    task_id: Option<i32>,
}

/// Tokens of the items held right now (one worker per process, so one ledger).
static HELD: LazyLock<Mutex<HashMap<String, Held>>> = LazyLock::new(Default::default);

fn ledger() -> std::sync::MutexGuard<'static, HashMap<String, Held>> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A work item ready to run: what it is, and the request in the SDK's types.
enum Work {
    Orchestration(proto::OrchestratorRequest),
    Activity(ActivityRequest),
    Entity(EntityBatchRequest),
}

/// Takes one item off the stream: a health ping is nothing; anything else becomes a task in
/// `held` (or, when stopping or unreadable, is abandoned).
pub(crate) fn accept(
    item: proto::WorkItem,
    client: &Client,
    batches: Option<&AnswerBatches>,
    shared: &Arc<Shared>,
    held: &mut JoinSet<()>,
) {
    let token = item.completion_token;
    let mut task_id = None;
    let (work, kind, name, instance_id) = match item.request {
        None | Some(Request::HealthPing(_)) => return,
        Some(Request::OrchestratorRequest(request)) => {
            let name = orchestration_name(&request.past_events, &request.new_events);
            let instance_id = request.instance_id.clone();
            (
                Ok(Work::Orchestration(request)),
                ItemKind::Orchestration,
                name,
                instance_id,
            )
        }
        Some(Request::ActivityRequest(request)) => {
            let instance_id = request
                .orchestration_instance
                .as_ref()
                .map(|instance| instance.instance_id.clone())
                .unwrap_or_default();
            let name = request.name.clone();
            task_id = Some(request.task_id);
            let work =
                mapping::payload_from_wire("ActivityRequest.input", request.input.as_deref())
                    .map(|input| {
                        Work::Activity(ActivityRequest {
                            name: request.name,
                            input,
                            instance_id: instance_id.clone(),
                            task_id: request.task_id,
                            // The wire does not say which delivery this is.
                            attempt: 1,
                        })
                    })
                    .map_err(|error| error.to_string());
            (work, ItemKind::Activity, name, instance_id)
        }
        Some(Request::EntityRequestV2(request)) => {
            let instance_id = request.instance_id.clone();
            let work = mapping::entity_request_from_wire(&request)
                .map(Work::Entity)
                .map_err(|error| error.to_string());
            (
                work,
                ItemKind::Entity,
                entity_name(&instance_id),
                instance_id,
            )
        }
        Some(Request::EntityRequest(request)) => {
            let instance_id = request.instance_id.clone();
            let work = mapping::entity_batch_request_from_wire(&request)
                .map(Work::Entity)
                .map_err(|error| error.to_string());
            (
                work,
                ItemKind::Entity,
                entity_name(&instance_id),
                instance_id,
            )
        }
    };
    let what = Held {
        kind,
        name,
        instance_id,
        task_id,
    };
    let client = client.clone();
    let shared = Arc::clone(shared);
    let stopping = *shared.stopping.borrow();
    let work = match work {
        Ok(work) if !stopping => work,
        Ok(_) => {
            held.spawn(async move {
                abandon(&client, &shared, &token, &what, "the worker is stopping").await;
            });
            return;
        }
        Err(reason) => {
            held.spawn(async move {
                let reason = format!("the work item does not decode: {reason}");
                abandon(&client, &shared, &token, &what, &reason).await;
            });
            return;
        }
    };
    ledger().insert(token.clone(), what.clone());
    shared.counters.in_flight.fetch_add(1, Ordering::Relaxed);
    let batches = batches.cloned();
    held.spawn(async move {
        run(
            work,
            token.clone(),
            what,
            client,
            batches,
            Arc::clone(&shared),
        )
        .await;
        ledger().remove(&token);
        shared.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    });
}

/// An activity's answer, in a batch if the backend takes them so (`batches`) and the batch
/// carried it, else alone as the protocol says.
async fn complete_activity(
    client: &mut Client,
    batches: Option<&AnswerBatches>,
    answer: proto::ActivityResponse,
) -> Result<(), tonic::Status> {
    if let Some(batches) = batches {
        if let Some(recorded) = batches.complete(&answer).await {
            return recorded;
        }
    }
    client.complete_activity_task(answer).await.map(drop)
}

/// `batches`: the connection's batch stream, when the backend serves one.
async fn run(
    work: Work,
    token: String,
    what: Held,
    mut client: Client,
    batches: Option<AnswerBatches>,
    shared: Arc<Shared>,
) {
    let slots = match what.kind {
        ItemKind::Orchestration => &shared.orchestrations,
        ItemKind::Activity => &shared.activities,
        ItemKind::Entity => &shared.entities,
    };
    let permit = tokio::select! {
        permit = Arc::clone(slots).acquire_owned() => permit,
        _ = crate::stopped(shared.stopping.clone()) => {
            ledger().remove(&token);
            abandon(&client, &shared, &token, &what, "the worker stopped before it ran").await;
            return;
        }
    };
    let Ok(_permit) = permit else { return };
    let (mut work, mut what) = (work, what);
    if let Work::Orchestration(request) = &mut work {
        // A backend that says how long the history is lets a cached session answer without it
        // (fetched below only if the session asks); others' histories are fetched first.
        if request.requires_history_streaming
            && mapping::streamed_past_event_count(request).is_none()
        {
            match fetch_history(&mut client, request).await {
                Ok(past) => {
                    request.past_events = past;
                    request.requires_history_streaming = false;
                    if what.name.is_empty() {
                        what.name = orchestration_name(&request.past_events, &request.new_events);
                    }
                }
                Err(status) => {
                    report_not_delivered(&shared, &what, &status);
                    return;
                }
            }
        }
    }
    let started = Arc::new(Mutex::new(None::<Instant>));
    let on_thread = FunctionThread {
        shared: Arc::clone(&shared),
        what: what.clone(),
        started: Arc::clone(&started),
    };
    let plugin = shared.functions.current();
    let answer = match work {
        Work::Activity(request) => {
            let task_id = request.task_id;
            let outcome = on_thread
                .spawn(move || match plugin.handle.run_activity(&request) {
                    Ok(outcome) => outcome,
                    Err(error) => ActivityOutcome::Failed {
                        failure: FailureDetails::new(PLUGIN_ERROR, error.to_string()),
                    },
                })
                .await
                .unwrap_or_else(|reason| ActivityOutcome::Failed {
                    failure: FailureDetails::new(PLUGIN_ERROR, reason),
                });
            let failed = matches!(outcome, ActivityOutcome::Failed { .. });
            Answer::Activity(
                mapping::activity_outcome_to_wire(&what.instance_id, task_id, &token, &outcome),
                failed,
            )
        }
        Work::Orchestration(request) => {
            let response = match mapping::orchestrator_request_from_wire(&request) {
                Ok(episode) => {
                    match run_episode(&on_thread, &plugin, &mut client, &request, episode).await {
                        Ok(answer) => answer,
                        // The history could not be fetched: not the code's failure, so the
                        // item stays the backend's to hand out again, as when fetched first.
                        Err(status) => {
                            // Its first try ran: the function is not running any more.
                            on_thread.finished(false);
                            report_not_delivered(&shared, &what, &status);
                            return;
                        }
                    }
                }
                Err(error) => Err(format!("the episode's history does not decode: {error}")),
            };
            let (response, failed) = match response {
                Ok(response) => {
                    let failed = ends_failed(&response);
                    (response, failed)
                }
                Err(reason) => (plugin_failure(&request, reason), true),
            };
            Answer::Orchestration(
                mapping::orchestrator_response_to_wire(&what.instance_id, &token, &response),
                failed,
                episode_notes(&token, &response),
            )
        }
        Work::Entity(request) => {
            let result = on_thread
                .spawn(move || {
                    let result = plugin.handle.run_entity_batch(&request);
                    (request, result)
                })
                .await;
            let answer = match result {
                Ok((request, Ok(result))) => {
                    mapping::entity_batch_result_to_wire(&token, &request, &result)
                }
                Ok((_, Err(error))) => batch_failure(&token, error.to_string()),
                Err(reason) => batch_failure(&token, reason),
            };
            let failed = answer.failure_details.is_some();
            Answer::Entity(answer, failed)
        }
    };
    // Reported before the answer is sent: the function has run, so a worker that dies from
    // here on died in something else (an `--isolate` supervisor says what it was running).
    on_thread.finished(answer.failed());
    let sent = match answer {
        Answer::Activity(answer, _) => {
            complete_activity(&mut client, batches.as_ref(), answer).await
        }
        Answer::Orchestration(answer, _, notes) => {
            if let (Some(batches), Some(notes)) = (&batches, notes) {
                // Only what the UI shows rides on it: an answer without its notes is still whole.
                let _ = batches.note_episode(notes).await;
            }
            client.complete_orchestrator_task(answer).await.map(drop)
        }
        Answer::Entity(answer, _) => client.complete_entity_task(answer).await.map(drop),
    };
    match sent {
        Ok(()) => {
            shared.counters.done.fetch_add(1, Ordering::Relaxed);
        }
        Err(status) => report_not_delivered(&shared, &what, &status),
    }
}

/// What an episode's answer says that the sidecar protocol has no field for (the events the code
/// waits for, its log lines, its warnings), for a durable-emu backend; none if it says nothing.
fn episode_notes(
    token: &str,
    response: &OrchestratorResponse,
) -> Option<durable_emu_grpc::batches::EpisodeNotes> {
    if response.awaited_events.is_empty()
        && response.logs.is_empty()
        && response.warnings.is_empty()
    {
        return None;
    }
    Some(durable_emu_grpc::batches::EpisodeNotes {
        completion_token: token.to_string(),
        awaited_events: response.awaited_events.clone(),
        logs_json: serde_json::to_string(&response.logs).unwrap_or_default(),
        warnings: response.warnings.clone(),
    })
}

/// Runs an episode on the plugin (see [`continue_session`]). One whose history the backend left
/// out, saying only how long it is, goes first to the cached session without it; the history is
/// fetched only if the session asks for it (it has not run the previous episode). The outer
/// error: the history could not be fetched; the inner: the plugin could not run the episode.
async fn run_episode(
    on_thread: &FunctionThread,
    plugin: &Arc<durable_emu_engine::LoadedPlugin>,
    client: &mut Client,
    wire: &proto::OrchestratorRequest,
    episode: durable_sdk::protocol::OrchestratorRequest,
) -> Result<Result<OrchestratorResponse, String>, tonic::Status> {
    let on_plugin = |episode: durable_sdk::protocol::OrchestratorRequest| {
        let plugin = Arc::clone(plugin);
        on_thread
            .spawn(move || continue_session(&plugin, episode).map_err(|error| error.to_string()))
    };
    let left_out = episode.past_events.is_empty() && episode.history_len > 0;
    let (instance_id, execution_id) = (episode.instance_id.clone(), episode.execution_id.clone());
    // Kept for asking again with the history (its new events are all it holds).
    let again = left_out.then(|| episode.clone());
    let answer = match on_plugin(episode).await.and_then(|answer| answer) {
        Ok(answer) => answer,
        Err(reason) => return Ok(Err(reason)),
    };
    let Some(mut replayed) = again.filter(|_| answer.needs_history) else {
        return Ok(Ok(answer));
    };
    let past = fetch_history(client, wire).await?;
    replayed.past_events = match mapping::events_from_wire(&past) {
        Ok(past) => past,
        Err(error) => {
            return Ok(Err(format!(
                "the history of instance '{instance_id}' (execution {execution_id}) does not decode: {error}"
            )));
        }
    };
    replayed.history_len = replayed.past_events.len();
    Ok(on_plugin(replayed).await.and_then(|answer| answer))
}

/// Where a work item's function runs: an activity or entity batch on a thread of the runtime's
/// blocking pool, which the worker's `--threads` bounds (items past that wait for a thread), an
/// episode on its instance's lane ([`crate::lanes`]). `Started` is said there, when the
/// function first begins, not when the item was taken: a worker that dies is said to have died
/// in what was running, not in everything that was waiting.
struct FunctionThread {
    shared: Arc<Shared>,
    what: Held,
    /// When the function began (for `Finished`'s `ms`); none if it never did.
    started: Arc<Mutex<Option<Instant>>>,
}

impl FunctionThread {
    /// Says the item's function is done, with how long it took since it first began (0 if it
    /// never did).
    fn finished(&self, failed: bool) {
        let began = *self.started.lock().unwrap_or_else(PoisonError::into_inner);
        (self.shared.events)(WorkerEvent::Finished {
            kind: self.what.kind,
            name: self.what.name.clone(),
            instance_id: self.what.instance_id.clone(),
            task_id: self.what.task_id,
            failed,
            ms: began.map_or(0.0, |began| began.elapsed().as_secs_f64() * 1000.0),
        });
    }

    /// Runs `function` there and gives its result, or why it did not run to the end.
    async fn spawn<T: Send + 'static>(
        &self,
        function: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let (shared, what, started) = (
            Arc::clone(&self.shared),
            self.what.clone(),
            Arc::clone(&self.started),
        );
        let kind = what.kind;
        let instance_id = what.instance_id.clone();
        let job = move || {
            let mut started = started.lock().unwrap_or_else(PoisonError::into_inner);
            if started.is_none() {
                (shared.events)(WorkerEvent::Started {
                    kind: what.kind,
                    name: what.name,
                    instance_id: what.instance_id,
                    task_id: what.task_id,
                });
                *started = Some(Instant::now());
            }
            drop(started);
            function()
        };
        match kind {
            ItemKind::Orchestration => self
                .shared
                .episode_lanes
                .run(&instance_id, job)
                .await
                .map_err(|gone| gone.to_string()),
            ItemKind::Activity | ItemKind::Entity => tokio::task::spawn_blocking(job)
                .await
                .map_err(|join| join.to_string()),
        }
    }
}

/// A work item's answer, and whether the function failed.
enum Answer {
    Activity(proto::ActivityResponse, bool),
    /// With what only durable-emu takes (`NoteEpisode`), if there is any.
    Orchestration(
        proto::OrchestratorResponse,
        bool,
        Option<durable_emu_grpc::batches::EpisodeNotes>,
    ),
    Entity(proto::EntityBatchResult, bool),
}

impl Answer {
    fn failed(&self) -> bool {
        match self {
            Answer::Activity(_, failed)
            | Answer::Orchestration(_, failed, _)
            | Answer::Entity(_, failed) => *failed,
        }
    }
}

fn report_not_delivered(shared: &Shared, what: &Held, status: &tonic::Status) {
    (shared.events)(WorkerEvent::NotDelivered {
        kind: what.kind,
        name: what.name.clone(),
        instance_id: what.instance_id.clone(),
        reason: format!("{:?}: {}", status.code(), status.message()),
    });
}

/// Runs an episode on the plugin's cached session of the instance when it has one at this point
/// of history (the request without its past events, as the emulator does in process), and with
/// the whole history when it has not (it answers `needs_history`). A worker that ran the
/// previous episode so skips replaying everything before this one.
fn continue_session(
    plugin: &durable_emu_engine::LoadedPlugin,
    mut request: durable_sdk::protocol::OrchestratorRequest,
) -> Result<OrchestratorResponse, durable_sdk::ffi::BoundaryError> {
    if request.past_events.is_empty() {
        return plugin.handle.orchestrate(&request);
    }
    let past = std::mem::take(&mut request.past_events);
    let answer = plugin.handle.orchestrate(&request)?;
    if !answer.needs_history {
        return Ok(answer);
    }
    request.past_events = past;
    plugin.handle.orchestrate(&request)
}

/// Hands every item still held back to the backend (the worker is stopping past its drain
/// timeout).
pub(crate) async fn abandon_remaining(shared: &Arc<Shared>, client: &Client) {
    let remaining: Vec<(String, Held)> = ledger().drain().collect();
    for (token, what) in remaining {
        abandon(
            client,
            shared,
            &token,
            &what,
            "still running when the drain timeout ran out",
        )
        .await;
    }
}

async fn abandon(client: &Client, shared: &Shared, token: &str, what: &Held, reason: &str) {
    let mut client = client.clone();
    let completion_token = token.to_string();
    // An abandon that does not arrive changes nothing: the backend redelivers what a closed
    // stream held anyway.
    let _ = match what.kind {
        ItemKind::Orchestration => client
            .abandon_task_orchestrator_work_item(proto::AbandonOrchestrationTaskRequest {
                completion_token,
            })
            .await
            .map(|_| ()),
        ItemKind::Activity => client
            .abandon_task_activity_work_item(proto::AbandonActivityTaskRequest { completion_token })
            .await
            .map(|_| ()),
        ItemKind::Entity => client
            .abandon_task_entity_work_item(proto::AbandonEntityTaskRequest { completion_token })
            .await
            .map(|_| ()),
    };
    shared.counters.abandoned.fetch_add(1, Ordering::Relaxed);
    (shared.events)(WorkerEvent::Abandoned {
        kind: what.kind,
        name: what.name.clone(),
        instance_id: what.instance_id.clone(),
        reason: reason.to_string(),
    });
}

/// The past events of an episode whose backend streams them (`requiresHistoryStreaming`).
async fn fetch_history(
    client: &mut Client,
    request: &proto::OrchestratorRequest,
) -> Result<Vec<proto::HistoryEvent>, tonic::Status> {
    let mut chunks = client
        .stream_instance_history(proto::StreamInstanceHistoryRequest {
            instance_id: request.instance_id.clone(),
            execution_id: request.execution_id.clone(),
            for_work_item_processing: true,
        })
        .await?
        .into_inner();
    let mut events = Vec::new();
    while let Some(chunk) = chunks.message().await? {
        events.extend(chunk.events);
    }
    Ok(events)
}

/// The orchestration's name, from its `executionStarted` event.
fn orchestration_name(past: &[proto::HistoryEvent], new: &[proto::HistoryEvent]) -> String {
    use proto::history_event::EventType;
    past.iter()
        .chain(new)
        .find_map(|event| match &event.event_type {
            Some(EventType::ExecutionStarted(started)) => Some(started.name.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// `@counter@a` -> `counter`.
fn entity_name(instance_id: &str) -> String {
    instance_id
        .strip_prefix('@')
        .and_then(|rest| rest.split('@').next())
        .unwrap_or(instance_id)
        .to_string()
}

/// Whether an episode's answer ends the orchestration as failed.
fn ends_failed(response: &OrchestratorResponse) -> bool {
    response.actions.iter().any(|action| {
        matches!(
            action.kind,
            ActionKind::CompleteOrchestration {
                status: RuntimeStatus::Failed,
                ..
            }
        )
    })
}

/// The answer for an episode the plugin could not run: the orchestration fails (redelivering
/// it would fail the same way).
fn plugin_failure(request: &proto::OrchestratorRequest, reason: String) -> OrchestratorResponse {
    let next_id = request
        .past_events
        .iter()
        .chain(&request.new_events)
        .map(|event| event.event_id)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    OrchestratorResponse {
        actions: vec![Action {
            id: next_id,
            kind: ActionKind::CompleteOrchestration {
                status: RuntimeStatus::Failed,
                result: Value::Null,
                failure: Some(FailureDetails::new(PLUGIN_ERROR, reason).non_retriable()),
                carryover_events: vec![],
            },
        }],
        ..Default::default()
    }
}

/// The answer for an entity batch the plugin could not run at all.
fn batch_failure(token: &str, reason: String) -> proto::EntityBatchResult {
    proto::EntityBatchResult {
        failure_details: Some(mapping::failure_to_wire(&FailureDetails::new(
            PLUGIN_ERROR,
            reason,
        ))),
        completion_token: token.to_string(),
        ..Default::default()
    }
}
