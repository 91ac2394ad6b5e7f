//! The orchestration context: every durable call an orchestrator can make (docs/semantics.md
//! #episodes to #terminate), and the per-execution state those calls read and write.
//!
//! Owns [`OrchestrationContext`] and `OrchestrationState`; the entity calls live in
//! `entity_calls`. A call never does I/O: it takes the
//! next sequence id, records a pending action, and returns a [`DurableTask`] whose slot the
//! executor fills from history. Knows nothing of how episodes are driven (see `executor`).

use crate::entity_calls::EntityCalls;
use crate::failure::{FailureDetails, SERIALIZATION, TIMER_OUT_OF_RANGE, TaskError, TaskKind};
use crate::history::{EventKind, HistoryEvent, ParentInstance};
use crate::protocol::{Action, ActionKind, LogLevel, LogLine};
use crate::retry::RetryPolicy;
use crate::task::{DurableTask, SlotRef, TaskLabel, new_slot, poll_raw, resolve, resolve_with};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;
use uuid::Uuid;

/// Namespace of the deterministic UUIDv5s `new_guid` returns.
const GUID_NAMESPACE: Uuid = Uuid::from_u128(0x9e95_2958_5e33_4daf_827f_2fa1_2937_b875);

pub(crate) type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

/// A request to end the execution and start the next one with a new input.
#[derive(Debug, Clone)]
pub(crate) struct ContinueAsNewRequest {
    pub input: Value,
    pub keep_unprocessed_events: bool,
}

/// Everything one execution of an orchestration knows while it runs or replays.
pub(crate) struct OrchestrationState {
    pub instance_id: String,
    pub execution_id: String,
    pub name: String,
    pub parent: Option<ParentInstance>,
    pub now: DateTime<Utc>,
    pub replaying: bool,
    pub next_sequence: i32,
    /// Actions the code made that history has not confirmed yet, by sequence id.
    pub unconfirmed: BTreeMap<i32, Action>,
    /// Tasks waiting for a completion event, by sequence id.
    pub open_tasks: HashMap<i32, SlotRef>,
    /// Waits for external events, by lower-case name, oldest first.
    pub event_waiters: HashMap<String, VecDeque<SlotRef>>,
    /// `EventRaised` events nobody waited for yet, in arrival order.
    pub buffered_events: VecDeque<HistoryEvent>,
    pub custom_status: Option<Value>,
    pub continue_as_new: Option<ContinueAsNewRequest>,
    pub logs: Vec<LogLine>,
    pub include_replay_logs: bool,
    /// Most durable calls not yet recorded in history (the host's per-episode limit).
    pub max_actions: Option<u32>,
    guid_counter: u64,
    arrival_counter: u64,
    /// Composite tasks (retry loops) created during a poll, handed to the executor after it.
    pub spawn_queue: Vec<LocalTask>,
    /// A call the history cannot record was made: the executor fails the execution with this.
    pub fatal: Option<FailureDetails>,
    /// Entity calls waiting for answers and the critical section the code is in.
    pub entities: EntityCalls,
}

impl OrchestrationState {
    pub(crate) fn new(instance_id: String, execution_id: String) -> Self {
        Self {
            instance_id,
            execution_id,
            name: String::new(),
            parent: None,
            now: DateTime::UNIX_EPOCH,
            replaying: false,
            next_sequence: 0,
            unconfirmed: BTreeMap::new(),
            open_tasks: HashMap::new(),
            event_waiters: HashMap::new(),
            buffered_events: VecDeque::new(),
            custom_status: None,
            continue_as_new: None,
            logs: Vec::new(),
            include_replay_logs: false,
            max_actions: None,
            guid_counter: 0,
            arrival_counter: 0,
            spawn_queue: Vec::new(),
            fatal: None,
            entities: EntityCalls::default(),
        }
    }

    pub(crate) fn next_arrival(&mut self) -> u64 {
        self.arrival_counter += 1;
        self.arrival_counter
    }

    pub(crate) fn take_sequence(&mut self) -> i32 {
        let id = self.next_sequence;
        self.next_sequence += 1;
        id
    }

