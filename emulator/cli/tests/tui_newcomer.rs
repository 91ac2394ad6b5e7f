//! A newcomer's first session, at 80x24, in a real terminal (tmux) on the real binary with the
//! built-in samples: every sample is started from the start form with the example input it
//! declares and seen to complete (time moved on where a sample waits on durable timers); an
//! `ApprovalWorkflow` is answered through `r`; a `PeriodicCleanup` fast-forwarded three days runs
//! its cleanup every 6 hours, 12 times; a failure's full text opens from the Errors view.
//!
//! Needs tmux (`.ci/run` installs it); skipped without it except under CI. Timeouts are generous:
//! CI has two cores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;

use binary_support::tmux::{self, Tmux, line_with};

/// Every orchestration the samples register, in the start form's order, with what the newcomer
/// does after starting it: `None` waits for it to complete; `Some(command)` moves time first.
const SAMPLES: [(&str, Option<&str>); 11] = [
    ("BatchOrders", None),
    ("BenchChain", None),
    ("BenchFanOut", None),
    ("CounterDemo", None),
    ("FanOutFanIn", None),
    ("HelloSequence", None),
    ("MonitorJob", Some("advance 3h")),
    ("OrderSaga", None),
    ("PeriodicCleanup", Some("advance 1d")),
    ("ProcessPayment", None),
    ("Transfer", None),
];

/// Opens the start form, moves its selection to `name`, and starts it with the pre-filled input.
fn start_from_form(tmux: &Tmux, name: &str) {
    tmux.key("1");
    tmux.key("n");
    tmux.wait_for("the start form", |screen| {
        screen.contains("Start an orchestration")
    });
    let marker = format!("▸ {name}");
    for _ in 0..20 {
        if tmux.screen().contains(&marker) {
            break;
        }
        tmux.key("Down");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    tmux.wait_for(&format!("{name} selected in the form"), |screen| {
        screen.contains(&marker)
    });
    tmux.key("Enter");
    tmux.wait_for("the input focused", |screen| screen.contains("▸ Input"));
    tmux.key("Enter");
    tmux.wait_for(&format!("{name} started and selected"), |screen| {
        !screen.contains("Start an orchestration")
            && screen.contains(&format!("start {name}: started"))
    });
}

/// Opens the selected instance's history and waits for the header to say `status`.
fn history_shows(tmux: &Tmux, name: &str, status: &str) -> String {
    tmux.key("2");
    tmux.wait_for(&format!("{name} {status} in its history"), |screen| {
        line_with(screen, &[status, name, "· execution"]).is_some()
    })
}

#[test]
fn a_newcomer_starts_every_sample_answers_an_approval_fast_forwards_a_cleanup_and_reads_a_failure()
{
    if !tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tmux, exit_file) = Tmux::start_ui("newcomer", 80, 24, dir.path());
    tmux.wait_for("the instances view", |screen| {
        screen.contains("no instances yet")
    });

    for (name, move_time) in SAMPLES {
        start_from_form(&tmux, name);
        if let Some(command) = move_time {
            tmux.command(command);
        }
        history_shows(&tmux, name, "Completed");
    }

    // ApprovalWorkflow waits for a person: the raise form offers the event it waits for.
    start_from_form(&tmux, "ApprovalWorkflow");
    history_shows(&tmux, "ApprovalWorkflow", "Running");
    let screen = tmux.wait_for("what it waits for in the header", |screen| {
        screen.contains("waits for: event 'Approval'")
    });
    assert!(!screen.contains("-00:00"), "no negative offsets:\n{screen}");
    tmux.key("r");
    tmux.wait_for("the raise form picking Approval", |screen| {
        screen.contains("Raise an event") && screen.contains("▸ Approval")
    });
    tmux.key("Enter");
    tmux.wait_for("the payload focused", |screen| screen.contains("▸ Payload"));
    tmux.keys("true");
    tmux.key("Enter");
    tmux.wait_for("the form closed", |screen| {
        !screen.contains("Raise an event")
    });
    let screen = history_shows(&tmux, "ApprovalWorkflow", "Completed");
    assert!(screen.contains("Completed \"Approv"), "approved:\n{screen}");

    // PeriodicCleanup every 6 hours for 12 runs: three days of virtual time run them all.
    tmux.key("1");
    tmux.command(r#"start PeriodicCleanup {"iterations":12,"interval_hours":6}"#);
    tmux.command("advance 3d");
    history_shows(&tmux, "PeriodicCleanup", "Completed");
    tmux.wait_for("the last of 13 executions", |screen| {
        screen.contains("execution 13/13") && screen.contains("ExecutionCompleted")
    });
    // Its result, in full, from the event's JSON.
    tmux.key("G");
    tmux.key("k");
    tmux.key("Enter");
    tmux.wait_for("12 runs in the result", |screen| {
        screen.contains(r#""runs": 12"#)
    });
    tmux.key("Escape");

    // A failure's full text: BatchOrders fails every third order at ShipOrder.
    tmux.key("1");
    tmux.key("/");
    tmux.keys("Failed");
    tmux.key("Enter");
    tmux.wait_for("a failed instance", |screen| {
        line_with(screen, &["Failed"]).is_some()
    });
    tmux.key("5");
    // The tree itself, not only the word "Failed" (the instance list shows it too): Enter before
    // the tree is drawn would have no row to open.
    tmux.wait_for("the errors tree", |screen| {
        screen.contains("Errors of") && screen.contains("chain: ")
    });
    tmux.key("Enter");
    tmux.wait_for("the failure in full, down to its root cause", |screen| {
        screen.contains("failure: TaskFailed")
            && screen.contains("root cause: CarrierUnavailable")
            && screen.contains("line 1/")
    });

    tmux.key("Escape");
    // `q` only after the overlay has closed: an Escape and a `q` that reach the terminal
    // together read as Alt-q, which quits nothing (seen under load).
    tmux.wait_for("the failure overlay to close", |screen| {
        !screen.contains("root cause: CarrierUnavailable") && !screen.contains("line 1/")
    });
    tmux.key("q");
    assert_eq!(
        tmux::wait_for_exit_code(&exit_file),
        "0",
        "the UI exits with 0"
    );
}
