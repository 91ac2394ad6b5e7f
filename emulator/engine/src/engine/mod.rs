//! The durable engine: runs instances of a plugin's orchestrations against the store and the
//! clock, and tells front ends what happened.
//!
//! Threads (docs/architecture.md#the-engine): one core thread owns the store, the clock and every
//! instance, and runs every orchestration episode (so a plugin's session cache lives on one
//! thread); a bounded pool of worker threads runs activities. Front ends talk to the core only
//! through an [`EngineHandle`]: commands in (each a closure run on the core thread, answered on a
//! channel) and a broadcast stream of [`EngineEvent`]s out. The broadcast is lossy by design (a
//! slow front end lags and reloads); a front end that must see every event (`serve --events jsonl`)
//! starts the engine with a bounded *sink* instead ([`Engine::start_with_sink`]), which the core
//! fills with a blocking send after each commit, so a slow reader slows the engine down rather than
//! losing events.
//!
//! The core can be stuck inside a plugin call (an orchestrator that never yields) and then
//! answers nothing; the handle therefore has deadline-bounded calls (`*_within`), publishes
//! which episode is running and since when ([`EngineHandle::running_episode`], readable without
//! the core), and [`Engine::shutdown_within`] gives up on a core that does not stop in time.
//!
//! Owns orchestration execution semantics on the host side (docs/semantics.md, from #episodes to
//! #terminate). Knows nothing of terminals or command lines. See `core` for the batch loop.

mod async_door;
mod core;
mod entities;
mod events;
mod query;
mod reader;
mod rewind;
mod wire;

pub use async_door::{AsyncEngineHandle, Delivery, EventStream};
pub use entities::{
    CleanedEntities, DEFAULT_ENTITY_PAGE, EntityMetadata, EntityOperationOutcome,
    EntityOperationRecord, EntityQuery, EntityRequester,
};
pub use events::EngineEvent;
pub use query::{InstanceIdsQuery, InstanceQuery, PurgeFilter};
pub use reader::Reader;
pub use wire::{WIRE_KINDS, WireKind};

use crate::clock::{ClockError, ClockKind};
use crate::plugin::LoadedPlugin;
use crate::store::{DbLocation, ExecutionRecord, InstanceRecord, StoreError, TimerRow};
use chrono::{DateTime, Utc};
use crossbeam_channel::{Receiver, Sender};
use durable_sdk::history::HistoryEvent;
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How to run an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the store lives.
    pub db: DbLocation,
    /// Real or virtual time.
    pub clock: ClockKind,
    /// Under virtual time, jump to the next timer whenever nothing else can run.
    pub auto_skip: bool,
    /// Under virtual time, start with time running at real speed (the UI) instead of paused
    /// (headless runs, tests and benchmarks, which must not depend on how fast they run).
    pub playing: bool,
    /// Activity worker threads (at least 1).
    pub workers: usize,
    /// The functions to run; without one the engine only answers queries.
    pub plugin: Option<LoadedPlugin>,
    /// Fault rules active from the start (more can be added through the handle).
    pub faults: Vec<crate::faults::FaultRule>,
    /// What to do when the store refuses a batch (disk full, I/O error).
    pub on_store_failure: StoreFailurePolicy,
    /// Limits that keep one instance's demands from taking the emulator down.
    pub limits: Limits,
    /// Run what the loaded plugin lacks on remote workers ([`crate::remote`]): starting an
    /// orchestration the plugin does not have (or with no plugin) is accepted, and the instance
    /// stays Pending until a connected worker takes it. Off, such a start is refused.
    pub remote_workers: bool,
    /// Run no function in this process: every episode, activity and entity batch goes to remote
    /// workers (a child `durable-emu worker` under `--isolate`), even the names the loaded plugin
    /// has. The plugin still serves its manifest, reload checks, the replay stepper and forks,
    /// which replay orchestrator code without running activities. Implies `remote_workers`.
    pub isolated: bool,
}

/// What the engine does when the store refuses a batch: either way nothing of the batch is
/// dispatched or published, and in-memory state goes back to what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailurePolicy {
    /// Report the cause and stop the engine (one-shot commands such as `run`).
    Stop,
    /// Report the cause, reload from the store and try again after a pause (serve, the UI).
    Retry,
}

/// Limits on what one instance may ask of the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deliveries of one activity (or starts of one orchestrator episode) that never finished
    /// because the emulator stopped, before the call is failed instead of run again.
    pub max_deliveries: u32,
    /// Durable calls one episode may make before the orchestration fails.
    pub max_actions_per_episode: u32,
    /// Largest input, result, output or event payload (serialized JSON bytes) the store accepts.
    pub max_payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_deliveries: 3,
            max_actions_per_episode: 100_000,
            max_payload_bytes: 16 * 1024 * 1024,
        }
    }
}

