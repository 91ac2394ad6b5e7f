//! The engine's core thread: owns the store, the clock and every live instance, runs episodes,
//! and turns their actions into work, timers, children and messages.
//!
//! It works in batches: take every message waiting (commands, activity results), fire due timers,
//! run one episode for each instance that has deliverable messages (repeating while episodes
//! create more work for each other), then commit everything in one transaction, and only then hand
//! new activities to the workers and publish events. So an activity never runs before its
//! `TaskScheduled` is durable, and a crash between batches loses nothing committed: on start-up,
//! outstanding activities are redelivered (at-least-once), while each completion is recorded in
//! history exactly once because it is accepted only while its work item is outstanding.
//!
//! Knows nothing of front ends; talks to plugins only through `LoadedPlugin`'s handle.

mod commands;
mod episode;
mod faults;
mod reload;

use super::{CoreInbox, CoreMessage, EngineConfig, EngineError, EngineEvent};
use crate::clock::{Clock, ClockKind};
use crate::faults::FaultRules;
use crate::plugin::LoadedPlugin;
use crate::store::{InstanceRecord, Store, StoreError, WorkRow};
use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;
use durable_sdk::FailureDetails;
use durable_sdk::ffi::PluginHandle;
use durable_sdk::history::{EventKind, HistoryEvent, ParentInstance, RuntimeStatus};
use durable_sdk::protocol::{
    ActionKind, ActivityOutcome, ActivityRequest, OrchestratorRequest, OrchestratorResponse,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::broadcast;

/// Most messages taken into one batch, so one transaction stays a reasonable size.
const MAX_BATCH: usize = 20_000;
/// Metadata key of the persisted virtual time.
const VIRTUAL_NOW: &str = "virtual_now";

/// An activity attempt finished on a worker.
#[derive(Debug)]
pub(crate) struct ActivityDone {
    instance_id: String,
    execution_id: String,
    task_id: i32,
    name: String,
    outcome: ActivityOutcome,
}

/// Work handed to a worker.
struct Job {
    work: WorkRow,
    delivery: u32,
    plugin: PluginHandle,
}

type WorkKey = (String, String, i32);
type TimerKey = (DateTime<Utc>, String, String, i32);

/// A message waiting for an instance's next episode; `inbox_id` once persisted.
#[derive(Debug, Clone)]
struct Message {
    event: HistoryEvent,
    inbox_id: Option<i64>,
}

/// A non-terminal instance.
#[derive(Debug)]
struct Live {
    record: InstanceRecord,
    /// Whether the plugin probably holds this execution's session (otherwise send full history).
    has_session: bool,
    /// How often each exact call was made in the current execution (for fault attempts); built
    /// from history when first needed.
    calls: Option<HashMap<String, u32>>,
}

pub(crate) struct Core {
    store: Store,
    clock: Clock,
    clock_dirty: bool,
    /// Every build loaded in this process, by number; never unloaded.
    builds: BTreeMap<u32, LoadedPlugin>,
    /// The newest build: new instances and reload checks use it.
    active_build: Option<u32>,
    live: HashMap<String, Live>,
    pending: HashMap<String, VecDeque<Message>>,
    runnable: VecDeque<String>,
    runnable_set: HashSet<String>,
    in_flight: HashMap<WorkKey, (WorkRow, u32)>,
    timers: BTreeSet<TimerKey>,
    to_dispatch: Vec<(WorkRow, u32)>,
    outbox: Vec<EngineEvent>,
    events: broadcast::Sender<EngineEvent>,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    terminal_waiters: HashMap<String, Vec<Sender<InstanceRecord>>>,
    faults: FaultRules,
    deferred: BTreeMap<(DateTime<Utc>, u64), faults::Deferred>,
    deferred_seq: u64,
    lose_result: HashSet<WorkKey>,
    /// Set by a fired `crash` rule: the instance that triggered it.
    crash: Option<String>,
}

impl Core {
    pub(crate) fn open(
        config: EngineConfig,
        commands: Sender<CoreMessage>,
        events: broadcast::Sender<EngineEvent>,
    ) -> Result<Self, EngineError> {
        let store = Store::open(&config.db)?;
        let clock = match config.clock {
            ClockKind::Real => Clock::real(),
            ClockKind::Virtual => {
                // An unreadable stored time is refused, not replaced by the wall clock: that
                // would move virtual time backwards.
                let start = match store.meta(VIRTUAL_NOW)? {
                    Some(text) => crate::clock::parse_stored_time(&text)?,
                    None => Utc::now(),
                };
                Clock::virtual_at(start, config.auto_skip)
            }
        };
        let (jobs, workers) = spawn_workers(config.workers.max(1), commands, events.clone());
        let mut core = Self {
            store,
            clock,
            clock_dirty: true,
            builds: BTreeMap::new(),
            active_build: None,
            live: HashMap::new(),
            pending: HashMap::new(),
            runnable: VecDeque::new(),
            runnable_set: HashSet::new(),
            in_flight: HashMap::new(),
            timers: BTreeSet::new(),
            to_dispatch: Vec::new(),
            outbox: Vec::new(),
            events,
            jobs: Some(jobs),
            workers,
            terminal_waiters: HashMap::new(),
            faults: FaultRules::default(),
            deferred: BTreeMap::new(),
            deferred_seq: 0,
            lose_result: HashSet::new(),
            crash: None,
        };
        let now = core.clock.now();
        for rule in config.faults {
            core.faults.add(rule, now);
        }
        core.store.begin()?;
        core.recover()?;
        if let Some(plugin) = config.plugin {
            core.adopt_build(plugin)?;
        }
        core.finish_batch();
        Ok(core)
    }

    /// Loads every non-terminal instance with its messages, outstanding work and timers.
    fn recover(&mut self) -> Result<(), EngineError> {
        let listing = self.store.active_instance_listing()?;
        for unreadable in listing.unreadable {
            // One bad row must not keep every other instance from running; it stays as it is.
            self.warn(
                Some(&unreadable.instance_id),
                format!(
                    "instance {} is not resumed: {}",
                    unreadable.instance_id, unreadable.reason
                ),
            );
        }
        for record in listing.instances {
            let id = record.instance_id.clone();
            self.live.insert(
                id,
                Live {
                    record,
                    has_session: false,
                    calls: None,
                },
            );
        }
        for row in self.store.inbox()? {
            if self.live.contains_key(&row.instance_id) {
                self.enqueue(
                    &row.instance_id,
                    Message {
                        event: row.event,
                        inbox_id: Some(row.id),
                    },
                );
            } else {
                self.store.remove_inbox(row.id)?;
            }
        }
        for work in self.store.work()? {
            // Redelivery after a restart: the activity may have run before; at-least-once.
            let key = work_key(&work);
            self.in_flight.insert(key, (work.clone(), 2));
            self.to_dispatch.push((work, 2));
        }
        for timer in self.store.timers()? {
            self.timers.insert((
                timer.fire_at,
                timer.instance_id,
                timer.execution_id,
                timer.timer_id,
            ));
        }
        Ok(())
    }

    pub(crate) fn run(&mut self, inbox: CoreInbox) {
        loop {
            let first = match self.wait_timeout() {
                Some(timeout) => match inbox.recv_timeout(timeout) {
                    Ok(message) => Some(message),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return self.stop(),
                },
                None => match inbox.recv() {
                    Ok(message) => Some(message),
                    Err(_) => return self.stop(),
                },
            };
            if let Err(error) = self.store.begin() {
                self.warn(None, format!("cannot start a transaction: {error}"));
            }
            let mut stopping = false;
            // Commands are answered after the batch commits and its events are published, so
            // an answer never runs ahead of what it caused (or of its durability).
            let mut replies = Vec::new();
            for message in first.into_iter().chain(inbox.try_iter().take(MAX_BATCH)) {
                match message {
                    CoreMessage::Call(call) => replies.push(call(self)),
                    CoreMessage::ActivityDone(done) => self.accept_activity_result(done),
                    CoreMessage::Shutdown => {
                        stopping = true;
                        break;
                    }
                }
            }
            if self.faults.has_crash_rules() {
                // With crashes injected, what was acknowledged (commands, accepted results) is
                // committed before episodes run, as a host that answers only after a durable
                // write would; a crash then loses just the episodes' work.
                self.commit_checkpoint();
            }
            self.process();
            self.finish_batch();
            replies.into_iter().for_each(|reply| reply());
            if stopping {
                return self.stop();
            }
        }
    }

    fn stop(&mut self) {
        // Workers finish the activity they are running and exit; their results are dropped and
        // the work stays outstanding in the store, to be redelivered on the next start.
        self.jobs = None;
        self.workers.clear();
    }

    fn wait_timeout(&self) -> Option<Duration> {
        if !self.runnable.is_empty() {
            return Some(Duration::ZERO);
        }
        if self.clock.is_virtual() {
            return None;
        }
        self.timers.first().map(|(fire_at, ..)| {
            (*fire_at - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(Duration::from_secs(3600))
        })
    }

    /// Fires due timers and runs episodes until nothing more can happen without new input,
    /// skipping virtual time to the next timer when auto-skip is on and everything is idle.
    fn process(&mut self) {
        loop {
            self.handle_crash();
            self.fire_due_timers();
            while let Some(instance_id) = self.runnable.pop_front() {
                self.runnable_set.remove(&instance_id);
                if let Err(error) = self.run_episode(&instance_id) {
                    self.warn(
                        Some(&instance_id),
                        format!("the episode could not be recorded: {error}"),
                    );
                }
                self.handle_crash();
                self.fire_due_timers();
            }
            if !self.idle() || !self.clock.is_virtual() || !self.clock.auto_skip {
                return;
            }
            let next_timer = self.timers.first().map(|(fire_at, ..)| *fire_at);
            let Some(next) = [next_timer, self.next_deferred()]
                .into_iter()
                .flatten()
                .min()
            else {
                return;
            };
            match self.clock.advance_to(next) {
                Ok(_) => self.clock_moved(),
                Err(error) => {
                    // Nothing can run before that time and time cannot get there: stop skipping
                    // (looping here would hang the engine).
                    self.warn(None, error.to_string());
                    return;
                }
            }
        }
    }

    fn handle_crash(&mut self) {
        if let Some(instance_id) = self.crash.take() {
            if let Err(error) = self.crash_now(instance_id) {
                self.warn(
                    None,
                    format!("recovering from an injected crash failed: {error}"),
                );
            }
        }
    }

    fn commit_checkpoint(&mut self) {
        if let Err(error) = self
            .persist_leftovers()
            .map_err(EngineError::from)
            .and_then(|()| {
                self.store.commit()?;
                self.store.begin()?;
                Ok(())
            })
        {
            self.warn(
                None,
                format!("cannot commit before running episodes: {error}"),
            );
        }
    }

    /// Virtual time as last committed (after an injected crash).
    fn reload_clock(&mut self) -> Result<(), EngineError> {
        if self.clock.is_virtual() {
            if let Some(text) = self.store.meta(VIRTUAL_NOW)? {
                let time = crate::clock::parse_stored_time(&text)?;
                self.clock = Clock::virtual_at(time, self.clock.auto_skip);
            }
        }
        Ok(())
    }

    fn idle(&self) -> bool {
        self.active_build.is_some()
            && self.runnable.is_empty()
            && self.in_flight.is_empty()
            && self.to_dispatch.is_empty()
    }

    fn clock_moved(&mut self) {
        self.clock_dirty = true;
        self.outbox.push(EngineEvent::ClockMoved {
            now: self.clock.now(),
        });
    }

    fn fire_due_timers(&mut self) {
        self.release_deferred();
        let now = self.clock.now();
        while let Some(first) = self.timers.first() {
            if first.0 > now {
                break;
            }
            let Some((fire_at, instance_id, execution_id, timer_id)) = self.timers.pop_first()
            else {
                break;
            };
            if let Err(error) = self
                .store
                .remove_timer(&instance_id, &execution_id, timer_id)
            {
                self.warn(
                    Some(&instance_id),
                    format!("cannot remove a fired timer: {error}"),
                );
            }
            let current = self
                .live
                .get(&instance_id)
                .is_some_and(|live| live.record.execution_id == execution_id);
            if current {
                self.outbox.push(EngineEvent::TimerFired {
                    instance_id: instance_id.clone(),
                    timer_id,
                });
                self.deliver(&instance_id, EventKind::TimerFired { fire_at, timer_id });
            }
        }
    }

    /// Persists what is left over, commits, then dispatches work and publishes events.
    fn finish_batch(&mut self) {
        if let Err(error) = self.persist_leftovers() {
            self.warn(None, format!("cannot persist pending messages: {error}"));
        }
        if let Err(error) = self.store.commit() {
            self.warn(None, format!("cannot commit: {error}"));
            let _ = self.store.rollback();
        }
        if let Some(jobs) = &self.jobs {
            for (work, delivery) in std::mem::take(&mut self.to_dispatch) {
                let build = self
                    .live
                    .get(&work.instance_id)
                    .and_then(|live| live.record.build);
                if let Some((_, plugin)) = self.plugin_for(build) {
                    let _ = jobs.send(Job {
                        work,
                        delivery,
                        plugin,
                    });
                }
            }
        }
        for event in self.outbox.drain(..) {
            // No subscriber is not an error: events are for whoever listens.
            let _ = self.events.send(event);
        }
    }

    fn persist_leftovers(&mut self) -> Result<(), StoreError> {
        if self.clock_dirty && self.clock.is_virtual() {
            self.store
                .set_meta(VIRTUAL_NOW, &self.clock.now().to_rfc3339())?;
            self.clock_dirty = false;
        }
        self.pending.retain(|_, messages| !messages.is_empty());
        for (instance_id, messages) in &mut self.pending {
            for message in messages
                .iter_mut()
                .filter(|message| message.inbox_id.is_none())
            {
                message.inbox_id = Some(self.store.push_inbox(instance_id, &message.event)?);
            }
        }
        Ok(())
    }

    fn warn(&mut self, instance_id: Option<&str>, message: String) {
        self.outbox.push(EngineEvent::Warning {
            instance_id: instance_id.map(str::to_string),
            message,
        });
    }

    fn wants_history_events(&self) -> bool {
        self.events.receiver_count() > 0
    }

    // ----- messages -------------------------------------------------------------------------

    /// Queues an event for an instance's next episode.
    fn deliver(&mut self, instance_id: &str, kind: EventKind) {
        let event = HistoryEvent {
            event_id: -1,
            timestamp: self.clock.now(),
            kind,
        };
        self.enqueue(
            instance_id,
            Message {
                event,
                inbox_id: None,
            },
        );
    }

    fn enqueue(&mut self, instance_id: &str, message: Message) {
        self.pending
            .entry(instance_id.to_string())
            .or_default()
            .push_back(message);
        self.mark_runnable(instance_id);
    }

    fn mark_runnable(&mut self, instance_id: &str) {
        let Some(live) = self.live.get(instance_id) else {
            return;
        };
        let suspended = live.record.status == RuntimeStatus::Suspended;
        let deliverable = self.pending.get(instance_id).is_some_and(|messages| {
            messages
                .iter()
                .any(|message| !suspended || processed_while_suspended(&message.event.kind))
        });
        if deliverable && self.runnable_set.insert(instance_id.to_string()) {
            self.runnable.push_back(instance_id.to_string());
        }
    }

    fn take_deliverable(&mut self, instance_id: &str, suspended: bool) -> Vec<Message> {
        let Some(messages) = self.pending.get_mut(instance_id) else {
            return Vec::new();
        };
        if !suspended {
            return messages.drain(..).collect();
        }
        let (control, waiting): (Vec<Message>, Vec<Message>) = messages
            .drain(..)
            .partition(|message| processed_while_suspended(&message.event.kind));
        messages.extend(waiting);
        control
    }

    fn accept_activity_result(&mut self, done: ActivityDone) {
        let key = (
            done.instance_id.clone(),
            done.execution_id.clone(),
            done.task_id,
        );
        if self.lose_result_once(&key) {
            return;
        }
        if self.in_flight.remove(&key).is_none() {
            // A duplicate delivery, or a result for an execution that has ended: history already
            // has (or no longer wants) it.
            return;
        }
        if let Err(error) =
            self.store
                .remove_work(&done.instance_id, &done.execution_id, done.task_id)
        {
            self.warn(
                Some(&done.instance_id),
                format!("cannot remove finished work: {error}"),
            );
        }
        let failed = matches!(done.outcome, ActivityOutcome::Failed { .. });
        self.outbox.push(EngineEvent::ActivityFinished {
            instance_id: done.instance_id.clone(),
            task_id: done.task_id,
            name: done.name,
            failed,
        });
        let still_current = self
            .live
            .get(&done.instance_id)
            .is_some_and(|live| live.record.execution_id == done.execution_id);
        if !still_current {
            return;
        }
        let kind = match done.outcome {
            ActivityOutcome::Completed { result } => EventKind::TaskCompleted {
                task_scheduled_id: done.task_id,
                result,
            },
            ActivityOutcome::Failed { failure } => EventKind::TaskFailed {
                task_scheduled_id: done.task_id,
                failure,
            },
        };
        self.deliver(&done.instance_id, kind);
    }
}

/// The fields of an `ExecutionStarted` event.
struct ExecutionStarted {
    name: String,
    input: Value,
    instance_id: String,
    execution_id: String,
    parent: Option<ParentInstance>,
}

impl ExecutionStarted {
    fn into_event(self) -> EventKind {
        EventKind::ExecutionStarted {
            name: self.name,
            version: None,
            input: self.input,
            instance_id: self.instance_id,
            execution_id: self.execution_id,
            parent: self.parent,
            scheduled_start: None,
        }
    }
}

/// While suspended, only resume and terminate are processed (SEMANTICS.md section 4).
fn processed_while_suspended(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::ExecutionResumed { .. } | EventKind::ExecutionTerminated { .. }
    )
}

fn work_key(work: &WorkRow) -> WorkKey {
    (
        work.instance_id.clone(),
        work.execution_id.clone(),
        work.task_id,
    )
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Calls the plugin; a failure at the boundary (not in user code) fails the orchestration with
/// the reason, so the instance ends visibly instead of hanging.
/// A timer past what the store can hold (from a plugin whose SDK does not refuse it) fails the
/// orchestration the same way, before anything of the episode is recorded.
fn call_orchestrator(plugin: PluginHandle, request: &OrchestratorRequest) -> OrchestratorResponse {
    let failed = |failure: FailureDetails| OrchestratorResponse {
        actions: vec![durable_sdk::protocol::Action {
            id: i32::MAX,
            kind: ActionKind::CompleteOrchestration {
                status: RuntimeStatus::Failed,
                result: Value::Null,
                failure: Some(failure),
                carryover_events: Vec::new(),
            },
        }],
        ..OrchestratorResponse::default()
    };
    match plugin.orchestrate(request) {
        Ok(response) => match unstorable_timer(&response) {
            Some(failure) => failed(failure),
            None => response,
        },
        Err(error) => failed(FailureDetails::new("PluginError", error.to_string())),
    }
}

fn unstorable_timer(response: &OrchestratorResponse) -> Option<FailureDetails> {
    response
        .actions
        .iter()
        .find_map(|action| match action.kind {
            ActionKind::CreateTimer { fire_at } => durable_sdk::history::check_time(fire_at)
                .err()
                .map(|error| {
                    FailureDetails::new(
                        durable_sdk::TIMER_OUT_OF_RANGE,
                        format!("create_timer (#{}): {error}", action.id),
                    )
                    .non_retriable()
                }),
            _ => None,
        })
}

fn spawn_workers(
    count: usize,
    results: Sender<CoreMessage>,
    events: broadcast::Sender<EngineEvent>,
) -> (Sender<Job>, Vec<JoinHandle<()>>) {
    let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
    let workers = (0..count)
        .filter_map(|index| {
            let queue = queue.clone();
            let results = results.clone();
            let events = events.clone();
            std::thread::Builder::new()
                .name(format!("durable-emu-worker-{index}"))
                .spawn(move || {
                    for job in queue {
                        if events.receiver_count() > 0 {
                            let _ = events.send(EngineEvent::ActivityStarted {
                                instance_id: job.work.instance_id.clone(),
                                task_id: job.work.task_id,
                                name: job.work.name.clone(),
                            });
                        }
                        let done = run_job(job);
                        if results.send(CoreMessage::ActivityDone(done)).is_err() {
                            return;
                        }
                    }
                })
                .ok()
        })
        .collect();
    (jobs, workers)
}

fn run_job(job: Job) -> ActivityDone {
    let Job {
        work,
        delivery,
        plugin,
    } = job;
    let request = ActivityRequest {
        name: work.name.clone(),
        input: work.input,
        instance_id: work.instance_id.clone(),
        task_id: work.task_id,
        attempt: delivery,
    };
    let outcome = plugin
        .run_activity(&request)
        .unwrap_or_else(|error| ActivityOutcome::Failed {
            failure: FailureDetails::new("PluginError", error.to_string()),
        });
    ActivityDone {
        instance_id: work.instance_id,
        execution_id: work.execution_id,
        task_id: work.task_id,
        name: work.name,
        outcome,
    }
}
