//! The `TaskHubSidecarService` implementation: each RPC checks its request, converts it with
//! `mapping`, calls the engine's async handle (client side) or its remote-worker hub (worker side)
//! and turns the answer or the engine's error into a gRPC status whose message says what was
//! wrong.
//!
//! Owns the request checks, the status mapping, deadlines (the caller's `grpc-timeout`), the
//! work-item stream (health pings, filters, metadata) and the collection of chunked orchestrator
//! answers. Knows nothing of sockets (see `lib.rs`) or of how the engine runs work.

use crate::mapping::{self, MappingError};
use crate::proto;
use crate::proto::task_hub_sidecar_service_server::TaskHubSidecarService;
use durable_emu_engine::engine::AsyncEngineHandle;
use durable_emu_engine::engine::{
    InstanceIdsQuery, InstanceQuery, PurgeFilter, ReusePolicy, StartOptions,
};
use durable_emu_engine::{EngineError, InstanceRecord};
use durable_sdk::history::RuntimeStatus;
use serde_json::Value;
use std::pin::Pin;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};

/// The service over one engine.
#[derive(Debug, Clone)]
pub struct Sidecar {
    pub(crate) engine: AsyncEngineHandle,
    pub(crate) worker: crate::worker::WorkerSide,
}

impl Sidecar {
    /// The service for `engine`.
    pub fn new(engine: AsyncEngineHandle) -> Self {
        let worker = crate::worker::WorkerSide::new(&engine);
        Self { engine, worker }
    }
}

/// An engine error as a gRPC status, by the engine's own wire table.
pub(crate) fn engine_status(error: EngineError) -> Status {
    Status::new(Code::from(error.kind().grpc_code()), error.to_string())
}

/// A request that could not be read as the SDK's types.
pub(crate) fn mapping_status(error: MappingError) -> Status {
    match error {
        MappingError::Unsupported { .. } => Status::unimplemented(error.to_string()),
        _ => Status::invalid_argument(error.to_string()),
    }
}

/// An instance id a request must carry.
pub(crate) fn required_id<'a>(message: &str, id: &'a str) -> Result<&'a str, Status> {
    if id.trim().is_empty() {
        Err(Status::invalid_argument(format!(
            "{message}.instanceId is empty; give the id of the instance"
        )))
    } else {
        Ok(id)
    }
}

/// When a wait gives up: a little before the caller's own deadline (a tenth of it, at most
/// 100 ms), so the caller gets this server's DEADLINE_EXCEEDED with its message rather than its
/// own transport timeout. `None`: the caller set no deadline.
pub(crate) fn caller_deadline<T>(request: &Request<T>) -> Option<Duration> {
    let after = caller_timeout(request)?;
    Some(after.saturating_sub((after / 10).min(Duration::from_millis(100))))
}

/// The caller's `grpc-timeout` header.
fn caller_timeout<T>(request: &Request<T>) -> Option<Duration> {
    let text = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// A future that completes at the caller's deadline, or never.
async fn deadline_future(deadline: Option<Duration>) {
    match deadline {
        Some(after) => tokio::time::sleep(after).await,
        None => std::future::pending().await,
    }
}

fn state_response(
    record: Option<InstanceRecord>,
    with_payloads: bool,
) -> proto::GetInstanceResponse {
    match record {
        Some(record) => proto::GetInstanceResponse {
            exists: true,
            orchestration_state: Some(mapping::instance_to_wire(&record, with_payloads)),
        },
        None => proto::GetInstanceResponse {
            exists: false,
            orchestration_state: None,
        },
    }
}

fn payload(field: &'static str, text: Option<&str>) -> Result<Value, Status> {
    mapping::payload_from_wire(field, text).map_err(mapping_status)
}

fn statuses(field: &'static str, values: &[i32]) -> Result<Vec<RuntimeStatus>, Status> {
    values
        .iter()
        .map(|value| mapping::status_from_wire(field, *value).map_err(mapping_status))
        .collect()
}

/// Instances per page when the caller asks for none (0).
const DEFAULT_PAGE_SIZE: usize = 100;

fn page_size(field: &'static str, size: i32) -> Result<usize, Status> {
    match usize::try_from(size) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size),
        Err(_) => Err(Status::invalid_argument(format!(
            "{field} is {size}; give a positive page size (or 0 for {DEFAULT_PAGE_SIZE})"
        ))),
    }
}

