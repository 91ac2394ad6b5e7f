//! Data is never lost, the emulator never loops or hangs: store failures (a full disk), kill -9 at
//! random moments, limits on what one orchestration may ask for, delayed starts across restarts.
//! Everything through the real binary, as a user would meet it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_durable-emu")
}

fn durable_emu(args: &[&str], cwd: &Path) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("the durable-emu binary runs")
}

/// Runs the binary with the file size limited to `blocks` of 1 KiB, as a full disk would: writes
/// past it fail (`SIGXFSZ` ignored, so the write returns an error instead of killing).
fn durable_emu_on_a_full_disk(args: &[&str], cwd: &Path, blocks: u64) -> Output {
    let mut command = format!("trap '' XFSZ; ulimit -f {blocks}; exec '{}'", binary());
    for arg in args {
        command.push_str(&format!(" '{arg}'"));
    }
    Command::new("bash")
        .args(["-c", &command])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("bash runs")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn status(db: &str, id: &str, cwd: &Path) -> Value {
    let output = durable_emu(&["status", id, "--db", db, "--history"], cwd);
    assert!(output.status.success(), "status {id}: {}", stderr(&output));
    json(&output)
}

fn list(db: &str, cwd: &Path) -> Vec<Value> {
    let output = durable_emu(&["list", "--db", db, "--json"], cwd);
    assert!(output.status.success(), "list: {}", stderr(&output));
    json(&output).as_array().cloned().unwrap_or_default()
}

/// Every execution's history of a status: each episode complete (an `OrchestratorStarted` is
/// always followed by its `OrchestratorCompleted`), no task completed twice.
fn assert_history_whole(status: &Value) {
    let id = status["instanceId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let events = status["historyEvents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut open = false;
    let mut completed = std::collections::HashSet::new();
    for event in &events {
        match event["eventType"].as_str().unwrap_or_default() {
            "OrchestratorStarted" => {
                assert!(!open, "{id}: an episode started inside another");
                open = true;
            }
            "OrchestratorCompleted" => {
                assert!(open, "{id}: an episode ended that never started");
                open = false;
            }
            "TaskCompleted" | "TaskFailed" => {
                let task = event["taskScheduledId"].as_i64().unwrap_or(-1);
                assert!(completed.insert(task), "{id}: task #{task} completed twice");
            }
            _ => {}
        }
    }
    assert!(!open, "{id}: history ends inside an episode");
}

#[test]
fn a_full_disk_stops_run_with_the_cause_and_loses_nothing_committed_before() {
    let dir = tempfile::tempdir().unwrap();
    let db = "state.db";
    let hello = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--db",
            db,
            "--instance-id",
            "hello",
            "--history",
        ],
        dir.path(),
    );
    assert!(hello.status.success(), "{}", stderr(&hello));
    let before = status(db, "hello", dir.path());
    let size_kib = std::fs::metadata(dir.path().join(db)).unwrap().len() / 1024;

    // 50,000 scheduled activities are megabytes of history: far over a limit of size + 256 KiB.
    let full = durable_emu_on_a_full_disk(
        &[
            "run",
            "-o",
            "FanOutFanIn",
            "--input",
            "50000",
            "--db",
            db,
            "--instance-id",
            "big",
        ],
        dir.path(),
        size_kib + 256,
    );
    assert_eq!(full.status.code(), Some(2), "stderr: {}", stderr(&full));
    let message = stderr(&full);
    assert!(
        message.contains("the store refused a write") && message.contains("disk I/O error"),
        "the cause is named: {message}"
    );

    // What was committed before is intact; what the failed batch did is not half there.
    assert_eq!(status(db, "hello", dir.path()), before);
    for instance in list(db, dir.path()) {
        let id = instance["instanceId"].as_str().unwrap();
        assert_history_whole(&status(db, id, dir.path()));
    }

    // With room again, the same command works on the same database.
    let again = durable_emu(
        &[
            "run",
            "-o",
            "FanOutFanIn",
            "--input",
            "2000",
            "--db",
            db,
            "--instance-id",
            "big2",
        ],
        dir.path(),
    );
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn serve_on_a_full_disk_reports_retries_and_finishes_the_work_when_room_returns() {
    let dir = tempfile::tempdir().unwrap();
    let db = "state.db";
    // A fan-out whose start is held back 1 s of real time: it waits in the store for `serve`.
    let seeded = durable_emu(
        &[
            "run",
            "-o",
            "FanOutFanIn",
            "--input",
            "20000",
            "--db",
            db,
            "--instance-id",
            "fan",
            "--clock",
            "real",
            "--fault",
            "orchestration=FanOutFanIn,delay=1s",
            "--timeout",
            "0s",
        ],
        dir.path(),
    );
    assert_eq!(seeded.status.code(), Some(1), "{}", stderr(&seeded));
    let size_kib = std::fs::metadata(dir.path().join(db)).unwrap().len() / 1024;

    let mut command = format!(
        "trap '' XFSZ; ulimit -f {}; exec '{}' serve --db {db} --clock real --events jsonl",
        size_kib + 256,
        binary()
    );
    command.push_str(" 2>/dev/null");
    let mut serve = Command::new("bash")
        .args(["-c", &command])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = serve.stdout.take().unwrap();
    let (sender, events) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(event) = serde_json::from_str(&line) {
                if sender.send(event).is_err() {
                    break;
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failures = Vec::new();
    while failures.len() < 2 && Instant::now() < deadline {
        if let Ok(event) = events.recv_timeout(Duration::from_secs(1)) {
            if event["event"] == "storeFailed" {
                failures.push(event);
            }
        }
    }
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(failures.len() >= 2, "serve retried and reported each time");
    assert!(failures.iter().all(|event| event["retrying"] == true));
    assert!(
        failures[0]["message"].as_str().unwrap().contains("'fan'"),
        "the failure names the instance: {}",
        failures[0]
    );

    // Nothing half-written: the instance is still waiting to start, and runs once there is room.
    assert_eq!(status(db, "fan", dir.path())["runtimeStatus"], "Pending");
    let finish = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--db",
            db,
            "--clock",
            "real",
            "--timeout",
            "60s",
        ],
        dir.path(),
    );
    assert!(finish.status.success(), "{}", stderr(&finish));
    let fan = status(db, "fan", dir.path());
    assert_eq!(fan["runtimeStatus"], "Completed", "{fan}");
    assert_history_whole(&fan);
}

#[test]
fn an_endless_fan_out_fails_at_the_action_limit_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = durable_emu(
        &[
            "run",
            "-o",
            "FanOutFanIn",
            "--input",
            "18446744073709551615",
            "--db",
            ":memory:",
            "--timeout",
            "60s",
            "--max-actions-per-episode",
            "5000",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let status = json(&output);
    assert_eq!(status["runtimeStatus"], "Failed");
    assert_eq!(status["failureDetails"]["errorType"], "ActionLimitExceeded");
    assert!(
        status["failureDetails"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("5000"),
        "{status}"
    );
    // Not a timing assertion on performance: a run that ignored the limit would never end.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn payloads_over_the_limit_fail_the_call_that_carried_them() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!("\"{}\"", "x".repeat(4096));
    let start = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--input",
            &big,
            "--db",
            ":memory:",
            "--max-payload",
            "2048",
        ],
        dir.path(),
    );
    assert_eq!(start.status.code(), Some(2));
    assert!(
        stderr(&start).contains("the input is 4098 bytes of JSON; the limit is 2048 bytes"),
        "{}",
        stderr(&start)
    );

    // The order fits, but what the saga builds from it (results and output repeating the order
    // id) does not: the call that carried it fails with the size, the rest of history is whole.
    let order = r#"{"order_id":"ID","amount":5}"#.replace("ID", &"n".repeat(1200));
    let saga = durable_emu(
        &[
            "run",
            "-o",
            "OrderSaga",
            "--input",
            &order,
            "--db",
            ":memory:",
            "--max-payload",
            "2048",
            "--history",
        ],
        dir.path(),
    );
    assert_eq!(saga.status.code(), Some(1), "{}", stderr(&saga));
    let status = json(&saga);
    assert_eq!(status["runtimeStatus"], "Failed");
    let text = status.to_string();
    assert!(
        text.contains("\"errorType\":\"PayloadTooLarge\"")
            && text.contains("the result of activity 'ChargeCard' (#0) is 2448 bytes of JSON"),
        "the oversized result failed its task, naming size and limit: {status}"
    );
}

#[test]
fn a_delayed_start_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = "state.db";
    let first = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--db",
            db,
            "--instance-id",
            "late",
            "--clock",
            "real",
            "--fault",
            "orchestration=HelloSequence,delay=2s",
            "--timeout",
            "0s",
        ],
        dir.path(),
    );
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert_eq!(status(db, "late", dir.path())["runtimeStatus"], "Pending");
    // Another process, later: the held-back start is still in the store and runs when due.
    let second = durable_emu(
        &[
            "run",
            "-o",
            "ApprovalWorkflow",
            "--db",
            db,
            "--clock",
            "real",
            "--timeout",
            "4s",
            "--input",
            r#"{"request":"r1","timeout_hours":1}"#,
        ],
        dir.path(),
    );
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let late = status(db, "late", dir.path());
    assert_eq!(late["runtimeStatus"], "Completed", "{late}");
}
