//! Messages: everything that can happen to the UI. Keys, mouse and resizes come from the terminal;
//! engine events from the engine's broadcast stream; [`Outcome`]s are the answers of the
//! background calls `update` asked for; log lines come from the tracing layer; `Tick` lets
//! `update` do work that waits for a quiet moment (loading what went stale) before a frame.

use crate::logs::LogEntry;
use durable_emu_engine::clock::ClockSnapshot;
use durable_emu_engine::engine::{
    EngineEvent, EntityMetadata, EntityOperationRecord, ExecutionHistory,
};
use durable_emu_engine::faults::RuleState;
use durable_emu_engine::inspect::replay::StepResult;
use durable_emu_engine::inspect::rows::CallCounts;
use durable_emu_engine::inspect::waiting::OpenCalls;
use durable_emu_engine::{BuildRecord, InstanceRecord, TimerRow};
use ratatui::crossterm::event::{KeyEvent, MouseEvent};

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A key was pressed.
    Key(KeyEvent),
    /// The mouse was clicked, moved or scrolled.
    Mouse(MouseEvent),
    /// The terminal has a new size (columns, rows).
    Resize(u16, u16),
    /// The engine published an event.
    Engine(EngineEvent),
    /// The UI fell behind the engine and this many events were dropped: reload what is shown.
    EventsLost(u64),
    /// A background call finished.
    Done(Outcome),
    /// A log line for the logs view.
    Log(LogEntry),
    /// The event loop is about to draw: load what went stale.
    Tick,
    /// The event loop read the real clock (just before a `Tick`): a playing virtual clock (or the
    /// real one) moves the UI's now by the real time since the engine last said it.
    RealTime(std::time::Instant),
    /// What the engine's core is running, polled on a timer through the handle (the core
    /// cannot report an episode it is stuck in); `None`: no episode is running.
    Episode(Option<EpisodeRunning>),
    /// SIGTERM or SIGINT arrived: quit as `q` does.
    Quit,
}

/// An orchestration episode inside the functions' code, and for how long so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeRunning {
    /// The instance.
    pub instance_id: String,
    /// Its orchestration.
    pub name: String,
    /// How long the episode has been running.
    pub elapsed: std::time::Duration,
}

/// What a history was counted to: its length, its calls, its open timers and calls.
pub type Counted = (usize, CallCounts, OpenCalls);

/// The answer of a background call (see `command::Command`).
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every instance.
    Instances(Result<Vec<InstanceRecord>, String>),
    /// Call counts and open calls of instances' current executions and the history length they
    /// were counted at (`None`: the history could not be read).
    Counts(Vec<(String, Option<Counted>)>),
    /// One instance's histories (every execution).
    History {
        /// The instance.
        instance_id: String,
        /// Its executions, oldest first.
        result: Result<Vec<ExecutionHistory>, String>,
        /// Loaded for the errors view's tree (a child), not as the selected instance's history.
        child: bool,
    },
    /// Pending timers and the clock (now, playing, auto-skip, an advance under way).
    Timers(Result<(Vec<TimerRow>, ClockSnapshot), String>),
    /// Builds recorded and the active one.
    Builds(Result<(Vec<BuildRecord>, Option<u32>), String>),
    /// Remote workers (connected, and recent disconnects) and the work no executor takes.
    Workers(
        Vec<durable_emu_engine::remote::WorkerSnapshot>,
        Vec<durable_emu_engine::remote::ParkedWork>,
    ),
    /// The fault rules.
    Faults(Result<Vec<RuleState>, String>),
    /// Every entity.
    Entities(Result<Vec<EntityMetadata>, String>),
    /// One entity in full: its record (`None`: it does not exist) and its operation log.
    Entity {
        /// The entity id.
        instance_id: String,
        /// Its record and operation log, or why they could not be read.
        result: Result<(Option<EntityMetadata>, Vec<EntityOperationRecord>), String>,
        /// Loaded for the errors view's tree.
        for_errors: bool,
    },
    /// A fault rule was added, switched or removed (the list is reloaded).
    FaultChanged {
        /// What was done, e.g. `rule 3`.
        label: String,
        /// A message, or why it failed.
        result: Result<String, String>,
    },
    /// A user action finished; `result` is a message for the status line.
    Action {
        /// What was done, e.g. `terminate 3f2a…`.
        label: String,
        /// A message, or why it failed.
        result: Result<String, String>,
    },
    /// An instance was started (by `start`, `restart` or a fork): select it.
    Started {
        /// What was done.
        label: String,
        /// The new instance id, or why it failed.
        result: Result<String, String>,
    },
    /// A diverged instance's execution was replayed on the active build.
    ReplayedOnActive {
        /// The request's token (older answers are ignored).
        token: u64,
        /// The nondeterminism found (`None`: it replays cleanly), or why the plugin could not
        /// replay.
        result: Result<Option<durable_sdk::protocol::NonDeterminism>, String>,
    },
    /// A replay step was computed.
    Stepped {
        /// The request's token (older answers are ignored).
        token: u64,
        /// The step, or why the plugin could not run it.
        result: Result<Box<StepResult>, String>,
    },
}
