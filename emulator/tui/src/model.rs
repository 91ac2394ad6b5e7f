//! The model: everything the UI knows, as plain data. Only `update` changes it; views read it.
//!
//! Memory stays bounded whatever the engine does: one row per instance (counters, not
//! histories), the full history of the selected instance only (and, for the errors view, of its
//! failed children), a ring of log lines and of build events.

use crate::command::Command;
use crate::fault_form::FaultForm;
use crate::input::TextInput;
use crate::logs::LogEntry;
use chrono::{DateTime, Utc};
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::engine::{
    EntityMetadata, EntityOperationOutcome, EntityOperationRecord, EntityRequester,
    ExecutionHistory,
};
use durable_emu_engine::faults::RuleState;
pub use durable_emu_engine::inspect::Tone;
use durable_emu_engine::inspect::errors::ErrorRow;
use durable_emu_engine::inspect::fanout::FanOutGroup;
use durable_emu_engine::inspect::replay::{CallRow, StepResult};
use durable_emu_engine::inspect::rows::{CallCounts, compact_json};
use durable_emu_engine::inspect::timeline::Timeline;
use durable_emu_engine::inspect::waiting::{self, OpenCalls, Wait};
use durable_emu_engine::remote::{ParkedWork, WorkerSnapshot};
use durable_emu_engine::{BuildRecord, Divergence, InstanceRecord, TimerRow};
use durable_sdk::OrchestratorInfo;
use durable_sdk::history::{HistoryEvent, RuntimeStatus};
use durable_sdk::protocol::NonDeterminism;
use ratatui::layout::Rect;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// Build and reload events kept for the builds view.
pub const FEED_CAPACITY: usize = 500;

/// The views, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// Every instance.
    Instances,
    /// The selected instance's history.
    History,
    /// Calls as bars over virtual time.
    Timeline,
    /// `when_all` groups and their progress.
    FanOut,
    /// How a failure travelled up.
    Errors,
    /// Step through a replay; fork.
    Replay,
    /// Virtual time and pending timers.
    Clock,
    /// Builds, reloads and the log stream.
    Builds,
    /// Fault injection rules: add, switch, remove.
    Faults,
    /// Durable entities: their state, operation log, lock and who waits.
    Entities,
}

impl View {
    /// Every view, in Tab order (the tenth is reached with `0`).
    pub const ALL: [View; 10] = [
        View::Instances,
        View::History,
        View::Timeline,
        View::FanOut,
        View::Errors,
        View::Replay,
        View::Clock,
        View::Builds,
        View::Faults,
        View::Entities,
    ];

    /// The tab title.
    pub fn title(self) -> &'static str {
        match self {
            View::Instances => "Instances",
            View::History => "History",
            View::Timeline => "Timeline",
            View::FanOut => "Fan-out",
            View::Errors => "Errors",
            View::Replay => "Replay",
            View::Clock => "Clock",
            View::Builds => "Builds",
            View::Faults => "Faults",
            View::Entities => "Entities",
        }
    }

    /// A shorter title, for a tab bar too narrow for every full one (80 columns).
    pub fn short_title(self) -> &'static str {
        match self {
            View::Instances => "Inst",
            View::History => "Hist",
            View::Timeline => "Time",
            View::Entities => "Ent",
            view => view.title(),
        }
    }

    /// Position in [`View::ALL`].
    pub fn index(self) -> usize {
        View::ALL.iter().position(|view| *view == self).unwrap_or(0)
    }

    /// The digit that jumps to it (`1`-`9`, then `0` for the tenth), as its tab shows it.
    pub fn digit(self) -> char {
        char::from(b'0' + ((self.index() + 1) % 10) as u8)
    }

    /// The view a digit key jumps to.
    pub fn of_digit(digit: char) -> Option<View> {
        let value = digit.to_digit(10)? as usize;
        View::ALL.get((value + 9) % 10).copied()
    }

    /// Parses a view name (`:view timeline`).
    pub fn parse(text: &str) -> Option<View> {
        let text = text.to_ascii_lowercase();
        View::ALL.into_iter().find(|view| {
            let title = view.title().to_ascii_lowercase().replace('-', "");
            title == text.replace('-', "") || (text.len() >= 2 && title.starts_with(&text))
        })
    }
}

/// How the instance list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Newest first.
    Created,
    /// By orchestration name.
    Name,
    /// By status (running first), then newest.
    Status,
    /// Most recently changed first.
    Updated,
}

impl SortKey {
    /// The next key (`s` cycles).
    pub fn next(self) -> Self {
        match self {
            SortKey::Created => SortKey::Name,
            SortKey::Name => SortKey::Status,
            SortKey::Status => SortKey::Updated,
            SortKey::Updated => SortKey::Created,
        }
    }

    /// Its name.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Created => "created",
            SortKey::Name => "name",
            SortKey::Status => "status",
            SortKey::Updated => "updated",
        }
    }

    /// Parses a name (`:sort name`).
    pub fn parse(text: &str) -> Option<Self> {
        [
            SortKey::Created,
            SortKey::Name,
            SortKey::Status,
            SortKey::Updated,
        ]
        .into_iter()
        .find(|key| key.label().starts_with(&text.to_ascii_lowercase()) && !text.is_empty())
    }
}

/// What the UI knows about one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRow {
    /// Instance id.
    pub id: String,
    /// Orchestration name.
    pub name: String,
    /// Status.
    pub status: RuntimeStatus,
    /// Last custom status.
    pub custom_status: Option<Value>,
    /// Created (virtual time).
    pub created_at: Option<DateTime<Utc>>,
    /// Last change (virtual time).
    pub updated_at: Option<DateTime<Utc>>,
    /// Parent instance, for sub-orchestrations.
    pub parent: Option<String>,
    /// Build it runs on.
    pub build: Option<u32>,
    /// Events in its current execution.
    pub history_len: usize,
    /// The current execution's calls, counted from its history: `None` until they are known (a
    /// row read from the store, or one whose live events skipped part of the history, such as
    /// an imported fork); the instances view then loads them (`Command::LoadCounts`).
    pub calls: Option<CallCounts>,
    /// Kept on its build by the user after a reload it did not replay on.
    pub pinned: bool,
    /// Why the active build does not replay it (a reload check suspended it), with the diff.
    pub divergence: Option<Divergence>,
    /// The current execution's open timers and calls, known and unknown together with `calls`.
    pub open: Option<OpenCalls>,
    /// The external events its code waits for, as the engine last said.
    pub awaited_events: Vec<String>,
    /// Start order: higher was started later. Breaks ties in created time (a paused virtual
    /// clock creates many instances at one time); see [`Instances::next_start`].
    pub start_seq: u64,
}

