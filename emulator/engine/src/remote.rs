//! The remote executor's hub: where orchestration episodes, activities and entity batches that no
//! loaded plugin runs wait for, and are handed to, workers in other processes (the SDKs behind the gRPC
//! sidecar), and where those workers' completions come back in.
//!
//! Owns the worker registry (who is connected, with which filters), the work items out (each with
//! a completion token that is unique per delivery), the queue of items no connected worker has
//! taken yet, and requeueing: a worker that disconnects (its [`WorkerConnection`] dropped) or
//! abandons an item gives it back, and it goes out again under a new token, so a late completion
//! of the old delivery is stale and refused. Replay probes (the stepper, reconnect checks) are
//! items too, answered to the caller and never committed.
//!
//! The hub does not decide what runs where or what a completion means: the core thread submits
//! items after the batch that made them committed, and takes an item back (by token) inside the
//! core command that records its completion, so "outstanding" has one source of truth and a
//! completion is accepted at most once. Knows nothing of gRPC, protobuf or any front end.

use crate::engine::{Core, CoreMessage, EngineError, EngineEvent, core_call};
use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;
use durable_sdk::history::HistoryEvent;
use durable_sdk::protocol::{ActivityOutcome, OrchestratorRequest, OrchestratorResponse};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A connected worker's number, unique within one engine process.
pub type WorkerId = u64;

/// Disconnected workers kept for [`RemoteHub::workers`] (the UI's list of recent disconnects).
const RECENT_DISCONNECTS: usize = 16;

/// The `build` of a [`Divergence`](crate::Divergence) (and of
/// [`EngineEvent::InstanceDiverged`]) that a replay probe found in the code of remote workers,
/// which is in no build: builds are numbered from 1, so 0 names none.
pub const REMOTE_CODE: u32 = 0;

/// How long a replay probe (`EngineHandle::probe_remote`, the reconnect check) waits for the
/// worker's answer: a replay is quick, so a worker that takes longer is stuck or gone.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(30);

/// What a worker said about itself when it connected.
#[derive(Clone, Debug, Default)]
pub struct WorkerInfo {
    /// The remote address as the server saw it.
    pub peer: String,
    /// Request metadata worth showing (`taskhub`, `workerid`, `x-user-agent`, a masked
    /// `authorization`).
    pub metadata: Vec<(String, String)>,
    /// Which work it takes; `None`: everything.
    pub filters: Option<WorkFilters>,
    /// Whether it asked for history streaming (informational: the server streams).
    pub history_streaming: bool,
}

/// The names a worker takes. An empty list takes nothing of that kind (a worker that takes
/// everything connects with `filters: None`).
#[derive(Clone, Debug, Default)]
pub struct WorkFilters {
    /// Orchestrations it runs.
    pub orchestrations: Vec<NameFilter>,
    /// Activities it runs.
    pub activities: Vec<NameFilter>,
    /// Entities it runs, by entity name (lower-cased; entities have no versions).
    pub entities: Vec<String>,
}

/// One name a worker takes, with the versions it takes (empty: any version).
#[derive(Clone, Debug, Default)]
pub struct NameFilter {
    /// The orchestration or activity name.
    pub name: String,
    /// Versions it takes; empty takes any.
    pub versions: Vec<String>,
}

/// Work handed to a worker.
#[derive(Clone, Debug)]
pub enum RemoteWorkItem {
    /// An episode: `past` is always the FULL history before this episode (`request.past_events`
    /// is empty: the history is shared, not copied, on its way to the worker, and
    /// `request.history_len` is its length); `request.new_events` starts with
    /// `OrchestratorStarted` (the first episode's: `OrchestratorStarted`, `ExecutionStarted`).
    /// `probe`: a replay probe whose answer is shown, never committed.
    Orchestrator {
        /// Echoed back with the completion.
        token: String,
        /// The orchestration.
        name: String,
        /// This episode's events (and the history's length).
        request: OrchestratorRequest,
        /// The history before it.
        past: Arc<Vec<HistoryEvent>>,
        /// A replay probe (answered to whoever probes; nothing is recorded).
        probe: bool,
    },
    /// An activity attempt.
    Activity {
        /// Echoed back with the completion.
        token: String,
        /// The activity.
        name: String,
        /// Its input.
        input: Value,
        /// The instance that scheduled it.
        instance_id: String,
        /// The execution that scheduled it.
        execution_id: String,
        /// Its `TaskScheduled` id.
        task_id: i32,
        /// Which delivery this is (1 the first; more after a redelivery).
        attempt: u32,
    },
    /// A batch of operations for one entity (answered with `complete_entity`).
    Entity {
        /// Echoed back with the completion.
        token: String,
        /// The entity name (lower-cased).
        name: String,
        /// The entity's state and the operations to run.
        request: durable_sdk::protocol::EntityBatchRequest,
    },
}

impl RemoteWorkItem {
    /// This item with an episode's history copied into `request.past_events` too, the request
    /// as an in-process executor (the SDK's `orchestrate`) takes it; other items as they are.
    pub fn with_past_in_request(mut self) -> Self {
        if let Self::Orchestrator { request, past, .. } = &mut self {
            request.past_events = past.to_vec();
        }
        self
    }

