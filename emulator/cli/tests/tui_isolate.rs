//! The terminal UI with `--isolate`, through the real binary in tmux: the built-in samples run in
//! a child `durable-emu worker`, and what the UI does for functions in process works the same.
//! A `MonitorJob` (an activity, a durable timer, an activity) shows its history and waits for its
//! timer on the paused virtual clock; the Clock view's `n` fires it and the worker runs the
//! second check; the replay stepper steps through its history; `f` forks it after its first
//! check, and the fork (its timer fired with `:next`) completes on the worker too; a fault rule
//! added with `:fault` fails `HelloSequence`'s first activity, marked as injected, as in process.
//! An `ApprovalWorkflow` shows the event it waits for (the WAITING column, the history view).
//! The Builds view then shows the one worker process that ran all of it.
//!
//! Needs tmux (`.ci/run` installs it); skipped without it, except under CI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;

use binary_support::tmux::{self, Tmux, line_with};

#[test]
fn history_clock_stepper_fork_and_faults_work_with_the_functions_in_a_worker_process() {
    if !tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tmux, exit_file) = Tmux::start_ui_with(
        "isolate",
        160,
        50,
        dir.path(),
        "--grpc off --http off --isolate --paused",
    );
    tmux.wait_for("the instances view", |screen| {
        screen.contains("1 Instances") && screen.contains("no instances yet")
    });
    tmux.keys("8");
    tmux.wait_for(
        "the Builds view saying the functions are isolated",
        |screen| screen.contains("functions isolated in a worker process (--isolate)"),
    );

    // History: the first check ran on the worker, and the instance waits for its timer (the
    // clock is paused).
    tmux.keys("1");
    tmux.command(
        r#"start MonitorJob {"job_id":"iso","polls_needed":2,"interval_minutes":10,"deadline_hours":24}"#,
    );
    tmux.wait_for("the monitor to wait", |screen| {
        line_with(screen, &["MonitorJob", "Running"]).is_some()
    });
    tmux.key("Enter");
    tmux.wait_for("the first check and the timer in the history", |screen| {
        line_with(screen, &["TaskCompleted", "CheckJobStatus"]).is_some()
            && screen.contains("TimerCreated")
            && screen.contains("waits for: timer due")
    });

    // Clock: the next timer fires; the second check completes the job.
    tmux.keys("7");
    tmux.wait_for("the pending timer in the Clock view", |screen| {
        screen.contains("next timer") && line_with(screen, &["#1", "MonitorJob"]).is_some()
    });
    tmux.keys("n");
    tmux.keys("1");
    // On build #1, the build the worker runs (not an anonymous remote build).
    tmux.wait_for("the monitor to complete on build #1", |screen| {
        line_with(screen, &["MonitorJob", "Completed", "#1"]).is_some()
    });
    tmux.key("Enter");
    tmux.wait_for("the fired timer and the end in the history", |screen| {
        screen.contains("TimerFired") && screen.contains("ExecutionCompleted")
    });

    // The stepper replays the history through the build in process.
    tmux.keys("6");
    tmux.wait_for("the stepper at the last step", |screen| {
        screen.contains("Replay of MonitorJob") && screen.contains("after OrchestratorCompleted")
    });
    tmux.keys("g");
    for _ in 0..6 {
        tmux.keys("l");
    }
    let step = tmux.wait_for("the step after the first check", |screen| {
        screen.contains("step 6/") && screen.contains("after TaskCompleted")
    });
    assert!(
        step.contains("call_activity CheckJobStatus"),
        "the stepper shows the first call:\n{step}"
    );

    // Fork there: the fork's cut episode sets the timer; its timer fired, the worker runs the
    // second check and the fork completes.
    tmux.keys("f");
    tmux.wait_for("the fork's history", |screen| {
        screen.contains("-fork1") && screen.contains("TimerCreated")
    });
    tmux.command("next");
    tmux.keys("1");
    tmux.wait_for("the fork to complete", |screen| {
        line_with(screen, &["MonitorJob", "Completed", "-fork1"]).is_some()
    });

    // What the code waits for, which the sidecar protocol's answer cannot carry, reaches the UI
    // all the same (durable-emu's own note beside the answer).
    tmux.command(r#"start ApprovalWorkflow {"request":"isolated","timeout_hours":72}"#);
    tmux.wait_for("the approval to wait", |screen| {
        line_with(screen, &["ApprovalWorkflow", "Running"]).is_some()
    });
    tmux.key("Enter");
    tmux.wait_for("the awaited event in the history view", |screen| {
        screen.contains("waits for: event 'Approval' · timer due")
    });
    tmux.keys("1");

    // A fault rule fails the first greeting, marked as injected.
    tmux.command("fault activity=SayHello,attempts=1,error=Injected:no greeting today");
    tmux.command("start HelloSequence");
    tmux.wait_for("HelloSequence to fail", |screen| {
        line_with(screen, &["HelloSequence", "Failed"]).is_some()
    });
    tmux.key("Enter");
    let history = tmux.wait_for("the injected failure in the history", |screen| {
        screen.contains("FaultInjected") && screen.contains("ExecutionCompleted")
    });
    assert!(
        line_with(&history, &["TaskFailed", "SayHello"]).is_some(),
        "{history}"
    );
    tmux.keys("9");
    tmux.wait_for(
        "the rule matched and fired once in the Faults view",
        |screen| line_with(screen, &["activity SayHello", "Injected", "1/1"]).is_some(),
    );
    // All of it ran on one worker process, which never died: the Builds view lists it with the
    // items it answered (the first monitor alone is four episodes and two checks; the view
    // refreshes the counts once shown, so the first frame may be older).
    tmux.keys("8");
    let builds = tmux.wait_for("the worker in the Builds view with what it did", |screen| {
        line_with(screen, &["#1", "done", "takes orchestrations"])
            .and_then(done_count)
            .is_some_and(|done| done >= 6)
    });
    assert!(!builds.contains("worker #2"), "{builds}");
    assert!(!builds.contains("worker exited"), "{builds}");

    tmux.keys("q");
    let code = tmux::wait_for_exit_code(&exit_file);
    assert_eq!(code, "0", "the UI exits with 0");
}

/// The count before `done` in a worker's line of the Builds view (`0 in flight  12 done`).
fn done_count(line: &str) -> Option<u32> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|pair| pair[1] == "done")
        .and_then(|pair| pair[0].parse().ok())
}
