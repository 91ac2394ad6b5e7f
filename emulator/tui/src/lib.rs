//! # The terminal UI: see, step through and steer every orchestration
//!
//! An Elm-style split (docs/architecture.md#the-terminal-ui-emulatorsrctui, the shape gitui and
//! helix use):
//!
//! - [`model`]: everything the UI knows, as plain data. [`msg`]: what can happen to it (a key, a
//!   mouse event, an engine event, the answer of a background call, a tick).
//! - [`update`]: `update(&mut Model, Msg) -> Vec<Command>`, the only code that changes the model.
//!   It is pure: no terminal, no threads, no engine; tests feed it messages and look at the model.
//! - [`command`]: what `update` asks the outside world to do (an engine call, a replay step, a
//!   fork). The [`command::Executor`] runs them on background threads and answers with messages,
//!   so the UI never blocks on SQLite or a plugin call.
//! - [`view`]: widgets that draw from `&Model`; rendering cannot change state. Lists draw only
//!   their visible rows, so 10,000 instances or a 100,000-event history cost the same per frame.
//! - [`app`]: the imperative shell: the terminal, the panic hook, the input and engine-event
//!   threads and the event loop (generic over its input channels, with a render throttle).
//!
//! Pure derivations from a history (one line per event, the failure-propagation tree, bars over
//! virtual time, `when_all` groups, the stepper's requests and calls) are the engine's
//! `durable_emu_engine::inspect`, shared with other front ends. The command
//! line is parsed in [`cmdline`]; the add-a-fault-rule form writes the compact form in
//! [`fault_form`]; every key binding is data, once, in [`keymap`] (what `update` dispatches
//! on, what the help overlay lists via [`keys`], what the README's key table is checked
//! against). [`tree`] draws the `├ └ │` of tree-shaped lists. [`theme`] loads colours from `assets/theme.toml` and honours `NO_COLOR`; [`logs`]
//! sends tracing output to a rolling file and to the logs view. [`textbox`] wraps and scrolls the
//! text overlay every long text opens in.
//!
//! Knows the engine (the `durable-emu-engine` crate) only through `EngineHandle`, its events and
//! the records and `export` shapes it re-exports; the store is private to the engine, and the
//! engine does not depend on this crate.

pub mod app;
pub mod bench;
pub mod cmdline;
pub mod command;
pub mod fault_form;
pub mod input;
pub mod keymap;
pub mod keys;
pub mod layout;
pub mod logs;
pub mod model;
pub mod msg;
pub mod textbox;
pub mod theme;
pub mod tree;
pub mod update;
pub mod view;

pub use app::{AppOptions, run};
pub use model::Model;
pub use msg::Msg;
pub use update::update;
