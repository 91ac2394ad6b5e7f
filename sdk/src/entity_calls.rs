//! Entities as an orchestration sees them (docs/semantics.md#entities): calling an entity and
//! awaiting its answer, signalling one (now or at a time), and critical sections that lock
//! entities so a group of calls runs with nobody else in between (a bank transfer).
//!
//! Owns the orchestration-side entity state (`EntityCalls`: calls waiting for an answer by
//! request id, the critical section the orchestration is in), the [`OrchestrationContext`]
//! methods `call_entity`, `signal_entity`, `signal_entity_at` and `lock_entities`, the
//! [`EntityLockTask`] and [`CriticalSection`] types, and the locking rules (the Python and .NET
//! SDKs' rules, checked in the code so a violation fails at the call that breaks them).
//! Knows nothing of how events arrive: the executor confirms calls by sequence id and hands
//! answers to [`answer`] and [`grant`] by request id.

use crate::context::{OrchestrationContext, OrchestrationState, failed_without_call};
use crate::entity_id::EntityId;
use crate::failure::{FailureDetails, SERIALIZATION, TaskError, TaskKind};
use crate::protocol::{Action, ActionKind};
use crate::task::{DurableTask, SlotRef, TaskHandle, TaskLabel, new_slot, poll_raw, resolve};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// `error_type` of an entity call, signal or lock that breaks the critical-section rules (calling
/// an entity that is not locked, signalling a locked one, nesting critical sections, calling a
/// sub-orchestration while holding locks). Non-retriable: the code must change.
pub const LOCKING_RULES_VIOLATION: &str = "LockingRulesViolation";

/// A call or lock request waiting for its answer.
pub(crate) struct Waiting {
    slot: SlotRef,
    /// For a call inside a critical section: the section and the locked entity the call uses,
    /// available again once the answer is in (one call at a time per locked entity) if that
    /// section still runs.
    lock_in_use: Option<(String, EntityId)>,
}

/// The critical section an orchestration is in (from its lock request until it ends).
pub(crate) struct Section {
    id: String,
    /// The locked entities, sorted (the request's lock set).
    locks: Vec<EntityId>,
    /// Locked entities with no call in flight: the ones the code may call now.
    available: Vec<EntityId>,
    /// The lock request is not granted yet.
    acquiring: bool,
}

/// The entity side of one execution's state.
#[derive(Default)]
pub(crate) struct EntityCalls {
    /// Calls and lock requests waiting for an answer, by request id / critical section id.
    waiting: HashMap<String, Waiting>,
    section: Option<Section>,
    /// The execution is over and its code is being dropped: a [`CriticalSection`] dropped now
    /// releases nothing (the executor already released what was held, or must not).
    closed: bool,
}

impl EntityCalls {
    /// The history's request id is the one answers carry: when the code made the call under
    /// another id (replaying code that draws guids differently), the wait moves to the recorded
    /// id.
    pub(crate) fn rekey(&mut self, made: &str, recorded: &str) {
        if made == recorded {
            return;
        }
        if let Some(waiting) = self.waiting.remove(made) {
            self.waiting.insert(recorded.to_string(), waiting);
        }
        if let Some(section) = self.section.as_mut().filter(|section| section.id == made) {
            section.id = recorded.to_string();
        }
        for waiting in self.waiting.values_mut() {
            if let Some((section_id, _)) = waiting.lock_in_use.as_mut().filter(|(id, _)| id == made)
            {
                *section_id = recorded.to_string();
            }
        }
    }