impl InstanceRow {
    /// Suspended by a reload check and not yet resumed, restarted or terminated: shown as
    /// `Diverged` (the wire status stays `Suspended`; the protocol has no such status).
    pub fn is_diverged(&self) -> bool {
        self.status == RuntimeStatus::Suspended && self.divergence.is_some()
    }

    /// The status as the UI shows it: `Diverged`, or the runtime status.
    pub fn status_label(&self) -> &'static str {
        if self.is_diverged() {
            DIVERGED
        } else {
            self.status.as_str()
        }
    }

    /// The build an instance is pinned to, when that is not the active build (the list marks
    /// it: its code is not what the user sees in the editor).
    pub fn pinned_to_older(&self, active: Option<u32>) -> Option<u32> {
        self.build
            .filter(|build| (self.pinned || self.is_diverged()) && Some(*build) != active)
    }

    /// A row from a stored record.
    pub fn from_record(record: &InstanceRecord) -> Self {
        Self {
            id: record.instance_id.clone(),
            name: record.name.clone(),
            status: record.status,
            custom_status: record.custom_status.clone(),
            created_at: Some(record.created_at),
            updated_at: Some(record.updated_at),
            parent: record
                .parent
                .as_ref()
                .map(|parent| parent.instance_id.clone()),
            build: record.build,
            history_len: record.history_len,
            calls: None,
            pinned: record.pinned,
            divergence: record.divergence.clone(),
            open: None,
            awaited_events: record.awaited_events.clone(),
            start_seq: 0,
        }
    }

    /// What it waits for: nothing once ended; the events alone while its open calls are unknown.
    pub fn waits(&self) -> Vec<Wait> {
        if self.status.is_terminal() {
            return Vec::new();
        }
        let unknown = OpenCalls::default();
        waiting::waits(&self.awaited_events, self.open.as_ref().unwrap_or(&unknown))
    }

    /// `done/total` from a custom status shaped like `{"done": k, "total": n}`, else from the
    /// calls seen completing.
    pub fn progress(&self) -> Option<(u64, u64)> {
        if let Some(Value::Object(status)) = &self.custom_status {
            if let (Some(done), Some(total)) = (
                status.get("done").and_then(Value::as_u64),
                status.get("total").and_then(Value::as_u64),
            ) {
                return Some((done, total));
            }
        }
        self.calls.filter(|calls| calls.scheduled > 0).map(|calls| {
            (
                u64::from(calls.done().min(calls.scheduled)),
                u64::from(calls.scheduled),
            )
        })
    }
}

/// The display status of an instance a reload check suspended.
pub const DIVERGED: &str = "Diverged";

/// The instance list: rows, and the filtered, sorted, tree-ordered list the view shows.
#[derive(Debug, Clone, Default)]
pub struct Instances {
    /// Every instance, by id.
    pub rows: HashMap<String, InstanceRow>,
    /// What the list shows, in order: id and tree depth (sub-orchestrations under parents).
    pub visible: Vec<(String, u8)>,
    /// The tree glyphs before each row of `visible` (`├ `, `└ `, `│ `; empty for a root).
    pub branches: Vec<String>,
    /// The filter (name, status or id; case-insensitive substring).
    pub filter: String,
    /// The filter as it was when `/` opened the filter line (Esc puts it back).
    pub filter_before: Option<String>,
    /// The order.
    pub sort: Option<SortKey>,
    /// Selected position in `visible`.
    pub selected: usize,
    /// First visible position.
    pub offset: usize,
    /// Instances whose call counts were asked for and not yet answered (or could not be read).
    pub counting: HashSet<String>,
    /// The selected instance (kept across re-sorting).
    pub selected_id: Option<String>,
    /// An instance to select once its row exists: the answer to a start can arrive before the
    /// event that creates its row (they travel on different threads).
    pub wanted: Option<String>,
    /// `visible` must be rebuilt.
    pub dirty: bool,
    /// The start order the next instance created gets.
    pub next_start: u64,
}

impl Instances {
    /// The sort key in force.
    pub fn sort_key(&self) -> SortKey {
        self.sort.unwrap_or(SortKey::Created)
    }

    /// Replaces every row with `records` as the engine lists them: newest first, and of those
    /// created at the same time the last started first (the store's order, so right after a
    /// restart too), which numbers their start order. `keep` may carry over what the UI knew of
    /// a row (its old version, if any) into the new one.
    pub fn replace_rows(
        &mut self,
        records: Vec<InstanceRecord>,
        mut keep: impl FnMut(&mut InstanceRow, Option<&InstanceRow>),
    ) {
        let old = std::mem::take(&mut self.rows);
        let count = records.len() as u64;
        for (position, record) in records.into_iter().enumerate() {
            let mut row = InstanceRow::from_record(&record);
            row.start_seq = count - position as u64;
            let previous = old.get(&row.id);
            keep(&mut row, previous);
            self.rows.insert(row.id.clone(), row);
        }
        self.next_start = count + 1;
        self.dirty = true;
    }

    /// The start order for an instance just created (after every row known).
    pub fn next_start(&mut self) -> u64 {
        let seq = self.next_start.max(1);
        self.next_start = seq + 1;
        seq
    }

