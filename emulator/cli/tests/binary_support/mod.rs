//! Shared by the tests that drive the real `durable-emu` binary (`cli`, `cli_limits`,
//! `robustness`, `store_safety`): running it, reading what it printed, the hostile fixture plugin.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod served;
pub mod tmux;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The binary cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_durable-emu")
}

/// Runs the binary with `args` in `cwd` (stdin closed) and returns what it did.
pub fn durable_emu(args: &[&str], cwd: &Path) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("the durable-emu binary runs")
}

/// Its stdout as JSON; a panic showing both streams otherwise.
pub fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(output)
        )
    })
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The hostile fixture plugin (`tests/fixtures/hostile-plugin`), built once per test process.
pub fn hostile_plugin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .unwrap();
        durable_emu_engine::cargo_build::build_cdylib(
            &root.join("tests/fixtures/hostile-plugin"),
            &durable_emu_engine::cargo_build::BuildOptions {
                target_dir: Some(root.join("target").join("e2e")),
                ..Default::default()
            },
        )
        .unwrap()
    })
}
