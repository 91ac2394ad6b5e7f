//! Commands: what `update` asks the outside world to do, and the [`Executor`] that does it on
//! background threads so the UI never waits on SQLite or a plugin call.
//!
//! Two lanes, each one thread, each in order: engine calls (queries and user actions, forks
//! included; in order, so `start` then `load instances` sees the new instance) and plugin calls
//! (replay steps, which may replay a long history). Every answer comes back as a [`Msg::Done`].

use crate::msg::{Msg, Outcome};
use crossbeam_channel::{Receiver, Sender};
use durable_emu_engine::engine::{EngineHandle, EntityMetadata, EntityQuery};
use durable_emu_engine::faults::FaultRule;
use durable_emu_engine::inspect::replay::{CompletionEdit, StepResult, step_request};
use durable_emu_engine::inspect::rows::CallCounts;
use durable_emu_engine::inspect::waiting::OpenCalls;
use durable_emu_engine::plugin::LoadedPlugin;
use durable_sdk::history::{EventKind, HistoryEvent};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Something for the outside world to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Load every instance.
    LoadInstances,
    /// Count the calls of these instances' current executions (for the progress column).
    LoadCounts(Vec<String>),
    /// Load an instance's histories (as the selected instance, or as a child for the errors view).
    LoadHistory {
        /// The instance.
        instance_id: String,
        /// For the errors view's tree.
        child: bool,
    },
    /// Load the pending timers and the clock's now.
    LoadTimers,
    /// Load the builds.
    LoadBuilds,
    /// Load the remote workers and the work no executor takes.
    LoadWorkers,
    /// Load the fault rules with their switches and counters.
    LoadFaults,
    /// Load every entity (with its state, for the preview).
    LoadEntities,
    /// Load one entity in full: its record and operation log (as the selected entity, or for the
    /// errors view's tree).
    LoadEntity {
        /// The entity id.
        instance_id: String,
        /// For the errors view's tree.
        for_errors: bool,
    },
    /// Signal an entity (a one-way operation).
    SignalEntity {
        /// The entity id.
        instance_id: String,
        /// The operation.
        operation: String,
        /// Its input.
        input: Value,
    },
    /// Add a fault rule (validated already).
    AddFault {
        /// The rule as it was written (compact form), for the status line.
        spec: String,
        /// The rule.
        rule: Box<FaultRule>,
    },
    /// Turn a fault rule on or off.
    SetFaultEnabled {
        /// The rule's id.
        id: u32,
        /// On or off.
        enabled: bool,
    },
    /// Remove a fault rule.
    RemoveFault(u32),
    /// Start an instance.
    Start {
        /// Orchestration name.
        name: String,
        /// Its input.
        input: Value,
    },
    /// Raise an external event.
    Raise {
        /// The instance.
        instance_id: String,
        /// Event name.
        name: String,
        /// Payload.
        data: Value,
        /// What the answer says instead of `event raised` when nothing waits for the name.
        warning: Option<String>,
    },
    /// Terminate (recursively).
    Terminate {
        /// The instance.
        instance_id: String,
        /// Why.
        reason: String,
    },
    /// Suspend.
    Suspend(String),
    /// Resume.
    Resume(String),
    /// Start the same orchestration again with the same input.
    Restart(String),
    /// Delete an ended instance and its history.
    Purge(String),
    /// Move virtual time forward.
    Advance(Duration),
    /// Jump to the next pending timer.
    NextTimer,
    /// Turn auto-skip on or off.
    SetAutoSkip(bool),
    /// Let virtual time run at real speed (`true`) or pause it.
    SetPlaying(bool),
    /// Replay a prefix of history through the plugin (the stepper).
    Step {
        /// Answers carry it back; older ones are ignored.
        token: u64,
        /// The instance.
        instance_id: String,
        /// The execution.
        execution_id: String,
        /// Its history (shared: the prefix is copied on the executor, not the UI thread).
        events: Arc<Vec<HistoryEvent>>,
        /// How many events to replay.
        step: usize,
        /// The build that recorded the instance (`None`: the active build).
        build: Option<u32>,
    },
    /// Replay a whole execution on the active build (the stepper of a diverged instance shows
    /// where it diverges there). Not coalesced with steps: it is asked once per stepper.
    ReplayOnActive {
        /// Answers carry it back; older ones are ignored.
        token: u64,
        /// The instance.
        instance_id: String,
        /// The execution.
        execution_id: String,
        /// Its history.
        events: Arc<Vec<HistoryEvent>>,
    },
    /// Fork an instance at a step of its current execution (the engine plans it, runs the cut
    /// episode on the build that recorded the instance and imports the fork).
    Fork {
        /// The instance forked from.
        instance_id: String,
        /// Events of its current execution the fork keeps.
        step: usize,
        /// The next completion, edited.
        edit: Option<CompletionEdit>,
    },
}

