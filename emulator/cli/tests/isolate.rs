//! `--isolate` through the real binary: the functions of the hostile fixture plugin run in a
//! child `durable-emu worker`, so an activity that aborts ends only that worker. The emulator
//! says what the worker died in, starts another, and the work is delivered again: an activity
//! that aborts only on its first delivery completes; one that always aborts fails its instance
//! with `DeliveryLimitReached` once `--max-deliveries` deliveries were lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;

use binary_support::{durable_emu, hostile_plugin, stderr, stdout_json};

#[test]
fn an_activity_that_aborts_on_its_first_delivery_ends_only_the_worker_and_completes_on_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("aborted-once");
    let input = serde_json::to_string(marker.to_str().unwrap()).unwrap();
    let output = durable_emu(
        &[
            "run",
            hostile_plugin().to_str().unwrap(),
            "-o",
            "AbortOnceFlow",
            "--input",
            &input,
            "--db",
            "state.db",
            "--isolate",
            "--timeout",
            "60s",
        ],
        dir.path(),
    );
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
    let output = durable_emu(
        &[
            "run",
            hostile_plugin().to_str().unwrap(),
            "-o",
            "AbortAlways",
            "--db",
            "state.db",
            "--isolate",
            "--max-deliveries",
            "2",
            "--timeout",
            "60s",
        ],
        dir.path(),
    );
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
