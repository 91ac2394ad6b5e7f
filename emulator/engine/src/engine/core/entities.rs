//! Entities on the core: each entity's queue, lock and state; running batches of operations on
//! the plugin's workers (or a remote worker); routing answers to calling orchestrations; lock
//! requests granted first come first served; delayed signals on the clock
//! (docs/semantics.md#entities).
//!
//! The store is the truth: every message is written to `entity_queue` when it arrives and leaves
//! it in the transaction that records what running it did (the new state, the operation log, the
//! answers and the actions), so a batch in flight when the process dies runs again. Memory keeps,
//! per entity touched in this process, its row, its queue in arrival order and the batch out.
//!
//! One batch per entity is out at a time. While an entity is locked, only messages of the
//! orchestration holding the lock run; everything else waits in order. User code never runs on
//! the core thread: batches go to the worker threads (`Job::Entity`, answered with
//! `CoreMessage::EntityBatchDone`) or to the remote hub (`Work::Entity`).
//!
//! Knows nothing of front ends; talks to plugins only through the handle the worker job carries.

use super::faults::{Deferred, EntityFaultPlan, InjectedFault};
use super::{Core, Job, payload};
use crate::engine::EngineError;
use crate::engine::entities::{
    CleanedEntities, EntityMessage, EntityMetadata, EntityOperationOutcome, EntityOperationRecord,
    EntityQuery, EntityRequester, entity_in, operations_in, query_in,
};
use crate::remote::{RemoteError, Work};
use crate::store::EntityRow;
use chrono::{DateTime, Utc};
use durable_sdk::EntityId;
use durable_sdk::FailureDetails;
use durable_sdk::ffi::PluginHandle;
use durable_sdk::history::EventKind;
use durable_sdk::protocol::{
    ActionKind, EntityAction, EntityBatchRequest, EntityBatchResult, EntityCaller,
    EntityOperationRequest, EntityOperationResult,
};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

/// Most operations one batch carries to the plugin: enough that a burst of signals costs few
/// commits, few enough that one transaction stays small.
const MAX_BATCH: usize = 100;

/// Most operations one batch carries to a remote worker. Workers report only the state after a
/// whole batch, so the operation log has no state of its own for the operations before a remote
/// batch's last (`state_known: false`); one work item per operation would cost a worker a round
/// trip per operation (the Python SDK's worker ran 1,000 signals 2-4x slower so). The plugin's
/// worker runs its batch an operation at a time and reports each state.
const MAX_REMOTE_BATCH: usize = MAX_BATCH;

/// The failure type of an operation on an entity nobody runs (no loaded build registers its name
/// and remote workers are off).
pub(crate) const ENTITY_NOT_FOUND: &str = durable_sdk::ENTITY_NOT_FOUND;

/// Numbers batches across the process, so a late answer to a batch from before a reload of
/// memory (a failed store batch) never matches a newer one.
static NEXT_BATCH: AtomicU64 = AtomicU64::new(1);

/// The entities as the core holds them (part of the `Mirror`: dropped and rebuilt from the store
/// with it).
#[derive(Default)]
pub(super) struct EntityMirror {
    /// Every entity touched in this process (and every one with queued messages or a lock).
    entities: HashMap<String, EntityLive>,
    /// Entities that may be able to run something; looked at by `pump_entities`.
    to_pump: BTreeSet<String>,
    /// Entities with a batch on the plugin's workers (the core is not idle while any is).
    on_workers: HashSet<String>,
    /// Entities changed in this batch: `EntityUpdated` goes out for each after the commit.
    updated: BTreeSet<String>,
}

impl EntityMirror {
    /// Whether an entity batch runs on the plugin's workers.
    pub(super) fn busy_on_workers(&self) -> bool {
        !self.on_workers.is_empty()
    }

    /// Whether an entity may have something to run.
    pub(super) fn wants_pump(&self) -> bool {
        !self.to_pump.is_empty()
    }

    /// The entities changed since the last call (for `EntityUpdated`).
    pub(super) fn take_updated(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.updated)
    }
}

struct EntityLive {
    row: EntityRow,
    /// Messages that may be run (delayed ones join when due), in arrival order.
    queue: VecDeque<Queued>,
    /// The batch out, if one is.
    running: Option<Running>,
    /// A `delay` fault holds the entity until its wake-up (order is kept: nothing passes).
    held: bool,
    /// How often each operation was run here in this process: the attempt fault rules match.
    attempts: HashMap<String, u32>,
}

struct Queued {
    id: i64,
    message: EntityMessage,
    fault: FaultMark,
}

/// What the fault rules decided for a queued operation (decided once, when it is first looked
/// at, so rule counters count each operation once).
#[derive(Clone)]
enum FaultMark {
    Undecided,
    /// Run it; a rule that fired on it (a delay) is noted in the operation log.
    Run(Option<InjectedFault>),
    /// Do not run it: it fails with this.
    Fail(FailureDetails, InjectedFault),
}

struct Running {
    number: u64,
    /// The queue ids of its operations, in order.
    ids: Vec<i64>,
    /// The request ids of its operations (a remote answer is matched by them).
    request_ids: Vec<String>,
    /// Rules that fired on its operations (a delay), per operation.
    notes: Vec<Option<InjectedFault>>,
}

/// Who runs an entity's operations.
enum Runner {
    Plugin(PluginHandle),
    Remote,
    Nobody(String),
}

/// A batch for the plugin's workers.
pub(super) struct EntityJob {
    pub(super) instance_id: String,
    pub(super) number: u64,
    pub(super) state: Option<Value>,
    pub(super) operations: Vec<EntityOperationRequest>,
    pub(super) plugin: PluginHandle,
    pub(super) max_payload: usize,
}