    /// Rebuilds `visible` and keeps the selected instance selected.
    pub fn rebuild(&mut self) {
        let filter = self.filter.to_ascii_lowercase();
        let matches = |row: &InstanceRow| {
            filter.is_empty()
                || row.name.to_ascii_lowercase().contains(&filter)
                || row.status.as_str().to_ascii_lowercase().contains(&filter)
                || row.id.to_ascii_lowercase().contains(&filter)
        };
        let sort = self.sort_key();
        let order = |a: &&InstanceRow, b: &&InstanceRow| {
            let newest = b
                .created_at
                .cmp(&a.created_at)
                .then_with(|| b.start_seq.cmp(&a.start_seq))
                .then_with(|| a.id.cmp(&b.id));
            match sort {
                SortKey::Created => newest,
                SortKey::Name => a.name.cmp(&b.name).then(newest),
                SortKey::Status => status_rank(a.status)
                    .cmp(&status_rank(b.status))
                    .then(newest),
                SortKey::Updated => b.updated_at.cmp(&a.updated_at).then(newest),
            }
        };
        let mut children: HashMap<&str, Vec<&InstanceRow>> = HashMap::new();
        let mut roots: Vec<&InstanceRow> = Vec::new();
        for row in self.rows.values() {
            match row
                .parent
                .as_deref()
                .filter(|parent| self.rows.contains_key(*parent))
            {
                Some(parent) if filter.is_empty() => children.entry(parent).or_default().push(row),
                _ => {
                    if matches(row) {
                        roots.push(row);
                    }
                }
            }
        }
        roots.sort_by(order);
        for list in children.values_mut() {
            list.sort_by(|a, b| {
                a.created_at
                    .cmp(&b.created_at)
                    .then_with(|| a.start_seq.cmp(&b.start_seq))
                    .then_with(|| a.id.cmp(&b.id))
            });
        }
        let mut visible = Vec::with_capacity(self.rows.len());
        let mut stack: Vec<(&InstanceRow, u8)> =
            roots.into_iter().rev().map(|row| (row, 0)).collect();
        while let Some((row, depth)) = stack.pop() {
            visible.push((row.id.clone(), depth));
            if let Some(list) = children.get(row.id.as_str()) {
                stack.extend(
                    list.iter()
                        .rev()
                        .map(|child| (*child, depth.saturating_add(1))),
                );
            }
        }
        let depths: Vec<u8> = visible.iter().map(|(_, depth)| *depth).collect();
        self.branches = crate::tree::prefixes(&depths);
        self.visible = visible;
        self.dirty = false;
        if let Some(wanted) = self.wanted.take() {
            if self.visible.iter().any(|(visible, _)| *visible == wanted) {
                self.selected_id = Some(wanted);
            } else {
                self.wanted = Some(wanted);
            }
        }
        self.selected = self
            .selected_id
            .as_ref()
            .and_then(|id| self.visible.iter().position(|(visible, _)| visible == id))
            .unwrap_or_else(|| self.selected.min(self.visible.len().saturating_sub(1)));
        self.selected_id = self.visible.get(self.selected).map(|(id, _)| id.clone());
    }

    /// The selected row.
    pub fn selected_row(&self) -> Option<&InstanceRow> {
        self.selected_id.as_ref().and_then(|id| self.rows.get(id))
    }
}

fn status_rank(status: RuntimeStatus) -> u8 {
    match status {
        RuntimeStatus::Running => 0,
        RuntimeStatus::Pending => 1,
        RuntimeStatus::Suspended => 2,
        RuntimeStatus::ContinuedAsNew => 3,
        RuntimeStatus::Failed => 4,
        RuntimeStatus::Terminated => 5,
        RuntimeStatus::Canceled => 6,
        RuntimeStatus::Completed => 7,
    }
}

/// The selected instance's history.
#[derive(Debug, Clone)]
pub struct HistoryState {
    /// The instance.
    pub instance_id: String,
    /// Its executions, oldest first (empty while loading).
    pub executions: Vec<ExecutionHistory>,
    /// The execution shown.
    pub execution: usize,
    /// Selected event.
    pub selected: usize,
    /// First visible event.
    pub offset: usize,
    /// Keep the last event selected as events arrive.
    pub follow: bool,
    /// A load is under way.
    pub loading: bool,
    /// Bumped on every change, so derived views know when to recompute.
    pub revision: u64,
    /// Per execution: the name of each call (for answer rows).
    pub names: Vec<CallNames>,
    /// Events that arrived while loading: (execution, first seq, events).
    pub held: Vec<(String, usize, Vec<HistoryEvent>)>,
}

