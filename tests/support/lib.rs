//! Support for the end-to-end tests: where the workspace is, and building real plugin crates
//! into a target directory of their own (a `cargo build` run from inside `cargo test` would
//! otherwise wait on the outer build's lock on `target/`). `binary` builds and runs the real
//! `durable-emu` the same way; `printed_status` runs the samples through it and reads the status
//! JSON it prints; `python` runs the official Durable Task Python SDK's scenario scripts against
//! `durable-emu serve --grpc`.

#![allow(clippy::expect_used)]

pub mod binary;
pub mod printed_status;
pub mod python;

use durable_emu_engine::cargo_build::{BuildOptions, build_cdylib};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives one level below the workspace root")
        .to_path_buf()
}

/// The target directory end-to-end builds share (separate from the outer `target/debug`).
pub fn e2e_target_dir() -> PathBuf {
    workspace_root().join("target").join("e2e")
}

/// Builds the crate at `dir` (relative to the workspace root) once per test process and returns
/// its cdylib. Panics with cargo's errors if the build fails.
pub fn built_cdylib(dir: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, path)) = built.iter().find(|(known, _)| known == dir) {
        return path.clone();
    }
    let options = BuildOptions {
        target_dir: Some(e2e_target_dir()),
        ..BuildOptions::default()
    };
    let path = build_cdylib(&workspace_root().join(dir), &options)
        .unwrap_or_else(|error| panic!("building {dir} failed: {error}"));
    built.push((dir.to_string(), path.clone()));
    path
}
