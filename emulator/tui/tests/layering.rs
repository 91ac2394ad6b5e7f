//! The terminal UI is a front end over the engine's handle: it does not depend on the store
//! (SQLite) directly, nor on a network crate (docs/architecture.md "Crates"). Reads
//! `cargo tree`, `--offline`, with the `cargo` that runs the tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// The crate names `cargo tree -p durable-emu-tui -e normal` prints, with `extra` arguments.
fn tui_dependencies(extra: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            "durable-emu-tui",
        ])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_tui_reaches_the_store_only_through_the_engine_and_uses_no_network_crate() {
    let direct = tui_dependencies(&["--depth", "1"]);
    assert!(
        direct.iter().any(|name| name == "durable-emu-engine"),
        "{direct:?}"
    );
    assert!(direct.iter().any(|name| name == "ratatui"), "{direct:?}");
    assert!(
        !direct.iter().any(|name| name == "rusqlite"),
        "durable-emu-tui depends on rusqlite directly; read through the engine's Reader or handle"
    );
    let all = tui_dependencies(&[]);
    let network: Vec<&String> = all
        .iter()
        .filter(|name| {
            ["tonic", "axum", "hyper"]
                .iter()
                .any(|net| name.starts_with(net))
        })
        .collect();
    assert!(
        network.is_empty(),
        "durable-emu-tui depends on network crates {network:?}"
    );
}