impl HistoryState {
    /// An empty history waiting for its load.
    pub fn loading(instance_id: String) -> Self {
        Self {
            instance_id,
            executions: Vec::new(),
            execution: 0,
            selected: 0,
            offset: 0,
            follow: true,
            loading: true,
            revision: 0,
            names: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Sets the executions (a load), keeping the position when it is the same instance.
    pub fn set_executions(&mut self, executions: Vec<ExecutionHistory>) {
        let was_at_end = self.follow || self.executions.is_empty();
        let showing_last = self.execution + 1 >= self.executions.len();
        self.names = executions
            .iter()
            .map(|execution| call_names(&execution.events))
            .collect();
        self.executions = executions;
        if showing_last || self.execution >= self.executions.len() {
            self.execution = self.executions.len().saturating_sub(1);
        }
        let len = self.events().len();
        if was_at_end {
            self.selected = len.saturating_sub(1);
        } else {
            self.selected = self.selected.min(len.saturating_sub(1));
        }
        self.loading = false;
        self.revision += 1;
    }

    /// Appends live events to an execution; false if they do not line up (reload instead).
    pub fn append(
        &mut self,
        execution_id: &str,
        first_seq: usize,
        events: &[HistoryEvent],
    ) -> bool {
        let Some(position) = self
            .executions
            .iter()
            .position(|execution| execution.execution.execution_id == execution_id)
        else {
            return false;
        };
        let execution = &mut self.executions[position];
        if execution.events.len() != first_seq {
            return execution.events.len() >= first_seq + events.len();
        }
        execution.events.extend_from_slice(events);
        execution
            .builds
            .extend(std::iter::repeat_n(None, events.len()));
        if let Some(names) = self.names.get_mut(position) {
            for event in events {
                names.record(event);
            }
        }
        if self.follow && position == self.execution {
            self.selected = execution.events.len().saturating_sub(1);
        }
        self.revision += 1;
        true
    }

    /// The events of the execution shown.
    pub fn events(&self) -> &[HistoryEvent] {
        self.executions
            .get(self.execution)
            .map_or(&[], |execution| execution.events.as_slice())
    }

    /// The execution shown.
    pub fn current(&self) -> Option<&ExecutionHistory> {
        self.executions.get(self.execution)
    }

    /// The names of the calls of the execution shown (empty while none is).
    pub fn call_names(&self) -> &CallNames {
        static NONE: std::sync::LazyLock<CallNames> = std::sync::LazyLock::new(CallNames::default);
        self.names.get(self.execution).unwrap_or(&NONE)
    }
}

/// The name of every call of an execution (shared with every view that names an answer's call).
pub use durable_emu_engine::inspect::rows::CallNames;

/// The names of every call in `events`.
pub fn call_names(events: &[HistoryEvent]) -> CallNames {
    CallNames::of(events)
}

/// Derived views of the selected history, recomputed when it changes.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    /// (view, instance, execution index, history revision, children revision) it was made from.
    pub source: Option<(View, String, usize, u64, u64)>,
    /// Timeline bars.
    pub timeline: Timeline,
    /// `when_all` groups.
    pub fanout: Vec<FanOutGroup>,
    /// The errors tree.
    pub errors: Vec<ErrorRow>,
}

/// The replay stepper.
#[derive(Debug, Clone)]
pub struct Stepper {
    /// The instance.
    pub instance_id: String,
    /// The execution stepped through.
    pub execution_id: String,
    /// Its history, as it was when the stepper opened.
    pub events: Arc<Vec<HistoryEvent>>,
    /// Events replayed so far (0..=len).
    pub step: usize,
    /// Token of the newest request.
    pub token: u64,
    /// The plugin's answer for `result.step`, or why there is none.
    pub result: Option<Result<StepResult, String>>,
    /// Durable calls in the prefix.
    pub calls: Vec<CallRow>,
    /// Durable calls of the whole history (the prefix's are cut from these at each step).
    pub all_calls: Vec<CallRow>,
    /// Call names, for the history column.
    pub names: CallNames,
    /// First visible history row on the left.
    pub offset: usize,
    /// The build that recorded the instance (what steps replay with).
    pub build: Option<u32>,
    /// Events the instance's history has beyond `events` (live events arrived after it opened,
    /// or a new execution began): the view says so and `F` reloads.
    pub grown: bool,
    /// For a diverged instance: its whole history replayed on the active build, which is where
    /// the divergence shows (stepping on its own build looks healthy).
    pub on_active: Option<ActiveReplay>,
}

/// The replay of a diverged instance's history on the active build.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveReplay {
    /// The active build, when known.
    pub build: Option<u32>,
    /// Token of the request.
    pub token: u64,
    /// `None` while it runs; then the nondeterminism found (`Ok(None)`: it replays cleanly), or
    /// why the plugin could not replay.
    pub result: Option<Result<Option<NonDeterminism>, String>>,
}

/// The choices offered on a `Diverged` instance.
#[derive(Debug, Clone, PartialEq)]
pub struct DivergedChoice {
    /// The instance.
    pub instance_id: String,
    /// Its orchestration.
    pub name: String,
    /// The build it stays on (resume pins it there).
    pub pinned_build: Option<u32>,
    /// The build it does not replay on (restart runs it there).
    pub new_build: u32,
    /// Why it diverged.
    pub reason: String,
}

/// The virtual clock and its timers.
#[derive(Debug, Clone, Default)]
pub struct ClockState {
    /// Real or virtual.
    pub kind: ClockKind,
    /// Now as the UI shows it: the engine's as last heard, plus the real time since while the
    /// clock runs (see [`ClockState::runs`]).
    pub now: Option<DateTime<Utc>>,
    /// Auto-skip.
    pub auto_skip: bool,
    /// Virtual time runs at real speed between jumps (as last heard, or as just asked).
    pub playing: bool,
    /// Where an advance under way is taking virtual time, as last loaded.
    pub advancing_to: Option<DateTime<Utc>>,
    /// What a running `now` runs on from: a time, and the real instant it was first seen at
    /// (`None` until the event loop next reads the real clock, [`ClockState::real_time`]).
    anchor: Option<(DateTime<Utc>, Option<Instant>)>,
    /// Pending timers, soonest first.
    pub timers: Vec<TimerRow>,
    /// Selected timer.
    pub selected: usize,
    /// First visible timer.
    pub offset: usize,
}

impl ClockState {
    /// Whether `now` moves by itself: a playing virtual clock, or the real one.
    pub fn runs(&self) -> bool {
        self.playing || self.kind == ClockKind::Real
    }

    /// The engine said what time it is and whether it plays (an event, or a snapshot loaded).
    pub fn heard(&mut self, now: DateTime<Utc>, playing: bool) {
        self.playing = playing;
        // What the engine says travelled a moment; a running copy may be ahead of it, and the
        // engine's time never goes back, so neither does the copy. A stopped clock is exact.
        let now = match self.now {
            Some(shown) if self.runs() => shown.max(now),
            _ => now,
        };
        self.now = Some(now);
        self.anchor = Some((now, None));
    }

    /// The user asked to play or pause: shown at once, from the time shown (the engine's answer
    /// corrects it).
    pub fn set_playing(&mut self, playing: bool) {
        self.playing = playing;
        self.anchor = self.now.map(|now| (now, None));
    }

    /// The event loop read the real clock (`at`), before a frame: a running clock's `now`
    /// moves by the real time since its anchor was first seen.
    pub fn real_time(&mut self, at: Instant) {
        let runs = self.runs();
        let Some((base, since)) = &mut self.anchor else {
            return;
        };
        let since = *since.get_or_insert(at);
        if !runs {
            return;
        }
        let ran = chrono::Duration::from_std(at.saturating_duration_since(since))
            .ok()
            .and_then(|elapsed| base.checked_add_signed(elapsed));
        if let Some(ran) = ran {
            self.now = Some(self.now.map_or(ran, |shown| shown.max(ran)));
        }
    }
}

