//! The engine knows no front end: `cargo tree -p durable-emu-engine -e normal` must not show a
//! terminal, command-line or network crate (docs/architecture.md "Crates"). A dependency added
//! to the engine by habit fails here, not in review.
//!
//! Runs the `cargo` that runs the tests, `--offline` (everything it reads was fetched to build
//! this test), on the host target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// Crates only a front end may bring in: the terminal UI's, the CLI's and the network's.
const FRONT_END_CRATES: &[&str] = &["ratatui", "crossterm", "clap", "tonic", "axum", "hyper"];

/// The crates in `package`'s normal-dependency tree, one name per line of `cargo tree`.
fn normal_dependencies(package: &str) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The front-end crates among `crates`: a forbidden name or one of its family (`clap_builder`,
/// `hyper-util`).
fn front_end_crates(crates: &[String]) -> Vec<&str> {
    crates
        .iter()
        .map(String::as_str)
        .filter(|name| {
            FRONT_END_CRATES.iter().any(|forbidden| {
                name.strip_prefix(forbidden)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '_']))
            })
        })
        .collect()
}

#[test]
fn the_engine_depends_on_no_terminal_command_line_or_network_crate() {
    let crates = normal_dependencies("durable-emu-engine");
    // The tree was really read: the engine and its store are in it.
    assert_eq!(
        crates.first().map(String::as_str),
        Some("durable-emu-engine")
    );
    assert!(crates.iter().any(|name| name == "rusqlite"), "{crates:?}");
    let found = front_end_crates(&crates);
    assert!(
        found.is_empty(),
        "durable-emu-engine depends on front-end crates {found:?}; move the code that needs them \
         to durable-emu-tui or durable-emu (cargo tree -p durable-emu-engine -e normal -i NAME \
         shows who pulls one in)"
    );
}

#[test]
fn the_check_sees_a_front_end_crate_where_there_is_one() {
    // The terminal UI depends on ratatui (and through it crossterm): the same check finds them.
    let crates = normal_dependencies("durable-emu-tui");
    let found = front_end_crates(&crates);
    assert!(found.contains(&"ratatui"), "{found:?}");
    assert!(found.contains(&"crossterm"), "{found:?}");
}