impl EngineConfig {
    /// An in-memory engine on virtual time with auto-skip: what tests and benchmarks use.
    pub fn in_memory(plugin: LoadedPlugin) -> Self {
        Self {
            db: DbLocation::Memory,
            clock: ClockKind::Virtual,
            auto_skip: true,
            playing: false,
            workers: default_workers(),
            plugin: Some(plugin),
            faults: Vec::new(),
            on_store_failure: StoreFailurePolicy::Retry,
            limits: Limits::default(),
            remote_workers: false,
            isolated: false,
        }
    }
}

/// One worker per core, as `--workers` defaults to.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Why an engine command failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The clock refused.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// The stored virtual time cannot be used.
    #[error(transparent)]
    StoredTime(#[from] crate::clock::StoredTimeError),
    /// An import was refused: what it holds cannot be a history.
    #[error(transparent)]
    Import(#[from] crate::export::ImportError),
    /// The instance id is taken by an instance that has ended.
    #[error(
        "instance '{id}' already exists in this database and has ended ({status}); purge it first (durable-emu purge {id}) or import it into another database"
    )]
    InstanceEnded {
        /// The instance.
        id: String,
        /// Its terminal status.
        status: String,
    },
    /// No such orchestration in the loaded functions.
    #[error("no orchestration named '{name}' in the loaded functions (known: {known})")]
    UnknownOrchestration {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// No functions are loaded.
    #[error("no function library is loaded, so nothing can run")]
    NoPlugin,
    /// The instance id is taken by a running instance.
    #[error(
        "instance '{0}' already exists and is still running; pick another id or terminate it first"
    )]
    InstanceExists(String),
    /// No such instance.
    #[error("no instance '{0}' in this database")]
    InstanceNotFound(String),
    /// The instance is terminal and cannot take this command.
    #[error("instance '{id}' is {status} and can no longer {action}")]
    InstanceTerminal {
        /// The instance.
        id: String,
        /// Its terminal status.
        status: String,
        /// What was asked.
        action: &'static str,
    },
    /// A diverged instance cannot be resumed on its build: that build is not loaded (the
    /// emulator restarted and no copy of its library was kept or could be loaded again).
    #[error(
        "instance '{instance_id}' cannot resume: it is suspended because the active build does not replay it, and its own build #{build} is not loaded (its library was not kept across the restart); restart it on the active build or terminate it"
    )]
    BuildNotLoaded {
        /// The instance.
        instance_id: String,
        /// The build it would have to be pinned to.
        build: u32,
    },
    /// The instance is still running and cannot take this command.
    #[error("instance '{0}' is still running; terminate it before purging it")]
    InstanceRunning(String),
    /// The engine has stopped.
    #[error("the engine has stopped")]
    Stopped,
    /// The core did not answer in time: it is busy, most likely inside an episode of the
    /// functions' code that does not yield.
    #[error("the engine did not answer within {waited:?}: {}", describe_busy(.running.as_ref()))]
    Unresponsive {
        /// How long the caller waited.
        waited: Duration,
        /// The episode running at that moment, if any.
        running: Option<RunningEpisode>,
    },
    /// A request was malformed (an empty id or event name, an export that is not a history).
    #[error("{0}")]
    InvalidArgument(String),
    /// A value in a request is larger than `--max-payload` allows.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// No fault rule has this id.
    #[error("no fault rule {0}")]
    FaultRuleNotFound(u32),
    /// The operating system refused to start the engine's core thread.
    #[error("cannot start the engine thread: {0}")]
    EngineThread(#[source] std::io::Error),
    /// The store refused a write, so nothing of the batch the command was part of was recorded.
    #[error("the store refused a write, so nothing of this batch was recorded: {0}")]
    StoreFailed(String),
    /// A start named an id that is taken, and its reuse policy does not allow replacing it.
    #[error(
        "instance '{id}' already exists ({status}); pick another id, or start it with a reuse policy that replaces {status} instances"
    )]
    AlreadyExists {
        /// The instance.
        id: String,
        /// Its status.
        status: String,
    },
    /// The instance has not ended, and the command needs it ended.
    #[error(
        "instance '{id}' is {status} and must have ended (completed, failed or terminated) before it can {action}; wait for it or terminate it first"
    )]
    NotEnded {
        /// The instance.
        id: String,
        /// Its status.
        status: String,
        /// What was asked.
        action: &'static str,
    },
    /// Only a failed instance can be rewound.
    #[error(
        "instance '{id}' is {status}; only a failed instance can be rewound (rewind retries what failed); restart it instead"
    )]
    NotFailed {
        /// The instance.
        id: String,
        /// Its status.
        status: String,
    },
}