/// One line of the builds view's event feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLine {
    /// How to show it.
    pub tone: Tone,
    /// The text.
    pub text: String,
}

/// Builds, the build/reload feed and the log ring.
#[derive(Debug, Clone, Default)]
pub struct BuildsState {
    /// Every build recorded.
    pub builds: Vec<BuildRecord>,
    /// The active build.
    pub active: Option<u32>,
    /// Build, reload and warning events, newest last.
    pub feed: VecDeque<FeedLine>,
    /// Log lines, newest last.
    pub logs: VecDeque<LogEntry>,
    /// Lines scrolled back from the newest log line (0: follow).
    pub logs_back: usize,
    /// The compiler output of the last build that failed to compile (its first located error
    /// on top); empty once another build starts.
    pub compiler_output: Vec<String>,
}

/// The code a divergence was found with, in words: a build, or (for instances remote workers
/// run, probed when a worker connected) the connected workers' code.
pub fn code_label(build: u32) -> String {
    if build == durable_emu_engine::REMOTE_CODE {
        "the connected worker's code".to_string()
    } else {
        format!("build #{build}")
    }
}

/// Remote workers (the official SDKs' workers, through the gRPC sidecar) and the work no
/// executor takes, as the engine's hub last listed them.
#[derive(Debug, Clone, Default)]
pub struct WorkersState {
    /// Where the sidecar listens, or why it does not (one line).
    pub sidecar: String,
    /// Connected workers, and recent disconnects.
    pub workers: Vec<WorkerSnapshot>,
    /// Work waiting for a worker that takes its name.
    pub parked: Vec<ParkedWork>,
}

impl WorkersState {
    /// What an instance waits for because no executor runs it, if anything.
    pub fn parked_for(&self, instance_id: &str) -> Option<&ParkedWork> {
        self.parked
            .iter()
            .find(|parked| parked.instance_id == instance_id)
    }

    /// Workers still connected.
    pub fn connected(&self) -> usize {
        self.workers
            .iter()
            .filter(|worker| worker.disconnected_at.is_none())
            .count()
    }
}

/// The fault rules, as the engine last listed them.
#[derive(Debug, Clone, Default)]
pub struct FaultsState {
    /// Every rule, in the order they are consulted.
    pub rules: Vec<RuleState>,
    /// Selected rule.
    pub selected: usize,
    /// First visible rule.
    pub offset: usize,
    /// A list has been received at least once.
    pub loaded: bool,
}

impl FaultsState {
    /// The selected rule.
    pub fn selected_rule(&self) -> Option<&RuleState> {
        self.rules.get(self.selected)
    }
}

/// Durable entities: the list, and the selected entity's state and operation log.
#[derive(Debug, Clone, Default)]
pub struct EntitiesState {
    /// Every entity, ordered by id (with its state, for the preview column).
    pub list: Vec<EntityMetadata>,
    /// Selected position in `list`.
    pub selected: usize,
    /// First visible row.
    pub offset: usize,
    /// A list has been received at least once.
    pub loaded: bool,
    /// The selected entity in full, once loaded.
    pub detail: Option<EntityDetail>,
}

impl EntitiesState {
    /// The selected entity's id.
    pub fn selected_id(&self) -> Option<&str> {
        self.list
            .get(self.selected)
            .map(|entity| entity.instance_id.as_str())
    }

    /// The detail of the selected entity, if that is the one loaded.
    pub fn selected_detail(&self) -> Option<&EntityDetail> {
        let id = self.selected_id()?;
        self.detail
            .as_ref()
            .filter(|detail| detail.instance_id == id)
    }
}

/// One entity in full: its record (with state) and its operation log.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityDetail {
    /// The entity id.
    pub instance_id: String,
    /// Its record; `None`: it does not exist (any more).
    pub metadata: Option<EntityMetadata>,
    /// Its operation log, oldest first (the last [`ENTITY_LOG_LIMIT`] entries).
    pub operations: Vec<EntityOperationRecord>,
}

/// Who sent an operation, in a few words.
pub fn requester_text(requester: &EntityRequester) -> String {
    match requester {
        EntityRequester::Client => "client".to_string(),
        EntityRequester::Orchestration { instance_id, .. } => instance_id.clone(),
        EntityRequester::Entity { instance_id } => instance_id.clone(),
    }
}

/// An entity in full, for the text overlay: its lock, its state as pretty JSON, then every
/// operation of its log with its input, result or failure, and fault.
pub fn entity_in_full(detail: &EntityDetail) -> Vec<String> {
    let mut lines = Vec::new();
    let Some(metadata) = &detail.metadata else {
        lines.push("this entity does not exist (any more)".to_string());
        return lines;
    };
    lines.push(format!(
        "last modified {} · backlog {}",
        metadata.last_modified.format("%Y-%m-%d %H:%M:%S"),
        metadata.backlog
    ));
    lines.push(lock_text(metadata));
    lines.push(String::new());
    lines.push("state:".to_string());
    match &metadata.state {
        Some(state) => lines.extend(
            serde_json::to_string_pretty(state)
                .unwrap_or_default()
                .lines()
                .map(|line| format!("  {line}")),
        ),
        None => lines.push("  (none)".to_string()),
    }
    lines.push(String::new());
    lines.push(format!("operation log ({}):", detail.operations.len()));
    for record in &detail.operations {
        let kind = if record.awaits_answer {
            "call"
        } else {
            "signal"
        };
        lines.push(format!(
            "  #{} {} {kind} {} {} from {}",
            record.seq,
            record.at.format("%Y-%m-%d %H:%M:%S"),
            record.operation,
            compact_json(&record.input, 200),
            requester_text(&record.requester)
        ));
        match &record.outcome {
            EntityOperationOutcome::Completed { result } => {
                lines.push(format!("      → {}", compact_json(result, 200)));
            }
            EntityOperationOutcome::Failed { failure } => {
                lines.push(format!("      ✗ {failure} (state rolled back)"));
            }
        }
        if let Some(fault) = &record.fault {
            lines.push(format!("      ⚡ {fault}"));
        }
    }
    lines
}