impl Command {
    fn lane(&self) -> Lane {
        match self {
            Command::Step { .. } | Command::ReplayOnActive { .. } => Lane::Plugin,
            _ => Lane::Engine,
        }
    }
}

enum Lane {
    Engine,
    Plugin,
}

/// Runs commands in the background and answers on `answers`.
#[derive(Debug, Clone)]
pub struct Executor {
    engine_lane: Sender<Command>,
    plugin_lane: Sender<Command>,
}

impl Executor {
    /// Starts the two lanes. `plugin` is what the stepper replays with when the engine
    /// cannot hand out the build that recorded an instance.
    pub fn start(engine: EngineHandle, plugin: Option<LoadedPlugin>, answers: Sender<Msg>) -> Self {
        let (engine_lane, engine_rx) = crossbeam_channel::unbounded::<Command>();
        let (plugin_lane, plugin_rx) = crossbeam_channel::unbounded::<Command>();
        spawn_lane("durable-emu-ui-engine", engine_rx, {
            let engine = engine.clone();
            let mut plugins = Plugins::new(plugin.clone());
            let answers = answers.clone();
            move |command| execute(&engine, &mut plugins, command, &answers)
        });
        let mut plugins = Plugins::new(plugin);
        spawn_replay_lane(plugin_rx, move |command| {
            execute(&engine, &mut plugins, command, &answers);
        });
        Self {
            engine_lane,
            plugin_lane,
        }
    }

    /// Queues a command.
    pub fn submit(&self, command: Command) {
        let lane = match command.lane() {
            Lane::Engine => &self.engine_lane,
            Lane::Plugin => &self.plugin_lane,
        };
        let _ = lane.send(command);
    }
}

fn spawn_lane(
    name: &str,
    commands: Receiver<Command>,
    mut run: impl FnMut(Command) + Send + 'static,
) {
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            for command in commands {
                run(command);
            }
        });
    if let Err(error) = spawned {
        tracing::error!("cannot start the UI's {name} thread: {error}");
    }
}

/// The plugin lane: a key held down asks for many steps; only the newest waiting one is worth
/// replaying (older answers would be ignored anyway), so waiting steps are coalesced.
fn spawn_replay_lane(commands: Receiver<Command>, mut run: impl FnMut(Command) + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("durable-emu-ui-replay".into())
        .spawn(move || {
            while let Ok(first) = commands.recv() {
                let mut batch = vec![first];
                batch.extend(commands.try_iter());
                let newest_step = batch
                    .iter()
                    .rposition(|command| matches!(command, Command::Step { .. }));
                for (index, command) in batch.into_iter().enumerate() {
                    if matches!(command, Command::Step { .. }) && Some(index) != newest_step {
                        continue;
                    }
                    run(command);
                }
            }
        });
    if let Err(error) = spawned {
        tracing::error!("cannot start the UI's replay thread: {error}");
    }
}

/// The builds the stepper replays with, asked of the engine once per build number (a
/// build never changes once loaded), so a hot reload does not change how an older instance
/// replays.
#[derive(Debug, Clone, Default)]
pub struct Plugins {
    fallback: Option<LoadedPlugin>,
    by_build: HashMap<u32, LoadedPlugin>,
}

impl Plugins {
    /// `fallback` is used when the engine has no build loaded (e.g. it runs without functions).
    pub fn new(fallback: Option<LoadedPlugin>) -> Self {
        Self {
            fallback,
            by_build: HashMap::new(),
        }
    }

    /// The build that recorded an instance (`None`: the active one); the active build if that
    /// one is not loaded in this process; else the fallback.
    pub fn get(&mut self, engine: &EngineHandle, build: Option<u32>) -> Option<LoadedPlugin> {
        if let Some(number) = build {
            if let Some(plugin) = self.by_build.get(&number) {
                return Some(plugin.clone());
            }
            if let Ok(Some(plugin)) = engine.plugin(Some(number)) {
                self.by_build.insert(number, plugin.clone());
                return Some(plugin);
            }
        }
        match engine.plugin(None) {
            Ok(Some(plugin)) => Some(plugin),
            _ => self.fallback.clone(),
        }
    }
}

/// Whether an execution's orchestration is not in `plugin` (so remote workers run it).
fn runs_remotely(plugin: Option<&LoadedPlugin>, events: &[HistoryEvent]) -> bool {
    let name = events.iter().find_map(|event| match &event.kind {
        EventKind::ExecutionStarted { name, .. } => Some(name),
        _ => None,
    });
    match (plugin, name) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(plugin), Some(name)) => !plugin.manifest.orchestrators.contains(name),
    }
}