/// What running one operation did.
#[derive(Debug, Clone)]
pub(super) struct OperationOutcome {
    result: EntityOperationResult,
    /// The state after it (as before it, when it failed).
    state_after: Option<Value>,
    /// Whether `state_after` is known (not for an operation before the last of a remote batch:
    /// the worker reports only the state after the whole batch).
    state_known: bool,
    /// What it asked for (none when it failed).
    actions: Vec<EntityAction>,
}

/// A batch the plugin's workers finished.
#[derive(Debug)]
pub(crate) struct EntityBatchDone {
    instance_id: String,
    number: u64,
    outcomes: Vec<OperationOutcome>,
}

/// Runs a batch on a worker thread: one operation at a time through the plugin (so each
/// operation's state is known, and a panic costs only its own operation).
pub(super) fn run_entity_job(job: EntityJob) -> EntityBatchDone {
    let mut state = job.state;
    let mut outcomes = Vec::with_capacity(job.operations.len());
    for operation in job.operations {
        let request = EntityBatchRequest {
            instance_id: job.instance_id.clone(),
            state: state.clone(),
            operations: vec![operation],
        };
        let outcome = match job.plugin.run_entity_batch(&request) {
            Ok(result) => one_outcome(result, &state, job.max_payload),
            Err(error) => failed(
                FailureDetails::new("PluginError", error.to_string()),
                &state,
            ),
        };
        state = outcome.state_after.clone();
        outcomes.push(outcome);
    }
    EntityBatchDone {
        instance_id: job.instance_id,
        number: job.number,
        outcomes,
    }
}

fn failed(failure: FailureDetails, before: &Option<Value>) -> OperationOutcome {
    OperationOutcome {
        result: EntityOperationResult::Failed { failure },
        state_after: before.clone(),
        state_known: true,
        actions: Vec::new(),
    }
}

/// The outcome of a batch of one operation, checked: a result or state over the payload limit
/// fails the operation (its state stays as before it); so does a batch-level failure or a
/// missing result. A null state is no state.
fn one_outcome(
    result: EntityBatchResult,
    before: &Option<Value>,
    max_payload: usize,
) -> OperationOutcome {
    if let Some(failure) = result.failure {
        return failed(failure, before);
    }
    let state = result.state.filter(|state| !state.is_null());
    match result.results.into_iter().next() {
        Some(EntityOperationResult::Completed { result: output }) => {
            let over =
                payload::over_limit("the operation's result", &output, max_payload).or_else(|| {
                    state.as_ref().and_then(|state| {
                        payload::over_limit("the entity's state", state, max_payload)
                    })
                });
            match over {
                Some(reason) => failed(
                    FailureDetails::new(payload::PAYLOAD_TOO_LARGE, reason).non_retriable(),
                    before,
                ),
                None => OperationOutcome {
                    result: EntityOperationResult::Completed { result: output },
                    state_after: state,
                    state_known: true,
                    actions: result.actions,
                },
            }
        }
        Some(EntityOperationResult::Failed { failure }) => failed(failure, before),
        None => failed(
            FailureDetails::new(
                super::remote::INVALID_WORKER_RESPONSE,
                "the entity batch result has no result for the operation",
            )
            .non_retriable(),
            before,
        ),
    }
}

/// Whether a message may run now: any, on an unlocked entity; only the holder's, on a locked one.
fn eligible(message: &EntityMessage, locked_by: Option<&str>) -> bool {
    locked_by.is_none_or(|holder| message.sender_instance() == Some(holder))
}