    /// The completion token of this delivery.
    pub fn token(&self) -> &str {
        match self {
            Self::Orchestrator { token, .. }
            | Self::Activity { token, .. }
            | Self::Entity { token, .. } => token,
        }
    }
}

/// One activity's outcome, as a worker answers it (for [`RemoteHub::complete_activities`]).
#[derive(Debug, Clone)]
pub struct ActivityAnswer {
    /// The completion token of the delivery.
    pub token: String,
    /// The instance that scheduled it.
    pub instance_id: String,
    /// Its `TaskScheduled` id.
    pub task_id: i32,
    /// What it did.
    pub outcome: ActivityOutcome,
}

/// What kind of work an item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WorkKind {
    /// An orchestration episode.
    Orchestration,
    /// An activity.
    Activity,
    /// A batch of entity operations.
    Entity,
}

impl WorkKind {
    /// `orchestration` or `activity`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orchestration => "orchestration",
            Self::Activity => "activity",
            Self::Entity => "entity",
        }
    }
}

impl std::fmt::Display for WorkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connected worker's end: the items sent to it, in order. Dropping it disconnects the worker:
/// its unfinished items go back to the queue under new tokens and are redelivered.
#[derive(Debug)]
pub struct WorkerConnection {
    /// Its number.
    pub id: WorkerId,
    /// Its work items.
    pub items: mpsc::UnboundedReceiver<RemoteWorkItem>,
    hub: RemoteHub,
}

impl Drop for WorkerConnection {
    fn drop(&mut self) {
        self.hub.disconnect(self.id);
    }
}

/// Why the hub refused a completion, an abandon or a probe. Refused, it changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The token names no outstanding work item.
    #[error(
        "no work item with token '{token}' is outstanding{}; it was completed, abandoned or redelivered (a worker's stream closed), so this answer is stale",
        describe_target(.instance_id, .task_id)
    )]
    UnknownWork {
        /// The token sent (empty: matched by instance and task id).
        token: String,
        /// The instance the completion named.
        instance_id: String,
        /// The task id an activity completion named.
        task_id: Option<i32>,
    },
    /// The answer breaks history; the instance fails with `InvalidWorkerResponse` (see
    /// docs/architecture.md#executors) and none of the answer is recorded.
    #[error("the completion breaks the instance's history: {0}")]
    InvalidCompletion(String),
    /// No connected worker takes the orchestration a probe needs.
    #[error(
        "no connected worker runs orchestration '{0}'; connect a worker that registers it and try again"
    )]
    NoWorker(String),
    /// The worker holding a probe did not answer in time, or disconnected first.
    #[error("the replay probe of orchestration '{name}' was not answered: {reason}")]
    ProbeUnanswered {
        /// The orchestration probed.
        name: String,
        /// What happened to it.
        reason: String,
    },
    /// The engine refused or has stopped.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

fn describe_target(instance_id: &str, task_id: &Option<i32>) -> String {
    match task_id {
        Some(task_id) => format!(" for task {task_id} of instance '{instance_id}'"),
        None => format!(" for instance '{instance_id}'"),
    }
}

/// A worker as the UI lists it.
#[derive(Clone, Debug)]
pub struct WorkerSnapshot {
    /// Its number.
    pub id: WorkerId,
    /// Its address.
    pub peer: String,
    /// The metadata it sent.
    pub metadata: Vec<(String, String)>,
    /// Its filters (`None`: takes everything).
    pub filters: Option<WorkFilters>,
    /// Items it holds now.
    pub in_flight: usize,
    /// Items it completed.
    pub completed: u64,
    /// When it connected.
    pub connected_at: DateTime<Utc>,
    /// When it disconnected (recent disconnects are kept a while).
    pub disconnected_at: Option<DateTime<Utc>>,
}

/// Work that no connected worker takes (and no loaded plugin runs): it waits here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedWork {
    /// An episode or an activity.
    pub kind: WorkKind,
    /// The orchestration or activity name nobody takes.
    pub name: String,
    /// The instance it belongs to.
    pub instance_id: String,
}

/// Shared by the core and the front ends; cheap to clone. From
/// [`EngineHandle::remote_hub`](crate::EngineHandle::remote_hub).
#[derive(Clone)]
pub struct RemoteHub {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RemoteHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("RemoteHub")
            .field("workers", &state.workers.len())
            .field("items", &state.items.len())
            .field(
                "queued",
                &state
                    .items
                    .values()
                    .filter(|item| item.worker.is_none())
                    .count(),
            )
            .finish()
    }
}

struct Shared {
    state: Mutex<HubState>,
    /// The core's command channel: completions are recorded there, and it hears of changes.
    core: Sender<CoreMessage>,
    /// Unique per hub (so per process): a token from before a restart never matches.
    token_prefix: String,
    /// Work lost with its worker this many times is failed (`--max-deliveries`).
    max_deliveries: u32,
}

/// The hub's maps, touched several times for every work item (a fan-out's thousands of tokens
/// among them): foldhash, seeded per process, hashes their string keys several times faster
/// than the standard SipHash, which was a tenth of the core's time in `bench isolate`.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

