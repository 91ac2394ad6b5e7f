//! The sidecar through a real tonic client over an in-memory transport (`tokio::io::duplex`, no
//! port): client RPCs, a Rust worker on the work-item stream, bad input, redelivery.
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
    support::harness(true).await
}

fn start(name: &str, id: &str, input: &str) -> proto::CreateInstanceRequest {
    proto::CreateInstanceRequest {
        instance_id: id.into(),
        name: name.into(),
        input: Some(input.into()),
        ..Default::default()
    }
}

fn get(id: &str, payloads: bool) -> proto::GetInstanceRequest {
    proto::GetInstanceRequest {
        instance_id: id.into(),
        get_inputs_and_outputs: payloads,
    }
}

async fn connect_worker(
    client: &mut TaskHubSidecarServiceClient<Channel>,
) -> Streaming<proto::WorkItem> {
    client
        .get_work_items(proto::GetWorkItemsRequest::default())
        .await
        .unwrap()
        .into_inner()
}

/// The next work item that is not a health ping.
async fn next_item(stream: &mut Streaming<proto::WorkItem>) -> proto::WorkItem {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a work item within 10 s")
            .unwrap()
            .expect("the stream stays open");
        if !matches!(item.request, Some(Item::HealthPing(_))) {
            return item;
        }
    }
}

fn schedule(id: i32, name: &str, input: &str) -> proto::OrchestratorAction {
    proto::OrchestratorAction {
        id,
        orchestrator_action_type: Some(
            proto::orchestrator_action::OrchestratorActionType::ScheduleTask(
                proto::ScheduleTaskAction {
                    name: name.into(),
                    input: Some(input.into()),
                    ..Default::default()
                },
            ),
        ),
    }
}

fn complete(id: i32, result: &str) -> proto::OrchestratorAction {
    proto::OrchestratorAction {
        id,
        orchestrator_action_type: Some(
            proto::orchestrator_action::OrchestratorActionType::CompleteOrchestration(
                proto::CompleteOrchestrationAction {
                    orchestration_status: proto::OrchestrationStatus::Completed as i32,
                    result: Some(result.into()),
                    ..Default::default()
                },
            ),
        ),
    }
}

fn answer(
    item: &proto::WorkItem,
    actions: Vec<proto::OrchestratorAction>,
) -> proto::OrchestratorResponse {
    let Some(Item::OrchestratorRequest(request)) = &item.request else {
        panic!("expected an orchestrator item, got {item:?}");
    };
    proto::OrchestratorResponse {
        instance_id: request.instance_id.clone(),
        actions,
        completion_token: item.completion_token.clone(),
        ..Default::default()
    }
}

fn event_names(events: &[proto::HistoryEvent]) -> Vec<&'static str> {
    use proto::history_event::EventType as E;
    events
        .iter()
        .map(|event| match event.event_type {
            Some(E::OrchestratorStarted(_)) => "orchestratorStarted",
            Some(E::ExecutionStarted(_)) => "executionStarted",
            Some(E::TaskScheduled(_)) => "taskScheduled",
            Some(E::TaskCompleted(_)) => "taskCompleted",
            Some(E::OrchestratorCompleted(_)) => "orchestratorCompleted",
            Some(E::EventRaised(_)) => "eventRaised",
            _ => "other",
        })
        .collect()
}