/// One execution's history, for views and exports.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionHistory {
    /// The execution.
    pub execution: ExecutionRecord,
    /// Its events, in order.
    pub events: Vec<HistoryEvent>,
    /// For each event, the build whose episode recorded it (`None`: recorded by the host alone,
    /// or imported).
    pub builds: Vec<Option<u32>>,
}

/// The orchestration episode the core is running: set just before the plugin call, cleared just
/// after it, so it is readable while the core itself is stuck in that call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningEpisode {
    /// The instance whose episode runs.
    pub instance_id: String,
    /// Its orchestration.
    pub name: String,
    /// When the plugin call began.
    pub since: Instant,
}

impl std::fmt::Display for RunningEpisode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the episode of {} ({}) has been running for {}s",
            self.instance_id,
            self.name,
            self.since.elapsed().as_secs()
        )
    }
}

fn describe_busy(running: Option<&RunningEpisode>) -> String {
    running.map_or_else(|| "it is busy".to_string(), ToString::to_string)
}

/// Where the core publishes its [`RunningEpisode`].
pub(crate) type RunningSlot = Arc<Mutex<Option<RunningEpisode>>>;

/// A command run on the core thread (`None`: refused unrun, the store is failing); it returns the
/// reply to send once the batch has committed, which is told the cause if the batch failed.
type CoreCall = Box<dyn FnOnce(Option<&mut core::Core>) -> CoreReply + Send>;
pub(crate) type CoreReply = Box<dyn FnOnce(Option<&str>) + Send>;

pub(crate) enum CoreMessage {
    Call(CoreCall),
    ActivityDone(core::ActivityDone),
    EntityBatchDone(core::EntityBatchDone),
    Shutdown,
}

/// A running engine. Dropping it shuts it down (committed state stays in the store).
#[derive(Debug)]
pub struct Engine {
    handle: EngineHandle,
    core: Option<JoinHandle<()>>,
}

/// Commands in, events out. Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    commands: Sender<CoreMessage>,
    events: broadcast::Sender<EngineEvent>,
    /// Why the core stopped on its own (a store failure under [`StoreFailurePolicy::Stop`]).
    stopped_because: std::sync::Arc<std::sync::OnceLock<String>>,
    /// The lossless subscription, when the engine was started with one.
    sink: Option<Sender<EngineEvent>>,
    running: RunningSlot,
    /// Where remote workers connect.
    hub: crate::remote::RemoteHub,
}

impl std::fmt::Debug for CoreMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CoreMessage::Call(_) => "Call",
            CoreMessage::ActivityDone(_) => "ActivityDone",
            CoreMessage::EntityBatchDone(_) => "EntityBatchDone",
            CoreMessage::Shutdown => "Shutdown",
        })
    }
}

impl Engine {
    /// Opens the store, resumes every non-terminal instance and starts the threads.
    pub fn start(config: EngineConfig) -> Result<Self, EngineError> {
        Self::start_subscribed(config).map(|(engine, _)| engine)
    }

    /// Like [`start`](Self::start), with a subscription that also sees the events of start-up
    /// (the first build loaded, the reload check of resumed instances).
    pub fn start_subscribed(
        config: EngineConfig,
    ) -> Result<(Self, broadcast::Receiver<EngineEvent>), EngineError> {
        Self::launch(config, None)
    }

    /// Like [`start`](Self::start), also sending every event, start-up included, to `sink`
    /// (events of the core after each commit, `activityStarted` from the workers, and what
    /// [`EngineHandle::announce`] publishes). Sends block while `sink` is full: whoever holds
    /// the receiver must keep draining it (or drop it) or the engine stops making progress.
    pub fn start_with_sink(
        config: EngineConfig,
        sink: Sender<EngineEvent>,
    ) -> Result<Self, EngineError> {
        Self::launch(config, Some(sink)).map(|(engine, _)| engine)
    }

