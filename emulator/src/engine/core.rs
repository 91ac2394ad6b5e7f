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

mod faults;
mod reload;

use super::{CoreInbox, CoreMessage, EngineConfig, EngineError, EngineEvent, ExecutionHistory};
use crate::clock::{Clock, ClockKind};
use crate::export::InstanceExport;
use crate::faults::FaultRules;
use crate::plugin::LoadedPlugin;
use crate::store::{ExecutionRecord, InstanceRecord, Store, StoreError, TimerRow, WorkRow};
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
                let start = store
                    .meta(VIRTUAL_NOW)?
                    .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
                    .map_or_else(Utc::now, |time| time.with_timezone(&Utc));
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
        for record in self.store.active_instances()? {
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
            for message in first.into_iter().chain(inbox.try_iter().take(MAX_BATCH)) {
                match message {
                    CoreMessage::Call(call) => call(self),
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
            if self.clock.advance_to(next).is_ok() {
                self.clock_moved();
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
            if let Some(time) = self
                .store
                .meta(VIRTUAL_NOW)?
                .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
            {
                self.clock = Clock::virtual_at(time.with_timezone(&Utc), self.clock.auto_skip);
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

    // ----- episodes -------------------------------------------------------------------------

    fn run_episode(&mut self, instance_id: &str) -> Result<(), EngineError> {
        let Some(live) = self.live.get(instance_id) else {
            self.pending.remove(instance_id);
            return Ok(());
        };
        let Some((build, plugin)) = self.plugin_for(live.record.build) else {
            return self.terminate_without_plugin(instance_id);
        };
        self.prepare_call_counts(instance_id)?;
        let Some(live) = self.live.get(instance_id) else {
            return Ok(());
        };
        let suspended = live.record.status == RuntimeStatus::Suspended;
        let execution_id = live.record.execution_id.clone();
        let history_len = live.record.history_len;
        let has_session = live.has_session;
        let delivered = self.take_deliverable(instance_id, suspended);
        if delivered.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mut new_events = Vec::with_capacity(delivered.len() + 1);
        new_events.push(HistoryEvent {
            event_id: -1,
            timestamp: now,
            kind: EventKind::OrchestratorStarted,
        });
        new_events.extend(delivered.iter().map(|message| message.event.clone()));
        let mut request = OrchestratorRequest {
            instance_id: instance_id.to_string(),
            execution_id: execution_id.clone(),
            history_len,
            past_events: Vec::new(),
            new_events,
            include_replay_logs: false,
        };
        if !has_session && history_len > 0 {
            request.past_events = self.store.history(instance_id, &execution_id)?;
        }
        let mut response = call_orchestrator(plugin, &request);
        if response.needs_history {
            request.past_events = self.store.history(instance_id, &execution_id)?;
            response = call_orchestrator(plugin, &request);
        }

        let mut appended = request.new_events;
        appended.extend(response.actions.iter().map(|action| HistoryEvent {
            event_id: action.id,
            timestamp: now,
            kind: action.kind.to_event_kind(),
        }));
        appended.push(HistoryEvent {
            event_id: -1,
            timestamp: now,
            kind: EventKind::OrchestratorCompleted,
        });
        self.store.append_history(
            instance_id,
            &execution_id,
            history_len,
            &appended,
            Some(build),
        )?;
        for message in &delivered {
            if let Some(inbox_id) = message.inbox_id {
                self.store.remove_inbox(inbox_id)?;
            }
        }

        let Some(live) = self.live.get_mut(instance_id) else {
            return Ok(());
        };
        live.has_session = true;
        live.record.build = Some(build);
        live.record.history_len = history_len + appended.len();
        live.record.updated_at = now;
        if response.custom_status.is_some() {
            live.record.custom_status = response.custom_status.clone();
        }
        for message in &delivered {
            match message.event.kind {
                EventKind::ExecutionSuspended { .. } => {
                    live.record.status = RuntimeStatus::Suspended;
                }
                EventKind::ExecutionResumed { .. } | EventKind::ExecutionStarted { .. } => {
                    live.record.status = RuntimeStatus::Running;
                }
                _ => {}
            }
        }
        if live.record.status == RuntimeStatus::Pending {
            live.record.status = RuntimeStatus::Running;
        }
        let parent_name = live.record.name.clone();
        self.store.put_instance(&live.record)?;
        let status = live.record.status;
        let custom_status = live.record.custom_status.clone();
        if self.wants_history_events() {
            self.outbox.push(EngineEvent::HistoryAppended {
                instance_id: instance_id.to_string(),
                execution_id: execution_id.clone(),
                first_seq: history_len,
                events: appended,
            });
        }
        self.outbox.push(EngineEvent::InstanceChanged {
            instance_id: instance_id.to_string(),
            status,
            custom_status,
        });
        if let Some(diff) = response.nondeterminism {
            self.outbox.push(EngineEvent::NonDeterminism {
                instance_id: instance_id.to_string(),
                diff,
            });
        }
        for warning in response.warnings {
            self.warn(Some(instance_id), warning);
        }
        for action in response.actions {
            self.carry_out(
                instance_id,
                &execution_id,
                &parent_name,
                action.id,
                action.kind,
            )?;
        }
        // Messages that arrived while suspended become deliverable after a resume.
        self.mark_runnable(instance_id);
        Ok(())
    }

    /// With no functions loaded, a terminate request is carried out by the host alone (the code
    /// would only have confirmed it); every other message waits for the functions.
    fn terminate_without_plugin(&mut self, instance_id: &str) -> Result<(), EngineError> {
        let Some(messages) = self.pending.get_mut(instance_id) else {
            return Ok(());
        };
        let Some(position) = messages.iter().position(|message| {
            matches!(message.event.kind, EventKind::ExecutionTerminated { .. })
        }) else {
            return Ok(());
        };
        let Some(message) = messages.remove(position) else {
            return Ok(());
        };
        let EventKind::ExecutionTerminated { reason, .. } = message.event.kind.clone() else {
            return Ok(());
        };
        let completed = EventKind::ExecutionCompleted {
            status: RuntimeStatus::Terminated,
            result: reason.clone(),
            failure: None,
        };
        self.record_host_episode(instance_id, vec![message], vec![completed])?;
        self.finish_instance(instance_id, RuntimeStatus::Terminated, reason, None)
    }

    /// Records an episode the host writes alone, without running code: `OrchestratorStarted`,
    /// the delivered messages, `extra`, `OrchestratorCompleted`. Any plugin session of the
    /// instance no longer matches its history afterwards.
    fn record_host_episode(
        &mut self,
        instance_id: &str,
        delivered: Vec<Message>,
        extra: Vec<EventKind>,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let at = |kind| HistoryEvent {
            event_id: -1,
            timestamp: now,
            kind,
        };
        let mut appended = vec![at(EventKind::OrchestratorStarted)];
        appended.extend(delivered.iter().map(|message| message.event.clone()));
        appended.extend(extra.into_iter().map(at));
        appended.push(at(EventKind::OrchestratorCompleted));
        let Some(live) = self.live.get_mut(instance_id) else {
            return Ok(());
        };
        let first_seq = live.record.history_len;
        self.store.append_history(
            instance_id,
            &live.record.execution_id,
            first_seq,
            &appended,
            None,
        )?;
        for message in &delivered {
            if let Some(inbox_id) = message.inbox_id {
                self.store.remove_inbox(inbox_id)?;
            }
        }
        live.record.history_len += appended.len();
        live.record.updated_at = now;
        live.has_session = false;
        let execution_id = live.record.execution_id.clone();
        if self.wants_history_events() {
            self.outbox.push(EngineEvent::HistoryAppended {
                instance_id: instance_id.to_string(),
                execution_id,
                first_seq,
                events: appended,
            });
        }
        Ok(())
    }

    /// Does the work an action asks for (its history event is already recorded).
    fn carry_out(
        &mut self,
        instance_id: &str,
        execution_id: &str,
        name: &str,
        action_id: i32,
        action: ActionKind,
    ) -> Result<(), EngineError> {
        match action {
            ActionKind::ScheduleTask { name, input } => {
                let work = WorkRow {
                    instance_id: instance_id.to_string(),
                    execution_id: execution_id.to_string(),
                    task_id: action_id,
                    name,
                    input,
                };
                match self.plan_activity(&work) {
                    faults::ActivityPlan::Dispatch { twice, lose_result } => {
                        self.store.add_work(&work)?;
                        let key = work_key(&work);
                        if lose_result {
                            self.lose_result.insert(key.clone());
                        }
                        self.in_flight.insert(key, (work.clone(), 1));
                        if twice {
                            self.to_dispatch.push((work.clone(), 1));
                        }
                        self.to_dispatch.push((work, 1));
                    }
                    // Outstanding (so a restart redelivers it) but not running yet, or ever.
                    faults::ActivityPlan::Withhold => self.store.add_work(&work)?,
                    faults::ActivityPlan::FailWith(failure) => self.deliver(
                        instance_id,
                        EventKind::TaskFailed {
                            task_scheduled_id: action_id,
                            failure,
                        },
                    ),
                }
            }
            ActionKind::CreateTimer { fire_at } => {
                self.store.add_timer(&TimerRow {
                    instance_id: instance_id.to_string(),
                    execution_id: execution_id.to_string(),
                    timer_id: action_id,
                    fire_at,
                })?;
                self.timers.insert((
                    fire_at,
                    instance_id.to_string(),
                    execution_id.to_string(),
                    action_id,
                ));
                self.outbox.push(EngineEvent::TimerScheduled {
                    instance_id: instance_id.to_string(),
                    timer_id: action_id,
                    fire_at,
                });
            }
            ActionKind::CreateSubOrchestration {
                name: child_name,
                instance_id: child_id,
                input,
            } => {
                let parent = ParentInstance {
                    instance_id: instance_id.to_string(),
                    execution_id: execution_id.to_string(),
                    name: name.to_string(),
                    task_scheduled_id: action_id,
                };
                let attempt = if self
                    .faults
                    .targets(crate::faults::TargetKind::SubOrchestration)
                {
                    self.next_call_attempt(instance_id, "sub-orchestration", &child_name, &input)
                } else {
                    1
                };
                if let Err(error) =
                    self.start_instance(&child_name, input, Some(child_id), Some(parent), attempt)
                {
                    self.deliver(
                        instance_id,
                        EventKind::SubOrchestrationInstanceFailed {
                            task_scheduled_id: action_id,
                            failure: FailureDetails::new(
                                "SubOrchestrationNotStarted",
                                error.to_string(),
                            )
                            .non_retriable(),
                        },
                    );
                }
            }
            ActionKind::SendEvent {
                instance_id: target,
                name: event_name,
                input,
            } => {
                if self.live.contains_key(&target) {
                    self.deliver_event(&target, &event_name, input)?;
                } else {
                    self.warn(
                        Some(instance_id),
                        format!("event '{event_name}' was sent to '{target}', which is not running; it was dropped"),
                    );
                }
            }
            ActionKind::CompleteOrchestration {
                status: RuntimeStatus::ContinuedAsNew,
                result,
                carryover_events,
                ..
            } => self.continue_as_new(instance_id, result, carryover_events)?,
            ActionKind::CompleteOrchestration {
                status,
                result,
                failure,
                ..
            } => self.finish_instance(instance_id, status, result, failure)?,
        }
        Ok(())
    }

    fn continue_as_new(
        &mut self,
        instance_id: &str,
        input: Value,
        carryover: Vec<HistoryEvent>,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let ordinal = self.store.executions(instance_id)?.len() as i64;
        let execution_id = new_id();
        self.drop_outstanding(instance_id)?;
        self.store.add_execution(
            instance_id,
            &ExecutionRecord {
                execution_id: execution_id.clone(),
                ordinal,
                input: input.clone(),
                started_at: now,
            },
        )?;
        let Some(live) = self.live.get_mut(instance_id) else {
            return Ok(());
        };
        live.record.execution_id = execution_id.clone();
        live.record.input = input.clone();
        live.record.history_len = 0;
        live.record.status = RuntimeStatus::Running;
        live.record.updated_at = now;
        live.has_session = false;
        live.calls = None;
        let started = ExecutionStarted {
            name: live.record.name.clone(),
            input,
            instance_id: instance_id.to_string(),
            execution_id,
            parent: live.record.parent.clone(),
        };
        self.store.put_instance(&live.record)?;
        let mut first = vec![Message {
            event: HistoryEvent {
                event_id: -1,
                timestamp: now,
                kind: started.into_event(),
            },
            inbox_id: None,
        }];
        first.extend(carryover.into_iter().map(|event| Message {
            event,
            inbox_id: None,
        }));
        let queue = self.pending.entry(instance_id.to_string()).or_default();
        for message in first.into_iter().rev() {
            queue.push_front(message);
        }
        self.mark_runnable(instance_id);
        Ok(())
    }

    fn finish_instance(
        &mut self,
        instance_id: &str,
        status: RuntimeStatus,
        output: Value,
        failure: Option<FailureDetails>,
    ) -> Result<(), EngineError> {
        let Some(mut live) = self.live.remove(instance_id) else {
            return Ok(());
        };
        self.drop_outstanding(instance_id)?;
        self.store.clear_pending(instance_id)?;
        self.pending.remove(instance_id);
        live.record.status = status;
        live.record.output = output.clone();
        live.record.failure = failure.clone();
        live.record.updated_at = self.clock.now();
        self.store.put_instance(&live.record)?;
        self.outbox.push(EngineEvent::InstanceChanged {
            instance_id: instance_id.to_string(),
            status,
            custom_status: live.record.custom_status.clone(),
        });
        for waiter in self
            .terminal_waiters
            .remove(instance_id)
            .unwrap_or_default()
        {
            let _ = waiter.send(live.record.clone());
        }
        if let Some(parent) = &live.record.parent {
            let kind = match status {
                RuntimeStatus::Completed => EventKind::SubOrchestrationInstanceCompleted {
                    task_scheduled_id: parent.task_scheduled_id,
                    result: output,
                },
                _ => EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id: parent.task_scheduled_id,
                    failure: failure.unwrap_or_else(|| {
                        FailureDetails::new(
                            status.as_str(),
                            format!("sub-orchestration '{instance_id}' was {status}: {output}"),
                        )
                    }),
                },
            };
            if self.live.contains_key(&parent.instance_id) {
                self.deliver(&parent.instance_id.clone(), kind);
            }
        }
        Ok(())
    }

    /// Forgets an instance's outstanding activities and timers (its execution ended).
    fn drop_outstanding(&mut self, instance_id: &str) -> Result<(), EngineError> {
        self.in_flight.retain(|(id, ..), _| id != instance_id);
        self.lose_result.retain(|(id, ..)| id != instance_id);
        self.deferred.retain(|_, deferred| match deferred {
            faults::Deferred::Dispatch(work) => work.instance_id != instance_id,
            faults::Deferred::Deliver(id, _) => id != instance_id,
        });
        self.to_dispatch
            .retain(|(work, _)| work.instance_id != instance_id);
        self.timers.retain(|(_, id, ..)| id != instance_id);
        self.store.clear_work_and_timers(instance_id)?;
        Ok(())
    }

    // ----- commands -------------------------------------------------------------------------

    pub(crate) fn start_instance(
        &mut self,
        name: &str,
        input: Value,
        instance_id: Option<String>,
        parent: Option<ParentInstance>,
        attempt: u32,
    ) -> Result<String, EngineError> {
        let plugin = self
            .active_build
            .and_then(|number| self.builds.get(&number))
            .ok_or(EngineError::NoPlugin)?;
        if !plugin
            .manifest
            .orchestrators
            .iter()
            .any(|known| known == name)
        {
            return Err(EngineError::UnknownOrchestration {
                name: name.to_string(),
                known: plugin.manifest.orchestrators.join(", "),
            });
        }
        let instance_id = instance_id.unwrap_or_else(new_id);
        if instance_id.trim().is_empty() {
            return Err(EngineError::Invalid(
                "an instance id cannot be empty".into(),
            ));
        }
        if self.live.contains_key(&instance_id) {
            return Err(EngineError::InstanceExists(instance_id));
        }
        // Starting over a terminal instance's id replaces it, as Durable Functions does.
        self.store.purge(&instance_id)?;
        let now = self.clock.now();
        let execution_id = new_id();
        let record = InstanceRecord {
            instance_id: instance_id.clone(),
            name: name.to_string(),
            execution_id: execution_id.clone(),
            status: RuntimeStatus::Pending,
            input: input.clone(),
            output: Value::Null,
            failure: None,
            custom_status: None,
            created_at: now,
            updated_at: now,
            parent: parent.clone(),
            history_len: 0,
            build: None,
            pinned: false,
            divergence: None,
        };
        self.store.put_instance(&record)?;
        self.store.add_execution(
            &instance_id,
            &ExecutionRecord {
                execution_id: execution_id.clone(),
                ordinal: 0,
                input: input.clone(),
                started_at: now,
            },
        )?;
        self.outbox.push(EngineEvent::InstanceCreated {
            instance_id: instance_id.clone(),
            name: name.to_string(),
            parent_instance_id: parent.as_ref().map(|parent| parent.instance_id.clone()),
        });
        self.live.insert(
            instance_id.clone(),
            Live {
                record,
                has_session: false,
                calls: None,
            },
        );
        let is_sub_orchestration = parent.is_some();
        let started = ExecutionStarted {
            name: name.to_string(),
            input,
            instance_id: instance_id.clone(),
            execution_id,
            parent,
        };
        self.plan_start(
            &instance_id,
            name,
            is_sub_orchestration,
            attempt,
            started.into_event(),
        )?;
        Ok(instance_id)
    }

    fn live_or_error(&self, instance_id: &str, action: &'static str) -> Result<&Live, EngineError> {
        if let Some(live) = self.live.get(instance_id) {
            return Ok(live);
        }
        match self.store.instance(instance_id)? {
            Some(record) => Err(EngineError::InstanceTerminal {
                id: instance_id.to_string(),
                status: record.status.to_string(),
                action,
            }),
            None => Err(EngineError::InstanceNotFound(instance_id.to_string())),
        }
    }

    pub(crate) fn raise_event(
        &mut self,
        instance_id: &str,
        name: &str,
        input: Value,
    ) -> Result<(), EngineError> {
        if name.trim().is_empty() {
            return Err(EngineError::Invalid("an event name cannot be empty".into()));
        }
        self.live_or_error(instance_id, "receive events")?;
        self.deliver_event(instance_id, name, input)
    }

    pub(crate) fn terminate(
        &mut self,
        instance_id: &str,
        reason: Value,
        recursive: bool,
    ) -> Result<(), EngineError> {
        self.live_or_error(instance_id, "be terminated")?;
        self.deliver(
            instance_id,
            EventKind::ExecutionTerminated {
                reason: reason.clone(),
                recurse: recursive,
            },
        );
        if recursive {
            let children: Vec<String> = self
                .live
                .values()
                .filter(|live| {
                    live.record
                        .parent
                        .as_ref()
                        .is_some_and(|parent| parent.instance_id == instance_id)
                })
                .map(|live| live.record.instance_id.clone())
                .collect();
            for child in children {
                self.terminate(&child, reason.clone(), true)?;
            }
        }
        Ok(())
    }

    pub(crate) fn suspend(
        &mut self,
        instance_id: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        self.live_or_error(instance_id, "be suspended")?;
        self.deliver(instance_id, EventKind::ExecutionSuspended { reason });
        Ok(())
    }

    pub(crate) fn resume(
        &mut self,
        instance_id: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        self.live_or_error(instance_id, "be resumed")?;
        self.pin_if_diverged(instance_id)?;
        self.deliver(instance_id, EventKind::ExecutionResumed { reason });
        Ok(())
    }

    pub(crate) fn purge(&mut self, instance_id: &str) -> Result<bool, EngineError> {
        if self.live.contains_key(instance_id) {
            return Err(EngineError::InstanceRunning(instance_id.to_string()));
        }
        Ok(self.store.purge(instance_id)?)
    }

    pub(crate) fn restart(&mut self, instance_id: &str) -> Result<String, EngineError> {
        let record = self
            .store
            .instance(instance_id)?
            .ok_or_else(|| EngineError::InstanceNotFound(instance_id.to_string()))?;
        let first_input = self
            .store
            .executions(instance_id)?
            .into_iter()
            .next()
            .map_or(record.input, |execution| execution.input);
        let restarted = self.start_instance(&record.name, first_input, None, None, 1)?;
        if self.is_diverged(instance_id) {
            // Restarting a diverged instance means "run it again on the new build instead".
            let build = self.active_build.unwrap_or_default();
            self.terminate(
                instance_id,
                Value::String(format!("restarted on build #{build} as {restarted}")),
                true,
            )?;
        }
        Ok(restarted)
    }

    pub(crate) fn advance_clock(&mut self, by: Duration) -> Result<DateTime<Utc>, EngineError> {
        let now = self.clock.advance(by)?;
        self.clock_moved();
        Ok(now)
    }

    pub(crate) fn advance_to_next_timer(&mut self) -> Result<Option<DateTime<Utc>>, EngineError> {
        let Some((fire_at, ..)) = self.timers.first() else {
            return Ok(None);
        };
        let fire_at = *fire_at;
        let now = self.clock.advance_to(fire_at)?;
        self.clock_moved();
        Ok(Some(now))
    }

    pub(crate) fn builds(&self) -> Result<Vec<crate::store::BuildRecord>, EngineError> {
        Ok(self.store.builds()?)
    }

    pub(crate) fn active_build(&self) -> Option<u32> {
        self.active_build
    }

    pub(crate) fn add_fault(&mut self, rule: crate::faults::FaultRule) -> u32 {
        self.faults.add(rule, self.clock.now())
    }

    pub(crate) fn faults(&self) -> Vec<crate::faults::RuleState> {
        self.faults.list()
    }

    pub(crate) fn set_fault_enabled(&mut self, id: u32, enabled: bool) -> Result<(), EngineError> {
        if self.faults.set_enabled(id, enabled) {
            Ok(())
        } else {
            Err(EngineError::Invalid(format!("no fault rule {id}")))
        }
    }

    pub(crate) fn remove_fault(&mut self, id: u32) -> Result<(), EngineError> {
        if self.faults.remove(id) {
            Ok(())
        } else {
            Err(EngineError::Invalid(format!("no fault rule {id}")))
        }
    }

    /// Ends an instance without running its code: what is queued for it, then its completion,
    /// as one host-recorded episode.
    fn finish_by_host(
        &mut self,
        instance_id: &str,
        status: RuntimeStatus,
        output: Value,
        failure: Option<FailureDetails>,
    ) -> Result<(), EngineError> {
        let queued: Vec<Message> = self
            .pending
            .remove(instance_id)
            .map(Vec::from)
            .unwrap_or_default();
        let completed = EventKind::ExecutionCompleted {
            status,
            result: output.clone(),
            failure: failure.clone(),
        };
        self.record_host_episode(instance_id, queued, vec![completed])?;
        self.finish_instance(instance_id, status, output, failure)
    }

    pub(crate) fn set_auto_skip(&mut self, on: bool) {
        self.clock.auto_skip = on;
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn pending_timers(&self) -> Vec<TimerRow> {
        self.timers
            .iter()
            .map(|(fire_at, instance_id, execution_id, timer_id)| TimerRow {
                instance_id: instance_id.clone(),
                execution_id: execution_id.clone(),
                timer_id: *timer_id,
                fire_at: *fire_at,
            })
            .collect()
    }

    pub(crate) fn instance(
        &self,
        instance_id: &str,
    ) -> Result<Option<InstanceRecord>, EngineError> {
        Ok(self.store.instance(instance_id)?)
    }

    pub(crate) fn instances(&self) -> Result<Vec<InstanceRecord>, EngineError> {
        Ok(self.store.instances()?)
    }

    pub(crate) fn history(&self, instance_id: &str) -> Result<Vec<ExecutionHistory>, EngineError> {
        if self.store.instance(instance_id)?.is_none() {
            return Err(EngineError::InstanceNotFound(instance_id.to_string()));
        }
        self.store
            .executions(instance_id)?
            .into_iter()
            .map(|execution| {
                let events = self.store.history(instance_id, &execution.execution_id)?;
                let builds = self
                    .store
                    .history_builds(instance_id, &execution.execution_id)?;
                Ok(ExecutionHistory {
                    execution,
                    events,
                    builds,
                })
            })
            .collect()
    }

    pub(crate) fn notify_when_terminal(
        &mut self,
        instance_id: &str,
        waiter: Sender<InstanceRecord>,
    ) -> Result<(), EngineError> {
        if self.live.contains_key(instance_id) {
            self.terminal_waiters
                .entry(instance_id.to_string())
                .or_default()
                .push(waiter);
            return Ok(());
        }
        match self.store.instance(instance_id)? {
            Some(record) => {
                let _ = waiter.send(record);
                Ok(())
            }
            None => Err(EngineError::InstanceNotFound(instance_id.to_string())),
        }
    }

    pub(crate) fn import(&mut self, export: InstanceExport) -> Result<String, EngineError> {
        let record = export.to_record().map_err(EngineError::Invalid)?;
        let instance_id = record.instance_id.clone();
        if self.store.instance(&instance_id)?.is_some() {
            return Err(EngineError::InstanceExists(instance_id));
        }
        self.store.put_instance(&record)?;
        for (execution, exported) in export.execution_records().iter().zip(&export.executions) {
            self.store.add_execution(&instance_id, execution)?;
            self.store.append_history(
                &instance_id,
                &execution.execution_id,
                0,
                &exported.history,
                None,
            )?;
        }
        if !record.status.is_terminal() {
            let current = export
                .executions
                .iter()
                .find(|execution| execution.execution_id == record.execution_id)
                .map(|execution| execution.history.clone())
                .unwrap_or_default();
            self.live.insert(
                instance_id.clone(),
                Live {
                    record: record.clone(),
                    has_session: false,
                    calls: None,
                },
            );
            self.reschedule_open_work(&record, &current)?;
        }
        self.outbox.push(EngineEvent::InstanceCreated {
            instance_id: instance_id.clone(),
            name: record.name.clone(),
            parent_instance_id: record
                .parent
                .as_ref()
                .map(|parent| parent.instance_id.clone()),
        });
        Ok(instance_id)
    }

    /// For an imported running instance: activities and timers its history scheduled but never
    /// completed are scheduled again.
    fn reschedule_open_work(
        &mut self,
        record: &InstanceRecord,
        history: &[HistoryEvent],
    ) -> Result<(), EngineError> {
        let completed: HashSet<i32> = history
            .iter()
            .filter_map(|event| event.kind.completes_task())
            .collect();
        for event in history {
            if completed.contains(&event.event_id) {
                continue;
            }
            match &event.kind {
                EventKind::TaskScheduled { name, input } => {
                    self.carry_out(
                        &record.instance_id,
                        &record.execution_id,
                        &record.name,
                        event.event_id,
                        ActionKind::ScheduleTask {
                            name: name.clone(),
                            input: input.clone(),
                        },
                    )?;
                }
                EventKind::TimerCreated { fire_at } => {
                    self.carry_out(
                        &record.instance_id,
                        &record.execution_id,
                        &record.name,
                        event.event_id,
                        ActionKind::CreateTimer { fire_at: *fire_at },
                    )?;
                }
                EventKind::SubOrchestrationInstanceCreated { instance_id, .. } => {
                    self.warn(
                        Some(&record.instance_id),
                        format!("imported instance waits for sub-orchestration '{instance_id}', which was not imported"),
                    );
                }
                _ => {}
            }
        }
        Ok(())
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
fn call_orchestrator(plugin: PluginHandle, request: &OrchestratorRequest) -> OrchestratorResponse {
    match plugin.orchestrate(request) {
        Ok(response) => response,
        Err(error) => OrchestratorResponse {
            actions: vec![durable_sdk::protocol::Action {
                id: i32::MAX,
                kind: ActionKind::CompleteOrchestration {
                    status: RuntimeStatus::Failed,
                    result: Value::Null,
                    failure: Some(FailureDetails::new("PluginError", error.to_string())),
                    carryover_events: Vec::new(),
                },
            }],
            ..OrchestratorResponse::default()
        },
    }
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
