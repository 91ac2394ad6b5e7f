//! `durable-emu run`: start one instance, run it to the end, print its status.
//!
//! Three promises beyond "run it":
//! - A request that cannot start (an unknown orchestration, an id a running instance holds) is
//!   refused before the engine runs anything, so it changes nothing in the database: starting
//!   the engine would let it fire due timers and auto-skip virtual time for the instances already
//!   there (see [`refuse_a_taken_id`]).
//! - `--timeout` is kept even when the functions never yield: nothing here waits on the engine
//!   past the deadline (plus a second's grace to stop it), and the status printed is the one
//!   committed when the engine stopped, followed from the engine's lossless event stream
//!   ([`Tracker`]), since a stuck engine answers no query.
//! - When the virtual clock this run moved made timers of other instances fire (auto-skip moves
//!   the clock of the whole database), it says so on stderr.

use super::{EngineArgs, load_target, parse_json, query_engine};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use crossbeam_channel::{Receiver, Sender, select};
use durable_emu_engine::clock::parse_duration;
use durable_emu_engine::engine::{
    Engine, EngineError, EngineEvent, EngineHandle, ExecutionHistory, StoreFailurePolicy,
};
use durable_emu_engine::export::InstanceStatus;
use durable_emu_engine::plugin::LoadedPlugin;
use durable_emu_engine::{DbLocation, ExecutionRecord, InstanceRecord};
use durable_sdk::FailureDetails;
use durable_sdk::history::{EventKind, HistoryEvent, ParentInstance, RuntimeStatus};
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long `run` may take, after the instance ended or the deadline passed, for its last
/// queries and for the engine to stop: all of them share it, so `--timeout` is kept to within it.
const GRACE: Duration = Duration::from_millis(750);
/// The least time the engine is given to stop, even when the queries used up the grace.
const STOP_AT_LEAST: Duration = Duration::from_millis(100);
/// Events the engine may publish ahead of the tracker before it waits for it.
const EVENT_BUFFER: usize = 4_096;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A plugin library or crate directory; default: the built-in sample functions.
    target: Option<PathBuf>,
    /// The orchestration to start.
    #[arg(long, short = 'o', value_name = "NAME")]
    orchestration: String,
    /// Its input, as JSON (e.g. `5`, `'"Tokyo"'`, `'{"order_id":"o1"}'`), `@FILE` or `-` (stdin).
    #[arg(
        long,
        short = 'i',
        value_name = "JSON",
        default_value = "null",
        allow_hyphen_values = true
    )]
    input: String,
    /// The instance id; default: a new random id.
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,
    /// Give up (exit 1) if the instance has not ended after this much real time, e.g. `30s`;
    /// the status printed is then the one last committed.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    timeout: String,
    /// Include every execution's history events in the printed status.
    #[arg(long)]
    history: bool,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    isolate: super::isolate::IsolateArgs,
}

