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
mod deliveries;
mod entities;
mod episode;
mod faults;
mod fork;
mod kept_builds;
mod payload;
mod probe;
mod reload;
mod remote;
mod waiters;

pub(crate) use entities::EntityBatchDone;
pub(crate) use waiters::TerminalWaiter;

use super::{
    CoreInbox, CoreMessage, CoreReply, EngineConfig, EngineError, EngineEvent, Limits,
    RunningEpisode, RunningSlot, StoreFailurePolicy,
};
use crate::clock::{Clock, ClockKind};
use crate::faults::FaultRules;
use crate::plugin::LoadedPlugin;
use crate::store::{InstanceRecord, Store, StoreError, TimerRow, WorkRow};
use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;
use durable_sdk::FailureDetails;
use durable_sdk::ffi::PluginHandle;
use durable_sdk::history::{EventKind, HistoryEvent, ParentInstance, RuntimeStatus};
use durable_sdk::http::HTTP_ACTIVITY;
use durable_sdk::protocol::{
    ActionKind, ActivityOutcome, ActivityRequest, OrchestratorRequest, OrchestratorResponse,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::broadcast;

/// Durable HTTP threads: requests mostly wait on the network, so many run at once and a call to
/// a slow API does not hold up the next ones.
const HTTP_THREADS: usize = 32;
/// Most messages taken into one batch, so one transaction stays a reasonable size.
const MAX_BATCH: usize = 20_000;
/// Metadata key of the persisted virtual time.
const VIRTUAL_NOW: &str = "virtual_now";
/// Pauses between attempts to get going again after the store refused a batch.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(8);

/// An activity attempt finished on a worker.
#[derive(Debug)]
pub(crate) struct ActivityDone {
    instance_id: String,
    execution_id: String,
    task_id: i32,
    name: String,
    outcome: ActivityOutcome,
}

/// Work handed to a worker: an activity attempt or an entity batch.
enum Job {
    Activity(ActivityJob),
    Entity(entities::EntityJob),
}

/// An activity attempt for a worker.
struct ActivityJob {
    work: WorkRow,
    delivery: u32,
    plugin: PluginHandle,
    max_payload: usize,
}

/// The threads that perform Durable HTTP requests and the queue they take them from.
struct HttpWorkers {
    jobs: Sender<WorkRow>,
}

/// An activity's identity: the execution that scheduled it and its `TaskScheduled` id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WorkKey {
    instance_id: String,
    execution_id: String,
    task_id: i32,
}

/// Outstanding activity work as the core tracks it: the row (as in `activity_work`) and which
/// delivery of it is out (1 the first; more after a lost result or a restart).
#[derive(Debug, Clone)]
struct InFlight {
    work: WorkRow,
    delivery: u32,
}

/// A pending durable timer (as in `timers`), ordered by when it fires.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TimerKey {
    fire_at: DateTime<Utc>,
    instance_id: String,
    execution_id: String,
    timer_id: i32,
}

impl WorkKey {
    fn new(instance_id: String, execution_id: String, task_id: i32) -> Self {
        Self {
            instance_id,
            execution_id,
            task_id,
        }
    }
}

impl From<TimerRow> for TimerKey {
    fn from(timer: TimerRow) -> Self {
        Self {
            fire_at: timer.fire_at,
            instance_id: timer.instance_id,
            execution_id: timer.execution_id,
            timer_id: timer.timer_id,
        }
    }
}

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
    /// How often each exact call was made in the current execution, and which execution it is
    /// (for fault attempts and probabilities); built from the store when first needed.
    calls: Option<faults::CallCounts>,
}

pub(crate) struct Core {
    store: Store,
    clock: Clock,
    /// Virtual time moved since it was last written to `meta`.
    clock_dirty: bool,
    /// Where an advance (by a duration, or to the next timer) is taking virtual time, until it
    /// gets there. Kept across batches because it steps through the timers on the way and waits
    /// for the activities each woken episode schedules, which finish on worker threads. Not in
    /// the store: like a command in flight, it does not outlive the process.
    advance_until: Option<DateTime<Utc>>,
    builds: Builds,
    mirror: Mirror,
    batch: BatchOutput,
    outlets: Outlets,
    workers: WorkerPool,
    recovery: Recovery,
    faults: FaultRules,
    limits: Limits,
    remote: RemoteExec,
}

/// The remote executor as the core sees it: whether names the plugin lacks go to remote
/// workers, and the hub they take work from.
struct RemoteExec {
    enabled: bool,
    /// Every live episode, activity and entity batch goes to the workers (`--isolate`).
    isolated: bool,
    hub: crate::remote::RemoteHub,
    /// Reconnect probes out, by instance (see `core/probe.rs`): while one is out, the instance's
    /// next episode waits, so the probe and a real episode never race.
    probing: HashMap<String, probe::Probing>,
    /// Workers that connected while an instance's probe for another worker was out: each is
    /// sent its own probe of that instance once that one is over.
    probe_after: HashMap<String, Vec<(crate::remote::WorkerId, String)>>,
    /// Numbers the probes, so an answer is matched to the probe that asked.
    next_probe: u64,
}

/// The functions: every build loaded in this process, by number (never unloaded, so pinned
/// instances keep theirs), and the newest, which new instances and reload checks use.
#[derive(Default)]
struct Builds {
    loaded: BTreeMap<u32, LoadedPlugin>,
    active: Option<u32>,
    /// Copies of the libraries instances may need after a restart; only in an engine that runs
    /// code on a database file.
    kept: Option<kept_builds::KeptBuilds>,
    /// An instance left a build (it ended, or moved on): unneeded copies go after the commit.
    sweep_due: bool,
}

