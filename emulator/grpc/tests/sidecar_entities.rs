//! Durable entities through the sidecar, over a real tonic client on an in-memory transport (no
//! port): a fake worker on the work-item stream runs entity batches by hand, as the official
//! workers do, and the client RPCs (SignalEntity, GetEntity, QueryEntities, CleanEntityStorage)
//! read and change what the engine holds.
// Test helpers panic on setup failures, which is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_grpc::TaskHubSidecarServiceClient;
use durable_emu_grpc::proto::{self, work_item::Request as Item};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

mod support;

use support::Harness;

async fn harness() -> Harness {
    support::harness(false).await
}

/// A worker's stream; `entity_format` is the value of the `durable-emu-entity-requests` metadata.
async fn connect_worker(
    client: &mut TaskHubSidecarServiceClient<Channel>,
    entity_format: Option<&str>,
) -> Result<Streaming<proto::WorkItem>, tonic::Status> {
    let mut request = tonic::Request::new(proto::GetWorkItemsRequest::default());
    if let Some(format) = entity_format {
        request.metadata_mut().insert(
            durable_emu_grpc::ENTITY_REQUEST_METADATA,
            format.parse().unwrap(),
        );
    }
    Ok(client.get_work_items(request).await?.into_inner())
}

/// The next work item that is not a health ping, if one comes within `within`.
async fn item_within(
    stream: &mut Streaming<proto::WorkItem>,
    within: Duration,
) -> Option<proto::WorkItem> {
    tokio::time::timeout(within, async {
        loop {
            let item = stream
                .message()
                .await
                .unwrap()
                .expect("the stream stays open");
            if !matches!(item.request, Some(Item::HealthPing(_))) {
                return item;
            }
        }
    })
    .await
    .ok()
}

async fn next_item(stream: &mut Streaming<proto::WorkItem>) -> proto::WorkItem {
    item_within(stream, Duration::from_secs(10))
        .await
        .expect("a work item within 10 s")
}

fn entity_request_v2(item: &proto::WorkItem) -> &proto::EntityRequest {
    match &item.request {
        Some(Item::EntityRequestV2(request)) => request,
        other => panic!("expected an entityRequestV2 work item, got {other:?}"),
    }
}

fn signal(id: &str, operation: &str, input: &str) -> proto::SignalEntityRequest {
    proto::SignalEntityRequest {
        instance_id: id.into(),
        name: operation.into(),
        input: Some(input.into()),
        request_id: "client-request".into(),
        ..Default::default()
    }
}

fn success(result: &str) -> proto::OperationResult {
    proto::OperationResult {
        result_type: Some(proto::operation_result::ResultType::Success(
            proto::OperationResultSuccess {
                result: Some(result.into()),
                ..Default::default()
            },
        )),
    }
}

