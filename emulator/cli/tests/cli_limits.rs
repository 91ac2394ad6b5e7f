//! The command line at its limits, through the real binary: bad requests next to a waiting
//! instance change nothing, output to a closed pipe or a slow reader loses nothing and panics
//! never, an orchestrator that never yields holds neither `run --timeout` nor `serve`, and absurd
//! settings are refused with the allowed range.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;
use binary_support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Longer than anything here takes when it works; reaching it means a hang.
const HANG: Duration = Duration::from_secs(120);

fn spawn(args: &[&str], cwd: &Path, stdin: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_durable-emu"))
        .args(args)
        .current_dir(cwd)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the durable-emu binary runs")
}

/// Waits for the child, killing it (and failing) if it hangs.
fn wait_or_kill(child: Child) -> Output {
    let pid = child.id();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    match done.recv_timeout(HANG) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            signal(pid, "KILL");
            panic!("durable-emu (pid {pid}) hung for {HANG:?}");
        }
    }
}

fn signal(pid: u32, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name} {pid}");
}

/// A database in `dir` holding an `ApprovalWorkflow` that waits (on a real-clock timer an hour
/// away) for its answer, with id `waiting`.
fn waiting_approval(dir: &Path) -> String {
    let db = dir.join("state.db").to_str().unwrap().to_string();
    let output = durable_emu(
        &[
            "run",
            "-o",
            "ApprovalWorkflow",
            "--input",
            r#"{"request":"a bigger server","timeout_hours":1}"#,
            "--instance-id",
            "waiting",
            "--clock",
            "real",
            "--timeout",
            "1s",
            "--db",
            &db,
        ],
        dir,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout_json(&output)["runtimeStatus"], "Running");
    db
}

fn status(id: &str, db: &str, dir: &Path) -> Value {
    let output = durable_emu(&["status", id, "--db", db, "--history"], dir);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout_json(&output)
}

#[test]
fn run_with_an_unknown_name_or_a_taken_id_exits_2_and_leaves_a_waiting_instance_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = waiting_approval(dir.path());
    let before = status("waiting", &db, dir.path());

    let unknown = durable_emu(&["run", "-o", "Nope", "--db", &db], dir.path());
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("'Nope'"), "{}", stderr(&unknown));
    assert!(
        stderr(&unknown).contains("ApprovalWorkflow"),
        "names the known ones: {}",
        stderr(&unknown)
    );

    let taken = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--instance-id",
            "waiting",
            "--db",
            &db,
        ],
        dir.path(),
    );
    assert_eq!(taken.status.code(), Some(2), "{}", stderr(&taken));
    assert!(
        stderr(&taken).contains("'waiting' already exists and is still running"),
        "{}",
        stderr(&taken)
    );

    assert_eq!(status("waiting", &db, dir.path()), before);
    let listed = durable_emu(&["list", "--json", "--db", &db], dir.path());
    assert_eq!(stdout_json(&listed).as_array().unwrap().len(), 1);
}

