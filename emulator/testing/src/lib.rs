//! Test support shared by the emulator's crates (a `publish = false` dev-dependency of the engine,
//! the terminal UI and later the server; docs/architecture.md "Tests, in layers"):
//!
//! - [`history`]: the compact text form of histories and actions (`durable_sdk::testing`,
//!   re-exported: the SDK's own tests use it too, and the SDK cannot depend on this crate);
//! - [`engine`]: an in-memory engine with the built-in samples, and the helpers engine tests
//!   repeat (start and wait, the history of an instance);
//! - [`functions_crate`]: a real function crate in a temporary directory, built by cargo in
//!   versions (hot reload, pinned builds);
//! - `tui` (feature `tui`): the UI harness, the model driven by scripted keys with the real engine
//!   behind the executor.
//!
//! Everything here panics on failure, with a message saying what did not happen: it runs only
//! inside tests. It must not know any test's expectations, only how to drive the crates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod engine;
pub mod functions_crate;
#[cfg(feature = "tui")]
pub mod tui;

/// The compact text form of histories and actions (see `durable_sdk::testing`).
pub mod history {
    pub use durable_sdk::testing::*;
}
