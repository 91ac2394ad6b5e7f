//! The Durable HTTP samples (issue 16) through the real binary: `HttpJobWorkflow` against the
//! sample crate's own `job-server` (started here on a free port; it counts every request, so a
//! test can see what replay did not call again), and `WatchOrchestration` against the emulator's
//! own HTTP API (`durable-emu serve --http`). The outputs and histories are the contract
//! `sample-functions/README.md` documents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_tests::binary::{ScratchDir, Serving, durable_emu};
use durable_emu_tests::printed_status::PrintedStatus;
use durable_emu_tests::python::{Sidecar, free_port};
use durable_emu_tests::{built_cdylib, e2e_target_dir, workspace_root};
use durable_sdk::chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// `job-server`, built once per test process into the end-to-end target directory.
fn job_server_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let output = Command::new(cargo)
                .current_dir(workspace_root())
                .args(["build", "-p", "sample-functions", "--bin", "job-server"])
                .arg("--target-dir")
                .arg(e2e_target_dir())
                .stdin(Stdio::null())
                .output()
                .expect("cargo runs");
            assert!(
                output.status.success(),
                "building job-server failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            e2e_target_dir()
                .join("debug")
                .join(format!("job-server{}", std::env::consts::EXE_SUFFIX))
        })
        .clone()
}

/// A running `job-server --port 0 --polls 2`, killed (by its process id) when dropped.
struct JobServer {
    child: Child,
    base_url: String,
}

impl JobServer {
    fn start() -> Self {
        let mut child = Command::new(job_server_binary())
            .args(["--port", "0", "--polls", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("job-server starts");
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut first_line)
            .expect("job-server prints where it listens");
        let base_url = first_line
            .trim()
            .strip_prefix("job-server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first_line:?}"))
            .to_string();
        Self { child, base_url }
    }