    /// Marks the execution over: later guard drops release nothing.
    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Forgets the critical section without releasing it (terminated or nondeterministic
    /// executions: the host releases their locks when the execution ends).
    pub(crate) fn forget_section(&mut self) {
        self.section = None;
    }

    /// Whether the code is inside a critical section (from its lock request on).
    pub(crate) fn in_critical_section(&self) -> bool {
        self.section.is_some()
    }
}

/// The request id a call or lock action carries, if it is one.
pub(crate) fn request_id_of(kind: &ActionKind) -> Option<&str> {
    match kind {
        ActionKind::CallEntity { request_id, .. } => Some(request_id),
        ActionKind::LockEntities {
            critical_section_id,
            ..
        } => Some(critical_section_id),
        _ => None,
    }
}

/// An entity answered a call (`EntityOperationCompleted`/`Failed`). Returns false when no call of
/// the code waits for `request_id`.
pub(crate) fn answer(
    state: &mut OrchestrationState,
    request_id: &str,
    outcome: Result<Value, FailureDetails>,
) -> bool {
    let Some(waiting) = state.entities.waiting.remove(request_id) else {
        return false;
    };
    if let (Some((section_id, entity)), Some(section)) =
        (waiting.lock_in_use, state.entities.section.as_mut())
    {
        if section.id == section_id && !section.available.contains(&entity) {
            section.available.push(entity);
        }
    }
    let arrival = state.next_arrival();
    resolve(&waiting.slot, outcome, arrival);
    true
}

/// Every lock of a critical section is held (`EntityLockGranted`). Returns false when no lock
/// request of the code waits for `critical_section_id`.
pub(crate) fn grant(state: &mut OrchestrationState, critical_section_id: &str) -> bool {
    let Some(waiting) = state.entities.waiting.remove(critical_section_id) else {
        return false;
    };
    if let Some(section) = state
        .entities
        .section
        .as_mut()
        .filter(|section| section.id == critical_section_id)
    {
        section.acquiring = false;
        section.available = section.locks.clone();
    }
    let arrival = state.next_arrival();
    resolve(
        &waiting.slot,
        Ok(Value::String(critical_section_id.to_string())),
        arrival,
    );
    true
}

/// Ends the critical section the code is in, if any: one `UnlockEntity` action per locked
/// entity, in lock order. Called when a [`CriticalSection`] is released or dropped, and by the
/// executor before the execution completes, so a leaked guard never leaves entities locked.
pub(crate) fn release_held_locks(state: &mut OrchestrationState) {
    let Some(section) = state.entities.section.take() else {
        return;
    };
    for entity in section.locks {
        // Not `take_call_sequence`: releasing must not trip the action limit (it runs in `Drop`
        // and at the end of the execution, where stopping the code is no longer possible).
        let id = state.take_sequence();
        state.unconfirmed.insert(
            id,
            Action {
                id,
                kind: ActionKind::UnlockEntity {
                    critical_section_id: section.id.clone(),
                    target_instance_id: entity.to_string(),
                    parent_instance_id: state.instance_id.clone(),
                },
            },
        );
    }
}

/// A locking-rules failure for a call that is never scheduled.
fn violation(message: impl Into<String>) -> FailureDetails {
    FailureDetails::new(LOCKING_RULES_VIOLATION, message).non_retriable()
}

/// A task that has already failed (nothing was scheduled for it).
fn failed_task(name: String, failure: FailureDetails) -> SlotRef {
    failed_without_call(TaskKind::Entity, &name, failure)
}

/// Why a call to `entity` breaks the locking rules, if it does; otherwise the locked entity the
/// call uses (taken out of the available ones until its answer arrives).
fn check_call(
    section: Option<&mut Section>,
    entity: &EntityId,
) -> Result<Option<(String, EntityId)>, String> {
    let Some(section) = section else {
        return Ok(None);
    };
    if let Some(position) = section.available.iter().position(|held| held == entity) {
        let entity = section.available.remove(position);
        return Ok(Some((section.id.clone(), entity)));
    }
    Err(if section.acquiring {
        format!(
            "cannot call {entity}: await the lock request (lock_entities) before calling an entity"
        )
    } else if section.locks.contains(entity) {
        format!(
            "cannot call {entity} from a critical section while a prior call to it is still pending"
        )
    } else {
        format!(
            "cannot call {entity} from a critical section that has not locked it (locked: {})",
            join(&section.locks)
        )
    })
}

fn join(entities: &[EntityId]) -> String {
    entities
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name an entity task goes by in errors: `@counter@a add`.
fn call_name(entity: &EntityId, operation: &str) -> String {
    format!("{entity} {operation}")
}

impl OrchestrationContext {
    /// Calls an operation on an entity and awaits its answer: the operation's result decoded as
    /// `T`, or a [`TaskError`] of kind [`TaskKind::Entity`] with the entity's failure (its state
    /// was rolled back to before the operation). The call is sent now; the entity runs it after
    /// the messages that reached it before.
    ///
    /// Inside a critical section only the locked entities can be called, one call at a time per
    /// entity; any other call fails at once with `LockingRulesViolation`.
    pub fn call_entity<T: DeserializeOwned>(
        &self,
        entity: &EntityId,
        operation: &str,
        input: impl Serialize,
    ) -> DurableTask<T> {
        let name = call_name(entity, operation);
        let input = match serde_json::to_value(input) {
            Ok(input) => input,
            Err(error) => {
                let failure = FailureDetails::new(
                    SERIALIZATION,
                    format!("the input did not serialize: {error}"),
                )
                .non_retriable();
                return DurableTask::from_slot(failed_task(name, failure));
            }
        };
        let request_id = self.new_guid().to_string();
        let state = self.state();
        let mut state = state.borrow_mut();
        let lock_in_use = match check_call(state.entities.section.as_mut(), entity) {
            Ok(lock_in_use) => lock_in_use,
            Err(message) => return DurableTask::from_slot(failed_task(name, violation(message))),
        };
        let id = state.take_call_sequence();
        let action = ActionKind::CallEntity {
            request_id: request_id.clone(),
            target_instance_id: entity.to_string(),
            operation: operation.to_string(),
            input,
            parent_instance_id: state.instance_id.clone(),
            parent_execution_id: state.execution_id.clone(),
        };
        state.unconfirmed.insert(id, Action { id, kind: action });
        let slot = new_slot(TaskLabel {
            kind: TaskKind::Entity,
            name,
            id,
        });
        state.entities.waiting.insert(
            request_id,
            Waiting {
                slot: Rc::clone(&slot),
                lock_in_use,
            },
        );
        DurableTask::from_slot(slot)
    }

    /// Signals an entity: a one-way operation, sent now; nothing comes back (a failure of the
    /// operation shows only in the entity's operation log).
    ///
    /// Signalling an entity the current critical section holds breaks the locking rules and
    /// fails the orchestration with `LockingRulesViolation`, as an input that does not serialize
    /// fails it with `SerializationError` (a signal has no task to fail).
    pub fn signal_entity(&self, entity: &EntityId, operation: &str, input: impl Serialize) {
        self.push_signal(entity, operation, input, None);
    }

    /// Signals an entity, delivered no earlier than `at` on the orchestration clock (a delayed
    /// signal waits in the host, not in this orchestration). Rules as for
    /// [`signal_entity`](Self::signal_entity); a time no history can hold fails the orchestration
    /// with `TimerOutOfRange`.
    pub fn signal_entity_at(
        &self,
        entity: &EntityId,
        operation: &str,
        input: impl Serialize,
        at: DateTime<Utc>,
    ) {
        self.push_signal(entity, operation, input, Some(at));
    }

    fn push_signal(
        &self,
        entity: &EntityId,
        operation: &str,
        input: impl Serialize,
        scheduled_time: Option<DateTime<Utc>>,
    ) {
        let input = serde_json::to_value(input);
        let request_id = self.new_guid().to_string();
        let state = self.state();
        let mut state = state.borrow_mut();
        let refused = match (&input, &state.entities.section, scheduled_time) {
            (Err(error), _, _) => Some(
                FailureDetails::new(
                    SERIALIZATION,
                    format!(
                        "the input of signal '{operation}' to {entity} did not serialize: {error}"
                    ),
                )
                .non_retriable(),
            ),
            (_, Some(section), _) if section.locks.contains(entity) => Some(violation(format!(
                "cannot signal {entity} from the critical section that has locked it (call it instead)"
            ))),
            (_, _, Some(at)) => crate::history::check_time(at).err().map(|error| {
                FailureDetails::new(
                    crate::failure::TIMER_OUT_OF_RANGE,
                    format!("signal_entity_at: {error}"),
                )
                .non_retriable()
            }),
            _ => None,
        };
        if let Some(failure) = refused {
            state.fatal.get_or_insert(failure);
            return;
        }
        let id = state.take_call_sequence();
        state.unconfirmed.insert(
            id,
            Action {
                id,
                kind: ActionKind::SignalEntity {
                    request_id,
                    target_instance_id: entity.to_string(),
                    operation: operation.to_string(),
                    input: input.unwrap_or_default(),
                    scheduled_time,
                },
            },
        );
    }

    /// Locks entities for a critical section: await the task for a [`CriticalSection`]; until it
    /// is released (or dropped, or the orchestration ends) no one else's operations run on
    /// those entities, and this orchestration may call them (one call at a time per entity).
    ///
    /// Locks are requested in sorted order, duplicates removed, so two critical sections never
    /// deadlock, and granted first come first served. An empty set is granted at once and locks
    /// nothing. Asking again while in a critical section fails with `LockingRulesViolation`.
    ///
    /// ```
    /// use durable_sdk::{EntityId, FailureDetails, OrchestrationContext};
    ///
    /// async fn transfer(ctx: OrchestrationContext, amount: i64) -> Result<(), FailureDetails> {
    ///     let (from, to) = (EntityId::new("Account", "a"), EntityId::new("Account", "b"));
    ///     let section = ctx.lock_entities([from.clone(), to.clone()]).await?;
    ///     ctx.call_entity::<i64>(&from, "withdraw", amount).await?;
    ///     ctx.call_entity::<i64>(&to, "deposit", amount).await?;
    ///     section.release();
    ///     Ok(())
    /// }
    /// ```
    pub fn lock_entities(&self, entities: impl IntoIterator<Item = EntityId>) -> EntityLockTask {
        let mut lock_set: Vec<EntityId> = entities.into_iter().collect();
        lock_set.sort();
        lock_set.dedup();
        let name = format!("lock {}", join(&lock_set));
        let task = |slot| EntityLockTask {
            inner: DurableTask::from_slot(slot),
            context: self.clone(),
            entities: lock_set.clone(),
        };
        if self.state().borrow().entities.in_critical_section() {
            let failure = violation("cannot lock entities from within a critical section");
            return task(failed_task(name, failure));
        }
        if lock_set.is_empty() {
            let slot = new_slot(TaskLabel {
                kind: TaskKind::Entity,
                name,
                id: -1,
            });
            resolve(&slot, Ok(Value::Null), 0);
            return task(slot);
        }
        let critical_section_id = self.new_guid().to_string();
        let state = self.state();
        let mut state = state.borrow_mut();
        let id = state.take_call_sequence();
        let action = ActionKind::LockEntities {
            critical_section_id: critical_section_id.clone(),
            lock_set: lock_set.iter().map(ToString::to_string).collect(),
            parent_instance_id: state.instance_id.clone(),
        };
        state.unconfirmed.insert(id, Action { id, kind: action });
        let slot = new_slot(TaskLabel {
            kind: TaskKind::Entity,
            name,
            id,
        });
        state.entities.section = Some(Section {
            id: critical_section_id.clone(),
            locks: lock_set.clone(),
            available: Vec::new(),
            acquiring: true,
        });
        state.entities.waiting.insert(
            critical_section_id,
            Waiting {
                slot: Rc::clone(&slot),
                lock_in_use: None,
            },
        );
        task(slot)
    }

    /// Whether the code is inside a critical section (from its `lock_entities` call until the
    /// section is released).
    pub fn is_in_critical_section(&self) -> bool {
        self.state().borrow().entities.in_critical_section()
    }

    /// The sub-orchestration rule of critical sections: none can be called while holding locks.
    pub(crate) fn check_no_critical_section(&self, name: &str) -> Result<(), FailureDetails> {
        if self.is_in_critical_section() {
            return Err(violation(format!(
                "cannot call sub-orchestration '{name}' from a critical section (release the locks first)"
            )));
        }
        Ok(())
    }
}

/// A pending `lock_entities` request: await it for the [`CriticalSection`].
#[must_use = "the locks are requested already; await the task to enter the critical section"]
pub struct EntityLockTask {
    inner: DurableTask<Value>,
    context: OrchestrationContext,
    entities: Vec<EntityId>,
}

impl std::fmt::Debug for EntityLockTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityLockTask")
            .field("entities", &self.entities)
            .field("task", &self.inner)
            .finish()
    }
}