/// The canonical id (`@{name lowercased}@{key}`), or why the text is not one.
fn canonical(instance_id: &str) -> Result<EntityId, EngineError> {
    EntityId::parse(instance_id).map_err(|error| EngineError::InvalidArgument(error.to_string()))
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ----- messages in ---------------------------------------------------------------------------

impl Core {
    /// The entity in memory, loaded from the store (or created, on its first message) if needed.
    fn entity_live(&mut self, id: &EntityId) -> Result<&mut EntityLive, EngineError> {
        let key = id.to_string();
        if !self.mirror.entities.entities.contains_key(&key) {
            let row = match self.store.entity(&key)? {
                Some(row) => row,
                None => {
                    let row = EntityRow {
                        instance_id: key.clone(),
                        name: id.name().to_string(),
                        key: id.key().to_string(),
                        state: None,
                        last_modified: self.clock.now(),
                        locked_by: None,
                        critical_section: None,
                    };
                    self.store.put_entity(&row)?;
                    row
                }
            };
            self.mirror.entities.entities.insert(
                key.clone(),
                EntityLive {
                    row,
                    queue: VecDeque::new(),
                    running: None,
                    held: false,
                    attempts: HashMap::new(),
                },
            );
        }
        self.mirror
            .entities
            .entities
            .get_mut(&key)
            .ok_or_else(|| EngineError::InvalidArgument(format!("entity {key} vanished")))
    }

    /// Writes an entity's row (after its state, lock or queue changed) and notes it for
    /// `EntityUpdated`.
    fn touch_entity(&mut self, key: &str) -> Result<(), EngineError> {
        let now = self.clock.now();
        if let Some(entity) = self.mirror.entities.entities.get_mut(key) {
            entity.row.last_modified = now;
            self.store.put_entity(&entity.row)?;
            self.mirror.entities.updated.insert(key.to_string());
        }
        Ok(())
    }

    /// Queues a message at an entity (from `due` on, when that is later than now).
    fn send_to_entity(
        &mut self,
        target: &EntityId,
        message: EntityMessage,
        due: Option<DateTime<Utc>>,
    ) -> Result<(), EngineError> {
        let key = target.to_string();
        let due = due.filter(|due| *due > self.clock.now());
        self.entity_live(target)?;
        let id = self.store.push_entity_message(&key, &message, due)?;
        match due {
            Some(due) => self.defer(
                due,
                Deferred::EntityMessage {
                    entity: key.clone(),
                    id,
                    message,
                },
            ),
            None => {
                if let Some(entity) = self.mirror.entities.entities.get_mut(&key) {
                    entity.queue.push_back(Queued {
                        id,
                        message,
                        fault: FaultMark::Undecided,
                    });
                }
                self.mirror.entities.to_pump.insert(key.clone());
            }
        }
        self.touch_entity(&key)
    }

    /// A delayed message whose time has come joins its entity's queue: it arrives now, so it
    /// goes behind what is queued (and is re-numbered, so a restart keeps that order).
    pub(super) fn release_entity_message(
        &mut self,
        entity: String,
        id: i64,
        message: EntityMessage,
    ) -> Result<(), EngineError> {
        let target = canonical(&entity)?;
        self.store.remove_entity_message(id)?;
        self.send_to_entity(&target, message, None)
    }

    /// A `delay` fault's hold on an entity ends.
    pub(super) fn wake_entity(&mut self, entity: &str) {
        if let Some(live) = self.mirror.entities.entities.get_mut(entity) {
            live.held = false;
            self.mirror.entities.to_pump.insert(entity.to_string());
        }
    }

    /// The due times of delayed entity messages (for "advance to the next timer").
    pub(super) fn entity_due_times(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.mirror
            .deferred
            .iter()
            .filter(|(_, deferred)| matches!(deferred, Deferred::EntityMessage { .. }))
            .map(|((due, _), _)| *due)
    }

    /// Carries out an orchestration's entity action (its history event is already recorded):
    /// queue the signal or call at the entity, queue the lock request, release a lock.
    pub(super) fn carry_out_entity_action(
        &mut self,
        instance_id: &str,
        execution_id: &str,
        action_id: i32,
        action: ActionKind,
    ) -> Result<(), EngineError> {
        let requester = EntityRequester::Orchestration {
            instance_id: instance_id.to_string(),
            execution_id: execution_id.to_string(),
        };
        let caller = EntityCaller {
            instance_id: instance_id.to_string(),
            execution_id: execution_id.to_string(),
        };
        match action {
            ActionKind::SignalEntity {
                request_id,
                target_instance_id,
                operation,
                input,
                scheduled_time,
            } => match canonical(&target_instance_id) {
                Ok(target) => {
                    let message = EntityMessage::Operation {
                        request_id,
                        operation,
                        input,
                        requester,
                        caller: None,
                    };
                    self.send_to_entity(&target, message, scheduled_time)?;
                }
                Err(error) => self.warn(
                    Some(instance_id),
                    format!("signal_entity (#{action_id}) was dropped: {error}"),
                ),
            },
            ActionKind::CallEntity {
                request_id,
                target_instance_id,
                operation,
                input,
                ..
            } => match canonical(&target_instance_id) {
                Ok(target) => {
                    let message = EntityMessage::Operation {
                        request_id,
                        operation,
                        input,
                        requester,
                        caller: Some(caller),
                    };
                    self.send_to_entity(&target, message, None)?;
                }
                Err(error) => self.deliver(
                    instance_id,
                    EventKind::EntityOperationFailed {
                        request_id,
                        failure: FailureDetails::new("InvalidArgument", error.to_string())
                            .non_retriable(),
                    },
                ),
            },
            ActionKind::LockEntities {
                critical_section_id,
                lock_set,
                ..
            } => {
                let mut ids = BTreeSet::new();
                for entity in &lock_set {
                    match canonical(entity) {
                        Ok(id) => {
                            ids.insert(id.to_string());
                        }
                        Err(error) => self.warn(
                            Some(instance_id),
                            format!("lock_entities (#{action_id}) skips '{entity}': {error}"),
                        ),
                    }
                }
                // Sorted and without duplicates (the SDK sends it so; kept so whatever sent it):
                // every critical section takes its locks in the same order, so none deadlock.
                let lock_set: Vec<String> = ids.into_iter().collect();
                match lock_set.first().map(|first| canonical(first)) {
                    Some(first) => {
                        let message = EntityMessage::Lock {
                            critical_section_id,
                            lock_set: lock_set.clone(),
                            position: 0,
                            holder: caller,
                        };
                        self.send_to_entity(&first?, message, None)?;
                    }
                    None => self.deliver(
                        instance_id,
                        EventKind::EntityLockGranted {
                            critical_section_id,
                        },
                    ),
                }
            }
            ActionKind::UnlockEntity {
                critical_section_id,
                target_instance_id,
                ..
            } => {
                if let Ok(target) = canonical(&target_instance_id) {
                    let message = EntityMessage::Unlock {
                        critical_section_id,
                        holder: instance_id.to_string(),
                    };
                    self.send_to_entity(&target, message, None)?;
                }
            }
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "not an entity action: {:?}",
                    other.call()
                )));
            }
        }
        Ok(())
    }

    /// A client's signal (`EngineHandle::signal_entity`); returns the request id.
    pub(crate) fn signal_entity_from_client(
        &mut self,
        instance_id: &str,
        operation: &str,
        input: Value,
        scheduled_time: Option<DateTime<Utc>>,
    ) -> Result<String, EngineError> {
        let target = canonical(instance_id)?;
        if operation.trim().is_empty() {
            return Err(EngineError::InvalidArgument(
                "an entity operation name cannot be empty".into(),
            ));
        }
        self.check_payload(
            &format!("the input of operation '{operation}' of {target}"),
            &input,
        )?;
        let request_id = new_request_id();
        let message = EntityMessage::Operation {
            request_id: request_id.clone(),
            operation: operation.to_string(),
            input,
            requester: EntityRequester::Client,
            caller: None,
        };
        self.send_to_entity(&target, message, scheduled_time)?;
        Ok(request_id)
    }

    /// Releases every lock `holder` holds (it ended, continued as new, or was purged) and drops
    /// the lock requests it has on their way.
    pub(super) fn release_entity_locks(&mut self, holder: &str) -> Result<(), EngineError> {
        let held: Vec<String> = self
            .mirror
            .entities
            .entities
            .iter()
            .filter(|(_, entity)| entity.row.locked_by.as_deref() == Some(holder))
            .map(|(key, _)| key.clone())
            .collect();
        for key in held {
            if let Some(entity) = self.mirror.entities.entities.get_mut(&key) {
                entity.row.locked_by = None;
                entity.row.critical_section = None;
            }
            self.mirror.entities.to_pump.insert(key.clone());
            self.touch_entity(&key)?;
        }
        // Its lock requests still on their way would lock entities for nobody.
        let mut dropped: Vec<(String, i64)> = Vec::new();
        for (key, entity) in &mut self.mirror.entities.entities {
            entity.queue.retain(|queued| {
                let theirs = matches!(&queued.message,
                    EntityMessage::Lock { holder: by, .. } if by.instance_id == holder);
                if theirs {
                    dropped.push((key.clone(), queued.id));
                }
                !theirs
            });
        }
        for (key, id) in dropped {
            self.store.remove_entity_message(id)?;
            self.mirror.entities.to_pump.insert(key.clone());
            self.touch_entity(&key)?;
        }
        Ok(())
    }
}