/// What the core holds in memory of the store, so a batch need not read it back. Invariant: as
/// of the last commit plus this batch's own changes, each part equals its table (`live` the
/// non-terminal `instances`, `pending` the `inbox` plus messages not yet persisted, `in_flight`
/// the dispatched `activity_work`, `timers` the `timers`); a failed batch or an injected crash
/// drops it all and `Core::reload_from_store` rebuilds it as a new process would.
#[derive(Default)]
struct Mirror {
    /// Non-terminal instances.
    live: HashMap<String, Live>,
    /// Messages waiting for each instance's next episode, in arrival order.
    pending: HashMap<String, VecDeque<Message>>,
    /// Instances with a deliverable message, in the order they became so (`runnable_set`: the
    /// same, to test membership).
    runnable: VecDeque<String>,
    runnable_set: HashSet<String>,
    /// Activities handed (or about to be handed) to the workers.
    in_flight: HashMap<WorkKey, InFlight>,
    timers: BTreeSet<TimerKey>,
    /// Work a `delay` fault holds back until a time (`deferred_seq` keeps equal times in order).
    deferred: BTreeMap<(DateTime<Utc>, u64), faults::Deferred>,
    deferred_seq: u64,
    /// Activities whose next result a `lose result` fault drops.
    lose_result: HashSet<WorkKey>,
    /// Episodes handed to remote workers (at most one per instance), until their completion is
    /// recorded; their messages keep their inbox rows until then.
    remote_episodes: HashMap<String, episode::PreparedEpisode>,
    /// Which of `in_flight` went to remote workers.
    remote_work: HashSet<WorkKey>,
    /// The history of instances remote workers run, as their last episode saw it: the next
    /// reads from the store only what was recorded since (see `Core::remote_past`).
    remote_pasts: HashMap<String, remote::RemotePast>,
    /// Entities: their queues, locks and batches out (see `core/entities.rs`).
    entities: entities::EntityMirror,
}

/// What the current batch produced, handed out only once it has committed.
#[derive(Default)]
struct BatchOutput {
    /// Activities to give the workers.
    to_dispatch: Vec<InFlight>,
    /// Instances whose prepared episode (in `remote_episodes`) goes to the remote workers.
    to_submit: Vec<String>,
    /// Entity batches for the workers.
    entity_jobs: Vec<entities::EntityJob>,
    /// Entity batches for the remote hub.
    entity_work: Vec<crate::remote::Work>,
    /// Events to publish.
    outbox: Vec<EngineEvent>,
    /// Instances that ended, for their terminal waiters.
    finished: Vec<InstanceRecord>,
    /// Why the batch cannot commit (the first store failure seen); set, it is rolled back and
    /// nothing of it leaves the core.
    failure: Option<String>,
    /// Set by a fired `crash` rule: the instance that triggered it.
    crash: Option<String>,
}

/// Where the core tells the outside what happened.
struct Outlets {
    events: broadcast::Sender<EngineEvent>,
    /// The lossless subscription (`Engine::start_with_sink`): every event, blocking when full.
    sink: Option<Sender<EngineEvent>>,
    /// The episode inside the plugin right now, for handles (see `orchestrate_journaled`).
    running: RunningSlot,
    terminal_waiters: waiters::TerminalWaiters,
    /// Why the core stopped on its own, for the handle's errors.
    stopped_because: Arc<OnceLock<String>>,
}

/// The activity workers and the journal of user code they (and the core) start.
struct WorkerPool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// The Durable HTTP threads, started with the first HTTP call (an engine that makes none,
    /// or only answers queries, never has them).
    http: Option<HttpWorkers>,
    /// What new worker threads report to.
    outlets: WorkerOutlets,
    /// Starts of user code not yet known to have ended (see `deliveries`); none in memory.
    journal: Option<Arc<deliveries::StartJournal>>,
    /// Recovery counted the journal's starts into the store: empty it after the next commit.
    journal_counted: bool,
}

/// Getting going again after the store refused a batch.
struct Recovery {
    /// Set after a failed batch until memory has been reloaded from the store; while set,
    /// commands are refused unrun.
    unrecovered: Option<String>,
    retry_pause: Duration,
    on_store_failure: StoreFailurePolicy,
    /// Instances whose stored history does not decode: set aside for this process, not run.
    quarantined: HashSet<String>,
}

