//! The CLI as a client, through the real binary: with `serve` running on a database, the
//! management and entity commands go through its HTTP API (found by its endpoint file, or
//! `--url`) and print the same bytes as they do from the database once it has stopped; with
//! none running, they open the database themselves; a stale endpoint file is ignored; JSON
//! arguments come from `@FILE` or stdin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;

use binary_support::{binary, durable_emu, stderr, stdout_json};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A `serve` child on `state.db` in its own directory, its HTTP API on a free loopback port;
/// killed when dropped.
struct Served {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Starts `serve` (real clock, so an approval waits for its event) and waits until its API
/// listens.
fn serve() -> Served {
    serve_with(&[])
}

/// As [`serve`], with `extra` arguments (fault rules).
fn serve_with(extra: &[&str]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(binary())
        .args([
            "serve", "--clock", "real", "--grpc", "off", "--http", &addr, "--db", "state.db",
        ])
        .args(extra)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("serve ended before listening: {seen:?}"))
            .unwrap();
        if line.contains("HTTP API on") {
            break;
        }
        seen.push(line);
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        url: format!("http://{addr}"),
        dir,
    }
}

/// Runs the binary on `state.db` in `dir` and insists it succeeded.
fn ok(dir: &Path, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--db", "state.db"]);
    let output = durable_emu(&all, dir);
    assert!(
        output.status.success(),
        "durable-emu {args:?} failed:\n{}",
        stderr(&output)
    );
    output
}

fn line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Runs the binary with `input` on its stdin.
fn with_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn approval_input(dir: &Path) -> String {
    let file = dir.join("approval.json");
    std::fs::write(
        &file,
        json!({"request": "laptop", "timeout_hours": 24}).to_string(),
    )
    .unwrap();
    format!("@{}", file.display())
}

/// The whole life of an approval through a running emulator: start, status, list, raise, wait,
/// then terminate, suspend, resume, restart and purge. `via` is appended to every command
/// (`--url URL`, or nothing to find the emulator by its endpoint file).
fn approval_through_the_emulator(served: &Served, via: &[&str]) {
    let dir = served.dir.path();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(via);
        ok(dir, &all)
    };
    let input = approval_input(dir);
    let id = line(&run(&["start", "ApprovalWorkflow", "--input", &input]));
    assert!(!id.is_empty());

    let status = stdout_json(&run(&["status", &id]));
    assert_eq!(status["name"], "ApprovalWorkflow");
    assert_eq!(status["input"]["request"], "laptop");
    let listed = line(&run(&["list"]));
    assert!(listed.contains(&id), "{listed}");

    // The database is the emulator's: raise goes to it and the instance finishes at once.
    run(&["raise", &id, "Approval", "true"]);
    let ended = stdout_json(&run(&["wait", &id, "--timeout", "30s"]));
    assert_eq!(ended["runtimeStatus"], "Completed", "{ended}");
    assert_eq!(ended["output"], "Approved");
    let completed = line(&run(&["list", "--status", "Completed"]));
    assert!(completed.contains(&id), "{completed}");
    let running = stdout_json(&run(&["list", "--status", "Running", "--json"]));
    assert_eq!(running, json!([]), "the filter goes to the emulator");

    let other = line(&run(&[
        "start",
        "ApprovalWorkflow",
        "--input",
        &input,
        "--instance-id",
        "order-2",
    ]));
    assert_eq!(other, "order-2");
    run(&["suspend", "order-2", "--reason", "lunch"]);
    let suspended = stdout_json(&run(&["status", "order-2"]));
    assert_eq!(suspended["runtimeStatus"], "Suspended");
    run(&["resume", "order-2"]);
    let resumed = stdout_json(&run(&["status", "order-2"]));
    assert_eq!(resumed["runtimeStatus"], "Running");
    let terminated = run(&["terminate", "order-2", "--reason", "no longer needed"]);
    assert!(stderr(&terminated).contains("order-2 is Terminated"));
    let restarted = line(&run(&["restart", "order-2"]));
    assert_ne!(restarted, "order-2");
    assert!(!restarted.is_empty());

    let purged = run(&["purge", &id]);
    assert_eq!(stdout_json(&purged), json!({"instancesDeleted": 1}));
    let mut args = vec!["status", id.as_str(), "--db", "state.db"];
    args.extend(via);
    let gone = durable_emu(&args, dir);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("no instance"), "{}", stderr(&gone));
}

