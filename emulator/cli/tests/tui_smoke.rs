//! Smoke test of the real binary in a real terminal (docs/architecture.md#tests-in-layers): tmux
//! runs `durable-emu` with the built-in samples; the test types like a user and reads the screen.
//! Sees virtual time playing and pauses and plays it with `.`, starts `HelloSequence` and sees it
//! complete in the history view, fast-forwards `ApprovalWorkflow` to `Escalated`, and quits
//! cleanly (exit code 0).
//!
//! Needs tmux (`.ci/run` installs it). Without tmux it is skipped with a message, except under
//! CI (`CI` set), where a missing tmux is a failure. Timeouts are generous: CI has two cores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;

use binary_support::tmux::{self, Tmux, line_with};

#[test]
fn the_ui_runs_a_chain_fast_forwards_an_approval_and_quits_cleanly() {
    if !tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tmux, exit_file) = Tmux::start_ui("smoke", 100, 30, dir.path());
    tmux.wait_for("the instances view", |screen| {
        screen.contains("1 Instances") && screen.contains("no instances yet")
    });
    // Virtual time plays in the UI; `.` pauses it and plays it again.
    tmux.wait_for("virtual time playing", |screen| screen.contains(" playing"));
    tmux.keys(".");
    tmux.wait_for("virtual time paused", |screen| screen.contains(" paused"));
    tmux.keys(".");
    tmux.wait_for("virtual time playing again", |screen| {
        screen.contains(" playing")
    });

    tmux.command("start HelloSequence");
    tmux.wait_for("HelloSequence to complete", |screen| {
        line_with(screen, &["HelloSequence", "Completed"]).is_some()
    });
    tmux.key("Enter");
    tmux.wait_for("the history view", |screen| {
        screen.contains("ExecutionCompleted") && screen.contains("Hello London!")
    });

    tmux.key("1");
    tmux.command(r#"start ApprovalWorkflow {"request":"smoke","timeout_hours":72}"#);
    tmux.wait_for("the approval to wait", |screen| {
        line_with(screen, &["ApprovalWorkflow", "Running"]).is_some()
    });
    tmux.command("advance 3d");
    tmux.wait_for("the approval to end", |screen| {
        line_with(screen, &["ApprovalWorkflow", "Completed"]).is_some()
    });
    tmux.key("Enter");
    tmux.wait_for("Escalated in its history", |screen| {
        screen.contains("ExecutionCompleted") && screen.contains("Escalated")
    });

    tmux.key("q");
    let code = tmux::wait_for_exit_code(&exit_file);
    assert_eq!(code, "0", "the UI exits with 0");
    assert!(
        dir.path().join(".durable-emu/logs").is_dir(),
        "logs go to .durable-emu/logs/"
    );
}

/// Closing the terminal window (SIGHUP, and a terminal that reads end-of-file) ends the UI: the
/// process does not stay behind spinning, and the gRPC sidecar's port is free again. The Builds
/// view says where the sidecar listens.
#[test]
fn closing_the_terminal_ends_the_ui_and_frees_its_grpc_port() {
    if !tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let (tmux, _exit_file) = Tmux::start_ui_with(
        "hangup",
        100,
        30,
        dir.path(),
        &format!("--grpc 127.0.0.1:{port}"),
    );
    tmux.wait_for("the instances view", |screen| {
        screen.contains("1 Instances")
    });
    tmux.keys("8");
    tmux.wait_for("the sidecar's address in the Builds view", |screen| {
        screen.contains(&format!("gRPC sidecar on 127.0.0.1:{port}"))
    });
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_err(),
        "the UI listens on its --grpc port"
    );
    tmux.close_terminal();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the UI still holds port {port} a minute after its terminal closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