#[derive(Default)]
struct HubState {
    next_worker: WorkerId,
    next_token: u64,
    workers: BTreeMap<WorkerId, Worker>,
    gone: VecDeque<WorkerSnapshot>,
    /// Every outstanding item by token, taken or queued.
    items: FastMap<String, Item>,
    /// Tokens of items no worker held when last looked at, oldest first; a token whose item is
    /// gone or handed out since is skipped (and dropped) when met.
    queue: VecDeque<String>,
    /// For completions without a token: an instance's episode, an activity by instance + task.
    episode_of: FastMap<String, String>,
    activity_of: FastMap<(String, i32), String>,
    /// Tokens of each instance's items (probes excluded), to withdraw them without a scan.
    of_instance: FastMap<String, FastSet<String>>,
    /// Items a worker holds now (probes excluded).
    held: usize,
}

struct Worker {
    info: WorkerInfo,
    sender: mpsc::UnboundedSender<RemoteWorkItem>,
    holding: FastSet<String>,
    completed: u64,
    connected_at: DateTime<Utc>,
}

struct Item {
    work: Work,
    worker: Option<WorkerId>,
    /// Deliveries of this work whose worker went away before answering (a crash, a kill, a
    /// lost connection): at the delivery limit the work is given up instead of sent again.
    lost: u32,
}

/// What became of a held item when its worker went away.
enum LostDelivery {
    /// Sent out again (or queued: the parked work, if nobody takes it).
    Requeued(Option<ParkedWork>),
    /// Lost as often as the delivery limit allows: the core fails it.
    GivenUp(Work, u32),
}

/// Work as the core submits it (the hub adds the token).
pub(crate) enum Work {
    Episode {
        name: String,
        request: OrchestratorRequest,
        past: Arc<Vec<HistoryEvent>>,
    },
    Activity {
        name: String,
        input: Value,
        instance_id: String,
        execution_id: String,
        task_id: i32,
        attempt: u32,
    },
    Probe {
        name: String,
        request: OrchestratorRequest,
        past: Arc<Vec<HistoryEvent>>,
        reply: oneshot::Sender<OrchestratorResponse>,
        /// Only this worker may answer it (a reconnect check asks the code that connected).
        only: Option<WorkerId>,
    },
    /// A batch of one entity's operations (its instance is the entity id).
    Entity {
        name: String,
        request: durable_sdk::protocol::EntityBatchRequest,
    },
}

impl Work {
    fn kind(&self) -> WorkKind {
        match self {
            Self::Episode { .. } | Self::Probe { .. } => WorkKind::Orchestration,
            Self::Activity { .. } => WorkKind::Activity,
            Self::Entity { .. } => WorkKind::Entity,
        }
    }

    fn name(&self) -> &str {
        match self {
            Self::Episode { name, .. }
            | Self::Activity { name, .. }
            | Self::Probe { name, .. }
            | Self::Entity { name, .. } => name,
        }
    }

    /// The orchestration's version, from the `ExecutionStarted` the episode's history holds.
    fn version(&self) -> Option<&str> {
        match self {
            Self::Episode { request, past, .. } | Self::Probe { request, past, .. } => past
                .iter()
                .chain(&request.new_events)
                .find_map(|event| match &event.kind {
                    durable_sdk::history::EventKind::ExecutionStarted { version, .. } => {
                        version.as_deref()
                    }
                    _ => None,
                }),
            Self::Activity { .. } | Self::Entity { .. } => None,
        }
    }

    fn instance_id(&self) -> &str {
        match self {
            Self::Episode { request, .. } | Self::Probe { request, .. } => &request.instance_id,
            Self::Activity { instance_id, .. } => instance_id,
            Self::Entity { request, .. } => &request.instance_id,
        }
    }

    fn to_item(&self, token: &str) -> RemoteWorkItem {
        match self {
            Self::Episode {
                name,
                request,
                past,
            }
            | Self::Probe {
                name,
                request,
                past,
                ..
            } => RemoteWorkItem::Orchestrator {
                token: token.to_string(),
                name: name.clone(),
                request: request.clone(),
                past: Arc::clone(past),
                probe: matches!(self, Self::Probe { .. }),
            },
            Self::Activity {
                name,
                input,
                instance_id,
                execution_id,
                task_id,
                attempt,
            } => RemoteWorkItem::Activity {
                token: token.to_string(),
                name: name.clone(),
                input: input.clone(),
                instance_id: instance_id.clone(),
                execution_id: execution_id.clone(),
                task_id: *task_id,
                attempt: *attempt,
            },
            Self::Entity { name, request } => RemoteWorkItem::Entity {
                token: token.to_string(),
                name: name.clone(),
                request: request.clone(),
            },
        }
    }

    fn parked(&self) -> ParkedWork {
        ParkedWork {
            kind: self.kind(),
            name: self.name().to_string(),
            instance_id: self.instance_id().to_string(),
        }
    }
}

/// An activity taken back for its completion.
pub(crate) struct TakenActivity {
    pub(crate) name: String,
    pub(crate) execution_id: String,
}

fn accepts(filters: Option<&WorkFilters>, kind: WorkKind, name: &str) -> bool {
    let Some(filters) = filters else {
        return true;
    };
    let names = match kind {
        WorkKind::Orchestration => &filters.orchestrations,
        WorkKind::Activity => &filters.activities,
        WorkKind::Entity => return filters.entities.iter().any(|entity| entity == name),
    };
    names.iter().any(|filter| filter.name == name)
}

