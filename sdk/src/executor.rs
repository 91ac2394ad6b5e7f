//! The replay executor: (past events, new events) -> (actions, custom status), and the session
//! cache that keeps a running orchestration suspended between episodes (docs/semantics.md,
//! docs/architecture.md#the-path-of-one-episode).
//!
//! An episode applies events one at a time, in history order: `OrchestratorStarted` sets the
//! orchestrator's clock, call events (`TaskScheduled`, `TimerCreated`, the entity calls, ...)
//! confirm the pending action with the same sequence id or reveal nondeterminism, completion
//! events fill task slots (entity answers by request id, not sequence id: see `entity_calls`),
//! and after each event that can unblock the code, the code is polled until it blocks again.
//! When the execution ends, locks the code still holds are released first (one unlock action
//! per entity, before the completion), so a leaked critical section never outlives it.
//! Because the code is deterministic, continuing a cached session with the new events gives the
//! same actions as replaying the whole history; a cache miss simply replays.
//!
//! Owns `Session` and [`SessionCache`]. Knows nothing of the C ABI or of how the host stores
//! history.

use crate::context::{LocalTask, OrchestrationContext, OrchestrationState};
use crate::entity_calls;
use crate::failure::FailureDetails;
use crate::history::{EventKind, HistoryEvent, RuntimeStatus};
use crate::panic::catch_panic;
use crate::protocol::{
    Action, ActionKind, CallKind, DurableCall, NonDeterminism, OrchestratorRequest,
    OrchestratorResponse,
};
use crate::registry::Registry;
use crate::task::resolve;
use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use lru::LruCache;
use serde_json::Value;
use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// How many suspended orchestrations a [`SessionCache`] keeps by default.
pub const DEFAULT_SESSION_CAPACITY: usize = 10_000;

/// Running orchestrations kept between episodes, least recently used evicted first.
///
/// Keyed by (instance id, execution id); a session is used only if the request's `history_len`
/// equals the length the session expects, so any disagreement falls back to full replay.
pub struct SessionCache {
    sessions: LruCache<(String, String), Session>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("sessions", &self.sessions.len())
            .field("capacity", &self.sessions.cap())
            .finish()
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::new(DEFAULT_SESSION_CAPACITY)
    }
}

impl SessionCache {
    /// A cache that keeps at most `capacity` sessions (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            sessions: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// How many sessions are cached.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is cached.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Forgets every session (the next episode of each instance replays its full history).
    pub fn clear(&mut self) {
        self.sessions.clear();
    }
}

/// One execution's code and state, suspended between episodes.
struct Session {
    state: Rc<RefCell<OrchestrationState>>,
    root: Option<LocalBoxFuture<'static, Result<Value, FailureDetails>>>,
    spawned: FuturesUnordered<LocalTask>,
    /// The code produced its completion (or was terminated): later events change nothing.
    finished: bool,
    /// The code continued as new keeping unprocessed events: external events that arrive after
    /// that in the same episode go to the next execution too (as in DurableTask.Core).
    carrying_over_events: bool,
    suspended: bool,
    held_while_suspended: Vec<HistoryEvent>,
    nondeterminism: Option<NonDeterminism>,
    warnings: Vec<String>,
    /// The history length the next episode must report for this session to be reused.
    history_len: usize,
    /// A `FaultInjected` marker was seen: a following completion may be the host's own.
    host_may_complete: bool,
}

pub(crate) fn run_episode(
    registry: &Registry,
    cache: Option<&mut SessionCache>,
    request: OrchestratorRequest,
) -> OrchestratorResponse {
    let key = (request.instance_id.clone(), request.execution_id.clone());
    let full_replay = !request.past_events.is_empty() || request.history_len == 0;
    let mut cache = cache;
    let mut session = if full_replay {
        if let Some(cache) = cache.as_deref_mut() {
            cache.sessions.pop(&key);
        }
        let mut session = Session::new(&request);
        session.history_len = request.past_events.len();
        {
            // Set before replaying: it decides whether the past's log lines are reported.
            let mut state = session.state.borrow_mut();
            state.replaying = true;
            state.include_replay_logs = request.include_replay_logs;
            state.max_actions = request.max_actions;
        }
        for event in request.past_events {
            session.apply(registry, event);
        }
        session
    } else {
        match cache
            .as_deref_mut()
            .and_then(|cache| cache.sessions.pop(&key))
        {
            Some(session) if session.history_len == request.history_len => session,
            _ => {
                return OrchestratorResponse {
                    needs_history: true,
                    ..OrchestratorResponse::default()
                };
            }
        }
    };
    {
        let mut state = session.state.borrow_mut();
        state.replaying = false;
        state.include_replay_logs = request.include_replay_logs;
        state.max_actions = request.max_actions;
    }
    let new_event_count = request.new_events.len();
    for event in request.new_events {
        session.apply(registry, event);
    }
    let response = session.finish_episode(new_event_count);
    if let Some(cache) = cache {
        if !session.finished {
            cache.sessions.put(key, session);
        }
    }
    response
}

