//! Durable HTTP in a real terminal (tmux runs `durable-emu` with the built-in samples): the
//! `HttpJobWorkflow` sample runs against a tiny jobs API this test serves (202 + `Location` and
//! `Retry-After: 1` for a new job, 202 for its first two status polls, then 200; 200 for the
//! notification), and the UI shows its requests as HTTP: the History view's rows (method and URL,
//! each poll, status with its reason phrase), the Timeline's bars per request and poll, and the
//! replay stepper's calls, whose replay sends nothing to the API (it counts requests).
//!
//! Needs tmux; skipped without it (a failure under CI), as `tui_smoke` is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;

use binary_support::tmux::{self, Tmux, line_with};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Status polls of the job answered 202 before the 200.
const PENDING_POLLS: usize = 2;

/// The jobs API `HttpJobWorkflow` calls, on a free loopback port; counts every request.
struct JobServer {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl JobServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        std::thread::spawn(move || {
            let polls = AtomicUsize::new(0);
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                answer(stream, &polls);
            }
        });
        Self { port, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request and answers it (one request per connection: `Connection: close`).
fn answer(stream: TcpStream, polls: &AtomicUsize) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let pending = "202 Accepted\r\nLocation: /jobs/1\r\nRetry-After: 1";
    let (status, content) = match (method.as_str(), path.as_str()) {
        ("POST", "/jobs") => (pending, r#"{"id":"1","state":"Running"}"#.to_string()),
        ("GET", "/jobs/1") if polls.fetch_add(1, Ordering::SeqCst) < PENDING_POLLS => {
            (pending, r#"{"id":"1","state":"Running"}"#.to_string())
        }
        ("GET", "/jobs/1") => ("200 OK", r#"{"id":"1","state":"Completed"}"#.to_string()),
        ("POST", "/notify") => ("200 OK", r#"{"received":true}"#.to_string()),
        _ => ("404 Not Found", String::new()),
    };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{content}",
        content.len()
    );
    let _ = stream.flush();
}

#[test]
fn an_http_job_polled_to_its_end_reads_as_http_in_history_timeline_and_replay() {
    if !tmux::available() {
        return;
    }
    let server = JobServer::start();
    let base = format!("http://127.0.0.1:{}", server.port);
    let dir = tempfile::tempdir().unwrap();
    let (tmux, exit_file) = Tmux::start_ui("http", 160, 50, dir.path());
    tmux.wait_for("the instances view", |screen| {
        screen.contains("1 Instances")
    });
    tmux.command(&format!(
        r#"start HttpJobWorkflow {{"base_url":"{base}","job":{{"steps":3}}}}"#
    ));
    tmux.wait_for("the job to complete", |screen| {
        line_with(screen, &["HttpJobWorkflow", "Completed"]).is_some()
    });
    // The job, its three status polls and the notification: each sent once.
    assert_eq!(server.requests(), 2 + PENDING_POLLS + 1);

    tmux.key("Enter");
    let history = tmux.wait_for("the HTTP rows in the history view", |screen| {
        screen.contains("ExecutionCompleted") && screen.contains("<- POST /notify")
    });
    let (post, first_poll) = (
        format!("HTTP POST {base}/jobs"),
        format!("HTTP GET {base}/jobs/1 (poll 1)"),
    );
    for row in [
        vec!["TaskScheduled", "HTTP POST /jobs", post.as_str()],
        vec!["TaskCompleted", "HTTP 202 Accepted <- POST /jobs"],
        vec!["TaskScheduled", "HTTP GET /jobs/1", first_poll.as_str()],
        vec!["TaskCompleted", "HTTP 202 Accepted <- poll 2 GET /jobs/1"],
        vec!["TaskCompleted", "HTTP 200 OK <- poll 3 GET /jobs/1"],
        vec!["TaskCompleted", "HTTP 200 OK <- POST /notify"],
    ] {
        assert!(
            line_with(&history, &row).is_some(),
            "no line with {row:?}:\n{history}"
        );
    }
    assert!(!history.contains("BuiltIn::HttpActivity"), "{history}");

    tmux.key("3");
    tmux.wait_for("a bar per request and poll in the timeline", |screen| {
        screen.contains("POST /jobs #0")
            && screen.contains("poll 1 GET /jobs/1")
            && screen.contains("poll 3 GET /jobs/1")
            && screen.contains("POST /notify")
            && screen.contains("▆ http")
    });

    // The stepper replays the whole history through the plugin: it names the requests, and
    // replaying them sends nothing.
    tmux.key("6");
    tmux.wait_for("the stepper's HTTP calls", |screen| {
        screen.contains(&format!("call_http POST {base}/notify"))
            && screen.contains("after OrchestratorCompleted")
    });
    tmux.key("g");
    for _ in 0..3 {
        tmux.key("l");
    }
    tmux.wait_for("the step that scheduled the job", |screen| {
        screen.contains("step 3/") && screen.contains("after TaskScheduled: HTTP POST")
    });
    assert_eq!(
        server.requests(),
        2 + PENDING_POLLS + 1,
        "replay called the API again"
    );

    tmux.key("q");
    let code = tmux::wait_for_exit_code(&exit_file);
    assert_eq!(code, "0", "the UI exits with 0");
}