/// A count for an int32 field (saturating: a purge of more than 2^31 instances is not a thing).
fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) type WorkItemStream =
    Pin<Box<dyn Stream<Item = Result<proto::WorkItem, Status>> + Send>>;
type HistoryStream = Pin<Box<dyn Stream<Item = Result<proto::HistoryChunk, Status>> + Send>>;

impl Sidecar {
    async fn purge_one(&self, instance_id: &str, recursive: bool) -> Result<i32, Status> {
        let purged = self
            .engine
            .purge_recursive(instance_id, recursive)
            .await
            .map_err(engine_status)?;
        Ok(count(purged))
    }
}

#[tonic::async_trait]
impl TaskHubSidecarService for Sidecar {
    async fn hello(&self, _request: Request<()>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }

    async fn start_instance(
        &self,
        request: Request<proto::CreateInstanceRequest>,
    ) -> Result<Response<proto::CreateInstanceResponse>, Status> {
        let request = request.into_inner();
        if request.name.trim().is_empty() {
            return Err(Status::invalid_argument(
                "CreateInstanceRequest.name is empty; give the name of the orchestration to start",
            ));
        }
        let input = payload("CreateInstanceRequest.input", request.input.as_deref())?;
        let scheduled_start = request
            .scheduled_start_timestamp
            .as_ref()
            .map(|time| {
                mapping::time_from_wire("CreateInstanceRequest.scheduledStartTimestamp", time)
            })
            .transpose()
            .map_err(mapping_status)?;
        let reuse = match &request.orchestration_id_reuse_policy {
            None => ReusePolicy::Error,
            Some(policy) => ReusePolicy::Replaceable(statuses(
                "OrchestrationIdReusePolicy.replaceableStatus",
                &policy.replaceable_status,
            )?),
        };
        let options = StartOptions {
            instance_id: (!request.instance_id.is_empty()).then_some(request.instance_id),
            version: request.version.filter(|version| !version.is_empty()),
            tags: request.tags.into_iter().collect(),
            scheduled_start,
            reuse,
        };
        let id = self
            .engine
            .start_with(&request.name, input, options)
            .await
            .map_err(engine_status)?;
        Ok(Response::new(proto::CreateInstanceResponse {
            instance_id: id,
        }))
    }

    async fn get_instance(
        &self,
        request: Request<proto::GetInstanceRequest>,
    ) -> Result<Response<proto::GetInstanceResponse>, Status> {
        let request = request.into_inner();
        let id = required_id("GetInstanceRequest", &request.instance_id)?;
        let record = self.engine.instance(id).await.map_err(engine_status)?;
        Ok(Response::new(state_response(
            record,
            request.get_inputs_and_outputs,
        )))
    }

    async fn rewind_instance(
        &self,
        request: Request<proto::RewindInstanceRequest>,
    ) -> Result<Response<proto::RewindInstanceResponse>, Status> {
        let request = request.into_inner();
        let id = required_id("RewindInstanceRequest", &request.instance_id)?;
        self.engine
            .rewind(id, request.reason)
            .await
            .map_err(engine_status)?;
        Ok(Response::new(proto::RewindInstanceResponse {}))
    }

    async fn restart_instance(
        &self,
        request: Request<proto::RestartInstanceRequest>,
    ) -> Result<Response<proto::RestartInstanceResponse>, Status> {
        let request = request.into_inner();
        let id = required_id("RestartInstanceRequest", &request.instance_id)?;
        let new_id = self
            .engine
            .restart_as(id, request.restart_with_new_instance_id)
            .await
            .map_err(engine_status)?;
        Ok(Response::new(proto::RestartInstanceResponse {
            instance_id: new_id,
        }))
    }

