//! The worker side of the sidecar: the `GetWorkItems` stream over the engine's [`RemoteHub`],
//! completions, abandons and chunked orchestrator answers.
//!
//! A stream is one hub connection: the request's filters, capabilities and metadata become its
//! [`WorkerInfo`]; items the hub sends it go out as work items with their completion tokens,
//! with a health ping every [`HEALTH_PING_INTERVAL`] so idle streams stay up (the SDKs reconnect
//! after 120 s of silence). When the client goes away tonic drops the stream, which drops the
//! connection, and the hub requeues what it held.
//!
//! Entity batches go out as `entityRequestV2` (or the older `entityRequest`, see [`EntityFormat`])
//! and come back through `CompleteEntityTask`, whose answer carries no instance id: the token
//! names the entity. An orchestrator answer's entity actions get their parent ids filled in from
//! the work item when the worker left them out (the Python SDK sends no `parentExecutionId`).
//!
//! Abandon requests carry only a token, while the hub matches a token with the instance (and task)
//! it belongs to, so the tokens this side sent are remembered until they are completed, abandoned
//! or their stream ends. Chunked answers (`isPartial`) are collected under their token until the
//! last chunk and then completed as one. `maxConcurrent*` limits are not applied: the SDKs bound
//! their own concurrency, and the hub hands a worker all it accepts.
//!
//! Knows nothing of sockets or of how the engine runs or records work.

use crate::mapping;
use crate::proto;
use crate::server::{engine_status, mapping_status};
use durable_emu_engine::engine::AsyncEngineHandle;
use durable_emu_engine::{
    ActivityAnswer, NameFilter, RemoteError, RemoteHub, RemoteWorkItem, WorkFilters,
    WorkerConnection, WorkerId, WorkerInfo,
};
use durable_sdk::history::HistoryEvent;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// How often an open work-item stream gets a health ping.
pub const HEALTH_PING_INTERVAL: Duration = Duration::from_secs(30);

/// The metadata keys shown with a worker (others are ignored).
const SHOWN_METADATA: [&str; 4] = ["taskhub", "workerid", "x-user-agent", "authorization"];

/// The worker-side state shared by all streams of one service.
#[derive(Debug, Clone)]
pub(crate) struct WorkerSide {
    hub: RemoteHub,
    sent: Arc<Mutex<HashMap<String, Sent>>>,
    /// Whether this server also serves `WorkerBatches` (said to workers in the stream's metadata).
    pub(crate) batches_served: bool,
}

/// What an episode's answer cannot carry in the sidecar protocol (`NoteEpisode`), read.
#[derive(Debug, Clone, Default)]
pub(crate) struct EpisodeNotes {
    pub(crate) awaited_events: Vec<String>,
    pub(crate) logs: Vec<durable_sdk::protocol::LogLine>,
    pub(crate) warnings: Vec<String>,
}

/// The initial metadata of a `GetWorkItems` stream by which the sidecar says it also serves its
/// own `WorkerBatches` (`proto/durable_emu_worker.proto`); its value is the version, `v1`.
pub const WORKER_BATCHES_METADATA: &str = "durable-emu-worker-batches";

/// A work item this side sent and has not seen finished.
#[derive(Debug)]
struct Sent {
    worker: WorkerId,
    instance_id: String,
    work: SentWork,
    /// An episode's history before it, kept until its answer arrives: StreamInstanceHistory
    /// serves a worker that fetches it from here, not from the store.
    past: Option<Arc<Vec<HistoryEvent>>>,
    /// What durable-emu's worker said about the episode before answering it (`NoteEpisode`).
    notes: Option<EpisodeNotes>,
    /// Actions of the chunks of a chunked answer received so far.
    chunks: Vec<proto::OrchestratorAction>,
    /// How many chunks have arrived.
    chunk_count: i32,
}

/// What kind of work item a token was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SentWork {
    /// An episode of this execution.
    Orchestrator { execution_id: String },
    /// An activity task.
    Activity { task_id: i32 },
    /// A batch of entity operations.
    Entity,
}

