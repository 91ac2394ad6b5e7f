//! The worker side of the sidecar: the `GetWorkItems` stream over the engine's [`RemoteHub`],
//! completions, abandons and chunked orchestrator answers.
//!
//! A stream is one hub connection: the request's filters, capabilities and metadata become its
//! [`WorkerInfo`]; items the hub sends it go out as work items with their completion tokens,
//! with a health ping every [`HEALTH_PING_INTERVAL`] so idle streams stay up (the SDKs reconnect
//! after 120 s of silence). When the client goes away tonic drops the stream, which drops the
//! connection, and the hub requeues what it held.
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
    NameFilter, RemoteError, RemoteHub, RemoteWorkItem, WorkFilters, WorkerConnection, WorkerId,
    WorkerInfo,
};
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
}

/// A work item this side sent and has not seen finished.
#[derive(Debug)]
struct Sent {
    worker: WorkerId,
    instance_id: String,
    task_id: Option<i32>,
    /// Actions of the chunks of a chunked answer received so far.
    chunks: Vec<proto::OrchestratorAction>,
    /// How many chunks have arrived.
    chunk_count: i32,
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
        };
        Ok(Response::new(Box::pin(stream)))
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
        if let Some(key) = &key {
            let mut sent = self.sent();
            if let Some(entry) = sent.get_mut(key) {
                check_chunk_index(entry, &response)?;
                let mut actions = std::mem::take(&mut entry.chunks);
                entry.chunk_count = 0;
                actions.append(&mut response.actions);
                response.actions = actions;
            }
        }
        let answer = mapping::orchestrator_response_from_wire(&response).map_err(mapping_status)?;
        self.hub
            .complete_orchestrator(&response.completion_token, &response.instance_id, answer)
            .await
            .map_err(remote_status)?;
        if let Some(key) = key {
            self.sent().remove(&key);
        }
        Ok(())
    }

    /// The token a completion belongs to: its own, or for an empty one (older SDKs) the
    /// outstanding orchestrator item of the instance.
    fn key_of(&self, token: &str, instance_id: &str) -> Option<String> {
        if !token.is_empty() {
            return Some(token.to_string());
        }
        self.sent()
            .iter()
            .find(|(_, sent)| sent.instance_id == instance_id && sent.task_id.is_none())
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
            .map(|sent| (sent.instance_id.clone(), sent.task_id));
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
}

impl WorkStream {
    fn to_wire(&self, item: RemoteWorkItem) -> proto::WorkItem {
        use proto::work_item::Request as Item;
        let worker = self.connection.id;
        match item {
            RemoteWorkItem::Orchestrator {
                token,
                request,
                probe,
                ..
            } => {
                // A probe replays a prefix of history, which StreamInstanceHistory cannot give.
                let stream = self.history_streaming && !probe;
                let wire = mapping::orchestrator_request_to_wire(&request, stream);
                self.side.sent().insert(
                    token.clone(),
                    Sent {
                        worker,
                        instance_id: request.instance_id,
                        task_id: None,
                        chunks: Vec::new(),
                        chunk_count: 0,
                    },
                );
                proto::WorkItem {
                    request: Some(Item::OrchestratorRequest(wire)),
                    completion_token: token,
                }
            }
            // CONTRACT PLACEHOLDER: entity batches go out as entityRequestV2 / entityRequest.
            RemoteWorkItem::Entity { token, .. } => proto::WorkItem {
                request: Some(Item::HealthPing(proto::HealthPing {})),
                completion_token: token,
            },
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
                    Sent {
                        worker,
                        instance_id,
                        task_id: Some(task_id),
                        chunks: Vec::new(),
                        chunk_count: 0,
                    },
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