    async fn wait_for_instance_start(
        &self,
        request: Request<proto::GetInstanceRequest>,
    ) -> Result<Response<proto::GetInstanceResponse>, Status> {
        self.wait_until(request, Reached::Started).await
    }

    async fn wait_for_instance_completion(
        &self,
        request: Request<proto::GetInstanceRequest>,
    ) -> Result<Response<proto::GetInstanceResponse>, Status> {
        self.wait_until(request, Reached::Terminal).await
    }

    async fn raise_event(
        &self,
        request: Request<proto::RaiseEventRequest>,
    ) -> Result<Response<proto::RaiseEventResponse>, Status> {
        let request = request.into_inner();
        let id = required_id("RaiseEventRequest", &request.instance_id)?;
        if request.name.trim().is_empty() {
            return Err(Status::invalid_argument(
                "RaiseEventRequest.name is empty; give the event's name",
            ));
        }
        let data = payload("RaiseEventRequest.input", request.input.as_deref())?;
        self.engine
            .raise_event(id, &request.name, data)
            .await
            .map_err(engine_status)?;
        Ok(Response::new(proto::RaiseEventResponse {}))
    }

    async fn terminate_instance(
        &self,
        request: Request<proto::TerminateRequest>,
    ) -> Result<Response<proto::TerminateResponse>, Status> {
        let request = request.into_inner();
        let id = required_id("TerminateRequest", &request.instance_id)?;
        let output = payload("TerminateRequest.output", request.output.as_deref())?;
        self.engine
            .terminate(id, output, request.recursive)
            .await
            .map_err(engine_status)?;
        Ok(Response::new(proto::TerminateResponse {}))
    }

    async fn suspend_instance(
        &self,
        request: Request<proto::SuspendRequest>,
    ) -> Result<Response<proto::SuspendResponse>, Status> {
        let request = request.into_inner();
        let id = required_id("SuspendRequest", &request.instance_id)?;
        self.engine
            .suspend(id, request.reason)
            .await
            .map_err(engine_status)?;
        Ok(Response::new(proto::SuspendResponse {}))
    }

    async fn resume_instance(
        &self,
        request: Request<proto::ResumeRequest>,
    ) -> Result<Response<proto::ResumeResponse>, Status> {
        let request = request.into_inner();
        let id = required_id("ResumeRequest", &request.instance_id)?;
        self.engine
            .resume(id, request.reason)
            .await
            .map_err(engine_status)?;
        Ok(Response::new(proto::ResumeResponse {}))
    }

    async fn query_instances(
        &self,
        request: Request<proto::QueryInstancesRequest>,
    ) -> Result<Response<proto::QueryInstancesResponse>, Status> {
        let query = request.into_inner().query.unwrap_or_default();
        let wanted = statuses("InstanceQuery.runtimeStatus", &query.runtime_status)?;
        let from = query
            .created_time_from
            .as_ref()
            .map(|time| mapping::time_from_wire("InstanceQuery.createdTimeFrom", time))
            .transpose()
            .map_err(mapping_status)?;
        let to = query
            .created_time_to
            .as_ref()
            .map(|time| mapping::time_from_wire("InstanceQuery.createdTimeTo", time))
            .transpose()
            .map_err(mapping_status)?;
        let (records, next) = self
            .engine
            .query(InstanceQuery {
                statuses: wanted,
                created_from: from,
                created_to: to,
                instance_id_prefix: query.instance_id_prefix.filter(|prefix| !prefix.is_empty()),
                page_size: page_size("InstanceQuery.maxInstanceCount", query.max_instance_count)?,
                continuation: query.continuation_token.filter(|token| !token.is_empty()),
            })
            .await
            .map_err(engine_status)?;
        Ok(Response::new(proto::QueryInstancesResponse {
            orchestration_state: records
                .iter()
                .map(|record| mapping::instance_to_wire(record, query.fetch_inputs_and_outputs))
                .collect(),
            continuation_token: next,
        }))
    }