impl Sent {
    fn new(worker: WorkerId, instance_id: String, work: SentWork) -> Self {
        Self {
            worker,
            instance_id,
            work,
            past: None,
            notes: None,
            chunks: Vec::new(),
            chunk_count: 0,
        }
    }

    /// The task id the hub matches activity tokens with.
    fn task_id(&self) -> Option<i32> {
        match self.work {
            SentWork::Activity { task_id } => Some(task_id),
            SentWork::Orchestrator { .. } | SentWork::Entity => None,
        }
    }
}

/// Which message carries entity batches to a worker (the `WorkItem.request` oneof).
///
/// No capability or request field says which a worker reads: the proto calls `entityRequest` the
/// message of orchestration-service backends and `entityRequestV2` that of backend services, and
/// the official workers (Python, .NET, Java, JavaScript) read both. durable-emu sends the newer
/// one, which tells calls from signals; a worker built for the older one asks with the request
/// metadata [`ENTITY_REQUEST_METADATA`]` = v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntityFormat {
    /// `entityRequestV2`: an `EntityRequest` whose operations are history events.
    V2,
    /// `entityRequest`: the older `EntityBatchRequest`.
    V1,
}

/// The GetWorkItems metadata key with which a worker asks for the older entity work item
/// (`v1` or `entityRequest`; `v2` or `entityRequestV2` is the default).
pub const ENTITY_REQUEST_METADATA: &str = "durable-emu-entity-requests";

fn entity_format(metadata: &tonic::metadata::MetadataMap) -> Result<EntityFormat, Status> {
    let Some(value) = metadata.get(ENTITY_REQUEST_METADATA) else {
        return Ok(EntityFormat::V2);
    };
    match value.to_str().map(str::trim) {
        Ok("v2" | "entityRequestV2") => Ok(EntityFormat::V2),
        Ok("v1" | "entityRequest") => Ok(EntityFormat::V1),
        _ => Err(Status::invalid_argument(format!(
            "the {ENTITY_REQUEST_METADATA} metadata is {value:?}; send v1 (entityRequest) or v2 (entityRequestV2, the default)"
        ))),
    }
}

fn remote_status(error: RemoteError) -> Status {
    match error {
        RemoteError::UnknownWork { .. } => Status::not_found(error.to_string()),
        RemoteError::InvalidCompletion(_) => Status::invalid_argument(error.to_string()),
        RemoteError::NoWorker(_) => Status::failed_precondition(error.to_string()),
        RemoteError::ProbeUnanswered { .. } => Status::deadline_exceeded(error.to_string()),
        RemoteError::Engine(error) => engine_status(error),
    }
}

/// `Bearer <secret>` shows as `Bearer ***`; anything else as `***`.
fn mask_authorization(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, _)) => format!("{scheme} ***"),
        None => "***".to_string(),
    }
}

fn filters_from_wire(filters: &proto::WorkItemFilters) -> WorkFilters {
    let name_filter = |name: &str, versions: &[String]| NameFilter {
        name: name.to_string(),
        versions: versions.to_vec(),
    };
    WorkFilters {
        orchestrations: filters
            .orchestrations
            .iter()
            .map(|filter| name_filter(&filter.name, &filter.versions))
            .collect(),
        activities: filters
            .activities
            .iter()
            .map(|filter| name_filter(&filter.name, &filter.versions))
            .collect(),
        entities: filters
            .entities
            .iter()
            .map(|filter| filter.name.to_lowercase())
            .collect(),
    }
}

impl WorkerSide {
    pub(crate) fn new(engine: &AsyncEngineHandle) -> Self {
        Self {
            hub: engine.remote_hub(),
            sent: Arc::default(),
            batches_served: false,
        }
    }