/// Whether a worker whose filter names versions for `name` takes an item of `version`: a filter
/// without versions takes every version; one with versions takes those (an item without a
/// version is the empty version). Only episodes carry a version (the instance's, from its
/// `ExecutionStarted`); activities are matched by name alone.
fn accepts_version(
    filters: Option<&WorkFilters>,
    kind: WorkKind,
    name: &str,
    version: Option<&str>,
) -> bool {
    let Some(filters) = filters else {
        return true;
    };
    if kind != WorkKind::Orchestration {
        return true;
    }
    let version = version.unwrap_or("");
    filters
        .orchestrations
        .iter()
        .filter(|filter| filter.name == name)
        .any(|filter| filter.versions.is_empty() || filter.versions.iter().any(|v| v == version))
}

impl HubState {
    fn snapshot(id: WorkerId, worker: &Worker) -> WorkerSnapshot {
        WorkerSnapshot {
            id,
            peer: worker.info.peer.clone(),
            metadata: worker.info.metadata.clone(),
            filters: worker.info.filters.clone(),
            in_flight: worker.holding.len(),
            completed: worker.completed,
            connected_at: worker.connected_at,
            disconnected_at: None,
        }
    }

    fn new_token(&mut self, prefix: &str) -> String {
        self.next_token += 1;
        format!("{prefix}-{}", self.next_token)
    }

    /// Hands the item to the least busy worker that takes it; false if none does.
    fn assign(&mut self, token: &str) -> bool {
        let Some(item) = self.items.get(token) else {
            return false;
        };
        let (kind, name, version) = (item.work.kind(), item.work.name(), item.work.version());
        let only = match &item.work {
            Work::Probe { only, .. } => *only,
            _ => None,
        };
        let mut candidates: Vec<(usize, WorkerId)> = self
            .workers
            .iter()
            .filter(|(id, worker)| {
                only.is_none_or(|only| only == **id)
                    && !worker.sender.is_closed()
                    && accepts(worker.info.filters.as_ref(), kind, name)
                    && accepts_version(worker.info.filters.as_ref(), kind, name, version)
            })
            .map(|(id, worker)| (worker.holding.len(), *id))
            .collect();
        candidates.sort_unstable();
        for (_, id) in candidates {
            let Some(worker) = self.workers.get_mut(&id) else {
                continue;
            };
            if worker.sender.send(item.work.to_item(token)).is_ok() {
                worker.holding.insert(token.to_string());
                if let Some(item) = self.items.get_mut(token) {
                    item.worker = Some(id);
                    if !matches!(item.work, Work::Probe { .. }) {
                        self.held += 1;
                    }
                }
                return true;
            }
        }
        false
    }

    /// Adds an item under a new token, handed out or queued; the parked work if nobody takes it.
    fn add(&mut self, prefix: &str, work: Work) -> (String, Option<ParkedWork>) {
        self.add_lost(prefix, work, 0)
    }

    /// [`HubState::add`] for work already lost `lost` times.
    fn add_lost(&mut self, prefix: &str, work: Work, lost: u32) -> (String, Option<ParkedWork>) {
        let token = self.new_token(prefix);
        match &work {
            Work::Episode { request, .. } => {
                self.episode_of
                    .insert(request.instance_id.clone(), token.clone());
            }
            Work::Activity {
                instance_id,
                task_id,
                ..
            } => {
                self.activity_of
                    .insert((instance_id.clone(), *task_id), token.clone());
            }
            // An entity has one batch out at a time, so its id finds it as an instance's episode.
            Work::Entity { request, .. } => {
                self.episode_of
                    .insert(request.instance_id.clone(), token.clone());
            }
            Work::Probe { .. } => {}
        }
        if !matches!(work, Work::Probe { .. }) {
            self.of_instance
                .entry(work.instance_id().to_string())
                .or_default()
                .insert(token.clone());
        }
        self.items.insert(
            token.clone(),
            Item {
                work,
                worker: None,
                lost,
            },
        );
        if self.assign(&token) {
            return (token, None);
        }
        self.queue.push_back(token.clone());
        let parked = self.items.get(&token).map(|item| item.work.parked());
        (token, parked)
    }

    /// Removes an item wherever it is.
    fn remove(&mut self, token: &str) -> Option<Item> {
        let item = self.items.remove(token)?;
        match &item.work {
            Work::Episode { .. } | Work::Entity { .. }
                if self
                    .episode_of
                    .get(item.work.instance_id())
                    .map(String::as_str)
                    == Some(token) =>
            {
                self.episode_of.remove(item.work.instance_id());
            }
            Work::Episode { .. } | Work::Entity { .. } => {}
            Work::Activity {
                instance_id,
                task_id,
                ..
            } => {
                let key = (instance_id.clone(), *task_id);
                if self.activity_of.get(&key).map(String::as_str) == Some(token) {
                    self.activity_of.remove(&key);
                }
            }
            Work::Probe { .. } => {}
        }
        if !matches!(item.work, Work::Probe { .. }) {
            let instance_id = item.work.instance_id();
            if let Some(tokens) = self.of_instance.get_mut(instance_id) {
                tokens.remove(token);
                if tokens.is_empty() {
                    self.of_instance.remove(instance_id);
                }
            }
            if item.worker.is_some() {
                self.held -= 1;
            }
        }
        // A queued token stays in `queue` until someone looks (tokens are never reused).
        if let Some(worker) = item.worker.and_then(|id| self.workers.get_mut(&id)) {
            worker.holding.remove(token);
        }
        Some(item)
    }