// ----- running -------------------------------------------------------------------------------

impl Core {
    /// Runs what every entity marked as maybe-runnable can run now: lock requests and releases
    /// are done on the spot; operations go out as a batch (one per entity at a time).
    pub(super) fn pump_entities(&mut self) {
        // Without code to run (a query-only engine), messages wait for an engine that has some.
        if !self.has_executor() {
            return;
        }
        while let Some(key) = self.mirror.entities.to_pump.pop_first() {
            if let Err(error) = self.pump_entity(&key) {
                self.fail_batch(format!("entity {key} could not be recorded: {error}"));
                return;
            }
        }
    }

    fn pump_entity(&mut self, key: &str) -> Result<(), EngineError> {
        loop {
            let Some(entity) = self.mirror.entities.entities.get_mut(key) else {
                return Ok(());
            };
            if entity.running.is_some() || entity.held {
                return Ok(());
            }
            let locked_by = entity.row.locked_by.clone();
            let Some(first) = entity
                .queue
                .iter()
                .position(|queued| eligible(&queued.message, locked_by.as_deref()))
            else {
                return Ok(());
            };
            if !matches!(entity.queue[first].message, EntityMessage::Operation { .. }) {
                let Some(queued) = entity.queue.remove(first) else {
                    return Ok(());
                };
                self.store.remove_entity_message(queued.id)?;
                self.control_message(key, queued.message)?;
                continue;
            }
            if !self.start_batch(key, first)? {
                return Ok(());
            }
        }
    }

    /// A lock request or release at the head of what may run.
    fn control_message(&mut self, key: &str, message: EntityMessage) -> Result<(), EngineError> {
        match message {
            EntityMessage::Lock {
                critical_section_id,
                lock_set,
                position,
                holder,
            } => {
                let current = self
                    .mirror
                    .live
                    .get(&holder.instance_id)
                    .is_some_and(|live| live.record.execution_id == holder.execution_id);
                if !current {
                    // Its orchestration ended on the way: its other locks were released then.
                    return self.touch_entity(key);
                }
                if let Some(entity) = self.mirror.entities.entities.get_mut(key) {
                    entity.row.locked_by = Some(holder.instance_id.clone());
                    entity.row.critical_section = Some(critical_section_id.clone());
                }
                self.touch_entity(key)?;
                let next = position + 1;
                match lock_set.get(next).map(|next| canonical(next)) {
                    Some(target) => {
                        let message = EntityMessage::Lock {
                            critical_section_id,
                            lock_set,
                            position: next,
                            holder,
                        };
                        self.send_to_entity(&target?, message, None)?;
                    }
                    None => self.deliver(
                        &holder.instance_id,
                        EventKind::EntityLockGranted {
                            critical_section_id,
                        },
                    ),
                }
            }
            EntityMessage::Unlock {
                critical_section_id,
                holder,
            } => {
                if let Some(entity) = self.mirror.entities.entities.get_mut(key) {
                    let holds = entity.row.locked_by.as_deref() == Some(holder.as_str())
                        && entity.row.critical_section.as_deref()
                            == Some(critical_section_id.as_str());
                    // A release of a lock that is no longer held (its holder ended first) is
                    // dropped.
                    if holds {
                        entity.row.locked_by = None;
                        entity.row.critical_section = None;
                    }
                }
                self.touch_entity(key)?;
            }
            EntityMessage::Operation { .. } => {}
        }
        Ok(())
    }

    /// Gathers the operations that may run from `first` on and sends them out as one batch; an
    /// operation a fault fails is recorded at once instead (no code runs). Returns whether to
    /// look at the entity again right away (nothing went out).
    fn start_batch(&mut self, key: &str, first: usize) -> Result<bool, EngineError> {
        let runner = self.entity_runner(key);
        let cap = match runner {
            Runner::Remote => MAX_REMOTE_BATCH,
            _ => MAX_BATCH,
        };
        let mut picked: Vec<usize> = Vec::new();
        let mut index = first;
        loop {
            let Some(entity) = self.mirror.entities.entities.get(key) else {
                return Ok(false);
            };
            if picked.len() == cap || index >= entity.queue.len() || entity.held {
                break;
            }
            let locked_by = entity.row.locked_by.as_deref();
            let queued = &entity.queue[index];
            if !eligible(&queued.message, locked_by) {
                index += 1;
                continue;
            }
            let EntityMessage::Operation {
                operation, input, ..
            } = &queued.message
            else {
                break;
            };
            if matches!(queued.fault, FaultMark::Undecided) {
                let (operation, input) = (operation.clone(), input.clone());
                let mark = self.decide_entity_fault(key, &operation, &input);
                if let Some(entity) = self.mirror.entities.entities.get_mut(key) {
                    entity.queue[index].fault = mark;
                }
                continue;
            }
            if let FaultMark::Fail(failure, note) = queued.fault.clone() {
                if picked.is_empty() {
                    self.fail_queued(key, index, failure, note)?;
                    return Ok(true);
                }
                break;
            }
            picked.push(index);
            index += 1;
        }
        if picked.is_empty() {
            return Ok(false);
        }
        self.send_batch(key, &picked, runner)?;
        Ok(false)
    }

