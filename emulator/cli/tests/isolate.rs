//! `--isolate` through the real binary: the functions of the hostile fixture plugin run in a
//! child `durable-emu worker`, so an activity that aborts ends only that worker. The emulator
//! says what the worker died in, starts another, and the work is delivered again: an activity
//! that aborts only on its first delivery completes; one that always aborts fails its instance
//! with `DeliveryLimitReached` once `--max-deliveries` deliveries were lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;

use binary_support::{durable_emu, hostile_plugin, stderr, stdout_json};

/// `run --isolate` of the hostile plugin's orchestration `name` in `dir` (database `state.db`,
/// at most 60 s), with `extra` arguments.
fn run_isolated(dir: &std::path::Path, name: &str, extra: &[&str]) -> std::process::Output {
    let plugin = hostile_plugin().to_str().unwrap();
    let mut args = vec![
        "run",
        plugin,
        "-o",
        name,
        "--db",
        "state.db",
        "--isolate",
        "--timeout",
        "60s",
    ];
    args.extend_from_slice(extra);
    durable_emu(&args, dir)
}

#[test]
fn an_activity_that_aborts_on_its_first_delivery_ends_only_the_worker_and_completes_on_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("aborted-once");
    let input = serde_json::to_string(marker.to_str().unwrap()).unwrap();
    let output = run_isolated(dir.path(), "AbortOnceFlow", &["--input", &input]);
    let status = stdout_json(&output);
    assert_eq!(status["runtimeStatus"], "Completed", "{}", stderr(&output));
    assert_eq!(status["output"], "survived");
    assert!(marker.exists(), "the first delivery ran (and aborted)");
    let said = stderr(&output);
    assert!(
        said.contains("worker exited with signal 6 (SIGABRT) while running activity AbortOnce #0"),
        "{said}"
    );
}

#[test]
fn an_activity_that_always_aborts_fails_its_instance_at_the_delivery_limit() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_isolated(dir.path(), "AbortAlways", &["--max-deliveries", "2"]);
    let status = stdout_json(&output);
    assert_eq!(status["runtimeStatus"], "Failed", "{}", stderr(&output));
    let failure = &status["failureDetails"];
    let text = failure.to_string();
    assert!(text.contains("DeliveryLimitReached"), "{status}");
    assert!(
        text.contains("activity 'Abort' (#0) was delivered 2 times"),
        "{status}"
    );
    let said = stderr(&output);
    assert_eq!(
        said.matches("worker exited with signal 6").count(),
        2,
        "one worker per delivery: {said}"
    );
}

/// An entity operation that ends the process on every delivery: each delivery ends only the
/// worker, and at the limit the batch's operation fails, so its caller catches
/// `DeliveryLimitReached` instead of the entity being sent to worker after worker forever.
#[test]
fn an_entity_that_always_aborts_fails_its_operation_at_the_delivery_limit() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_isolated(
        dir.path(),
        "CallCrasher",
        &["--input", "\"k\"", "--max-deliveries", "2"],
    );
    let status = stdout_json(&output);
    assert_eq!(status["runtimeStatus"], "Completed", "{}", stderr(&output));
    let caught = status["output"].as_str().unwrap();
    assert!(
        caught.starts_with("caught DeliveryLimitReached: the batch of 1 operation(s) of entity '@crasher@k' was delivered 2 times"),
        "{caught}"
    );
    let said = stderr(&output);
    assert_eq!(
        said.matches("worker exited with signal 6").count(),
        2,
        "one worker per delivery: {said}"
    );
    assert!(said.contains("while running entity"), "{said}");
}

/// A `serve --isolate` child on a library file in its own directory: its engine events (JSON
/// lines on stdout) come through a channel, stderr is kept; killed when dropped.
struct IsolatedServe {
    child: std::process::Child,
    url: String,
    dir: tempfile::TempDir,
    events: std::sync::mpsc::Receiver<serde_json::Value>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// Every event read so far, for failure messages.
    seen: Vec<serde_json::Value>,
}