/// Events that wait while the instance is suspended; everything else (clock ticks, confirmations
/// of actions the code made before the suspension, resume, terminate) is applied at once.
fn waits_while_suspended(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::TaskCompleted { .. }
            | EventKind::TaskFailed { .. }
            | EventKind::SubOrchestrationInstanceCompleted { .. }
            | EventKind::SubOrchestrationInstanceFailed { .. }
            | EventKind::TimerFired { .. }
            | EventKind::EventRaised { .. }
            | EventKind::EntityOperationCompleted { .. }
            | EventKind::EntityOperationFailed { .. }
            | EventKind::EntityLockGranted { .. }
    )
}

impl Session {
    fn new(request: &OrchestratorRequest) -> Self {
        let state =
            OrchestrationState::new(request.instance_id.clone(), request.execution_id.clone());
        Self {
            state: Rc::new(RefCell::new(state)),
            root: None,
            spawned: FuturesUnordered::new(),
            finished: false,
            carrying_over_events: false,
            suspended: false,
            held_while_suspended: Vec::new(),
            nondeterminism: None,
            warnings: Vec::new(),
            history_len: 0,
            host_may_complete: false,
        }
    }

    fn apply(&mut self, registry: &Registry, event: HistoryEvent) {
        if self.nondeterminism.is_some() {
            return;
        }
        if self.suspended && waits_while_suspended(&event.kind) {
            self.held_while_suspended.push(event);
            return;
        }
        let HistoryEvent {
            event_id,
            timestamp,
            kind,
        } = event;
        match kind {
            EventKind::OrchestratorStarted => self.state.borrow_mut().now = timestamp,
            EventKind::ExecutionStarted {
                name,
                input,
                parent,
                ..
            } => self.start(registry, name, input, parent),
            EventKind::TaskScheduled { .. }
            | EventKind::TimerCreated { .. }
            | EventKind::SubOrchestrationInstanceCreated { .. }
            | EventKind::EventSent { .. }
            | EventKind::EntityOperationSignaled { .. }
            | EventKind::EntityUnlockSent { .. } => {
                if let Some(call) = DurableCall::from_event(&kind) {
                    self.confirm(event_id, call);
                }
            }
            EventKind::EntityOperationCalled { ref request_id, .. }
            | EventKind::EntityLockRequested {
                critical_section_id: ref request_id,
                ..
            } => {
                if let Some(call) = DurableCall::from_event(&kind) {
                    self.confirm_entity_request(event_id, call, request_id);
                }
            }
            EventKind::TaskCompleted {
                task_scheduled_id,
                result,
            }
            | EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id,
                result,
            } => self.complete_task(task_scheduled_id, Ok(result), "completion"),
            EventKind::TaskFailed {
                task_scheduled_id,
                failure,
            }
            | EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id,
                failure,
            } => self.complete_task(task_scheduled_id, Err(failure), "failure"),
            EventKind::TimerFired { timer_id, .. } => {
                self.complete_task(timer_id, Ok(Value::Null), "TimerFired")
            }
            EventKind::EventRaised { .. } => {
                let event = HistoryEvent {
                    event_id,
                    timestamp,
                    kind,
                };
                if !self.finished {
                    self.state.borrow_mut().deliver_event(event);
                    self.run_code();
                } else if self.carrying_over_events {
                    self.carry_over(event);
                }
            }
            EventKind::ExecutionSuspended { .. } => self.suspended = true,
            EventKind::ExecutionResumed { .. } => {
                self.suspended = false;
                for held in std::mem::take(&mut self.held_while_suspended) {
                    self.apply(registry, held);
                }
            }
            EventKind::ExecutionTerminated { reason, .. } => {
                if !self.finished {
                    self.state.borrow_mut().unconfirmed.clear();
                    self.finish(ActionKind::CompleteOrchestration {
                        status: RuntimeStatus::Terminated,
                        result: reason,
                        failure: None,
                        carryover_events: Vec::new(),
                    });
                }
            }
            EventKind::ContinueAsNew { .. } => {
                self.confirm_completion(event_id, RuntimeStatus::ContinuedAsNew)
            }
            EventKind::ExecutionCompleted { status, .. } => {
                self.confirm_completion(event_id, status)
            }
            EventKind::OrchestratorCompleted => self.check_episode_end(),
            // The host rewrote history before delivering it (docs/semantics.md#rewind): what
            // failed is gone from it and runs again; the event itself asks nothing of the code.
            EventKind::ExecutionRewound { .. } => {}
            // A marker for people and tools (docs/semantics.md#faults, **Ours**); the code never
            // sees it. A completion right after one was made by the host (an injected failure), not
            // the code.
            EventKind::FaultInjected { .. } => self.host_may_complete = true,
            EventKind::EntityOperationCompleted { request_id, output } => {
                self.answer_entity(&request_id, Ok(output), "completion")
            }
            EventKind::EntityOperationFailed {
                request_id,
                failure,
            } => self.answer_entity(&request_id, Err(failure), "failure"),
            EventKind::EntityLockGranted {
                critical_section_id,
            } => self.grant_lock(&critical_section_id),
        }
    }

    fn start(
        &mut self,
        registry: &Registry,
        name: String,
        input: Value,
        parent: Option<crate::history::ParentInstance>,
    ) {
        if self.root.is_some() || self.finished {
            self.warnings
                .push("a second ExecutionStarted in one execution was ignored".to_string());
            return;
        }
        {
            let mut state = self.state.borrow_mut();
            state.name = name.clone();
            state.parent = parent;
        }
        let Some(orchestrator) = registry.find_orchestrator(&name) else {
            let known = registry.orchestrator_names().join(", ");
            self.finish_with(Err(FailureDetails::new(
                "OrchestratorNotFound",
                format!("no orchestrator named '{name}' is registered (known: {known})"),
            )
            .non_retriable()));
            return;
        };
        let context = OrchestrationContext::new(Rc::clone(&self.state));
        match catch_panic(|| orchestrator(context, input)) {
            Ok(root) => {
                self.root = Some(root);
                self.run_code();
            }
            Err(panic) => self.finish_with(Err(panic)),
        }
    }

    /// Adds an external event to the continue-as-new completion still waiting to be recorded.
    fn carry_over(&mut self, event: HistoryEvent) {
        let mut state = self.state.borrow_mut();
        let completion = state
            .unconfirmed
            .values_mut()
            .find_map(|action| match &mut action.kind {
                ActionKind::CompleteOrchestration {
                    status: RuntimeStatus::ContinuedAsNew,
                    carryover_events,
                    ..
                } => Some(carryover_events),
                _ => None,
            });
        if let Some(carryover_events) = completion {
            carryover_events.push(event);
        }
    }

    /// A call event in history: the code must have made the same call under the same id.
    fn confirm(&mut self, sequence_id: i32, recorded: DurableCall) {
        if self.finished && self.state.borrow().unconfirmed.is_empty() {
            return;
        }
        let made = self.state.borrow_mut().unconfirmed.remove(&sequence_id);
        match made {
            Some(action) if action.kind.call() == recorded => {}
            Some(action) => self.fail_nondeterministic(NonDeterminism {
                sequence_id,
                expected: Some(recorded),
                actual: Some(action.kind.call()),
            }),
            None => self.fail_nondeterministic(NonDeterminism {
                sequence_id,
                expected: Some(recorded),
                actual: None,
            }),
        }
    }

    /// A recorded entity call or lock request: confirmed like any call, and then answers are
    /// expected under the request id history recorded (the one they will carry).
    fn confirm_entity_request(
        &mut self,
        sequence_id: i32,
        recorded: DurableCall,
        request_id: &str,
    ) {
        let made = {
            let state = self.state.borrow();
            state
                .unconfirmed
                .get(&sequence_id)
                .and_then(|action| entity_calls::request_id_of(&action.kind))
                .map(str::to_string)
        };
        self.confirm(sequence_id, recorded);
        if let (Some(made), None) = (made, &self.nondeterminism) {
            self.state.borrow_mut().entities.rekey(&made, request_id);
        }
    }

    /// An entity answered a call of this orchestration (matched by request id).
    fn answer_entity(
        &mut self,
        request_id: &str,
        outcome: Result<Value, FailureDetails>,
        what: &str,
    ) {
        if self.finished {
            return;
        }
        if entity_calls::answer(&mut self.state.borrow_mut(), request_id, outcome) {
            self.run_code();
        } else {
            self.warnings.push(format!(
                "an entity {what} for request {request_id} matched no pending call_entity of the code and was ignored"
            ));
        }
    }

    /// The locks of a critical section are granted (matched by critical section id).
    fn grant_lock(&mut self, critical_section_id: &str) {
        if self.finished {
            return;
        }
        if entity_calls::grant(&mut self.state.borrow_mut(), critical_section_id) {
            self.run_code();
        } else {
            self.warnings.push(format!(
                "an entity lock grant for critical section {critical_section_id} matched no pending lock_entities of the code and was ignored"
            ));
        }
    }

    /// A completion in history: the code must have completed the same way (status).
    fn confirm_completion(&mut self, event_id: i32, recorded: RuntimeStatus) {
        let mut state = self.state.borrow_mut();
        let completion = state
            .unconfirmed
            .iter()
            .find_map(|(id, action)| match action.kind {
                ActionKind::CompleteOrchestration { status, .. } => Some((*id, status)),
                _ => None,
            });
        let expected = DurableCall::new(CallKind::Complete, recorded.as_str());
        match completion {
            Some((id, status)) if status == recorded => {
                state.unconfirmed.remove(&id);
            }
            Some((id, status)) => {
                drop(state);
                self.fail_nondeterministic(NonDeterminism {
                    sequence_id: id,
                    expected: Some(expected),
                    actual: Some(DurableCall::new(CallKind::Complete, status.as_str())),
                });
            }
            None if self.finished => {}
            None if self.host_may_complete => {
                // The host ended the execution without the code (an injected failure at start):
                // nothing the code did in that episode was recorded, and nothing more runs.
                state.unconfirmed.clear();
                state.entities.forget_section();
                state.entities.close();
                drop(state);
                self.finished = true;
                let root = self.root.take();
                let spawned = std::mem::take(&mut self.spawned);
                drop((root, spawned));
            }
            None => {
                drop(state);
                self.fail_nondeterministic(NonDeterminism {
                    sequence_id: event_id,
                    expected: Some(expected),
                    actual: None,
                });
            }
        }
    }

    /// `OrchestratorCompleted` in past history: the host recorded every action of that episode
    /// before it, so an action still unconfirmed is one history never had.
    fn check_episode_end(&mut self) {
        let extra = self
            .state
            .borrow()
            .unconfirmed
            .values()
            .next()
            .map(|action| (action.id, action.kind.call()));
        if let Some((sequence_id, call)) = extra {
            self.fail_nondeterministic(NonDeterminism {
                sequence_id,
                expected: None,
                actual: Some(call),
            });
        }
    }

    fn complete_task(&mut self, task_id: i32, outcome: Result<Value, FailureDetails>, what: &str) {
        if self.finished {
            return;
        }
        let slot = self.state.borrow_mut().open_tasks.remove(&task_id);
        match slot {
            Some(slot) => {
                let arrival = self.state.borrow_mut().next_arrival();
                resolve(&slot, outcome, arrival);
                self.run_code();
            }
            None => self.warnings.push(format!(
                "a {what} for task #{task_id} matched no pending task of the code and was ignored"
            )),
        }
    }

    /// Polls retry loops and the orchestrator until nothing more can run without new events.
    fn run_code(&mut self) {
        if self.finished {
            return;
        }
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            let newly_spawned = std::mem::take(&mut self.state.borrow_mut().spawn_queue);
            self.spawned.extend(newly_spawned);
            let spawned = &mut self.spawned;
            let root = &mut self.root;
            let polled = catch_panic(|| {
                while let Poll::Ready(Some(())) = spawned.poll_next_unpin(&mut cx) {}
                root.as_mut().map(|root| root.as_mut().poll(&mut cx))
            });
            if polled.is_ok() {
                let fatal = self.state.borrow_mut().fatal.take();
                if let Some(failure) = fatal {
                    return self.finish_with(Err(failure));
                }
            }
            match polled {
                Err(panic) => return self.finish_with(Err(panic)),
                Ok(Some(Poll::Ready(result))) => return self.finish_with(result),
                Ok(_) => {}
            }
            if self.state.borrow().spawn_queue.is_empty() {
                return;
            }
        }
    }

    fn finish_with(&mut self, result: Result<Value, FailureDetails>) {
        if let Err(failure) = &result {
            if failure.error_type == crate::failure::ACTION_LIMIT {
                // The calls made up to the limit are not recorded: the failure is the episode's
                // only action, so the host schedules none of them.
                self.state.borrow_mut().unconfirmed.clear();
            }
        }
        let continue_as_new = self.state.borrow_mut().continue_as_new.take();
        let completion = match (result, continue_as_new) {
            (Err(failure), _) => ActionKind::CompleteOrchestration {
                status: RuntimeStatus::Failed,
                result: Value::Null,
                failure: Some(failure),
                carryover_events: Vec::new(),
            },
            (Ok(_), Some(next)) => {
                self.carrying_over_events = next.keep_unprocessed_events;
                let carryover_events = if next.keep_unprocessed_events {
                    self.state.borrow_mut().buffered_events.drain(..).collect()
                } else {
                    Vec::new()
                };
                ActionKind::CompleteOrchestration {
                    status: RuntimeStatus::ContinuedAsNew,
                    result: next.input,
                    failure: None,
                    carryover_events,
                }
            }
            (Ok(output), None) => ActionKind::CompleteOrchestration {
                status: RuntimeStatus::Completed,
                result: output,
                failure: None,
                carryover_events: Vec::new(),
            },
        };
        self.finish(completion);
    }

    fn finish(&mut self, completion: ActionKind) {
        self.finished = true;
        {
            // Locks still held are released before the completion, so a critical section whose
            // guard was leaked (or never awaited) does not outlive the execution. Not for a
            // termination or a nondeterministic or action-limit failure: nothing of what the code
            // did is recorded there, and the host releases the locks of an ended execution.
            let mut state = self.state.borrow_mut();
            let recorded = self.nondeterminism.is_none()
                && match &completion {
                    ActionKind::CompleteOrchestration {
                        status: RuntimeStatus::Terminated,
                        ..
                    } => false,
                    ActionKind::CompleteOrchestration {
                        failure: Some(failure),
                        ..
                    } => failure.error_type != crate::failure::ACTION_LIMIT,
                    _ => true,
                };
            if recorded {
                entity_calls::release_held_locks(&mut state);
            } else {
                state.entities.forget_section();
            }
            state.entities.close();
        }
        // Dropped outside any borrow of the state: the futures hold clones of it.
        let root = self.root.take();
        let spawned = std::mem::take(&mut self.spawned);
        drop((root, spawned));
        let mut state = self.state.borrow_mut();
        let id = state.take_sequence();
        state.unconfirmed.insert(
            id,
            Action {
                id,
                kind: completion,
            },
        );
    }

    fn fail_nondeterministic(&mut self, diff: NonDeterminism) {
        let failure = diff.to_failure_details();
        self.nondeterminism = Some(diff);
        self.finished = false;
        self.state.borrow_mut().unconfirmed.clear();
        self.finish_with(Err(failure));
    }

    /// Hands out the episode's actions; the host records them, so they count as confirmed.
    fn finish_episode(&mut self, new_event_count: usize) -> OrchestratorResponse {
        let mut state = self.state.borrow_mut();
        let actions: Vec<Action> = std::mem::take(&mut state.unconfirmed)
            .into_values()
            .collect();
        self.history_len += new_event_count + actions.len() + 1;
        OrchestratorResponse {
            needs_history: false,
            actions,
            custom_status: state.custom_status.clone(),
            logs: std::mem::take(&mut state.logs),
            nondeterminism: self.nondeterminism.clone(),
            warnings: std::mem::take(&mut self.warnings),
            awaited_events: state.awaited_events(),
            rewound_history: None,
        }
    }
}
