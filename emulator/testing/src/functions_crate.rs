//! A real function crate in a temporary directory, built by cargo: what hot reload and build
//! pinning are tested with. It holds one orchestration, `Flow` (calls `Greet` "one", waits for the
//! event `Continue`, calls `Greet` "two"), whose activity greeting and the code before its first
//! durable call are filled in per version, so one edit changes behaviour (the greeting) or makes
//! old histories diverge (a timer before the first call).

use durable_emu_engine::cargo_build::{BuildOptions, build_cdylib};
use durable_emu_engine::engine::EngineHandle;
use durable_sdk::history::RuntimeStatus;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The repository's root (this crate is `emulator/testing`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("emulator/testing sits two levels below the workspace root")
        .to_path_buf()
}

/// Builds into the shared end-to-end target directory, so dependencies compile once.
pub fn e2e_build_options() -> BuildOptions {
    BuildOptions {
        target_dir: Some(workspace_root().join("target").join("e2e")),
        ..BuildOptions::default()
    }
}

/// The crate's source: `{GREETING}` is the activity's greeting, `{BEFORE_FIRST_CALL}` code
/// inserted before the orchestrator's first durable call.
pub const FLOW_SOURCE: &str = r#"
use durable_sdk::{ActivityContext, FailureDetails, OrchestrationContext, Registry};
use std::time::Duration;

async fn greet(_ctx: ActivityContext, name: String) -> Result<String, FailureDetails> {
    Ok(format!("{GREETING} {name}"))
}

async fn flow(ctx: OrchestrationContext, _input: ()) -> Result<Vec<String>, FailureDetails> {
    {BEFORE_FIRST_CALL}
    let first: String = ctx.call_activity("Greet", "one").await?;
    let _go: bool = ctx.wait_for_external_event("Continue").await?;
    let second: String = ctx.call_activity("Greet", "two").await?;
    Ok(vec![first, second])
}

fn registry() -> Registry {
    let _ = Duration::from_secs(1);
    Registry::new().orchestrator("Flow", flow).activity("Greet", greet)
}

durable_sdk::export_plugin!(registry);
"#;

/// A timer before the first call: histories recorded without it no longer replay.
pub const TIMER_BEFORE_FIRST_CALL: &str = "ctx.create_timer_after(Duration::from_secs(60)).await?;";

/// The crate, in a temporary directory deleted on drop.
#[derive(Debug)]
pub struct FunctionsCrate {
    dir: tempfile::TempDir,
}

impl FunctionsCrate {
    /// A new crate named `name`, with greeting `GREETING` and nothing before the first call.
    /// `name` must differ between tests: they share a target directory, where a crate's library
    /// path depends only on its name.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let sdk = workspace_root().join("sdk");
        std::fs::write(
            dir.path().join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
                 [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ndurable-sdk = {{ path = {:?} }}\n\n[workspace]\n",
                sdk.display().to_string(),
            ),
        )
        .expect("Cargo.toml written");
        // The workspace's lock keeps dependency versions (and compiled artifacts) shared.
        std::fs::copy(
            workspace_root().join("Cargo.lock"),
            dir.path().join("Cargo.lock"),
        )
        .expect("Cargo.lock copied");
        std::fs::create_dir(dir.path().join("src")).expect("src/ created");
        let functions = Self { dir };
        functions.write("GREETING", "");
        functions
    }

    /// Writes a version of the source.
    pub fn write(&self, greeting: &str, before_first_call: &str) {
        let source = FLOW_SOURCE
            .replace("{GREETING}", greeting)
            .replace("{BEFORE_FIRST_CALL}", before_first_call);
        self.write_raw(&source);
    }

    /// Writes `source` as the crate's `src/lib.rs`.
    pub fn write_raw(&self, source: &str) {
        std::fs::write(self.dir.path().join("src/lib.rs"), source).expect("src/lib.rs written");
    }

    /// The crate directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Builds the current source and returns the library's bytes.
    pub fn build_bytes(&self) -> Vec<u8> {
        let library = build_cdylib(self.path(), &e2e_build_options()).expect("the crate builds");
        std::fs::read(library).expect("the library is readable")
    }
}

/// Waits until a `Flow` instance has its first greeting and waits for `Continue`.
pub fn wait_until_waiting_for_continue(handle: &EngineHandle, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let history = handle.history(id).unwrap();
        let completed = history
            .last()
            .unwrap()
            .events
            .iter()
            .filter(|event| event.kind.type_name() == "TaskCompleted")
            .count();
        if completed == 1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{id} never reached its wait");
}

/// Raises `Continue` on a `Flow` instance and returns its output once it completed.
pub fn finish(handle: &EngineHandle, id: &str) -> Value {
    handle.raise_event(id, "Continue", json!(true)).unwrap();
    let record = handle
        .wait_until_terminal(id, Duration::from_secs(30))
        .unwrap()
        .expect("the instance finishes");
    assert_eq!(record.status, RuntimeStatus::Completed, "{record:?}");
    record.output
}