    fn launch(
        config: EngineConfig,
        sink: Option<Sender<EngineEvent>>,
    ) -> Result<(Self, broadcast::Receiver<EngineEvent>), EngineError> {
        let (commands, inbox) = crossbeam_channel::unbounded();
        let (events, subscription) = broadcast::channel(16_384);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let running = RunningSlot::default();
        let core_commands = commands.clone();
        let core_events = events.clone();
        let stopped_because = std::sync::Arc::new(std::sync::OnceLock::new());
        let core_stopped_because = stopped_because.clone();
        let core_sink = sink.clone();
        let core_running = Arc::clone(&running);
        let hub = crate::remote::RemoteHub::new(commands.clone(), config.limits.max_deliveries);
        let core_hub = hub.clone();
        let core = std::thread::Builder::new()
            .name("durable-emu-core".into())
            .spawn(move || {
                let core = core::Core::open(
                    config,
                    core_commands,
                    core_events,
                    core_stopped_because,
                    core_sink,
                    core_running,
                    core_hub,
                );
                match core {
                    Ok(mut core) => {
                        let _ = ready_tx.send(Ok(()));
                        core.run(inbox);
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            })
            .map_err(EngineError::EngineThread)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((
                Self {
                    handle: EngineHandle {
                        commands,
                        events,
                        stopped_because,
                        sink,
                        running,
                        hub,
                    },
                    core: Some(core),
                },
                subscription,
            )),
            Ok(Err(error)) => {
                let _ = core.join();
                Err(error)
            }
            Err(_) => {
                let _ = core.join();
                Err(EngineError::Stopped)
            }
        }
    }

    /// A handle for commands and events.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Stops the engine after its current batch; everything committed stays in the store.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Asks the core to stop after its current batch, without waiting (see
    /// [`has_stopped`](Self::has_stopped)). Whoever holds a sink keeps draining it meanwhile:
    /// the core may be waiting to publish into it.
    pub fn request_stop(&self) {
        let _ = self.handle.commands.send(CoreMessage::Shutdown);
    }

    /// Whether the core thread has ended (everything it committed is in the store).
    pub fn has_stopped(&self) -> bool {
        self.core.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the engine like [`shutdown`](Self::shutdown), waiting at most `timeout`. Returns
    /// false if the core is still running then (stuck in a plugin call): its thread is left
    /// behind, and whatever its open batch did is rolled back by SQLite when the process exits.
    pub fn shutdown_within(mut self, timeout: Duration) -> bool {
        self.request_stop();
        let deadline = Instant::now() + timeout;
        while !self.has_stopped() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stopped = self.has_stopped();
        match self.core.take() {
            Some(core) if stopped => {
                let _ = core.join();
            }
            // Dropping the join handle detaches the thread; joining it would wait forever.
            _ => {}
        }
        stopped
    }

    fn stop(&mut self) {
        self.request_stop();
        if let Some(core) = self.core.take() {
            let _ = core.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

impl EngineHandle {
    /// Runs `f` on the core thread and returns its answer.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut core::Core) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, EngineError> {
        self.call_deadline(None, f)
    }

    /// Like [`call`](Self::call), giving up after `timeout` (the command stays queued and is
    /// carried out if the core gets to it; only the answer is abandoned).
    fn call_within<R: Send + 'static>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&mut core::Core) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, EngineError> {
        self.call_deadline(Some(timeout), f)
    }

    fn call_deadline<R: Send + 'static>(
        &self,
        timeout: Option<Duration>,
        f: impl FnOnce(&mut core::Core) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, EngineError> {
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        self.commands
            .send(CoreMessage::Call(core_call(f, move |answer| {
                let _ = reply_tx.send(answer);
            })))
            .map_err(|_| self.stopped())?;
        let Some(timeout) = timeout else {
            return reply_rx.recv().map_err(|_| self.stopped())?;
        };
        match reply_rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(EngineError::Unresponsive {
                waited: timeout,
                running: self.running_episode(),
            }),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(self.stopped()),
        }
    }

    /// Why calls fail now that the core has stopped.
    fn stopped(&self) -> EngineError {
        match self.stopped_because.get() {
            Some(cause) => EngineError::StoreFailed(cause.clone()),
            None => EngineError::Stopped,
        }
    }

    /// The orchestration episode the core is inside right now, if any. Answered without the
    /// core, so it works while an episode that never yields holds the core.
    pub fn running_episode(&self) -> Option<RunningEpisode> {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Where remote workers (the gRPC sidecar's) connect, take work and complete it.
    pub fn remote_hub(&self) -> crate::remote::RemoteHub {
        self.hub.clone()
    }

    /// The replay stepper for an instance remote workers run: sends a worker that takes its
    /// orchestration a probe (`probe: true`) with the current execution's history cut after
    /// `step` events (all of it: `None`) and one new `OrchestratorStarted`, and returns the
    /// actions it answers. Nothing is recorded. Blocks until the answer, or
    /// [`PROBE_DEADLINE`](crate::remote::PROBE_DEADLINE).
    pub fn probe_remote(
        &self,
        instance_id: &str,
        step: Option<usize>,
    ) -> Result<durable_sdk::protocol::OrchestratorResponse, crate::remote::RemoteError> {
        let id = instance_id.to_string();
        let (name, request) = self.call(move |core| core.remote_probe_request(&id, step))?;
        // Awaited here, on the caller's thread: the probe needs no runtime, only the hub.
        futures::executor::block_on(
            self.hub
                .probe(&name, request, crate::remote::PROBE_DEADLINE),
        )
    }

    /// Subscribes to engine events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// Starts an instance of orchestration `name`; returns its instance id.
    pub fn start_orchestration(
        &self,
        name: &str,
        input: Value,
        instance_id: Option<String>,
    ) -> Result<String, EngineError> {
        let name = name.to_string();
        self.call(move |core| {
            core.start_instance(
                &name,
                input,
                instance_id,
                None,
                crate::faults::Occurrence::FIRST,
            )
        })
    }

    /// Like [`start_orchestration`](Self::start_orchestration), waiting at most `timeout` for
    /// the answer (which comes once the batch that started it has committed).
    pub fn start_orchestration_within(
        &self,
        name: &str,
        input: Value,
        instance_id: Option<String>,
        timeout: Duration,
    ) -> Result<String, EngineError> {
        let name = name.to_string();
        self.call_within(timeout, move |core| {
            core.start_instance(
                &name,
                input,
                instance_id,
                None,
                crate::faults::Occurrence::FIRST,
            )
        })
    }

    /// Raises an external event on an instance.
    pub fn raise_event(
        &self,
        instance_id: &str,
        name: &str,
        data: Value,
    ) -> Result<(), EngineError> {
        let (instance_id, name) = (instance_id.to_string(), name.to_string());
        self.call(move |core| core.raise_event(&instance_id, &name, data))
    }

    /// Terminates an instance (and, with `recursive`, its running sub-orchestrations).
    pub fn terminate(
        &self,
        instance_id: &str,
        reason: Value,
        recursive: bool,
    ) -> Result<(), EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.terminate(&instance_id, reason, recursive))
    }

    /// Suspends an instance: only resume and terminate are processed until it resumes.
    pub fn suspend(&self, instance_id: &str, reason: Option<String>) -> Result<(), EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.suspend(&instance_id, reason))
    }

