//! The Entities view in a real terminal (tmux runs `durable-emu` with the built-in samples): a
//! signal typed on the command line runs on the `Counter` sample, `0` shows the counter with its
//! state and operation log, `s` signals it again from the view, and the UI quits cleanly.
//!
//! Needs tmux; skipped without it (a failure under CI), as `tui_smoke` is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;

use binary_support::tmux::{self, Tmux, line_with};

#[test]
fn a_counter_signalled_from_the_ui_shows_its_state_and_log_in_the_entities_view() {
    if !tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tmux, exit_file) = Tmux::start_ui("entities", 100, 30, dir.path());
    tmux.wait_for("the instances view", |screen| {
        screen.contains("1 Instances")
    });
    tmux.command("signal @counter@a add 5");
    tmux.key("0");
    tmux.wait_for("the counter in the entities view", |screen| {
        screen.contains("0 Entities") && line_with(screen, &["@counter@a", "5"]).is_some()
    });
    tmux.wait_for("its operation log", |screen| {
        screen.contains("OPERATION LOG (1)") && screen.contains("signal add 5 → 5")
    });
    // `s` opens the command line with the selected entity.
    tmux.keys("s");
    tmux.wait_for("the pre-filled command line", |screen| {
        screen.contains(":signal @counter@a")
    });
    tmux.keys("add 2");
    tmux.key("Enter");
    tmux.wait_for("the counter at 7", |screen| {
        screen.contains("OPERATION LOG (2)") && screen.contains("signal add 2 → 7")
    });
    tmux.key("q");
    let code = tmux::wait_for_exit_code(&exit_file);
    assert_eq!(code, "0", "the UI exits with 0");
}
