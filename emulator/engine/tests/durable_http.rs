//! Durable HTTP on the engine (issue 16): the host performs each `BuiltIn::HttpActivity`
//! request itself, against a local HTTP server started by each test that counts what reaches it;
//! and the `http` fault rules. The orchestrations here call the built-in activity directly with
//! the wire form (`HttpRequestWire`), so what is tested is the host, whatever the SDK's
//! `call_http` loop does on top; one of them polls a 202 the way that loop does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::DbLocation;
use durable_emu_engine::engine::{Engine, EngineConfig, EngineEvent};
use durable_emu_engine::faults::parse_compact;
use durable_emu_engine::plugin::{LoadedPlugin, PluginOrigin};
use durable_emu_testing::engine::{current_history, eventually, run, wait};
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use durable_sdk::http::{DurableHttpRequest, DurableHttpResponse, HTTP_ACTIVITY, HttpRequestWire};
use durable_sdk::serde_json::{Value, json};
use durable_sdk::{FailureDetails, OrchestrationContext, Registry};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ----- the test plugin ------------------------------------------------------------------------

/// One request; its response or failure as the orchestration's output (a failure is caught, so
/// the test reads both the same way).
async fn http_once(
    ctx: OrchestrationContext,
    wire: HttpRequestWire,
) -> Result<Value, FailureDetails> {
    Ok(outcome(
        ctx.call_activity::<DurableHttpResponse>(HTTP_ACTIVITY, wire)
            .await,
    ))
}

/// Two requests in turn (the second from a later episode, which replays the first).
async fn http_twice(
    ctx: OrchestrationContext,
    wires: (HttpRequestWire, HttpRequestWire),
) -> Result<Value, FailureDetails> {
    let first = ctx
        .call_activity::<DurableHttpResponse>(HTTP_ACTIVITY, wires.0)
        .await?;
    let second = ctx
        .call_activity::<DurableHttpResponse>(HTTP_ACTIVITY, wires.1)
        .await?;
    Ok(json!([
        first.status_code,
        second.status_code,
        second.content
    ]))
}

/// The asynchronous pattern as the SDK's loop does it: while the answer is 202 with a
/// `Location`, wait `Retry-After` seconds (default 1) on a durable timer and GET the location,
/// numbering the polls.
async fn http_polling(
    ctx: OrchestrationContext,
    wire: HttpRequestWire,
) -> Result<Value, FailureDetails> {
    let mut request = wire;
    loop {
        let response = ctx
            .call_activity::<DurableHttpResponse>(HTTP_ACTIVITY, request.clone())
            .await?;
        let location = response.header("location").map(str::to_string);
        match (response.status_code, location) {
            (202, Some(location)) => {
                let wait = response
                    .header("retry-after")
                    .and_then(|seconds| seconds.parse().ok())
                    .unwrap_or(1);
                ctx.create_timer_after(Duration::from_secs(wait)).await?;
                request = HttpRequestWire {
                    method: "GET".into(),
                    uri: location,
                    headers: BTreeMap::new(),
                    content: None,
                    timeout_ms: request.timeout_ms,
                    poll: request.poll + 1,
                };
            }
            _ => return Ok(outcome(Ok(response))),
        }
    }
}

/// `ctx.call_http` itself: the SDK's loop over the host's requests. Input: `[method, uri]`.
async fn call_http(
    ctx: OrchestrationContext,
    (method, uri): (String, String),
) -> Result<Value, FailureDetails> {
    let request = DurableHttpRequest::new(method, uri).body("{\"work\":1}");
    Ok(outcome(ctx.call_http(request).await))
}

/// `ctx.call_http` of a GET with a 10-minute timeout, retried 3 times 10 s apart.
async fn call_http_retried(
    ctx: OrchestrationContext,
    uri: String,
) -> Result<Value, FailureDetails> {
    let request = DurableHttpRequest::get(uri)
        .timeout(Duration::from_secs(600))
        .retry(durable_sdk::RetryPolicy::new(3, Duration::from_secs(10)));
    Ok(outcome(ctx.call_http(request).await))
}

