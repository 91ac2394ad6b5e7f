//! # durable-emu: the engine behind every front end
//!
//! durable-emu runs durable orchestrations written with `durable-sdk` on a developer's machine.
//! This library is the engine side; the binary (`main.rs`) is the command-line front end.
//!
//! Modules:
//! - [`plugin`]: load a function library (or the built-in samples) and call it through the C ABI.
//! - [`cargo_build`]: build a function crate and find its cdylib.
//! - [`watch`]: hot reload: watch a crate or library and load every good new build.
//! - [`store`]: the SQLite store. [`clock`]: real and virtual time.
//! - [`engine`]: the core thread, workers, commands in and events out.
//! - [`export`]: the status and export JSON shapes.
//! - [`tui`]: the terminal UI, a front end over [`engine::EngineHandle`] (in the library so its
//!   model and views can be tested and benchmarked without a terminal).
//!
//! Layering (DESIGN.md): `durable-sdk` <- this engine <- front ends. The engine modules know
//! nothing of the terminal UI and never import ratatui; only `tui` does. See
//! `docs/architecture.md` for the whole map.

pub mod cargo_build;
pub mod clock;
pub mod engine;
pub mod export;
pub mod faults;
pub mod plugin;
pub mod store;
pub mod tui;
pub mod watch;
