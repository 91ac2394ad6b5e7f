//! A small simulated host: runs episodes the way durable-emu does (docs/semantics.md#episodes), in
//! virtual time and in an order chosen by the test, and keeps every execution's history and the
//! answer of every episode so a test can replay any prefix.
//!
//! It owns instances, their inboxes and the outstanding work (activities to run, timers to fire,
//! scripted input to deliver), and entities (state, message queue, lock holder; the rules of
//! docs/semantics.md#entities: one operation at a time in arrival order, locks granted in
//! lock-set order, first come first served, released when the holder unlocks or ends). It knows
//! nothing of the orchestrations and entities it runs: activities go through
//! `Registry::run_activity`, entity operations through `Registry::run_entity_batch` (one
//! operation per batch, so the test's choices can interleave them with everything else),
//! episodes through `Registry::orchestrate` with one session cache, so the live run itself
//! continues cached sessions (and falls back to full history when the cache answers
//! `needs_history`).

use super::{base_time, comparable, render_actions, render_events};
use chrono::{DateTime, Utc};
use durable_sdk::protocol::{
    ActionKind, ActivityOutcome, ActivityRequest, EntityAction, EntityBatchRequest, EntityCaller,
    EntityOperationRequest, EntityOperationResult, OrchestratorRequest, OrchestratorResponse,
};
use durable_sdk::{EventKind, HistoryEvent, ParentInstance, Registry, RuntimeStatus, SessionCache};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// Input from outside the instance, delivered to the root instance in script order.
#[derive(Debug, Clone, PartialEq)]
pub enum Scripted {
    /// Raise an external event.
    Raise { name: String, input: Value },
    /// Suspend the instance.
    Suspend,
    /// Resume it.
    Resume,
    /// Terminate it.
    Terminate,
}

/// One episode as the live host ran it.
#[derive(Debug, Clone)]
pub struct RecordedEpisode {
    /// Index in the execution's history of the episode's `OrchestratorStarted`.
    pub start: usize,
    /// How many new events the episode had.
    pub new_len: usize,
    /// What the plugin answered.
    pub response: OrchestratorResponse,
}

/// One execution of an instance: its history and its episodes.
#[derive(Debug, Clone)]
pub struct Execution {
    pub execution_id: String,
    pub history: Vec<HistoryEvent>,
    pub episodes: Vec<RecordedEpisode>,
}

/// An orchestration instance as the host sees it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub instance_id: String,
    pub name: String,
    pub parent: Option<ParentInstance>,
    pub status: RuntimeStatus,
    /// The final output or failure reason (JSON), once terminal.
    pub output: Value,
    /// Previous executions (continue-as-new) followed by the current one.
    pub executions: Vec<Execution>,
    inbox: Vec<HistoryEvent>,
}

impl Instance {
    fn current(&self) -> &Execution {
        self.executions.last().unwrap()
    }

    fn current_mut(&mut self) -> &mut Execution {
        self.executions.last_mut().unwrap()
    }

    fn is_running(&self) -> bool {
        !self.status.is_terminal()
    }
}

#[derive(Debug, Clone)]
enum Work {
    Activity {
        instance_id: String,
        execution_id: String,
        task_id: i32,
        name: String,
        input: Value,
    },
    Timer {
        instance_id: String,
        execution_id: String,
        timer_id: i32,
        fire_at: DateTime<Utc>,
    },
    /// A signal delivered no earlier than `fire_at`.
    DelayedSignal {
        target: String,
        message: EntityMessage,
        fire_at: DateTime<Utc>,
    },
}

/// A message in an entity's queue.
#[derive(Debug, Clone)]
pub enum EntityMessage {
    /// A signal (no caller) or a call.
    Operation {
        request: EntityOperationRequest,
        /// The orchestration that sent it, if one did (its messages pass a lock it holds).
        sender: Option<String>,
    },
    /// A lock request on its way through its lock set; `position` is this entity's index.
    Lock {
        critical_section_id: String,
        lock_set: Vec<String>,
        position: usize,
        holder: String,
        holder_execution: String,
    },
    /// The end of a critical section, for this entity.
    Unlock {
        critical_section_id: String,
        holder: String,
    },
}

impl EntityMessage {
    fn sender(&self) -> Option<&str> {
        match self {
            EntityMessage::Operation { sender, .. } => sender.as_deref(),
            EntityMessage::Lock { holder, .. } | EntityMessage::Unlock { holder, .. } => {
                Some(holder)
            }
        }
    }
}