    /// A sequence id for a durable call the code makes. Past the host's limit on calls not yet
    /// recorded (`max_actions`), the code is stopped: an orchestration that asks for an endless
    /// fan-out must fail, not grow until memory runs out.
    pub(crate) fn take_call_sequence(&mut self) -> i32 {
        if let Some(limit) = self.max_actions {
            if self.unconfirmed.len() >= limit as usize {
                std::panic::panic_any(crate::failure::ActionLimitExceeded { limit });
            }
        }
        self.take_sequence()
    }

    /// The names of the external events some wait is registered for, as the code spelled them
    /// (the oldest wait's spelling), sorted case-insensitively.
    pub(crate) fn awaited_events(&self) -> Vec<String> {
        let mut names: Vec<(&String, String)> = self
            .event_waiters
            .iter()
            .filter_map(|(key, waiters)| {
                let oldest = waiters.front()?;
                Some((key, oldest.borrow().label.name.clone()))
            })
            .collect();
        names.sort();
        names.into_iter().map(|(_, name)| name).collect()
    }

    /// Delivers an `EventRaised` to the oldest waiter for its name, or buffers it (FIFO per name,
    /// names compared case-insensitively).
    pub(crate) fn deliver_event(&mut self, event: HistoryEvent) {
        let EventKind::EventRaised { name, input } = &event.kind else {
            return;
        };
        let key = name.to_lowercase();
        let waiter = self
            .event_waiters
            .get_mut(&key)
            .and_then(|waiters| waiters.pop_front());
        match waiter {
            Some(slot) => {
                let arrival = self.next_arrival();
                resolve(&slot, Ok(input.clone()), arrival);
            }
            None => self.buffered_events.push_back(event),
        }
    }
}

/// The orchestrator's handle on its durable world. Cheap to clone; all clones share one state.
///
/// Orchestrator code must be deterministic: the same history must lead to the same calls in the
/// same order. Use this context for time ([`current_utc_date_time`](Self::current_utc_date_time)),
/// ids ([`new_guid`](Self::new_guid)) and waiting ([`create_timer`](Self::create_timer)); never the
/// wall clock, random numbers, threads or non-durable futures (a tokio sleep would never wake).
#[derive(Clone)]
pub struct OrchestrationContext {
    state: Rc<RefCell<OrchestrationState>>,
}

impl std::fmt::Debug for OrchestrationContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("OrchestrationContext")
            .field("instance_id", &state.instance_id)
            .field("execution_id", &state.execution_id)
            .field("name", &state.name)
            .field("replaying", &state.replaying)
            .finish()
    }
}

/// Options for a sub-orchestration call.
#[derive(Debug, Clone, Default)]
pub struct SubOrchestrationOptions {
    /// The child's instance id; default `<parent id>:<sequence id>`.
    pub instance_id: Option<String>,
    /// Retry the child on failure.
    pub retry: Option<RetryPolicy>,
}

impl OrchestrationContext {
    pub(crate) fn new(state: Rc<RefCell<OrchestrationState>>) -> Self {
        Self { state }
    }

    /// The shared state, for the calls other modules add (entities).
    pub(crate) fn state(&self) -> &Rc<RefCell<OrchestrationState>> {
        &self.state
    }

    /// This instance's id.
    pub fn instance_id(&self) -> String {
        self.state.borrow().instance_id.clone()
    }

    /// This execution's id (a new one after each continue-as-new).
    pub fn execution_id(&self) -> String {
        self.state.borrow().execution_id.clone()
    }

    /// The orchestration's registered name.
    pub fn name(&self) -> String {
        self.state.borrow().name.clone()
    }

    /// The parent, when this is a sub-orchestration.
    pub fn parent(&self) -> Option<ParentInstance> {
        self.state.borrow().parent.clone()
    }

    /// The orchestrator's "now": the timestamp of the latest `OrchestratorStarted` processed.
    /// Deterministic on replay; never the wall clock.
    pub fn current_utc_date_time(&self) -> DateTime<Utc> {
        self.state.borrow().now
    }

    /// True while the code is re-running past history rather than making progress.
    pub fn is_replaying(&self) -> bool {
        self.state.borrow().replaying
    }