    async fn list_instance_ids(
        &self,
        request: Request<proto::ListInstanceIdsRequest>,
    ) -> Result<Response<proto::ListInstanceIdsResponse>, Status> {
        let request = request.into_inner();
        let wanted = statuses(
            "ListInstanceIdsRequest.runtimeStatus",
            &request.runtime_status,
        )?;
        let from = request
            .completed_time_from
            .as_ref()
            .map(|time| mapping::time_from_wire("ListInstanceIdsRequest.completedTimeFrom", time))
            .transpose()
            .map_err(mapping_status)?;
        let to = request
            .completed_time_to
            .as_ref()
            .map(|time| mapping::time_from_wire("ListInstanceIdsRequest.completedTimeTo", time))
            .transpose()
            .map_err(mapping_status)?;
        let (instance_ids, next) = self
            .engine
            .list_instance_ids(InstanceIdsQuery {
                statuses: wanted,
                completed_from: from,
                completed_to: to,
                page_size: page_size("ListInstanceIdsRequest.pageSize", request.page_size)?,
                last_instance_key: request.last_instance_key.filter(|key| !key.is_empty()),
            })
            .await
            .map_err(engine_status)?;
        Ok(Response::new(proto::ListInstanceIdsResponse {
            instance_ids,
            last_instance_key: next,
        }))
    }

    async fn purge_instances(
        &self,
        request: Request<proto::PurgeInstancesRequest>,
    ) -> Result<Response<proto::PurgeInstancesResponse>, Status> {
        use proto::purge_instances_request::Request as What;
        let request = request.into_inner();
        let recursive = request.recursive;
        let deleted = match request.request {
            None => {
                return Err(Status::invalid_argument(
                    "PurgeInstancesRequest names nothing to purge; set instanceId, purgeInstanceFilter or instanceBatch",
                ));
            }
            Some(What::InstanceId(id)) => {
                let id = required_id("PurgeInstancesRequest", &id)?;
                self.purge_one(id, recursive).await?
            }
            Some(What::InstanceBatch(batch)) => {
                let mut deleted = 0;
                for id in &batch.instance_ids {
                    deleted += self.purge_one(id, recursive).await?;
                }
                deleted
            }
            Some(What::PurgeInstanceFilter(filter)) => {
                let wanted = statuses("PurgeInstanceFilter.runtimeStatus", &filter.runtime_status)?;
                if let Some(status) = wanted.iter().find(|status| !status.is_terminal()) {
                    return Err(Status::invalid_argument(format!(
                        "PurgeInstanceFilter.runtimeStatus includes {status}; only ended instances (Completed, Failed, Terminated, Canceled) can be purged"
                    )));
                }
                let from = filter
                    .created_time_from
                    .as_ref()
                    .map(|time| {
                        mapping::time_from_wire("PurgeInstanceFilter.createdTimeFrom", time)
                    })
                    .transpose()
                    .map_err(mapping_status)?;
                let to = filter
                    .created_time_to
                    .as_ref()
                    .map(|time| mapping::time_from_wire("PurgeInstanceFilter.createdTimeTo", time))
                    .transpose()
                    .map_err(mapping_status)?;
                let purged = self
                    .engine
                    .purge_where(
                        PurgeFilter {
                            created_from: from,
                            created_to: to,
                            statuses: wanted,
                        },
                        recursive,
                    )
                    .await
                    .map_err(engine_status)?;
                count(purged)
            }
        };
        Ok(Response::new(proto::PurgeInstancesResponse {
            deleted_instance_count: deleted,
            is_complete: Some(true),
        }))
    }

    type GetWorkItemsStream = WorkItemStream;

    async fn get_work_items(
        &self,
        request: Request<proto::GetWorkItemsRequest>,
    ) -> Result<Response<Self::GetWorkItemsStream>, Status> {
        self.worker.get_work_items(request).await
    }

    async fn complete_activity_task(
        &self,
        request: Request<proto::ActivityResponse>,
    ) -> Result<Response<proto::CompleteTaskResponse>, Status> {
        self.worker
            .complete_activity(request.into_inner())
            .await
            .map(|()| Response::new(proto::CompleteTaskResponse {}))
    }