fn failure(kind: &str, message: &str) -> proto::OperationResult {
    proto::OperationResult {
        result_type: Some(proto::operation_result::ResultType::Failure(
            proto::OperationResultFailure {
                failure_details: Some(proto::TaskFailureDetails {
                    error_type: kind.into(),
                    error_message: message.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )),
    }
}

fn batch_answer(
    token: &str,
    results: Vec<proto::OperationResult>,
    state: Option<&str>,
) -> proto::EntityBatchResult {
    proto::EntityBatchResult {
        results,
        entity_state: state.map(str::to_string),
        completion_token: token.into(),
        ..Default::default()
    }
}

async fn get_entity(
    client: &mut TaskHubSidecarServiceClient<Channel>,
    id: &str,
    include_state: bool,
) -> proto::GetEntityResponse {
    client
        .get_entity(proto::GetEntityRequest {
            instance_id: id.into(),
            include_state,
        })
        .await
        .unwrap()
        .into_inner()
}

/// Signals `id` and runs the batch on `worker`, answering each operation with `result` and
/// leaving `state`.
async fn signal_and_run(
    h: &mut Harness,
    worker: &mut Streaming<proto::WorkItem>,
    id: &str,
    state: Option<&str>,
) {
    h.client
        .signal_entity(signal(id, "set", "1"))
        .await
        .unwrap();
    let item = next_item(worker).await;
    let request = entity_request_v2(&item);
    assert_eq!(request.instance_id, id);
    let results = request
        .operation_requests
        .iter()
        .map(|_| success("null"))
        .collect();
    h.client
        .complete_entity_task(batch_answer(&item.completion_token, results, state))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_client_signal_runs_on_the_worker_as_entity_request_v2_and_get_entity_reads_the_state() {
    let mut h = harness().await;
    let mut worker = connect_worker(&mut h.client, None).await.unwrap();
    h.client
        .signal_entity(signal("@Counter@a", "add", "5"))
        .await
        .unwrap();
    let item = next_item(&mut worker).await;
    let request = entity_request_v2(&item);
    // The entity name is case-insensitive: the id is stored lower-cased.
    assert_eq!(request.instance_id, "@counter@a");
    assert_eq!(request.entity_state, None, "a new entity has no state");
    assert_eq!(request.operation_requests.len(), 1);
    match &request.operation_requests[0].event_type {
        Some(proto::history_event::EventType::EntityOperationSignaled(signaled)) => {
            assert_eq!(signaled.operation, "add");
            assert_eq!(signaled.input.as_deref(), Some("5"));
        }
        other => panic!("a client's signal should arrive as entityOperationSignaled: {other:?}"),
    }
    h.client
        .complete_entity_task(batch_answer(
            &item.completion_token,
            vec![success("5")],
            Some("5"),
        ))
        .await
        .unwrap();

    let found = get_entity(&mut h.client, "@counter@a", true).await;
    assert!(found.exists);
    let entity = found.entity.unwrap();
    assert_eq!(entity.instance_id, "@counter@a");
    assert_eq!(entity.serialized_state.as_deref(), Some("5"));
    assert_eq!(entity.backlog_queue_size, 0);
    let without_state = get_entity(&mut h.client, "@counter@a", false).await;
    assert_eq!(without_state.entity.unwrap().serialized_state, None);

    // The next batch carries the state the last one left.
    h.client
        .signal_entity(signal("@counter@a", "add", "2"))
        .await
        .unwrap();
    let item = next_item(&mut worker).await;
    assert_eq!(entity_request_v2(&item).entity_state.as_deref(), Some("5"));

    let missing = get_entity(&mut h.client, "@counter@nobody", true).await;
    assert!(!missing.exists && missing.entity.is_none());
}

#[tokio::test]
async fn malformed_entity_requests_are_invalid_argument_and_say_what_an_entity_id_is() {
    let mut h = harness().await;
    for bad in ["counter", "", "@@a"] {
        let error = h
            .client
            .signal_entity(signal(bad, "add", "1"))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument, "{bad:?}: {error:?}");
        assert!(error.message().contains("@name@key"), "{}", error.message());
        let error = h
            .client
            .get_entity(proto::GetEntityRequest {
                instance_id: bad.into(),
                include_state: true,
            })
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument, "{bad:?}: {error:?}");
    }
    let error = h
        .client
        .signal_entity(signal("@counter@a", " ", "1"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("SignalEntityRequest.name"));
    let error = h
        .client
        .signal_entity(signal("@counter@a", "add", "not json"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("SignalEntityRequest.input"));
    let error = connect_worker(&mut h.client, Some("v3")).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("durable-emu-entity-requests"));
}

#[tokio::test]
async fn an_orchestrations_call_reaches_the_entity_with_its_caller_and_the_answer_comes_back() {
    let mut h = harness().await;
    let mut worker = connect_worker(&mut h.client, None).await.unwrap();
    h.client
        .start_instance(proto::CreateInstanceRequest {
            instance_id: "caller".into(),
            name: "uses_counter".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let item = next_item(&mut worker).await;
    let Some(Item::OrchestratorRequest(episode)) = &item.request else {
        panic!("expected the orchestration's first episode, got {item:?}");
    };
    let execution_id = episode.execution_id.clone().unwrap();
    // As durabletask-python 1.12.0 sends it: no parentExecutionId.
    let call = proto::OrchestratorAction {
        id: 0,
        orchestrator_action_type: Some(
            proto::orchestrator_action::OrchestratorActionType::SendEntityMessage(
                proto::SendEntityMessageAction {
                    entity_message_type: Some(
                        proto::send_entity_message_action::EntityMessageType::EntityOperationCalled(
                            proto::EntityOperationCalledEvent {
                                request_id: "req-1".into(),
                                operation: "get".into(),
                                parent_instance_id: Some("caller".into()),
                                target_instance_id: Some("@counter@a".into()),
                                ..Default::default()
                            },
                        ),
                    ),
                },
            ),
        ),
    };
    h.client
        .complete_orchestrator_task(proto::OrchestratorResponse {
            instance_id: "caller".into(),
            actions: vec![call],
            completion_token: item.completion_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap();

    let item = next_item(&mut worker).await;
    let request = entity_request_v2(&item);
    match &request.operation_requests[0].event_type {
        Some(proto::history_event::EventType::EntityOperationCalled(called)) => {
            assert_eq!(called.request_id, "req-1");
            assert_eq!(called.parent_instance_id.as_deref(), Some("caller"));
            // Filled in by the sidecar from the episode the call came from.
            assert_eq!(
                called.parent_execution_id.as_deref(),
                Some(execution_id.as_str())
            );
        }
        other => panic!("the call should arrive as entityOperationCalled: {other:?}"),
    }
    h.client
        .complete_entity_task(batch_answer(
            &item.completion_token,
            vec![failure("ValueError", "no such counter")],
            None,
        ))
        .await
        .unwrap();

    let item = next_item(&mut worker).await;
    let Some(Item::OrchestratorRequest(episode)) = &item.request else {
        panic!("expected the caller's next episode, got {item:?}");
    };
    let answer = episode
        .new_events
        .iter()
        .find_map(|event| match &event.event_type {
            Some(proto::history_event::EventType::EntityOperationFailed(failed)) => Some(failed),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the failure should reach the caller: {episode:?}"));
    assert_eq!(answer.request_id, "req-1");
    assert_eq!(
        answer.failure_details.as_ref().unwrap().error_type,
        "ValueError"
    );
    // The call is in the caller's history as the worker will replay it.
    assert!(episode.past_events.iter().any(|event| matches!(
        &event.event_type,
        Some(proto::history_event::EventType::EntityOperationCalled(called))
            if called.request_id == "req-1" && event.event_id == 0
    )));
}

#[tokio::test]
async fn a_worker_asking_for_v1_gets_entity_request_and_may_answer_without_its_token() {
    let mut h = harness().await;
    let mut worker = connect_worker(&mut h.client, Some("v1")).await.unwrap();
    h.client
        .signal_entity(signal("@counter@v1", "add", "3"))
        .await
        .unwrap();
    let item = next_item(&mut worker).await;
    let Some(Item::EntityRequest(request)) = &item.request else {
        panic!("a worker that asked for v1 should get entityRequest, got {item:?}");
    };
    assert_eq!(request.instance_id, "@counter@v1");
    assert_eq!(request.operations[0].operation, "add");
    assert_eq!(request.operations[0].input.as_deref(), Some("3"));
    // The .NET worker answers the older work item without its token.
    h.client
        .complete_entity_task(batch_answer("", vec![success("3")], Some("3")))
        .await
        .unwrap();
    let entity = get_entity(&mut h.client, "@counter@v1", true)
        .await
        .entity
        .unwrap();
    assert_eq!(entity.serialized_state.as_deref(), Some("3"));
}

#[tokio::test]
async fn an_abandoned_entity_batch_comes_again_under_a_new_token_and_a_stale_answer_is_not_found() {
    let mut h = harness().await;
    let mut worker = connect_worker(&mut h.client, None).await.unwrap();
    h.client
        .signal_entity(signal("@counter@a", "add", "1"))
        .await
        .unwrap();
    let first = next_item(&mut worker).await;
    h.client
        .abandon_task_entity_work_item(proto::AbandonEntityTaskRequest {
            completion_token: first.completion_token.clone(),
        })
        .await
        .unwrap();
    let again = next_item(&mut worker).await;
    assert_ne!(again.completion_token, first.completion_token);
    assert_eq!(
        entity_request_v2(&again).operation_requests,
        entity_request_v2(&first).operation_requests
    );
    let stale = h
        .client
        .complete_entity_task(batch_answer(
            &first.completion_token,
            vec![success("1")],
            Some("1"),
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::NotFound);
    h.client
        .complete_entity_task(batch_answer(
            &again.completion_token,
            vec![success("1")],
            Some("1"),
        ))
        .await
        .unwrap();
    let entity = get_entity(&mut h.client, "@counter@a", true)
        .await
        .entity
        .unwrap();
    assert_eq!(entity.serialized_state.as_deref(), Some("1"));
}

#[tokio::test]
async fn a_delayed_signal_waits_for_the_emulator_clock() {
    let mut h = harness().await;
    let mut worker = connect_worker(&mut h.client, None).await.unwrap();
    let now = h.engine.handle().now().unwrap();
    let due = now + chrono::TimeDelta::hours(1);
    h.client
        .signal_entity(proto::SignalEntityRequest {
            scheduled_time: Some(durable_emu_grpc::mapping::time_to_wire(due)),
            ..signal("@reminder@a", "ring", "\"wake up\"")
        })
        .await
        .unwrap();
    assert!(
        item_within(&mut worker, Duration::from_millis(500))
            .await
            .is_none(),
        "a signal due in an hour of emulator time must not run before"
    );
    h.engine
        .handle()
        .advance_clock(Duration::from_secs(2 * 3600))
        .unwrap();
    let item = next_item(&mut worker).await;
    assert_eq!(entity_request_v2(&item).instance_id, "@reminder@a");
}

#[tokio::test]
async fn query_entities_filters_by_name_prefix_and_pages_and_clean_removes_empty_ones() {
    let mut h = harness().await;
    let mut worker = connect_worker(&mut h.client, None).await.unwrap();
    for key in ["a", "b", "c"] {
        signal_and_run(&mut h, &mut worker, &format!("@counter@{key}"), Some("1")).await;
    }
    signal_and_run(&mut h, &mut worker, "@account@x", Some("{\"balance\":10}")).await;
    // An entity whose operation deleted its state is empty.
    signal_and_run(&mut h, &mut worker, "@counter@gone", None).await;

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = h
            .client
            .query_entities(proto::QueryEntitiesRequest {
                query: Some(proto::EntityQuery {
                    // A bare, differently-cased name prefix, as the .NET client allows.
                    instance_id_starts_with: Some("Count".into()),
                    include_state: true,
                    page_size: Some(2),
                    continuation_token: token.clone(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entities.len() <= 2, "{page:?}");
        for entity in &page.entities {
            assert_eq!(entity.serialized_state.as_deref(), Some("1"), "{entity:?}");
        }
        seen.extend(page.entities.into_iter().map(|entity| entity.instance_id));
        token = page.continuation_token;
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["@counter@a", "@counter@b", "@counter@c"]);

    let all = h
        .client
        .query_entities(proto::QueryEntitiesRequest {
            query: Some(proto::EntityQuery {
                include_state: false,
                include_transient: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        all.entities
            .iter()
            .all(|entity| entity.serialized_state.is_none())
    );
    assert!(
        all.entities
            .iter()
            .any(|entity| entity.instance_id == "@account@x")
    );

    // The last-modified range is on the emulator's clock.
    let now = h.engine.handle().now().unwrap();
    let in_range = |from: Option<chrono::DateTime<chrono::Utc>>,
                    to: Option<chrono::DateTime<chrono::Utc>>| {
        proto::QueryEntitiesRequest {
            query: Some(proto::EntityQuery {
                instance_id_starts_with: Some("@counter@".into()),
                last_modified_from: from.map(durable_emu_grpc::mapping::time_to_wire),
                last_modified_to: to.map(durable_emu_grpc::mapping::time_to_wire),
                ..Default::default()
            }),
        }
    };
    let hour = chrono::TimeDelta::hours(1);
    let later = h
        .client
        .query_entities(in_range(Some(now + hour), None))
        .await
        .unwrap()
        .into_inner();
    assert!(later.entities.is_empty(), "{later:?}");
    let earlier = h
        .client
        .query_entities(in_range(Some(now - hour), Some(now + hour)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(earlier.entities.len(), 3, "{earlier:?}");

    let cleaned = h
        .client
        .clean_entity_storage(proto::CleanEntityStorageRequest {
            remove_empty_entities: true,
            release_orphaned_locks: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleaned.empty_entities_removed, 1, "{cleaned:?}");
    assert_eq!(cleaned.continuation_token, None);
    assert!(
        !get_entity(&mut h.client, "@counter@gone", true)
            .await
            .exists
    );
    assert!(get_entity(&mut h.client, "@counter@a", true).await.exists);

    let error = h
        .client
        .query_entities(proto::QueryEntitiesRequest {
            query: Some(proto::EntityQuery {
                page_size: Some(-1),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_answer_without_a_token_is_refused_while_several_entity_batches_are_outstanding() {
    let mut h = harness().await;
    let mut worker = connect_worker(&mut h.client, Some("entityRequest"))
        .await
        .unwrap();
    for id in ["@counter@x", "@counter@y"] {
        h.client
            .signal_entity(signal(id, "add", "1"))
            .await
            .unwrap();
    }
    let first = next_item(&mut worker).await;
    let second = next_item(&mut worker).await;
    let error = h
        .client
        .complete_entity_task(batch_answer("", vec![success("1")], Some("1")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("completionToken"),
        "{}",
        error.message()
    );
    for item in [first, second] {
        h.client
            .complete_entity_task(batch_answer(
                &item.completion_token,
                vec![success("1")],
                Some("1"),
            ))
            .await
            .unwrap();
    }
    for id in ["@counter@x", "@counter@y"] {
        let entity = get_entity(&mut h.client, id, true).await.entity.unwrap();
        assert_eq!(entity.serialized_state.as_deref(), Some("1"), "{id}");
    }
}