    fn sent(&self) -> MutexGuard<'_, HashMap<String, Sent>> {
        // The map holds plain data: a panic elsewhere cannot leave it half-updated.
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) async fn get_work_items(
        &self,
        request: Request<proto::GetWorkItemsRequest>,
    ) -> Result<Response<crate::server::WorkItemStream>, Status> {
        let peer = request
            .remote_addr()
            .map_or_else(|| "in-process".to_string(), |addr| addr.to_string());
        let metadata = SHOWN_METADATA
            .iter()
            .filter_map(|key| {
                let value = request.metadata().get(*key)?.to_str().ok()?;
                let value = if *key == "authorization" {
                    mask_authorization(value)
                } else {
                    value.to_string()
                };
                Some((key.to_string(), value))
            })
            .collect();
        let entity_format = entity_format(request.metadata())?;
        let request = request.into_inner();
        let history_streaming = request
            .capabilities
            .contains(&(proto::WorkerCapability::HistoryStreaming as i32));
        let info = WorkerInfo {
            peer,
            metadata,
            filters: request.work_item_filters.as_ref().map(filters_from_wire),
            history_streaming,
        };
        let connection = self.hub.connect(info);
        let mut ping = tokio::time::interval(HEALTH_PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stream = WorkStream {
            connection,
            ping,
            side: self.clone(),
            history_streaming,
            entity_format,
        };
        let mut response = Response::new(Box::pin(stream) as crate::server::WorkItemStream);
        if self.batches_served {
            response.metadata_mut().insert(
                WORKER_BATCHES_METADATA,
                tonic::metadata::MetadataValue::from_static("v1"),
            );
        }
        Ok(response)
    }

    pub(crate) async fn complete_activity(
        &self,
        response: proto::ActivityResponse,
    ) -> Result<(), Status> {
        crate::server::required_id("ActivityResponse", &response.instance_id)?;
        let outcome = mapping::activity_outcome_from_wire(&response).map_err(mapping_status)?;
        self.hub
            .complete_activity(
                &response.completion_token,
                &response.instance_id,
                response.task_id,
                outcome,
            )
            .await
            .map_err(remote_status)?;
        if !response.completion_token.is_empty() {
            self.sent().remove(&response.completion_token);
        }
        Ok(())
    }

    /// Records many activity answers together (one core call, one commit); each one's fate, in
    /// order, as `complete_activity` would have answered it alone.
    pub(crate) async fn complete_activities(
        &self,
        responses: Vec<proto::ActivityResponse>,
    ) -> Vec<Result<(), Status>> {
        let mut outcomes: Vec<Result<(), Status>> = Vec::with_capacity(responses.len());
        let mut answers = Vec::new();
        let mut answered_at = Vec::new();
        for response in &responses {
            let read = crate::server::required_id("ActivityResponse", &response.instance_id)
                .and_then(|_| {
                    mapping::activity_outcome_from_wire(response).map_err(mapping_status)
                });
            match read {
                Ok(outcome) => {
                    answered_at.push(outcomes.len());
                    outcomes.push(Ok(()));
                    answers.push(ActivityAnswer {
                        token: response.completion_token.clone(),
                        instance_id: response.instance_id.clone(),
                        task_id: response.task_id,
                        outcome,
                    });
                }
                Err(status) => outcomes.push(Err(status)),
            }
        }
        match self.hub.complete_activities(answers).await {
            Ok(results) => {
                for (at, result) in answered_at.into_iter().zip(results) {
                    if let Err(error) = result {
                        outcomes[at] = Err(remote_status(error));
                    }
                }
            }
            Err(error) => {
                let status = remote_status(error);
                for at in answered_at {
                    outcomes[at] = Err(status.clone());
                }
            }
        }
        let mut sent = self.sent();
        for (response, outcome) in responses.iter().zip(&outcomes) {
            if outcome.is_ok() && !response.completion_token.is_empty() {
                sent.remove(&response.completion_token);
            }
        }
        outcomes
    }

    // Chunking is deprecated in the proto, yet the .NET and Java workers still chunk large answers.
    #[allow(deprecated)]
    pub(crate) async fn complete_orchestrator(
        &self,
        mut response: proto::OrchestratorResponse,
    ) -> Result<(), Status> {
        crate::server::required_id("OrchestratorResponse", &response.instance_id)?;
        let key = self.key_of(&response.completion_token, &response.instance_id);
        if response.is_partial {
            return self.collect_chunk(key, response);
        }
        // The last chunk (or the only one): prepend what the earlier chunks carried.
        let mut notes = None;
        if let Some(key) = &key {
            let mut sent = self.sent();
            if let Some(entry) = sent.get_mut(key) {
                // Answered, the worker fetches no more; let go of the history so the core
                // extends its own copy for the next episode instead of copying it.
                entry.past = None;
                notes = entry.notes.take();
                check_chunk_index(entry, &response)?;
                let mut actions = std::mem::take(&mut entry.chunks);
                entry.chunk_count = 0;
                actions.append(&mut response.actions);
                response.actions = actions;
            }
        }
        let mut answer =
            mapping::orchestrator_response_from_wire(&response).map_err(mapping_status)?;
        if let Some(notes) = notes {
            answer.awaited_events = notes.awaited_events;
            answer.logs = notes.logs;
            answer.warnings = notes.warnings;
        }
        if let Some(execution_id) = key.as_ref().and_then(|key| self.execution_of(key)) {
            fill_entity_parents(&mut answer.actions, &response.instance_id, &execution_id);
        }
        self.hub
            .complete_orchestrator(&response.completion_token, &response.instance_id, answer)
            .await
            .map_err(remote_status)?;
        if let Some(key) = key {
            self.sent().remove(&key);
        }
        Ok(())
    }

    /// The history before an episode out to a worker that streams it: of `instance_id`'s
    /// execution `execution_id` (or of any, when none is named). The newest such episode is
    /// the one a worker fetches for; there is at most one per instance anyway.
    pub(crate) fn streamed_past(
        &self,
        instance_id: &str,
        execution_id: Option<&str>,
    ) -> Option<Arc<Vec<HistoryEvent>>> {
        self.sent().values().find_map(|sent| match &sent.work {
            SentWork::Orchestrator {
                execution_id: sent_execution,
            } if sent.instance_id == instance_id
                && execution_id.is_none_or(|wanted| wanted == sent_execution) =>
            {
                sent.past.clone()
            }
            _ => None,
        })
    }

    /// Keeps what durable-emu's worker says about an episode it is about to answer.
    pub(crate) fn note_episode(&self, token: &str, notes: EpisodeNotes) -> Result<(), Status> {
        let mut sent = self.sent();
        match sent.get_mut(token) {
            Some(entry) if matches!(entry.work, SentWork::Orchestrator { .. }) => {
                entry.notes = Some(notes);
                Ok(())
            }
            _ => Err(Status::not_found(format!(
                "no episode with token '{token}' is outstanding; it was answered, abandoned or redelivered"
            ))),
        }
    }

    /// The execution an outstanding orchestrator item was sent for.
    fn execution_of(&self, token: &str) -> Option<String> {
        match &self.sent().get(token)?.work {
            SentWork::Orchestrator { execution_id } => Some(execution_id.clone()),
            SentWork::Activity { .. } | SentWork::Entity => None,
        }
    }

    pub(crate) async fn complete_entity(
        &self,
        response: proto::EntityBatchResult,
    ) -> Result<(), Status> {
        let token = self.entity_token(&response.completion_token)?;
        let instance_id = self
            .sent()
            .get(&token)
            .map(|sent| sent.instance_id.clone())
            .ok_or_else(|| {
                remote_status(RemoteError::UnknownWork {
                    token: token.clone(),
                    instance_id: String::new(),
                    task_id: None,
                })
            })?;
        let result = mapping::entity_batch_result_from_wire(&response).map_err(mapping_status)?;
        self.hub
            .complete_entity(&token, &instance_id, result)
            .await
            .map_err(remote_status)?;
        self.sent().remove(&token);
        Ok(())
    }

    /// The entity item an answer belongs to: its token, or for an empty one (the .NET worker
    /// answers the older `entityRequest` without its token) the only entity item outstanding.
    fn entity_token(&self, token: &str) -> Result<String, Status> {
        if !token.is_empty() {
            return match self.sent().get(token).map(|sent| &sent.work) {
                Some(SentWork::Entity) | None => Ok(token.to_string()),
                Some(_) => Err(Status::invalid_argument(format!(
                    "the token '{token}' belongs to an orchestrator or activity work item, not to an entity batch"
                ))),
            };
        }
        let sent = self.sent();
        let mut outstanding = sent
            .iter()
            .filter(|(_, sent)| sent.work == SentWork::Entity)
            .map(|(token, _)| token);
        match (outstanding.next(), outstanding.next()) {
            (Some(token), None) => Ok(token.clone()),
            (None, _) => Err(Status::not_found(
                "the entity answer has an empty completionToken and no entity batch is outstanding; it was completed, abandoned or redelivered (a worker's stream closed)",
            )),
            (Some(_), Some(_)) => Err(Status::invalid_argument(
                "the entity answer has an empty completionToken and several entity batches are outstanding; echo the work item's completionToken",
            )),
        }
    }

    /// The token a completion belongs to: its own, or for an empty one (older SDKs) the
    /// outstanding orchestrator item of the instance.
    fn key_of(&self, token: &str, instance_id: &str) -> Option<String> {
        if !token.is_empty() {
            return Some(token.to_string());
        }
        self.sent()
            .iter()
            .find(|(_, sent)| {
                sent.instance_id == instance_id
                    && matches!(sent.work, SentWork::Orchestrator { .. })
            })
            .map(|(token, _)| token.clone())
    }

    fn collect_chunk(
        &self,
        key: Option<String>,
        response: proto::OrchestratorResponse,
    ) -> Result<(), Status> {
        let stale = || {
            remote_status(RemoteError::UnknownWork {
                token: response.completion_token.clone(),
                instance_id: response.instance_id.clone(),
                task_id: None,
            })
        };
        let key = key.ok_or_else(stale)?;
        let mut sent = self.sent();
        let entry = sent.get_mut(&key).ok_or_else(stale)?;
        if entry.instance_id != response.instance_id {
            return Err(Status::invalid_argument(format!(
                "chunk for instance '{}' carries the token of a work item of instance '{}'",
                response.instance_id, entry.instance_id
            )));
        }
        check_chunk_index(entry, &response)?;
        entry.chunks.extend(response.actions);
        entry.chunk_count += 1;
        Ok(())
    }

    pub(crate) fn abandon(&self, token: &str) -> Result<(), Status> {
        if token.is_empty() {
            return Err(Status::invalid_argument(
                "the abandon request has an empty completionToken; send the token of the work item to give back",
            ));
        }
        let target = self
            .sent()
            .get(token)
            .map(|sent| (sent.instance_id.clone(), sent.task_id()));
        let (instance_id, task_id) = target.ok_or_else(|| {
            Status::not_found(format!(
                "no work item with token '{token}' is outstanding; it was completed, abandoned or redelivered (a worker's stream closed)"
            ))
        })?;
        self.hub
            .abandon(token, &instance_id, task_id)
            .map_err(remote_status)?;
        self.sent().remove(token);
        Ok(())
    }

    fn forget_worker(&self, worker: WorkerId) {
        self.sent().retain(|_, sent| sent.worker != worker);
    }
}

