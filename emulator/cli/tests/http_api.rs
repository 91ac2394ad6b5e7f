//! The HTTP API through the real binary on a real socket: `serve --http` answers Azure's
//! management calls (start, poll to the end, raise an event), and `--http` with an address in
//! use fails before the database is touched. The client is a few lines of HTTP/1.1 over a
//! `TcpStream`, so nothing of the server's stack is shared with the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;

use binary_support::served::{free_port, serve};
use binary_support::{durable_emu, stderr};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`, read to the end).
fn call(addr: &str, method: &str, path: &str, body: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let mut head_lines = head.lines();
    let status = head_lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = head_lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(key, value)| key.eq_ignore_ascii_case("transfer-encoding") && value == "chunked");
    let payload = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let body = if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&payload).unwrap_or_else(|error| panic!("{error}: {payload}"))
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

/// The path of an absolute URI the API handed out.
fn path_of(uri: &str) -> &str {
    let rest = uri.strip_prefix("http://").unwrap();
    &rest[rest.find('/').unwrap()..]
}

fn poll_until(addr: &str, status_path: &str, done: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = call(addr, "GET", status_path, "");
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "gave up polling: {:?}",
            answer.body
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_orchestration_started_over_http_is_polled_to_the_end_on_a_real_socket() {
    let served = serve(&[]);
    let started = call(
        &served.addr,
        "POST",
        "/runtime/webhooks/durabletask/orchestrators/HelloSequence",
        "",
    );
    assert_eq!(started.status, 202, "{:?}", started.body);
    let status_uri = started.body["statusQueryGetUri"].as_str().unwrap();
    assert_eq!(started.header("location"), Some(status_uri));
    assert!(
        status_uri.starts_with(&format!("http://{}/", served.addr)),
        "{status_uri}"
    );
    let done = poll_until(&served.addr, path_of(status_uri), |answer| {
        answer.status != 202
    });
    assert_eq!(done.status, 200);
    assert_eq!(done.body["runtimeStatus"], "Completed");
    assert_eq!(
        done.body["output"],
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
}

#[test]
fn an_approval_workflow_started_over_http_ends_when_its_event_is_raised_over_http() {
    let served = serve(&["--http-key", "k3y"]);
    let refused = call(
        &served.addr,
        "POST",
        "/durabletask/orchestrators/ApprovalWorkflow/ask-1",
        r#"{"request": "laptop", "timeout_hours": 24}"#,
    );
    assert_eq!(refused.status, 401, "the key is required");
    let started = call(
        &served.addr,
        "POST",
        "/durabletask/orchestrators/ApprovalWorkflow/ask-1?code=k3y",
        r#"{"request": "laptop", "timeout_hours": 24}"#,
    );
    assert_eq!(started.status, 202, "{:?}", started.body);
    let status_path = "/durabletask/instances/ask-1?code=k3y";
    let waiting = poll_until(&served.addr, status_path, |answer| {
        !answer.body["customStatus"].is_null()
    });
    assert_eq!(waiting.status, 202);
    assert!(waiting.header("retry-after").is_some());
    let send = started.body["sendEventPostUri"]
        .as_str()
        .unwrap()
        .replace("{eventName}", "Approval");
    let raised = call(&served.addr, "POST", path_of(&send), "true");
    assert_eq!(raised.status, 202, "{:?}", raised.body);
    let done = poll_until(&served.addr, status_path, |answer| answer.status != 202);
    assert_eq!(done.status, 200);
    assert_eq!(done.body["output"], "Approved");
}

#[test]
fn serve_with_an_http_address_in_use_fails_naming_it_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("state.db");
    let output = durable_emu(
        &[
            "serve",
            "--grpc",
            "off",
            "--http",
            &addr,
            "--db",
            db.to_str().unwrap(),
        ],
        dir.path(),
    );
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains(&addr), "names the address: {message}");
    assert!(message.contains("in use"), "says why: {message}");
    assert!(message.contains("--http"), "names the flag: {message}");
    assert!(!db.exists(), "no database was created");
    drop(taken);
}

/// The default port taken (by `func start`, say): serve runs without the API and says why.
#[cfg(unix)]
#[test]
fn serve_with_the_default_http_port_taken_runs_without_the_api_and_says_why() {
    let _held = std::net::TcpListener::bind("127.0.0.1:7071");
    if std::net::TcpListener::bind("127.0.0.1:7071").is_ok() {
        panic!("port 7071 could be bound twice; cannot test a taken default port");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary_support::binary())
        .args(["serve", "--grpc", "off", "--db", "state.db"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.contains("HTTP API"))
        .unwrap();
    assert!(
        line.contains("HTTP API off") && line.contains("7071") && line.contains("--http"),
        "says the API is off, why, and what to do: {line}"
    );
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Once its HTTP API listens, serve publishes where (the endpoint file beside the database,
/// `endpoint.rs`) and removes the file when it stops.
#[cfg(unix)]
#[test]
fn serve_publishes_its_http_endpoint_beside_the_database_and_removes_it_on_exit() {
    let served = serve(&[]);
    let file = served.dir.path().join("state.db.endpoint");
    let published: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(published["url"], format!("http://{}", served.addr).as_str());
    assert_eq!(published["pid"], served.child.id());
    let interrupted = Command::new("kill")
        .args(["-INT", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let mut served = served;
    assert_eq!(served.child.wait().unwrap().code(), Some(0));
    assert!(!file.exists(), "the endpoint file is removed on exit");
}

/// What an HTTP call does shows in the UI at once: an approval started over HTTP appears
/// running, the event raised over HTTP completes it on screen, and the Builds view's log lists
/// the request with its status and latency.
#[test]
fn the_ui_shows_at_once_what_http_calls_do() {
    use binary_support::tmux::{self, Tmux, line_with};
    if !tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let (tmux, exit_file) = Tmux::start_ui_with(
        "http-ui",
        120,
        30,
        dir.path(),
        &format!("--grpc off --http {addr}"),
    );
    tmux.wait_for("the instances view", |screen| {
        screen.contains("1 Instances")
    });
    let started = call(
        &addr,
        "POST",
        "/runtime/webhooks/durabletask/orchestrators/ApprovalWorkflow/from-http",
        r#"{"request": "laptop", "timeout_hours": 72}"#,
    );
    assert_eq!(started.status, 202, "{:?}", started.body);
    tmux.wait_for("the approval started over HTTP", |screen| {
        line_with(screen, &["from-http", "Running"]).is_some()
    });
    poll_until(&addr, "/durabletask/instances/from-http", |answer| {
        !answer.body["customStatus"].is_null()
    });
    let raised = call(
        &addr,
        "POST",
        "/durabletask/instances/from-http/raiseEvent/Approval",
        "true",
    );
    assert_eq!(raised.status, 202, "{:?}", raised.body);
    tmux.wait_for("the approval answered over HTTP", |screen| {
        line_with(screen, &["from-http", "Completed"]).is_some()
    });
    tmux.keys("8");
    tmux.wait_for("the HTTP requests in the Builds view's log", |screen| {
        line_with(screen, &["POST", "raiseEvent/Approval", "-> 202", "ms"]).is_some()
    });
    tmux.key("q");
    assert_eq!(tmux::wait_for_exit_code(&exit_file), "0");
}

#[test]
fn the_private_routes_answer_the_engines_own_status_and_export_on_a_real_socket() {
    let served = serve(&["--http-key", "sesame"]);
    // Who answers is open without the key: other commands check an endpoint file with it.
    let about = call(&served.addr, "GET", "/durable-emu/v1/about", "");
    assert_eq!(about.status, 200, "{:?}", about.body);
    assert_eq!(about.body["product"], "durable-emu");
    assert_eq!(about.body["pid"], served.child.id());
    let refused = call(&served.addr, "GET", "/durable-emu/v1/instances", "");
    assert_eq!(refused.status, 401, "everything else needs the key");
    drop(served);
    let served = serve(&[]);
    let started = call(
        &served.addr,
        "POST",
        "/runtime/webhooks/durabletask/orchestrators/HelloSequence/hello",
        "",
    );
    assert_eq!(started.status, 202, "{:?}", started.body);
    let done = poll_until(
        &served.addr,
        "/durable-emu/v1/instances/hello?history=true",
        |answer| answer.body["runtimeStatus"] == "Completed",
    );
    assert_eq!(done.status, 200);
    // What Azure's status lacks: the execution id, exact times, the engine's events.
    assert!(done.body["executionId"].is_string(), "{:?}", done.body);
    let created = done.body["createdTime"].as_str().unwrap();
    assert!(
        created.contains('.'),
        "to the fraction of a second: {created}"
    );
    let events = done.body["historyEvents"].as_array().unwrap();
    assert_eq!(events[0]["eventType"], "OrchestratorStarted", "{events:?}");
    let export = call(
        &served.addr,
        "GET",
        "/durable-emu/v1/instances/hello/export",
        "",
    );
    assert_eq!(export.status, 200);
    assert_eq!(export.body["format"], "durable-emu/instance-export@1");
    assert_eq!(export.body["instance"]["instanceId"], "hello");
    let unknown = call(&served.addr, "GET", "/durable-emu/v1/instances/nobody", "");
    assert_eq!(unknown.status, 404);
    assert!(unknown.body["Message"].is_string());
}