/// Runs one instance of a one-activity chain through a worker on `stream`.
async fn run_chain(
    client: &mut TaskHubSidecarServiceClient<Channel>,
    stream: &mut Streaming<proto::WorkItem>,
    id: &str,
) {
    client
        .start_instance(start("Chain", id, "\"ada\""))
        .await
        .unwrap();
    let first = next_item(stream).await;
    let Some(Item::OrchestratorRequest(request)) = &first.request else {
        panic!("first item is an episode");
    };
    assert!(request.past_events.is_empty());
    assert_eq!(
        event_names(&request.new_events),
        ["orchestratorStarted", "executionStarted"]
    );
    client
        .complete_orchestrator_task(answer(&first, vec![schedule(0, "Greet", "\"ada\"")]))
        .await
        .unwrap();
    let activity = next_item(stream).await;
    let Some(Item::ActivityRequest(request)) = &activity.request else {
        panic!("then the activity");
    };
    assert_eq!(request.name, "Greet");
    assert_eq!(request.input.as_deref(), Some("\"ada\""));
    client
        .complete_activity_task(proto::ActivityResponse {
            instance_id: id.into(),
            task_id: request.task_id,
            result: Some("\"Hello, ada\"".into()),
            failure_details: None,
            completion_token: activity.completion_token.clone(),
        })
        .await
        .unwrap();
    let second = next_item(stream).await;
    let Some(Item::OrchestratorRequest(request)) = &second.request else {
        panic!("then the second episode");
    };
    assert_eq!(
        event_names(&request.past_events),
        [
            "orchestratorStarted",
            "executionStarted",
            "taskScheduled",
            "orchestratorCompleted"
        ],
        "the second episode carries the full history"
    );
    assert_eq!(
        event_names(&request.new_events),
        ["orchestratorStarted", "taskCompleted"]
    );
    client
        .complete_orchestrator_task(answer(&second, vec![complete(1, "\"Hello, ada\"")]))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_streaming_worker_gets_the_past_by_count_and_fetches_exactly_that_many_events() {
    let mut h = harness().await;
    let mut stream = h
        .client
        .get_work_items(proto::GetWorkItemsRequest {
            capabilities: vec![proto::WorkerCapability::HistoryStreaming as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    h.client
        .start_instance(start("Chain", "streamed", "\"ada\""))
        .await
        .unwrap();
    let first = next_item(&mut stream).await;
    let Some(Item::OrchestratorRequest(request)) = &first.request else {
        panic!("first item is an episode");
    };
    assert!(
        !request.requires_history_streaming && request.properties.is_empty(),
        "a first episode has no past to stream"
    );
    h.client
        .complete_orchestrator_task(answer(&first, vec![schedule(0, "Greet", "\"ada\"")]))
        .await
        .unwrap();
    let activity = next_item(&mut stream).await;
    let Some(Item::ActivityRequest(task)) = &activity.request else {
        panic!("then the activity");
    };
    h.client
        .complete_activity_task(proto::ActivityResponse {
            instance_id: "streamed".into(),
            task_id: task.task_id,
            result: Some("\"Hello, ada\"".into()),
            completion_token: activity.completion_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let second = next_item(&mut stream).await;
    let Some(Item::OrchestratorRequest(request)) = &second.request else {
        panic!("then the second episode");
    };
    assert!(request.requires_history_streaming);
    assert!(
        request.past_events.is_empty(),
        "the past is streamed, not sent"
    );
    assert_eq!(
        durable_emu_grpc::mapping::streamed_past_event_count(request),
        Some(4),
        "the count of the past rides in the properties"
    );
    let fetched: Vec<proto::HistoryEvent> = {
        let mut chunks = h
            .client
            .stream_instance_history(proto::StreamInstanceHistoryRequest {
                instance_id: "streamed".into(),
                execution_id: request.execution_id.clone(),
                for_work_item_processing: true,
            })
            .await
            .unwrap()
            .into_inner();
        let mut events = Vec::new();
        while let Some(chunk) = chunks.message().await.unwrap() {
            events.extend(chunk.events);
        }
        events
    };
    assert_eq!(
        event_names(&fetched),
        [
            "orchestratorStarted",
            "executionStarted",
            "taskScheduled",
            "orchestratorCompleted"
        ],
        "exactly the history before the episode, as many events as the count said"
    );
    let sdk = durable_emu_grpc::mapping::orchestrator_request_from_wire(request).unwrap();
    assert_eq!((sdk.history_len, sdk.past_events.len()), (4, 0));
    h.client
        .complete_orchestrator_task(answer(&second, vec![complete(1, "\"Hello, ada\"")]))
        .await
        .unwrap();
    let done = h
        .client
        .wait_for_instance_completion(get("streamed", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        done.orchestration_state.unwrap().orchestration_status(),
        proto::OrchestrationStatus::Completed
    );
    assert_eq!(
        history_of(&mut h.client, "streamed").await.len(),
        4 + 2 + 2,
        "after the answer the history comes from the store, with the last episode in it"
    );
}

#[tokio::test]
async fn activity_answers_in_one_batch_are_recorded_together_and_each_is_acknowledged() {
    use durable_emu_grpc::batches::ActivityAnswers;
    use durable_emu_grpc::batches::worker_batches_client::WorkerBatchesClient;
    use prost::Message as _;

    // The plain sidecar does not say it serves batches; serve's (with them) does.
    let mut plain = harness().await;
    let opened = plain
        .client
        .get_work_items(proto::GetWorkItemsRequest::default())
        .await
        .unwrap();
    assert!(
        opened
            .metadata()
            .get(durable_emu_grpc::WORKER_BATCHES_METADATA)
            .is_none()
    );

    let mut h = support::harness_with_batches().await;
    let opened = h
        .client
        .get_work_items(proto::GetWorkItemsRequest::default())
        .await
        .unwrap();
    assert_eq!(
        opened
            .metadata()
            .get(durable_emu_grpc::WORKER_BATCHES_METADATA)
            .map(|value| value.to_str().unwrap()),
        Some("v1")
    );
    let mut stream = opened.into_inner();
    h.client
        .start_instance(start("FanOut", "batched", "3"))
        .await
        .unwrap();
    let first = next_item(&mut stream).await;
    h.client
        .complete_orchestrator_task(answer(
            &first,
            (0..3)
                .map(|i| schedule(i, "Square", &i.to_string()))
                .collect(),
        ))
        .await
        .unwrap();
    let mut activities = Vec::new();
    for _ in 0..3 {
        let item = next_item(&mut stream).await;
        let Some(Item::ActivityRequest(request)) = &item.request else {
            panic!("three activities");
        };
        activities.push(proto::ActivityResponse {
            instance_id: "batched".into(),
            task_id: request.task_id,
            result: Some((request.task_id * request.task_id).to_string()),
            completion_token: item.completion_token.clone(),
            ..Default::default()
        });
    }
    let stale = proto::ActivityResponse {
        completion_token: "no-such-token".into(),
        ..activities[0].clone()
    };
    let (send, answers) = tokio::sync::mpsc::channel(4);
    let mut acknowledgements = WorkerBatchesClient::new(h.channel.clone())
        .complete_activity_tasks(tokio_stream::wrappers::ReceiverStream::new(answers))
        .await
        .unwrap()
        .into_inner();
    send.send(ActivityAnswers {
        responses: vec![
            activities[0].encode_to_vec(),
            b"\xff\xff not a message".to_vec(),
            activities[1].encode_to_vec(),
        ],
    })
    .await
    .unwrap();
    let codes = |message: durable_emu_grpc::batches::Acknowledgements| {
        message
            .outcomes
            .iter()
            .map(|outcome| Code::from(outcome.code))
            .collect::<Vec<_>>()
    };
    let first_acks = acknowledgements.message().await.unwrap().unwrap();
    assert_eq!(
        codes(first_acks.clone()),
        [Code::Ok, Code::InvalidArgument, Code::Ok],
        "each answer on its own: {first_acks:?}"
    );
    assert!(first_acks.outcomes[1].message.contains("does not decode"));
    send.send(ActivityAnswers {
        responses: vec![stale.encode_to_vec(), activities[2].encode_to_vec()],
    })
    .await
    .unwrap();
    assert_eq!(
        codes(acknowledgements.message().await.unwrap().unwrap()),
        [Code::NotFound, Code::Ok],
        "a stale token is refused as CompleteActivityTask refuses it"
    );
    // A token already recorded is stale too: the unary call says so, and changes nothing.
    let again = h.client.complete_activity_task(activities[0].clone()).await;
    assert_eq!(again.unwrap_err().code(), Code::NotFound);
    let second = next_item(&mut stream).await;
    let Some(Item::OrchestratorRequest(request)) = &second.request else {
        panic!("then an episode");
    };
    assert_eq!(
        event_names(&request.new_events)
            .iter()
            .filter(|name| **name == "taskCompleted")
            .count(),
        2,
        "the first message's two answers were recorded together, so one episode has both"
    );
}

#[tokio::test]
async fn an_episodes_notes_reach_the_instance_with_its_answer_and_a_stale_token_is_refused() {
    use durable_emu_grpc::batches::EpisodeNotes;
    use durable_emu_grpc::batches::worker_batches_client::WorkerBatchesClient;

    let mut h = support::harness_with_batches().await;
    let mut stream = connect_worker(&mut h.client).await;
    h.client
        .start_instance(start("Approval", "noted", "null"))
        .await
        .unwrap();
    let first = next_item(&mut stream).await;
    let mut notes = WorkerBatchesClient::new(h.channel.clone());
    let refused = notes
        .note_episode(EpisodeNotes {
            completion_token: first.completion_token.clone(),
            logs_json: "not json".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("logsJson"), "{refused:?}");
    notes
        .note_episode(EpisodeNotes {
            completion_token: first.completion_token.clone(),
            awaited_events: vec!["Approved".into()],
            logs_json: r#"[{"level":"Info","message":"waiting for a person","timestamp":"2026-12-02T00:00:00Z"}]"#.into(),
            warnings: vec![],
        })
        .await
        .unwrap();
    let before = h.engine.handle().instance("noted").unwrap().unwrap();
    assert!(
        before.awaited_events.is_empty(),
        "nothing until the answer is recorded"
    );
    h.client
        .complete_orchestrator_task(answer(&first, vec![]))
        .await
        .unwrap();
    let record = h.engine.handle().instance("noted").unwrap().unwrap();
    assert_eq!(record.awaited_events, ["Approved"]);
    let stale = notes
        .note_episode(EpisodeNotes {
            completion_token: first.completion_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::NotFound, "the episode was answered");
}

#[tokio::test]
async fn a_chain_runs_through_a_worker_and_the_client_reads_it_with_and_without_payloads() {
    let mut h = harness().await;
    let mut stream = connect_worker(&mut h.client).await;
    run_chain(&mut h.client, &mut stream, "chain-1").await;

    let done = h
        .client
        .wait_for_instance_completion(get("chain-1", true))
        .await
        .unwrap()
        .into_inner();
    assert!(done.exists);
    let state = done.orchestration_state.unwrap();
    assert_eq!(
        state.orchestration_status(),
        proto::OrchestrationStatus::Completed
    );
    assert_eq!(state.output.as_deref(), Some("\"Hello, ada\""));
    assert_eq!(state.input.as_deref(), Some("\"ada\""));
    assert!(state.completed_timestamp.is_some());

    let bare = h
        .client
        .get_instance(get("chain-1", false))
        .await
        .unwrap()
        .into_inner();
    let state = bare.orchestration_state.unwrap();
    assert_eq!(state.name, "Chain");
    assert_eq!(state.input, None, "no payloads unless asked");
    assert_eq!(state.output, None);

    let history: Vec<proto::HistoryEvent> = {
        let mut chunks = h
            .client
            .stream_instance_history(proto::StreamInstanceHistoryRequest {
                instance_id: "chain-1".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut events = Vec::new();
        while let Some(chunk) = chunks.message().await.unwrap() {
            events.extend(chunk.events);
        }
        events
    };
    assert!(event_names(&history).contains(&"taskCompleted"));
    assert!(history.iter().any(|event| matches!(
        event.event_type,
        Some(proto::history_event::EventType::ExecutionCompleted(_))
    )));
}

#[tokio::test]
async fn unknown_instances_exist_false_and_commands_on_them_are_not_found() {
    let mut h = harness().await;
    let missing = h
        .client
        .get_instance(get("nobody", true))
        .await
        .unwrap()
        .into_inner();
    assert!(!missing.exists);
    let error = h
        .client
        .raise_event(proto::RaiseEventRequest {
            instance_id: "nobody".into(),
            name: "go".into(),
            input: None,
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound, "{error:?}");
    assert!(error.message().contains("nobody"), "{}", error.message());
    let error = h
        .client
        .terminate_instance(proto::TerminateRequest {
            instance_id: "nobody".into(),
            output: None,
            recursive: true,
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
}

#[tokio::test]
async fn malformed_requests_are_invalid_argument_and_name_the_field() {
    let mut h = harness().await;
    let error = h.client.get_instance(get("", false)).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("instanceId"),
        "{}",
        error.message()
    );

    let error = h
        .client
        .start_instance(start("Chain", "bad-input", "not json {"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("CreateInstanceRequest.input"),
        "{}",
        error.message()
    );
    let nothing = h
        .client
        .get_instance(get("bad-input", false))
        .await
        .unwrap()
        .into_inner();
    assert!(!nothing.exists, "a refused start creates nothing");

    let error = h
        .client
        .start_instance(start("", "x", "1"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("name"), "{}", error.message());
}

#[tokio::test]
async fn a_duplicate_id_is_already_exists_unless_the_reuse_policy_replaces_it() {
    let mut h = harness().await;
    h.client
        .start_instance(start("Chain", "dup", "1"))
        .await
        .unwrap();
    let error = h
        .client
        .start_instance(start("Chain", "dup", "2"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::AlreadyExists, "{error:?}");

    h.client
        .terminate_instance(proto::TerminateRequest {
            instance_id: "dup".into(),
            output: Some("\"stop\"".into()),
            recursive: false,
        })
        .await
        .unwrap();
    let state = h
        .client
        .wait_for_instance_completion(get("dup", true))
        .await
        .unwrap()
        .into_inner()
        .orchestration_state
        .unwrap();
    assert_eq!(
        state.orchestration_status(),
        proto::OrchestrationStatus::Terminated
    );
    let mut again = start("Chain", "dup", "3");
    again.orchestration_id_reuse_policy = Some(proto::OrchestrationIdReusePolicy {
        replaceable_status: vec![proto::OrchestrationStatus::Terminated as i32],
    });
    h.client.start_instance(again).await.unwrap();
    let state = h
        .client
        .get_instance(get("dup", true))
        .await
        .unwrap()
        .into_inner()
        .orchestration_state
        .unwrap();
    assert_eq!(state.input.as_deref(), Some("3"));
}

#[tokio::test]
async fn waits_end_at_the_callers_deadline_with_deadline_exceeded() {
    let mut h = harness().await;
    // No worker runs "Nobody", so the instance stays Pending.
    h.client
        .start_instance(start("Nobody", "parked", "null"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(get("parked", false));
    request.set_timeout(Duration::from_millis(300));
    let error = h.client.wait_for_instance_start(request).await.unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
    let mut request = tonic::Request::new(get("parked", false));
    request.set_timeout(Duration::from_millis(300));
    let error = h
        .client
        .wait_for_instance_completion(request)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
    let state = h
        .client
        .get_instance(get("parked", false))
        .await
        .unwrap()
        .into_inner()
        .orchestration_state
        .unwrap();
    assert_eq!(
        state.orchestration_status(),
        proto::OrchestrationStatus::Pending
    );
}

#[tokio::test]
async fn a_stale_or_unknown_token_is_not_found_and_changes_nothing() {
    let mut h = harness().await;
    let mut stream = connect_worker(&mut h.client).await;
    h.client
        .start_instance(start("Chain", "stale", "1"))
        .await
        .unwrap();
    let first = next_item(&mut stream).await;
    let mut wrong = answer(&first, vec![complete(0, "1")]);
    wrong.completion_token = "no-such-token".into();
    let error = h
        .client
        .complete_orchestrator_task(wrong)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound, "{error:?}");
    assert!(
        error.message().contains("no-such-token"),
        "{}",
        error.message()
    );
    let error = h
        .client
        .abandon_task_activity_work_item(proto::AbandonActivityTaskRequest {
            completion_token: "no-such-token".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    // The real token still works: nothing was consumed by the stale answer.
    h.client
        .complete_orchestrator_task(answer(&first, vec![complete(0, "1")]))
        .await
        .unwrap();
    let state = h
        .client
        .wait_for_instance_completion(get("stale", true))
        .await
        .unwrap()
        .into_inner()
        .orchestration_state
        .unwrap();
    assert_eq!(
        state.orchestration_status(),
        proto::OrchestrationStatus::Completed
    );
    // Completing again with the same (now used) token is stale.
    let error = h
        .client
        .complete_orchestrator_task(answer(&first, vec![complete(0, "1")]))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
}

#[tokio::test]
async fn an_action_id_already_used_is_refused_and_the_instance_fails_with_invalid_worker_response()
{
    let mut h = harness().await;
    let mut stream = connect_worker(&mut h.client).await;
    h.client
        .start_instance(start("Chain", "reuse", "1"))
        .await
        .unwrap();
    let first = next_item(&mut stream).await;
    h.client
        .complete_orchestrator_task(answer(&first, vec![schedule(0, "Greet", "1")]))
        .await
        .unwrap();
    let activity = next_item(&mut stream).await;
    let Some(Item::ActivityRequest(request)) = &activity.request else {
        panic!("activity expected");
    };
    h.client
        .complete_activity_task(proto::ActivityResponse {
            instance_id: "reuse".into(),
            task_id: request.task_id,
            result: Some("2".into()),
            failure_details: None,
            completion_token: activity.completion_token.clone(),
        })
        .await
        .unwrap();
    let second = next_item(&mut stream).await;
    // Id 0 is TaskScheduled already: scheduling another call with it breaks history.
    let error = h
        .client
        .complete_orchestrator_task(answer(&second, vec![schedule(0, "Other", "3")]))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    let state = h
        .client
        .wait_for_instance_completion(get("reuse", true))
        .await
        .unwrap()
        .into_inner()
        .orchestration_state
        .unwrap();
    assert_eq!(
        state.orchestration_status(),
        proto::OrchestrationStatus::Failed
    );
    assert_eq!(
        state.failure_details.unwrap().error_type,
        "InvalidWorkerResponse"
    );
}

#[tokio::test]
async fn a_worker_stream_dropped_mid_episode_gets_its_item_redelivered_under_a_new_token() {
    let mut h = harness().await;
    let mut first_worker = connect_worker(&mut h.client).await;
    h.client
        .start_instance(start("Chain", "redeliver", "1"))
        .await
        .unwrap();
    let lost = next_item(&mut first_worker).await;
    drop(first_worker);

    let mut second_worker = connect_worker(&mut h.client).await;
    let again = next_item(&mut second_worker).await;
    let (Some(Item::OrchestratorRequest(before)), Some(Item::OrchestratorRequest(after))) =
        (&lost.request, &again.request)
    else {
        panic!("both are episodes");
    };
    assert_eq!(before.instance_id, after.instance_id);
    assert_eq!(
        event_names(&before.new_events),
        event_names(&after.new_events)
    );
    assert_ne!(lost.completion_token, again.completion_token);

    let error = h
        .client
        .complete_orchestrator_task(answer(&lost, vec![complete(0, "1")]))
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Code::NotFound,
        "the old delivery is stale: {error:?}"
    );
    h.client
        .complete_orchestrator_task(answer(&again, vec![complete(0, "\"second\"")]))
        .await
        .unwrap();
    let state = h
        .client
        .wait_for_instance_completion(get("redeliver", true))
        .await
        .unwrap()
        .into_inner()
        .orchestration_state
        .unwrap();
    assert_eq!(state.output.as_deref(), Some("\"second\""));
}

#[tokio::test]
async fn abandon_gives_the_item_back_at_once() {
    let mut h = harness().await;
    let mut stream = connect_worker(&mut h.client).await;
    h.client
        .start_instance(start("Chain", "abandon", "1"))
        .await
        .unwrap();
    let first = next_item(&mut stream).await;
    h.client
        .abandon_task_orchestrator_work_item(proto::AbandonOrchestrationTaskRequest {
            completion_token: first.completion_token.clone(),
        })
        .await
        .unwrap();
    let again = next_item(&mut stream).await;
    assert_ne!(again.completion_token, first.completion_token);
    h.client
        .complete_orchestrator_task(answer(&again, vec![complete(0, "7")]))
        .await
        .unwrap();
}

#[tokio::test]
#[allow(deprecated)] // isPartial/chunkIndex: deprecated in the proto, still sent by .NET and Java
async fn a_chunked_answer_is_collected_and_applied_as_one() {
    let mut h = harness().await;
    let mut stream = connect_worker(&mut h.client).await;
    h.client
        .start_instance(start("Chain", "chunks", "1"))
        .await
        .unwrap();
    let first = next_item(&mut stream).await;
    let mut part = answer(&first, vec![schedule(0, "A", "1")]);
    part.is_partial = true;
    part.chunk_index = Some(0);
    h.client.complete_orchestrator_task(part).await.unwrap();
    let mut out_of_order = answer(&first, vec![schedule(5, "C", "1")]);
    out_of_order.is_partial = true;
    out_of_order.chunk_index = Some(3);
    let error = h
        .client
        .complete_orchestrator_task(out_of_order)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    let mut last = answer(&first, vec![schedule(1, "B", "2")]);
    last.chunk_index = Some(1);
    h.client.complete_orchestrator_task(last).await.unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        let item = next_item(&mut stream).await;
        let Some(Item::ActivityRequest(request)) = item.request else {
            panic!("activities of both chunks");
        };
        names.push(request.name);
    }
    names.sort();
    assert_eq!(names, ["A", "B"]);
}

#[tokio::test]
async fn filters_keep_work_from_workers_that_do_not_take_it() {
    let mut h = harness().await;
    let mut picky = h
        .client
        .get_work_items(proto::GetWorkItemsRequest {
            work_item_filters: Some(proto::WorkItemFilters {
                orchestrations: vec![proto::OrchestrationFilter {
                    name: "Wanted".into(),
                    versions: vec![],
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    h.client
        .start_instance(start("Unwanted", "u", "1"))
        .await
        .unwrap();
    h.client
        .start_instance(start("Wanted", "w", "1"))
        .await
        .unwrap();
    let item = next_item(&mut picky).await;
    let Some(Item::OrchestratorRequest(request)) = item.request else {
        panic!("an episode");
    };
    assert_eq!(request.instance_id, "w");
}

#[tokio::test]
async fn suspend_resume_terminate_and_purge_reach_the_engine() {
    let mut h = harness().await;
    let mut stream = connect_worker(&mut h.client).await;
    h.client
        .start_instance(start("Chain", "life", "1"))
        .await
        .unwrap();
    let first = next_item(&mut stream).await;
    // Running, waiting for an activity nobody will finish.
    h.client
        .complete_orchestrator_task(answer(&first, vec![schedule(0, "Slow", "1")]))
        .await
        .unwrap();
    h.client
        .suspend_instance(proto::SuspendRequest {
            instance_id: "life".into(),
            reason: Some("pause".into()),
        })
        .await
        .unwrap();
    // The suspension reaches the worker as an episode, like any message to the instance.
    let mut episode = next_item(&mut stream).await;
    while !matches!(episode.request, Some(Item::OrchestratorRequest(_))) {
        // The "Slow" activity item: left unfinished on purpose.
        episode = next_item(&mut stream).await;
    }
    h.client
        .complete_orchestrator_task(answer(&episode, vec![]))
        .await
        .unwrap();
    let state = h
        .client
        .get_instance(get("life", false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        state.orchestration_state.unwrap().orchestration_status(),
        proto::OrchestrationStatus::Suspended
    );
    h.client
        .resume_instance(proto::ResumeRequest {
            instance_id: "life".into(),
            reason: None,
        })
        .await
        .unwrap();
    let error = h
        .client
        .purge_instances(proto::PurgeInstancesRequest {
            request: Some(proto::purge_instances_request::Request::InstanceId(
                "life".into(),
            )),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Code::FailedPrecondition,
        "a running instance is not purged"
    );
    h.client
        .terminate_instance(proto::TerminateRequest {
            instance_id: "life".into(),
            output: None,
            recursive: true,
        })
        .await
        .unwrap();
    // The worker sees the termination as an episode and ends the execution, as the SDKs do.
    let mut episode = next_item(&mut stream).await;
    while !matches!(episode.request, Some(Item::OrchestratorRequest(_))) {
        episode = next_item(&mut stream).await;
    }
    let mut terminated = complete(1, "null");
    if let Some(proto::orchestrator_action::OrchestratorActionType::CompleteOrchestration(done)) =
        &mut terminated.orchestrator_action_type
    {
        done.orchestration_status = proto::OrchestrationStatus::Terminated as i32;
    }
    h.client
        .complete_orchestrator_task(answer(&episode, vec![terminated]))
        .await
        .unwrap();
    let mut request = tonic::Request::new(get("life", false));
    request.set_timeout(Duration::from_secs(10));
    let ended = h
        .client
        .wait_for_instance_completion(request)
        .await
        .unwrap();
    assert_eq!(
        ended
            .into_inner()
            .orchestration_state
            .unwrap()
            .orchestration_status(),
        proto::OrchestrationStatus::Terminated
    );
    let purged = h
        .client
        .purge_instances(proto::PurgeInstancesRequest {
            request: Some(proto::purge_instances_request::Request::InstanceId(
                "life".into(),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(purged.deleted_instance_count, 1);
    assert!(
        !h.client
            .get_instance(get("life", false))
            .await
            .unwrap()
            .into_inner()
            .exists
    );
}

#[tokio::test]
async fn query_instances_pages_through_every_instance_once() {
    let mut h = harness().await;
    for i in 0..7 {
        h.client
            .start_instance(start("Nobody", &format!("q-{i}"), "1"))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = h
            .client
            .query_instances(proto::QueryInstancesRequest {
                query: Some(proto::InstanceQuery {
                    max_instance_count: 3,
                    continuation_token: token.clone(),
                    instance_id_prefix: Some("q-".into()),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.orchestration_state.len() <= 3);
        seen.extend(
            page.orchestration_state
                .into_iter()
                .map(|state| state.instance_id),
        );
        token = page.continuation_token;
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, (0..7).map(|i| format!("q-{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn hello_answers() {
    let mut h = harness().await;
    h.client.hello(()).await.unwrap();
}

/// Ten workers connect at once (each its own work-item stream on one channel); twenty instances
/// spread over them, each worker answering whatever it is handed, and every instance completes
/// exactly once with its own result.
#[tokio::test]
async fn ten_workers_connecting_at_once_share_the_work_and_every_instance_completes_once() {
    let h = harness().await;
    let mut streams = futures::future::join_all((0..10).map(|_| {
        let mut client = h.client.clone();
        async move { connect_worker(&mut client).await }
    }))
    .await;
    let mut workers = tokio::task::JoinSet::new();
    for mut stream in streams.drain(..) {
        let mut client = h.client.clone();
        workers.spawn(async move {
            let mut handled = 0usize;
            while let Ok(Some(item)) = stream.message().await {
                match &item.request {
                    Some(Item::OrchestratorRequest(request)) => {
                        let history: Vec<_> = request
                            .past_events
                            .iter()
                            .chain(&request.new_events)
                            .collect();
                        let input = history.iter().find_map(|event| match &event.event_type {
                            Some(proto::history_event::EventType::ExecutionStarted(started)) => {
                                started.input.clone()
                            }
                            _ => None,
                        });
                        let result = history.iter().find_map(|event| match &event.event_type {
                            Some(proto::history_event::EventType::TaskCompleted(done)) => {
                                done.result.clone()
                            }
                            _ => None,
                        });
                        let actions = match result {
                            None => vec![schedule(0, "Greet", &input.unwrap())],
                            Some(result) => vec![complete(1, &result)],
                        };
                        client
                            .complete_orchestrator_task(answer(&item, actions))
                            .await
                            .unwrap();
                        handled += 1;
                    }
                    Some(Item::ActivityRequest(request)) => {
                        let name: String =
                            serde_json::from_str(request.input.as_deref().unwrap()).unwrap();
                        client
                            .complete_activity_task(proto::ActivityResponse {
                                instance_id: request
                                    .orchestration_instance
                                    .as_ref()
                                    .map(|instance| instance.instance_id.clone())
                                    .unwrap(),
                                task_id: request.task_id,
                                result: Some(format!("\"Hello, {name}\"")),
                                failure_details: None,
                                completion_token: item.completion_token.clone(),
                            })
                            .await
                            .unwrap();
                        handled += 1;
                    }
                    _ => {}
                }
            }
            handled
        });
    }
    let mut client = h.client.clone();
    for n in 0..20 {
        client
            .start_instance(start("Chain", &format!("many-{n}"), &format!("\"w{n}\"")))
            .await
            .unwrap();
    }
    for n in 0..20 {
        let mut wait = tonic::Request::new(get(&format!("many-{n}"), true));
        wait.set_timeout(Duration::from_secs(30));
        let state = client
            .wait_for_instance_completion(wait)
            .await
            .unwrap()
            .into_inner()
            .orchestration_state
            .unwrap();
        assert_eq!(
            state.orchestration_status,
            proto::OrchestrationStatus::Completed as i32,
            "many-{n}"
        );
        assert_eq!(
            state.output.as_deref(),
            Some(format!("\"Hello, w{n}\"").as_str()),
            "many-{n}'s own result"
        );
        let history = history_of(&mut client, &format!("many-{n}")).await;
        let completed = history
            .iter()
            .filter(|event| {
                matches!(
                    event.event_type,
                    Some(proto::history_event::EventType::ExecutionCompleted(_))
                )
            })
            .count();
        assert_eq!(completed, 1, "many-{n} completes exactly once");
    }
    workers.abort_all();
}

async fn history_of(
    client: &mut TaskHubSidecarServiceClient<Channel>,
    id: &str,
) -> Vec<proto::HistoryEvent> {
    let mut stream = client
        .stream_instance_history(proto::StreamInstanceHistoryRequest {
            instance_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        events.extend(chunk.events);
    }
    events
}
