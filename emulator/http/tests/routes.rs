//! The HTTP API's routes, driven with `tower::ServiceExt::oneshot` on the axum router (no
//! socket), over an in-memory engine with the built-in samples: every status code the API
//! answers with, the payload shapes, the key and the limits.
// Test helpers panic on setup failures, which is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use durable_emu_engine::engine::Engine;
use durable_emu_engine::export::{InstanceExport, InstanceStatus};
use durable_emu_http::{CONTINUATION_HEADER, HttpConfig, KEY_HEADER, router};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tower::ServiceExt;

const BASE: &str = "/runtime/webhooks/durabletask";
const RPC: &str = "/durabletask";

struct Api {
    app: Router,
    _engine: Engine,
}

/// The API over a fresh engine whose virtual clock does not skip timers on its own (so an
/// `ApprovalWorkflow` waits for its event instead of escalating at once).
fn api(config: HttpConfig) -> Api {
    let mut engine_config = durable_emu_testing::engine::samples_config();
    engine_config.auto_skip = false;
    let engine = Engine::start(engine_config).unwrap();
    Api {
        app: router(engine.handle().asynchronous(), config),
        _engine: engine,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Api {
    async fn call(&self, method: &str, uri: &str, body: &str) -> Answer {
        self.call_with(method, uri, body, &[]).await
    }

    async fn call_with(
        &self,
        method: &str,
        uri: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "localhost:7071");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body.to_string())).unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                panic!("{method} {uri}: body is not JSON ({error}): {bytes:?}")
            })
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn start(&self, name: &str, id: &str, input: &str) -> Answer {
        let answer = self
            .call("POST", &format!("{BASE}/orchestrators/{name}/{id}"), input)
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
        answer
    }

    /// Polls the status until it is no longer 202.
    async fn finished(&self, id: &str, query: &str) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self
                .call("GET", &format!("{BASE}/instances/{id}{query}"), "")
                .await;
            if answer.status != StatusCode::ACCEPTED {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "{id} did not finish: {:?}",
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls the status until the instance waits for an event (its custom status is set).
    async fn waiting(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self
                .call("GET", &format!("{BASE}/instances/{id}"), "")
                .await;
            if !answer.body["customStatus"].is_null() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never waited: {:?}",
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The API over an engine where every `SayHello` call fails, so `HelloSequence` fails.
fn failing_api() -> Api {
    let mut engine_config = durable_emu_testing::engine::samples_config();
    engine_config.faults = vec![
        durable_emu_engine::faults::parse_compact("activity=SayHello,error=Boom:no greeting", 1)
            .unwrap(),
    ];
    let engine = Engine::start(engine_config).unwrap();
    Api {
        app: router(engine.handle().asynchronous(), HttpConfig::default()),
        _engine: engine,
    }
}

fn approval_input() -> &'static str {
    r#"{"request": "laptop", "timeout_hours": 24}"#
}

#[tokio::test]
async fn start_is_202_with_location_and_every_management_uri_under_both_base_paths() {
    let api = api(HttpConfig::default());
    for base in [BASE, RPC] {
        let answer = api
            .call("POST", &format!("{base}/orchestrators/HelloSequence"), "")
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        let id = answer.body["id"].as_str().unwrap();
        let status_uri = format!("http://localhost:7071{base}/instances/{id}");
        assert_eq!(answer.headers["location"], status_uri.as_str());
        assert_eq!(answer.body["statusQueryGetUri"], status_uri.as_str());
        assert_eq!(
            answer.body["sendEventPostUri"],
            format!("{status_uri}/raiseEvent/{{eventName}}").as_str()
        );
        for (field, tail) in [
            ("terminatePostUri", "/terminate?reason={text}"),
            ("purgeHistoryDeleteUri", ""),
            ("restartPostUri", "/restart"),
            ("suspendPostUri", "/suspend?reason={text}"),
            ("resumePostUri", "/resume?reason={text}"),
        ] {
            assert_eq!(
                answer.body[field],
                format!("{status_uri}{tail}").as_str(),
                "{field}"
            );
        }
    }
}

#[tokio::test]
async fn start_with_an_instance_id_uses_it_replaces_an_ended_one_and_a_running_one_is_409() {
    let api = api(HttpConfig::default());
    let answer = api.start("HelloSequence", "mine", "").await;
    assert_eq!(answer.body["id"], "mine");
    api.finished("mine", "").await;
    api.start("ApprovalWorkflow", "mine", approval_input())
        .await;
    api.waiting("mine").await;
    let again = api
        .call(
            "POST",
            &format!("{BASE}/orchestrators/HelloSequence/mine"),
            "",
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
}

#[tokio::test]
async fn start_of_an_unknown_name_or_with_a_malformed_body_is_400_with_a_json_message() {
    let api = api(HttpConfig::default());
    let unknown = api
        .call("POST", &format!("{BASE}/orchestrators/NoSuchThing"), "")
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.body["ExceptionMessage"]
            .as_str()
            .unwrap()
            .contains("NoSuchThing")
    );
    let malformed = api
        .call(
            "POST",
            &format!("{BASE}/orchestrators/HelloSequence"),
            "{not json",
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(
        malformed.body["Message"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
}

#[tokio::test]
async fn a_double_encoded_input_as_the_python_client_sends_it_is_taken_as_the_json_inside() {
    let api = api(HttpConfig::default());
    let double = serde_json::to_string(approval_input()).unwrap();
    api.start("ApprovalWorkflow", "double", &double).await;
    let status = api
        .call("GET", &format!("{BASE}/instances/double"), "")
        .await;
    assert_eq!(
        status.body["input"],
        json!({"request": "laptop", "timeout_hours": 24})
    );
    let plain = json!("just text");
    api.start("HelloSequence", "plain", &plain.to_string())
        .await;
    let status = api
        .call("GET", &format!("{BASE}/instances/plain"), "")
        .await;
    assert_eq!(
        status.body["input"], plain,
        "a string that is not JSON stays a string"
    );
}

#[tokio::test]
async fn status_is_202_with_location_and_retry_after_while_running_and_200_once_ended() {
    let api = api(HttpConfig::default());
    api.start("ApprovalWorkflow", "ask", approval_input()).await;
    api.waiting("ask").await;
    let running = api
        .call("GET", &format!("{BASE}/instances/ask?showInput=false"), "")
        .await;
    assert_eq!(running.status, StatusCode::ACCEPTED);
    assert_eq!(running.body["runtimeStatus"], "Running");
    assert_eq!(
        running.body["input"],
        Value::Null,
        "showInput=false hides the input"
    );
    assert_eq!(
        running.headers["location"],
        "http://localhost:7071/runtime/webhooks/durabletask/instances/ask?showInput=false"
    );
    assert_eq!(running.headers["retry-after"], "1");
    let raised = api
        .call(
            "POST",
            &format!("{BASE}/instances/ask/raiseEvent/Approval"),
            "true",
        )
        .await;
    assert_eq!(raised.status, StatusCode::ACCEPTED);
    let done = api.finished("ask", "").await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.body["runtimeStatus"], "Completed");
    assert_eq!(done.body["output"], "Approved");
    assert_eq!(done.body["name"], "ApprovalWorkflow");
    assert_eq!(done.body["instanceId"], "ask");
    let created = done.body["createdTime"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    assert!(done.body.get("historyEvents").is_none());
}

#[tokio::test]
async fn status_of_an_unknown_instance_is_404() {
    let api = api(HttpConfig::default());
    let answer = api
        .call("GET", &format!("{BASE}/instances/nobody"), "")
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let bad_flag = api
        .call(
            "GET",
            &format!("{BASE}/instances/nobody?showHistory=maybe"),
            "",
        )
        .await;
    assert_eq!(bad_flag.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn history_merges_scheduled_events_into_completions_and_shows_results_only_when_asked() {
    let api = api(HttpConfig::default());
    api.start("HelloSequence", "hello", "").await;
    let done = api.finished("hello", "?showHistory=true").await;
    let events = done.body["historyEvents"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|event| event["EventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskCompleted",
            "TaskCompleted",
            "TaskCompleted",
            "ExecutionCompleted"
        ]
    );
    assert_eq!(events[0]["FunctionName"], "HelloSequence");
    assert_eq!(
        done.body["history"], done.body["historyEvents"],
        "the Python client reads `history`"
    );
    let first = &events[1];
    assert_eq!(first["FunctionName"], "SayHello");
    assert!(first["ScheduledTime"].is_string());
    assert!(first["Timestamp"].is_string());
    assert!(first.get("Result").is_none(), "{first}");
    assert!(first.get("EventId").is_none());
    assert!(events[4].get("Result").is_none());
    assert_eq!(events[4]["OrchestrationStatus"], "Completed");

    let with_output = api
        .call(
            "GET",
            &format!("{BASE}/instances/hello?showHistory=true&showHistoryOutput=true"),
            "",
        )
        .await;
    let events = with_output.body["historyEvents"].as_array().unwrap();
    assert!(events[1]["Result"].as_str().unwrap().contains("Tokyo"));
    assert_eq!(events[4]["Result"], with_output.body["output"]);
}

#[tokio::test]
async fn listing_filters_by_status_time_and_prefix_and_pages_with_the_continuation_header() {
    let api = api(HttpConfig::default());
    for id in ["batch-1", "batch-2", "batch-3", "other"] {
        api.start("HelloSequence", id, "").await;
        api.finished(id, "").await;
    }
    api.start("ApprovalWorkflow", "batch-waiting", approval_input())
        .await;
    api.waiting("batch-waiting").await;

    let all = api.call("GET", &format!("{BASE}/instances"), "").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body.as_array().unwrap().len(), 5);
    let slash = api.call("GET", &format!("{RPC}/instances/"), "").await;
    assert_eq!(
        slash.body, all.body,
        "the Python client's `instances/` lists the same"
    );

    let completed = api
        .call(
            "GET",
            &format!("{BASE}/instances?runtimeStatus=Completed&instanceIdPrefix=batch-"),
            "",
        )
        .await;
    let ids: Vec<&str> = completed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|status| status["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["batch-1", "batch-2", "batch-3"]);

    let future = api
        .call(
            "GET",
            &format!("{BASE}/instances?createdTimeFrom=9000-01-01T00:00:00Z"),
            "",
        )
        .await;
    assert_eq!(future.body, json!([]));

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let headers: Vec<(&str, &str)> = token
            .as_deref()
            .map(|token| vec![(CONTINUATION_HEADER, token)])
            .unwrap_or_default();
        let page = api
            .call_with("GET", &format!("{BASE}/instances?top=2"), "", &headers)
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.as_array().unwrap().len() <= 2);
        seen.extend(page.body.as_array().unwrap().iter().cloned());
        match page.headers.get(CONTINUATION_HEADER) {
            Some(next) => token = Some(next.to_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "the pages hold every instance once");

    let bad_status = api
        .call(
            "GET",
            &format!("{BASE}/instances?runtimeStatus=Sleeping"),
            "",
        )
        .await;
    assert_eq!(bad_status.status, StatusCode::BAD_REQUEST);
    let bad_time = api
        .call(
            "GET",
            &format!("{BASE}/instances?createdTimeFrom=yesterday"),
            "",
        )
        .await;
    assert_eq!(bad_time.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn raise_event_is_404_for_an_unknown_instance_410_for_an_ended_one_and_400_for_a_non_json_body()
 {
    let api = api(HttpConfig::default());
    let unknown = api
        .call(
            "POST",
            &format!("{BASE}/instances/nobody/raiseEvent/Approval"),
            "true",
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    api.start("HelloSequence", "ended", "").await;
    api.finished("ended", "").await;
    let gone = api
        .call(
            "POST",
            &format!("{BASE}/instances/ended/raiseEvent/Approval"),
            "true",
        )
        .await;
    assert_eq!(gone.status, StatusCode::GONE);
    let not_json = api
        .call(
            "POST",
            &format!("{BASE}/instances/ended/raiseEvent/Approval"),
            "yes!",
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn terminate_suspend_resume_rewind_and_restart_answer_202_404_410_and_400() {
    let api = api(HttpConfig::default());
    api.start("ApprovalWorkflow", "held", approval_input())
        .await;
    api.waiting("held").await;
    let at = |action: &str| format!("{BASE}/instances/held/{action}");

    assert_eq!(
        api.call("POST", &at("suspend?reason=wait"), "")
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let suspended = api.call("GET", &format!("{BASE}/instances/held"), "").await;
    assert_eq!(suspended.status, StatusCode::ACCEPTED);
    assert_eq!(suspended.body["runtimeStatus"], "Suspended");
    assert_eq!(
        api.call("POST", &at("resume"), "").await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        api.call("POST", &at("rewind"), "").await.status,
        StatusCode::GONE,
        "only a failed instance rewinds"
    );
    assert_eq!(
        api.call("POST", &at("terminate"), "not json").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.call("POST", &at("terminate?reason=enough"), "")
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let ended = api.finished("held", "").await;
    assert_eq!(ended.status, StatusCode::OK);
    assert_eq!(ended.body["runtimeStatus"], "Terminated");
    assert_eq!(ended.body["output"], "enough");
    assert_eq!(
        api.call("POST", &at("terminate"), "").await.status,
        StatusCode::GONE
    );
    assert_eq!(
        api.call("POST", &at("suspend"), "").await.status,
        StatusCode::GONE
    );

    let restarted = api.call("POST", &at("restart"), "").await;
    assert_eq!(restarted.status, StatusCode::ACCEPTED);
    let new_id = restarted.body["id"].as_str().unwrap();
    assert_ne!(new_id, "held");
    assert!(
        restarted.headers["location"]
            .to_str()
            .unwrap()
            .ends_with(new_id)
    );
    let same = api
        .call("POST", &at("restart?restartWithNewInstanceId=false"), "")
        .await;
    assert_eq!(same.status, StatusCode::ACCEPTED);
    assert_eq!(same.body["id"], "held");

    for action in ["terminate", "suspend", "resume", "rewind", "restart"] {
        let unknown = api
            .call("POST", &format!("{BASE}/instances/nobody/{action}"), "")
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{action}");
    }
    let no_such_action = api.call("POST", &at("explode"), "").await;
    assert_eq!(no_such_action.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_purges_one_instance_or_a_filtered_set_answering_200_with_the_count_or_404() {
    let api = api(HttpConfig::default());
    for id in ["a", "b", "c"] {
        api.start("HelloSequence", id, "").await;
        api.finished(id, "").await;
    }
    let one = api.call("DELETE", &format!("{BASE}/instances/a"), "").await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body, json!({"instancesDeleted": 1}));
    let again = api.call("DELETE", &format!("{BASE}/instances/a"), "").await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let none = api
        .call(
            "DELETE",
            &format!("{BASE}/instances?runtimeStatus=Failed"),
            "",
        )
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let rest = api
        .call(
            "DELETE",
            &format!(
                "{BASE}/instances?createdTimeFrom=2000-01-01T00:00:00Z&runtimeStatus=Completed"
            ),
            "",
        )
        .await;
    assert_eq!(rest.status, StatusCode::OK);
    assert_eq!(rest.body, json!({"instancesDeleted": 2}));
}

#[tokio::test]
async fn entities_are_signalled_read_and_listed() {
    let api = api(HttpConfig::default());
    let signal = api
        .call("POST", &format!("{BASE}/entities/Counter/k1?op=add"), "5")
        .await;
    assert_eq!(signal.status, StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let answer = api
            .call("GET", &format!("{BASE}/entities/Counter/k1"), "")
            .await;
        if answer.status == StatusCode::OK {
            break answer.body;
        }
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert!(Instant::now() < deadline, "the signal never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(state, json!(5));

    let listed = api
        .call("GET", &format!("{BASE}/entities?fetchState=true"), "")
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.body,
        json!([{"entityId": {"name": "counter", "key": "k1"},
                "lastOperationTime": listed.body[0]["lastOperationTime"], "state": 5}])
    );
    let by_name = api
        .call("GET", &format!("{BASE}/entities/counter"), "")
        .await;
    assert_eq!(by_name.body.as_array().unwrap().len(), 1);
    let other_name = api.call("GET", &format!("{BASE}/entities/timer"), "").await;
    assert_eq!(other_name.body, json!([]));

    let unknown = api
        .call("GET", &format!("{BASE}/entities/Counter/nobody"), "")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let no_op = api
        .call("POST", &format!("{BASE}/entities/Counter/k1"), "1")
        .await;
    assert_eq!(no_op.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_unknown_route_is_404_with_json() {
    let api = api(HttpConfig::default());
    for uri in ["/", "/api/whatever", &format!("{BASE}/nothing/here")] {
        let answer = api.call("GET", uri, "").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(answer.body["Message"].is_string(), "{uri}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_with_json() {
    let api = api(HttpConfig {
        key: None,
        body_limit: 64,
    });
    let big = json!({"request": "x".repeat(200), "timeout_hours": 1}).to_string();
    let answer = api
        .call(
            "POST",
            &format!("{BASE}/orchestrators/ApprovalWorkflow"),
            &big,
        )
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.body["Message"].is_string());
}

#[tokio::test]
async fn with_a_key_every_call_needs_code_or_the_functions_key_header_else_401() {
    let api = api(HttpConfig {
        key: Some("s3cret".into()),
        ..HttpConfig::default()
    });
    let uri = format!("{BASE}/instances");
    assert_eq!(
        api.call("GET", &uri, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.call("GET", "/nowhere", "").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.call("GET", &format!("{uri}?code=wrong"), "")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.call("GET", &format!("{uri}?code=s3cret"), "")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.call_with("GET", &uri, "", &[(KEY_HEADER, "s3cret")])
            .await
            .status,
        StatusCode::OK
    );
    let started = api
        .call_with(
            "POST",
            &format!("{BASE}/orchestrators/HelloSequence"),
            "",
            &[(KEY_HEADER, "s3cret")],
        )
        .await;
    assert!(
        started.body["statusQueryGetUri"]
            .as_str()
            .unwrap()
            .ends_with("?code=s3cret"),
        "the URIs handed out carry the key"
    );
    assert!(
        started.body["terminatePostUri"]
            .as_str()
            .unwrap()
            .ends_with("&code=s3cret")
    );
}

#[tokio::test]
async fn a_failed_instance_is_200_or_500_when_asked_and_rewinding_it_is_202() {
    let api = failing_api();
    api.start("HelloSequence", "broken", "").await;
    let failed = api.finished("broken", "").await;
    assert_eq!(failed.status, StatusCode::OK);
    assert_eq!(failed.body["runtimeStatus"], "Failed");
    assert!(
        failed.body["output"]
            .as_str()
            .unwrap()
            .contains("no greeting"),
        "{:?}",
        failed.body
    );
    assert!(
        failed.body["failureDetails"]["errorType"].is_string(),
        "{:?}",
        failed.body
    );
    let as_500 = api
        .call(
            "GET",
            &format!("{BASE}/instances/broken?returnInternalServerErrorOnFailure=true"),
            "",
        )
        .await;
    assert_eq!(as_500.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(as_500.body["runtimeStatus"], "Failed");
    let history = api
        .call(
            "GET",
            &format!("{BASE}/instances/broken?showHistory=true"),
            "",
        )
        .await;
    let failed_call = history.body["historyEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["EventType"] == "TaskFailed")
        .unwrap()
        .clone();
    assert_eq!(failed_call["FunctionName"], "SayHello");
    let rewound = api
        .call(
            "POST",
            &format!("{BASE}/instances/broken/rewind?reason=retry"),
            "",
        )
        .await;
    assert_eq!(rewound.status, StatusCode::ACCEPTED, "{:?}", rewound.body);
}

#[tokio::test]
async fn deleting_an_instance_that_still_runs_is_410_and_keeps_it() {
    let api = api(HttpConfig::default());
    api.start("ApprovalWorkflow", "busy", approval_input())
        .await;
    api.waiting("busy").await;
    let refused = api
        .call("DELETE", &format!("{BASE}/instances/busy"), "")
        .await;
    assert_eq!(refused.status, StatusCode::GONE, "{:?}", refused.body);
    let still = api.call("GET", &format!("{BASE}/instances/busy"), "").await;
    assert_eq!(still.status, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_clients_each_start_one_and_poll_it_to_the_end_none_lost() {
    let api = std::sync::Arc::new(api(HttpConfig::default()));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..200 {
        let api = api.clone();
        clients.spawn(async move {
            let id = format!("client-{client}");
            api.start("HelloSequence", &id, "").await;
            let done = api.finished(&id, "").await;
            assert_eq!(done.status, StatusCode::OK);
            assert_eq!(done.body["runtimeStatus"], "Completed");
            id
        });
    }
    let mut finished = Vec::new();
    while let Some(id) = clients.join_next().await {
        finished.push(id.unwrap());
    }
    assert_eq!(finished.len(), 200);
    let listed = api
        .call(
            "GET",
            &format!("{BASE}/instances?runtimeStatus=Completed&top=1000"),
            "",
        )
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 200);
}

// ----- durable-emu's private routes (`/durable-emu/v1`) ------------------------------------------

const PRIVATE: &str = durable_emu_http::PRIVATE_BASE;

/// Polls `GET {PRIVATE}/instances/{id}` until the instance has ended.
async fn private_finished(api: &Api, id: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = api
            .call("GET", &format!("{PRIVATE}/instances/{id}"), "")
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        let status = answer.body["runtimeStatus"].as_str().unwrap().to_string();
        if ["Completed", "Failed", "Terminated", "Canceled"].contains(&status.as_str()) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{id} did not end: {:?}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_private_status_is_the_engines_own_with_every_execution_and_404_for_an_unknown_id() {
    let api = api(HttpConfig::default());
    api.start(
        "PeriodicCleanup",
        "cleanup",
        r#"{"iterations": 2, "interval_hours": 0}"#,
    )
    .await;
    let ended = private_finished(&api, "cleanup").await;
    let handle = api._engine.handle();
    let record = handle.instance("cleanup").unwrap().unwrap();
    let executions = handle.history("cleanup").unwrap();
    assert_eq!(executions.len(), 3, "continue-as-new made three executions");
    assert_eq!(
        ended.body,
        serde_json::to_value(InstanceStatus::from_record(&record, None)).unwrap()
    );
    assert!(ended.body["executionId"].is_string());

    let with_history = api
        .call(
            "GET",
            &format!("{PRIVATE}/instances/cleanup?history=true"),
            "",
        )
        .await;
    assert_eq!(with_history.status, StatusCode::OK);
    assert_eq!(
        with_history.body,
        serde_json::to_value(InstanceStatus::from_record(&record, Some(&executions))).unwrap(),
        "every execution's events, exactly as the database path prints them"
    );
    let events: usize = executions
        .iter()
        .map(|execution| execution.events.len())
        .sum();
    assert_eq!(
        with_history.body["historyEvents"].as_array().unwrap().len(),
        events
    );

    let unknown = api
        .call("GET", &format!("{PRIVATE}/instances/nobody"), "")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body["Message"].as_str().unwrap().contains("nobody"));
    let bad_flag = api
        .call(
            "GET",
            &format!("{PRIVATE}/instances/cleanup?history=maybe"),
            "",
        )
        .await;
    assert_eq!(bad_flag.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_private_list_is_every_instance_newest_first_filtered_by_status() {
    let api = api(HttpConfig::default());
    api.start("ApprovalWorkflow", "waits", approval_input())
        .await;
    api.start("HelloSequence", "hello", "").await;
    private_finished(&api, "hello").await;
    let all = api.call("GET", &format!("{PRIVATE}/instances"), "").await;
    assert_eq!(all.status, StatusCode::OK);
    let records = api._engine.handle().instances().unwrap();
    let expected: Vec<InstanceStatus> = records
        .iter()
        .map(|record| InstanceStatus::from_record(record, None))
        .collect();
    assert_eq!(all.body, serde_json::to_value(&expected).unwrap());
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    let completed = api
        .call(
            "GET",
            &format!("{PRIVATE}/instances?runtimeStatus=Completed"),
            "",
        )
        .await;
    let ids: Vec<&str> = completed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|status| status["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hello"]);
    let bad = api
        .call(
            "GET",
            &format!("{PRIVATE}/instances?runtimeStatus=Sleeping"),
            "",
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn export_and_import_round_trip_an_instance_and_a_bad_export_is_400() {
    let source = api(HttpConfig::default());
    source.start("HelloSequence", "hello", "").await;
    private_finished(&source, "hello").await;
    let exported = source
        .call("GET", &format!("{PRIVATE}/instances/hello/export"), "")
        .await;
    assert_eq!(exported.status, StatusCode::OK);
    let handle = source._engine.handle();
    let record = handle.instance("hello").unwrap().unwrap();
    let executions = handle.history("hello").unwrap();
    assert_eq!(
        exported.body,
        serde_json::to_value(InstanceExport::new(&record, &executions)).unwrap()
    );
    let missing = source
        .call("GET", &format!("{PRIVATE}/instances/nobody/export"), "")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let target = api(HttpConfig::default());
    let text = exported.body.to_string();
    let imported = target
        .call("POST", &format!("{PRIVATE}/import"), &text)
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{:?}", imported.body);
    assert_eq!(imported.body, json!({"instanceId": "hello"}));
    let copied = target
        .call("GET", &format!("{PRIVATE}/instances/hello/export"), "")
        .await;
    assert_eq!(
        copied.body, exported.body,
        "the import is the exported instance"
    );
    let again = target
        .call("POST", &format!("{PRIVATE}/import"), &text)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);

    for bad in [
        "",
        "{not json",
        r#"{"format": "something-else", "instance": {}, "executions": []}"#,
    ] {
        let refused = target.call("POST", &format!("{PRIVATE}/import"), bad).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(refused.body["Message"].is_string(), "{bad}");
    }
    assert_eq!(target._engine.handle().instances().unwrap().len(), 1);
}

#[tokio::test]
async fn private_entity_routes_signal_read_and_list_in_the_engines_shape() {
    let api = api(HttpConfig::default());
    let signalled = api
        .call(
            "POST",
            &format!("{PRIVATE}/entities/%40Counter%40k1/signal?op=add"),
            "5",
        )
        .await;
    assert_eq!(
        signalled.status,
        StatusCode::ACCEPTED,
        "{:?}",
        signalled.body
    );
    let request = signalled.body["requestId"].as_str().unwrap().to_string();
    assert_eq!(signalled.body["scheduledTime"], Value::Null);
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let answer = api
            .call("GET", &format!("{PRIVATE}/entities/%40counter%40k1"), "")
            .await;
        if answer.status == StatusCode::OK && answer.body["operations"][0]["requestId"] == request {
            break answer.body;
        }
        assert!(Instant::now() < deadline, "the signal never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let handle = api._engine.handle();
    let entity = handle.entity("@counter@k1", true).unwrap().unwrap();
    let operations = handle.entity_operations("@counter@k1", 100).unwrap();
    assert_eq!(
        got,
        json!({"entity": serde_json::to_value(&entity).unwrap(),
               "operations": serde_json::to_value(&operations).unwrap()})
    );
    assert_eq!(got["entity"]["state"], json!(5));

    let listed = api
        .call(
            "GET",
            &format!("{PRIVATE}/entities?state=true&prefix=%40counter%40"),
            "",
        )
        .await;
    assert_eq!(listed.body, json!([serde_json::to_value(&entity).unwrap()]));
    let none = api
        .call("GET", &format!("{PRIVATE}/entities?prefix=%40timer%40"), "")
        .await;
    assert_eq!(none.body, json!([]));

    let later = api
        .call(
            "POST",
            &format!("{PRIVATE}/entities/%40counter%40k1/signal?op=add&after=2h"),
            "1",
        )
        .await;
    assert_eq!(later.status, StatusCode::ACCEPTED);
    let now = handle.clock().unwrap().now;
    let at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(later.body["scheduledTime"].clone()).unwrap();
    assert_eq!(at - now, chrono::Duration::hours(2));

    let unknown = api
        .call(
            "GET",
            &format!("{PRIVATE}/entities/%40counter%40nobody"),
            "",
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let not_an_id = api
        .call("GET", &format!("{PRIVATE}/entities/counter"), "")
        .await;
    assert_eq!(not_an_id.status, StatusCode::BAD_REQUEST);
    let no_op = api
        .call(
            "POST",
            &format!("{PRIVATE}/entities/%40counter%40k1/signal"),
            "1",
        )
        .await;
    assert_eq!(no_op.status, StatusCode::BAD_REQUEST);
    let not_json = api
        .call(
            "POST",
            &format!("{PRIVATE}/entities/%40counter%40k1/signal?op=add"),
            "five",
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_private_routes_need_the_key_when_one_is_set() {
    let api = api(HttpConfig {
        key: Some("s3cret".into()),
        ..HttpConfig::default()
    });
    for (method, uri) in [
        ("GET", format!("{PRIVATE}/instances")),
        ("GET", format!("{PRIVATE}/instances/x")),
        ("GET", format!("{PRIVATE}/instances/x/export")),
        ("POST", format!("{PRIVATE}/import")),
        ("GET", format!("{PRIVATE}/entities")),
        (
            "POST",
            format!("{PRIVATE}/entities/%40counter%40a/signal?op=add"),
        ),
    ] {
        let refused = api.call(method, &uri, "").await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    let allowed = api
        .call_with(
            "GET",
            &format!("{PRIVATE}/instances"),
            "",
            &[(KEY_HEADER, "s3cret")],
        )
        .await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.body, json!([]));
}

#[tokio::test]
async fn terminate_with_recursive_true_ends_the_running_sub_orchestrations_too() {
    let api = api(HttpConfig::default());
    // ChargeCard fails and ProcessPayment waits on a backoff timer the still clock never fires.
    api.start("OrderSaga", "saga", r#"{"fail_at": "ChargeCard"}"#)
        .await;
    let handle = api._engine.handle();
    let deadline = Instant::now() + Duration::from_secs(60);
    let child = loop {
        let running = handle.instances().unwrap();
        if let Some(child) = running
            .iter()
            .find(|record| record.name == "ProcessPayment")
        {
            break child.instance_id.clone();
        }
        assert!(Instant::now() < deadline, "no sub-orchestration started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let bad = api
        .call(
            "POST",
            &format!("{BASE}/instances/saga/terminate?recursive=maybe"),
            "",
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let answer = api
        .call(
            "POST",
            &format!("{BASE}/instances/saga/terminate?reason=stop&recursive=true"),
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
    for id in ["saga", child.as_str()] {
        let ended = private_finished(&api, id).await;
        assert_eq!(ended.body["runtimeStatus"], "Terminated", "{id}");
    }
}