    /// `GET /stats`: what the server was asked so far.
    fn stats(&self) -> Value {
        let address = self.base_url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("job-server accepts");
        stream
            .write_all(b"GET /stats HTTP/1.1\r\nHost: job-server\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (_, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
        serde_json::from_str(body).unwrap()
    }
}

impl Drop for JobServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stats(requests: u64, submitted: u64, status_polls: u64, notified: u64) -> Value {
    json!({
        "requests": requests,
        "submitted": submitted,
        "status_polls": status_polls,
        "notified": notified,
    })
}

/// `durable-emu run [TARGET] -o HttpJobWorkflow ... --history` on the virtual clock.
fn run_workflow(
    target: Option<&str>,
    db: &str,
    id: &str,
    input: &Value,
    extra: &[&str],
) -> PrintedStatus {
    let input = format!("--input={input}");
    let mut args = vec!["run"];
    args.extend(target);
    args.extend([
        "-o",
        "HttpJobWorkflow",
        &input,
        "--instance-id",
        id,
        "--clock",
        "virtual",
        "--db",
        db,
        "--history",
    ]);
    args.extend(extra);
    let scratch = ScratchDir::new("http-run");
    PrintedStatus::from_output(durable_emu(&args, scratch.path()))
}

/// Each HTTP request in history: method, the URI's path and its poll index.
fn requests(run: &PrintedStatus) -> Vec<(String, String, u64)> {
    run.events_of("TaskScheduled")
        .into_iter()
        .map(|event| {
            assert_eq!(event["name"], "BuiltIn::HttpActivity", "{event}");
            let input = &event["input"];
            let uri = input["uri"].as_str().unwrap();
            let path = uri
                .trim_start_matches("http://")
                .split_once('/')
                .map_or("/".to_string(), |(_, path)| format!("/{path}"));
            (
                input["method"].as_str().unwrap().to_string(),
                path,
                input["poll"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn request(method: &str, path: &str, poll: u64) -> (String, String, u64) {
    (method.to_string(), path.to_string(), poll)
}

fn time(value: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap()
}

/// For each `TimerCreated`, how far ahead of its recording it was set to fire, in seconds.
fn timer_delays(run: &PrintedStatus) -> Vec<i64> {
    run.events_of("TimerCreated")
        .into_iter()
        .map(|timer| (time(&timer["fireAt"]) - time(&timer["timestamp"])).num_seconds())
        .collect()
}

fn job_input(server: &JobServer) -> Value {
    json!({"base_url": server.base_url, "job": {"report": "sales", "rows": 3}})
}

/// What the workflow returns for job `id` of `job_input`, polled `polls` times by the server's
/// count.
fn summary(id: &str, polls: u64) -> Value {
    json!({
        "job_id": id,
        "notified": true,
        "result": {"id": id, "state": "Completed", "polls": polls, "job": {"report": "sales", "rows": 3}},
    })
}

#[test]
fn http_job_workflow_polls_its_job_to_the_end_then_notifies_and_replay_calls_nothing() {
    let server = JobServer::start();
    let scratch = ScratchDir::new("http-job");
    let db = scratch.file("state.db");
    let cdylib = built_cdylib("sample-functions");
    let run = run_workflow(
        Some(&cdylib.to_string_lossy()),
        &db,
        "job-1",
        &job_input(&server),
        &[],
    );
    assert_eq!(run.exit_code, Some(0), "{}", run.explain());
    assert_eq!(run.output(), &summary("1", 3), "{}", run.explain());
    assert_eq!(
        requests(&run),
        [
            request("POST", "/jobs", 0),
            request("GET", "/jobs/1", 1),
            request("GET", "/jobs/1", 2),
            request("GET", "/jobs/1", 3),
            request("POST", "/notify", 0),
        ]
    );
    // The server's Retry-After: 1, one durable timer before each poll.
    assert_eq!(timer_delays(&run), [1, 1, 1]);
    assert_eq!(run.custom_status(), "done");
    assert_eq!(server.stats(), stats(5, 1, 3, 1));

    let replayed = durable_emu(
        &["replay", "--db", &db, "--instance", "job-1"],
        scratch.path(),
    );
    let printed = String::from_utf8_lossy(&replayed.stdout);
    assert!(replayed.status.success(), "{printed}");
    assert!(printed.contains("0 nondeterministic"), "{printed}");
    assert_eq!(server.stats(), stats(5, 1, 3, 1), "replay called the API");
}

/// A rewind replays the failed execution: the job's submission and polls come from history; only
/// the notification that failed is sent again.
#[test]
fn a_rewound_workflow_sends_again_only_the_request_that_failed() {
    let server = JobServer::start();
    let scratch = ScratchDir::new("http-rewind");
    let db = scratch.file("state.db");
    // Non-retriable: a retry policy's timers would not line up with the re-made call after a
    // rewind (docs/semantics.md#rewind).
    let failed = run_workflow(
        None,
        &db,
        "job-r",
        &job_input(&server),
        &[
            "--fault",
            "http=*/notify,error=HttpConnectionFailed:notify is down,non-retriable",
        ],
    );
    assert_eq!(failed.exit_code, Some(1), "{}", failed.explain());
    assert_eq!(
        failed.failure_chain(),
        ["TaskFailed", "HttpConnectionFailed"]
    );
    assert_eq!(failed.count("FaultInjected"), 1, "{}", failed.explain());
    assert_eq!(server.stats(), stats(4, 1, 3, 0));

    let rewound = durable_emu(&["rewind", "job-r", "--db", &db], scratch.path());
    assert!(rewound.status.success(), "{rewound:?}");
    let serving = Serving::start(
        &[
            "--db", &db, "--http", "off", "--grpc", "off", "--clock", "virtual",
        ],
        scratch.path(),
    );
    let completed = serving.wait_for(Duration::from_secs(60), |event| {
        event["event"] == "instanceChanged"
            && event["instanceId"] == "job-r"
            && event["status"] == "Completed"
    });
    serving.stop();
    assert!(completed.is_some(), "the rewound instance did not complete");
    let status = PrintedStatus::from_output(durable_emu(
        &["status", "job-r", "--db", &db],
        scratch.path(),
    ));
    assert_eq!(status.output(), &summary("1", 3), "{}", status.explain());
    assert_eq!(server.stats(), stats(5, 1, 3, 1));
}

#[test]
fn a_jobs_api_that_is_not_there_fails_the_workflow_after_its_retries() {
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let run = run_workflow(None, ":memory:", "job-x", &json!({"base_url": nobody}), &[]);
    assert_eq!(run.exit_code, Some(1), "{}", run.explain());
    assert_eq!(run.failure_chain(), ["TaskFailed", "HttpConnectionFailed"]);
    assert_eq!(
        requests(&run),
        [
            request("POST", "/jobs", 0),
            request("POST", "/jobs", 0),
            request("POST", "/jobs", 0),
        ]
    );
    // The sample's retry policy: 3 attempts, 2 s apart.
    assert_eq!(timer_delays(&run), [2, 2]);
}

/// Any status is a result: the workflow itself decides that a 404 means the job failed.
#[test]
fn an_answer_the_workflow_cannot_use_fails_it_with_its_own_error() {
    let server = JobServer::start();
    let input = json!({"base_url": format!("{}/missing", server.base_url)});
    let run = run_workflow(None, ":memory:", "job-404", &input, &[]);
    assert_eq!(run.exit_code, Some(1), "{}", run.explain());
    assert_eq!(run.failure_chain(), ["JobFailed"]);
    assert!(
        run.json["failureDetails"]["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("the job ended with HTTP 404"),
        "{}",
        run.explain()
    );
    assert_eq!(server.stats(), stats(1, 0, 0, 0));
}

/// `pending=4` answers the polls of the status URL whose index is below 4 (polls 1 to 3) with 202
/// without reaching the server; from poll 4 on the server answers (202, 202, then 200, by its
/// own count). The POST to `/jobs` does not match the glob.
#[test]
fn a_pending_fault_keeps_the_job_running_for_more_polls() {
    let server = JobServer::start();
    let run = run_workflow(
        None,
        ":memory:",
        "job-p",
        &job_input(&server),
        &["--fault", "http=*/jobs/*,pending=4"],
    );
    assert_eq!(run.exit_code, Some(0), "{}", run.explain());
    assert_eq!(run.output(), &summary("1", 3));
    let polls: Vec<u64> = requests(&run)
        .into_iter()
        .filter(|(method, _, _)| method == "GET")
        .map(|(_, _, poll)| poll)
        .collect();
    assert_eq!(polls, [1, 2, 3, 4, 5, 6]);
    assert_eq!(run.count("FaultInjected"), 3, "{}", run.explain());
    assert_eq!(server.stats(), stats(5, 1, 3, 1));
}

/// One orchestration polling another's status URL on the emulator's own API.
#[test]
fn watch_orchestration_starts_hello_sequence_over_the_api_and_polls_it_to_the_end() {
    let http = format!("127.0.0.1:{}", free_port());
    let served = Sidecar::start("http-watch", &["--http", &http, "--clock", "real"]);
    let api = format!("http://{http}");
    let input = json!({"api": api}).to_string();
    let started = durable_emu(
        &[
            "start",
            "WatchOrchestration",
            "--url",
            &api,
            "--instance-id",
            "watch-1",
            "--input",
            &input,
        ],
        served.dir(),
    );
    assert!(
        started.status.success(),
        "{started:?}\n{}",
        served.log_text()
    );
    let waited = durable_emu(
        &["wait", "watch-1", "--url", &api, "--timeout", "60s"],
        served.dir(),
    );
    let status: Value = serde_json::from_slice(&waited.stdout).unwrap_or(Value::Null);
    assert_eq!(
        status["runtimeStatus"],
        "Completed",
        "{waited:?}\n{}",
        served.log_text()
    );
    let watched = &status["output"];
    assert_eq!(watched["name"], "HelloSequence");
    assert_eq!(watched["runtimeStatus"], "Completed");
    assert_eq!(
        watched["output"],
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );

    let history = durable_emu(
        &["status", "watch-1", "--url", &api, "--history"],
        served.dir(),
    );
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let calls: Vec<&Value> = history["historyEvents"]
        .as_array()
        .unwrap()
        .iter()
        // The CLI prints the engine's own history shape, as it does on a database.
        .filter(|event| {
            event["eventType"] == "TaskScheduled" && event["name"] == "BuiltIn::HttpActivity"
        })
        .map(|event| &event["input"])
        .collect();
    let (start, polls) = calls
        .split_first()
        .unwrap_or_else(|| panic!("the start request is recorded: {history}"));
    assert_eq!(start["method"], "POST");
    assert_eq!(
        start["uri"],
        format!("{api}/runtime/webhooks/durabletask/orchestrators/HelloSequence")
    );
    let instance_id = watched["instanceId"].as_str().unwrap();
    assert!(!polls.is_empty(), "{history}");
    for (index, poll) in polls.iter().enumerate() {
        assert_eq!(poll["method"], "GET");
        assert_eq!(poll["poll"], json!(index + 1));
        let uri = poll["uri"].as_str().unwrap();
        assert!(
            uri.starts_with(&format!(
                "{api}/runtime/webhooks/durabletask/instances/{instance_id}"
            )),
            "{uri}"
        );
    }
}
