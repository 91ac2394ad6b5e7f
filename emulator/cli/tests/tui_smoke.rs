//! Smoke test of the real binary in a real terminal (docs/architecture.md#tests-in-layers): tmux
//! runs
//! `durable-emu` with the built-in samples; the test types like a user and reads the screen.
//! Sees virtual time playing and pauses and plays it with `.`, starts `HelloSequence` and sees it
//! complete in the history view, fast-forwards `ApprovalWorkflow` to `Escalated`, and quits
//! cleanly (exit code 0).
//!
//! Needs tmux (`.ci/run` installs it). Without tmux it is skipped with a message, except under
//! CI (`CI` set), where a missing tmux is a failure. Timeouts are generous: CI has two cores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "smoke"])
    }

    fn keys(&self, literal: &str) {
        self.run(&["send-keys", "-t", "smoke", "-l", literal]);
    }

    fn key(&self, name: &str) {
        self.run(&["send-keys", "-t", "smoke", name]);
    }

    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|output| output.status.success())
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never appeared: the UI did not exit", path.display());
}

#[test]
fn the_ui_runs_a_chain_fast_forwards_an_approval_and_quits_cleanly() {
    if !tmux_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is missing on CI; .ci/run installs it"
        );
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit-code");
    let script = format!(
        "'{}' --db state.db; echo $? > '{}'",
        env!("CARGO_BIN_EXE_durable-emu"),
        exit_file.display()
    );
    let tmux = Tmux {
        socket: format!("durable-emu-smoke-{}", std::process::id()),
    };
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "smoke",
        "-x",
        "100",
        "-y",
        "30",
        "-c",
        dir.path().to_str().unwrap(),
        "sh",
        "-c",
        &script,
    ]);
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

    tmux.keys(":start HelloSequence");
    tmux.key("Enter");
    tmux.wait_for("HelloSequence to complete", |screen| {
        screen
            .lines()
            .any(|line| line.contains("HelloSequence") && line.contains("Completed"))
    });
    tmux.key("Enter");
    tmux.wait_for("the history view", |screen| {
        screen.contains("ExecutionCompleted") && screen.contains("Hello London!")
    });

    tmux.key("1");
    tmux.keys(r#":start ApprovalWorkflow {"request":"smoke","timeout_hours":72}"#);
    tmux.key("Enter");
    tmux.wait_for("the approval to wait", |screen| {
        screen
            .lines()
            .any(|line| line.contains("ApprovalWorkflow") && line.contains("Running"))
    });
    tmux.keys(":advance 3d");
    tmux.key("Enter");
    tmux.wait_for("the approval to end", |screen| {
        screen
            .lines()
            .any(|line| line.contains("ApprovalWorkflow") && line.contains("Completed"))
    });
    tmux.key("Enter");
    tmux.wait_for("Escalated in its history", |screen| {
        screen.contains("ExecutionCompleted") && screen.contains("Escalated")
    });

    tmux.key("q");
    let code = wait_for_file(&exit_file);
    assert_eq!(code.trim(), "0", "the UI exits with 0");
    assert!(
        dir.path().join(".durable-emu/logs").is_dir(),
        "logs go to .durable-emu/logs/"
    );
}
