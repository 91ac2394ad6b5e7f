//! # durable-emu-engine: the engine behind every front end
//!
//! durable-emu runs durable orchestrations written with `durable-sdk` on a developer's machine.
//! This crate is the engine; the terminal UI (`durable-emu-tui`) and the binary (`durable-emu`,
//! the command-line front end) are separate crates that use it.
//!
//! Modules:
//! - [`plugin`]: load a function library (or the built-in samples) and call it through the C ABI.
//! - [`cargo_build`]: build a function crate and find its cdylib.
//! - [`watch`]: hot reload: watch a crate or library and load every good new build.
//! - the SQLite store (crate-private; its records are re-exported here). [`clock`]: real and
//!   virtual time.
//! - [`engine`]: the core thread, workers, commands in and events out.
//! - Durable HTTP (crate-private `http_calls`): the host performs each request of the built-in
//!   activity `BuiltIn::HttpActivity` with a blocking client (no redirects, no proxy).
//! - [`remote`]: the hub where remote workers (the gRPC sidecar's SDK workers) take episodes and
//!   activities the loaded plugin lacks, and complete them.
//! - [`export`]: the status and export JSON shapes.
//! - [`inspect`]: pure derivations from a history (rows, timeline, fan-out, error tree, the
//!   replay stepper's calls and the fork plan) that every front end shares.
//!
//! Layering (docs/architecture.md#crates): `durable-sdk` <- this engine <- front ends. The engine knows nothing of
//! any front end: it does not depend on ratatui, crossterm, clap or a network server crate (the
//! `layering` test fails if `cargo tree` shows one); its one network dependency is the blocking
//! HTTP client (ureq) that performs orchestrations' Durable HTTP calls. The store and the core are private to this
//! crate, so front ends reach them only through [`EngineHandle`] (and [`Reader`] for read-only
//! queries). See `docs/architecture.md` for the whole map.

#![warn(missing_docs)]

pub mod cargo_build;
pub mod clock;
pub mod engine;
pub mod export;
pub mod faults;
mod http_calls;
pub mod inspect;
pub mod plugin;
pub mod remote;
mod store;
pub mod watch;

pub use clock::ClockKind;
pub use engine::{
    Engine, EngineConfig, EngineError, EngineEvent, EngineHandle, ExecutionHistory, Limits, Reader,
    RunningEpisode, StoreFailurePolicy,
};
pub use plugin::LoadedPlugin;
pub use remote::{
    ActivityAnswer, NameFilter, PROBE_DEADLINE, ParkedWork, REMOTE_CODE, RemoteError, RemoteHub,
    RemoteWorkItem, WorkFilters, WorkKind, WorkerConnection, WorkerId, WorkerInfo, WorkerSnapshot,
};
pub use store::{
    APPLICATION_ID, BuildRecord, DbLocation, Divergence, ExecutionRecord, InstanceListing,
    InstanceRecord, StoreError, TimerRow, UnreadableInstance,
};
pub use watch::Target;