/// `locked by transfer-1 · waiting: transfer-2`, or `not locked`.
pub fn lock_text(metadata: &EntityMetadata) -> String {
    let mut text = match &metadata.locked_by {
        Some(holder) => format!("locked by {holder}"),
        None => "not locked".to_string(),
    };
    if !metadata.lock_waiters.is_empty() {
        text.push_str(&format!(" · waiting: {}", metadata.lock_waiters.join(", ")));
    }
    text
}

/// How many of an entity's latest operations the UI loads.
pub const ENTITY_LOG_LIMIT: usize = 200;

/// A modal layer over the current view.
#[derive(Debug, Clone)]
pub enum Overlay {
    /// Every key of the current view, scrolled.
    Help {
        /// First visible line.
        scroll: usize,
    },
    /// Editing the instance filter (applied as typed).
    Filter(TextInput),
    /// The `:` command line.
    Command(TextInput),
    /// A destructive action waiting for `y`.
    Confirm {
        /// The question.
        prompt: String,
        /// What `y` does.
        command: Command,
    },
    /// Long text, wrapped at the box's width and scrolled: an event's JSON, a failure in full,
    /// compiler output. Anything too long for its row opens here.
    Text {
        /// Title.
        title: String,
        /// The text's lines, unwrapped (the box wraps them at its width: `textbox::wrap`).
        lines: Vec<String>,
        /// First visible row, counted in wrapped rows.
        scroll: usize,
    },
    /// Start an orchestration.
    Start(StartForm),
    /// Fork with an edited completion.
    Fork(ForkForm),
    /// Add a fault rule.
    Fault(Box<FaultForm>),
    /// What to do with a `Diverged` instance: resume pinned, restart on the new build, terminate.
    Diverged(DivergedChoice),
    /// Raise an event on an instance.
    Raise(RaiseForm),
}

/// Where the raise form's keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaiseField {
    /// The events the instance waits for (j/k pick one into the name).
    Waiting,
    /// The event name, typed.
    Name,
    /// The payload (JSON).
    Payload,
}

/// The raise form: the events the instance waits for to pick from, a name and a JSON payload.
#[derive(Debug, Clone)]
pub struct RaiseForm {
    /// The instance.
    pub instance_id: String,
    /// Its orchestration name, for the title.
    pub orchestration: String,
    /// The events it waits for.
    pub awaited: Vec<String>,
    /// Picked position in `awaited`.
    pub selected: usize,
    /// The event name.
    pub name: TextInput,
    /// The payload; empty means null.
    pub payload: TextInput,
    /// The focused field.
    pub field: RaiseField,
}

impl RaiseForm {
    /// The form for `row`: the first awaited event picked (and focused), else the name field.
    pub fn new(row: &InstanceRow) -> Self {
        let awaited = if row.status.is_terminal() {
            Vec::new()
        } else {
            row.awaited_events.clone()
        };
        let name = awaited.first().cloned().unwrap_or_default();
        Self {
            instance_id: row.id.clone(),
            orchestration: row.name.clone(),
            field: if awaited.is_empty() {
                RaiseField::Name
            } else {
                RaiseField::Waiting
            },
            awaited,
            selected: 0,
            name: TextInput::new(name),
            payload: TextInput::default(),
        }
    }

    /// Picks the awaited event at `index` into the name.
    pub fn pick(&mut self, index: usize) {
        if let Some(name) = self.awaited.get(index) {
            self.selected = index;
            self.name = TextInput::new(name.clone());
        }
    }

    /// The next field (Tab), or the previous; the list only when there is one.
    pub fn focus_next(&mut self, forward: bool) {
        let mut fields = vec![RaiseField::Name, RaiseField::Payload];
        if !self.awaited.is_empty() {
            fields.insert(0, RaiseField::Waiting);
        }
        let at = fields
            .iter()
            .position(|field| *field == self.field)
            .unwrap_or(0);
        let count = fields.len();
        self.field = fields[if forward {
            (at + 1) % count
        } else {
            (at + count - 1) % count
        }];
    }

    /// The payload as JSON (empty: null), or why it is not.
    pub fn parsed_payload(&self) -> Result<Value, String> {
        let text = self.payload.text().trim();
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(text).map_err(|error| format!("the payload is not JSON: {error}"))
    }
}