#[test]
fn commands_go_through_the_emulator_named_with_url() {
    let served = serve();
    let url = served.url.clone();
    approval_through_the_emulator(&served, &["--url", &url]);
}

#[test]
fn commands_find_a_running_serve_by_its_endpoint_file() {
    let served = serve();
    let endpoint = served.dir.path().join("state.db.endpoint");
    let until = Instant::now() + Duration::from_secs(10);
    while !endpoint.exists() {
        assert!(
            Instant::now() < until,
            "serve published no endpoint file beside its database"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string(&endpoint).unwrap()).unwrap();
    assert_eq!(published["url"], served.url);
    approval_through_the_emulator(&served, &[]);

    // Killed, serve leaves its file behind: the next command sees it is stale and opens the
    // database itself.
    let mut served = served;
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    assert!(endpoint.exists(), "a killed process removes nothing");
    let listed = ok(served.dir.path(), &["list"]);
    assert!(line(&listed).contains("order-2"), "{}", line(&listed));
}

/// What each printing command writes on stdout, run in `dir` (through whatever runs there).
fn printed(dir: &Path, commands: &[Vec<&str>]) -> Vec<String> {
    commands
        .iter()
        .map(|args| String::from_utf8(ok(dir, args).stdout).unwrap())
        .collect()
}

/// Kills `serve` (its endpoint file stays behind, stale), so the next commands open the
/// database it wrote.
fn stop(served: &mut Served) {
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}

#[test]
fn status_list_wait_export_and_entities_print_the_same_bytes_through_serve_as_from_the_database() {
    let mut served = serve();
    let dir = served.dir.path().to_path_buf();
    let input = approval_input(&dir);
    // Three executions (continue-as-new), a completed instance, one still waiting, an entity.
    let started = [
        vec![
            "start",
            "PeriodicCleanup",
            "--input",
            r#"{"iterations": 2, "interval_hours": 0}"#,
            "--instance-id",
            "cleanup",
        ],
        vec!["start", "HelloSequence", "--instance-id", "hello"],
        vec![
            "start",
            "ApprovalWorkflow",
            "--input",
            &input,
            "--instance-id",
            "ask",
        ],
    ];
    for args in &started {
        ok(&dir, args);
    }
    for id in ["cleanup", "hello"] {
        let ended = stdout_json(&ok(&dir, &["wait", id, "--timeout", "60s"]));
        assert_eq!(ended["runtimeStatus"], "Completed", "{ended}");
    }
    let signalled = stdout_json(&ok(&dir, &["entity", "signal", "@counter@a", "add", "5"]));
    assert_eq!(signalled["entity"]["state"], json!(5), "{signalled}");
    assert_eq!(signalled["operation"]["outcome"]["result"], json!(5));

    let commands: Vec<Vec<&str>> = vec![
        vec!["status", "cleanup", "--history"],
        vec!["status", "hello"],
        vec!["status", "ask", "--history"],
        vec!["list"],
        vec!["list", "--json"],
        vec!["list", "--status", "Completed", "--json"],
        vec!["wait", "cleanup"],
        vec!["export", "cleanup"],
        vec!["entity", "list"],
        vec!["entity", "list", "--state"],
        vec!["entity", "list", "--json"],
        vec!["entity", "get", "@counter@a"],
    ];
    let through_serve = printed(&dir, &commands);
    let status: Value = serde_json::from_str(&through_serve[0]).unwrap();
    assert!(status["executionId"].is_string(), "{status}");
    let starts = status["historyEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["eventType"] == "ExecutionStarted")
        .count();
    assert_eq!(starts, 3, "every execution's history: {status}");
    // The entity table's backlog column is right-aligned in seven characters, then the lock.
    assert!(
        through_serve[8].contains("      0 -"),
        "{}",
        through_serve[8]
    );
    let export: Value = serde_json::from_str(&through_serve[7]).unwrap();
    assert_eq!(export["executions"].as_array().unwrap().len(), 3);

    stop(&mut served);
    assert!(
        dir.join("state.db.endpoint").exists(),
        "a killed serve leaves its file"
    );
    let from_database = printed(&dir, &commands);
    for ((args, served), read) in commands.iter().zip(&through_serve).zip(&from_database) {
        assert_eq!(served, read, "`durable-emu {}` differs", args.join(" "));
    }
}

#[test]
fn import_purge_by_filter_and_terminate_recursive_go_through_serve_and_the_database() {
    // ChargeCard never finishes, so an OrderSaga waits on its ProcessPayment sub-orchestration.
    let mut served = serve_with(&["--fault", "activity=ChargeCard,timeout"]);
    let dir = served.dir.path().to_path_buf();
    ok(&dir, &["start", "HelloSequence", "--instance-id", "hello"]);
    ok(&dir, &["wait", "hello"]);
    let history = ok(&dir, &["status", "hello", "--history"]).stdout;
    let export = ok(&dir, &["export", "hello"]).stdout;
    let file = dir.join("hello.json");
    std::fs::write(&file, &export).unwrap();

    // By filter: nothing created before 2000; every Completed one (hello) otherwise.
    let none = ok(&dir, &["purge", "--created-before", "2000-01-01"]);
    assert_eq!(stdout_json(&none), json!({"instancesDeleted": 0}));
    let purged = ok(&dir, &["purge", "--status", "Completed"]);
    assert_eq!(stdout_json(&purged), json!({"instancesDeleted": 1}));
    let gone = durable_emu(&["status", "hello", "--db", "state.db"], &dir);
    assert!(stderr(&gone).contains("no instance"), "{}", stderr(&gone));

    let imported = ok(&dir, &["import", file.to_str().unwrap()]);
    assert!(
        stderr(&imported).contains("imported hello into the emulator at"),
        "{}",
        stderr(&imported)
    );
    assert_eq!(ok(&dir, &["status", "hello", "--history"]).stdout, history);
    let twice = durable_emu(
        &["import", file.to_str().unwrap(), "--db", "state.db"],
        &dir,
    );
    assert!(!twice.status.success(), "an id in use is refused");
    assert!(stderr(&twice).contains("hello"), "{}", stderr(&twice));
    std::fs::write(dir.join("bad.json"), "{\"format\": \"nope\"}").unwrap();
    let bad = durable_emu(&["import", "bad.json", "--db", "state.db"], &dir);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("bad.json"), "{}", stderr(&bad));

    ok(
        &dir,
        &[
            "start",
            "OrderSaga",
            "--input",
            r#"{"order_id": "o1", "amount": 5}"#,
            "--instance-id",
            "saga",
        ],
    );
    let until = Instant::now() + Duration::from_secs(60);
    let child = loop {
        let listed = stdout_json(&ok(&dir, &["list", "--status", "Running", "--json"]));
        let child = listed.as_array().unwrap().iter().find_map(|status| {
            (status["name"] == "ProcessPayment")
                .then(|| status["instanceId"].as_str().unwrap().to_string())
        });
        if let Some(child) = child {
            break child;
        }
        assert!(
            Instant::now() < until,
            "no sub-orchestration started: {listed}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let terminated = ok(&dir, &["terminate", "saga", "--recursive"]);
    assert!(
        stderr(&terminated).contains("saga is Terminated"),
        "{}",
        stderr(&terminated)
    );
    let ended = stdout_json(&ok(&dir, &["wait", &child, "--timeout", "30s"]));
    assert_eq!(ended["runtimeStatus"], "Terminated", "{ended}");

    // The same filters on the database itself, once serve has stopped.
    stop(&mut served);
    let terminated = ok(&dir, &["purge", "--status", "Terminated,Failed"]);
    assert_eq!(stdout_json(&terminated), json!({"instancesDeleted": 2}));
    let none = ok(&dir, &["purge", "--created-before", "2000-01-01T00:00:00Z"]);
    assert_eq!(stdout_json(&none), json!({"instancesDeleted": 0}));
    let rest = ok(&dir, &["purge", "--created-from", "2000-01-01"]);
    assert_eq!(stdout_json(&rest), json!({"instancesDeleted": 1}));
    assert_eq!(stdout_json(&ok(&dir, &["list", "--json"])), json!([]));

    let nothing = durable_emu(&["purge", "--db", "state.db"], &dir);
    assert!(!nothing.status.success(), "purge needs an id or a filter");
    let running = durable_emu(&["purge", "--status", "Running", "--db", "state.db"], &dir);
    assert!(!running.status.success());
    assert!(
        stderr(&running).contains("only ended"),
        "{}",
        stderr(&running)
    );
    let both = durable_emu(
        &[
            "purge",
            "hello",
            "--status",
            "Completed",
            "--db",
            "state.db",
        ],
        &dir,
    );
    assert!(!both.status.success(), "an id and a filter conflict");
    let not_a_time = durable_emu(
        &["purge", "--created-before", "soon", "--db", "state.db"],
        &dir,
    );
    assert!(
        stderr(&not_a_time).contains("--created-before soon is not a time"),
        "{}",
        stderr(&not_a_time)
    );
}

#[test]
fn with_no_emulator_running_the_commands_open_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let output = with_stdin(
        dir,
        &[
            "start",
            "ApprovalWorkflow",
            "--input",
            "-",
            "--instance-id",
            "a1",
            "--db",
            "state.db",
        ],
        r#"{"request": "desk", "timeout_hours": 1}"#,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(line(&output), "a1");
    let status = stdout_json(&ok(dir, &["status", "a1"]));
    assert_eq!(status["input"]["request"], "desk");
    assert!(line(&ok(dir, &["list"])).contains("a1"));
    let raised = ok(dir, &["raise", "a1", "Approval", "true"]);
    assert!(stderr(&raised).contains("queued"));
    // Nothing replays it: suspend and resume wait in its history for the next episode.
    let suspended = ok(dir, &["suspend", "a1"]);
    assert!(stderr(&suspended).contains("a1: suspend queued"));
    ok(dir, &["resume", "a1"]);
    // Nothing runs it, so wait says so instead of waiting.
    let waited = durable_emu(&["wait", "a1", "--db", "state.db"], dir);
    assert!(!waited.status.success());
    assert!(
        stderr(&waited).contains("no emulator runs"),
        "{}",
        stderr(&waited)
    );
    let terminated = ok(dir, &["terminate", "a1"]);
    assert!(stderr(&terminated).contains("a1 is Terminated"));
    let ended = stdout_json(&ok(dir, &["wait", "a1"]));
    assert_eq!(ended["runtimeStatus"], "Terminated");
    let restarted = line(&ok(dir, &["restart", "a1"]));
    assert!(!restarted.is_empty() && restarted != "a1");
    assert_eq!(
        stdout_json(&ok(dir, &["purge", "a1"])),
        json!({"instancesDeleted": 1})
    );
    let unknown = durable_emu(&["start", "NoSuchThing", "--db", "state.db"], dir);
    assert!(!unknown.status.success());
}

#[test]
fn a_stale_endpoint_file_from_a_killed_emulator_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // A process that has exited, and a port nobody listens on.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        dir.join("state.db.endpoint"),
        json!({"pid": dead, "db": dir.join("state.db"), "url": url}).to_string(),
    )
    .unwrap();
    let input = approval_input(dir);
    let id = line(&ok(dir, &["start", "ApprovalWorkflow", "--input", &input]));
    assert_eq!(
        stdout_json(&ok(dir, &["status", &id]))["name"],
        "ApprovalWorkflow"
    );
}

#[test]
fn a_json_argument_from_a_missing_file_or_with_bad_json_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let missing = durable_emu(
        &[
            "start",
            "ApprovalWorkflow",
            "--input",
            "@nowhere.json",
            "--db",
            "state.db",
        ],
        dir,
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("reading --input from nowhere.json"),
        "{}",
        stderr(&missing)
    );
    std::fs::write(dir.join("bad.json"), "{not json").unwrap();
    let bad = durable_emu(
        &[
            "start",
            "ApprovalWorkflow",
            "--input",
            "@bad.json",
            "--db",
            "state.db",
        ],
        dir,
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("--input in bad.json is not valid JSON"),
        "{}",
        stderr(&bad)
    );
    let stdin_bad = with_stdin(
        dir,
        &["raise", "x", "Approval", "-", "--db", "state.db"],
        "nope",
    );
    assert!(!stdin_bad.status.success());
    assert!(
        stderr(&stdin_bad).contains("the event data in stdin is not valid JSON"),
        "{}",
        stderr(&stdin_bad)
    );
}