fn short(id: &str) -> std::borrow::Cow<'_, str> {
    crate::model::short_id(id)
}

/// Most entities the view lists: a page of the engine's query at a time, up to this many (a list
/// longer than a screen is scrolled, one much longer is a test's or a benchmark's leftovers).
const ENTITY_LIST_LIMIT: usize = 10_000;

/// Every entity (up to [`ENTITY_LIST_LIMIT`]), with its state, ordered by id.
fn all_entities(
    engine: &EngineHandle,
) -> Result<Vec<EntityMetadata>, durable_emu_engine::engine::EngineError> {
    let mut entities = Vec::new();
    let mut token = None;
    loop {
        let (page, next) = engine.entities(EntityQuery {
            include_state: true,
            include_transient: true,
            page_size: Some(500),
            continuation_token: token,
            ..EntityQuery::default()
        })?;
        entities.extend(page);
        match next {
            Some(next) if entities.len() < ENTITY_LIST_LIMIT => token = Some(next),
            _ => break,
        }
    }
    entities.truncate(ENTITY_LIST_LIMIT);
    Ok(entities)
}

/// Runs one command to completion and sends its answer (blocking: only on an executor lane).
pub fn execute(
    engine: &EngineHandle,
    plugins: &mut Plugins,
    command: Command,
    answers: &Sender<Msg>,
) {
    let text = |error: durable_emu_engine::engine::EngineError| error.to_string();
    let outcome = match command {
        Command::LoadInstances => Outcome::Instances(engine.instances().map_err(text)),
        Command::LoadCounts(instance_ids) => Outcome::Counts(
            instance_ids
                .into_iter()
                .map(|instance_id| {
                    let counts = engine.history(&instance_id).ok().map(|executions| {
                        let events = executions
                            .last()
                            .map_or(&[][..], |history| history.events.as_slice());
                        (events.len(), CallCounts::of(events), OpenCalls::of(events))
                    });
                    (instance_id, counts)
                })
                .collect(),
        ),
        Command::LoadHistory { instance_id, child } => Outcome::History {
            result: engine.history(&instance_id).map_err(text),
            instance_id,
            child,
        },
        Command::LoadTimers => Outcome::Timers(
            engine
                .pending_timers()
                .and_then(|timers| Ok((timers, engine.clock()?)))
                .map_err(text),
        ),
        Command::LoadBuilds => Outcome::Builds(
            engine
                .builds()
                .and_then(|builds| Ok((builds, engine.active_build()?)))
                .map_err(text),
        ),
        Command::LoadFaults => Outcome::Faults(engine.faults().map_err(text)),
        Command::LoadEntities => Outcome::Entities(all_entities(engine).map_err(text)),
        Command::LoadEntity {
            instance_id,
            for_errors,
        } => Outcome::Entity {
            result: engine
                .entity(&instance_id, true)
                .and_then(|metadata| {
                    let operations =
                        engine.entity_operations(&instance_id, crate::model::ENTITY_LOG_LIMIT)?;
                    Ok((metadata, operations))
                })
                .map_err(text),
            instance_id,
            for_errors,
        },
        Command::SignalEntity {
            instance_id,
            operation,
            input,
        } => Outcome::Action {
            label: format!("signal {instance_id} {operation}"),
            result: engine
                .signal_entity(&instance_id, &operation, input, None)
                .map(|request| format!("sent (request {})", short(&request)))
                .map_err(text),
        },
        Command::LoadWorkers => {
            let hub = engine.remote_hub();
            Outcome::Workers(hub.workers(), hub.parked())
        }
        Command::AddFault { spec, rule } => Outcome::FaultChanged {
            label: format!("fault {spec}"),
            result: engine
                .add_fault(*rule)
                .map(|id| format!("added as rule {id}"))
                .map_err(text),
        },
        Command::SetFaultEnabled { id, enabled } => Outcome::FaultChanged {
            label: format!("rule {id}"),
            result: engine
                .set_fault_enabled(id, enabled)
                .map(|()| if enabled { "enabled" } else { "disabled" }.to_string())
                .map_err(text),
        },
        Command::RemoveFault(id) => Outcome::FaultChanged {
            label: format!("rule {id}"),
            result: engine
                .remove_fault(id)
                .map(|()| "removed".to_string())
                .map_err(text),
        },
        Command::Start { name, input } => Outcome::Started {
            label: format!("start {name}"),
            result: engine.start_orchestration(&name, input, None).map_err(text),
        },
        Command::Raise {
            instance_id,
            name,
            data,
            warning,
        } => Outcome::Action {
            label: format!("raise {name} on {}", short(&instance_id)),
            result: engine
                .raise_event(&instance_id, &name, data)
                .map(|()| warning.unwrap_or_else(|| "event raised".to_string()))
                .map_err(text),
        },
        Command::Terminate {
            instance_id,
            reason,
        } => Outcome::Action {
            label: format!("terminate {}", short(&instance_id)),
            result: engine
                .terminate(&instance_id, Value::String(reason), true)
                .map(|()| "terminated".to_string())
                .map_err(text),
        },
        Command::Suspend(instance_id) => Outcome::Action {
            label: format!("suspend {}", short(&instance_id)),
            result: engine
                .suspend(&instance_id, Some("suspended from the UI".into()))
                .map(|()| "suspended".to_string())
                .map_err(text),
        },
        Command::Resume(instance_id) => Outcome::Action {
            label: format!("resume {}", short(&instance_id)),
            result: engine
                .resume(&instance_id, Some("resumed from the UI".into()))
                .map(|()| "resumed".to_string())
                .map_err(text),
        },
        Command::Restart(instance_id) => Outcome::Started {
            label: format!("restart {}", short(&instance_id)),
            result: engine.restart(&instance_id).map_err(text),
        },
        Command::Purge(instance_id) => Outcome::Action {
            label: format!("purge {}", short(&instance_id)),
            result: engine
                .purge(&instance_id)
                .map(|existed| if existed { "purged" } else { "already gone" }.to_string())
                .map_err(text),
        },
        Command::Advance(by) => Outcome::Action {
            label: format!(
                "advance {}",
                chrono::Duration::from_std(by).map_or_else(
                    |_| humantime::format_duration(by).to_string(),
                    durable_emu_engine::inspect::rows::format_age
                )
            ),
            result: engine
                .advance_clock(by)
                // The engine answers before the steps on the way have run: the time given is
                // where the clock is going (the clock line shows where it is).
                .map(|until| format!("to {}", until.format("%Y-%m-%d %H:%M:%S")))
                .map_err(text),
        },
        Command::NextTimer => Outcome::Action {
            label: "next timer".into(),
            result: engine
                .advance_to_next_timer()
                .map(|now| match now {
                    Some(until) => format!("to {}", until.format("%Y-%m-%d %H:%M:%S")),
                    None => "no timer is pending".to_string(),
                })
                .map_err(text),
        },
        Command::SetPlaying(on) => Outcome::Action {
            label: if on { "play" } else { "pause" }.into(),
            result: engine
                .set_clock_playing(on)
                .map(|now| {
                    let state = if on { "playing from" } else { "paused at" };
                    format!("virtual time {state} {}", now.format("%Y-%m-%d %H:%M:%S"))
                })
                .map_err(text),
        },
        Command::SetAutoSkip(on) => Outcome::Action {
            label: "auto-skip".into(),
            result: engine
                .set_auto_skip(on)
                .map(|()| if on { "auto-skip on" } else { "auto-skip off" }.to_string())
                .map_err(text),
        },
        Command::Step {
            token,
            instance_id,
            execution_id,
            events,
            step,
            build,
        } => Outcome::Stepped {
            token,
            result: match plugins.get(engine, build) {
                // An orchestration the loaded build does not have is run by remote workers:
                // one of them answers a replay probe (nothing is recorded).
                plugin if runs_remotely(plugin.as_ref(), &events) => engine
                    .probe_remote(&instance_id, Some(step))
                    .map(|response| {
                        Box::new(StepResult {
                            step: step.min(events.len()),
                            response,
                        })
                    })
                    .map_err(|error| error.to_string()),
                None => Err("no functions are loaded, so nothing can be replayed".into()),
                Some(plugin) => plugin
                    .handle
                    .orchestrate(&step_request(&instance_id, &execution_id, &events, step))
                    .map(|response| {
                        Box::new(StepResult {
                            step: step.min(events.len()),
                            response,
                        })
                    })
                    .map_err(|error| error.to_string()),
            },
        },
        Command::ReplayOnActive {
            token,
            instance_id,
            execution_id,
            events,
        } => Outcome::ReplayedOnActive {
            token,
            result: match plugins.get(engine, None) {
                // Remote workers' code is checked by the probe when a worker connects; the
                // instance's record carries what it found.
                plugin if runs_remotely(plugin.as_ref(), &events) => Ok(None),
                None => Err("no functions are loaded, so nothing can be replayed".into()),
                Some(plugin) => plugin
                    .handle
                    .orchestrate(&step_request(
                        &instance_id,
                        &execution_id,
                        &events,
                        events.len(),
                    ))
                    .map(|response| response.nondeterminism)
                    .map_err(|error| error.to_string()),
            },
        },
        Command::Fork {
            instance_id,
            step,
            edit,
        } => Outcome::Started {
            label: format!("fork of {}", short(&instance_id)),
            result: engine.fork(&instance_id, step, edit).map_err(text),
        },
    };
    let _ = answers.send(Msg::Done(outcome));
}