    /// Resumes a suspended instance.
    pub fn resume(&self, instance_id: &str, reason: Option<String>) -> Result<(), EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.resume(&instance_id, reason))
    }

    /// Deletes a terminal instance and all its history; returns whether it existed.
    pub fn purge(&self, instance_id: &str) -> Result<bool, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.purge(&instance_id))
    }

    /// Starts a new instance of the same orchestration with the same input; returns its id.
    pub fn restart(&self, instance_id: &str) -> Result<String, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.restart(&instance_id))
    }

    /// Moves virtual time forward by `by` as if that time passed: the timers (and delayed
    /// deliveries) due on the way fire in time order, and each woken orchestration runs, with the
    /// activities it schedules, before the clock moves past it; a [`EngineEvent::ClockMoved`]
    /// marks each step. Answers at once with the time the advance ends at (see
    /// [`EngineHandle::advancing_to`] for whether it got there). An advance while another is under
    /// way extends it. Under auto-skip (or before any build is loaded) the clock jumps at once.
    pub fn advance_clock(&self, by: Duration) -> Result<DateTime<Utc>, EngineError> {
        self.call(move |core| core.advance_clock(by))
    }

    /// Moves virtual time to the next pending timer (after the end of an advance under way),
    /// like [`EngineHandle::advance_clock`]; returns that time, or None if no timer is pending.
    pub fn advance_to_next_timer(&self) -> Result<Option<DateTime<Utc>>, EngineError> {
        self.call(|core| core.advance_to_next_timer())
    }

    /// Where an advance under way is taking virtual time, or None once it got there (everything
    /// due on the way ran, and the clock is at its end).
    pub fn advancing_to(&self) -> Result<Option<DateTime<Utc>>, EngineError> {
        self.call(|core| Ok(core.advancing_to()))
    }

    /// Turns auto-skip on or off.
    pub fn set_auto_skip(&self, on: bool) -> Result<(), EngineError> {
        self.call(move |core| {
            core.set_auto_skip(on);
            Ok(())
        })
    }

    /// Lets virtual time run at real speed (`true`) or stops it where it is (`false`); jumps
    /// (advances, the next timer, auto-skip) work either way. A [`EngineEvent::ClockMoved`]
    /// tells subscribers; the time reached is stored, so a restart never goes back. Returns now.
    pub fn set_clock_playing(&self, playing: bool) -> Result<DateTime<Utc>, EngineError> {
        self.call(move |core| core.set_clock_playing(playing))
    }

    /// The clock as a front end shows it: now, playing or paused, auto-skip, an advance under
    /// way.
    pub fn clock(&self) -> Result<crate::clock::ClockSnapshot, EngineError> {
        self.call(|core| Ok(core.clock_snapshot()))
    }

    /// The clock's now.
    pub fn now(&self) -> Result<DateTime<Utc>, EngineError> {
        self.call(|core| Ok(core.now()))
    }

    /// Pending timers, soonest first.
    pub fn pending_timers(&self) -> Result<Vec<TimerRow>, EngineError> {
        self.call(|core| Ok(core.pending_timers()))
    }

    /// One instance.
    pub fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.instance(&instance_id))
    }

    /// Like [`instance`](Self::instance), waiting at most `timeout` for the answer.
    pub fn instance_within(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> Result<Option<InstanceRecord>, EngineError> {
        let instance_id = instance_id.to_string();
        self.call_within(timeout, move |core| core.instance(&instance_id))
    }

    /// Every instance, newest first.
    pub fn instances(&self) -> Result<Vec<InstanceRecord>, EngineError> {
        self.call(|core| core.instances())
    }

    /// Every execution's history of an instance, oldest execution first.
    pub fn history(&self, instance_id: &str) -> Result<Vec<ExecutionHistory>, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.history(&instance_id))
    }

    /// Like [`history`](Self::history), waiting at most `timeout` for the answer.
    pub fn history_within(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> Result<Vec<ExecutionHistory>, EngineError> {
        let instance_id = instance_id.to_string();
        self.call_within(timeout, move |core| core.history(&instance_id))
    }

    /// Waits (real time) until the instance is terminal; `Ok(None)` on timeout.
    pub fn wait_until_terminal(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> Result<Option<InstanceRecord>, EngineError> {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        // The core holds the weak end: once this call returns, its waiter counts as abandoned.
        let caller = Arc::new(());
        let waiter = core::TerminalWaiter::Blocking {
            reply: done_tx,
            caller: Arc::downgrade(&caller),
        };
        let id = instance_id.to_string();
        self.call(move |core| core.notify_when_terminal(&id, waiter))?;
        match done_rx.recv_timeout(timeout) {
            Ok(record) => Ok(Some(record)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                drop(caller);
                self.abandon_terminal_wait(instance_id);
                Ok(None)
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(self.stopped()),
        }
    }

    /// Makes `plugin` the active build (numbered in load order) and checks every running instance
    /// against it; returns its number.
    pub fn load_build(&self, plugin: LoadedPlugin) -> Result<u32, EngineError> {
        self.call(move |core| core.adopt_build(plugin))
    }

    /// Adds a fault rule (enabled); returns its id.
    pub fn add_fault(&self, rule: crate::faults::FaultRule) -> Result<u32, EngineError> {
        self.call(move |core| Ok(core.add_fault(rule)))
    }

    /// Every fault rule with its switch and counters.
    pub fn faults(&self) -> Result<Vec<crate::faults::RuleState>, EngineError> {
        self.call(|core| Ok(core.faults()))
    }

    /// Turns a fault rule on or off.
    pub fn set_fault_enabled(&self, id: u32, enabled: bool) -> Result<(), EngineError> {
        self.call(move |core| core.set_fault_enabled(id, enabled))
    }

    /// Removes a fault rule.
    pub fn remove_fault(&self, id: u32) -> Result<(), EngineError> {
        self.call(move |core| core.remove_fault(id))
    }

    /// Every build recorded in the database, oldest first.
    pub fn builds(&self) -> Result<Vec<crate::store::BuildRecord>, EngineError> {
        self.call(|core| core.builds())
    }

    /// A loaded build by number (`None`: the active build), for front ends that replay history
    /// themselves (the replay stepper); `Ok(None)` if that build is not loaded in this process.
    pub fn plugin(&self, build: Option<u32>) -> Result<Option<LoadedPlugin>, EngineError> {
        self.call(move |core| Ok(core.plugin(build)))
    }

    /// The number of the active build, if any.
    pub fn active_build(&self) -> Result<Option<u32>, EngineError> {
        self.call(|core| Ok(core.active_build()))
    }

    /// Publishes an event from a component beside the engine (the watcher) to every subscriber.
    pub fn announce(&self, event: EngineEvent) {
        if let Some(sink) = &self.sink {
            // A gone receiver is not an error: nobody wants the events any more.
            let _ = sink.send(event.clone());
        }
        let _ = self.events.send(event);
    }

    /// Forks `instance_id`: a new instance, `<instance_id>-fork<N>`, whose history is the first
    /// `step` events of its current execution (0 to its length), resumed by the engine from
    /// there; with `edit`, the next completion after `step` is replaced (another result, or a
    /// failure) and the fork takes history up to it. A cut inside an episode runs that episode
    /// through the build that recorded the instance (the active build if that one is not loaded),
    /// as the core runs episodes. Returns the fork's id.
    ///
    /// Refused, changing nothing: an unknown instance (`InstanceNotFound`); a step past the end,
    /// before `ExecutionStarted`, after the execution ended, or an edit of something that is not
    /// a completion or with nothing left to complete (`InvalidArgument`); a cut that needs code
    /// run when no functions are loaded (`NoPlugin`).
    pub fn fork(
        &self,
        instance_id: &str,
        step: usize,
        edit: Option<crate::inspect::replay::CompletionEdit>,
    ) -> Result<String, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.fork(&instance_id, step, edit.as_ref()))
    }

    /// Re-creates an instance from an export (its histories and state); returns its id.
    pub fn import(&self, export: crate::export::InstanceExport) -> Result<String, EngineError> {
        self.call(move |core| core.import(export))
    }
}