#[test]
fn an_emulator_with_a_key_is_reached_with_key_and_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(binary())
        .args([
            "serve",
            "--grpc",
            "off",
            "--http",
            &addr,
            "--http-key",
            "s3cret",
            "--db",
            "state.db",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let served = Served {
        child: {
            let endpoint = dir.path().join("state.db.endpoint");
            let until = Instant::now() + Duration::from_secs(30);
            while !endpoint.exists() {
                if Instant::now() > until {
                    let _ = child.kill();
                    panic!("serve published no endpoint");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            child
        },
        url: format!("http://{addr}"),
        dir,
    };
    let dir = served.dir.path();
    let refused = durable_emu(&["list", "--db", "state.db"], dir);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("requires its key"),
        "{}",
        stderr(&refused)
    );
    ok(dir, &["list", "--key", "s3cret"]);
    // The private routes the printing commands use need the key too.
    let entities = durable_emu(&["entity", "list", "--db", "state.db"], dir);
    assert!(!entities.status.success());
    assert!(
        stderr(&entities).contains("requires its key"),
        "{}",
        stderr(&entities)
    );
    ok(dir, &["entity", "list", "--key", "s3cret"]);
    ok(dir, &["list", "--json", "--key", "s3cret"]);
}

#[test]
fn raise_answers_an_approval_while_the_ui_runs_and_the_ui_removes_its_endpoint_on_exit() {
    if !binary_support::tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (tmux, exit_file) = binary_support::tmux::Tmux::start_ui_with(
        "client",
        120,
        30,
        dir.path(),
        &format!("--grpc off --http 127.0.0.1:{port}"),
    );
    let dir = dir.path();
    let endpoint = dir.join("state.db.endpoint");
    tmux.wait_for("the UI to publish its endpoint", |_| endpoint.exists());
    let input = approval_input(dir);
    let id = line(&ok(
        dir,
        &[
            "start",
            "ApprovalWorkflow",
            "--input",
            &input,
            "--instance-id",
            "ui-1",
        ],
    ));
    assert_eq!(id, "ui-1");
    tmux.wait_for("the UI to show the approval waiting", |screen| {
        binary_support::tmux::line_with(screen, &["ui-1", "Running"]).is_some()
    });
    ok(dir, &["raise", "ui-1", "Approval", "true"]);
    let ended = stdout_json(&ok(dir, &["wait", "ui-1", "--timeout", "30s"]));
    assert_eq!(ended["output"], "Approved", "{ended}");
    tmux.wait_for("the UI to show it completed", |screen| {
        binary_support::tmux::line_with(screen, &["ui-1", "Completed"]).is_some()
    });
    tmux.key("q");
    assert_eq!(binary_support::tmux::wait_for_exit_code(&exit_file), "0");
    assert!(
        !endpoint.exists(),
        "the UI removes its endpoint file on exit"
    );
    // With the UI gone the same command opens the database.
    let status = stdout_json(&ok(dir, &["status", "ui-1"]));
    assert_eq!(status["runtimeStatus"], "Completed");
}

#[test]
fn run_and_entity_signal_take_their_json_from_a_file_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("five.json"), "5").unwrap();
    let signalled = stdout_json(&ok(
        dir,
        &["entity", "signal", "@counter@a", "add", "@five.json"],
    ));
    assert_eq!(signalled["entity"]["state"], json!(5));
    let piped = with_stdin(
        dir,
        &[
            "entity",
            "signal",
            "@counter@a",
            "add",
            "-",
            "--db",
            "state.db",
        ],
        "2",
    );
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(stdout_json(&piped)["entity"]["state"], json!(7));

    std::fs::write(dir.join("city.json"), r#""London""#).unwrap();
    let ran = stdout_json(&ok(
        dir,
        &[
            "run",
            "--orchestration",
            "HelloSequence",
            "--input",
            "@city.json",
        ],
    ));
    assert_eq!(ran["input"], json!("London"));
}
