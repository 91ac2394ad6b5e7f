//! `durable-emu worker` end to end (issue 17): the real binary as the worker, running the Rust
//! functions of `tests/fixtures/worker-plugin` for `durable-emu serve --grpc` (and, driven by the
//! official Python client, for the Python SDK's own in-memory backend). Killed mid fan-out, its
//! items are redelivered to the next worker and the result is right; when the backend restarts it
//! reconnects; on SIGTERM it finishes what it holds and exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_tests::binary::{ScratchDir, durable_emu_binary};
use durable_emu_tests::built_cdylib;
use durable_emu_tests::python::{free_port, run_scenario, venv_python};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const FIXTURE: &str = "tests/fixtures/worker-plugin";

fn fixture() -> PathBuf {
    built_cdylib(FIXTURE)
}

/// `durable-emu serve` with the gRPC sidecar and the HTTP API on given loopback ports, over
/// `dir/state.db`; killed when dropped.
struct Backend {
    child: Child,
    grpc: SocketAddr,
    log: PathBuf,
}

impl Backend {
    fn start(dir: &Path, grpc: SocketAddr, http: SocketAddr) -> Self {
        let log = dir.join(format!("serve-{}.log", grpc.port()));
        let mut child = Command::new(durable_emu_binary())
            .args([
                "serve",
                "--grpc",
                &grpc.to_string(),
                "--http",
                &http.to_string(),
            ])
            .args(["--db", "state.db"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Listening on both: the HTTP API is bound before the engine starts, and the endpoint
        // file that the CLI looks for is written once it serves.
        while !(TcpStream::connect_timeout(&grpc, Duration::from_millis(200)).is_ok()
            && dir.join("state.db.endpoint").exists())
        {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "serve exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap()
                );
            }
            assert!(Instant::now() < deadline, "serve never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, grpc, log }
    }

    fn url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A `durable-emu worker --events jsonl` child; its events read line by line.
struct Worker {
    child: Child,
    events: Receiver<Value>,
    seen: Vec<Value>,
}

impl Worker {
    fn start(url: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(durable_emu_binary())
            .args(["worker", "--connect", url, "--events", "jsonl"])
            .args(extra)
            .arg(fixture())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if sender.send(event).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// Waits (up to a minute) until `count` events satisfy `wanted`, counting those already seen.
    fn wait_for(&mut self, count: usize, what: &str, wanted: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.seen.iter().filter(|event| wanted(event)).count() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => self.seen.push(event),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the worker never reported {count} x {what}; it said {:#?}",
                        self.seen
                    )
                }
            }
        }
    }

    /// Every event until the worker's output ends (it exited).
    fn drain(&mut self) {
        while let Ok(event) = self.events.recv_timeout(Duration::from_secs(60)) {
            self.seen.push(event);
        }
    }

    fn count(&self, wanted: impl Fn(&Value) -> bool) -> usize {
        self.seen.iter().filter(|event| wanted(event)).count()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event_is(event: &Value, name: &str) -> bool {
    event["event"] == name
}

fn finished_square(event: &Value) -> bool {
    event_is(event, "finished") && event["name"] == "WorkerSquare"
}

/// The CLI through the running serve's HTTP API (found by its endpoint file).
fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(durable_emu_binary())
        .args(args)
        .args(["--db", "state.db"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn start_fan_out(dir: &Path, id: &str, n: u64, ms: u64) {
    let input = json!({ "n": n, "ms": ms }).to_string();
    let started = cli(
        dir,
        &[
            "start",
            "WorkerFanOut",
            "--input",
            &input,
            "--instance-id",
            id,
        ],
    );
    assert!(
        started.status.success(),
        "start failed: {}",
        String::from_utf8_lossy(&started.stderr)
    );
}

/// Waits for `id` to end and returns its status JSON.
fn wait_ended(dir: &Path, id: &str, backend: &Backend) -> Value {
    let waited = cli(dir, &["wait", id, "--timeout", "90s"]);
    assert!(
        waited.status.success(),
        "wait failed: {}\n--- serve\n{}",
        String::from_utf8_lossy(&waited.stderr),
        backend.log_text()
    );
    serde_json::from_slice(&waited.stdout).unwrap()
}

fn sum_of_squares(n: u64) -> u64 {
    (0..n).map(|i| i * i).sum()
}

#[test]
fn a_rust_orchestration_started_by_the_python_client_runs_on_the_worker_against_serve() {
    let Some(python) = venv_python() else { return };
    let dir = ScratchDir::new("worker-python");
    let backend = Backend::start(dir.path(), loopback(), loopback());
    let _worker = Worker::start(&backend.url(), &[]);
    run_scenario(
        &python,
        "../worker/rust_worker_client.py",
        &["--address", &backend.grpc.to_string()],
        || backend.log_text(),
    );
}

#[test]
fn the_worker_serves_the_python_sdks_own_in_memory_backend_too() {
    let Some(python) = venv_python() else { return };
    let command = json!([
        durable_emu_binary(),
        "worker",
        "--connect",
        "http://{address}",
        fixture(),
    ])
    .to_string();
    run_scenario(
        &python,
        "../worker/rust_worker_client.py",
        &["--in-memory", "--worker-command", &command],
        String::new,
    );
}

#[test]
fn a_worker_killed_mid_fan_out_has_its_items_redelivered_and_the_result_is_right() {
    let dir = ScratchDir::new("worker-killed");
    let backend = Backend::start(dir.path(), loopback(), loopback());
    let mut first = Worker::start(&backend.url(), &["--max-activities", "2"]);
    first.wait_for(1, "connected", |event| event_is(event, "connected"));
    start_fan_out(dir.path(), "killed", 12, 300);
    first.wait_for(3, "finished WorkerSquare", finished_square);
    // Mid fan-out: some squares done, two running, the rest waiting on the worker's limit.
    let _ = first.child.kill();
    let _ = first.child.wait();
    first.drain();
    let done_by_first = first.count(finished_square);
    assert!(
        done_by_first < 12,
        "the first worker finished everything: {done_by_first}"
    );

    let mut second = Worker::start(&backend.url(), &[]);
    let status = wait_ended(dir.path(), "killed", &backend);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], sum_of_squares(12), "{status}");
    let _ = second.child.kill();
    let _ = second.child.wait();
    second.drain();
    assert!(
        second.count(finished_square) >= 12 - done_by_first,
        "the second worker ran what the first left: first {done_by_first}, second said {:#?}",
        second.seen
    );
}

#[test]
fn the_worker_reconnects_when_the_backend_restarts() {
    let dir = ScratchDir::new("worker-reconnect");
    let (grpc, http) = (loopback(), loopback());
    let backend = Backend::start(dir.path(), grpc, http);
    let mut worker = Worker::start(&backend.url(), &[]);
    worker.wait_for(1, "connected", |event| event_is(event, "connected"));
    start_fan_out(dir.path(), "before", 3, 0);
    assert_eq!(
        wait_ended(dir.path(), "before", &backend)["runtimeStatus"],
        "Completed"
    );

    drop(backend);
    worker.wait_for(1, "reconnecting", |event| event_is(event, "reconnecting"));
    let backend = Backend::start(dir.path(), grpc, http);
    worker.wait_for(2, "connected", |event| event_is(event, "connected"));
    start_fan_out(dir.path(), "after", 4, 0);
    let status = wait_ended(dir.path(), "after", &backend);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], sum_of_squares(4), "{status}");
}

#[test]
fn on_sigterm_the_worker_finishes_what_it_holds_and_exits_zero() {
    let dir = ScratchDir::new("worker-drain");
    let backend = Backend::start(dir.path(), loopback(), loopback());
    let mut worker = Worker::start(&backend.url(), &[]);
    worker.wait_for(1, "connected", |event| event_is(event, "connected"));
    start_fan_out(dir.path(), "drained", 2, 2_000);
    worker.wait_for(2, "started WorkerSquare", |event| {
        event_is(event, "started") && event["name"] == "WorkerSquare"
    });
    let term = Command::new("kill")
        .args(["-TERM", &worker.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = worker.child.wait().unwrap();
    worker.drain();
    assert_eq!(exit.code(), Some(0), "events: {:#?}", worker.seen);
    assert_eq!(worker.count(|event| event_is(event, "draining")), 1);
    assert_eq!(
        worker.count(finished_square),
        2,
        "both held squares finished and were accepted: {:#?}",
        worker.seen
    );
    assert_eq!(worker.count(|event| event_is(event, "not_delivered")), 0);
    assert!(
        worker
            .seen
            .last()
            .is_some_and(|event| event_is(event, "stopped"))
    );

    // The orchestration's last episode is for the next worker.
    let _next = Worker::start(&backend.url(), &[]);
    let status = wait_ended(dir.path(), "drained", &backend);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], 1, "{status}");
}