/// What raising `name` on `row` leads to when nothing waits for it: the warning the status line
/// shows (the event is still raised, and buffered until a wait takes it). Names compare
/// case-insensitively, as the orchestration compares them. `None` when a wait takes it, or the
/// instance has ended (the engine answers that).
pub fn raise_warning(row: &InstanceRow, name: &str) -> Option<String> {
    if row.status.is_terminal()
        || row
            .awaited_events
            .iter()
            .any(|awaited| awaited.to_lowercase() == name.to_lowercase())
    {
        return None;
    }
    let waits = if row.awaited_events.is_empty() {
        "no event".to_string()
    } else {
        row.awaited_events
            .iter()
            .map(|awaited| format!("'{awaited}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(format!("buffered; the instance waits for {waits}"))
}

/// The start form: a name from the manifest and a JSON input, validated as typed.
#[derive(Debug, Clone)]
pub struct StartForm {
    /// Orchestrator names.
    pub names: Vec<String>,
    /// Per name: what the input starts as when the name is selected (the last input started with
    /// it in this session, else the example its registration declares, else empty).
    pub prefills: Vec<String>,
    /// Per name: its registration's one-line description, if any.
    pub descriptions: Vec<Option<String>>,
    /// Selected name.
    pub selected: usize,
    /// The input.
    pub input: TextInput,
    /// Keys go to the input (else to the name list).
    pub editing_input: bool,
}

impl StartForm {
    /// The form over `names`, with the first selected and its input pre-filled.
    pub fn new(
        names: &[String],
        info: &BTreeMap<String, OrchestratorInfo>,
        last_inputs: &HashMap<String, String>,
    ) -> Self {
        let prefills = names
            .iter()
            .map(|name| match last_inputs.get(name) {
                Some(last) => last.clone(),
                None => info
                    .get(name)
                    .and_then(|info| info.example.as_ref())
                    .map_or_else(String::new, Value::to_string),
            })
            .collect();
        let descriptions = names
            .iter()
            .map(|name| info.get(name).and_then(|info| info.description.clone()))
            .collect();
        let mut form = Self {
            names: names.to_vec(),
            prefills,
            descriptions,
            selected: 0,
            input: TextInput::default(),
            editing_input: false,
        };
        form.select(0);
        form
    }

    /// Selects name `index` and replaces the input with its prefill (the input is only edited
    /// after choosing a name, so nothing typed is lost).
    pub fn select(&mut self, index: usize) {
        self.selected = index;
        let prefill = self.prefills.get(index).cloned().unwrap_or_default();
        self.input = TextInput::new(prefill);
    }

    /// The selected name's description.
    pub fn description(&self) -> Option<&str> {
        self.descriptions.get(self.selected)?.as_deref()
    }

    /// The input, parsed, or why it is not JSON.
    pub fn parsed_input(&self) -> Result<Value, String> {
        let text = self.input.text().trim();
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))
    }
}

/// The fork form: the completion to edit and what it becomes.
#[derive(Debug, Clone)]
pub struct ForkForm {
    /// Index of the completion edited.
    pub target: usize,
    /// What it was, for people.
    pub target_text: String,
    /// Make it a failure (else a result).
    pub fail: bool,
    /// Whether a failure is offered (an event completion has no failure form).
    pub can_fail: bool,
    /// The result (JSON).
    pub result: TextInput,
    /// The failure's error type.
    pub error_type: TextInput,
    /// The failure's message.
    pub message: TextInput,
    /// Focused field: 0 the result/failure toggle (only when `can_fail`), 1 result / error type,
    /// 2 message.
    pub field: usize,
}

impl ForkForm {
    /// The fields Tab visits, in order.
    pub fn fields(&self) -> &'static [usize] {
        match (self.can_fail, self.fail) {
            (false, _) => &[1],
            (true, false) => &[0, 1],
            (true, true) => &[0, 1, 2],
        }
    }

    /// Moves the focus to the next field (or the previous one).
    pub fn focus_next(&mut self, forward: bool) {
        let fields = self.fields();
        let at = fields
            .iter()
            .position(|field| *field == self.field)
            .unwrap_or(0);
        let next = if forward {
            (at + 1) % fields.len()
        } else {
            (at + fields.len() - 1) % fields.len()
        };
        self.field = fields[next];
    }
}

/// Everything the UI knows.
#[derive(Debug, Clone)]
pub struct Model {
    /// The view shown.
    pub view: View,
    /// The terminal's area.
    pub area: Rect,
    /// Every instance.
    pub instances: Instances,
    /// The selected instance's history, when one is selected.
    pub history: Option<HistoryState>,
    /// Histories of children, for the errors tree.
    pub children: HashMap<String, Vec<ExecutionHistory>>,
    /// Bumped when a child history arrives.
    pub children_revision: u64,
    /// First visible row of the derived views (timeline, fan-out, errors).
    pub derived_offset: usize,
    /// Derived views of the history.
    pub derived: Derived,
    /// The replay stepper, once opened.
    pub stepper: Option<Stepper>,
    /// Clock and timers.
    pub clock: ClockState,
    /// Builds and logs.
    pub builds: BuildsState,
    /// Remote workers and parked work.
    pub workers: WorkersState,
    /// Fault rules.
    pub faults: FaultsState,
    /// Durable entities.
    pub entities: EntitiesState,
    /// Operation logs of entities whose calls failed, for the errors tree.
    pub entity_logs: HashMap<String, Vec<EntityOperationRecord>>,
    /// Entities whose logs the errors tree asked for (loaded or not yet answered).
    pub entity_logs_asked: HashSet<String>,
    /// Orchestrations the active build offers.
    pub orchestrators: Vec<String>,
    /// What the plugin's registrations say about them (description, example input), by name.
    pub orchestrator_info: BTreeMap<String, OrchestratorInfo>,
    /// The last input started with, per orchestration, in this session (the start form's
    /// prefill, ahead of the example).
    pub last_inputs: HashMap<String, String>,
    /// The overlay, if any.
    pub overlay: Option<Overlay>,
    /// Commands entered on the `:` line this session, and where Up/Down are in them.
    pub command_history: crate::cmdline::History,
    /// A message for the status line: (text, is an error).
    pub status: Option<(String, bool)>,
    /// What to reload at the next tick, and which loads are under way.
    pub stale: Stale,
    /// Token for the next replay request.
    pub next_token: u64,
    /// An episode running for at least [`LONG_EPISODE`] (shown in the status line).
    pub long_episode: Option<crate::msg::EpisodeRunning>,
    /// Instances that diverged from the build loaded last (the status line's notice counts them).
    pub diverged_since_load: usize,
    /// Quit.
    pub quit: bool,
}

/// A part of what the UI shows that is loaded from the engine, and so can go stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// The instance list.
    Instances,
    /// The selected instance's history.
    History,
    /// Pending timers and the clock's now.
    Timers,
    /// Builds and the active one.
    Builds,
    /// The fault rules.
    Faults,
    /// Remote workers and parked work.
    Workers,
    /// The entity list.
    Entities,
    /// The selected entity's state and operation log.
    EntityDetail,
}

/// What went stale (an event said so) and which loads are under way, in one place: events and
/// answers [`mark`](Stale::mark) a part however often, and the next tick
/// [`take`](Stale::take)s it and asks for one load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stale {
    marked: BTreeSet<Part>,
    loading: BTreeSet<Part>,
}

impl Stale {
    /// Everything the UI loads at start: all but a history, which waits for a selection.
    pub fn all_but_history() -> Self {
        let mut stale = Self::default();
        for part in [
            Part::Instances,
            Part::Timers,
            Part::Builds,
            Part::Faults,
            Part::Workers,
            Part::Entities,
        ] {
            stale.mark(part);
        }
        stale
    }