impl Drop for IsolatedServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl IsolatedServe {
    /// `serve --isolate` in a fresh directory on `libflow.so`, the first build of `functions`;
    /// the library's path, for replacing it with the next build.
    fn on_first_build(
        functions: &durable_emu_testing::functions_crate::FunctionsCrate,
    ) -> (Self, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let library = dir.path().join("libflow.so");
        std::fs::write(&library, functions.build_bytes()).unwrap();
        (Self::start(dir, &library), library)
    }

    fn start(dir: tempfile::TempDir, library: &std::path::Path) -> Self {
        use std::io::{BufRead, BufReader, Read};
        use std::process::{Command, Stdio};
        let addr = format!("127.0.0.1:{}", binary_support::served::free_port());
        let mut child = Command::new(binary_support::binary())
            .args(["serve", library.to_str().unwrap(), "--isolate"])
            .args(["--events", "jsonl", "--grpc", "off", "--http", &addr])
            .args(["--db", "state.db"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, events) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line).expect("each line is JSON");
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        std::thread::spawn({
            let stderr = std::sync::Arc::clone(&stderr);
            move || {
                let mut chunk = [0u8; 4096];
                while let Ok(read) = pipe.read(&mut chunk) {
                    if read == 0 {
                        break;
                    }
                    stderr
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..read]));
                }
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !stderr.lock().unwrap().contains("HTTP API on") {
            assert!(
                std::time::Instant::now() < deadline,
                "serve never listened:\n{}",
                stderr.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        IsolatedServe {
            child,
            url: format!("http://{addr}"),
            dir,
            events,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The next event for which `wanted` holds (within a minute), skipping the others.
    fn next(
        &mut self,
        what: &str,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if wanted(&event) {
                        return event;
                    }
                }
                Err(_) => panic!(
                    "no {what} event; seen: {:#?}\nstderr:\n{}",
                    self.seen,
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    /// Runs a client command against this emulator (`--url`) and returns its stdout, trimmed.
    fn client(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--url", &self.url]);
        let output = durable_emu(&all, self.dir.path());
        assert!(
            output.status.success(),
            "durable-emu {args:?} failed:\n{}",
            stderr(&output)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Raises `Continue` on a `Flow` instance and returns its output once it completed.
    fn finish(&self, id: &str) -> serde_json::Value {
        self.client(&["raise", id, "Continue", "true"]);
        let ended: serde_json::Value =
            serde_json::from_str(&self.client(&["wait", id, "--timeout", "60s"])).unwrap();
        assert_eq!(ended["runtimeStatus"], "Completed", "{ended}");
        ended["output"].clone()
    }
}

/// Hot reload under `--isolate`, through the real binary: `serve --isolate` on a library file;
/// the file is replaced by another build of the crate (renamed into place, as cargo does). Once
/// the new build has passed the replay check, the worker process is replaced (the old one
/// disconnects, a new one connects) and runs the new code: an instance waiting across the
/// reload finishes with the new greeting, a new instance runs only the new code.
#[test]
fn a_hot_reload_restarts_the_worker_on_the_new_build() {
    use durable_emu_testing::functions_crate::FunctionsCrate;
    use serde_json::json;

    let functions = FunctionsCrate::new("isolate-reload");
    let (mut serve, library) = IsolatedServe::on_first_build(&functions);
    let first = serve.next("buildLoaded", |event| event["event"] == "buildLoaded");
    assert_eq!(first["number"], 1);
    let worker = serve.next("workerConnected", |event| {
        event["event"] == "workerConnected"
    })["id"]
        .clone();

    let a = serve.client(&["start", "Flow"]);
    assert_eq!(serve.finish(&a), json!(["GREETING one", "GREETING two"]));
    // b runs its first call on the old build and waits for `Continue` across the reload.
    let b = serve.client(&["start", "Flow"]);
    serve.next("b's first greeting", |event| {
        event["event"] == "historyAppended"
            && event["instanceId"] == b.as_str()
            && event["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|event| event["eventType"] == "TaskCompleted")
    });

    functions.write("HELLO", "");
    let staged = serve.dir.path().join("libflow.so.staged");
    std::fs::write(&staged, functions.build_bytes()).unwrap();
    std::fs::rename(&staged, &library).unwrap();
    assert_eq!(
        serve.next("the new build", |event| event["event"] == "buildLoaded")["number"],
        2
    );
    assert_eq!(
        serve.next("the reload", |event| event["event"] == "reloadFinished")["number"],
        2
    );
    // The worker that ran build #1 goes and another comes.
    // The worker that ran build #1 goes and another comes (the hub may tell these apart in
    // either order).
    let (mut left, mut came) = (false, false);
    while !(left && came) {
        let event = serve.next("the old worker leaving and a new one", |event| {
            event["event"] == "workerDisconnected" || event["event"] == "workerConnected"
        });
        if event["event"] == "workerDisconnected" {
            assert_eq!(event["id"], worker, "only the old worker leaves");
            left = true;
        } else {
            assert_ne!(event["id"], worker);
            came = true;
        }
    }

    assert_eq!(serve.finish(&b), json!(["GREETING one", "HELLO two"]));
    let c = serve.client(&["start", "Flow"]);
    assert_eq!(serve.finish(&c), json!(["HELLO one", "HELLO two"]));
    let said = serve.stderr.lock().unwrap().clone();
    assert!(!said.contains("worker exited"), "no worker died: {said}");
}

/// The replay check before the worker is restarted, under `--isolate` as in process: a build
/// whose code no longer replays a running instance's history suspends that instance with the
/// diff (it stays on its build) instead of handing it to the new worker.
#[test]
fn a_build_that_does_not_replay_an_instance_suspends_it_with_the_diff() {
    use durable_emu_testing::functions_crate::{FunctionsCrate, TIMER_BEFORE_FIRST_CALL};
    use serde_json::json;

    let functions = FunctionsCrate::new("isolate-diverge");
    let (mut serve, library) = IsolatedServe::on_first_build(&functions);
    let b = serve.client(&["start", "Flow"]);
    serve.next("b's first greeting", |event| {
        event["event"] == "historyAppended"
            && event["instanceId"] == b.as_str()
            && event["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|event| event["eventType"] == "TaskCompleted")
    });

    functions.write("GREETING", TIMER_BEFORE_FIRST_CALL);
    let staged = serve.dir.path().join("libflow.so.staged");
    std::fs::write(&staged, functions.build_bytes()).unwrap();
    std::fs::rename(&staged, &library).unwrap();
    let diverged = serve.next("b diverging from build #2", |event| {
        event["event"] == "instanceDiverged" && event["instanceId"] == b.as_str()
    });
    // The check in process: the diff, and the build the instance stays on.
    assert_eq!(diverged["build"], 2, "{diverged}");
    assert_eq!(diverged["pinnedBuild"], 1, "{diverged}");
    assert_eq!(diverged["diff"]["sequenceId"], 0, "{diverged}");
    assert_eq!(
        serve.next("the reload", |event| event["event"] == "reloadFinished")["number"],
        2
    );
    serve.next("the new worker", |event| {
        event["event"] == "workerConnected" && event["id"] != 1
    });
    // Another instance runs start to end on the new build's worker (its timer skipped): by
    // then a probe of b by the new worker would have been answered too, and have said nothing
    // more than the check did.
    let c = serve.client(&["start", "Flow"]);
    assert_eq!(serve.finish(&c), json!(["GREETING one", "GREETING two"]));
    let status: serde_json::Value = serde_json::from_str(&serve.client(&["status", &b])).unwrap();
    assert_eq!(status["runtimeStatus"], "Suspended", "{status}");
    let diverged_again: Vec<&serde_json::Value> = serve
        .seen
        .iter()
        .filter(|event| event["event"] == "instanceDiverged")
        .collect();
    assert_eq!(diverged_again.len(), 1, "{diverged_again:?}");

    // It cannot resume on build #1: the worker runs only the active build.
    let mut resume = vec!["resume", b.as_str(), "--url"];
    resume.push(&serve.url);
    let refused = durable_emu(&resume, serve.dir.path());
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("under --isolate the worker runs only the active build"),
        "{}",
        stderr(&refused)
    );
}
