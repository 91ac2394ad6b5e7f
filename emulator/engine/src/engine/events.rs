//! Engine events: what front ends hear about, as a broadcast stream. Serializable, so
//! `serve --events jsonl` can print them one per line.

use chrono::{DateTime, Utc};
use durable_sdk::history::{HistoryEvent, RuntimeStatus};
use durable_sdk::protocol::NonDeterminism;
use serde::Serialize;
use serde_json::Value;

/// Something that happened in the engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum EngineEvent {
    /// A new instance exists.
    #[serde(rename_all = "camelCase")]
    InstanceCreated {
        /// The instance.
        instance_id: String,
        /// Its orchestration.
        name: String,
        /// Its parent, for sub-orchestrations.
        parent_instance_id: Option<String>,
    },
    /// An instance's status or custom status changed.
    #[serde(rename_all = "camelCase")]
    InstanceChanged {
        /// The instance.
        instance_id: String,
        /// Its status now.
        status: RuntimeStatus,
        /// Its custom status now.
        custom_status: Option<Value>,
    },
    /// The external events an instance's code waits for changed (after an episode, or at its
    /// end): history cannot tell, the plugin reports it with each episode.
    #[serde(rename_all = "camelCase")]
    InstanceAwaits {
        /// The instance.
        instance_id: String,
        /// The event names its code waits for now (empty: none).
        events: Vec<String>,
    },
    /// Events were appended to an execution's history.
    #[serde(rename_all = "camelCase")]
    HistoryAppended {
        /// The instance.
        instance_id: String,
        /// The execution.
        execution_id: String,
        /// Position of the first appended event.
        first_seq: usize,
        /// The events.
        events: Vec<HistoryEvent>,
    },
    /// A worker started an activity.
    #[serde(rename_all = "camelCase")]
    ActivityStarted {
        /// The scheduling instance.
        instance_id: String,
        /// Its `TaskScheduled` id.
        task_id: i32,
        /// Activity name.
        name: String,
    },
    /// An activity finished.
    #[serde(rename_all = "camelCase")]
    ActivityFinished {
        /// The scheduling instance.
        instance_id: String,
        /// Its `TaskScheduled` id.
        task_id: i32,
        /// Activity name.
        name: String,
        /// Whether it failed.
        failed: bool,
    },
    /// A durable timer was scheduled.
    #[serde(rename_all = "camelCase")]
    TimerScheduled {
        /// The instance.
        instance_id: String,
        /// Its `TimerCreated` id.
        timer_id: i32,
        /// When it is due.
        fire_at: DateTime<Utc>,
    },
    /// A durable timer fired.
    #[serde(rename_all = "camelCase")]
    TimerFired {
        /// The instance.
        instance_id: String,
        /// Its `TimerCreated` id.
        timer_id: i32,
    },
    /// Virtual time jumped, fired a timer while playing, or started or stopped playing.
    #[serde(rename_all = "camelCase")]
    ClockMoved {
        /// The new now.
        now: DateTime<Utc>,
        /// Virtual time runs at real speed from `now` on (a front end moves its own copy).
        playing: bool,
    },
    /// Replay of an instance disagreed with its history.
    #[serde(rename_all = "camelCase")]
    NonDeterminism {
        /// The instance.
        instance_id: String,
        /// The structured diff.
        diff: NonDeterminism,
    },
    /// A build of the functions was loaded and is now active.
    #[serde(rename_all = "camelCase")]
    BuildLoaded {
        /// Its number (#1, #2, ...).
        number: u32,
        /// The plugin's build id.
        build_id: String,
        /// Where it came from.
        origin: String,
        /// Its orchestrators.
        orchestrators: Vec<String>,
        /// Its activities.
        activities: Vec<String>,
    },
    /// A build of a crate started (its source changed, or the session started).
    #[serde(rename_all = "camelCase")]
    BuildStarted {
        /// The crate directory or library file.
        target: String,
    },
    /// A build made progress (cargo finished compiling one crate).
    #[serde(rename_all = "camelCase")]
    BuildProgress {
        /// The crate directory.
        target: String,
        /// What happened, e.g. `compiled serde`.
        message: String,
    },
    /// A watched change became the active build.
    #[serde(rename_all = "camelCase")]
    ReloadFinished {
        /// The build now active.
        number: u32,
        /// Milliseconds from the change settling (after debounce) to the build being active,
        /// including any cargo build.
        settled_to_active_ms: f64,
    },
    /// A build or load failed; the previous build stays active.
    #[serde(rename_all = "camelCase")]
    BuildFailed {
        /// The crate directory or library file.
        target: String,
        /// Why, in one line.
        reason: String,
        /// Compiler errors as cargo renders them (empty when the failure was not a compile error).
        errors: Vec<String>,
        /// `file:line:column: message` of the first compiler error that points into the source,
        /// the one to read first.
        #[serde(skip_serializing_if = "Option::is_none")]
        first_error: Option<String>,
    },
    /// A reload check found an instance whose history the new build does not replay; the instance
    /// was suspended and stays on its old build.
    #[serde(rename_all = "camelCase")]
    InstanceDiverged {
        /// The instance.
        instance_id: String,
        /// The build that does not replay it.
        build: u32,
        /// The build it stays on (what `resume` pins it to), if it ran on one.
        pinned_build: Option<u32>,
        /// Why.
        reason: String,
        /// The structured diff, for a nondeterminism.
        diff: Option<NonDeterminism>,
    },
    /// A fault rule fired.
    #[serde(rename_all = "camelCase")]
    FaultFired {
        /// The instance it hit.
        instance_id: String,
        /// The rule's label.
        rule: String,
        /// What it did.
        effect: String,
        /// What it hit.
        target: String,
    },
    /// Something worth a user's attention that is not an error of the engine.
    #[serde(rename_all = "camelCase")]
    Warning {
        /// The instance concerned, if any.
        instance_id: Option<String>,
        /// What happened.
        message: String,
    },
    /// The store refused a batch (disk full, an I/O error): nothing of it was recorded,
    /// dispatched or published, and the engine went back to what the store holds.
    #[serde(rename_all = "camelCase")]
    StoreFailed {
        /// The cause, as the store reported it.
        message: String,
        /// Whether the engine tries again after a pause (else it stopped).
        retrying: bool,
    },
    /// Work that was running when the emulator stopped is being delivered again.
    #[serde(rename_all = "camelCase")]
    Redelivered {
        /// The instance.
        instance_id: String,
        /// What is redelivered, e.g. `activity 'ChargeCard' (#4)` or `orchestrator episode`.
        what: String,
        /// This delivery's number (2 = the first redelivery).
        delivery: u32,
        /// The most deliveries before the call is failed instead.
        max_deliveries: u32,
    },
    /// A remote worker connected (through the sidecar).
    #[serde(rename_all = "camelCase")]
    WorkerConnected {
        /// Its number.
        id: crate::remote::WorkerId,
        /// Its address.
        peer: String,
    },
    /// A remote worker disconnected; what it held went back to the queue.
    #[serde(rename_all = "camelCase")]
    WorkerDisconnected {
        /// Its number.
        id: crate::remote::WorkerId,
        /// Work items it held, now redelivered (or parked).
        requeued: usize,
    },
    /// A reconnect probe found that the connected workers' code replays an instance an earlier
    /// probe had found diverging: it is no longer diverged (it stays suspended until resumed).
    #[serde(rename_all = "camelCase")]
    DivergenceCleared {
        /// The instance.
        instance_id: String,
    },
    /// An entity changed after a commit: its state, queue, lock or operation log.
    #[serde(rename_all = "camelCase")]
    EntityUpdated {
        /// The entity, `@{name}@{key}`.
        instance_id: String,
    },
    /// Work waits because no connected worker takes its name and no loaded plugin has it.
    #[serde(rename_all = "camelCase")]
    WorkParked {
        /// The instance.
        instance_id: String,
        /// An orchestration episode or an activity.
        kind: crate::remote::WorkKind,
        /// The name nobody runs.
        name: String,
    },
}