/// Entity actions name the orchestration that sends them (where a call's answer goes, who holds
/// a lock). The Python SDK leaves a call's `parentExecutionId` out, and other workers may leave
/// the parent out altogether: the work item says which execution answered.
fn fill_entity_parents(
    actions: &mut [durable_sdk::protocol::Action],
    instance_id: &str,
    execution_id: &str,
) {
    use durable_sdk::protocol::ActionKind;
    for action in actions {
        match &mut action.kind {
            ActionKind::CallEntity {
                parent_instance_id,
                parent_execution_id,
                ..
            } => {
                if parent_instance_id.is_empty() {
                    *parent_instance_id = instance_id.to_string();
                }
                if parent_execution_id.is_empty() && parent_instance_id == instance_id {
                    *parent_execution_id = execution_id.to_string();
                }
            }
            ActionKind::LockEntities {
                parent_instance_id, ..
            }
            | ActionKind::UnlockEntity {
                parent_instance_id, ..
            } if parent_instance_id.is_empty() => {
                *parent_instance_id = instance_id.to_string();
            }
            _ => {}
        }
    }
}

#[allow(deprecated)] // chunk_index: see complete_orchestrator
fn check_chunk_index(entry: &Sent, response: &proto::OrchestratorResponse) -> Result<(), Status> {
    match response.chunk_index {
        Some(index) if index != entry.chunk_count => Err(Status::invalid_argument(format!(
            "chunk {index} of the answer for instance '{}' arrived after {} chunk(s); send chunks in order starting at 0",
            response.instance_id, entry.chunk_count
        ))),
        _ => Ok(()),
    }
}