impl Core {
    pub(crate) fn open(
        config: EngineConfig,
        commands: Sender<CoreMessage>,
        events: broadcast::Sender<EngineEvent>,
        stopped_because: Arc<OnceLock<String>>,
        sink: Option<Sender<EngineEvent>>,
        running: RunningSlot,
        hub: crate::remote::RemoteHub,
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
                let mut clock = Clock::virtual_at(start, config.auto_skip);
                if config.playing {
                    clock.set_playing(true)?;
                }
                clock
            }
        };
        // Only an engine that runs code keeps the journal: a query-only one (list, status, ...)
        // leaves the counting, and the judging against --max-deliveries, to the next that runs.
        let journal = match config
            .plugin
            .as_ref()
            .map_or(Ok(None), |_| deliveries::StartJournal::beside(&config.db))
        {
            Ok(journal) => journal.map(Arc::new),
            Err(error) => {
                // Without it, work that ends the process is still redelivered, just not counted.
                tracing::warn!(target: "durable_emu::engine", "cannot open the start journal beside {}: {error}", config.db);
                None
            }
        };
        let worker_outlets = WorkerOutlets {
            results: commands,
            events: events.clone(),
            journal: journal.clone(),
            sink: sink.clone(),
        };
        let (jobs, workers) = spawn_workers(config.workers.max(1), &worker_outlets);
        let mut core = Self {
            store,
            clock,
            clock_dirty: true,
            advance_until: None,
            builds: Builds::default(),
            mirror: Mirror::default(),
            batch: BatchOutput::default(),
            outlets: Outlets {
                events,
                sink,
                running,
                terminal_waiters: waiters::TerminalWaiters::default(),
                stopped_because,
            },
            workers: WorkerPool {
                jobs: Some(jobs),
                threads: workers,
                http: None,
                outlets: worker_outlets,
                journal,
                journal_counted: false,
            },
            recovery: Recovery {
                unrecovered: None,
                retry_pause: RETRY_FIRST,
                on_store_failure: config.on_store_failure,
                quarantined: HashSet::new(),
            },
            faults: FaultRules::default(),
            limits: config.limits,
            remote: RemoteExec {
                enabled: config.remote_workers || config.isolated,
                isolated: config.isolated,
                hub,
                probing: HashMap::new(),
                probe_after: HashMap::new(),
                next_probe: 0,
            },
        };
        let now = core.clock.now();
        for rule in config.faults {
            core.faults.add(rule, now);
        }
        core.builds.kept = config
            .plugin
            .as_ref()
            .and_then(|_| kept_builds::KeptBuilds::beside(&config.db));
        core.store.begin()?;
        core.recover(true)?;
        if let Some(plugin) = config.plugin {
            core.load_kept_builds(&plugin.content_hash)?;
            core.adopt_build(plugin)?;
        }
        // What recovery delivered (a failure for work that reached its delivery limit) must be
        // as durable as the removal of that work, both in this first commit.
        core.persist_leftovers()?;
        core.store.commit()?;
        core.dispatch_and_publish();
        Ok(core)
    }

    /// Loads every non-terminal instance with its messages, outstanding work and timers.
    /// `after_restart`: counts the start journal's unfinished deliveries (only a new process may:
    /// in a running one the journal's open starts are work its workers still run).
    fn recover(&mut self, after_restart: bool) -> Result<(), EngineError> {
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
            if self.recovery.quarantined.contains(&record.instance_id) {
                continue;
            }
            let id = record.instance_id.clone();
            self.mirror.live.insert(
                id,
                Live {
                    record,
                    has_session: false,
                    calls: None,
                },
            );
        }
        let due_times: HashMap<i64, DateTime<Utc>> =
            self.store.inbox_due_times()?.into_iter().collect();
        let now = self.clock.now();
        for row in self.store.inbox()? {
            if !self.mirror.live.contains_key(&row.instance_id) {
                self.store.remove_inbox(row.id)?;
                continue;
            }
            let message = Message {
                event: row.event,
                inbox_id: Some(row.id),
            };
            match due_times.get(&row.id) {
                // Still held back by a delay: it waits in memory as it did before the restart.
                Some(due) if *due > now => self.defer(
                    *due,
                    faults::Deferred::Deliver(row.instance_id, vec![message]),
                ),
                _ => self.enqueue(&row.instance_id, message),
            }
        }
        for timer in self.store.timers()? {
            self.mirror.timers.insert(TimerKey::from(timer));
        }
        self.recover_entities()?;
        // Outstanding work is delivered again (it may have run before: at-least-once), counting
        // the deliveries that never finished because the process ended.
        let starts = match &self.workers.journal {
            Some(journal) if after_restart => journal.read().unwrap_or_default(),
            _ => deliveries::Starts::default(),
        };
        self.recover_work(&starts)?;
        self.recover_episodes(&starts)?;
        self.workers.journal_counted |= after_restart;
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
            let messages = first.into_iter().chain(inbox.try_iter().take(MAX_BATCH));
            if let Some(cause) = self.recovery.unrecovered.clone() {
                if let Err(error) = self.recover_after_failure() {
                    let cause = format!("{cause}; reloading from the store failed too: {error}");
                    if self.refuse_while_failing(messages, &cause) {
                        return self.stop();
                    }
                    continue;
                }
            }
            if let Err(error) = self.store.begin() {
                self.fail_batch(format!("cannot start a transaction: {error}"));
            }
            let mut stopping = false;
            // Commands are answered after the batch commits and its events are published, so
            // an answer never runs ahead of what it caused (or of its durability).
            let mut replies: Vec<CoreReply> = Vec::new();
            for message in messages {
                match message {
                    CoreMessage::Call(call) => replies.push(call(Some(self))),
                    CoreMessage::ActivityDone(done) => self.accept_activity_result(done),
                    CoreMessage::EntityBatchDone(done) => self.accept_entity_batch(done),
                    CoreMessage::Shutdown => {
                        stopping = true;
                        break;
                    }
                }
            }
            if self.faults.has_crash_rules() && self.batch.failure.is_none() {
                // With crashes injected, what was acknowledged (commands, accepted results) is
                // committed before episodes run, as a host that answers only after a durable
                // write would; a crash then loses just the episodes' work.
                self.commit_checkpoint();
            }
            if self.batch.failure.is_none() {
                self.process();
            }
            let failure = self.finish_batch();
            replies
                .into_iter()
                .for_each(|reply| reply(failure.as_deref()));
            if stopping
                || (failure.is_some() && self.recovery.on_store_failure == StoreFailurePolicy::Stop)
            {
                return self.stop();
            }
        }
    }

    /// While the store keeps failing: commands are refused unrun (answered with the cause),
    /// results are dropped (their work stays outstanding in the store and is redelivered), and
    /// the core pauses before trying again. Returns whether to stop.
    fn refuse_while_failing(
        &mut self,
        messages: impl Iterator<Item = CoreMessage>,
        cause: &str,
    ) -> bool {
        let mut stopping = false;
        for message in messages {
            match message {
                CoreMessage::Call(call) => call(None)(Some(cause)),
                // Its operations stay queued in the store and run again once memory is rebuilt.
                CoreMessage::ActivityDone(_) | CoreMessage::EntityBatchDone(_) => {}
                CoreMessage::Shutdown => stopping = true,
            }
        }
        self.publish_now(EngineEvent::StoreFailed {
            message: cause.to_string(),
            retrying: !stopping,
        });
        stopping
    }

    fn stop(&mut self) {
        // Workers finish the activity they are running and exit; their results are dropped and
        // the work stays outstanding in the store, to be redelivered on the next start.
        self.workers.jobs = None;
        self.workers.threads.clear();
        self.workers.http = None;
    }

    fn wait_timeout(&self) -> Option<Duration> {
        if self.recovery.unrecovered.is_some() {
            return Some(self.recovery.retry_pause);
        }
        if !self.mirror.runnable.is_empty() || self.mirror.entities.wants_pump() {
            return Some(Duration::ZERO);
        }
        if self.clock.is_virtual() {
            // Auto-skip and advances move time only inside a batch: right after start-up (or a
            // batch that left work to skip to), one must run even without a message.
            let skippable = !self.mirror.timers.is_empty() || self.next_deferred().is_some();
            let moving = self.advance_until.is_some() || (self.clock.auto_skip && skippable);
            if self.idle() && moving {
                return Some(Duration::ZERO);
            }
            if !self.clock.is_playing() {
                return None;
            }
        }
        // Under real time, or virtual time that plays (it runs at real speed), the core sleeps
        // until the next timer or delayed delivery is due.
        let next_timer = self.mirror.timers.first().map(|timer| timer.fire_at);
        [next_timer, self.next_deferred()]
            .into_iter()
            .flatten()
            .min()
            .map(|due| {
                (due - self.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(Duration::from_secs(3600))
            })
    }

    /// Fires due timers and runs episodes until nothing more can happen without new input.
    /// Whenever everything is idle, virtual time moves on: to the next timer or delayed delivery
    /// that an advance in progress reaches (then to its end once nothing more is due before
    /// it), or, with auto-skip on, to the next one at all.
    fn process(&mut self) {
        loop {
            self.handle_crash();
            self.fire_due_timers();
            while let Some(instance_id) = self.mirror.runnable.pop_front() {
                self.mirror.runnable_set.remove(&instance_id);
                if let Err(error) = self.run_episode(&instance_id) {
                    self.episode_not_recorded(&instance_id, error);
                }
                if self.batch.failure.is_some() {
                    return;
                }
                self.handle_crash();
                self.fire_due_timers();
            }
            if self.batch.failure.is_some() {
                return;
            }
            // Entities run after the episodes that sent them messages; what they answer (call
            // results, granted locks) makes instances runnable again.
            self.pump_entities();
            if self.batch.failure.is_some() {
                return;
            }
            if !self.mirror.runnable.is_empty() {
                continue;
            }
            if !self.idle() || !self.clock.is_virtual() {
                return;
            }
            let next_timer = self.mirror.timers.first().map(|timer| timer.fire_at);
            let next = [next_timer, self.next_deferred()]
                .into_iter()
                .flatten()
                .min();
            // One step at a time, as if the time passed: what is due first fires and its
            // episodes (and their activities) run before the clock moves past it.
            let step = match (self.advance_until, next) {
                (Some(until), Some(next)) if next <= until => next,
                (Some(until), _) => {
                    self.advance_until = None;
                    until
                }
                (None, Some(next)) if self.clock.auto_skip => next,
                (None, _) => return,
            };
            let before = self.clock.now();
            match self.clock.advance_to(step) {
                // (A playing clock runs on by itself: only a real jump is news.)
                Ok(now) if now > before && step > before => self.clock_moved(),
                Ok(_) => {}
                Err(error) => {
                    // Nothing can run before that time and time cannot get there: stop moving
                    // (looping here would hang the engine).
                    self.advance_until = None;
                    self.warn(None, error.to_string());
                    return;
                }
            }
        }
    }

    fn handle_crash(&mut self) {
        if let Some(instance_id) = self.batch.crash.take() {
            if let Err(error) = self.crash_now(instance_id) {
                self.fail_batch(format!("recovering from an injected crash failed: {error}"));
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
            self.fail_batch(format!("cannot commit before running episodes: {error}"));
        }
    }

    /// Virtual time as last committed (after an injected crash).
    fn reload_clock(&mut self) -> Result<(), EngineError> {
        if self.clock.is_virtual() {
            if let Some(text) = self.store.meta(VIRTUAL_NOW)? {
                let time = crate::clock::parse_stored_time(&text)?;
                let playing = self.clock.is_playing();
                self.clock = Clock::virtual_at(time, self.clock.auto_skip);
                if playing {
                    self.clock.set_playing(true)?;
                }
            }
        }
        Ok(())
    }

    /// Nothing can happen without time moving: nothing runnable, no work out. Remote work a
    /// worker holds counts as out, and so does a reconnect probe (the episodes it holds back
    /// run when it is answered); remote work no worker takes (parked) does not, or it would
    /// keep time from ever skipping.
    fn idle(&self) -> bool {
        let entities_idle = !self.mirror.entities.busy_on_workers()
            && self.batch.entity_jobs.is_empty()
            && self.batch.entity_work.is_empty();
        if !self.remote.enabled {
            return self.builds.active.is_some()
                && entities_idle
                && self.mirror.runnable.is_empty()
                && self.mirror.in_flight.is_empty()
                && self.batch.to_dispatch.is_empty();
        }
        entities_idle
            && self.mirror.runnable.is_empty()
            && self.batch.to_dispatch.is_empty()
            && self.batch.to_submit.is_empty()
            && self.mirror.in_flight.len() == self.mirror.remote_work.len()
            && !self.remote.hub.work_in_hand()
            && self.remote.probing.is_empty()
    }

    /// Whether anything can run code: a loaded build, or remote workers.
    pub(super) fn has_executor(&self) -> bool {
        self.builds.active.is_some() || self.remote.enabled
    }

    fn clock_moved(&mut self) {
        self.clock_dirty = true;
        self.batch.outbox.push(EngineEvent::ClockMoved {
            now: self.clock.now(),
            playing: self.clock.is_playing(),
        });
    }

    fn fire_due_timers(&mut self) {
        self.release_deferred();
        let now = self.clock.now();
        if self.clock.is_playing()
            && self
                .mirror
                .timers
                .first()
                .is_some_and(|first| first.fire_at <= now)
        {
            // Playing time reached the timer by itself: subscribers hear where the clock is.
            self.clock_moved();
        }
        while let Some(first) = self.mirror.timers.first() {
            if first.fire_at > now {
                break;
            }
            let Some(TimerKey {
                fire_at,
                instance_id,
                execution_id,
                timer_id,
            }) = self.mirror.timers.pop_first()
            else {
                break;
            };
            if let Err(error) = self
                .store
                .remove_timer(&instance_id, &execution_id, timer_id)
            {
                self.fail_batch(format!(
                    "cannot remove a fired timer of instance '{instance_id}': {error}"
                ));
                return;
            }
            let current = self
                .mirror
                .live
                .get(&instance_id)
                .is_some_and(|live| live.record.execution_id == execution_id);
            if current {
                self.batch.outbox.push(EngineEvent::TimerFired {
                    instance_id: instance_id.clone(),
                    timer_id,
                });
                self.deliver(&instance_id, EventKind::TimerFired { fire_at, timer_id });
            }
        }
    }

    /// Persists what is left over and commits; only then dispatches work, publishes events and
    /// answers terminal waiters. If any write of the batch failed (or the commit does), the batch
    /// is rolled back instead, nothing of it leaves the core, and in-memory state goes back to
    /// the store's; returns the cause then.
    fn finish_batch(&mut self) -> Option<String> {
        if self.batch.failure.is_none() {
            if let Err(error) = self.persist_leftovers() {
                self.fail_batch(format!("cannot persist pending messages: {error}"));
            }
        }
        if self.batch.failure.is_none() {
            if let Err(error) = self.store.commit() {
                self.fail_batch(format!("cannot commit: {error}"));
            }
        }
        let Some(cause) = self.batch.failure.take() else {
            self.recovery.retry_pause = RETRY_FIRST;
            self.dispatch_and_publish();
            return None;
        };
        self.abandon_batch(&cause);
        Some(cause)
    }

    /// After a commit: work to the workers, events to subscribers, records to terminal waiters.
    fn dispatch_and_publish(&mut self) {
        if std::mem::take(&mut self.builds.sweep_due) {
            self.sweep_kept_builds();
        }
        if let Some(journal) = &self.workers.journal {
            // Counted starts are in the store now; with nothing in flight, every start ended.
            if std::mem::take(&mut self.workers.journal_counted) || self.mirror.in_flight.is_empty()
            {
                journal.clear();
            }
        }
        // Events first, so a subscriber hears of an activity's scheduling before a worker
        // reports it started.
        for event in std::mem::take(&mut self.batch.outbox) {
            self.publish_now(event);
        }
        for instance_id in self.mirror.entities.take_updated() {
            self.publish_now(EngineEvent::EntityUpdated { instance_id });
        }
        self.dispatch_entity_batches();
        if self.remote.enabled {
            self.dispatch_mixed();
        } else {
            for InFlight { work, delivery } in std::mem::take(&mut self.batch.to_dispatch) {
                if work.name == HTTP_ACTIVITY {
                    self.dispatch_http(work);
                    continue;
                }
                let Some(jobs) = &self.workers.jobs else {
                    continue;
                };
                let build = self
                    .mirror
                    .live
                    .get(&work.instance_id)
                    .and_then(|live| live.record.build);
                if let Some((_, plugin)) = self.plugin_for(build) {
                    let _ = jobs.send(Job::Activity(ActivityJob {
                        work,
                        delivery,
                        plugin,
                        max_payload: self.limits.max_payload_bytes,
                    }));
                }
            }
        }
        for record in std::mem::take(&mut self.batch.finished) {
            for waiter in self.outlets.terminal_waiters.take(&record.instance_id) {
                waiter.answer(record.clone());
            }
        }
    }

    /// Hands a Durable HTTP request to the HTTP threads (whatever functions are loaded, and
    /// never to a plugin or a remote worker: the host performs it), starting them the first time.
    fn dispatch_http(&mut self, work: WorkRow) {
        if self.workers.jobs.is_none() {
            // Stopping: the work stays outstanding in the store and is redelivered on restart.
            return;
        }
        let max_payload = self.limits.max_payload_bytes;
        let outlets = &self.workers.outlets;
        let http = self
            .workers
            .http
            .get_or_insert_with(|| spawn_http_workers(outlets, max_payload));
        let _ = http.jobs.send(work);
    }

    /// Sends one event to every subscriber now (committed state, or a failure report).
    fn publish_now(&self, event: EngineEvent) {
        if let Some(sink) = &self.outlets.sink {
            // Blocks while the sink is full: a slow reader slows the engine, nothing is
            // dropped. A gone reader is not an error.
            let _ = sink.send(event.clone());
        }
        // No subscriber is not an error: events are for whoever listens.
        let _ = self.outlets.events.send(event);
    }

    /// The first store failure of a batch decides its fate; later ones are consequences.
    pub(crate) fn fail_batch(&mut self, cause: String) {
        tracing::debug!(target: "durable_emu::store", "{cause}");
        self.batch.failure.get_or_insert(cause);
    }

    /// A command's store error: a failed write (SQLite refused it) spoils the whole batch; a
    /// value that does not decode is only that command's failure.
    pub(crate) fn store_error_in_command(&mut self, error: &StoreError) {
        if !matches!(error, StoreError::Corrupt { .. }) {
            self.fail_batch(format!("a command could not be recorded: {error}"));
        }
    }

    /// An episode that failed part-way leaves memory ahead of the store: the batch is abandoned.
    /// An instance whose stored history does not decode would fail every batch, so it is set
    /// aside for the rest of this process (and named).
    fn episode_not_recorded(&mut self, instance_id: &str, error: EngineError) {
        if let EngineError::Store(StoreError::Corrupt { .. }) = &error {
            self.recovery.quarantined.insert(instance_id.to_string());
            self.fail_batch(format!(
                "instance '{instance_id}' cannot run: {error}; it is set aside until the emulator restarts"
            ));
        } else {
            self.fail_batch(format!(
                "an episode of instance '{instance_id}' could not be recorded: {error}"
            ));
        }
    }

    /// Rolls the failed batch back and forgets everything it did in memory.
    fn abandon_batch(&mut self, cause: &str) {
        let _ = self.store.rollback();
        self.forget_memory();
        let retrying = self.recovery.on_store_failure == StoreFailurePolicy::Retry;
        if !retrying {
            let _ = self.outlets.stopped_because.set(cause.to_string());
        }
        self.publish_now(EngineEvent::StoreFailed {
            message: cause.to_string(),
            retrying,
        });
        if retrying {
            // Stopping, the caller reports the cause; retrying, nobody else would.
            tracing::warn!(
                target: "durable_emu::store",
                "the store refused a batch, so nothing of it was recorded; trying again in {:?}: {cause}",
                self.recovery.retry_pause
            );
            self.recovery.unrecovered = Some(cause.to_string());
        }
    }

    /// Reloads in-memory state from the store after a failed batch and commits what recovery
    /// wrote; backs off when that fails too.
    fn recover_after_failure(&mut self) -> Result<(), EngineError> {
        let reloaded = self.reload_from_store().and_then(|()| {
            self.persist_leftovers()?;
            self.store.commit()?;
            Ok(())
        });
        if let Err(error) = reloaded {
            let _ = self.store.rollback();
            self.forget_memory();
            self.recovery.retry_pause = (self.recovery.retry_pause * 2).min(RETRY_MAX);
            return Err(error);
        }
        self.recovery.unrecovered = None;
        self.dispatch_and_publish();
        Ok(())
    }

    /// Drops every in-memory mirror of the store (what a restarted process would not have).
    /// Terminal waiters stay: they belong to callers, and are answered once their instance ends.
    fn forget_memory(&mut self) {
        self.mirror = Mirror::default();
        // What remote workers hold was handed out from memory: it is handed out again once
        // memory is rebuilt, and their late answers are stale.
        if self.remote.enabled {
            self.remote.hub.withdraw_all();
        }
        // A failure already seen still decides the batch's fate.
        let failure = self.batch.failure.take();
        self.batch = BatchOutput {
            failure,
            ..BatchOutput::default()
        };
    }

    /// Memory as a freshly started process would build it from the store (inside a transaction
    /// the caller commits).
    fn reload_from_store(&mut self) -> Result<(), EngineError> {
        let _ = self.store.rollback();
        self.forget_memory();
        self.reload_clock()?;
        self.store.begin()?;
        // The process did not die: what its workers run now is not a delivery that never
        // finished, so the journal is not counted.
        self.recover(false)?;
        // A waiter whose instance no longer exists (its start was rolled back) is let go; one
        // whose instance has ended is answered now.
        let waiting = self.outlets.terminal_waiters.instance_ids();
        for instance_id in waiting {
            if self.mirror.live.contains_key(&instance_id) {
                continue;
            }
            let waiters = self.outlets.terminal_waiters.take(&instance_id);
            if let Some(record) = self.store.instance(&instance_id)? {
                for waiter in waiters {
                    waiter.answer(record.clone());
                }
            }
        }
        Ok(())
    }

    fn persist_leftovers(&mut self) -> Result<(), StoreError> {
        // Playing time moves without a jump: every commit stores where it got, so no record
        // written is later than the stored now (a restart never goes back past one).
        if (self.clock_dirty || self.clock.is_playing()) && self.clock.is_virtual() {
            self.store
                .set_meta(VIRTUAL_NOW, &self.clock.now().to_rfc3339())?;
            self.clock_dirty = false;
        }
        self.mirror
            .pending
            .retain(|_, messages| !messages.is_empty());
        // A remote episode's messages first: they arrived before anything still pending.
        for (instance_id, episode) in &mut self.mirror.remote_episodes {
            for message in episode
                .delivered
                .iter_mut()
                .filter(|message| message.inbox_id.is_none())
            {
                message.inbox_id = Some(self.store.push_inbox(instance_id, &message.event)?);
            }
        }
        for (instance_id, messages) in &mut self.mirror.pending {
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
        self.batch.outbox.push(EngineEvent::Warning {
            instance_id: instance_id.map(str::to_string),
            message,
        });
    }

    fn wants_history_events(&self) -> bool {
        self.outlets.sink.is_some() || self.outlets.events.receiver_count() > 0
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
        self.mirror
            .pending
            .entry(instance_id.to_string())
            .or_default()
            .push_back(message);
        self.mark_runnable(instance_id);
    }

    fn mark_runnable(&mut self, instance_id: &str) {
        let Some(live) = self.mirror.live.get(instance_id) else {
            return;
        };
        let suspended = live.record.status == RuntimeStatus::Suspended;
        let deliverable = self
            .mirror
            .pending
            .get(instance_id)
            .is_some_and(|messages| {
                messages
                    .iter()
                    .any(|message| !suspended || processed_while_suspended(&message.event.kind))
            });
        if deliverable && self.mirror.runnable_set.insert(instance_id.to_string()) {
            self.mirror.runnable.push_back(instance_id.to_string());
        }
    }

    fn take_deliverable(&mut self, instance_id: &str, suspended: bool) -> Vec<Message> {
        let Some(messages) = self.mirror.pending.get_mut(instance_id) else {
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
        let key = WorkKey::new(
            done.instance_id.clone(),
            done.execution_id.clone(),
            done.task_id,
        );
        if self.lose_result_once(&key) {
            return;
        }
        self.mirror.remote_work.remove(&key);
        if self.mirror.in_flight.remove(&key).is_none() {
            // A duplicate delivery, or a result for an execution that has ended: history already
            // has (or no longer wants) it.
            return;
        }
        if let Err(error) =
            self.store
                .remove_work(&done.instance_id, &done.execution_id, done.task_id)
        {
            self.fail_batch(format!(
                "cannot record a result of instance '{}': {error}",
                done.instance_id
            ));
            return;
        }
        let failed = matches!(done.outcome, ActivityOutcome::Failed { .. });
        self.batch.outbox.push(EngineEvent::ActivityFinished {
            instance_id: done.instance_id.clone(),
            task_id: done.task_id,
            name: done.name,
            failed,
        });
        let still_current = self
            .mirror
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

/// While suspended, only resume and terminate are processed (docs/semantics.md#suspend-and-resume).
fn processed_while_suspended(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::ExecutionResumed { .. } | EventKind::ExecutionTerminated { .. }
    )
}

fn work_key(work: &WorkRow) -> WorkKey {
    WorkKey::new(
        work.instance_id.clone(),
        work.execution_id.clone(),
        work.task_id,
    )
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Core {
    /// Runs orchestrator code (an episode, or a replay of one), noting its start and end in the
    /// start journal (so code that ends the process is counted) and publishing which instance's
    /// code runs and since when: while an orchestrator that never yields holds the core, that is
    /// the only way a front end can say which instance is stuck.
    fn orchestrate_journaled(
        &self,
        plugin: PluginHandle,
        request: &OrchestratorRequest,
    ) -> Result<OrchestratorResponse, durable_sdk::ffi::BoundaryError> {
        let name = self
            .mirror
            .live
            .get(&request.instance_id)
            .map(|live| live.record.name.clone())
            .unwrap_or_default();
        let note = |end| {
            if let Some(journal) = &self.workers.journal {
                journal.episode(
                    &request.instance_id,
                    &request.execution_id,
                    request.history_len,
                    end,
                );
            }
        };
        note(false);
        let response =
            self.while_running(&request.instance_id, name, || plugin.orchestrate(request));
        note(true);
        response
    }

    /// Runs `call` (orchestrator code of `instance_id`, orchestration `name`) while publishing
    /// it as the [`RunningEpisode`], readable without the core while that code holds it.
    fn while_running<R>(&self, instance_id: &str, name: String, call: impl FnOnce() -> R) -> R {
        let set_running = |episode| {
            *self
                .outlets
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = episode;
        };
        set_running(Some(RunningEpisode {
            instance_id: instance_id.to_string(),
            name,
            since: std::time::Instant::now(),
        }));
        let answer = call();
        set_running(None);
        answer
    }

    /// Calls the plugin; a failure at the boundary (not in user code) fails the orchestration
    /// with the reason, so the instance ends visibly instead of hanging.
    /// A timer past what the store can hold (from a plugin whose SDK does not refuse it) fails
    /// the orchestration the same way, before anything of the episode is recorded.
    fn call_orchestrator(
        &self,
        plugin: PluginHandle,
        request: &OrchestratorRequest,
    ) -> OrchestratorResponse {
        call_outcome(self.orchestrate_journaled(plugin, request))
    }
}

fn call_outcome(
    answer: Result<OrchestratorResponse, durable_sdk::ffi::BoundaryError>,
) -> OrchestratorResponse {
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
    match answer {
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

/// Where a worker thread reports: results to the core, `ActivityStarted` to subscribers, starts
/// and ends of user code to the start journal.
#[derive(Clone)]
struct WorkerOutlets {
    results: Sender<CoreMessage>,
    events: broadcast::Sender<EngineEvent>,
    journal: Option<Arc<deliveries::StartJournal>>,
    sink: Option<Sender<EngineEvent>>,
}

impl WorkerOutlets {
    /// Runs one activity attempt as every activity runs: announced as started, noted in the
    /// journal while it runs, its result sent to the core. False once the core is gone.
    fn run_activity(&self, work: &WorkRow, run: impl FnOnce() -> ActivityDone) -> bool {
        if self.sink.is_some() || self.events.receiver_count() > 0 {
            let started = EngineEvent::ActivityStarted {
                instance_id: work.instance_id.clone(),
                task_id: work.task_id,
                name: work.name.clone(),
            };
            if let Some(sink) = &self.sink {
                let _ = sink.send(started.clone());
            }
            let _ = self.events.send(started);
        }
        let note = |end| {
            if let Some(journal) = &self.journal {
                journal.activity(&work.instance_id, &work.execution_id, work.task_id, end);
            }
        };
        note(false);
        let done = run();
        note(true);
        self.results.send(CoreMessage::ActivityDone(done)).is_ok()
    }
}

fn spawn_workers(count: usize, outlets: &WorkerOutlets) -> (Sender<Job>, Vec<JoinHandle<()>>) {
    let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
    let workers = (0..count)
        .filter_map(|index| {
            let queue = queue.clone();
            let outlets = outlets.clone();
            std::thread::Builder::new()
                .name(format!("durable-emu-worker-{index}"))
                .spawn(move || {
                    for job in queue {
                        let job = match job {
                            Job::Activity(job) => job,
                            Job::Entity(job) => {
                                let done = entities::run_entity_job(job);
                                if outlets
                                    .results
                                    .send(CoreMessage::EntityBatchDone(done))
                                    .is_err()
                                {
                                    return;
                                }
                                continue;
                            }
                        };
                        let work = job.work.clone();
                        if !outlets.run_activity(&work, || run_job(job)) {
                            return;
                        }
                    }
                })
                .ok()
        })
        .collect();
    (jobs, workers)
}

/// Starts the threads that perform Durable HTTP requests: apart from the activity workers, so a
/// slow API never holds up activities, and many, because a request mostly waits.
fn spawn_http_workers(outlets: &WorkerOutlets, max_payload: usize) -> HttpWorkers {
    let (jobs, queue) = crossbeam_channel::unbounded::<WorkRow>();
    let client = crate::http_calls::HttpClient::new();
    // A thread that cannot be started leaves the others to do its share.
    (0..HTTP_THREADS).for_each(|index| {
        let queue = queue.clone();
        let outlets = outlets.clone();
        let client = client.clone();
        let _ = std::thread::Builder::new()
            .name(format!("durable-emu-http-{index}"))
            .spawn(move || {
                for work in queue {
                    let run = || run_http_job(&client, &work, max_payload);
                    if !outlets.run_activity(&work, run) {
                        return;
                    }
                }
            });
    });
    HttpWorkers { jobs }
}

/// Performs one Durable HTTP request; every status is a result, and so is a failure to get one.
fn run_http_job(
    client: &crate::http_calls::HttpClient,
    work: &WorkRow,
    max_payload: usize,
) -> ActivityDone {
    let performed = crate::http_calls::parse_wire(&work.input)
        .and_then(|wire| client.perform(&wire, max_payload));
    let outcome = match performed {
        Ok(response) => {
            let result = serde_json::to_value(&response).unwrap_or(Value::Null);
            let what = format!("the response of HTTP call #{}", work.task_id);
            match payload::over_limit(&what, &result, max_payload) {
                Some(reason) => ActivityOutcome::Failed {
                    failure: FailureDetails::new(payload::PAYLOAD_TOO_LARGE, reason)
                        .non_retriable(),
                },
                None => ActivityOutcome::Completed { result },
            }
        }
        Err(error) => ActivityOutcome::Failed {
            failure: error.failure().unwrap_or_else(|| {
                FailureDetails::new(payload::PAYLOAD_TOO_LARGE, error.to_string()).non_retriable()
            }),
        },
    };
    ActivityDone {
        instance_id: work.instance_id.clone(),
        execution_id: work.execution_id.clone(),
        task_id: work.task_id,
        name: work.name.clone(),
        outcome,
    }
}

fn run_job(job: ActivityJob) -> ActivityDone {
    let ActivityJob {
        work,
        delivery,
        plugin,
        max_payload,
    } = job;
    let request = ActivityRequest {
        name: work.name.clone(),
        input: work.input,
        instance_id: work.instance_id.clone(),
        task_id: work.task_id,
        attempt: delivery,
    };
    let outcome = match plugin.run_activity(&request) {
        Ok(ActivityOutcome::Completed { result }) => {
            let what = format!("the result of activity '{}' (#{})", work.name, work.task_id);
            match payload::over_limit(&what, &result, max_payload) {
                Some(reason) => ActivityOutcome::Failed {
                    failure: FailureDetails::new(payload::PAYLOAD_TOO_LARGE, reason)
                        .non_retriable(),
                },
                None => ActivityOutcome::Completed { result },
            }
        }
        Ok(failed) => failed,
        Err(error) => ActivityOutcome::Failed {
            failure: FailureDetails::new("PluginError", error.to_string()),
        },
    };
    ActivityDone {
        instance_id: work.instance_id,
        execution_id: work.execution_id,
        task_id: work.task_id,
        name: work.name,
        outcome,
    }
}