/// An entity as the host keeps it.
#[derive(Debug, Clone, Default)]
pub struct EntityRecord {
    /// The state (`None`: none).
    pub state: Option<Value>,
    /// Messages not run yet, in arrival order.
    pub queue: VecDeque<EntityMessage>,
    /// The orchestration and critical section holding the lock.
    pub locked_by: Option<(String, String)>,
    /// Every operation run: (operation, outcome).
    pub log: Vec<(String, EntityOperationResult)>,
}

impl EntityRecord {
    /// The message to run next: the oldest one, or while locked the oldest of the holder's.
    fn runnable(&self) -> Option<usize> {
        match &self.locked_by {
            None => (!self.queue.is_empty()).then_some(0),
            Some((holder, _)) => self
                .queue
                .iter()
                .position(|message| message.sender() == Some(holder.as_str())),
        }
    }
}

/// What the host can do next; the test's choices pick one.
#[derive(Debug, Clone)]
enum Step {
    RunEpisode(String),
    Work(usize),
    Script,
    RunEntity(String),
}

/// The simulated host.
pub struct Host<'r> {
    registry: &'r Registry,
    cache: SessionCache,
    clock: DateTime<Utc>,
    pub instances: BTreeMap<String, Instance>,
    /// Instances whose id a later sub-orchestration reused (kept for checking their histories).
    pub replaced: Vec<Instance>,
    work: Vec<Work>,
    script: VecDeque<Scripted>,
    root: String,
    /// How often the live run had to resend a full history (session evicted).
    pub history_resends: usize,
    /// Episodes run in all.
    pub episodes_run: usize,
    /// Entities by id.
    pub entities: BTreeMap<String, EntityRecord>,
}