/// Wraps `f` as a command for the core: `answer` gets its result once the batch has committed,
/// or the batch's failure cause (the one place both the blocking and the async calls build
/// their commands, so they behave alike).
pub(crate) fn core_call<R: Send + 'static>(
    f: impl FnOnce(&mut core::Core) -> Result<R, EngineError> + Send + 'static,
    answer: impl FnOnce(Result<R, EngineError>) + Send + 'static,
) -> CoreCall {
    Box::new(move |core| {
        let result = core.map(|core| {
            let result = f(core);
            if let Err(EngineError::Store(error)) = &result {
                core.store_error_in_command(error);
            }
            result
        });
        Box::new(move |failure: Option<&str>| {
            answer(match (failure, result) {
                (None, Some(result)) => result,
                (Some(cause), _) => Err(EngineError::StoreFailed(cause.to_string())),
                // Refused unrun without a cause: cannot happen, the core always gives one.
                (None, None) => Err(EngineError::Stopped),
            });
        })
    })
}

pub(crate) type CoreInbox = Receiver<CoreMessage>;
pub(crate) use self::core::Core;

// ----- client features (the SDK clients' calls; docs/semantics.md#clients) ---------------------

/// How [`EngineHandle::start_with`] starts an instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartOptions {
    /// The id to give it (None: a new random one).
    pub instance_id: Option<String>,
    /// The version to record (reported with the instance and in its `ExecutionStarted`; the
    /// loaded build runs whatever the version).
    pub version: Option<String>,
    /// Tags to record with it.
    pub tags: std::collections::BTreeMap<String, String>,
    /// Start no earlier than this time on the engine clock (virtual or real): until then it is
    /// Pending, and messages to it wait with its start.
    pub scheduled_start: Option<DateTime<Utc>>,
    /// What to do when the id is taken.
    pub reuse: ReusePolicy,
}