    /// Consults the fault rules for an operation about to run.
    fn decide_entity_fault(&mut self, key: &str, operation: &str, input: &Value) -> FaultMark {
        let attempt = match self.mirror.entities.entities.get_mut(key) {
            Some(entity) => {
                let count = entity.attempts.entry(operation.to_string()).or_insert(0);
                *count += 1;
                *count
            }
            None => 1,
        };
        match self.plan_entity_operation(key, operation, input, attempt) {
            EntityFaultPlan::Run => FaultMark::Run(None),
            EntityFaultPlan::Fail(failure, note) => FaultMark::Fail(failure, note),
            EntityFaultPlan::Delay(due, note) => {
                if let Some(entity) = self.mirror.entities.entities.get_mut(key) {
                    entity.held = true;
                }
                self.defer(
                    due,
                    Deferred::EntityWake {
                        entity: key.to_string(),
                    },
                );
                FaultMark::Run(Some(note))
            }
        }
    }

    /// Records an operation a fault failed without running it (state unchanged).
    fn fail_queued(
        &mut self,
        key: &str,
        index: usize,
        failure: FailureDetails,
        note: InjectedFault,
    ) -> Result<(), EngineError> {
        let Some(entity) = self.mirror.entities.entities.get_mut(key) else {
            return Ok(());
        };
        let Some(queued) = entity.queue.remove(index) else {
            return Ok(());
        };
        let outcome = failed(failure, &entity.row.state);
        self.record_operation(key, queued, outcome, Some(note))?;
        self.touch_entity(key)
    }

    fn entity_runner(&self, key: &str) -> Runner {
        let name = self
            .mirror
            .entities
            .entities
            .get(key)
            .map(|entity| entity.row.name.clone())
            .unwrap_or_default();
        let active = self
            .builds
            .active
            .and_then(|number| self.builds.loaded.get(&number));
        // The built-in samples are demos: their `counter` and `account` must not run the
        // entities of the same names that a connected worker (say, the Python SDK's own counter
        // example) brings. A user's own build keeps its names (docs/semantics.md#entities).
        let samples_step_aside = |plugin: &crate::plugin::LoadedPlugin| {
            self.remote.enabled
                && matches!(plugin.origin, crate::plugin::PluginOrigin::BuiltIn)
                && self.remote.hub.runs_entity(&name)
        };
        match active {
            Some(plugin)
                if !self.remote.isolated
                    && plugin.manifest.entities.contains(&name)
                    && !samples_step_aside(plugin) =>
            {
                Runner::Plugin(plugin.handle)
            }
            _ if self.remote.enabled => Runner::Remote,
            Some(plugin) => Runner::Nobody(format!(
                "no entity named '{name}' is registered (the loaded build has {})",
                if plugin.manifest.entities.is_empty() {
                    "no entities".to_string()
                } else {
                    plugin.manifest.entities.join(", ")
                }
            )),
            None => Runner::Nobody(format!("no entity named '{name}' is registered")),
        }
    }

    fn send_batch(
        &mut self,
        key: &str,
        picked: &[usize],
        runner: Runner,
    ) -> Result<(), EngineError> {
        let Some(entity) = self.mirror.entities.entities.get_mut(key) else {
            return Ok(());
        };
        let number = NEXT_BATCH.fetch_add(1, Ordering::Relaxed);
        let mut running = Running {
            number,
            ids: Vec::with_capacity(picked.len()),
            request_ids: Vec::with_capacity(picked.len()),
            notes: Vec::with_capacity(picked.len()),
        };
        let mut operations = Vec::with_capacity(picked.len());
        for index in picked {
            let queued = &entity.queue[*index];
            if let EntityMessage::Operation {
                request_id,
                operation,
                input,
                caller,
                ..
            } = &queued.message
            {
                running.ids.push(queued.id);
                running.request_ids.push(request_id.clone());
                running.notes.push(match &queued.fault {
                    FaultMark::Run(note) => note.clone(),
                    _ => None,
                });
                operations.push(EntityOperationRequest {
                    request_id: request_id.clone(),
                    operation: operation.clone(),
                    input: input.clone(),
                    caller: caller.clone(),
                });
            }
        }
        let state = entity.row.state.clone();
        let name = entity.row.name.clone();
        entity.running = Some(running);
        match runner {
            Runner::Plugin(plugin) => {
                self.mirror.entities.on_workers.insert(key.to_string());
                self.batch.entity_jobs.push(EntityJob {
                    instance_id: key.to_string(),
                    number,
                    state,
                    operations,
                    plugin,
                    max_payload: self.limits.max_payload_bytes,
                });
            }
            Runner::Remote => self.batch.entity_work.push(Work::Entity {
                name,
                request: EntityBatchRequest {
                    instance_id: key.to_string(),
                    state,
                    operations,
                },
            }),
            Runner::Nobody(reason) => {
                let failure = FailureDetails::new(ENTITY_NOT_FOUND, reason).non_retriable();
                let outcomes = operations
                    .iter()
                    .map(|_| failed(failure.clone(), &state))
                    .collect();
                self.finish_entity_batch(key, number, outcomes)?;
            }
        }
        Ok(())
    }

    /// After the commit: batches to the workers and to the hub.
    pub(super) fn dispatch_entity_batches(&mut self) {
        for job in std::mem::take(&mut self.batch.entity_jobs) {
            match &self.workers.jobs {
                Some(jobs) => {
                    let _ = jobs.send(Job::Entity(job));
                }
                None => {
                    self.mirror.entities.on_workers.remove(&job.instance_id);
                }
            }
        }
        for work in std::mem::take(&mut self.batch.entity_work) {
            if let Some(parked) = self.remote.hub.submit(work) {
                self.publish_now(crate::remote::parked_event(parked));
            }
        }
    }