impl EntityLockTask {
    /// A type-erased handle for [`when_any`](crate::when_any) (e.g. a lock against a timeout).
    pub fn handle(&self) -> TaskHandle {
        self.inner.handle()
    }

    /// The sequence id of the lock request (-1 when none was sent).
    pub fn task_id(&self) -> i32 {
        self.inner.task_id()
    }
}

impl Future for EntityLockTask {
    type Output = Result<CriticalSection, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        poll_raw(this.inner.slot(), cx).map(|outcome| {
            outcome.map(|granted| CriticalSection {
                context: this.context.clone(),
                // Null: an empty lock set, granted without a request.
                id: granted.as_str().map(str::to_string),
                entities: std::mem::take(&mut this.entities),
            })
        })
    }
}

/// The guard of a critical section: the locked entities stay locked for this orchestration until
/// it is [`release`](Self::release)d or dropped. Whatever happens to it, the locks are released
/// when the orchestration completes, fails or continues as new.
pub struct CriticalSection {
    context: OrchestrationContext,
    id: Option<String>,
    entities: Vec<EntityId>,
}

impl std::fmt::Debug for CriticalSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CriticalSection")
            .field("id", &self.id)
            .field("entities", &self.entities)
            .finish()
    }
}

impl CriticalSection {
    /// The critical section's id (`None` for an empty lock set).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The locked entities, sorted.
    pub fn entities(&self) -> &[EntityId] {
        &self.entities
    }

    /// Ends the critical section now: each entity is unlocked (one `EntityUnlockSent` each).
    pub fn release(self) {
        // Drop does the work, so release and drop cannot disagree.
    }
}

impl Drop for CriticalSection {
    fn drop(&mut self) {
        let Some(id) = &self.id else {
            return;
        };
        let state = self.context.state();
        // Busy only while the executor itself holds the state (it releases leftovers itself).
        let Ok(mut state) = state.try_borrow_mut() else {
            return;
        };
        let current = state.entities.section.as_ref().map(|section| &section.id);
        if state.entities.closed || current != Some(id) {
            return;
        }
        release_held_locks(&mut state);
    }
}