#[test]
fn run_says_which_other_instances_timers_fired_when_it_moved_the_virtual_clock() {
    let dir = tempfile::tempdir().unwrap();
    let db = waiting_approval(dir.path());
    let output = durable_emu(&["run", "-o", "HelloSequence", "--db", &db], dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("moved the shared virtual clock from"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("waiting (ApprovalWorkflow) timer #"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn output_to_a_closed_pipe_ends_quietly_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("many.db").to_str().unwrap().to_string();
    // Enough instances that `list --json` overflows the pipe's buffer.
    let seeded = durable_emu(&["bench", "chain", "-n", "1500", "--db", &db], dir.path());
    assert_eq!(seeded.status.code(), Some(0), "{}", stderr(&seeded));

    let mut child = spawn(&["list", "--json", "--db", &db], dir.path(), Stdio::null());
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "[");
    // The reader is gone (as after `| head -1`).
    let output = wait_or_kill(child);
    assert_eq!(stderr(&output), "", "quiet");
    assert!(
        output.status.signal() == Some(13) || output.status.code() == Some(0),
        "ended by SIGPIPE (141 in a shell) or cleanly, not a panic: {:?}",
        output.status
    );
}

/// Whether process `pid` ignores `SIGPIPE` (bit 13 of `SigIgn` in `/proc/PID/status`).
#[cfg(target_os = "linux")]
fn ignores_sigpipe(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .unwrap()
        .trim();
    u64::from_str_radix(mask, 16).unwrap() & (1 << (13 - 1)) != 0
}

/// The commands that hold sockets keep `SIGPIPE` ignored, unlike `list` above: the HTTP/2 and
/// HTTP stacks write with `writev`, which raises `SIGPIPE` on a connection its peer has closed
/// (`bench sidecar` died of it now and then), and a client that goes away must not end the UI,
/// `serve` or a worker.
#[cfg(target_os = "linux")]
#[test]
fn the_commands_that_hold_sockets_keep_sigpipe_ignored() {
    let dir = tempfile::tempdir().unwrap();
    // A worker with no backend keeps reconnecting; its first status line comes after start-up.
    let mut worker = spawn(
        &["worker", "--connect", "http://127.0.0.1:1", "--no-watch"],
        dir.path(),
        Stdio::null(),
    );
    let mut said = String::new();
    BufReader::new(worker.stderr.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert!(said.starts_with("worker:"), "{said}");
    assert!(ignores_sigpipe(worker.id()), "worker");
    let _ = worker.kill();
    let _ = worker.wait();

    let served = served::serve(&[]);
    assert!(ignores_sigpipe(served.child.id()), "serve");

    if !tmux::available() {
        return;
    }
    let pid_file = dir.path().join("ui.pid");
    let ui = tmux::Tmux::start(
        "sigpipe",
        100,
        30,
        dir.path(),
        &format!(
            "echo $$ > '{}'; exec '{}' --db state.db --grpc off --http off",
            pid_file.display(),
            binary()
        ),
    );
    ui.wait_for("the UI", |screen| screen.contains("Instances"));
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(ignores_sigpipe(pid), "the UI");
    ui.key("q");
}

/// `run --timeout 0s` on a file: the instance is recorded with its first episode and left for
/// a later `serve` to carry on.
fn left_running(dir: &Path, db: &str, args: &[&str]) -> String {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--timeout", "0s", "--db", db]);
    let output = durable_emu(&all, dir);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let printed = stdout_json(&output);
    assert_eq!(printed["runtimeStatus"], "Running", "{printed}");
    printed["instanceId"].as_str().unwrap().to_string()
}

/// An instance recorded but not started yet: its start is held back 1 s (real time) by a fault
/// rule, so the engine that opens the database next does all of its work. (Leaving one half
/// done with `--timeout 0s` depends on how far the run got before the deadline.)
fn left_waiting_to_start(dir: &Path, db: &str, name: &str, input: &str) -> String {
    let rule = format!("orchestration={name},delay=1s");
    let output = durable_emu(
        &[
            "run",
            "-o",
            name,
            "--input",
            input,
            "--db",
            db,
            "--clock",
            "real",
            "--fault",
            &rule,
            "--timeout",
            "0s",
        ],
        dir,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let printed = stdout_json(&output);
    assert_eq!(printed["runtimeStatus"], "Pending", "{printed}");
    printed["instanceId"].as_str().unwrap().to_string()
}

#[test]
fn serve_events_to_a_slow_reader_lose_none() {
    // Enough events (two per activity and more) to overflow the engine's lossy broadcast (16,384).
    const N: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fan.db").to_str().unwrap().to_string();
    let id = left_waiting_to_start(dir.path(), &db, "FanOutFanIn", &N.to_string());
    let completed_before = status(&id, &db, dir.path())["historyEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["eventType"] == "TaskCompleted")
        .count() as u64;

    let mut child = spawn(
        &["serve", "--events", "jsonl", "--db", &db],
        dir.path(),
        Stdio::null(),
    );
    // A reader that sleeps at first: the pipe and the engine's buffer fill up meanwhile.
    std::thread::sleep(Duration::from_secs(3));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut completed, mut finished, mut started) = (0u64, 0u64, 0u64);
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).expect("each line is JSON");
        match event["event"].as_str().unwrap() {
            "historyAppended" if event["instanceId"] == id.as_str() => {
                completed += event["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|event| event["eventType"] == "TaskCompleted")
                    .count() as u64;
            }
            "activityStarted" => started += 1,
            "activityFinished" => finished += 1,
            "instanceChanged"
                if event["instanceId"] == id.as_str() && event["status"] == "Completed" =>
            {
                break;
            }
            _ => {}
        }
    }
    signal(child.id(), "TERM");
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let output = wait_or_kill(child);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("dropped"), "{}", stderr(&output));
    assert!(rest.iter().all(|line| !line.contains("\"warning\"")));
    assert_eq!(
        completed,
        N - completed_before,
        "every completion recorded while serving was printed"
    );
    assert_eq!(
        started, finished,
        "every activity started was seen finishing"
    );
    assert_eq!(
        status(&id, &db, dir.path())["output"],
        json!((1..=N).map(|i| i * i).sum::<u64>())
    );
}

#[test]
fn serve_stops_cleanly_when_the_reader_of_its_events_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gone.db").to_str().unwrap().to_string();
    let id = left_waiting_to_start(dir.path(), &db, "FanOutFanIn", "3000");
    let mut child = spawn(
        &["serve", "--events", "jsonl", "--db", &db],
        dir.path(),
        Stdio::null(),
    );
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    serde_json::from_str::<Value>(&first).expect("a JSON line");
    let output = wait_or_kill(child);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    // The database was released, with the instance as last committed.
    assert_eq!(status(&id, &db, dir.path())["runtimeStatus"], "Running");
}

#[test]
fn a_spinning_orchestrator_does_not_keep_serve_from_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("spin.db").to_str().unwrap().to_string();
    let plugin = hostile_plugin().to_str().unwrap();
    let id = left_running(dir.path(), &db, &[plugin, "-o", "Spin", "--input", "1"]);

    let mut child = spawn(
        &["serve", plugin, "--events", "jsonl", "--db", &db],
        dir.path(),
        Stdio::null(),
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Its `Echo` is redelivered; once it returns, the next episode spins.
    let echo = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.contains("\"activityStarted\"") && line.contains("\"Echo\""));
    assert!(echo.is_some(), "serve redelivered Echo");
    std::thread::sleep(Duration::from_secs(1));
    signal(child.id(), "TERM");
    // Reading on to the end keeps serve from waiting on a full pipe.
    lines.for_each(drop);
    let output = wait_or_kill(child);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("the episode of {id} (Spin) has been running")),
        "names the stuck episode: {}",
        stderr(&output)
    );
    // What was committed before the spinning episode is intact, and the database was released.
    assert_eq!(status(&id, &db, dir.path())["runtimeStatus"], "Running");
}