/// `n` GETs of `uri` at once; the statuses.
async fn http_fan_out(
    ctx: OrchestrationContext,
    (uri, n): (String, u32),
) -> Result<Vec<u16>, FailureDetails> {
    let calls =
        (0..n).map(|_| ctx.call_activity::<DurableHttpResponse>(HTTP_ACTIVITY, get(uri.clone())));
    let responses = durable_sdk::when_all(calls).await?;
    Ok(responses
        .iter()
        .map(|response| response.status_code)
        .collect())
}

async fn echo(_ctx: durable_sdk::ActivityContext, value: Value) -> Result<Value, FailureDetails> {
    Ok(value)
}

async fn echo_once(ctx: OrchestrationContext, value: Value) -> Result<Value, FailureDetails> {
    Ok(ctx.call_activity::<Value>("Echo", value).await?)
}

fn outcome(result: Result<DurableHttpResponse, durable_sdk::TaskError>) -> Value {
    match result {
        Ok(response) => json!({"response": response}),
        Err(error) => json!({
            "failure": error.failure.error_type,
            "message": error.failure.error_message,
            "nonRetriable": error.failure.is_non_retriable,
        }),
    }
}

fn registry() -> Registry {
    Registry::new()
        .orchestrator("HttpOnce", http_once)
        .orchestrator("HttpTwice", http_twice)
        .orchestrator("HttpPolling", http_polling)
        .orchestrator("CallHttp", call_http)
        .orchestrator("HttpFanOut", http_fan_out)
        .orchestrator("CallHttpRetried", call_http_retried)
        .orchestrator("EchoOnce", echo_once)
        .activity("Echo", echo)
}

durable_sdk::in_process_plugin!(registry);

fn plugin() -> LoadedPlugin {
    LoadedPlugin::in_process(
        durable_plugin_handle(),
        PluginOrigin::InProcess("durable-http-tests".into()),
    )
    .unwrap()
}

fn engine_with(faults: &[&str]) -> Engine {
    Engine::start(EngineConfig {
        faults: faults
            .iter()
            .map(|spec| parse_compact(spec, 0).unwrap())
            .collect(),
        ..EngineConfig::in_memory(plugin())
    })
    .unwrap()
}

// ----- the test server ------------------------------------------------------------------------

/// What the server does with a request.
enum Reply {
    /// Answer with status line (`200 OK`), headers and body.
    With(&'static str, Vec<String>, String),
    /// Hold the connection open, never answering.
    Hang,
}

fn reply(status: &'static str, body: &str) -> Reply {
    Reply::With(status, Vec::new(), body.to_string())
}

/// A local HTTP server (one request per connection) that logs every request that reaches it as
/// `METHOD /path`, and answers as `answer` says given that line and how many came before it.
struct TestServer {
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    fn start(answer: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let server_log = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, answer) = (server_log.clone(), answer.clone());
                std::thread::spawn(move || serve_one(stream, &log, answer.as_ref()));
            }
        });
        Self { base, log }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve_one(stream: TcpStream, log: &Mutex<Vec<String>>, answer: &dyn Fn(&str, usize) -> Reply) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let request: String = line
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let before = {
        let mut log = log.lock().unwrap();
        log.push(request.clone());
        log.len() - 1
    };
    match answer(&request, before) {
        Reply::With(status, headers, body) => {
            let mut text = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
            for header in headers {
                text.push_str(&header);
                text.push_str("\r\n");
            }
            text.push_str("Connection: close\r\n\r\n");
            text.push_str(&body);
            let mut stream = stream;
            let _ = stream.write_all(text.as_bytes());
        }
        Reply::Hang => {
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        }
    }
}

// ----- helpers --------------------------------------------------------------------------------

fn get(uri: String) -> HttpRequestWire {
    HttpRequestWire {
        method: "GET".into(),
        uri,
        headers: BTreeMap::new(),
        content: None,
        timeout_ms: 30_000,
        poll: 0,
    }
}

fn post(uri: String, body: &str) -> HttpRequestWire {
    HttpRequestWire {
        method: "POST".into(),
        content: Some(body.into()),
        headers: BTreeMap::from([("Content-Type".into(), "application/json".into())]),
        ..get(uri)
    }
}

/// Runs `HttpOnce` on `wire` and returns its output.
fn call_once(engine: &Engine, wire: HttpRequestWire) -> Value {
    let record = run(&engine.handle(), "HttpOnce", json!(wire), None);
    assert_eq!(record.status, RuntimeStatus::Completed, "{record:?}");
    record.output
}