/// One worker's stream of work items; dropping it disconnects the worker from the hub.
struct WorkStream {
    connection: WorkerConnection,
    ping: tokio::time::Interval,
    side: WorkerSide,
    history_streaming: bool,
    entity_format: EntityFormat,
}

impl WorkStream {
    fn to_wire(&self, item: RemoteWorkItem) -> proto::WorkItem {
        use proto::work_item::Request as Item;
        let worker = self.connection.id;
        match item {
            RemoteWorkItem::Orchestrator {
                token,
                request,
                past,
                probe,
                ..
            } => {
                // A probe replays a prefix of history, which StreamInstanceHistory cannot give.
                let stream = self.history_streaming && !probe;
                let wire = mapping::orchestrator_request_to_wire(&request, &past, stream);
                let mut sent = Sent::new(
                    worker,
                    request.instance_id,
                    SentWork::Orchestrator {
                        execution_id: request.execution_id,
                    },
                );
                sent.past = stream.then_some(past);
                self.side.sent().insert(token.clone(), sent);
                proto::WorkItem {
                    request: Some(Item::OrchestratorRequest(wire)),
                    completion_token: token,
                }
            }
            RemoteWorkItem::Entity { token, request, .. } => {
                let wire = match self.entity_format {
                    EntityFormat::V2 => {
                        Item::EntityRequestV2(mapping::entity_request_to_wire(&request))
                    }
                    EntityFormat::V1 => {
                        Item::EntityRequest(mapping::entity_batch_request_to_wire(&request))
                    }
                };
                self.side.sent().insert(
                    token.clone(),
                    Sent::new(worker, request.instance_id, SentWork::Entity),
                );
                proto::WorkItem {
                    request: Some(wire),
                    completion_token: token,
                }
            }
            RemoteWorkItem::Activity {
                token,
                name,
                input,
                instance_id,
                execution_id,
                task_id,
                ..
            } => {
                let wire = mapping::activity_request_to_wire(
                    &name,
                    &input,
                    &instance_id,
                    &execution_id,
                    task_id,
                );
                self.side.sent().insert(
                    token.clone(),
                    Sent::new(worker, instance_id, SentWork::Activity { task_id }),
                );
                proto::WorkItem {
                    request: Some(Item::ActivityRequest(wire)),
                    completion_token: token,
                }
            }
        }
    }
}

impl Stream for WorkStream {
    type Item = Result<proto::WorkItem, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.connection.items.poll_recv(cx) {
            Poll::Ready(Some(item)) => {
                let wire = self.to_wire(item);
                return Poll::Ready(Some(Ok(wire)));
            }
            // The hub let go of this worker (the engine stopped): end the stream so the SDK
            // reconnects.
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        match self.ping.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(proto::WorkItem {
                request: Some(proto::work_item::Request::HealthPing(proto::HealthPing {})),
                completion_token: String::new(),
            }))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for WorkStream {
    fn drop(&mut self) {
        // The connection drops right after this and the hub requeues under new tokens, so the
        // old ones can only be stale from now on.
        self.side.forget_worker(self.connection.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_is_masked_but_keeps_its_scheme() {
        assert_eq!(mask_authorization("Bearer abc.def"), "Bearer ***");
        assert_eq!(mask_authorization("secret"), "***");
    }
}