    /// A batch the plugin's workers finished.
    pub(crate) fn accept_entity_batch(&mut self, done: EntityBatchDone) {
        self.mirror.entities.on_workers.remove(&done.instance_id);
        if let Err(error) = self.finish_entity_batch(&done.instance_id, done.number, done.outcomes)
        {
            self.fail_batch(format!(
                "the batch of entity {} could not be recorded: {error}",
                done.instance_id
            ));
        }
    }

    /// The number of entity `instance_id`'s running batch, if `request` is that batch.
    fn running_batch_number(&self, instance_id: &str, request: &EntityBatchRequest) -> Option<u64> {
        self.mirror
            .entities
            .entities
            .get(instance_id)
            .and_then(|entity| entity.running.as_ref())
            .filter(|running| {
                running.request_ids.len() == request.operations.len()
                    && running
                        .request_ids
                        .iter()
                        .zip(&request.operations)
                        .all(|(id, operation)| *id == operation.request_id)
            })
            .map(|running| running.number)
    }

    /// A remote batch that can no longer run (its workers kept going away): every operation
    /// fails with `failure`, state unchanged, as if the entity had thrown it; a caller gets it
    /// as the operation's failure, a signal is logged failed.
    pub(crate) fn fail_remote_entity_batch(
        &mut self,
        request: &EntityBatchRequest,
        failure: FailureDetails,
    ) {
        let instance_id = request.instance_id.as_str();
        let Some(number) = self.running_batch_number(instance_id, request) else {
            return;
        };
        let outcomes = request
            .operations
            .iter()
            .map(|_| failed(failure.clone(), &request.state))
            .collect();
        if let Err(error) = self.finish_entity_batch(instance_id, number, outcomes) {
            self.fail_batch(format!(
                "the batch of entity {instance_id} could not be recorded: {error}"
            ));
        }
    }

    /// A remote worker's answer to an entity batch (`RemoteHub::complete_entity`).
    pub(crate) fn accept_remote_entity_batch(
        &mut self,
        token: &str,
        instance_id: &str,
        result: EntityBatchResult,
    ) -> Result<(), RemoteError> {
        let unknown = || RemoteError::UnknownWork {
            token: token.to_string(),
            instance_id: instance_id.to_string(),
            task_id: None,
        };
        let request = self.remote.hub.take_entity(token, instance_id)?;
        let number = self
            .running_batch_number(instance_id, &request)
            .ok_or_else(unknown)?;
        // An answer with more results than operations breaks the protocol: its operations fail
        // with `InvalidWorkerResponse` (a worker that answers so would answer so again, so
        // running them again would loop), and the worker hears why.
        let invalid = (result.failure.is_none() && result.results.len() > request.operations.len())
            .then(|| {
                format!(
                    "{} results for a batch of {} operations",
                    result.results.len(),
                    request.operations.len()
                )
            });
        let outcomes = match &invalid {
            Some(reason) => {
                let failure = FailureDetails::new(
                    super::remote::INVALID_WORKER_RESPONSE,
                    format!("the worker's answer to an entity batch: {reason}"),
                )
                .non_retriable();
                request
                    .operations
                    .iter()
                    .map(|_| failed(failure.clone(), &request.state))
                    .collect()
            }
            None => remote_outcomes(&request, result, self.limits.max_payload_bytes),
        };
        if let Err(error) = self.finish_entity_batch(instance_id, number, outcomes) {
            self.fail_batch(format!(
                "the batch of entity {instance_id} could not be recorded: {error}"
            ));
        }
        match invalid {
            Some(reason) => Err(RemoteError::InvalidCompletion(reason)),
            None => Ok(()),
        }
    }

    /// Records a finished batch: each operation's log row, answer and actions, the new state;
    /// operations without an outcome go back to the front of the queue (they run again).
    fn finish_entity_batch(
        &mut self,
        key: &str,
        number: u64,
        outcomes: Vec<OperationOutcome>,
    ) -> Result<(), EngineError> {
        let Some(entity) = self.mirror.entities.entities.get_mut(key) else {
            return Ok(());
        };
        if entity
            .running
            .as_ref()
            .is_none_or(|running| running.number != number)
        {
            // A stale answer (memory was rebuilt since): the operations run again.
            return Ok(());
        }
        let Some(running) = entity.running.take() else {
            return Ok(());
        };
        for ((id, note), outcome) in running.ids.iter().zip(running.notes).zip(outcomes) {
            let Some(entity) = self.mirror.entities.entities.get_mut(key) else {
                break;
            };
            let Some(position) = entity.queue.iter().position(|queued| queued.id == *id) else {
                continue;
            };
            let Some(queued) = entity.queue.remove(position) else {
                continue;
            };
            self.record_operation(key, queued, outcome, note)?;
        }
        self.mirror.entities.to_pump.insert(key.to_string());
        self.touch_entity(key)
    }