/// What a start does when its id is taken (the proto's `OrchestrationIdReusePolicy`, whose
/// `replaceableStatus` list is [`ReusePolicy::Replaceable`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReusePolicy {
    /// Refuse with [`EngineError::AlreadyExists`], whatever the existing instance's status.
    #[default]
    Error,
    /// Replace an instance that has ended (completed, failed, canceled or terminated); refuse
    /// one that has not.
    ReplaceEnded,
    /// Replace any instance: one that has not ended is terminated first (by the host, at once;
    /// its running sub-orchestrations are asked to terminate).
    TerminateRunning,
    /// Replace an instance whose status is one of these (terminating it first if it has not
    /// ended); refuse the others. An empty list refuses every one, like `Error`.
    Replaceable(Vec<durable_sdk::history::RuntimeStatus>),
}

impl ReusePolicy {
    /// Whether an existing instance in `status` is replaced.
    pub fn replaces(&self, status: durable_sdk::history::RuntimeStatus) -> bool {
        match self {
            ReusePolicy::Error => false,
            ReusePolicy::ReplaceEnded => status.is_terminal(),
            ReusePolicy::TerminateRunning => true,
            ReusePolicy::Replaceable(statuses) => statuses.contains(&status),
        }
    }
}

impl EngineHandle {
    /// Starts an instance of orchestration `name` with a client's options (id, version, tags,
    /// scheduled start, reuse policy); returns its id. Refused, changing nothing: an unknown
    /// orchestration, an empty id, a scheduled time the store cannot hold, an id in use that
    /// the reuse policy does not replace ([`EngineError::AlreadyExists`]).
    pub fn start_with(
        &self,
        name: &str,
        input: Value,
        options: StartOptions,
    ) -> Result<String, EngineError> {
        let name = name.to_string();
        self.call(move |core| core.start_with(&name, input, options))
    }

