//! # durable-sdk: durable orchestrations and activities in Rust
//!
//! Everything a function author needs to write a plugin for durable-emu: an orchestrator
//! coordinates activities through an event-sourced history that is replayed deterministically
//! (the Durable Task model of Azure Durable Functions; see docs/semantics.md).
//!
//! - [`OrchestrationContext`]: activities (with or without [`RetryPolicy`]), sub-orchestrations,
//!   durable timers, external events, sending events, continue-as-new, custom status,
//!   deterministic time and GUIDs, replay-safe logging.
//! - [`when_all`] (fan-out/fan-in) and [`when_any`] (races, e.g. an event against a timeout).
//! - [`ActivityContext`] and [`FailureDetails`]: activities are plain async functions; errors and
//!   panics become failures the orchestrator can match on ([`TaskError`]).
//! - Durable entities (docs/semantics.md#entities): small pieces of named state ([`EntityId`],
//!   `@counter@a`) that run operations one at a time. An entity is an async function of its
//!   [`EntityContext`] (operation, input, state, signals, orchestration starts), or a struct
//!   implementing [`Entity`]; an operation that fails leaves the state as it was. Orchestrations
//!   [`call_entity`](OrchestrationContext::call_entity) (await the answer),
//!   [`signal_entity`](OrchestrationContext::signal_entity) (one-way, also at a time) and
//!   [`lock_entities`](OrchestrationContext::lock_entities) for a [`CriticalSection`] in which
//!   nobody else touches the locked entities.
//! - [`Registry`] + [`export_plugin!`]: name your functions and make the crate a plugin.
//!
//! ## A complete plugin
//!
//! `Cargo.toml` of the functions crate:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! durable-sdk = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use durable_sdk::{
//!     ActivityContext, EntityContext, EntityId, FailureDetails, OrchestrationContext, Registry,
//!     RetryPolicy, when_all,
//! };
//! use std::time::Duration;
//!
//! /// Chaining: each call starts after the previous one finished.
//! async fn hello_sequence(
//!     ctx: OrchestrationContext,
//!     _input: (),
//! ) -> Result<Vec<String>, FailureDetails> {
//!     let mut greetings = Vec::new();
//!     for city in ["Tokyo", "Seattle", "London"] {
//!         greetings.push(ctx.call_activity::<String>("SayHello", city).await?);
//!     }
//!     Ok(greetings)
//! }
//!
//! /// Fan-out/fan-in with a retry policy on every call.
//! async fn sum_of_squares(ctx: OrchestrationContext, n: u64) -> Result<u64, FailureDetails> {
//!     let retry = RetryPolicy::new(3, Duration::from_secs(5)).with_backoff(2.0);
//!     let calls = (1..=n).map(|i| ctx.call_activity_with_retry::<u64>("Square", i, retry.clone()));
//!     Ok(when_all(calls).await?.into_iter().sum())
//! }
//!
//! async fn say_hello(_ctx: ActivityContext, city: String) -> Result<String, FailureDetails> {
//!     Ok(format!("Hello {city}!"))
//! }
//!
//! async fn square(_ctx: ActivityContext, i: u64) -> Result<u64, FailureDetails> {
//!     Ok(i * i)
//! }
//!
//! /// A durable entity: `@counter@<key>` holds a number; operations run one at a time.
//! async fn counter(ctx: EntityContext) -> Result<i64, FailureDetails> {
//!     let mut value: i64 = ctx.state_or_default()?;
//!     if ctx.is_operation("add") {
//!         value += ctx.input::<i64>()?;
//!     } else if !ctx.is_operation("get") {
//!         return Err(ctx.unknown_operation());
//!     }
//!     ctx.set_state(value);
//!     Ok(value)
//! }
//!
//! /// Calls the entity and awaits its answer.
//! async fn count(ctx: OrchestrationContext, n: i64) -> Result<i64, FailureDetails> {
//!     Ok(ctx.call_entity(&EntityId::new("Counter", "a"), "add", n).await?)
//! }
//!
//! pub fn registry() -> Registry {
//!     Registry::new()
//!         .orchestrator("HelloSequence", hello_sequence)
//!         .orchestrator("SumOfSquares", sum_of_squares)
//!         .orchestrator("Count", count)
//!         .activity("SayHello", say_hello)
//!         .activity("Square", square)
//!         .entity("Counter", counter)
//! }
//!
//! durable_sdk::export_plugin!(registry);
//! # fn main() {
//! #     let manifest = durable_plugin_handle().manifest().unwrap();
//! #     assert_eq!(manifest.orchestrators, ["Count", "HelloSequence", "SumOfSquares"]);
//! #     assert_eq!(manifest.entities, ["counter"]);
//! # }
//! ```
//!
//! Then `durable-emu path/to/crate` builds, loads and runs it.
//!
//! ## Rules for orchestrator code
//! Orchestrators are replayed from the start of their history, so they must be deterministic:
//! take time from [`OrchestrationContext::current_utc_date_time`], ids from
//! [`OrchestrationContext::new_guid`], and wait only on durable tasks. Do I/O in activities.
//! A durable call is scheduled when it is made, not when it is awaited.
//!
//! ## The boundary
//! [`ffi`] holds the C ABI (version, vtable, buffers); [`protocol`] the JSON messages; [`history`]
//! the events. Module map: `context` (the calls), `entity_calls` (entity calls, signals and
//! critical sections from an orchestration, and the locking rules), `task` (futures and
//! combinators), `retry`, `executor` (replay + session cache; entity answers matched by request
//! id), `registry`, `activity`, `entity` (entity functions, [`EntityContext`], batches with
//! per-operation rollback), `entity_id`, `failure`, `panic`.