    /// Puts an item back out under a new token (an activity counts one more delivery); a probe
    /// is dropped instead (whoever waits for it hears it was not answered).
    fn requeue(&mut self, prefix: &str, token: &str) -> Option<ParkedWork> {
        let item = self.remove(token)?;
        let lost = item.lost;
        let work = Self::next_delivery(item.work)?;
        self.add_lost(prefix, work, lost).1
    }

    /// An item whose worker went away: requeued with one more lost delivery, or given up at
    /// `limit`. A probe is dropped.
    fn requeue_lost(&mut self, prefix: &str, token: &str, limit: u32) -> Option<LostDelivery> {
        let item = self.remove(token)?;
        let lost = item.lost.saturating_add(1);
        let work = Self::next_delivery(item.work)?;
        if lost >= limit {
            return Some(LostDelivery::GivenUp(work, lost));
        }
        Some(LostDelivery::Requeued(self.add_lost(prefix, work, lost).1))
    }

    /// The work of an item's next delivery (an activity's attempt counts up); none for a probe.
    fn next_delivery(work: Work) -> Option<Work> {
        let work = match work {
            Work::Probe { .. } => return None,
            Work::Activity {
                name,
                input,
                instance_id,
                execution_id,
                task_id,
                attempt,
            } => Work::Activity {
                name,
                input,
                instance_id,
                execution_id,
                task_id,
                attempt: attempt.saturating_add(1),
            },
            other @ (Work::Episode { .. } | Work::Entity { .. }) => other,
        };
        Some(work)
    }

    /// The token a completion names: as given, or (empty) found by instance and task id.
    fn resolve(&self, token: &str, instance_id: &str, task_id: Option<i32>) -> Option<String> {
        if !token.is_empty() {
            return Some(token.to_string());
        }
        match task_id {
            Some(task_id) => self
                .activity_of
                .get(&(instance_id.to_string(), task_id))
                .cloned(),
            None => self.episode_of.get(instance_id).cloned(),
        }
    }
}