    /// Reload `part` at the next tick.
    pub fn mark(&mut self, part: Part) {
        self.marked.insert(part);
    }

    /// Whether `part` waits for a reload.
    pub fn is_marked(&self, part: Part) -> bool {
        self.marked.contains(&part)
    }

    /// Unmarks `part`; true if it was marked (the caller loads it).
    pub fn take(&mut self, part: Part) -> bool {
        self.marked.remove(&part)
    }

    /// A load of `part` was asked for; it is not asked again until [`Stale::loaded`].
    pub fn start_loading(&mut self, part: Part) {
        self.loading.insert(part);
    }

    /// The load of `part` answered (with the data or an error).
    pub fn loaded(&mut self, part: Part) {
        self.loading.remove(&part);
    }

    /// Whether a load of `part` is under way.
    pub fn is_loading(&self, part: Part) -> bool {
        self.loading.contains(&part)
    }
}

/// How long an episode runs before the status line names it: episodes take milliseconds, so one
/// that takes seconds is most likely an orchestrator that does not yield.
pub const LONG_EPISODE: std::time::Duration = std::time::Duration::from_secs(3);

impl Model {
    /// A model for a terminal of `area`, with the clock settings the engine started with
    /// (virtual time paused: see [`Model::with_playing`]).
    pub fn new(area: Rect, clock: ClockKind, auto_skip: bool, orchestrators: Vec<String>) -> Self {
        Self {
            view: View::Instances,
            area,
            instances: Instances::default(),
            history: None,
            children: HashMap::new(),
            children_revision: 0,
            derived_offset: 0,
            derived: Derived::default(),
            stepper: None,
            clock: ClockState {
                kind: clock,
                auto_skip,
                ..ClockState::default()
            },
            builds: BuildsState::default(),
            workers: WorkersState::default(),
            faults: FaultsState::default(),
            entities: EntitiesState::default(),
            entity_logs: HashMap::new(),
            entity_logs_asked: HashSet::new(),
            orchestrators,
            orchestrator_info: BTreeMap::new(),
            last_inputs: HashMap::new(),
            overlay: None,
            command_history: crate::cmdline::History::default(),
            status: None,
            stale: Stale::all_but_history(),
            next_token: 1,
            long_episode: None,
            diverged_since_load: 0,
            quit: false,
        }
    }

    /// The same model, knowing what the registrations say about the orchestrations (the
    /// manifest's `orchestrator_info`).
    #[must_use]
    pub fn with_orchestrator_info(mut self, info: BTreeMap<String, OrchestratorInfo>) -> Self {
        self.orchestrator_info = info;
        self
    }

    /// The same model, saying where the gRPC sidecar listens (or why not).
    #[must_use]
    pub fn with_sidecar(mut self, sidecar: String) -> Self {
        self.workers.sidecar = sidecar;
        self
    }

    /// The same model, with virtual time playing (`true`) as the engine was started.
    #[must_use]
    pub fn with_playing(mut self, playing: bool) -> Self {
        self.clock.playing = playing;
        self
    }

    /// The selected instance's id.
    pub fn selected_id(&self) -> Option<&str> {
        self.instances.selected_id.as_deref()
    }

    /// The selected instance.
    pub fn selected(&self) -> Option<&InstanceRow> {
        self.instances.selected_row()
    }
}

/// Most characters [`short_id`] returns.
pub const SHORT_ID_WIDTH: usize = 16;

/// A short form of an id for tight columns and messages that keeps what tells it from its
/// parent: a child (`<parent>:0`, `<parent>:order-5`) or a fork (`<parent>-fork1`) keeps its
/// whole suffix after the head of the parent's id (`3f2a9c1e:order-5`), never reading like the
/// parent (`3f2a9c1e`); an id of up to [`SHORT_ID_WIDTH`] characters is kept whole.
pub fn short_id(id: &str) -> std::borrow::Cow<'_, str> {
    const HEAD: usize = 8;
    if id.chars().count() <= SHORT_ID_WIDTH {
        return id.into();
    }
    // Where the distinguishing part starts: the first child separator or fork suffix.
    let split = [id.find(':'), id.find("-fork")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(id.len());
    let (root, suffix) = id.split_at(split);
    let suffix_width = suffix.chars().count();
    if suffix_width == 0 {
        return root.chars().take(HEAD).collect::<String>().into();
    }
    if suffix_width + 4 > SHORT_ID_WIDTH {
        // A suffix too long for a head: its tail is what differs between siblings.
        let tail: String = id
            .chars()
            .skip(id.chars().count() - (SHORT_ID_WIDTH - 1))
            .collect();
        return format!("…{tail}").into();
    }
    let head = HEAD.min(SHORT_ID_WIDTH - suffix_width);
    format!("{}{suffix}", root.chars().take(head).collect::<String>()).into()
}

#[cfg(test)]
mod tests {
    use super::short_id;

    const PARENT: &str = "3f2a9c1e4b5d4c7e8f90a1b2c3d4e5f6";

    #[test]
    fn a_short_id_keeps_what_tells_a_child_or_a_fork_from_its_parent() {
        assert_eq!(short_id(PARENT), "3f2a9c1e");
        assert_eq!(short_id(&format!("{PARENT}:0")), "3f2a9c1e:0");
        assert_eq!(short_id(&format!("{PARENT}:order-5")), "3f2a9c1e:order-5");
        assert_eq!(short_id(&format!("{PARENT}-fork1")), "3f2a9c1e-fork1");
        assert_eq!(short_id(&format!("{PARENT}:0-fork2")), "3f2a9c1e:0-fork2");
        assert_eq!(short_id(&format!("{PARENT}:0:12")), "3f2a9c1e:0:12");
    }

    #[test]
    fn a_long_suffix_keeps_its_tail_and_short_ids_stay_whole() {
        let child = format!("{PARENT}:shipment-for-order-12345");
        assert_eq!(short_id(&child), "…for-order-12345");
        assert_eq!(short_id("saga:0"), "saga:0");
        assert_eq!(short_id("approval-fork1"), "approval-fork1");
    }
}