    async fn complete_orchestrator_task(
        &self,
        request: Request<proto::OrchestratorResponse>,
    ) -> Result<Response<proto::CompleteTaskResponse>, Status> {
        self.worker
            .complete_orchestrator(request.into_inner())
            .await
            .map(|()| Response::new(proto::CompleteTaskResponse {}))
    }

    async fn complete_entity_task(
        &self,
        request: Request<proto::EntityBatchResult>,
    ) -> Result<Response<proto::CompleteTaskResponse>, Status> {
        self.worker
            .complete_entity(request.into_inner())
            .await
            .map(|()| Response::new(proto::CompleteTaskResponse {}))
    }

    type StreamInstanceHistoryStream = HistoryStream;

    async fn stream_instance_history(
        &self,
        request: Request<proto::StreamInstanceHistoryRequest>,
    ) -> Result<Response<Self::StreamInstanceHistoryStream>, Status> {
        let request = request.into_inner();
        let id = required_id("StreamInstanceHistoryRequest", &request.instance_id)?;
        let wanted = request.execution_id.as_deref().filter(|id| !id.is_empty());
        // A worker fetching the history of the episode it holds gets the copy that episode was
        // sent with: the store is not read again.
        if let Some(past) = request
            .for_work_item_processing
            .then(|| self.worker.streamed_past(id, wanted))
            .flatten()
        {
            return Ok(history_stream(&past));
        }
        let executions = self.engine.history(id).await.map_err(engine_status)?;
        if executions.is_empty() {
            return Err(Status::not_found(format!(
                "no instance '{id}' in this database"
            )));
        }
        let execution = match wanted {
            None => executions.last(),
            Some(wanted) => executions
                .iter()
                .find(|execution| execution.execution.execution_id == wanted),
        }
        .ok_or_else(|| {
            Status::not_found(format!(
                "instance '{id}' has no execution '{}'",
                request.execution_id.clone().unwrap_or_default()
            ))
        })?;
        Ok(history_stream(&execution.events))
    }

    async fn create_task_hub(
        &self,
        _request: Request<proto::CreateTaskHubRequest>,
    ) -> Result<Response<proto::CreateTaskHubResponse>, Status> {
        // durable-emu's task hub is its database, which exists once the emulator runs.
        Ok(Response::new(proto::CreateTaskHubResponse {}))
    }

    async fn delete_task_hub(
        &self,
        _request: Request<proto::DeleteTaskHubRequest>,
    ) -> Result<Response<proto::DeleteTaskHubResponse>, Status> {
        Err(Status::unimplemented(
            "durable-emu's task hub is its database file: stop the emulator and delete the file given to --db (or purge instances) to start over",
        ))
    }

