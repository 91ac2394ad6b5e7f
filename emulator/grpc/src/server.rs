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
use durable_emu_engine::{EngineError, EngineEvent, InstanceRecord};
use durable_sdk::history::RuntimeStatus;
use serde_json::Value;
use std::future::Future;
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

const ENTITIES: &str = "durable entities are not supported by durable-emu yet (they come in the next release); run entity code against another backend for now";

/// The caller's deadline, from its `grpc-timeout` header (`None`: it waits as long as it takes).
pub(crate) fn caller_deadline<T>(request: &Request<T>) -> Option<Duration> {
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
fn deadline_future(deadline: Option<Duration>) -> impl Future<Output = ()> + Send {
    async move {
        match deadline {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
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

pub(crate) type WorkItemStream =
    Pin<Box<dyn Stream<Item = Result<proto::WorkItem, Status>> + Send>>;
type HistoryStream = Pin<Box<dyn Stream<Item = Result<proto::HistoryChunk, Status>> + Send>>;

impl Sidecar {
    /// Waits until the instance is no longer Pending (or the deadline passes: `Ok(None)`).
    async fn wait_until_started(
        &self,
        instance_id: &str,
        deadline: Option<Duration>,
    ) -> Result<Option<InstanceRecord>, Status> {
        let wait = async {
            // Subscribe before looking, so a start between the look and the wait is not missed.
            let mut events = self.engine.events();
            loop {
                let record = self
                    .engine
                    .instance(instance_id)
                    .await
                    .map_err(engine_status)?;
                match record {
                    Some(record) if record.status != RuntimeStatus::Pending => {
                        return Ok::<_, Status>(Some(record));
                    }
                    None => return Ok(None),
                    Some(_) => {}
                }
                loop {
                    match events.next().await {
                        None => return Err(engine_status(EngineError::Stopped)),
                        Some(durable_emu_engine::engine::Delivery::Reload { .. }) => break,
                        Some(durable_emu_engine::engine::Delivery::Event(
                            EngineEvent::InstanceChanged {
                                instance_id: id, ..
                            },
                        )) if id == instance_id => break,
                        Some(_) => {}
                    }
                }
            }
        };
        match deadline {
            None => wait.await,
            Some(after) => match tokio::time::timeout(after, wait).await {
                Ok(answer) => answer,
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "instance '{instance_id}' did not start within the caller's deadline of {after:?}"
                ))),
            },
        }
    }

    async fn purge_one(&self, instance_id: &str, _recursive: bool) -> Result<i32, Status> {
        let purged = self
            .engine
            .purge(instance_id)
            .await
            .map_err(engine_status)?;
        Ok(i32::from(purged))
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
        let instance_id = (!request.instance_id.is_empty()).then_some(request.instance_id);
        let id = self
            .engine
            .start_orchestration(&request.name, input, instance_id)
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
        required_id("RewindInstanceRequest", &request.instance_id)?;
        Err(Status::unimplemented(
            "RewindInstance is not supported by this durable-emu build yet",
        ))
    }

    async fn restart_instance(
        &self,
        request: Request<proto::RestartInstanceRequest>,
    ) -> Result<Response<proto::RestartInstanceResponse>, Status> {
        let request = request.into_inner();
        let id = required_id("RestartInstanceRequest", &request.instance_id)?;
        let new_id = self.engine.restart(id).await.map_err(engine_status)?;
        Ok(Response::new(proto::RestartInstanceResponse {
            instance_id: new_id,
        }))
    }

    async fn wait_for_instance_start(
        &self,
        request: Request<proto::GetInstanceRequest>,
    ) -> Result<Response<proto::GetInstanceResponse>, Status> {
        let deadline = caller_deadline(&request);
        let request = request.into_inner();
        let id = required_id("GetInstanceRequest", &request.instance_id)?;
        let record = self.wait_until_started(id, deadline).await?;
        Ok(Response::new(state_response(
            record,
            request.get_inputs_and_outputs,
        )))
    }

    async fn wait_for_instance_completion(
        &self,
        request: Request<proto::GetInstanceRequest>,
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
        let record = self
            .engine
            .wait_until_terminal(id, deadline_future(deadline))
            .await
            .map_err(engine_status)?;
        match record {
            Some(record) => Ok(Response::new(state_response(
                Some(record),
                request.get_inputs_and_outputs,
            ))),
            None => Err(Status::deadline_exceeded(format!(
                "instance '{id}' did not complete within the caller's deadline of {:?}",
                deadline.unwrap_or_default()
            ))),
        }
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
        let prefix = query.instance_id_prefix.unwrap_or_default();
        let page = crate::paging::Page::from_wire(
            "InstanceQuery",
            query.max_instance_count,
            query.continuation_token.as_deref(),
        )?;
        let all = self.engine.instances().await.map_err(engine_status)?;
        let matching = all.into_iter().filter(|record| {
            (wanted.is_empty() || wanted.contains(&record.status))
                && from.is_none_or(|from| record.created_at >= from)
                && to.is_none_or(|to| record.created_at <= to)
                && record.instance_id.starts_with(&prefix)
        });
        let (records, next) = page.take(matching);
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
        let page = crate::paging::Page::from_wire(
            "ListInstanceIdsRequest",
            request.page_size,
            request.last_instance_key.as_deref(),
        )?;
        let all = self.engine.instances().await.map_err(engine_status)?;
        let completed_filter = from.is_some() || to.is_some();
        let matching = all.into_iter().filter(|record| {
            let completed = record.status.is_terminal().then_some(record.updated_at);
            (wanted.is_empty() || wanted.contains(&record.status))
                && (!completed_filter
                    || completed.is_some_and(|at| {
                        from.is_none_or(|from| at >= from) && to.is_none_or(|to| at <= to)
                    }))
        });
        let (records, next) = page.take(matching);
        Ok(Response::new(proto::ListInstanceIdsResponse {
            instance_ids: records
                .into_iter()
                .map(|record| record.instance_id)
                .collect(),
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
                let all = self.engine.instances().await.map_err(engine_status)?;
                let mut deleted = 0;
                for record in all.iter().filter(|record| {
                    record.status.is_terminal()
                        && (wanted.is_empty() || wanted.contains(&record.status))
                        && from.is_none_or(|from| record.created_at >= from)
                        && to.is_none_or(|to| record.created_at <= to)
                }) {
                    deleted += self.purge_one(&record.instance_id, recursive).await?;
                }
                deleted
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
        _request: Request<proto::EntityBatchResult>,
    ) -> Result<Response<proto::CompleteTaskResponse>, Status> {
        Err(Status::unimplemented(ENTITIES))
    }

    type StreamInstanceHistoryStream = HistoryStream;

    async fn stream_instance_history(
        &self,
        request: Request<proto::StreamInstanceHistoryRequest>,
    ) -> Result<Response<Self::StreamInstanceHistoryStream>, Status> {
        let request = request.into_inner();
        let id = required_id("StreamInstanceHistoryRequest", &request.instance_id)?;
        let executions = self.engine.history(id).await.map_err(engine_status)?;
        if executions.is_empty() {
            return Err(Status::not_found(format!(
                "no instance '{id}' in this database"
            )));
        }
        let execution = match request.execution_id.as_deref().filter(|id| !id.is_empty()) {
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
        let chunks: Vec<Result<proto::HistoryChunk, Status>> = execution
            .events
            .chunks(HISTORY_CHUNK_EVENTS)
            .map(|events| {
                Ok(proto::HistoryChunk {
                    events: events.iter().map(mapping::event_to_wire).collect(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
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
        _request: Request<proto::SignalEntityRequest>,
    ) -> Result<Response<proto::SignalEntityResponse>, Status> {
        Err(Status::unimplemented(ENTITIES))
    }

    async fn get_entity(
        &self,
        _request: Request<proto::GetEntityRequest>,
    ) -> Result<Response<proto::GetEntityResponse>, Status> {
        Err(Status::unimplemented(ENTITIES))
    }

    async fn query_entities(
        &self,
        _request: Request<proto::QueryEntitiesRequest>,
    ) -> Result<Response<proto::QueryEntitiesResponse>, Status> {
        Err(Status::unimplemented(ENTITIES))
    }

    async fn clean_entity_storage(
        &self,
        _request: Request<proto::CleanEntityStorageRequest>,
    ) -> Result<Response<proto::CleanEntityStorageResponse>, Status> {
        Err(Status::unimplemented(ENTITIES))
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
        _request: Request<proto::AbandonEntityTaskRequest>,
    ) -> Result<Response<proto::AbandonEntityTaskResponse>, Status> {
        Err(Status::unimplemented(ENTITIES))
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
            // durable-emu has no entity locks, so "graceful" and immediate termination are the
            // same: a terminate that the engine refuses (ended, unknown) is reported back.
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

/// Events per StreamInstanceHistory chunk: small enough to stay far below gRPC's 4 MB default
/// message limit for ordinary payloads.
const HISTORY_CHUNK_EVENTS: usize = 100;
