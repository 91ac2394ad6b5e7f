//! The headless command line, through the real binary: what a user or a CI script types.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;
use binary_support::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

#[test]
fn run_prints_the_durable_functions_status_and_exits_0_when_completed() {
    let dir = tempfile::tempdir().unwrap();
    let output = durable_emu(
        &[
            "run",
            "--orchestration",
            "HelloSequence",
            "--db",
            ":memory:",
            "--history",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let status = stdout_json(&output);
    assert_eq!(status["name"], "HelloSequence");
    assert_eq!(status["runtimeStatus"], "Completed");
    assert_eq!(
        status["output"],
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
    for field in [
        "instanceId",
        "input",
        "customStatus",
        "createdTime",
        "lastUpdatedTime",
    ] {
        assert!(status.get(field).is_some(), "missing {field}");
    }
    let kinds: Vec<&str> = status["historyEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"OrchestratorStarted"));
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| **kind == "TaskCompleted")
            .count(),
        3
    );
    assert!(kinds.contains(&"ExecutionCompleted"));
    // Nothing was written to the working directory with --db :memory:.
    assert!(!dir.path().join(".durable-emu").exists());
}

#[test]
fn run_uses_the_default_database_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let output = durable_emu(
        &[
            "run",
            "-o",
            "BenchChain",
            "--input",
            "1",
            "--instance-id",
            "c1",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout_json(&output)["output"], json!(6));
    assert!(dir.path().join(".durable-emu/state.db").exists());
    let listed = durable_emu(&["list"], dir.path());
    assert!(String::from_utf8_lossy(&listed.stdout).contains("c1"));
}

#[test]
fn bad_input_exits_2_with_a_clear_message_and_no_instance() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["run", "-o", "NoSuchOrchestration", "--db", ":memory:"],
            "no orchestration named 'NoSuchOrchestration'",
        ),
        (
            &[
                "run",
                "-o",
                "HelloSequence",
                "--input",
                "{not json",
                "--db",
                ":memory:",
            ],
            "--input is not valid JSON",
        ),
        (
            &[
                "run",
                "-o",
                "HelloSequence",
                "--timeout",
                "soon",
                "--db",
                ":memory:",
            ],
            "is not a duration",
        ),
        (
            &[
                "run",
                "/nonexistent/libfunctions.so",
                "-o",
                "HelloSequence",
                "--db",
                ":memory:",
            ],
            "cannot read function library",
        ),
    ];
    for (args, message) in cases {
        let output = durable_emu(args, dir.path());
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn a_database_that_is_not_one_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let content = "my notes ".repeat(500);
    std::fs::write(&path, &content).unwrap();
    let output = durable_emu(
        &["run", "-o", "HelloSequence", "--db", path.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("is not a durable-emu database"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
}

#[test]
fn status_export_purge_import_and_replay_work_against_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let ran = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--instance-id",
            "hello-1",
            "--db",
            db,
        ],
        dir.path(),
    );
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));

    let status = durable_emu(&["status", "hello-1", "--db", db], dir.path());
    assert_eq!(stdout_json(&status)["runtimeStatus"], "Completed");

    let export = durable_emu(&["export", "hello-1", "--db", db], dir.path());
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    let export_path = dir.path().join("hello-1.json");
    std::fs::write(&export_path, &export.stdout).unwrap();

    let purged = durable_emu(&["purge", "hello-1", "--db", db], dir.path());
    assert_eq!(stdout_json(&purged), json!({"instancesDeleted": 1}));
    let gone = durable_emu(&["status", "hello-1", "--db", db], dir.path());
    assert_eq!(gone.status.code(), Some(2));
    assert!(stderr(&gone).contains("no instance 'hello-1'"));

    let imported = durable_emu(
        &["import", export_path.to_str().unwrap(), "--db", db],
        dir.path(),
    );
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
    let status = durable_emu(&["status", "hello-1", "--history", "--db", db], dir.path());
    let status = stdout_json(&status);
    assert_eq!(
        status["output"],
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );

    let replayed = durable_emu(&["replay", "--db", db], dir.path());
    assert_eq!(
        replayed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replayed.stdout)
    );
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("0 nondeterministic"));
}