    /// A deterministic UUIDv5 of (instance id, current time, call counter): the same on every
    /// replay. **Ours**: the counter runs over the whole execution (as .NET's does) rather than
    /// restarting each episode, because under the virtual clock consecutive episodes often share
    /// one timestamp, and a per-episode counter would then repeat ids. A new execution counts from
    /// zero again (docs/semantics.md#deterministic-helpers).
    pub fn new_guid(&self) -> Uuid {
        let mut state = self.state.borrow_mut();
        state.guid_counter += 1;
        let name = format!(
            "{}_{}_{}",
            state.instance_id,
            state
                .now
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            state.guid_counter
        );
        Uuid::new_v5(&GUID_NAMESPACE, name.as_bytes())
    }

    /// Sets the custom status the host shows beside the instance (progress, a phase name, ...).
    pub fn set_custom_status(&self, status: impl Serialize) {
        let value = serde_json::to_value(status).unwrap_or_else(|error| {
            Value::String(format!("custom status did not serialize: {error}"))
        });
        self.state.borrow_mut().custom_status = Some(value);
    }

    /// Writes a replay-safe log line: it is reported once, when the code first runs past this
    /// point, not again on every replay.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        let mut state = self.state.borrow_mut();
        if state.replaying && !state.include_replay_logs {
            return;
        }
        let line = LogLine {
            level,
            message: message.into(),
            replaying: state.replaying,
            timestamp: state.now,
        };
        state.logs.push(line);
    }

    /// [`log`](Self::log) at info level.
    pub fn log_info(&self, message: impl Into<String>) {
        self.log(LogLevel::Info, message);
    }

    /// [`log`](Self::log) at warn level.
    pub fn log_warn(&self, message: impl Into<String>) {
        self.log(LogLevel::Warn, message);
    }

    /// Calls an activity. The work is scheduled now; await the task for its result.
    pub fn call_activity<T: DeserializeOwned>(
        &self,
        name: &str,
        input: impl Serialize,
    ) -> DurableTask<T> {
        DurableTask::from_slot(self.schedule_call(TaskKind::Activity, name, input, None))
    }

    /// Calls an activity, retrying failures as `policy` says (each attempt and each delay is
    /// visible in history).
    pub fn call_activity_with_retry<T: DeserializeOwned>(
        &self,
        name: &str,
        input: impl Serialize,
        policy: RetryPolicy,
    ) -> DurableTask<T> {
        DurableTask::from_slot(self.retrying_call(
            TaskKind::Activity,
            name,
            input,
            None,
            policy,
            None,
        ))
    }

    /// Calls an HTTP API as a durable call: the host makes the request and records it; a 202
    /// Accepted with `Location` is polled (durable timers between polls) until another status
    /// answers, unless the request turns polling off. Any status is a result; a timeout or a
    /// connection failure fails the task (`HttpTimeout`, `HttpConnectionFailed`), retried first
    /// if the request has a retry policy. See [`crate::http`].
    pub fn call_http(
        &self,
        request: crate::http::DurableHttpRequest,
    ) -> DurableTask<crate::http::DurableHttpResponse> {
        crate::http::call(self, request)
    }

    /// Calls a sub-orchestration with instance id `<this id>:<sequence id>`.
    pub fn call_sub_orchestrator<T: DeserializeOwned>(
        &self,
        name: &str,
        input: impl Serialize,
    ) -> DurableTask<T> {
        self.call_sub_orchestrator_with(name, input, SubOrchestrationOptions::default())
    }

    /// Calls a sub-orchestration with an explicit instance id and/or a retry policy.
    pub fn call_sub_orchestrator_with<T: DeserializeOwned>(
        &self,
        name: &str,
        input: impl Serialize,
        options: SubOrchestrationOptions,
    ) -> DurableTask<T> {
        if let Err(failure) = self.check_no_critical_section(name) {
            return DurableTask::from_slot(failed_without_call(
                TaskKind::SubOrchestration,
                name,
                failure,
            ));
        }
        let slot = match options.retry {
            Some(policy) => self.retrying_call(
                TaskKind::SubOrchestration,
                name,
                input,
                options.instance_id,
                policy,
                None,
            ),
            None => {
                self.schedule_call(TaskKind::SubOrchestration, name, input, options.instance_id)
            }
        };
        DurableTask::from_slot(slot)
    }

    /// A durable timer that fires at `fire_at` (orchestration clock).
    ///
    /// `fire_at` must be a time a history can hold (years 1 to 9999, see
    /// [`LATEST_TIME`](crate::history::LATEST_TIME)); otherwise the orchestration fails with
    /// `TimerOutOfRange`, non-retriable. It fails as a whole rather than just this task, because a
    /// timer raced in `when_any` would otherwise look as if it had fired.
    pub fn create_timer(&self, fire_at: DateTime<Utc>) -> DurableTask<()> {
        let mut state = self.state.borrow_mut();
        if let Err(error) = crate::history::check_time(fire_at) {
            state.fatal.get_or_insert_with(|| {
                FailureDetails::new(TIMER_OUT_OF_RANGE, format!("create_timer: {error}"))
                    .non_retriable()
            });
            // Never resolves: the executor ends the execution before anything awaits it again.
            return DurableTask::from_slot(new_slot(TaskLabel {
                kind: TaskKind::Timer,
                name: String::new(),
                id: -1,
            }));
        }
        let id = state.take_call_sequence();
        state.unconfirmed.insert(
            id,
            Action {
                id,
                kind: ActionKind::CreateTimer { fire_at },
            },
        );
        let slot = new_slot(TaskLabel {
            kind: TaskKind::Timer,
            name: String::new(),
            id,
        });
        state.open_tasks.insert(id, Rc::clone(&slot));
        DurableTask::from_slot(slot)
    }

    /// A durable timer that fires `delay` after [`current_utc_date_time`](Self::current_utc_date_time).
    pub fn create_timer_after(&self, delay: Duration) -> DurableTask<()> {
        let fire_at = add_duration(self.current_utc_date_time(), delay);
        self.create_timer(fire_at)
    }

    /// Waits for an external event named `name` (case-insensitive). Takes the oldest buffered event
    /// of that name if one already arrived; otherwise the next one to arrive.
    pub fn wait_for_external_event<T: DeserializeOwned>(&self, name: &str) -> DurableTask<T> {
        let slot = new_slot(TaskLabel {
            kind: TaskKind::ExternalEvent,
            name: name.to_string(),
            id: -1,
        });
        let mut state = self.state.borrow_mut();
        let key = name.to_lowercase();
        let buffered = state.buffered_events.iter().position(|event| {
            matches!(&event.kind, EventKind::EventRaised { name, .. } if name.to_lowercase() == key)
        });
        match buffered.and_then(|index| state.buffered_events.remove(index)) {
            Some(HistoryEvent {
                kind: EventKind::EventRaised { input, .. },
                ..
            }) => {
                let arrival = state.next_arrival();
                resolve(&slot, Ok(input), arrival);
            }
            _ => state
                .event_waiters
                .entry(key)
                .or_default()
                .push_back(Rc::clone(&slot)),
        }
        DurableTask::from_slot(slot)
    }

    /// Sends an event to another instance (fire and forget; recorded as `EventSent`).
    pub fn send_event(&self, instance_id: &str, name: &str, input: impl Serialize) {
        let input = serde_json::to_value(input).unwrap_or(Value::Null);
        let mut state = self.state.borrow_mut();
        let id = state.take_call_sequence();
        state.unconfirmed.insert(
            id,
            Action {
                id,
                kind: ActionKind::SendEvent {
                    instance_id: instance_id.to_string(),
                    name: name.to_string(),
                    input,
                },
            },
        );
    }

    /// Ends this execution when the orchestrator returns and starts a fresh one with `input`
    /// (history reset, new execution id). Whatever the orchestrator returns afterwards is ignored
    /// unless it is an error. Unconsumed external events are dropped.
    pub fn continue_as_new(&self, input: impl Serialize) {
        self.request_continue_as_new(input, false);
    }

    /// Like [`continue_as_new`](Self::continue_as_new), but external events that arrived and were
    /// not consumed are carried over to the next execution.
    pub fn continue_as_new_keeping_events(&self, input: impl Serialize) {
        self.request_continue_as_new(input, true);
    }

    fn request_continue_as_new(&self, input: impl Serialize, keep_unprocessed_events: bool) {
        let input = serde_json::to_value(input).unwrap_or(Value::Null);
        self.state.borrow_mut().continue_as_new = Some(ContinueAsNewRequest {
            input,
            keep_unprocessed_events,
        });
    }

    /// Takes a sequence id, records the action and opens the task's slot.
    pub(crate) fn schedule_call(
        &self,
        kind: TaskKind,
        name: &str,
        input: impl Serialize,
        instance_id: Option<String>,
    ) -> SlotRef {
        let input = match serde_json::to_value(input) {
            Ok(input) => input,
            Err(error) => return failed_before_scheduling(kind, name, error),
        };
        let mut state = self.state.borrow_mut();
        let id = state.take_call_sequence();
        let action_kind = match kind {
            TaskKind::SubOrchestration => ActionKind::CreateSubOrchestration {
                name: name.to_string(),
                instance_id: instance_id.unwrap_or_else(|| format!("{}:{id}", state.instance_id)),
                input,
            },
            _ => ActionKind::ScheduleTask {
                name: name.to_string(),
                input,
            },
        };
        state.unconfirmed.insert(
            id,
            Action {
                id,
                kind: action_kind,
            },
        );
        let slot = new_slot(TaskLabel {
            kind,
            name: name.to_string(),
            id,
        });
        state.open_tasks.insert(id, Rc::clone(&slot));
        slot
    }

    /// Schedules attempt 1 now and spawns the loop that schedules the timers and later attempts,
    /// so retries progress even while the caller awaits something else. With a `deadline` (an
    /// HTTP call's timeout), no attempt starts at or after it: the last failure stands.
    pub(crate) fn retrying_call(
        &self,
        kind: TaskKind,
        name: &str,
        input: impl Serialize,
        instance_id: Option<String>,
        policy: RetryPolicy,
        deadline: Option<DateTime<Utc>>,
    ) -> SlotRef {
        let input = match serde_json::to_value(input) {
            Ok(input) => input,
            Err(error) => return failed_before_scheduling(kind, name, error),
        };
        let first_attempt = self.schedule_call(kind, name, &input, instance_id.clone());
        let result = new_slot(first_attempt.borrow().label.clone());
        let started_at = self.current_utc_date_time();
        let context = self.clone();
        let name = name.to_string();
        let result_slot = Rc::clone(&result);
        let retry_loop = async move {
            let mut attempt = 1u32;
            let mut current = first_attempt;
            let outcome = loop {
                let outcome = std::future::poll_fn(|cx| poll_raw(&current, cx)).await;
                let error = match outcome {
                    Ok(value) => break Ok(value),
                    Err(error) => error,
                };
                let elapsed = (context.current_utc_date_time() - started_at)
                    .to_std()
                    .unwrap_or_default();
                if !policy.should_retry(attempt, &error.failure, elapsed) {
                    break Err(error);
                }
                let retry_at =
                    add_duration(context.current_utc_date_time(), policy.delay_after(attempt));
                if deadline.is_some_and(|deadline| retry_at >= deadline) {
                    break Err(error);
                }
                // A timer only fails if the host says so; either way the next attempt follows.
                let _ = context.create_timer(retry_at).await;
                attempt += 1;
                current = context.schedule_call(kind, &name, &input, instance_id.clone());
            };
            let arrival = context.state.borrow_mut().next_arrival();
            resolve_with(&result_slot, outcome, arrival);
        };
        self.state
            .borrow_mut()
            .spawn_queue
            .push(Box::pin(retry_loop));
        result
    }
}

fn failed_before_scheduling(kind: TaskKind, name: &str, error: serde_json::Error) -> SlotRef {
    failed_without_call(
        kind,
        name,
        FailureDetails::new(
            SERIALIZATION,
            format!("the input did not serialize: {error}"),
        )
        .non_retriable(),
    )
}

/// A task that failed before any call was made (no sequence id taken).
pub(crate) fn failed_without_call(kind: TaskKind, name: &str, failure: FailureDetails) -> SlotRef {
    let slot = new_slot(TaskLabel {
        kind,
        name: name.to_string(),
        id: -1,
    });
    resolve_with(
        &slot,
        Err(TaskError {
            kind,
            name: name.to_string(),
            task_id: -1,
            failure,
        }),
        0,
    );
    slot
}

/// `time + delay`, saturating at the latest time chrono holds (which `create_timer` then refuses
/// as out of range rather than wrapping).
pub(crate) fn add_duration(time: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(delay)
        .ok()
        .and_then(|delay| time.checked_add_signed(delay))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