impl RemoteHub {
    pub(crate) fn new(core: Sender<CoreMessage>, max_deliveries: u32) -> Self {
        let token_prefix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(HubState::default()),
                core,
                token_prefix: token_prefix[..12].to_string(),
                max_deliveries: max_deliveries.max(1),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, HubState> {
        // The state is consistent after every method (no method panics half-way), so a poisoned
        // lock still holds a usable state.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the core something changed (workers came or went, work was parked): it publishes
    /// the events after its next commit and looks again at whether time may skip.
    fn tell_core(&self, events: Vec<EngineEvent>) {
        self.on_core(move |core| core.remote_changed(events));
    }

    /// Runs `f` on the core thread (its changes commit with that batch); nobody waits for it.
    pub(crate) fn on_core(&self, f: impl FnOnce(&mut Core) + Send + 'static) {
        let call = core_call(
            move |core| {
                f(core);
                Ok(())
            },
            |_: Result<(), EngineError>| {},
        );
        // A stopped core needs no news.
        let _ = self.shared.core.send(CoreMessage::Call(call));
    }

    /// Registers a worker; queued work it takes is sent to it at once.
    pub fn connect(&self, info: WorkerInfo) -> WorkerConnection {
        let (sender, items) = mpsc::unbounded_channel();
        let peer = info.peer.clone();
        let id = {
            let mut state = self.state();
            state.next_worker += 1;
            let id = state.next_worker;
            state.workers.insert(
                id,
                Worker {
                    info,
                    sender,
                    holding: FastSet::default(),
                    completed: 0,
                    connected_at: Utc::now(),
                },
            );
            let queued: Vec<String> = state.queue.drain(..).collect();
            for token in queued {
                let waiting = state
                    .items
                    .get(&token)
                    .is_some_and(|item| item.worker.is_none());
                if waiting && !state.assign(&token) {
                    state.queue.push_back(token);
                }
            }
            id
        };
        self.tell_core(vec![EngineEvent::WorkerConnected { id, peer }]);
        WorkerConnection {
            id,
            items,
            hub: self.clone(),
        }
    }

    fn disconnect(&self, id: WorkerId) {
        let mut parked = Vec::new();
        let mut given_up = Vec::new();
        let requeued = {
            let mut state = self.state();
            let Some(worker) = state.workers.remove(&id) else {
                return;
            };
            let mut snapshot = HubState::snapshot(id, &worker);
            snapshot.disconnected_at = Some(Utc::now());
            state.gone.push_front(snapshot);
            state.gone.truncate(RECENT_DISCONNECTS);
            let mut held: Vec<String> = worker.holding.into_iter().collect();
            // Redelivered in the order they were first handed out.
            held.sort_by_key(|token| token_number(token));
            let count = held.len();
            for token in held {
                match state.requeue_lost(
                    &self.shared.token_prefix,
                    &token,
                    self.shared.max_deliveries,
                ) {
                    Some(LostDelivery::Requeued(queued)) => parked.extend(queued),
                    Some(LostDelivery::GivenUp(work, lost)) => given_up.push((work, lost)),
                    None => {}
                }
            }
            count - given_up.len()
        };
        let mut events = vec![EngineEvent::WorkerDisconnected { id, requeued }];
        events.extend(parked.into_iter().map(parked_event));
        self.tell_core(events);
        for (work, lost) in given_up {
            self.on_core(move |core| core.remote_delivery_limit(work, lost));
        }
    }

    /// Records an episode's answer (through the core, as a plugin's is recorded); answers once
    /// it is committed. A probe's answer goes to whoever probes, recording nothing.
    pub async fn complete_orchestrator(
        &self,
        token: &str,
        instance_id: &str,
        response: OrchestratorResponse,
    ) -> Result<(), RemoteError> {
        {
            let mut state = self.state();
            let is_probe = state
                .items
                .get(token)
                .is_some_and(|item| matches!(item.work, Work::Probe { .. }));
            if is_probe {
                if let Some(Item {
                    work: Work::Probe { reply, .. },
                    worker,
                    ..
                }) = state.remove(token)
                {
                    if let Some(worker) = worker.and_then(|id| state.workers.get_mut(&id)) {
                        worker.completed += 1;
                    }
                    // A prober that gave up is not the worker's fault.
                    let _ = reply.send(response);
                }
                return Ok(());
            }
        }
        let (token, instance_id) = (token.to_string(), instance_id.to_string());
        self.through_core(move |core| {
            Ok(core.accept_remote_episode(&token, &instance_id, response))
        })
        .await
    }

    /// Records an entity batch's result (through the core); answers once it is committed.
    pub async fn complete_entity(
        &self,
        token: &str,
        instance_id: &str,
        result: durable_sdk::protocol::EntityBatchResult,
    ) -> Result<(), RemoteError> {
        let (token, instance_id) = (token.to_string(), instance_id.to_string());
        self.through_core(move |core| {
            Ok(core.accept_remote_entity_batch(&token, &instance_id, result))
        })
        .await
    }

    /// Records an activity's outcome (through the core); answers once it is committed.
    pub async fn complete_activity(
        &self,
        token: &str,
        instance_id: &str,
        task_id: i32,
        outcome: ActivityOutcome,
    ) -> Result<(), RemoteError> {
        let (token, instance_id) = (token.to_string(), instance_id.to_string());
        self.through_core(move |core| {
            Ok(core.accept_remote_activity(&token, &instance_id, task_id, outcome))
        })
        .await
    }

    /// Records many activities' outcomes in one core call (so in one commit); answers with each
    /// one's fate, in order, once they are committed. An outcome refused (a stale token) changes
    /// nothing, as [`RemoteHub::complete_activity`]'s would; the others are recorded all the same.
    pub async fn complete_activities(
        &self,
        answers: Vec<ActivityAnswer>,
    ) -> Result<Vec<Result<(), RemoteError>>, RemoteError> {
        self.core_answer(move |core| {
            Ok(answers
                .into_iter()
                .map(|answer| {
                    core.accept_remote_activity(
                        &answer.token,
                        &answer.instance_id,
                        answer.task_id,
                        answer.outcome,
                    )
                })
                .collect::<Vec<_>>())
        })
        .await
    }

    async fn through_core(
        &self,
        f: impl FnOnce(&mut Core) -> Result<Result<(), RemoteError>, EngineError> + Send + 'static,
    ) -> Result<(), RemoteError> {
        self.core_answer(f).await?
    }

    /// Runs `f` on the core; its answer once the batch it ran in is committed.
    async fn core_answer<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, RemoteError> {
        let (reply, answer) = oneshot::channel();
        let call = core_call(f, move |result| {
            let _ = reply.send(result);
        });
        self.shared
            .core
            .send(CoreMessage::Call(call))
            .map_err(|_| RemoteError::Engine(EngineError::Stopped))?;
        match answer.await {
            Ok(result) => result.map_err(RemoteError::Engine),
            Err(_) => Err(RemoteError::Engine(EngineError::Stopped)),
        }
    }

    /// Gives a work item back at once: it goes out again under a new token (to any worker that
    /// takes it, this one included).
    pub fn abandon(
        &self,
        token: &str,
        instance_id: &str,
        task_id: Option<i32>,
    ) -> Result<(), RemoteError> {
        let unknown = || RemoteError::UnknownWork {
            token: token.to_string(),
            instance_id: instance_id.to_string(),
            task_id,
        };
        let parked = {
            let mut state = self.state();
            let resolved = state
                .resolve(token, instance_id, task_id)
                .ok_or_else(unknown)?;
            let matches = state.items.get(&resolved).is_some_and(|item| {
                item.work.instance_id() == instance_id
                    && match (&item.work, task_id) {
                        (Work::Activity { task_id: held, .. }, Some(task_id)) => *held == task_id,
                        (Work::Activity { .. }, None) => false,
                        (_, Some(_)) => false,
                        (_, None) => true,
                    }
            });
            if !matches {
                return Err(unknown());
            }
            state.requeue(&self.shared.token_prefix, &resolved)
        };
        self.tell_core(parked.into_iter().map(parked_event).collect());
        Ok(())
    }

    /// Connected workers, then recent disconnects (newest first).
    pub fn workers(&self) -> Vec<WorkerSnapshot> {
        let state = self.state();
        state
            .workers
            .iter()
            .map(|(id, worker)| HubState::snapshot(*id, worker))
            .chain(state.gone.iter().cloned())
            .collect()
    }

    /// Work no connected worker takes, oldest first.
    pub fn parked(&self) -> Vec<ParkedWork> {
        let state = self.state();
        state
            .queue
            .iter()
            .filter_map(|token| state.items.get(token))
            .filter(|item| item.worker.is_none() && !matches!(item.work, Work::Probe { .. }))
            .map(|item| item.work.parked())
            .collect()
    }

    /// A replay probe (stepper, reconnect check): sends an orchestrator item with `probe: true`
    /// to a worker that takes `name` and answers its response; commits nothing.
    pub async fn probe(
        &self,
        name: &str,
        request: OrchestratorRequest,
        deadline: Duration,
    ) -> Result<OrchestratorResponse, RemoteError> {
        self.probe_on(None, name, request, deadline).await
    }

    /// A replay probe answered by worker `worker` alone (the reconnect check asks the code that
    /// just connected, not another worker that may still run the old code).
    pub(crate) async fn probe_worker(
        &self,
        worker: WorkerId,
        name: &str,
        request: OrchestratorRequest,
        deadline: Duration,
    ) -> Result<OrchestratorResponse, RemoteError> {
        self.probe_on(Some(worker), name, request, deadline).await
    }

    async fn probe_on(
        &self,
        only: Option<WorkerId>,
        name: &str,
        mut request: OrchestratorRequest,
        deadline: Duration,
    ) -> Result<OrchestratorResponse, RemoteError> {
        let (reply, answer) = oneshot::channel();
        let past = Arc::new(std::mem::take(&mut request.past_events));
        let token = {
            let mut state = self.state();
            let anyone = state.workers.iter().any(|(id, worker)| {
                only.is_none_or(|only| only == *id)
                    && !worker.sender.is_closed()
                    && accepts(worker.info.filters.as_ref(), WorkKind::Orchestration, name)
            });
            if !anyone {
                return Err(RemoteError::NoWorker(name.to_string()));
            }
            let (token, parked) = state.add(
                &self.shared.token_prefix,
                Work::Probe {
                    name: name.to_string(),
                    request,
                    past,
                    reply,
                    only,
                },
            );
            if parked.is_some() {
                state.remove(&token);
                return Err(RemoteError::NoWorker(name.to_string()));
            }
            token
        };
        let unanswered = |reason: String| RemoteError::ProbeUnanswered {
            name: name.to_string(),
            reason,
        };
        // Polled by hand: the library has tokio's `sync` only, so no `tokio::time` here.
        let timed = wait_with_deadline(answer, deadline).await;
        match timed {
            Some(Ok(response)) => Ok(response),
            Some(Err(_)) => Err(unanswered(
                "the worker disconnected before answering".to_string(),
            )),
            None => {
                self.state().remove(&token);
                Err(unanswered(format!("no answer within {deadline:?}")))
            }
        }
    }

    // ----- the core's side ----------------------------------------------------------------

    /// Hands work out (or queues it); the parked work if no connected worker takes it.
    pub(crate) fn submit(&self, work: Work) -> Option<ParkedWork> {
        self.state().add(&self.shared.token_prefix, work).1
    }

    /// Takes an instance's episode back for its completion.
    pub(crate) fn take_episode(
        &self,
        token: &str,
        instance_id: &str,
    ) -> Result<OrchestratorRequest, RemoteError> {
        let work = self.take_work(token, instance_id, None, |work| {
            matches!(work, Work::Episode { request, .. } if request.instance_id == instance_id)
        })?;
        match work {
            Work::Episode { request, .. } => Ok(request),
            _ => Err(unknown_work(token, instance_id, None)),
        }
    }

    /// Takes an activity back for its completion.
    pub(crate) fn take_activity(
        &self,
        token: &str,
        instance_id: &str,
        task_id: i32,
    ) -> Result<TakenActivity, RemoteError> {
        let work = self.take_work(token, instance_id, Some(task_id), |work| {
            matches!(work, Work::Activity { instance_id: id, task_id: held, .. }
                if id == instance_id && *held == task_id)
        })?;
        match work {
            Work::Activity {
                name, execution_id, ..
            } => Ok(TakenActivity { name, execution_id }),
            _ => Err(unknown_work(token, instance_id, Some(task_id))),
        }
    }

    /// Takes an entity batch back for its completion.
    pub(crate) fn take_entity(
        &self,
        token: &str,
        instance_id: &str,
    ) -> Result<durable_sdk::protocol::EntityBatchRequest, RemoteError> {
        let work = self.take_work(token, instance_id, None, |work| {
            matches!(work, Work::Entity { request, .. } if request.instance_id == instance_id)
        })?;
        match work {
            Work::Entity { request, .. } => Ok(request),
            _ => Err(unknown_work(token, instance_id, None)),
        }
    }

    /// Takes the item `token` names (an empty token: the one outstanding item of the instance,
    /// and task) back for its completion, if it is the work `ours` expects; counts it done for
    /// the worker that held it.
    fn take_work(
        &self,
        token: &str,
        instance_id: &str,
        task_id: Option<i32>,
        ours: impl Fn(&Work) -> bool,
    ) -> Result<Work, RemoteError> {
        let unknown = || unknown_work(token, instance_id, task_id);
        let mut state = self.state();
        let resolved = state
            .resolve(token, instance_id, task_id)
            .ok_or_else(unknown)?;
        if !state
            .items
            .get(&resolved)
            .is_some_and(|item| ours(&item.work))
        {
            return Err(unknown());
        }
        let Some(Item { work, worker, .. }) = state.remove(&resolved) else {
            return Err(unknown());
        };
        if let Some(worker) = worker.and_then(|id| state.workers.get_mut(&id)) {
            worker.completed += 1;
        }
        Ok(work)
    }

    /// Forgets an instance's work (its execution ended): later completions of it are stale.
    pub(crate) fn withdraw_instance(&self, instance_id: &str) {
        let mut state = self.state();
        let tokens = state.of_instance.remove(instance_id).unwrap_or_default();
        for token in tokens {
            state.remove(&token);
        }
    }

    /// Takes an instance's episode back if no worker holds it yet (a terminate for an instance
    /// whose orchestration nobody runs is then done by the host).
    pub(crate) fn withdraw_queued_episode(&self, instance_id: &str) -> bool {
        let mut state = self.state();
        let Some(token) = state.episode_of.get(instance_id).cloned() else {
            return false;
        };
        if state
            .items
            .get(&token)
            .is_some_and(|item| item.worker.is_none())
        {
            state.remove(&token);
            return true;
        }
        false
    }

    /// Forgets all work (the core reloads from the store and submits again).
    pub(crate) fn withdraw_all(&self) {
        let mut state = self.state();
        let tokens: Vec<String> = state
            .items
            .iter()
            .filter(|(_, item)| !matches!(item.work, Work::Probe { .. }))
            .map(|(token, _)| token.clone())
            .collect();
        for token in tokens {
            state.remove(&token);
        }
    }

    /// Whether a worker holds work now (then virtual time waits for it; parked work does not
    /// hold time back).
    pub(crate) fn work_in_hand(&self) -> bool {
        self.state().held > 0
    }

    /// Whether worker `worker` is connected and runs orchestration `name`.
    pub(crate) fn worker_runs(&self, worker: WorkerId, name: &str) -> bool {
        self.state().workers.get(&worker).is_some_and(|worker| {
            !worker.sender.is_closed()
                && accepts(worker.info.filters.as_ref(), WorkKind::Orchestration, name)
        })
    }

    /// Whether any connected worker runs entity `name` (a worker without filters runs every
    /// name).
    pub(crate) fn runs_entity(&self, name: &str) -> bool {
        self.state().workers.values().any(|worker| {
            !worker.sender.is_closed()
                && accepts(worker.info.filters.as_ref(), WorkKind::Entity, name)
        })
    }

    /// Whether any connected worker runs orchestration `name`.
    pub(crate) fn runs_orchestration(&self, name: &str) -> bool {
        self.state().workers.values().any(|worker| {
            !worker.sender.is_closed()
                && accepts(worker.info.filters.as_ref(), WorkKind::Orchestration, name)
        })
    }
}

fn unknown_work(token: &str, instance_id: &str, task_id: Option<i32>) -> RemoteError {
    RemoteError::UnknownWork {
        token: token.to_string(),
        instance_id: instance_id.to_string(),
        task_id,
    }
}

pub(crate) fn parked_event(parked: ParkedWork) -> EngineEvent {
    EngineEvent::WorkParked {
        instance_id: parked.instance_id,
        kind: parked.kind,
        name: parked.name,
    }
}

fn token_number(token: &str) -> u64 {
    token
        .rsplit('-')
        .next()
        .and_then(|number| number.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Waits for `answer` at most `deadline` (wall time) without a timer driver: a helper thread
/// waits out the deadline and closes a second channel. It ends as soon as this wait ends (its
/// `done` sender is dropped with the future), so answered probes leave no thread sleeping.
async fn wait_with_deadline<T: Send + 'static>(
    answer: oneshot::Receiver<T>,
    deadline: Duration,
) -> Option<Result<T, oneshot::error::RecvError>> {
    let (expired_tx, expired) = oneshot::channel::<()>();
    let (_done, done) = std::sync::mpsc::channel::<()>();
    let sleeper = std::thread::Builder::new()
        .name("durable-emu-probe-deadline".into())
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(deadline) {
                let _ = expired_tx.send(());
            }
        });
    if sleeper.is_err() {
        // No thread for the deadline: wait for the answer alone (a worker that disconnects
        // still ends the wait).
        return Some(answer.await);
    }
    let mut answer = std::pin::pin!(answer);
    let mut expired = std::pin::pin!(expired);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(result) = answer.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(result));
        }
        if expired.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Pending
    })
    .await
}