#![warn(missing_docs)]

mod activity;
mod context;
mod entity;
mod entity_calls;
mod entity_id;
mod executor;
mod failure;
pub mod ffi;
pub mod history;
pub mod http;
mod panic;
pub mod protocol;
mod registry;
mod retry;
mod task;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

pub use activity::ActivityContext;
pub use context::{OrchestrationContext, SubOrchestrationOptions};
pub use entity::{ENTITY_NOT_FOUND, Entity, EntityContext, UNKNOWN_OPERATION};
pub use entity_calls::{CriticalSection, EntityLockTask, LOCKING_RULES_VIOLATION};
pub use entity_id::{EntityId, InvalidEntityId};
pub use executor::{DEFAULT_SESSION_CAPACITY, SessionCache};
pub use failure::{
    FailureDetails, NON_DETERMINISM, PANIC, SERIALIZATION, TASK_FAILED, TIMER_OUT_OF_RANGE,
    TaskError, TaskKind,
};
pub use history::{EventKind, HistoryEvent, ParentInstance, RuntimeStatus};
pub use http::{DurableHttpRequest, DurableHttpResponse};
pub use protocol::{LogLevel, OrchestratorInfo};
pub use registry::Registry;
pub use retry::RetryPolicy;
pub use task::{DurableTask, TaskHandle, WhenAll, WhenAny, when_all, when_any};

/// Re-exported for plugins and hosts, so both use the same version.
pub use chrono;
/// Re-exported for plugins and hosts, so both use the same version.
pub use serde_json;

#[doc(hidden)]
pub use durable_sdk_macros::build_id;

/// The version of this SDK, recorded in every plugin's manifest.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Makes the crate a durable-emu plugin from a `fn() -> Registry`.
///
/// Generates the C-ABI entry points `durable_plugin_abi_version` (checked by the host before
/// anything else) and `durable_plugin_vtable`, plus `durable_plugin_handle()` for calling the same
/// plugin in-process (how durable-emu embeds its built-in samples). The registry is built once, on
/// first use; the manifest carries the crate name and version, the SDK version and a build id that
/// is new on every compilation. Every entry runs inside `catch_unwind`.
///
/// Build the crate as a `cdylib` with `panic = "unwind"` (the default). Use it once per library;
/// for a second plugin in the same binary (tests), use [`in_process_plugin!`].
#[macro_export]
macro_rules! export_plugin {
    ($registry:path) => {
        $crate::in_process_plugin!($registry);

        /// The plugin's ABI version (read by the host before anything else).
        #[unsafe(no_mangle)]
        pub extern "C" fn durable_plugin_abi_version() -> u32 {
            $crate::ffi::ABI_VERSION
        }

        /// The plugin's entry points.
        #[unsafe(no_mangle)]
        pub extern "C" fn durable_plugin_vtable() -> &'static $crate::ffi::PluginVTable {
            durable_plugin_handle().vtable()
        }
    };
}

/// Like [`export_plugin!`] but without the exported C symbols: only `durable_plugin_handle()`,
/// which calls the plugin through the same vtable. For tests and hosts that embed a plugin beside
/// another one (exported symbol names must be unique in a binary).
#[macro_export]
macro_rules! in_process_plugin {
    ($registry:path) => {
        static __DURABLE_REGISTRY: ::std::sync::OnceLock<$crate::Registry> =
            ::std::sync::OnceLock::new();

        fn __durable_registry() -> &'static $crate::Registry {
            __DURABLE_REGISTRY.get_or_init($registry)
        }

        extern "C" fn __durable_manifest() -> $crate::ffi::CallResult {
            $crate::ffi::manifest_entry(
                __durable_registry,
                ::core::env!("CARGO_PKG_NAME"),
                ::core::env!("CARGO_PKG_VERSION"),
                $crate::build_id!(),
            )
        }

        unsafe extern "C" fn __durable_orchestrate(
            request: *const u8,
            len: usize,
        ) -> $crate::ffi::CallResult {
            // SAFETY: the host passes `len` readable bytes that live for the call (ffi docs).
            unsafe { $crate::ffi::orchestrate_entry(__durable_registry, request, len) }
        }

        unsafe extern "C" fn __durable_run_activity(
            request: *const u8,
            len: usize,
        ) -> $crate::ffi::CallResult {
            // SAFETY: the host passes `len` readable bytes that live for the call (ffi docs).
            unsafe { $crate::ffi::run_activity_entry(__durable_registry, request, len) }
        }

        unsafe extern "C" fn __durable_run_entity_batch(
            request: *const u8,
            len: usize,
        ) -> $crate::ffi::CallResult {
            // SAFETY: the host passes `len` readable bytes that live for the call (ffi docs).
            unsafe { $crate::ffi::run_entity_batch_entry(__durable_registry, request, len) }
        }

        static __DURABLE_VTABLE: $crate::ffi::PluginVTable = $crate::ffi::PluginVTable {
            abi_version: $crate::ffi::ABI_VERSION,
            manifest: __durable_manifest,
            orchestrate: __durable_orchestrate,
            run_activity: __durable_run_activity,
            free_buf: $crate::ffi::free_buf,
            run_entity_batch: __durable_run_entity_batch,
        };

        /// This plugin, called in-process through the same entry points a host would use.
        pub fn durable_plugin_handle() -> $crate::ffi::PluginHandle {
            $crate::ffi::PluginHandle::new(&__DURABLE_VTABLE)
        }
    };
}