impl std::fmt::Debug for Host<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("clock", &self.clock)
            .field("instances", &self.instances.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<'r> Host<'r> {
    /// A host whose session cache keeps `cache_capacity` sessions, starting `name(input)` as
    /// instance `root_id` at `@0`.
    pub fn new(
        registry: &'r Registry,
        cache_capacity: usize,
        root_id: &str,
        name: &str,
        input: Value,
        script: Vec<Scripted>,
    ) -> Self {
        let mut host = Self {
            registry,
            cache: SessionCache::new(cache_capacity),
            clock: base_time(),
            instances: BTreeMap::new(),
            replaced: Vec::new(),
            work: Vec::new(),
            script: script.into(),
            root: root_id.to_string(),
            history_resends: 0,
            episodes_run: 0,
            entities: BTreeMap::new(),
        };
        host.start_instance(root_id, name, input, None);
        host
    }

    /// The root instance.
    pub fn root(&self) -> &Instance {
        &self.instances[&self.root]
    }

    fn start_instance(
        &mut self,
        instance_id: &str,
        name: &str,
        input: Value,
        parent: Option<ParentInstance>,
    ) {
        let execution_id = format!("{instance_id}-e1");
        let started = self.event(
            -1,
            EventKind::ExecutionStarted {
                name: name.to_string(),
                version: None,
                input,
                instance_id: instance_id.to_string(),
                execution_id: execution_id.clone(),
                parent: parent.clone(),
                scheduled_start: None,
            },
        );
        // A sub-orchestration id may be reused by a parent that continued as new: the host starts
        // a fresh instance under that id, as durable-emu does for a terminal instance.
        let previous = self.instances.insert(
            instance_id.to_string(),
            Instance {
                instance_id: instance_id.to_string(),
                name: name.to_string(),
                parent,
                status: RuntimeStatus::Running,
                output: Value::Null,
                executions: vec![Execution {
                    execution_id,
                    history: Vec::new(),
                    episodes: Vec::new(),
                }],
                inbox: vec![started],
            },
        );
        self.replaced.extend(previous);
    }

    /// Every instance the host ran, including replaced ones.
    pub fn all_instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values().chain(&self.replaced)
    }

    fn event(&self, event_id: i32, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            event_id,
            timestamp: self.clock,
            kind,
        }
    }

    /// Delivers an event to the current execution of a running instance (dropped otherwise, as a
    /// completion for a finished execution is).
    fn deliver(&mut self, instance_id: &str, execution_id: Option<&str>, kind: EventKind) {
        let event = self.event(-1, kind);
        if let Some(instance) = self.instances.get_mut(instance_id) {
            let current = instance.current().execution_id.as_str();
            if instance.is_running() && execution_id.is_none_or(|id| id == current) {
                instance.inbox.push(event);
            }
        }
    }

    fn steps(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = self
            .instances
            .values()
            .filter(|instance| instance.is_running() && !instance.inbox.is_empty())
            .map(|instance| Step::RunEpisode(instance.instance_id.clone()))
            .collect();
        let mut earliest_timer: Option<(DateTime<Utc>, usize)> = None;
        for (index, work) in self.work.iter().enumerate() {
            match work {
                Work::Activity { .. } => steps.push(Step::Work(index)),
                // Timers and delayed signals come due in virtual-time order: only the earliest
                // one is due next.
                Work::Timer { fire_at, .. } | Work::DelayedSignal { fire_at, .. } => {
                    if earliest_timer.is_none_or(|(earliest, _)| *fire_at < earliest) {
                        earliest_timer = Some((*fire_at, index));
                    }
                }
            }
        }
        if let Some((_, index)) = earliest_timer {
            steps.push(Step::Work(index));
        }
        if !self.script.is_empty() && self.root().is_running() {
            steps.push(Step::Script);
        }
        steps.extend(
            self.entities
                .iter()
                .filter(|(_, entity)| entity.runnable().is_some())
                .map(|(id, _)| Step::RunEntity(id.clone())),
        );
        steps
    }

    /// Runs until nothing is left to do (or `max_steps` steps), taking each next step by the
    /// choices in turn (the first possible step once they run out).
    pub fn run(&mut self, choices: &[u8], max_steps: usize) {
        for step_number in 0..max_steps {
            let steps = self.steps();
            if steps.is_empty() {
                return;
            }
            let choice = choices.get(step_number).copied().unwrap_or(0) as usize;
            match steps[choice % steps.len()].clone() {
                Step::RunEpisode(instance_id) => self.run_episode(&instance_id),
                Step::RunEntity(entity_id) => self.run_entity(&entity_id),
                Step::Work(index) => {
                    let work = self.work.remove(index);
                    self.do_work(work);
                }
                Step::Script => {
                    let Some(scripted) = self.script.pop_front() else {
                        continue;
                    };
                    self.clock += chrono::Duration::minutes(1);
                    let kind = match scripted {
                        Scripted::Raise { name, input } => EventKind::EventRaised { name, input },
                        Scripted::Suspend => EventKind::ExecutionSuspended { reason: None },
                        Scripted::Resume => EventKind::ExecutionResumed { reason: None },
                        Scripted::Terminate => EventKind::ExecutionTerminated {
                            reason: Value::String("terminated by the script".to_string()),
                            recurse: false,
                        },
                    };
                    let root = self.root.clone();
                    self.deliver(&root, None, kind);
                }
            }
        }
    }

    fn do_work(&mut self, work: Work) {
        match work {
            Work::Activity {
                instance_id,
                execution_id,
                task_id,
                name,
                input,
            } => {
                self.clock += chrono::Duration::minutes(1);
                let outcome = self.registry.run_activity(ActivityRequest {
                    name,
                    input,
                    instance_id: instance_id.clone(),
                    task_id,
                    attempt: 1,
                });
                let kind = match outcome {
                    ActivityOutcome::Completed { result } => EventKind::TaskCompleted {
                        task_scheduled_id: task_id,
                        result,
                    },
                    ActivityOutcome::Failed { failure } => EventKind::TaskFailed {
                        task_scheduled_id: task_id,
                        failure,
                    },
                };
                self.deliver(&instance_id, Some(&execution_id), kind);
            }
            Work::Timer {
                instance_id,
                execution_id,
                timer_id,
                fire_at,
            } => {
                self.clock = self.clock.max(fire_at);
                self.deliver(
                    &instance_id,
                    Some(&execution_id),
                    EventKind::TimerFired { fire_at, timer_id },
                );
            }
            Work::DelayedSignal {
                target,
                message,
                fire_at,
            } => {
                self.clock = self.clock.max(fire_at);
                self.enqueue(&target, message);
            }
        }
    }

    fn enqueue(&mut self, target: &str, message: EntityMessage) {
        self.entities
            .entry(target.to_string())
            .or_default()
            .queue
            .push_back(message);
    }

    /// Sends a signal now or, when `scheduled_time` is later than the clock, at that time.
    fn signal(
        &mut self,
        target: String,
        request: EntityOperationRequest,
        sender: Option<String>,
        scheduled_time: Option<DateTime<Utc>>,
    ) {
        let message = EntityMessage::Operation { request, sender };
        match scheduled_time {
            Some(fire_at) if fire_at > self.clock => self.work.push(Work::DelayedSignal {
                target,
                message,
                fire_at,
            }),
            _ => self.enqueue(&target, message),
        }
    }

    /// Signals an entity from outside (a client), as `durable-emu entity signal` does.
    pub fn signal_entity(&mut self, target: &str, operation: &str, input: Value) {
        let request_id = format!("client-{}", self.episodes_run + self.entities.len());
        let request = EntityOperationRequest {
            request_id,
            operation: operation.to_string(),
            input,
            caller: None,
        };
        self.signal(target.to_string(), request, None, None);
    }

    /// Runs the next runnable message of one entity.
    fn run_entity(&mut self, entity_id: &str) {
        self.clock += chrono::Duration::seconds(1);
        let Some(entity) = self.entities.get_mut(entity_id) else {
            return;
        };
        let Some(message) = entity
            .runnable()
            .and_then(|index| entity.queue.remove(index))
        else {
            return;
        };
        match message {
            EntityMessage::Operation { request, .. } => {
                let result = self.registry.run_entity_batch(EntityBatchRequest {
                    instance_id: entity_id.to_string(),
                    state: entity.state.clone(),
                    operations: vec![request.clone()],
                });
                assert_eq!(
                    result.failure, None,
                    "a batch of the SDK never fails as a whole"
                );
                assert_eq!(result.results.len(), 1, "one result per operation");
                entity.state = result.state;
                let outcome = result.results[0].clone();
                entity
                    .log
                    .push((request.operation.clone(), outcome.clone()));
                if let Some(EntityCaller {
                    instance_id,
                    execution_id,
                }) = request.caller
                {
                    let request_id = request.request_id.clone();
                    let kind = match outcome {
                        EntityOperationResult::Completed { result } => {
                            EventKind::EntityOperationCompleted {
                                request_id,
                                output: result,
                            }
                        }
                        EntityOperationResult::Failed { failure } => {
                            EventKind::EntityOperationFailed {
                                request_id,
                                failure,
                            }
                        }
                    };
                    self.deliver(&instance_id, Some(&execution_id), kind);
                }
                for (index, action) in result.actions.into_iter().enumerate() {
                    match action {
                        EntityAction::SignalEntity {
                            instance_id,
                            operation,
                            input,
                            scheduled_time,
                        } => {
                            let request = EntityOperationRequest {
                                request_id: format!("{}:{index}", request.request_id),
                                operation,
                                input,
                                caller: None,
                            };
                            self.signal(instance_id, request, None, scheduled_time);
                        }
                        EntityAction::StartOrchestration {
                            name,
                            instance_id,
                            input,
                            ..
                        } => {
                            let instance_id = instance_id
                                .unwrap_or_else(|| format!("{}:{index}", request.request_id));
                            self.start_instance(&instance_id, &name, input, None);
                        }
                    }
                }
            }
            EntityMessage::Lock {
                critical_section_id,
                lock_set,
                position,
                holder,
                holder_execution,
            } => {
                entity.locked_by = Some((holder.clone(), critical_section_id.clone()));
                match lock_set.get(position + 1).cloned() {
                    Some(next) => self.enqueue(
                        &next,
                        EntityMessage::Lock {
                            critical_section_id,
                            lock_set,
                            position: position + 1,
                            holder,
                            holder_execution,
                        },
                    ),
                    None => self.deliver(
                        &holder,
                        Some(&holder_execution),
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
                if entity.locked_by == Some((holder, critical_section_id)) {
                    entity.locked_by = None;
                }
            }
        }
    }

    /// An orchestration ended: the locks it holds are released and its messages still queued on
    /// the way through a lock set are dropped (docs/semantics.md#entities, rule 5).
    fn release_locks_of(&mut self, instance_id: &str) {
        for entity in self.entities.values_mut() {
            if entity
                .locked_by
                .as_ref()
                .is_some_and(|(holder, _)| holder == instance_id)
            {
                entity.locked_by = None;
            }
            entity.queue.retain(|message| {
                !matches!(message, EntityMessage::Lock { holder, .. } if holder == instance_id)
            });
        }
    }

    fn run_episode(&mut self, instance_id: &str) {
        let clock = self.clock;
        let instance = self.instances.get_mut(instance_id).unwrap();
        let mut new_events = vec![HistoryEvent {
            event_id: -1,
            timestamp: clock,
            kind: EventKind::OrchestratorStarted,
        }];
        new_events.append(&mut instance.inbox);
        let execution = instance.current_mut();
        let mut request = OrchestratorRequest {
            instance_id: instance_id.to_string(),
            execution_id: execution.execution_id.clone(),
            history_len: execution.history.len(),
            past_events: Vec::new(),
            new_events: new_events.clone(),
            include_replay_logs: false,
            max_actions: None,
        };
        let mut response = self.registry.orchestrate(&mut self.cache, request.clone());
        if response.needs_history {
            self.history_resends += 1;
            request.past_events = execution.history.clone();
            response = self.registry.orchestrate(&mut self.cache, request);
        }
        assert!(
            !response.needs_history,
            "a request with the full history needs no history"
        );
        assert_eq!(
            response.nondeterminism, None,
            "a live run is deterministic by construction"
        );
        self.episodes_run += 1;
        let start = execution.history.len();
        let new_len = new_events.len();
        execution.history.extend(new_events);
        for action in &response.actions {
            execution.history.push(HistoryEvent {
                event_id: action.id,
                timestamp: clock,
                kind: action.kind.to_event_kind(),
            });
        }
        execution.history.push(HistoryEvent {
            event_id: -1,
            timestamp: clock,
            kind: EventKind::OrchestratorCompleted,
        });
        execution.episodes.push(RecordedEpisode {
            start,
            new_len,
            response: response.clone(),
        });
        let execution_id = execution.execution_id.clone();
        for action in response.actions {
            self.carry_out(instance_id, &execution_id, action.id, action.kind);
        }
    }

    fn carry_out(&mut self, instance_id: &str, execution_id: &str, id: i32, action: ActionKind) {
        match action {
            ActionKind::SignalEntity {
                request_id,
                target_instance_id,
                operation,
                input,
                scheduled_time,
            } => {
                let request = EntityOperationRequest {
                    request_id,
                    operation,
                    input,
                    caller: None,
                };
                let sender = Some(instance_id.to_string());
                self.signal(target_instance_id, request, sender, scheduled_time);
            }
            ActionKind::CallEntity {
                request_id,
                target_instance_id,
                operation,
                input,
                parent_instance_id,
                parent_execution_id,
            } => {
                let request = EntityOperationRequest {
                    request_id,
                    operation,
                    input,
                    caller: Some(EntityCaller {
                        instance_id: parent_instance_id.clone(),
                        execution_id: parent_execution_id,
                    }),
                };
                let message = EntityMessage::Operation {
                    request,
                    sender: Some(parent_instance_id),
                };
                self.enqueue(&target_instance_id, message);
            }
            ActionKind::LockEntities {
                critical_section_id,
                lock_set,
                parent_instance_id,
            } => {
                let first = lock_set[0].clone();
                let message = EntityMessage::Lock {
                    critical_section_id,
                    lock_set,
                    position: 0,
                    holder: parent_instance_id,
                    holder_execution: execution_id.to_string(),
                };
                self.enqueue(&first, message);
            }
            ActionKind::UnlockEntity {
                critical_section_id,
                target_instance_id,
                parent_instance_id,
            } => self.enqueue(
                &target_instance_id,
                EntityMessage::Unlock {
                    critical_section_id,
                    holder: parent_instance_id,
                },
            ),
            ActionKind::ScheduleTask { name, input } => self.work.push(Work::Activity {
                instance_id: instance_id.to_string(),
                execution_id: execution_id.to_string(),
                task_id: id,
                name,
                input,
            }),
            ActionKind::CreateTimer { fire_at } => self.work.push(Work::Timer {
                instance_id: instance_id.to_string(),
                execution_id: execution_id.to_string(),
                timer_id: id,
                fire_at,
            }),
            ActionKind::CreateSubOrchestration {
                name,
                instance_id: child_id,
                input,
            } => {
                let parent = ParentInstance {
                    instance_id: instance_id.to_string(),
                    execution_id: execution_id.to_string(),
                    name: self.instances[instance_id].name.clone(),
                    task_scheduled_id: id,
                };
                self.start_instance(&child_id, &name, input, Some(parent));
            }
            ActionKind::SendEvent {
                instance_id: target,
                name,
                input,
            } => self.deliver(&target, None, EventKind::EventRaised { name, input }),
            ActionKind::CompleteOrchestration {
                status: RuntimeStatus::ContinuedAsNew,
                result,
                carryover_events,
                ..
            } => {
                self.release_locks_of(instance_id);
                let instance = self.instances.get_mut(instance_id).unwrap();
                let next_execution_id = format!("{instance_id}-e{}", instance.executions.len() + 1);
                let started = HistoryEvent {
                    event_id: -1,
                    timestamp: self.clock,
                    kind: EventKind::ExecutionStarted {
                        name: instance.name.clone(),
                        version: None,
                        input: result,
                        instance_id: instance_id.to_string(),
                        execution_id: next_execution_id.clone(),
                        parent: instance.parent.clone(),
                        scheduled_start: None,
                    },
                };
                instance.executions.push(Execution {
                    execution_id: next_execution_id,
                    history: Vec::new(),
                    episodes: Vec::new(),
                });
                // ExecutionStarted, then the carried-over events, then whatever else waits.
                let waiting = std::mem::take(&mut instance.inbox);
                instance.inbox = std::iter::once(started)
                    .chain(carryover_events)
                    .chain(waiting)
                    .collect();
            }
            ActionKind::CompleteOrchestration {
                status,
                result,
                failure,
                ..
            } => {
                self.release_locks_of(instance_id);
                let instance = self.instances.get_mut(instance_id).unwrap();
                instance.status = status;
                instance.inbox.clear();
                instance.output = match &failure {
                    Some(failure) => serde_json::to_value(failure).unwrap(),
                    None => result.clone(),
                };
                if let Some(parent) = instance.parent.clone() {
                    let task_scheduled_id = parent.task_scheduled_id;
                    let kind = match failure {
                        Some(failure) => EventKind::SubOrchestrationInstanceFailed {
                            task_scheduled_id,
                            failure,
                        },
                        None => EventKind::SubOrchestrationInstanceCompleted {
                            task_scheduled_id,
                            result,
                        },
                    };
                    self.deliver(&parent.instance_id, Some(&parent.execution_id), kind);
                }
            }
        }
    }
}

/// Replays every prefix of every execution the host recorded, at every episode boundary (past =
/// history before episode k, new = episode k's new events), with full replay and through a fresh
/// session cache, and checks each answer equals the live one. Also checks that with
/// `include_replay_logs` the replayed lines are exactly the earlier episodes' lines.
pub fn check_every_prefix_replays_like_the_live_run(registry: &Registry, instance: &Instance) {
    for execution in &instance.executions {
        let mut earlier_logs = Vec::new();
        for (index, episode) in execution.episodes.iter().enumerate() {
            let request = OrchestratorRequest {
                instance_id: instance.instance_id.clone(),
                execution_id: execution.execution_id.clone(),
                history_len: episode.start,
                past_events: execution.history[..episode.start].to_vec(),
                new_events: execution.history[episode.start..episode.start + episode.new_len]
                    .to_vec(),
                include_replay_logs: false,
                max_actions: None,
            };
            let context = || {
                format!(
                    "instance {} execution {} episode {index}\n--- past\n{}\n--- new\n{}\n--- live actions\n{}",
                    instance.instance_id,
                    execution.execution_id,
                    render_events(&request.past_events),
                    render_events(&request.new_events),
                    render_actions(&episode.response.actions),
                )
            };
            let uncached = registry.orchestrate_uncached(request.clone());
            assert!(
                comparable(&uncached) == comparable(&episode.response),
                "full replay differs from the live (cached) run at {}\n--- replay actions\n{}\n{:?}",
                context(),
                render_actions(&uncached.actions),
                uncached.nondeterminism,
            );
            let cached = registry.orchestrate(&mut SessionCache::new(1), request.clone());
            assert!(
                comparable(&cached) == comparable(&episode.response),
                "a fresh session cache differs from the live run at {}\n--- actions\n{}",
                context(),
                render_actions(&cached.actions),
            );
            let with_replay_logs = registry.orchestrate_uncached(OrchestratorRequest {
                include_replay_logs: true,
                max_actions: None,
                ..request.clone()
            });
            let (replayed, live): (Vec<_>, Vec<_>) = with_replay_logs
                .logs
                .into_iter()
                .partition(|line| line.replaying);
            assert_eq!(
                live,
                episode.response.logs,
                "new log lines at {}",
                context()
            );
            let replayed: Vec<_> = replayed
                .into_iter()
                .map(|line| durable_sdk::protocol::LogLine {
                    replaying: false,
                    ..line
                })
                .collect();
            assert_eq!(
                replayed,
                earlier_logs,
                "replayed log lines are the earlier episodes' lines at {}",
                context()
            );
            earlier_logs.extend(episode.response.logs.iter().cloned());
        }
    }
}