#[test]
fn replay_reports_a_history_the_code_no_longer_matches_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--instance-id",
            "h",
            "--db",
            db,
        ],
        dir.path(),
    );
    let export = durable_emu(&["export", "h", "--db", db], dir.path());
    // Pretend the history was recorded by code that called another activity as call #1.
    let mut export = stdout_json(&export);
    let events = export["executions"][0]["history"].as_array_mut().unwrap();
    let second_call = events
        .iter_mut()
        .find(|event| event["eventType"] == "TaskScheduled" && event["eventId"] == 1)
        .unwrap();
    second_call["name"] = json!("ChargeCard");
    let path = dir.path().join("changed.json");
    std::fs::write(&path, serde_json::to_vec(&export).unwrap()).unwrap();

    let replayed = durable_emu(
        &["replay", "--history-file", path.to_str().unwrap()],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&replayed.stdout);
    assert_eq!(replayed.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("NONDETERMINISM instance=h"), "{stdout}");
    assert!(stdout.contains(r#"history has call_activity "ChargeCard" (TaskScheduled) as call #1, but the code now makes call_activity "SayHello" (TaskScheduled) as call #1"#), "{stdout}");
    assert!(stdout.contains(r#""sequenceId":1"#), "{stdout}");
}

#[test]
fn import_rejects_a_file_that_is_not_an_export() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.json");
    std::fs::write(&path, "{\"hello\": 1}").unwrap();
    let output = durable_emu(
        &["import", path.to_str().unwrap(), "--db", ":memory:"],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not a durable-emu instance export"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn terminate_without_functions_loaded_ends_the_instance_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    // Waiting for a person on the real clock, a run cut short by its timeout leaves a running
    // instance behind.
    let ran = durable_emu(
        &[
            "run",
            "-o",
            "ApprovalWorkflow",
            "--input",
            r#"{"request":"r","timeout_hours":24}"#,
            "--clock",
            "real",
            "--instance-id",
            "big",
            "--timeout",
            "200ms",
            "--db",
            db,
        ],
        dir.path(),
    );
    assert_eq!(ran.status.code(), Some(1), "{}", stderr(&ran));
    assert!(stderr(&ran).contains("is still"), "{}", stderr(&ran));
    let terminated = durable_emu(
        &["terminate", "big", "--reason", "enough", "--db", db],
        dir.path(),
    );
    assert_eq!(terminated.status.code(), Some(0), "{}", stderr(&terminated));
    let status = stdout_json(&durable_emu(&["status", "big", "--db", db], dir.path()));
    assert_eq!(status["runtimeStatus"], "Terminated");
    assert_eq!(status["output"], "enough");
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for subcommand in [
        "run",
        "list",
        "status",
        "raise",
        "terminate",
        "purge",
        "export",
        "import",
        "replay",
        "bench",
    ] {
        let output = durable_emu(&[subcommand, "--help"], dir.path());
        assert_eq!(output.status.code(), Some(0), "{subcommand}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage:"),
            "{subcommand}"
        );
    }
    for bench in ["fanout", "chain", "replay", "sidecar", "http", "isolate"] {
        let output = durable_emu(&["bench", bench, "--help"], dir.path());
        assert_eq!(output.status.code(), Some(0), "bench {bench}");
    }
}

/// `bench sidecar` runs its fan-outs through the gRPC sidecar (a native worker over loopback)
/// into the database it is given, and reports one RESULT line.
#[test]
fn bench_sidecar_runs_fan_outs_through_the_sidecar_and_reports_a_result_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sidecar.db");
    let db = db.to_str().unwrap();
    let output = durable_emu(
        &[
            "bench",
            "sidecar",
            "--orchestrations",
            "3",
            "--activities",
            "25",
            "--db",
            db,
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = stdout
        .lines()
        .last()
        .expect("bench sidecar printed nothing");
    assert!(
        result.starts_with("RESULT workload=sidecar n=75 orchestrations=3 "),
        "{stdout}"
    );
    assert!(result.contains(" activities_per_sec="), "{stdout}");
    let listed = stdout_json(&durable_emu(&["list", "--db", db, "--json"], dir.path()));
    let instances = listed.as_array().unwrap();
    assert_eq!(instances.len(), 3, "{listed}");
    for instance in instances {
        assert_eq!(instance["name"], "LoadgenFanOut");
        assert_eq!(instance["runtimeStatus"], "Completed");
        assert_eq!(instance["output"], json!(25));
    }
}

/// `bench http` starts its orchestrations over the HTTP API and polls them to the end, fills
/// the store to `--instances`, times status requests, and reports one RESULT line; every
/// instance it made is in the database, completed with the right output.
#[test]
fn bench_http_polls_its_orchestrations_over_http_and_reports_status_latency() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("http.db");
    let db = db.to_str().unwrap();
    let output = durable_emu(
        &[
            "bench",
            "http",
            "-n",
            "12",
            "--clients",
            "4",
            "--instances",
            "30",
            "--requests",
            "40",
            "--poll-interval-ms",
            "1",
            "--db",
            db,
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = stdout.lines().last().expect("bench http printed nothing");
    assert!(
        result.starts_with("RESULT workload=http n=12 clients=4 "),
        "{stdout}"
    );
    for field in [
        " requests_per_sec=",
        " instances=30 ",
        " status_p50_ms=",
        " status_p99_ms=",
        " concurrent_status_p99_ms=",
    ] {
        assert!(result.contains(field), "{field} in {stdout}");
    }
    let listed = stdout_json(&durable_emu(&["list", "--db", db, "--json"], dir.path()));
    let instances = listed.as_array().unwrap();
    assert_eq!(instances.len(), 30, "{listed}");
    let mut inputs: Vec<u64> = instances
        .iter()
        .map(|instance| {
            assert_eq!(instance["name"], "BenchChain");
            assert_eq!(instance["runtimeStatus"], "Completed");
            let input = instance["input"].as_u64().unwrap();
            assert_eq!(instance["output"], json!(input + 5));
            input
        })
        .collect();
    inputs.sort();
    assert_eq!(inputs, (0..30).collect::<Vec<u64>>());
}

#[test]
fn bench_sidecar_refuses_an_empty_workload_and_creates_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sidecar.db");
    let output = durable_emu(
        &[
            "bench",
            "sidecar",
            "--activities",
            "0",
            "--db",
            db.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_ne!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("--orchestrations and --activities must be at least 1"),
        "{}",
        stderr(&output)
    );
    assert!(!db.exists());
}

/// `serve` on a library file: prints engine events as JSON lines, reloads a changed library,
/// and stops cleanly on SIGINT with the database released.
#[cfg(unix)]
#[test]
fn serve_prints_events_reloads_and_stops_cleanly_on_sigint() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap();
    let built = durable_emu_engine::cargo_build::build_cdylib(
        &root.join("sample-functions"),
        &durable_emu_engine::cargo_build::BuildOptions {
            target_dir: Some(root.join("target").join("e2e")),
            ..Default::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("libsamples.so");
    std::fs::copy(&built, &library).unwrap();
    let db = dir.path().join("state.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_durable-emu"))
        .args([
            "serve",
            library.to_str().unwrap(),
            "--events",
            "jsonl",
            "--db",
            db.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_event = |kind: &str| -> Value {
        for line in lines.by_ref() {
            let event: Value = serde_json::from_str(&line.unwrap()).expect("each line is JSON");
            if event["event"] == kind {
                return event;
            }
        }
        panic!("serve ended before a {kind} event");
    };
    let first = next_event("buildLoaded");
    assert_eq!(first["number"], 1);
    assert!(
        first["orchestrators"]
            .as_array()
            .unwrap()
            .contains(&json!("HelloSequence"))
    );

    let mut bytes = std::fs::read(&built).unwrap();
    bytes.extend_from_slice(b"new content, same code");
    std::fs::write(dir.path().join("staged"), bytes).unwrap();
    std::fs::rename(dir.path().join("staged"), &library).unwrap();
    assert_eq!(next_event("buildLoaded")["number"], 2);
    assert!(
        next_event("reloadFinished")["settledToActiveMs"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("stopped; the database is consistent"),
        "{stderr}"
    );
    // The database was released and holds both builds.
    let listed = durable_emu(&["list", "--db", db.to_str().unwrap()], dir.path());
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
}

#[test]
fn run_takes_fault_rules_from_the_command_line_and_scenario_files() {
    let dir = tempfile::tempdir().unwrap();
    let output = durable_emu(
        &[
            "run",
            "-o",
            "OrderSaga",
            "--input",
            r#"{"order_id":"f1","amount":5}"#,
            "--db",
            ":memory:",
            "--history",
            "--fault",
            "activity=ShipOrder,error=CarrierDown:no trucks today",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let status = stdout_json(&output);
    assert_eq!(status["runtimeStatus"], "Failed");
    let root = status["failureDetails"]["innerFailure"]["errorType"].clone();
    assert_eq!(root, "CarrierDown");
    let markers: Vec<&Value> = status["historyEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["eventType"] == "FaultInjected")
        .collect();
    assert_eq!(markers.len(), 1);
    assert_eq!(markers[0]["effect"], "fail CarrierDown: no trucks today");

    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/scenarios/saga-crash.toml");
    let output = durable_emu(
        &[
            "run",
            "-o",
            "OrderSaga",
            "--input",
            r#"{"order_id":"f2","amount":5}"#,
            "--db",
            ":memory:",
            "--faults",
            scenario.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout_json(&output)["output"]["status"], "Shipped");
}

#[test]
fn an_invalid_fault_rule_is_refused_with_the_field_and_the_accepted_values() {
    let dir = tempfile::tempdir().unwrap();
    let output = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--db",
            ":memory:",
            "--fault",
            "activity=SayHello,attempts=3-1,timeout",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("`attempts` must be N or N-M"),
        "{}",
        stderr(&output)
    );
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(
        &bad_file,
        "[[fault]]\nactivity = \"X\"\neffect = \"explode\"\n",
    )
    .unwrap();
    let output = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--db",
            ":memory:",
            "--faults",
            bad_file.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("bad.toml") && message.contains("`effect` must be one of"),
        "{message}"
    );
}

/// `--grpc` with an address another process holds: serve refuses to start, naming the address and
/// the flag (exit 2), and creates no database.
#[test]
fn serve_with_a_grpc_address_in_use_fails_naming_it_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("state.db");
    let output = durable_emu(
        &["serve", "--grpc", &addr, "--db", db.to_str().unwrap()],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&addr), "names the address: {stderr}");
    assert!(stderr.contains("in use"), "says why: {stderr}");
    assert!(stderr.contains("--grpc"), "names the flag: {stderr}");
    assert!(!db.exists(), "no database was created");
    drop(taken);
}

/// The default port taken (by another emulator, say): serve starts anyway, says on stderr that
/// the sidecar is off and why, and still runs the engine (it stops cleanly on SIGINT).
#[cfg(unix)]
#[test]
fn serve_with_the_default_grpc_port_taken_starts_without_the_sidecar_and_says_why() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    // Whoever holds 4001 (this test, or an emulator already running on this machine), serve
    // must not get it.
    let _held = std::net::TcpListener::bind("127.0.0.1:4001");
    if std::net::TcpListener::bind("127.0.0.1:4001").is_ok() {
        panic!("port 4001 could be bound twice; cannot test a taken default port");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_durable-emu"))
        .args(["serve", "--db", "state.db"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = stderr.next().unwrap().unwrap();
    assert!(
        first.contains("sidecar off") && first.contains("4001") && first.contains("--grpc"),
        "says the sidecar is off, why, and what to do: {first}"
    );
    let serving = stderr.next().unwrap().unwrap();
    assert!(serving.contains("is serving"), "the engine runs: {serving}");
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