    /// One operation's outcome, recorded: its message leaves the queue, its log row, the
    /// entity's state, its answer to a caller, its actions.
    fn record_operation(
        &mut self,
        key: &str,
        queued: Queued,
        outcome: OperationOutcome,
        fault: Option<InjectedFault>,
    ) -> Result<(), EngineError> {
        self.store.remove_entity_message(queued.id)?;
        let EntityMessage::Operation {
            request_id,
            operation,
            input,
            requester,
            caller,
        } = queued.message
        else {
            return Ok(());
        };
        if outcome.state_known {
            if let Some(entity) = self.mirror.entities.entities.get_mut(key) {
                entity.row.state = outcome.state_after.clone();
            }
        }
        let logged = match &outcome.result {
            EntityOperationResult::Completed { result } => EntityOperationOutcome::Completed {
                result: result.clone(),
            },
            EntityOperationResult::Failed { failure } => EntityOperationOutcome::Failed {
                failure: failure.clone(),
            },
        };
        let record = EntityOperationRecord {
            seq: 0,
            request_id: request_id.clone(),
            operation,
            input,
            requester,
            awaits_answer: caller.is_some(),
            outcome: logged,
            state_after: outcome.state_after,
            state_known: outcome.state_known,
            at: self.clock.now(),
            fault: fault.as_ref().map(InjectedFault::note),
        };
        self.store.add_entity_operation(key, &record)?;
        if let Some(caller) = caller {
            let answer = match outcome.result {
                EntityOperationResult::Completed { result } => {
                    EventKind::EntityOperationCompleted {
                        request_id,
                        output: result,
                    }
                }
                EntityOperationResult::Failed { failure } => EventKind::EntityOperationFailed {
                    request_id,
                    failure,
                },
            };
            // An answer to an execution that is gone (ended, continued as new) is dropped.
            let current = self
                .mirror
                .live
                .get(&caller.instance_id)
                .is_some_and(|live| live.record.execution_id == caller.execution_id);
            if current {
                if let Some(fault) = &fault {
                    self.deliver(&caller.instance_id, fault.marker());
                }
                self.deliver(&caller.instance_id, answer);
            }
        }
        for action in outcome.actions {
            self.carry_out_entity_batch_action(key, action)?;
        }
        Ok(())
    }

    /// What an operation asked for: a signal goes to its entity's queue, an orchestration
    /// starts. Something that cannot be done is reported as a warning (the operation itself
    /// succeeded).
    fn carry_out_entity_batch_action(
        &mut self,
        key: &str,
        action: EntityAction,
    ) -> Result<(), EngineError> {
        match action {
            EntityAction::SignalEntity {
                instance_id,
                operation,
                input,
                scheduled_time,
            } => match canonical(&instance_id) {
                Ok(target) => {
                    let message = EntityMessage::Operation {
                        request_id: new_request_id(),
                        operation,
                        input,
                        requester: EntityRequester::Entity {
                            instance_id: key.to_string(),
                        },
                        caller: None,
                    };
                    self.send_to_entity(&target, message, scheduled_time)?;
                }
                Err(error) => self.warn(
                    None,
                    format!("entity {key} signalled '{instance_id}', which is not an entity id: {error}; the signal was dropped"),
                ),
            },
            EntityAction::StartOrchestration {
                name,
                instance_id,
                input,
                scheduled_time,
            } => {
                let meta = super::commands::InstanceMeta {
                    scheduled_start: scheduled_time,
                    ..Default::default()
                };
                let started = self.create_instance(
                    &name,
                    input,
                    instance_id,
                    None,
                    crate::faults::Occurrence::FIRST,
                    meta,
                );
                match started {
                    Ok(_) => {}
                    Err(EngineError::Store(error)) => return Err(EngineError::Store(error)),
                    Err(error) => self.warn(
                        None,
                        format!("entity {key} could not start orchestration '{name}': {error}"),
                    ),
                }
            }
        }
        Ok(())
    }
}

/// The outcomes of a remote batch. A batch-level failure fails every operation (nothing of the
/// batch is kept, and its callers hear why). Otherwise each result is checked as the plugin's
/// are; operations without a result are left out (they did not run, and run again). A worker
/// reports only the state after the whole batch: the last operation with a result gets it (a
/// failed last operation left that same state: the worker rolled it back) and carries the
/// batch's actions, in order; the operations before it have no state of their own.
fn remote_outcomes(
    request: &EntityBatchRequest,
    result: EntityBatchResult,
    max_payload: usize,
) -> Vec<OperationOutcome> {
    let before = request.state.clone();
    if let Some(failure) = result.failure {
        return request
            .operations
            .iter()
            .map(|_| failed(failure.clone(), &before))
            .collect();
    }
    let count = result.results.len();
    let mut actions = Some(result.actions);
    let after = result.state.filter(|state| !state.is_null());
    result
        .results
        .into_iter()
        .enumerate()
        .map(|(index, one)| {
            if index + 1 < count {
                // Only the result is known; a result over the limit still fails the operation.
                let mut outcome = one_outcome(
                    EntityBatchResult {
                        results: vec![one],
                        ..EntityBatchResult::default()
                    },
                    &None,
                    max_payload,
                );
                outcome.state_after = None;
                outcome.state_known = false;
                return outcome;
            }
            let last = match one {
                EntityOperationResult::Failed { failure } => OperationOutcome {
                    result: EntityOperationResult::Failed { failure },
                    state_after: after.clone(),
                    state_known: true,
                    actions: Vec::new(),
                },
                completed => one_outcome(
                    EntityBatchResult {
                        results: vec![completed],
                        actions: actions.take().unwrap_or_default(),
                        state: after.clone(),
                        failure: None,
                    },
                    &before,
                    max_payload,
                ),
            };
            if let (EntityOperationResult::Failed { .. }, true) = (&last.result, count > 1) {
                // The last operation failed and nothing was kept of it; the batch's actions
                // belong to the operations before it, which succeeded as far as they did.
                return OperationOutcome {
                    actions: actions.take().unwrap_or_default(),
                    ..last
                };
            }
            last
        })
        .collect()
}

// ----- recovery and queries ------------------------------------------------------------------

