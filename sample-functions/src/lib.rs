//! The sample functions: each Durable Functions pattern as a runnable orchestration, written the
//! way we want users to write theirs. Built as a cdylib (load it with `durable-emu`) and as an
//! rlib (durable-emu links it in as its built-in library, called through the same plugin entry
//! points).
//!
//! One module per orchestration; [`registry`] names everything; `export_plugin!` makes the crate a
//! plugin. Knows nothing of the emulator: it depends on `durable-sdk` only.

pub mod bench;
pub mod hello_sequence;

use durable_sdk::Registry;

/// Every orchestrator and activity of the samples, by name.
pub fn registry() -> Registry {
    let registry = hello_sequence::register(Registry::new());
    bench::register(registry)
}

durable_sdk::export_plugin!(registry);