#[test]
fn run_timeout_with_a_spinning_orchestrator_returns_printing_the_last_committed_status() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("spin.db").to_str().unwrap().to_string();
    let plugin = hostile_plugin().to_str().unwrap();
    let output = durable_emu(
        &[
            "run",
            plugin,
            "-o",
            "Spin",
            "--input",
            "2",
            "--timeout",
            "2s",
            "--db",
            &db,
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let printed = stdout_json(&output);
    let id = printed["instanceId"].as_str().unwrap();
    assert!(
        stderr(&output).contains(&format!("the episode of {id} (Spin) has been running")),
        "{}",
        stderr(&output)
    );
    let stored = status(id, &db, dir.path());
    for field in [
        "runtimeStatus",
        "input",
        "output",
        "customStatus",
        "createdTime",
        "lastUpdatedTime",
        "executionId",
    ] {
        assert_eq!(printed[field], stored[field], "{field}");
    }
    assert_eq!(printed["runtimeStatus"], "Running");
}

#[test]
fn absurd_worker_counts_are_refused_naming_the_allowed_range() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["run", "-o", "HelloSequence", "--workers", "100000"][..],
        &["run", "-o", "HelloSequence", "--workers", "0"][..],
        &["serve", "--workers", "100000"][..],
        &["--workers", "100000"][..],
        &["bench", "fanout", "--workers", "100000"][..],
    ] {
        let output = durable_emu(args, dir.path());
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("1..=256"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(
        !dir.path().join(".durable-emu").exists(),
        "nothing was opened"
    );
}