impl Core {
    /// Loads every entity with queued messages or a lock (after a start or a failed batch): a
    /// batch that was out when the process died is simply still queued, and runs again.
    pub(super) fn recover_entities(&mut self) -> Result<(), EngineError> {
        let now = self.clock.now();
        for row in self.store.entity_queue::<EntityMessage>(None)? {
            let target = match canonical(&row.instance_id) {
                Ok(target) => target,
                Err(error) => {
                    // One bad row must not keep everything else from running; it stays as is.
                    self.warn(
                        None,
                        format!("a message to '{}' is not run: {error}", row.instance_id),
                    );
                    continue;
                }
            };
            self.entity_live(&target)?;
            match row.due_at {
                Some(due) if due > now => self.defer(
                    due,
                    Deferred::EntityMessage {
                        entity: row.instance_id,
                        id: row.id,
                        message: row.message,
                    },
                ),
                _ => {
                    if let Some(entity) = self.mirror.entities.entities.get_mut(&row.instance_id) {
                        entity.queue.push_back(Queued {
                            id: row.id,
                            message: row.message,
                            fault: FaultMark::Undecided,
                        });
                    }
                    self.mirror.entities.to_pump.insert(row.instance_id);
                }
            }
        }
        let mut after: Option<String> = None;
        loop {
            let rows = self.store.entity_rows(None, after.as_deref(), 1000)?;
            let Some(last) = rows.last() else { break };
            after = Some(last.instance_id.clone());
            for row in rows.into_iter().filter(|row| row.locked_by.is_some()) {
                let key = row.instance_id.clone();
                if !self.mirror.entities.entities.contains_key(&key) {
                    self.mirror.entities.entities.insert(
                        key.clone(),
                        EntityLive {
                            row,
                            queue: VecDeque::new(),
                            running: None,
                            held: false,
                            attempts: HashMap::new(),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    pub(crate) fn entity_metadata(
        &mut self,
        instance_id: &str,
        include_state: bool,
    ) -> Result<Option<EntityMetadata>, EngineError> {
        entity_in(&self.store, instance_id, include_state)
    }

    pub(crate) fn query_entities(
        &mut self,
        query: &EntityQuery,
    ) -> Result<(Vec<EntityMetadata>, Option<String>), EngineError> {
        query_in(&self.store, query)
    }

    pub(crate) fn entity_operations(
        &mut self,
        instance_id: &str,
        limit: usize,
    ) -> Result<Vec<EntityOperationRecord>, EngineError> {
        operations_in(&self.store, instance_id, limit)
    }

    /// Releases locks whose holder no longer runs, then removes entities with no state, no
    /// queued message and no lock (their operation logs go with them).
    pub(crate) fn clean_entity_storage(
        &mut self,
        remove_empty_entities: bool,
        release_orphaned_locks: bool,
    ) -> Result<CleanedEntities, EngineError> {
        let mut cleaned = CleanedEntities::default();
        let mut rows = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.entity_rows(None, after.as_deref(), 1000)?;
            let Some(last) = page.last() else { break };
            after = Some(last.instance_id.clone());
            rows.extend(page);
        }
        for mut row in rows {
            let key = row.instance_id.clone();
            let orphaned = row
                .locked_by
                .as_ref()
                .is_some_and(|holder| !self.mirror.live.contains_key(holder));
            if release_orphaned_locks && orphaned {
                row.locked_by = None;
                row.critical_section = None;
                row.last_modified = self.clock.now();
                if let Some(entity) = self.mirror.entities.entities.get_mut(&key) {
                    entity.row.locked_by = None;
                    entity.row.critical_section = None;
                }
                self.store.put_entity(&row)?;
                self.mirror.entities.updated.insert(key.clone());
                self.mirror.entities.to_pump.insert(key.clone());
                cleaned.orphaned_locks_released += 1;
            }
            let busy = self
                .mirror
                .entities
                .entities
                .get(&key)
                .is_some_and(|entity| entity.running.is_some() || entity.held);
            let empty = row.state.is_none()
                && row.locked_by.is_none()
                && !busy
                && self
                    .store
                    .entity_queue::<EntityMessage>(Some(&key))?
                    .is_empty();
            if remove_empty_entities && empty {
                self.store.remove_entity(&key)?;
                self.mirror.entities.entities.remove(&key);
                self.mirror.entities.updated.insert(key);
                cleaned.empty_entities_removed += 1;
            }
        }
        Ok(cleaned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(from: Option<&str>) -> EntityMessage {
        EntityMessage::Operation {
            request_id: "r".into(),
            operation: "add".into(),
            input: Value::Null,
            requester: match from {
                Some(id) => EntityRequester::Orchestration {
                    instance_id: id.into(),
                    execution_id: "e".into(),
                },
                None => EntityRequester::Client,
            },
            caller: None,
        }
    }

    #[test]
    fn a_locked_entity_runs_only_its_holders_messages() {
        assert!(eligible(&signal(None), None));
        assert!(eligible(&signal(Some("a")), Some("a")));
        assert!(!eligible(&signal(Some("b")), Some("a")));
        assert!(!eligible(&signal(None), Some("a")));
    }

    #[test]
    fn a_failed_operation_keeps_the_state_before_it_and_drops_its_actions() {
        let before = Some(serde_json::json!(5));
        let result = EntityBatchResult {
            results: vec![EntityOperationResult::Failed {
                failure: FailureDetails::new("Boom", "no"),
            }],
            actions: vec![EntityAction::SignalEntity {
                instance_id: "@x@y".into(),
                operation: "op".into(),
                input: Value::Null,
                scheduled_time: None,
            }],
            state: Some(serde_json::json!(99)),
            failure: None,
        };
        let outcome = one_outcome(result, &before, 1 << 20);
        assert_eq!(outcome.state_after, before);
        assert!(outcome.actions.is_empty());
    }

    #[test]
    fn a_result_over_the_payload_limit_fails_the_operation() {
        let result = EntityBatchResult {
            results: vec![EntityOperationResult::Completed {
                result: Value::String("x".repeat(100)),
            }],
            state: Some(serde_json::json!(1)),
            ..EntityBatchResult::default()
        };
        let outcome = one_outcome(result, &None, 50);
        match outcome.result {
            EntityOperationResult::Failed { failure } => {
                assert_eq!(failure.error_type, payload::PAYLOAD_TOO_LARGE);
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(outcome.state_after, None);
    }
}