fn markers(history: &[HistoryEvent]) -> Vec<(String, String)> {
    history
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::FaultInjected { effect, target, .. } => {
                Some((effect.clone(), target.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Virtual time between the first event of kind `from` and the first of kind `to` after it.
fn elapsed(history: &[HistoryEvent], from: &str, to: &str) -> Duration {
    let at = |name: &str| {
        history
            .iter()
            .find(|event| event.kind.type_name() == name)
            .unwrap_or_else(|| panic!("no {name} in history"))
            .timestamp
    };
    (at(to) - at(from)).to_std().unwrap()
}

// ----- the host performs requests ---------------------------------------------------------------

#[test]
fn any_status_is_a_result_with_lower_case_headers_and_the_body() {
    let server = TestServer::start(|request, _| match request {
        "GET /ok" => Reply::With("200 OK", vec!["X-Trace: one".into()], "fine".into()),
        "GET /missing" => reply("404 Not Found", "no such thing"),
        _ => reply("500 Internal Server Error", "boom"),
    });
    let engine = engine_with(&[]);
    let mut events = engine.handle().subscribe();
    let ok = call_once(&engine, get(server.url("/ok")));
    assert_eq!(ok["response"]["statusCode"], 200);
    assert_eq!(ok["response"]["headers"]["x-trace"], "one");
    assert_eq!(ok["response"]["content"], "fine");
    let missing = call_once(&engine, get(server.url("/missing")));
    assert_eq!(missing["response"]["statusCode"], 404);
    assert_eq!(missing["response"]["content"], "no such thing");
    let broken = call_once(&engine, post(server.url("/jobs"), "{}"));
    assert_eq!(broken["response"]["statusCode"], 500);
    assert_eq!(server.requests(), ["GET /ok", "GET /missing", "POST /jobs"]);
    // Started like any activity, for every view that follows activities.
    let mut started = 0;
    while let Ok(event) = events.try_recv() {
        if let EngineEvent::ActivityStarted { name, .. } = event {
            assert_eq!(name, HTTP_ACTIVITY);
            started += 1;
        }
    }
    assert_eq!(started, 3);
}

#[test]
fn replay_takes_results_from_history_and_never_calls_again() {
    let server =
        TestServer::start(|request, before| reply("200 OK", &format!("{request} #{before}")));
    let engine = engine_with(&[]);
    let wires = (post(server.url("/jobs"), "{}"), get(server.url("/jobs/1")));
    let record = run(&engine.handle(), "HttpTwice", json!(wires), None);
    assert_eq!(record.status, RuntimeStatus::Completed, "{record:?}");
    assert_eq!(record.output, json!([200, 200, "GET /jobs/1 #1"]));
    // The second episode replayed the first request from history: two requests in all.
    assert_eq!(server.requests(), ["POST /jobs", "GET /jobs/1"]);
}

#[test]
fn a_202_is_polled_at_its_location_after_retry_after_on_durable_timers() {
    // The status API: still running for two polls (pointing at itself again), then done.
    let own_url = Arc::new(std::sync::OnceLock::<String>::new());
    let location = own_url.clone();
    let status = TestServer::start(move |_, before| match before {
        0 | 1 => Reply::With(
            "202 Accepted",
            vec![
                format!("Location: {}", location.get().unwrap()),
                "Retry-After: 5".into(),
            ],
            String::new(),
        ),
        _ => reply("200 OK", "{\"done\":true}"),
    });
    own_url.set(status.url("/jobs/7")).unwrap();
    // The jobs API accepts a job and points at its status (an absolute Location).
    let job = status.url("/jobs/7");
    let jobs_server = TestServer::start(move |_, _| {
        Reply::With(
            "202 Accepted",
            vec![format!("Location: {job}"), "Retry-After: 3".into()],
            String::new(),
        )
    });
    let engine = engine_with(&[]);
    let record = run(
        &engine.handle(),
        "HttpPolling",
        json!(post(jobs_server.url("/jobs"), "{\"work\":1}")),
        None,
    );
    assert_eq!(record.status, RuntimeStatus::Completed, "{record:?}");
    assert_eq!(record.output["response"]["content"], "{\"done\":true}");
    assert_eq!(jobs_server.requests(), ["POST /jobs"]);
    assert_eq!(
        status.requests(),
        ["GET /jobs/7", "GET /jobs/7", "GET /jobs/7"]
    );
    // Every wait is a durable timer of Retry-After seconds: 3 (the job's 202), then 5 and 5.
    let history = current_history(&engine.handle(), &record.instance_id);
    let waits: Vec<i64> = history
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::TimerCreated { fire_at } => Some((*fire_at - event.timestamp).num_seconds()),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [3, 5, 5]);
}

#[test]
fn a_server_that_does_not_answer_in_time_is_a_timeout() {
    let server = TestServer::start(|_, _| Reply::Hang);
    let engine = engine_with(&[]);
    let output = call_once(
        &engine,
        HttpRequestWire {
            timeout_ms: 200,
            ..get(server.url("/slow"))
        },
    );
    assert_eq!(output["failure"], "HttpTimeout", "{output}");
    assert_eq!(output["nonRetriable"], false);
}

#[test]
fn a_closed_port_is_a_connection_failure_and_a_bad_uri_an_invalid_request() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let engine = engine_with(&[]);
    let refused = call_once(&engine, get(format!("http://127.0.0.1:{port}/")));
    assert_eq!(refused["failure"], "HttpConnectionFailed", "{refused}");
    let invalid = call_once(&engine, get("file:///etc/passwd".into()));
    assert_eq!(invalid["failure"], "HttpInvalidRequest", "{invalid}");
    assert_eq!(invalid["nonRetriable"], true);
}

#[test]
fn a_body_over_the_payload_limit_fails_the_request_non_retriably() {
    let server = TestServer::start(|_, _| reply("200 OK", &"x".repeat(5000)));
    let engine = Engine::start(EngineConfig {
        limits: durable_emu_engine::Limits {
            max_payload_bytes: 2000,
            ..Default::default()
        },
        ..EngineConfig::in_memory(plugin())
    })
    .unwrap();
    let output = call_once(&engine, get(server.url("/big")));
    assert_eq!(output["failure"], "PayloadTooLarge", "{output}");
    assert_eq!(output["nonRetriable"], true);
}

#[test]
fn requests_are_the_hosts_even_with_remote_workers_on_and_none_connected() {
    let server = TestServer::start(|_, _| reply("200 OK", "from the host"));
    let engine = Engine::start(EngineConfig {
        remote_workers: true,
        ..EngineConfig::in_memory(plugin())
    })
    .unwrap();
    let output = call_once(&engine, get(server.url("/")));
    assert_eq!(output["response"]["content"], "from the host");
}

#[test]
fn a_restart_mid_call_sends_the_request_again_and_records_one_result() {
    let server = TestServer::start(|_, before| {
        if before == 0 {
            Reply::Hang
        } else {
            reply("200 OK", "second delivery")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig {
        db: DbLocation::File(dir.path().join("emu.db")),
        ..EngineConfig::in_memory(plugin())
    };
    let engine = Engine::start(config()).unwrap();
    let id = engine
        .handle()
        .start_orchestration("HttpOnce", json!(get(server.url("/job"))), None)
        .unwrap();
    eventually("the first request to reach the server", || {
        server.requests().len() == 1
    });
    engine.shutdown();
    let engine = Engine::start(config()).unwrap();
    let record = wait(&engine.handle(), &id);
    assert_eq!(record.status, RuntimeStatus::Completed, "{record:?}");
    assert_eq!(record.output["response"]["content"], "second delivery");
    assert_eq!(server.requests(), ["GET /job", "GET /job"]);
    let history = current_history(&engine.handle(), &id);
    let results = history
        .iter()
        .filter(|event| event.kind.type_name() == "TaskCompleted")
        .count();
    assert_eq!(results, 1);
}

// ----- fault rules ------------------------------------------------------------------------------

#[test]
fn refuse_and_error_fail_the_request_without_reaching_the_server() {
    let server = TestServer::start(|_, _| reply("200 OK", "real"));
    let engine = engine_with(&[
        "http=*/refused,refuse",
        "http=*/declined,method=POST,error=PaymentDeclined:no funds",
    ]);
    let refused = call_once(&engine, get(server.url("/refused")));
    assert_eq!(refused["failure"], "HttpConnectionFailed");
    assert_eq!(refused["message"], "connection refused (injected)");
    let declined = call_once(&engine, post(server.url("/declined"), "{}"));
    assert_eq!(declined["failure"], "PaymentDeclined");
    assert_eq!(declined["message"], "no funds");
    // The method narrows the rule: a GET of the same URL goes through.
    let through = call_once(&engine, get(server.url("/declined")));
    assert_eq!(through["response"]["content"], "real");
    assert_eq!(server.requests(), ["GET /declined"]);
}

#[test]
fn answer_responds_instead_of_the_server_and_leaves_a_marker() {
    let server = TestServer::start(|_, _| reply("200 OK", "real"));
    let engine = engine_with(&["http=*/busy,answer=503,body=try later"]);
    let uri = server.url("/busy");
    let record = run(&engine.handle(), "HttpOnce", json!(get(uri.clone())), None);
    assert_eq!(record.output["response"]["statusCode"], 503);
    assert_eq!(record.output["response"]["content"], "try later");
    assert!(server.requests().is_empty());
    let history = current_history(&engine.handle(), &record.instance_id);
    assert_eq!(
        markers(&history),
        [(
            "answer 503 with a 9-byte body".to_string(),
            format!("http GET {uri} (poll 0)")
        )]
    );
}

#[test]
fn delay_sends_the_request_later_on_the_virtual_clock() {
    let server = TestServer::start(|_, _| reply("200 OK", "late"));
    let engine = engine_with(&["http=*,delay=90s"]);
    let record = run(
        &engine.handle(),
        "HttpOnce",
        json!(get(server.url("/x"))),
        None,
    );
    assert_eq!(record.output["response"]["content"], "late");
    assert_eq!(server.requests(), ["GET /x"]);
    let history = current_history(&engine.handle(), &record.instance_id);
    assert!(elapsed(&history, "TaskScheduled", "TaskCompleted") >= Duration::from_secs(90));
}

#[test]
fn timeout_fails_with_http_timeout_once_the_requests_timeout_has_passed() {
    let server = TestServer::start(|_, _| reply("200 OK", "never seen"));
    let engine = engine_with(&["http=*,timeout"]);
    let wire = HttpRequestWire {
        timeout_ms: 45_000,
        ..get(server.url("/x"))
    };
    let record = run(&engine.handle(), "HttpOnce", json!(wire), None);
    assert_eq!(
        record.output["failure"], "HttpTimeout",
        "{:?}",
        record.output
    );
    assert!(server.requests().is_empty());
    let history = current_history(&engine.handle(), &record.instance_id);
    assert_eq!(
        elapsed(&history, "TaskScheduled", "TaskFailed"),
        Duration::from_secs(45)
    );
}

#[test]
fn pending_answers_202_to_the_first_polls_then_lets_the_request_through() {
    let server = TestServer::start(|_, _| reply("200 OK", "{\"done\":true}"));
    let engine = engine_with(&["http=*/status,pending=2"]);
    let uri = server.url("/status");
    let record = run(
        &engine.handle(),
        "HttpPolling",
        json!(get(uri.clone())),
        None,
    );
    assert_eq!(record.status, RuntimeStatus::Completed, "{record:?}");
    assert_eq!(record.output["response"]["content"], "{\"done\":true}");
    // Polls 0 and 1 were answered by the rule; poll 2 reached the server.
    assert_eq!(server.requests(), ["GET /status"]);
    let history = current_history(&engine.handle(), &record.instance_id);
    let targets: Vec<String> = markers(&history)
        .into_iter()
        .map(|(_, target)| target)
        .collect();
    assert_eq!(
        targets,
        [
            format!("http GET {uri} (poll 0)"),
            format!("http GET {uri} (poll 1)")
        ]
    );
    let timers = history
        .iter()
        .filter(|event| event.kind.type_name() == "TimerCreated")
        .count();
    assert_eq!(timers, 2);
}

#[test]
fn an_activity_rule_naming_the_built_in_activity_stays_an_activity_rule() {
    let server = TestServer::start(|_, _| reply("200 OK", "real"));
    let engine = engine_with(&["activity=BuiltIn::HttpActivity,error=Flaky:injected"]);
    let output = call_once(&engine, get(server.url("/x")));
    assert_eq!(output["failure"], "Flaky");
    assert!(server.requests().is_empty());
}

// ----- through ctx.call_http --------------------------------------------------------------------

#[test]
fn call_http_polls_a_job_through_the_host_and_replays_without_calling_again() {
    let server = TestServer::start(|request, before| match (request, before) {
        ("POST /jobs", _) => Reply::With(
            "202 Accepted",
            vec!["Location: /jobs/7".into(), "Retry-After: 2".into()],
            String::new(),
        ),
        ("GET /jobs/7", 1) => Reply::With(
            "202 Accepted",
            vec!["Location: /jobs/7".into()],
            String::new(),
        ),
        ("GET /jobs/7", _) => reply("200 OK", "{\"result\":42}"),
        _ => reply("404 Not Found", ""),
    });
    let engine = engine_with(&[]);
    let record = run(
        &engine.handle(),
        "CallHttp",
        json!(["POST", server.url("/jobs")]),
        None,
    );
    assert_eq!(record.status, RuntimeStatus::Completed, "{record:?}");
    assert_eq!(record.output["response"]["content"], "{\"result\":42}");
    // Each episode replayed the requests before it: each reached the server once.
    assert_eq!(
        server.requests(),
        ["POST /jobs", "GET /jobs/7", "GET /jobs/7"]
    );
    let history = current_history(&engine.handle(), &record.instance_id);
    let polls: Vec<u64> = history
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::TaskScheduled { input, .. } => input["poll"].as_u64(),
            _ => None,
        })
        .collect();
    assert_eq!(polls, [0, 1, 2]);
}

#[test]
fn call_http_meets_a_pending_rule_and_then_the_real_answer() {
    let server = TestServer::start(|_, _| reply("200 OK", "finished"));
    let engine = engine_with(&["http=*/report,pending=3"]);
    let record = run(
        &engine.handle(),
        "CallHttp",
        json!(["GET", server.url("/report")]),
        None,
    );
    assert_eq!(
        record.output["response"]["content"], "finished",
        "{record:?}"
    );
    assert_eq!(server.requests(), ["GET /report"]);
    let history = current_history(&engine.handle(), &record.instance_id);
    assert_eq!(markers(&history).len(), 3);
}

#[test]
fn many_requests_wait_at_once_while_activities_and_episodes_go_on() {
    const IN_FLIGHT: u32 = 24;
    // Every request waits at the gate until the test opens it.
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let server_gate = gate.clone();
    let server = TestServer::start(move |_, _| {
        let (open, opened) = &*server_gate;
        let mut open = open.lock().unwrap();
        while !*open {
            open = opened.wait(open).unwrap();
        }
        reply("200 OK", "")
    });
    let engine = engine_with(&[]);
    let handle = engine.handle();
    let fan_out = handle
        .start_orchestration("HttpFanOut", json!([server.url("/slow"), IN_FLIGHT]), None)
        .unwrap();
    // All of them are at the server together: none queues behind another.
    eventually("every request to be at the server at once", || {
        server.requests().len() == IN_FLIGHT as usize
    });
    // Meanwhile the engine runs episodes and activities as usual.
    let echoed = run(&handle, "EchoOnce", json!("still here"), None);
    assert_eq!(echoed.output, json!("still here"));
    {
        let (open, opened) = &*gate;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }
    let record = wait(&handle, &fan_out);
    assert_eq!(record.status, RuntimeStatus::Completed, "{record:?}");
    assert_eq!(record.output, json!(vec![200; IN_FLIGHT as usize]));
}

#[test]
fn a_retry_policys_retries_are_attempts_two_and_three_of_the_request() {
    let server = TestServer::start(|_, _| reply("200 OK", "third time lucky"));
    let engine = engine_with(&["http=*,attempts=1-2,refuse"]);
    let record = run(
        &engine.handle(),
        "CallHttpRetried",
        json!(server.url("/flaky")),
        None,
    );
    assert_eq!(
        record.output["response"]["content"], "third time lucky",
        "{record:?}"
    );
    assert_eq!(server.requests(), ["GET /flaky"]);
    let history = current_history(&engine.handle(), &record.instance_id);
    assert_eq!(markers(&history).len(), 2);
}