impl RunArgs {
    /// Whether the functions run in a child worker (`--isolate`), over a sidecar of this process.
    pub fn isolated(&self) -> bool {
        self.isolate.isolate
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let input = parse_json("--input", &args.input)?;
    let timeout = parse_duration(&args.timeout).map_err(anyhow::Error::msg)?;
    let plugin = load_target(args.target.as_deref())?;
    refuse_an_unknown_orchestration(&plugin, &args.orchestration)?;
    let instance_id = match args.instance_id.clone() {
        Some(id) => {
            refuse_a_taken_id(&args.engine, &id)?;
            id
        }
        // Chosen here rather than by the engine, so the instance can be followed (and named)
        // even if the engine never answers the start.
        None => uuid::Uuid::new_v4().simple().to_string(),
    };

    let deadline = Instant::now() + timeout;
    let (sink, events) = crossbeam_channel::bounded(EVENT_BUFFER);
    let isolation = args.isolate.bind(&plugin)?;
    let mut config = args.engine.config(Some(plugin))?;
    // A one-shot run reports a failing store and exits rather than waiting for it to recover.
    config.on_store_failure = StoreFailurePolicy::Stop;
    config.isolated = isolation.is_some();
    let threads = config.workers;
    let engine = Engine::start_with_sink(config, sink)
        .with_context(|| format!("opening {}", args.engine.db.db))?;
    let handle = engine.handle();
    let _isolation = isolation
        .map(|listener| listener.start(&handle, threads))
        .transpose()?;
    let tracker = Tracker::spawn(events, instance_id.clone());

    match handle.start_orchestration_within(
        &args.orchestration,
        input,
        Some(instance_id.clone()),
        deadline.saturating_duration_since(Instant::now()),
    ) {
        // Unresponsive: the batch that starts it is still running at the deadline.
        Ok(_) | Err(EngineError::Unresponsive { .. }) => {}
        Err(error) => {
            engine.shutdown_within(GRACE);
            return Err(error.into());
        }
    }
    let ended = tracker.ended.recv_deadline(deadline).is_ok();
    let grace_end = Instant::now() + GRACE;

    // Ended: the record is final, so a query answers exactly what is stored.
    let queried = if ended {
        final_answers(&handle, &instance_id, args.history, grace_end)
    } else {
        None
    };
    let names = other_names(&handle, &tracker, grace_end);
    let running = handle.running_episode();
    let stopped = engine.shutdown_within(left(grace_end).max(STOP_AT_LEAST));
    let followed = tracker.finish();
    let (record, history) = match queried {
        Some(answers) => answers,
        None => match followed.record() {
            Some(record) => {
                let history = args.history.then(|| followed.histories());
                (record, history)
            }
            // No episode was recorded (a start held back by a delay, say): once the engine has
            // stopped, the store itself says what is there.
            None => match stored_after_stop(stopped, &args.engine, &instance_id, args.history) {
                Some(answers) => answers,
                None => {
                    eprintln!(
                        "instance {instance_id}: nothing was stored; its first episode was still \
                         running after {}",
                        args.timeout
                    );
                    explain_stuck(stopped, running.as_ref());
                    return Ok(ExitCode::from(1));
                }
            },
        },
    };
    let status = InstanceStatus::from_record(&record, history.as_deref());
    println!("{}", serde_json::to_string_pretty(&status)?);
    followed.report_clock(&names, record.created_at);
    if !record.status.is_terminal() {
        eprintln!(
            "instance {instance_id} is still {} after {}; it stays in the database as printed",
            record.status, args.timeout
        );
        explain_stuck(stopped, running.as_ref());
        return Ok(ExitCode::from(1));
    }
    Ok(if record.status == RuntimeStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The stored record (and history) of an instance, read from a file database after the engine
/// stopped; none if it has not stopped, the database is in memory, or there is no such instance.
fn stored_after_stop(
    stopped: bool,
    engine: &EngineArgs,
    instance_id: &str,
    with_history: bool,
) -> Option<(InstanceRecord, Option<Vec<ExecutionHistory>>)> {
    if !stopped || matches!(engine.db.location(), DbLocation::Memory) {
        return None;
    }
    let query = query_engine(&engine.db).ok()?;
    let handle = query.handle();
    let record = handle.instance(instance_id).ok()??;
    let history = if with_history {
        Some(handle.history(instance_id).ok()?)
    } else {
        None
    };
    query.shutdown();
    Some((record, history))
}

fn refuse_an_unknown_orchestration(plugin: &LoadedPlugin, name: &str) -> anyhow::Result<()> {
    let known = &plugin.manifest.orchestrators;
    if known.iter().any(|known| known == name) {
        return Ok(());
    }
    Err(EngineError::UnknownOrchestration {
        name: name.to_string(),
        known: known.join(", "),
    }
    .into())
}

/// Refuses an id a non-terminal instance holds, asking an engine without functions: it cannot
/// run an episode or move virtual time (nothing is idle without a build, so nothing auto-skips),
/// so the check changes nothing, as `durable-emu status` does not. The engine that runs the
/// instance starts only once this passed; chosen over holding a full engine back until its first
/// start is accepted, which would need a second mode in the core's batch loop. (Between the two
/// opens the file is briefly unlocked; another emulator taking the same id in that instant is
/// still refused by the start itself.)
fn refuse_a_taken_id(engine: &EngineArgs, id: &str) -> anyhow::Result<()> {
    if id.trim().is_empty() {
        bail!("--instance-id cannot be empty; leave it out for a new random id");
    }
    if matches!(engine.db.location(), DbLocation::Memory) {
        return Ok(());
    }
    let query = query_engine(&engine.db)?;
    let existing = query.handle().instance(id)?;
    query.shutdown();
    match existing {
        Some(record) if !record.status.is_terminal() => Err(anyhow::anyhow!(
            "{} (it is {}; `durable-emu status {id}` shows it)",
            EngineError::InstanceExists(id.to_string()),
            record.status
        )),
        _ => Ok(()),
    }
}

/// The stored record (and history) of an instance that ended, if the engine answers in time.
fn final_answers(
    handle: &EngineHandle,
    instance_id: &str,
    history: bool,
    until: Instant,
) -> Option<(InstanceRecord, Option<Vec<ExecutionHistory>>)> {
    let record = handle.instance_within(instance_id, left(until)).ok()??;
    if !record.status.is_terminal() {
        return None;
    }
    let history = if history {
        Some(handle.history_within(instance_id, left(until)).ok()?)
    } else {
        None
    };
    Some((record, history))
}

/// Names of the other instances whose timers fired, if the engine answers quickly.
fn other_names(handle: &EngineHandle, tracker: &Tracker, until: Instant) -> Vec<(String, String)> {
    tracker
        .other_timer_instances()
        .into_iter()
        .filter_map(|id| {
            let record = handle.instance_within(&id, left(until)).ok()??;
            Some((id, record.name))
        })
        .collect()
}

fn left(until: Instant) -> Duration {
    until.saturating_duration_since(Instant::now())
}

fn explain_stuck(stopped: bool, running: Option<&durable_emu_engine::engine::RunningEpisode>) {
    if stopped {
        return;
    }
    match running {
        Some(episode) => eprintln!(
            "{episode} without yielding; the engine was left behind and what that episode did \
             is not recorded"
        ),
        None => eprintln!(
            "the engine did not stop within {GRACE:?}; what its last batch did is not recorded"
        ),
    }
}

/// Follows the run's instance through the engine's events, on a thread of its own so the engine
/// never waits on the main thread while it publishes.
struct Tracker {
    /// Receives once, when the instance's end has been committed.
    ended: Receiver<()>,
    stop: Sender<()>,
    thread: std::thread::JoinHandle<Followed>,
    /// Instances other than the run's family whose timers fired (shared for the name lookup).
    others: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Tracker {
    fn spawn(events: Receiver<EngineEvent>, instance_id: String) -> Self {
        let (ended_tx, ended) = crossbeam_channel::bounded(1);
        let (stop, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let others = std::sync::Arc::default();
        let shared = std::sync::Arc::clone(&others);
        let thread = std::thread::spawn(move || {
            let mut followed = Followed::new(instance_id, shared);
            loop {
                select! {
                    recv(events) -> event => match event {
                        Ok(event) => {
                            if followed.apply(&event) {
                                let _ = ended_tx.try_send(());
                            }
                        }
                        Err(_) => return followed,
                    },
                    recv(stop_rx) -> _ => {
                        // Asked after the engine stopped (or was given up on): what is queued
                        // is everything it committed.
                        for event in events.try_iter() {
                            followed.apply(&event);
                        }
                        return followed;
                    }
                }
            }
        });
        Self {
            ended,
            stop,
            thread,
            others,
        }
    }

    fn other_timer_instances(&self) -> Vec<String> {
        self.others
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn finish(self) -> Followed {
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(followed) => followed,
            // The tracker only applies events to plain data; a panic there is a bug, re-raised.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// What the committed events said about the run's instance (and the clock).
#[derive(Debug)]
struct Followed {
    instance_id: String,
    /// The instance and its sub-orchestrations.
    family: HashSet<String>,
    name: Option<String>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    parent: Option<ParentInstance>,
    execution_id: Option<String>,
    input: Value,
    status: Option<RuntimeStatus>,
    custom_status: Option<Value>,
    output: Value,
    failure: Option<FailureDetails>,
    history_len: usize,
    /// Every execution's events, oldest execution first.
    executions: Vec<(String, Vec<HistoryEvent>)>,
    clock_to: Option<DateTime<Utc>>,
    /// (instance, timer id) of timers of other instances that fired.
    other_timers: Vec<(String, i32)>,
    others: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Followed {
    fn new(instance_id: String, others: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> Self {
        Self {
            family: HashSet::from([instance_id.clone()]),
            instance_id,
            name: None,
            created_at: None,
            updated_at: None,
            parent: None,
            execution_id: None,
            input: Value::Null,
            status: None,
            custom_status: None,
            output: Value::Null,
            failure: None,
            history_len: 0,
            executions: Vec::new(),
            clock_to: None,
            other_timers: Vec::new(),
            others,
        }
    }

    /// Applies one committed event; true when it says the instance has ended.
    fn apply(&mut self, event: &EngineEvent) -> bool {
        match event {
            EngineEvent::InstanceCreated {
                instance_id,
                name,
                parent_instance_id,
            } => {
                if *instance_id == self.instance_id {
                    self.name = Some(name.clone());
                } else if parent_instance_id
                    .as_ref()
                    .is_some_and(|parent| self.family.contains(parent))
                {
                    self.family.insert(instance_id.clone());
                }
            }
            EngineEvent::HistoryAppended {
                instance_id,
                execution_id,
                first_seq,
                events,
            } if *instance_id == self.instance_id => {
                self.appended(execution_id, *first_seq, events);
            }
            EngineEvent::InstanceChanged {
                instance_id,
                status,
                custom_status,
            } if *instance_id == self.instance_id => {
                self.status = Some(*status);
                self.custom_status.clone_from(custom_status);
                return status.is_terminal();
            }
            EngineEvent::ClockMoved { now, .. } => self.clock_to = Some(*now),
            EngineEvent::TimerFired {
                instance_id,
                timer_id,
            } if !self.family.contains(instance_id) => {
                self.other_timers.push((instance_id.clone(), *timer_id));
                let mut others = self
                    .others
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !others.contains(instance_id) {
                    others.push(instance_id.clone());
                }
            }
            _ => {}
        }
        false
    }

    fn appended(&mut self, execution_id: &str, first_seq: usize, events: &[HistoryEvent]) {
        match self.executions.last_mut() {
            Some((id, history)) if id == execution_id => history.extend(events.iter().cloned()),
            _ => self
                .executions
                .push((execution_id.to_string(), events.to_vec())),
        }
        self.history_len = first_seq + events.len();
        for event in events {
            self.updated_at = Some(event.timestamp);
            match &event.kind {
                EventKind::ExecutionStarted {
                    name,
                    input,
                    execution_id,
                    parent,
                    ..
                } => {
                    self.name.get_or_insert_with(|| name.clone());
                    self.created_at.get_or_insert(event.timestamp);
                    self.execution_id = Some(execution_id.clone());
                    self.input = input.clone();
                    self.parent.clone_from(parent);
                    self.output = Value::Null;
                    self.failure = None;
                }
                EventKind::ExecutionCompleted {
                    status,
                    result,
                    failure,
                } if status.is_terminal() => {
                    self.output = result.clone();
                    self.failure.clone_from(failure);
                }
                _ => {}
            }
        }
    }

    /// The instance as last committed, or `None` if nothing of it was.
    fn record(&self) -> Option<InstanceRecord> {
        let status = self.status?;
        let created_at = self.created_at?;
        Some(InstanceRecord {
            instance_id: self.instance_id.clone(),
            name: self.name.clone()?,
            execution_id: self.execution_id.clone()?,
            status,
            input: self.input.clone(),
            output: self.output.clone(),
            failure: self.failure.clone(),
            custom_status: self.custom_status.clone(),
            created_at,
            updated_at: self.updated_at.unwrap_or(created_at),
            parent: self.parent.clone(),
            history_len: self.history_len,
            build: None,
            pinned: false,
            divergence: None,
            awaited_events: Vec::new(),
            version: None,
            tags: Default::default(),
            scheduled_start: None,
        })
    }

    fn histories(&self) -> Vec<ExecutionHistory> {
        self.executions
            .iter()
            .enumerate()
            .map(|(ordinal, (execution_id, events))| ExecutionHistory {
                execution: ExecutionRecord {
                    execution_id: execution_id.clone(),
                    ordinal: i64::try_from(ordinal).unwrap_or(i64::MAX),
                    input: Value::Null,
                    started_at: events
                        .first()
                        .map_or_else(Utc::now, |event| event.timestamp),
                },
                builds: vec![None; events.len()],
                events: events.clone(),
            })
            .collect()
    }

    /// Says on stderr which other instances' timers fired because this run moved virtual time.
    fn report_clock(&self, names: &[(String, String)], from: DateTime<Utc>) {
        let Some(to) = self.clock_to else {
            return;
        };
        if self.other_timers.is_empty() {
            return;
        }
        let fired: Vec<String> = self
            .other_timers
            .iter()
            .map(
                |(id, timer)| match names.iter().find(|(known, _)| known == id) {
                    Some((_, name)) => format!("{id} ({name}) timer #{timer}"),
                    None => format!("{id} timer #{timer}"),
                },
            )
            .collect();
        eprintln!(
            "note: this run moved the shared virtual clock from {} to {}, so timers of other \
             instances in the database fired too: {}",
            from.to_rfc3339(),
            to.to_rfc3339(),
            fired.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn event(seconds: i64, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            event_id: -1,
            timestamp: at(seconds),
            kind,
        }
    }

    fn started(id: &str, execution: &str, input: Value) -> EventKind {
        EventKind::ExecutionStarted {
            name: "Spin".into(),
            version: None,
            input,
            instance_id: id.into(),
            execution_id: execution.into(),
            parent: None,
            scheduled_start: None,
        }
    }

    #[test]
    fn the_followed_record_is_the_last_committed_state_of_the_instance() {
        let mut followed = Followed::new("a".into(), Default::default());
        assert!(followed.record().is_none(), "nothing committed yet");
        followed.apply(&EngineEvent::HistoryAppended {
            instance_id: "a".into(),
            execution_id: "e1".into(),
            first_seq: 0,
            events: vec![
                event(0, EventKind::OrchestratorStarted),
                event(0, started("a", "e1", serde_json::json!(3))),
            ],
        });
        let ended = followed.apply(&EngineEvent::InstanceChanged {
            instance_id: "a".into(),
            status: RuntimeStatus::Running,
            custom_status: Some(serde_json::json!("waiting")),
        });
        assert!(!ended);
        followed.apply(&EngineEvent::HistoryAppended {
            instance_id: "a".into(),
            execution_id: "e1".into(),
            first_seq: 2,
            events: vec![event(5, EventKind::OrchestratorStarted)],
        });
        let record = followed.record().unwrap();
        assert_eq!(record.status, RuntimeStatus::Running);
        assert_eq!(record.name, "Spin");
        assert_eq!(record.input, serde_json::json!(3));
        assert_eq!(record.custom_status, Some(serde_json::json!("waiting")));
        assert_eq!(record.created_at, at(0));
        assert_eq!(record.updated_at, at(5));
        assert_eq!(record.history_len, 3);
        assert_eq!(followed.histories()[0].events.len(), 3);
    }

    #[test]
    fn timers_of_other_instances_are_told_apart_from_the_runs_family() {
        let mut followed = Followed::new("a".into(), Default::default());
        followed.apply(&EngineEvent::InstanceCreated {
            instance_id: "child".into(),
            name: "Child".into(),
            parent_instance_id: Some("a".into()),
        });
        for id in ["a", "child", "other"] {
            followed.apply(&EngineEvent::TimerFired {
                instance_id: id.into(),
                timer_id: 1,
            });
        }
        assert_eq!(followed.other_timers, vec![("other".to_string(), 1)]);
        let ended = followed.apply(&EngineEvent::InstanceChanged {
            instance_id: "a".into(),
            status: RuntimeStatus::Completed,
            custom_status: None,
        });
        assert!(ended);
    }
}