    /// Waits (real time) until the instance has started (its status is no longer Pending);
    /// `Ok(None)` on timeout. An unknown id is [`EngineError::InstanceNotFound`].
    pub fn wait_until_started(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> Result<Option<InstanceRecord>, EngineError> {
        let deadline = Instant::now() + timeout;
        let door = self.asynchronous();
        let wait = door.wait_until_started(instance_id, std::future::pending());
        block_until(wait, deadline).unwrap_or(Ok(None))
    }

    /// One page of the instances `query` matches, oldest created first, and the token of the
    /// next page (None: no more). A token this listing did not issue is refused.
    pub fn query(
        &self,
        query: InstanceQuery,
    ) -> Result<(Vec<InstanceRecord>, Option<String>), EngineError> {
        self.call(move |core| core.query(&query))
    }

    /// One page of ended instances' ids in the order they ended, and the key of the next page
    /// (`ListInstanceIds`).
    pub fn list_instance_ids(
        &self,
        query: InstanceIdsQuery,
    ) -> Result<(Vec<String>, Option<String>), EngineError> {
        self.call(move |core| core.list_instance_ids(&query))
    }

    /// Deletes an ended instance and, with `recursive`, the ended sub-orchestrations it started
    /// (at any depth); returns how many instances were deleted. Refused if the instance itself
    /// is still running; a descendant still running is left alone.
    pub fn purge_recursive(
        &self,
        instance_id: &str,
        recursive: bool,
    ) -> Result<usize, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.purge_tree(&instance_id, recursive))
    }

    /// Deletes every ended instance `filter` matches (with `recursive`, their ended
    /// sub-orchestrations too); returns how many were deleted.
    pub fn purge_where(&self, filter: PurgeFilter, recursive: bool) -> Result<usize, EngineError> {
        self.call(move |core| core.purge_where(&filter, recursive))
    }

    /// Starts the instance's orchestration again with its first input, version and tags, under
    /// a new id or (`new_instance_id` false) its own, which needs it ended
    /// ([`EngineError::NotEnded`]); returns the id.
    pub fn restart_as(
        &self,
        instance_id: &str,
        new_instance_id: bool,
    ) -> Result<String, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.restart_as(&instance_id, new_instance_id))
    }

    /// Rewinds a failed instance: it runs on in a new execution whose history is the failed
    /// one's without its failures, so what failed runs again; failed sub-orchestrations it
    /// awaits are rewound too (docs/semantics.md#rewind). Anything but a failed instance is
    /// refused ([`EngineError::NotFailed`]).
    pub fn rewind(&self, instance_id: &str, reason: Option<String>) -> Result<(), EngineError> {
        let id = instance_id.to_string();
        let asked = reason.clone();
        if let Some((name, request)) =
            self.call(move |core| core.remote_rewind_request(&id, asked))?
        {
            // The worker rewrites the history itself (the proto's RewindOrchestrationAction); one
            // that does not (an SDK without rewind) leaves it to the host.
            let answer = futures::executor::block_on(self.hub.probe(
                &name,
                request,
                crate::remote::PROBE_DEADLINE,
            ));
            if let Ok(durable_sdk::protocol::OrchestratorResponse {
                rewound_history: Some(history),
                ..
            }) = answer
            {
                let id = instance_id.to_string();
                return self.call(move |core| core.install_worker_rewind(&id, reason, history));
            }
        }
        let instance_id = instance_id.to_string();
        self.call(move |core| core.rewind(&instance_id, reason))
    }
}

/// Polls `future` on this thread until it is ready or `deadline` passes (None then). The
/// blocking door to an async wait: the waker unparks this thread.
fn block_until<F: std::future::Future>(future: F, deadline: Instant) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}