    async fn signal_entity(
        &self,
        request: Request<proto::SignalEntityRequest>,
    ) -> Result<Response<proto::SignalEntityResponse>, Status> {
        self.signal_entity_rpc(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_entity(
        &self,
        request: Request<proto::GetEntityRequest>,
    ) -> Result<Response<proto::GetEntityResponse>, Status> {
        self.get_entity_rpc(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn query_entities(
        &self,
        request: Request<proto::QueryEntitiesRequest>,
    ) -> Result<Response<proto::QueryEntitiesResponse>, Status> {
        self.query_entities_rpc(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn clean_entity_storage(
        &self,
        request: Request<proto::CleanEntityStorageRequest>,
    ) -> Result<Response<proto::CleanEntityStorageResponse>, Status> {
        self.clean_entity_storage_rpc(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn abandon_task_activity_work_item(
        &self,
        request: Request<proto::AbandonActivityTaskRequest>,
    ) -> Result<Response<proto::AbandonActivityTaskResponse>, Status> {
        self.worker
            .abandon(&request.into_inner().completion_token)?;
        Ok(Response::new(proto::AbandonActivityTaskResponse {}))
    }

    async fn abandon_task_orchestrator_work_item(
        &self,
        request: Request<proto::AbandonOrchestrationTaskRequest>,
    ) -> Result<Response<proto::AbandonOrchestrationTaskResponse>, Status> {
        self.worker
            .abandon(&request.into_inner().completion_token)?;
        Ok(Response::new(proto::AbandonOrchestrationTaskResponse {}))
    }

    async fn abandon_task_entity_work_item(
        &self,
        request: Request<proto::AbandonEntityTaskRequest>,
    ) -> Result<Response<proto::AbandonEntityTaskResponse>, Status> {
        self.worker
            .abandon(&request.into_inner().completion_token)?;
        Ok(Response::new(proto::AbandonEntityTaskResponse {}))
    }

    async fn skip_graceful_orchestration_terminations(
        &self,
        request: Request<proto::SkipGracefulOrchestrationTerminationsRequest>,
    ) -> Result<Response<proto::SkipGracefulOrchestrationTerminationsResponse>, Status> {
        let request = request.into_inner();
        let ids = request.instance_batch.unwrap_or_default().instance_ids;
        if ids.len() > 500 {
            return Err(Status::invalid_argument(format!(
                "SkipGracefulOrchestrationTerminationsRequest.instanceBatch has {} ids; send at most 500 at a time",
                ids.len()
            )));
        }
        let reason = request.reason.map_or(Value::Null, Value::String);
        let mut unterminated = Vec::new();
        for id in ids {
            // A terminated orchestration's entity locks are released with it (docs/semantics.md
            // #entities), so "graceful" and immediate termination are the same: a terminate that
            // the engine refuses (ended, unknown) is reported back.
            if self
                .engine
                .terminate(&id, reason.clone(), false)
                .await
                .is_err()
            {
                unterminated.push(id);
            }
        }
        Ok(Response::new(
            proto::SkipGracefulOrchestrationTerminationsResponse {
                unterminated_instance_ids: unterminated,
            },
        ))
    }
}

/// A history as StreamInstanceHistory's chunks.
fn history_stream(events: &[durable_sdk::history::HistoryEvent]) -> Response<HistoryStream> {
    let chunks: Vec<Result<proto::HistoryChunk, Status>> = events
        .chunks(HISTORY_CHUNK_EVENTS)
        .map(|events| {
            Ok(proto::HistoryChunk {
                events: events.iter().map(mapping::event_to_wire).collect(),
            })
        })
        .collect();
    Response::new(Box::pin(tokio_stream::iter(chunks)))
}

/// Events per StreamInstanceHistory chunk: small enough to stay far below gRPC's 4 MB default
/// message limit for ordinary payloads.
const HISTORY_CHUNK_EVENTS: usize = 100;

/// What a wait RPC waits for.
#[derive(Debug, Clone, Copy)]
enum Reached {
    /// Out of Pending.
    Started,
    /// Ended.
    Terminal,
}

impl Sidecar {
    /// `WaitForInstanceStart` / `WaitForInstanceCompletion`: an unknown instance answers
    /// `exists = false` at once; otherwise the state once reached, or `DEADLINE_EXCEEDED` just
    /// before the caller's deadline.
    async fn wait_until(
        &self,
        request: Request<proto::GetInstanceRequest>,
        reached: Reached,
    ) -> Result<Response<proto::GetInstanceResponse>, Status> {
        let deadline = caller_deadline(&request);
        let request = request.into_inner();
        let id = required_id("GetInstanceRequest", &request.instance_id)?;
        if self
            .engine
            .instance(id)
            .await
            .map_err(engine_status)?
            .is_none()
        {
            return Ok(Response::new(state_response(None, false)));
        }
        let until = deadline_future(deadline);
        let record = match reached {
            Reached::Started => self.engine.wait_until_started(id, until).await,
            Reached::Terminal => self.engine.wait_until_terminal(id, until).await,
        }
        .map_err(engine_status)?;
        match record {
            Some(record) => Ok(Response::new(state_response(
                Some(record),
                request.get_inputs_and_outputs,
            ))),
            None => Err(Status::deadline_exceeded(format!(
                "instance '{id}' did not {} within the caller's deadline of {:?}",
                match reached {
                    Reached::Started => "start",
                    Reached::Terminal => "complete",
                },
                deadline.unwrap_or_default()
            ))),
        }
    }
}
